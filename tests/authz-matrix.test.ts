// The authorization matrix (issue 11, "Prove"; tests/RELIABILITY.md, "Authorization matrix"). Its
// rows are the router's own declarations (apiRoutes): a route without a row fails here. Every
// route × every token defect answers 401 with its code and changes nothing; every route × every
// kind of caller answers what the route declares, and a refusal is byte-identical to the answer
// for a resource that does not exist (invariant 6: no existence oracle) and changes nothing.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { exportJWK, SignJWT } from 'jose';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { apiRoutes } from '../src/http/routes/index.js';
import { putBytes, withoutRequestId } from './helpers/flow.js';
import { startTestApp, TEST_SECRET, TEST_SERVICE, type CallResult, type TestApp } from './helpers/harness.js';
import { changedTables, rowsDigest, undigestedTables } from './helpers/rows.js';
import { storePut } from './helpers/store-put.js';
import { tokenDefects } from './helpers/token-defects.js';
import { did, mintToken } from './helpers/tokens.js';

const ISSUER = 'https://auth.matrix.test';
const MIB = 1024 * 1024;
const PART = 5 * MIB;
// Single PUTs below 5 MiB, multipart above, so that /complete has an upload its owner can complete.
// Every scene is alice's upload: her pending-upload cap must not be what answers.
const ENV = { JWT_ISSUER: ISSUER, MAX_PENDING_UPLOADS: '1000', PART_SIZE_BYTES: String(PART), MULTIPART_THRESHOLD_BYTES: String(PART) };

const alice = did('alice'); // uploads and sends; a member
const bob = did('bob'); // the recipient; a member
const carol = did('carol'); // a member with no part in the upload or message
const dave = did('dave'); // was a member, removed
const mallory = did('mallory'); // a stranger: in another conversation only
const ABSENT_ID = '0190b2a4-7c1e-7000-8000-00000000dead';
const ABSENT_CONVO = 'no-such-convo';

type Who = 'stranger' | 'non-member' | 'owner' | 'service';
const WHO: readonly Who[] = ['stranger', 'non-member', 'owner', 'service'];

/** One broker and how its tokens are made (HS256 here, ES256 through a JWKS below). */
interface World {
  app: TestApp;
  token(sub: string): Promise<string>;
}

interface Req {
  method: string;
  path: string;
  body?: unknown;
}

interface Scene {
  convo: string;
  id: string;
  /** The object the resource holds or will hold, checked around every refusal. */
  blobKey: string | null;
  parts?: { part_number: number; etag: string }[];
}

interface Expect {
  status: number;
  /** A refusal: changes nothing, and answers exactly as for a resource that does not exist. */
  refused?: true;
}

interface Row {
  /** The DID each kind of caller has on this route. */
  callers: Record<Who, string>;
  scene(w: World, who: Who): Promise<Scene>;
  /** The request, against the scene's resource. */
  request(s: Scene): Req;
  expect: Record<Who, Expect>;
  /** Further checks of an answer that is not a refusal. */
  check?(r: CallResult, s: Scene, who: Who): void;
}

let sceneCount = 0;

async function call(w: World, as: string | null, req: Req, authorization?: string): Promise<CallResult> {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  const token = as === null ? undefined : await w.token(as);
  return w.app.call(req.method, req.path, { token, headers, body: req.body });
}

async function ok(w: World, as: string, req: Req, status: number): Promise<CallResult> {
  const r = await call(w, as, req);
  assert.is(r.status, status, `${req.method} ${req.path}: ${r.text}`);
  return r;
}

/** A conversation of its own: alice, bob and carol are members; dave was one and was removed. */
async function convo(w: World): Promise<string> {
  const id = `m-${++sceneCount}`;
  await ok(w, TEST_SERVICE, { method: 'PUT', path: `/api/v1/convos/${id}/members`, body: { members: [alice, bob, carol, dave] } }, 200);
  await ok(w, TEST_SERVICE, { method: 'POST', path: `/api/v1/convos/${id}/members`, body: { remove: [dave] } }, 200);
  return id;
}

