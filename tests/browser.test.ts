// A real browser: headless Chromium (from npm: @sparticuz/chromium, driven by playwright-core)
// against `npm start` fully embedded, whose bucket answers CORS through the development front as R2
// would with setup-bucket's rules. A page on an origin of CORS_ORIGINS uploads with the bundled
// client library (single PUT and multipart) and another user downloads; a page on another origin
// is refused by the bucket's preflight; the /dev/ page works end to end. Screenshots go to
// .data/screenshots/ (ignored by git).
import Chromium from '@sparticuz/chromium';
import { build } from 'esbuild';
import { createHash, randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freePort } from '../src/dev/free-port.js';
import { TEST_SECRET, TEST_SERVICE } from './helpers/harness.js';
import { did, mintToken } from './helpers/tokens.js';

const test = suite('a real browser: uploads from a page, the bucket\'s CORS, the /dev/ page');
const MIB = 1024 * 1024;
const SHOTS = fileURLToPath(new URL('../.data/screenshots/', import.meta.url));
const alice = did('alice');
const bob = did('bob');
const CONVO = 'convo-browser';

interface Progress {
  sent: number;
  total: number;
}
interface SendResult {
  message_id: string;
  size: number;
  sha256: string;
  progress: Progress[];
}
interface ReceiveResult {
  pending: string[];
  size: number;
  sha256: string;
  verified: string;
}

let dataDir: string;
let broker: ChildProcess;
let brokerUrl: string;
let browser: Browser;
const servers: http.Server[] = [];
let allowedOrigin: string;
let foreignOrigin: string;

/** A static origin serving the test page and its bundle (the client library for the browser). */
async function pageServer(script: string): Promise<string> {
  const html = '<!doctype html><meta charset="utf-8"><title>client library test page</title><script type="module" src="/page.js"></script><h1>client library test page</h1>';
  const server = http.createServer((req, res) => {
    if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** `npm start` (src/main.ts) with no database or bucket configured: everything embedded. */
function startBroker(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM'); // never leave a broker (and its PostgreSQL and emulator) behind
      reject(new Error(`not ready in 60 s:\n${lines.join('\n')}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        lines.push(line);
        const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve({ child, url: m[1]! });
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ready:\n${lines.join('\n')}`));
    });
  });
}

