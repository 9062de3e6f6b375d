// npm run demo: a real MLS (RFC 9420) conversation through the broker, with ts-mls and the client
// library (src/client). Alice creates a group and adds Bob; the Welcome, an application message and a
// commit (Alice adds Carol) go through the broker as ciphertexts: reserve, PUT straight to the
// bucket, commit; the recipient lists pending, downloads (size and SHA-256 checked), decrypts, acks.
//
//   BROKER_URL=http://127.0.0.1:3000 npm run demo   against a running `npm start` (tokens signed with
//                                                   its JWT_SECRET: the development one when fully embedded)
//   npm run demo                                    starts a broker of its own on a free port (joining a
//                                                   running npm start's embedded database and bucket, or
//                                                   starting them under DATA_DIR) and stops it at the end
//
// Key packages travel out of band: a deployment publishes them in the delivery service's
// directory; here Alice takes Bob's and Carol's from memory. Everything a member receives from
// another goes through the broker. Exits 1 on any failure.
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../src/app.js';
import { BrokerClient } from '../src/client/index.js';
import { ConfigError, readBrokerUrl, type Config } from '../src/config.js';
import { createContext, type AppContext } from '../src/context.js';
import { createLogger } from '../src/log.js';
import { cliArgs, cliConfig, fail } from './cli.js';
import { addMember, ciphersuite, CIPHERSUITE, encrypt, epochOf, joinFromWelcome, newMember, receive, startGroup, type Member } from './demo-mls.js';
import { mintDevToken } from './dev-token.js';

const DIDS = {
  alice: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa',
  bob: 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb',
  carol: 'did:plc:cccccccccccccccccccccccc',
};

let step = 0;
const say = (text: string) => process.stdout.write(`[${++step}] ${text}\n`);
/** A detail of the step before: what went through the broker. */
const detail = (text: string) => process.stdout.write(`      ${text}\n`);
const check = (ok: boolean, what: string) => {
  if (!ok) throw new Error(what);
};

/** A broker of our own on a free loopback port, for runs without BROKER_URL. */
async function ownBroker(config: Readonly<Config>): Promise<{ url: string; close(): Promise<void> }> {
  const app: AppContext = await createContext(config, { log: createLogger('warn'), poolSize: 4 });
  const server: Server = createApp(app).listen({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await app.close();
    },
  };
}

/** Sends MLS bytes to `to` through the broker, and has `to` fetch, check and acknowledge them. */
async function deliver(from: BrokerClient, to: BrokerClient, toName: string, convo: string, bytes: Uint8Array, kind: string, toDid: string): Promise<Uint8Array> {
  const sent = await from.upload(convo, bytes, { recipients: [toDid], contentType: 'message/mls', metadata: { kind } });
  detail(`→ broker: ${kind}, ${bytes.length} bytes of ciphertext, message ${sent.message_id} (reserved, PUT to the bucket, committed)`);
  const page = await to.pending({ convoId: convo, limit: 100 });
  check(page.messages.some((m) => m.message_id === sent.message_id), `${toName}'s pending list lacks ${sent.message_id}`);
  const got = await to.fetchMessage(sent.message_id);
  check(got.verified === 'sha256', `${toName} could only check the ${got.verified}`);
  check(got.message.metadata?.kind === kind, `${toName} expected a ${kind}`);
  await to.ack(sent.message_id);
  const after = await to.pending({ convoId: convo, limit: 100 });
  check(!after.messages.some((m) => m.message_id === sent.message_id), `${sent.message_id} is still pending after the ack`);
  detail(`← ${toName}: listed pending, downloaded ${got.data.length} bytes (size and SHA-256 verified), acknowledged`);
  return got.data;
}