const digest = (b: Uint8Array, alg: 'md5' | 'sha256') => createHash(alg).update(b).digest('base64');

/** alice's pending single-PUT upload, its bytes in the bucket. */
async function upload(w: World): Promise<Scene> {
  const c = await convo(w);
  const data = randomBytes(64);
  const r = await ok(w, alice, { method: 'POST', path: '/api/v1/uploads', body: { convo_id: c, size: 64, md5: digest(data, 'md5'), sha256: digest(data, 'sha256') } }, 201);
  assert.is(await putBytes(r.body.upload, data), 200);
  return { convo: c, id: r.body.message_id, blobKey: r.body.blob_key };
}

/** alice's pending multipart upload; for its owner, both parts are in the bucket with their ETags. */
async function multipart(w: World, who: Who): Promise<Scene> {
  const c = await convo(w);
  const data = randomBytes(PART + 1);
  const r = await ok(w, alice, { method: 'POST', path: '/api/v1/uploads', body: { convo_id: c, size: data.length, sha256: digest(data, 'sha256') } }, 201);
  const parts: Scene['parts'] = [];
  if (who === 'owner') {
    for (const p of r.body.upload.parts as { part_number: number; url: string; headers: Record<string, string> }[]) {
      const { 'content-length': _len, ...headers } = p.headers;
      const put = await storePut(p.url, headers, data.subarray((p.part_number - 1) * PART, p.part_number * PART));
      assert.is(put.status, 200, put.text);
      parts.push({ part_number: p.part_number, etag: put.headers.etag! });
    }
  } else {
    parts.push({ part_number: 1, etag: '"0"' }, { part_number: 2, etag: '"0"' });
  }
  return { convo: c, id: r.body.message_id, blobKey: r.body.blob_key, parts };
}

/** A message alice sent to bob (carol is a member, not a recipient). */
async function message(w: World): Promise<Scene> {
  const s = await upload(w);
  await ok(w, alice, { method: 'POST', path: '/api/v1/messages', body: { message_id: s.id, recipients: [bob] } }, 201);
  return s;
}

const onConvo = async (w: World): Promise<Scene> => ({ convo: await convo(w), id: ABSENT_ID, blobKey: null });

const resourceCallers = (owner: string): Record<Who, string> => ({ stranger: mallory, 'non-member': carol, owner, service: TEST_SERVICE });
const convoCallers: Record<Who, string> = { stranger: mallory, 'non-member': dave, owner: alice, service: TEST_SERVICE };
const refused = (status: number): Expect => ({ status, refused: true });
const NOT_FOUND = refused(404);
const listed = (r: CallResult, s: Scene) => (r.body.messages as { message_id: string }[]).some((m) => m.message_id === s.id);