async function api(method: string, p: string, as: string, body?: unknown) {
  const res = await fetch(brokerUrl + p, {
    method,
    headers: { authorization: `Bearer ${await mintToken(TEST_SECRET, as)}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

/** Calls one function of tests/browser/page.ts inside the page. */
function inPage<T>(page: Page, name: 'send' | 'receive' | 'putDirect', arg: unknown): Promise<T> {
  return page.evaluate(
    ([n, a]) => (globalThis as unknown as { broker: Record<string, (x: unknown) => Promise<unknown>> }).broker[n]!(a),
    [name, arg] as const,
  ) as Promise<T>;
}

/** A page on a throttled uplink, as a phone has: on loopback an 8 MiB body is gone before Chromium looks. */
async function slowUplink(page: Page, bytesPerSecond: number): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond });
}

async function openPage(origin: string, errors: string[] = []): Promise<Page> {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => 'broker' in globalThis);
  return page;
}

test.before(async () => {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./browser/page.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0]!.text;
  allowedOrigin = await pageServer(script);
  foreignOrigin = await pageServer(script);
  dataDir = await mkdtemp(path.join(tmpdir(), 'broker-browser-'));
  const started = await startBroker({
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    PORT: String(await freePort()),
    CORS_ORIGINS: allowedOrigin,
    JWT_SECRET: TEST_SECRET,
    SERVICE_DIDS: TEST_SERVICE,
    // 8 MiB is one PUT, more is multipart in 5 MiB parts (the smallest S3 allows).
    MULTIPART_THRESHOLD_BYTES: String(8 * MIB),
    PART_SIZE_BYTES: String(5 * MIB),
    RECONCILE_CRON: 'off',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'info', // the "listening" line
  });
  broker = started.child;
  brokerUrl = started.url;
  browser = await chromium.launch({ executablePath: await Chromium.executablePath(), args: ['--no-sandbox'], headless: true });
  await mkdir(SHOTS, { recursive: true });
  const members = await api('PUT', `/api/v1/convos/${CONVO}/members`, TEST_SERVICE, { members: [alice, bob] });
  assert.is(members.status, 200, members.text);
});

test.after(async () => {
  await browser?.close();
  for (const s of servers) s.close();
  if (broker && broker.exitCode === null) {
    const exited = new Promise((r) => broker.once('exit', r));
    broker.kill('SIGTERM');
    await exited;
  }
  await rm(dataDir, { recursive: true, force: true });
});

test('a page on an allowed origin uploads 8 MiB in one PUT with live progress; another user downloads the same bytes', async () => {
  const page = await openPage(allowedOrigin);
  await slowUplink(page, 8 * MIB);
  const sent = await inPage<SendResult>(page, 'send', { baseUrl: brokerUrl, token: await mintToken(TEST_SECRET, alice), convoId: CONVO, recipient: bob, size: 8 * MIB });
  assert.is(sent.size, 8 * MIB);
  const sents = sent.progress.map((p) => p.sent);
  assert.is(sents[0], 0);
  assert.is(sents[sents.length - 1], 8 * MIB);
  for (let i = 1; i < sents.length; i++) assert.ok(sents[i]! > sents[i - 1]!, 'progress only moves forward');
  const within = sents.filter((s) => s > 0 && s < 8 * MIB);
  assert.ok(within.length >= 3, `several progress events within the one PUT, got ${JSON.stringify(sents)}`);
  await page.screenshot({ path: path.join(SHOTS, 'allowed-origin.png') });

  const bobs = await openPage(allowedOrigin);
  const got = await inPage<ReceiveResult>(bobs, 'receive', { baseUrl: brokerUrl, token: await mintToken(TEST_SECRET, bob), messageId: sent.message_id });
  assert.ok(got.pending.includes(sent.message_id), 'pending for the second user');
  assert.is(got.size, sent.size);
  assert.is(got.sha256, sent.sha256, 'the downloaded bytes are the uploaded ones');
  assert.is(got.verified, 'sha256');
  await page.close();
  await bobs.close();
});

test('a page uploads a multipart Blob (three parts, reading ETag through CORS) and another user downloads it intact', async () => {
  const page = await openPage(allowedOrigin);
  const size = 12 * MIB + 12345;
  const sent = await inPage<SendResult>(page, 'send', { baseUrl: brokerUrl, token: await mintToken(TEST_SECRET, alice), convoId: CONVO, recipient: bob, size });
  assert.is(sent.size, size);
  // At least the start and each of the three parts' completions (the last one is the total).
  const sents = sent.progress.map((p) => p.sent);
  assert.ok(sents.length >= 4, JSON.stringify(sents));
  assert.is(sents[0], 0);
  assert.is(sents[sents.length - 1], size);
  for (let i = 1; i < sents.length; i++) assert.ok(sents[i]! > sents[i - 1]!, 'progress only moves forward');
  const got = await inPage<ReceiveResult>(page, 'receive', { baseUrl: brokerUrl, token: await mintToken(TEST_SECRET, bob), messageId: sent.message_id });
  assert.is(got.sha256, sent.sha256);
  await page.close();
});

test('a page on another origin fails the bucket\'s preflight: its PUT never reaches the bucket', async () => {
  const body = new Uint8Array(1000);
  const md5 = createHash('md5').update(body).digest('base64');
  const r = await api('POST', '/api/v1/uploads', alice, { convo_id: CONVO, size: body.length, md5 });
  assert.is(r.status, 201, r.text);
  const upload = { url: r.body.upload.url as string, headers: r.body.upload.headers as Record<string, string>, size: body.length };

  const errors: string[] = [];
  const foreign = await openPage(foreignOrigin, errors);
  assert.is(await inPage<string>(foreign, 'putDirect', upload), 'TypeError', 'the browser refuses: the preflight failed');
  assert.ok(errors.some((e) => e.includes('CORS policy')), `the console says why: ${JSON.stringify(errors)}`);
  await foreign.screenshot({ path: path.join(SHOTS, 'foreign-origin.png') });
  const early = await api('POST', '/api/v1/messages', alice, { message_id: r.body.message_id });
  assert.is(early.status, 409, 'nothing was stored');
  assert.is(early.body.error, 'UploadIncomplete');

  // The same URL from the allowed origin works: only the origin differed.
  const allowed = await openPage(allowedOrigin);
  assert.is(await inPage<string>(allowed, 'putDirect', upload), 'status 200');
  assert.is((await api('POST', '/api/v1/messages', alice, { message_id: r.body.message_id })).status, 201);
  await foreign.close();
  await allowed.close();
});

test('the /dev/ page: pick a file, watch it go up, see it in the second user\'s pending list, download it intact', async () => {
  const errors: string[] = [];
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await slowUplink(page, 8 * MIB);
  const res = await page.goto(`${brokerUrl}/dev/`);
  assert.is(res?.status(), 200);
  assert.match(res!.headers()['content-security-policy'] ?? '', "default-src 'none'");
  await page.waitForFunction(() => (globalThis as unknown as { document: { getElementById(id: string): { textContent: string } } }).document.getElementById('alice').textContent !== '');
  const file = randomBytes(6 * MIB);
  await page.setInputFiles('#file', { name: 'ciphertext.bin', mimeType: 'application/octet-stream', buffer: file });
  await page.click('#send');
  await page.waitForSelector('#send-status[data-message-id]', { timeout: 20_000 });
  const messageId = await page.getAttribute('#send-status', 'data-message-id');
  assert.ok(messageId);
  assert.ok(Number(await page.textContent('#reports')) >= 3, 'progress was reported along the way');
  await page.click('#refresh');
  const item = `li[data-message-id="${messageId}"]`;
  await page.waitForSelector(item);
  await page.click(`${item} button`);
  await page.waitForSelector(`${item} .result[data-sha256]`);
  assert.match((await page.textContent(`${item} .result`)) ?? '', 'identical to the file sent');
  assert.is(await page.getAttribute(`${item} .result`, 'data-sha256'), createHash('sha256').update(file).digest('base64'));
  await page.screenshot({ path: path.join(SHOTS, 'dev-page.png'), fullPage: true });
  assert.equal(errors, [], 'no errors, no Content-Security-Policy violation');
  await page.close();
});

test.run();