async function converse(config: Readonly<Config>, baseUrl: string): Promise<void> {
  const service = config.serviceDids[0];
  if (service === undefined) throw new Error('the demo sets the conversation members as a service: SERVICE_DIDS is empty');
  const client = (did: string) => new BrokerClient({ baseUrl, token: () => mintDevToken(config, did, 600) });
  const [alice, bob, carol] = [client(DIDS.alice), client(DIDS.bob), client(DIDS.carol)];
  const token = await mintDevToken(config, service, 600);
  const members = async (method: 'PUT' | 'POST', path: string, body: unknown) => {
    const res = await fetch(`${baseUrl}/api/v1/convos/${path}/members`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`setting members: ${res.status} ${await res.text()}`);
  };

  const convo = `demo-${randomBytes(6).toString('hex')}`;
  const cs = await ciphersuite();
  const m: Record<'alice' | 'bob' | 'carol', Member> = {
    alice: await newMember('Alice', DIDS.alice, cs),
    bob: await newMember('Bob', DIDS.bob, cs),
    carol: await newMember('Carol', DIDS.carol, cs),
  };
  say(`broker ${baseUrl}; Alice, Bob and Carol generate MLS key packages (${CIPHERSUITE})`);
  await members('PUT', convo, { members: [DIDS.alice, DIDS.bob] });
  say(`the delivery service (${service}) makes Alice and Bob the members of conversation ${convo}`);

  await startGroup(m.alice, convo, cs);
  const addBob = await addMember(m.alice, m.bob, cs);
  say(`Alice creates MLS group "${convo}" and commits "add Bob" with Bob's key package (from the directory, out of band): epoch ${epochOf(m.alice)}`);
  await joinFromWelcome(m.bob, await deliver(alice, bob, 'Bob', convo, addBob.welcome, 'welcome', DIDS.bob), cs);
  check(epochOf(m.bob) === epochOf(m.alice), 'Bob joined at another epoch');
  say(`Bob joins the group from the Welcome: epoch ${epochOf(m.bob)}`);

  const hello = 'Hello Bob, this went through the broker as an MLS PrivateMessage.';
  const text = await receive(m.bob, await deliver(alice, bob, 'Bob', convo, await encrypt(m.alice, hello, cs), 'application', DIDS.bob), cs);
  check(text === hello, `Bob decrypted "${text}"`);
  say(`Bob decrypts Alice's application message: "${text}"`);

  await members('POST', convo, { add: [DIDS.carol] });
  const addCarol = await addMember(m.alice, m.carol, cs);
  say(`the delivery service adds Carol to the conversation; Alice commits "add Carol" (a group change): epoch ${epochOf(m.alice)}`);
  check((await receive(m.bob, await deliver(alice, bob, 'Bob', convo, addCarol.commit, 'commit', DIDS.bob), cs)) === null, 'the commit decrypted as an application message');
  check(epochOf(m.bob) === epochOf(m.alice), 'Bob is at another epoch than Alice after the commit');
  say(`Bob processes the commit: epoch ${epochOf(m.bob)}, like Alice`);
  await joinFromWelcome(m.carol, await deliver(alice, carol, 'Carol', convo, addCarol.welcome, 'welcome', DIDS.carol), cs);
  check(epochOf(m.carol) === epochOf(m.alice), 'Carol joined at another epoch');
  say(`Carol joins from her Welcome: epoch ${epochOf(m.carol)}`);

  const toAll = 'Welcome, Carol.';
  const sent = await bob.upload(convo, await encrypt(m.bob, toAll, cs), { contentType: 'message/mls', metadata: { kind: 'application' } });
  say(`Bob sends "${toAll}" to every other member (recipients from the conversation): message ${sent.message_id}, ${sent.recipient_count} recipients`);
  check(sent.recipient_count === 2, `expected 2 recipients, got ${sent.recipient_count}`);
  for (const [name, member, c] of [['Alice', m.alice, alice], ['Carol', m.carol, carol]] as const) {
    const got = await c.fetchMessage(sent.message_id);
    const plain = await receive(member, got.data, cs);
    check(plain === toAll, `${name} decrypted "${plain}"`);
    await c.ack(sent.message_id);
    detail(`← ${name}: downloaded, verified, decrypted "${plain}", acknowledged`);
  }
  say('done: every MLS message went through the broker as ciphertext, and every member is at the same epoch');
}

async function main(): Promise<void> {
  cliArgs(
    `Usage: BROKER_URL=<origin> npm run demo     against a running broker (npm start)
       npm run demo                          on a broker of its own (embedded parts, or DATABASE_URL/R2_ENDPOINT)

An MLS (RFC 9420) conversation through the broker: a Welcome, an application message and a commit.`,
    {},
  );
  const config = cliConfig();
  let brokerUrl: string | null;
  try {
    brokerUrl = readBrokerUrl();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
  const own = brokerUrl === null ? await ownBroker(config) : null;
  try {
    await converse(config, brokerUrl ?? own!.url);
  } finally {
    await own?.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