/** The declarations of the README's API reference, one row per route. */
const ROWS: Record<string, Row> = {
  'POST /api/v1/uploads': {
    callers: convoCallers,
    scene: onConvo,
    request: (s) => ({ method: 'POST', path: '/api/v1/uploads', body: { convo_id: s.convo, size: 64, md5: '1B2M2Y8AsgTpgAmY7PhCfg==', sha256: '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' } }),
    // Services commit and manage membership; they do not upload.
    expect: { stranger: refused(403), 'non-member': refused(403), owner: { status: 201 }, service: refused(403) },
  },
  'POST /api/v1/uploads/:message_id/urls': {
    callers: resourceCallers(alice),
    scene: upload,
    request: (s) => ({ method: 'POST', path: `/api/v1/uploads/${s.id}/urls`, body: {} }),
    expect: { stranger: NOT_FOUND, 'non-member': NOT_FOUND, owner: { status: 200 }, service: NOT_FOUND },
  },
  'POST /api/v1/uploads/:message_id/complete': {
    callers: resourceCallers(alice),
    scene: multipart,
    request: (s) => ({ method: 'POST', path: `/api/v1/uploads/${s.id}/complete`, body: { parts: s.parts } }),
    expect: { stranger: NOT_FOUND, 'non-member': NOT_FOUND, owner: { status: 200 }, service: NOT_FOUND },
  },
  'GET /api/v1/uploads/:message_id': {
    callers: resourceCallers(alice),
    scene: upload,
    request: (s) => ({ method: 'GET', path: `/api/v1/uploads/${s.id}` }),
    expect: { stranger: NOT_FOUND, 'non-member': NOT_FOUND, owner: { status: 200 }, service: { status: 200 } },
  },
  'DELETE /api/v1/uploads/:message_id': {
    callers: resourceCallers(alice),
    scene: upload,
    request: (s) => ({ method: 'DELETE', path: `/api/v1/uploads/${s.id}` }),
    // A service may not discard a user's upload (issue 11, item 8).
    expect: { stranger: NOT_FOUND, 'non-member': NOT_FOUND, owner: { status: 204 }, service: NOT_FOUND },
  },
  'POST /api/v1/messages': {
    callers: resourceCallers(alice),
    scene: upload,
    request: (s) => ({ method: 'POST', path: '/api/v1/messages', body: { message_id: s.id, recipients: [bob] } }),
    expect: { stranger: NOT_FOUND, 'non-member': NOT_FOUND, owner: { status: 201 }, service: { status: 201 } },
  },
  'GET /api/v1/messages/pending': {
    callers: resourceCallers(bob),
    scene: message,
    request: () => ({ method: 'GET', path: '/api/v1/messages/pending?limit=500' }),
    expect: { stranger: { status: 200 }, 'non-member': { status: 200 }, owner: { status: 200 }, service: { status: 200 } },
    check: (r, s, who) => assert.is(listed(r, s), who === 'owner', `the page of the ${who} lists the message: ${listed(r, s)}`),
  },
  'POST /api/v1/messages/ack': {
    callers: resourceCallers(bob),
    scene: message,
    request: (s) => ({ method: 'POST', path: '/api/v1/messages/ack', body: { message_ids: [s.id] } }),
    // Anyone may ask; only a recipient's ack counts, and for anyone else the id is not_found, as an absent one is.
    expect: { stranger: refused(200), 'non-member': refused(200), owner: { status: 200 }, service: refused(200) },
    check: (r, s) => assert.equal(r.body, { acked: [s.id], not_found: [] }),
  },
  'GET /api/v1/messages/:message_id': {
    callers: resourceCallers(bob),
    scene: message,
    request: (s) => ({ method: 'GET', path: `/api/v1/messages/${s.id}` }),
    expect: { stranger: NOT_FOUND, 'non-member': NOT_FOUND, owner: { status: 200 }, service: NOT_FOUND },
  },
  'GET /api/v1/messages/:message_id/blob': {
    callers: resourceCallers(bob),
    scene: message,
    request: (s) => ({ method: 'GET', path: `/api/v1/messages/${s.id}/blob` }),
    expect: { stranger: NOT_FOUND, 'non-member': NOT_FOUND, owner: { status: 302 }, service: NOT_FOUND },
  },
  'POST /api/v1/messages/:message_id/ack': {
    callers: resourceCallers(bob),
    scene: message,
    request: (s) => ({ method: 'POST', path: `/api/v1/messages/${s.id}/ack` }),
    expect: { stranger: NOT_FOUND, 'non-member': NOT_FOUND, owner: { status: 204 }, service: NOT_FOUND },
  },
  'PUT /api/v1/convos/:convo_id/members': {
    callers: convoCallers,
    scene: onConvo,
    request: (s) => ({ method: 'PUT', path: `/api/v1/convos/${s.convo}/members`, body: { members: [alice, bob] } }),
    // Membership is the delivery service's: even a member is refused, as for any conversation.
    expect: { stranger: refused(403), 'non-member': refused(403), owner: refused(403), service: { status: 200 } },
  },
  'POST /api/v1/convos/:convo_id/members': {
    callers: convoCallers,
    scene: onConvo,
    request: (s) => ({ method: 'POST', path: `/api/v1/convos/${s.convo}/members`, body: { add: [mallory] } }),
    expect: { stranger: refused(403), 'non-member': refused(403), owner: refused(403), service: { status: 200 } },
  },
  'GET /api/v1/convos/:convo_id/members': {
    callers: convoCallers,
    scene: onConvo,
    request: (s) => ({ method: 'GET', path: `/api/v1/convos/${s.convo}/members` }),
    expect: { stranger: NOT_FOUND, 'non-member': NOT_FOUND, owner: { status: 200 }, service: { status: 200 } },
  },
  'GET /api/v1/limits': {
    callers: convoCallers,
    scene: async () => ({ convo: '', id: ABSENT_ID, blobKey: null }),
    request: () => ({ method: 'GET', path: '/api/v1/limits' }),
    expect: { stranger: { status: 200 }, 'non-member': { status: 200 }, owner: { status: 200 }, service: { status: 200 } },
  },
};

