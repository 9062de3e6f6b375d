// The MLS (RFC 9420) side of `npm run demo`, on ts-mls: members with key packages, group state,
// and the wire encoding of what travels (MLSMessage: Welcome, PrivateMessage). Nothing here knows
// about the broker; scripts/demo.ts carries the bytes.
import {
  createApplicationMessage,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  emptyPskIndex,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  processPrivateMessage,
  zeroOutUint8Array,
  type CiphersuiteImpl,
  type ClientState,
  type KeyPackage,
  type MLSMessage,
  type PrivateKeyPackage,
} from 'ts-mls';

export const CIPHERSUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519';

export interface Member {
  name: string;
  did: string;
  publicPackage: KeyPackage;
  privatePackage: PrivateKeyPackage;
  state: ClientState | null;
}

export async function ciphersuite(): Promise<CiphersuiteImpl> {
  return getCiphersuiteImpl(getCiphersuiteFromName(CIPHERSUITE));
}

/** A member with a fresh key package; the credential's identity is the member's DID. */
export async function newMember(name: string, did: string, cs: CiphersuiteImpl): Promise<Member> {
  const credential = { credentialType: 'basic' as const, identity: new TextEncoder().encode(did) };
  const kp = await generateKeyPackage(credential, defaultCapabilities(), defaultLifetime, [], cs);
  return { name, did, publicPackage: kp.publicPackage, privatePackage: kp.privatePackage, state: null };
}

export const epochOf = (m: Member): bigint => stateOf(m).groupContext.epoch;

function stateOf(m: Member): ClientState {
  if (m.state === null) throw new Error(`${m.name} is not in the group`);
  return m.state;
}

export async function startGroup(creator: Member, groupId: string, cs: CiphersuiteImpl): Promise<void> {
  creator.state = await createGroup(new TextEncoder().encode(groupId), creator.publicPackage, creator.privatePackage, [], cs);
}

/**
 * `committer` adds `newcomer` (whose key package it obtained out of band): the commit (for the
 * existing members) and the Welcome (for the newcomer), both encoded for the wire. The Welcome
 * carries the ratchet tree, so the newcomer needs nothing else to join.
 */
export async function addMember(committer: Member, newcomer: Member, cs: CiphersuiteImpl): Promise<{ commit: Uint8Array; welcome: Uint8Array }> {
  const result = await createCommit(
    { state: stateOf(committer), cipherSuite: cs },
    { extraProposals: [{ proposalType: 'add', add: { keyPackage: newcomer.publicPackage } }], ratchetTreeExtension: true },
  );
  committer.state = result.newState;
  result.consumed.forEach(zeroOutUint8Array);
  if (result.welcome === undefined) throw new Error('the commit produced no Welcome');
  return {
    commit: encodeMlsMessage(result.commit),
    welcome: encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: result.welcome }),
  };
}

export async function joinFromWelcome(member: Member, bytes: Uint8Array, cs: CiphersuiteImpl): Promise<void> {
  const message = decode(bytes);
  if (message.wireformat !== 'mls_welcome') throw new Error(`${member.name} expected a Welcome, got ${message.wireformat}`);
  member.state = await joinGroup(message.welcome, member.publicPackage, member.privatePackage, emptyPskIndex, cs);
}

export async function encrypt(sender: Member, text: string, cs: CiphersuiteImpl): Promise<Uint8Array> {
  const result = await createApplicationMessage(stateOf(sender), new TextEncoder().encode(text), cs);
  sender.state = result.newState;
  result.consumed.forEach(zeroOutUint8Array);
  return encodeMlsMessage({ version: 'mls10', wireformat: 'mls_private_message', privateMessage: result.privateMessage });
}

/** Processes a PrivateMessage: the plaintext of an application message, or null for a commit (applied). */
export async function receive(member: Member, bytes: Uint8Array, cs: CiphersuiteImpl): Promise<string | null> {
  const message = decode(bytes);
  if (message.wireformat !== 'mls_private_message') throw new Error(`${member.name} expected a PrivateMessage, got ${message.wireformat}`);
  const result = await processPrivateMessage(stateOf(member), message.privateMessage, emptyPskIndex, cs);
  member.state = result.newState;
  result.consumed.forEach(zeroOutUint8Array);
  return result.kind === 'applicationMessage' ? new TextDecoder().decode(result.message) : null;
}

function decode(bytes: Uint8Array): MLSMessage {
  const decoded = decodeMlsMessage(bytes, 0);
  if (decoded === undefined) throw new Error('not an MLSMessage');
  return decoded[0];
}