/** The same request, about a resource that does not exist. */
const absent = (req: Req, s: Scene): Req => {
  const swap = (text: string) => text.replaceAll(s.id, ABSENT_ID).replaceAll(`/convos/${s.convo}/`, `/convos/${ABSENT_CONVO}/`);
  const body = req.body === undefined ? undefined : JSON.parse(swap(JSON.stringify(req.body)).replaceAll(`"convo_id":"${s.convo}"`, `"convo_id":"${ABSENT_CONVO}"`));
  return { method: req.method, path: swap(req.path), body };
};

/** An answer as a client sees it, without its request id; about `s`'s resource when about the absent one. */
const seen = (r: CallResult, s?: Scene) => {
  let text = withoutRequestId(r.text);
  if (s) text = text.replaceAll(ABSENT_ID, s.id).replaceAll(ABSENT_CONVO, s.convo);
  return { status: r.status, type: r.headers.get('content-type'), text };
};

const objectState = async (w: World, s: Scene) => (s.blobKey === null ? null : JSON.stringify(await w.app.ctx.store.head(s.blobKey)));

const routeKeys = (app: TestApp) => apiRoutes(app.config).map((r) => `${r.method} ${r.path}`);

function rowOf(key: string): Row {
  const row = ROWS[key];
  assert.ok(row, `${key} has no row in the authorization matrix`);
  return row!;
}

const test = suite('authorization matrix: every /api/v1 route × every token defect and every kind of caller');
let hs: World;

test.before(async () => {
  const app = await startTestApp({ env: ENV });
  hs = { app, token: (sub) => mintToken(TEST_SECRET, sub, { iss: ISSUER }) };
  // The stranger has a world of its own.
  await ok(hs, TEST_SERVICE, { method: 'PUT', path: '/api/v1/convos/elsewhere/members', body: { members: [mallory] } }, 200);
});
test.after(() => hs.app.close());

test('every /api/v1 route has a row, every row a route, and every route wants a token', () => {
  const keys = routeKeys(hs.app);
  assert.equal(keys.filter((k) => !(k in ROWS)), [], 'routes without a row');
  assert.equal(Object.keys(ROWS).filter((k) => !keys.includes(k)), [], 'rows without a route');
  assert.equal(apiRoutes(hs.app.config).filter((r) => !r.auth).map((r) => r.path), []);
});

test('the row digest covers every table of the schema', async () => {
  assert.equal(await undigestedTables(hs.app.ctx.sql), []);
});

test('every route × every token defect: 401 with its code, and no row or object changed', async () => {
  const defects = tokenDefects(TEST_SECRET, ISSUER);
  assert.is(defects.length, 13);
  for (const key of routeKeys(hs.app)) {
    const row = rowOf(key);
    const s = await row.scene(hs, 'owner');
    const req = row.request(s);
    const object = await objectState(hs, s);
    for (const defect of defects) {
      const where = `${key} with ${defect.name}`;
      const rows = await rowsDigest(hs.app.ctx.sql);
      const r = await call(hs, null, req, await defect.authorization(row.callers.owner));
      assert.is(r.status, 401, `${where}: ${r.text}`);
      assert.is(r.body.error, defect.code, `${where}: ${r.text}`);
      assert.equal(changedTables(rows, await rowsDigest(hs.app.ctx.sql)), [], `${where}: rows changed`);
    }
    assert.is(await objectState(hs, s), object, `${key}: the object changed`);
    // The same request with a good token is what the route declares for its owner.
    assert.is((await call(hs, row.callers.owner, req)).status, row.expect.owner.status, `${key} with a good token`);
  }
});

test('every route × {stranger, non-member, owner, service}: the declared answer; a refusal changes nothing and looks exactly like absence', async () => {
  for (const key of routeKeys(hs.app)) {
    const row = rowOf(key);
    for (const who of WHO) {
      const where = `${key} as the ${who}`;
      const expect = row.expect[who];
      const s = await row.scene(hs, who);
      const req = row.request(s);
      const as = row.callers[who];
      const rows = await rowsDigest(hs.app.ctx.sql);
      const object = await objectState(hs, s);
      const r = await call(hs, as, req);
      assert.is(r.status, expect.status, `${where}: ${r.text}`);
      if (!expect.refused) {
        row.check?.(r, s, who);
        continue;
      }
      assert.equal(changedTables(rows, await rowsDigest(hs.app.ctx.sql)), [], `${where}: rows changed`);
      assert.is(await objectState(hs, s), object, `${where}: the object changed`);
      const none = await call(hs, as, absent(req, s));
      assert.equal(seen(r), seen(none, s), `${where}: the refusal differs from the answer for what does not exist`);
      assert.equal(changedTables(rows, await rowsDigest(hs.app.ctx.sql)), [], `${where}, absent: rows changed`);
    }
  }
});

const jwks = suite('authorization matrix on a JWKS broker: an unknown kid on every route');
let es: World;
let unknownKid: World;
let server: Server;

jwks.before(async () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'known', alg: 'ES256', use: 'sig' };
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const app = await startTestApp({ env: { ...ENV, JWT_SECRET: '', JWT_JWKS_URL: `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json` } });
  const sign = (kid: string) => (sub: string) =>
    new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setSubject(sub).setAudience('mls-blob-broker').setIssuer(ISSUER).setIssuedAt().setExpirationTime('5m').sign(privateKey);
  es = { app, token: sign('known') };
  // Signed by the very key the JWKS serves, under a kid it does not list.
  unknownKid = { app, token: sign('unknown') };
});
jwks.after(async () => {
  await es.app.close();
  server.closeAllConnections();
  server.close();
});

jwks('every route: an unknown kid is 401 InvalidToken and changes nothing; the known key gets the route’s answer', async () => {
  for (const key of routeKeys(es.app)) {
    const row = rowOf(key);
    const s = await row.scene(es, 'owner');
    const req = row.request(s);
    const rows = await rowsDigest(es.app.ctx.sql);
    const r = await call(unknownKid, row.callers.owner, req);
    assert.is(r.status, 401, `${key}: ${r.text}`);
    assert.is(r.body.error, 'InvalidToken', `${key}: ${r.text}`);
    assert.equal(changedTables(rows, await rowsDigest(es.app.ctx.sql)), [], `${key}: rows changed`);
    const good = await call(es, row.callers.owner, req);
    assert.is(good.status, row.expect.owner.status, `${key} with the known key: ${good.text}`);
  }
});

test.run();
jwks.run();
