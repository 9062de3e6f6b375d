// The /dev/ page (fully embedded development only): Alice picks a file and uploads it with the
// client library, watching its progress; Bob sees it in his pending list, downloads it and the page
// checks the bytes against the file. Bundled for the browser with esbuild by src/dev/dev-page.ts.
import { BrokerClient, sha256Base64, type PendingMessage } from '../../client/index.js';

interface Session {
  convo_id: string;
  users: { name: string; did: string; token: string }[];
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const sent = new Map<string, string>(); // message id → SHA-256 of the file Alice picked

async function main(): Promise<void> {
  const session = (await (await fetch('/dev/session.json')).json()) as Session;
  const [alice, bob] = session.users;
  if (!alice || !bob) throw new Error('the session names two users');
  $('alice').textContent = alice.did;
  $('bob').textContent = bob.did;
  const client = (token: string) => new BrokerClient({ baseUrl: location.origin, token, retries: 2 });
  const alices = client(alice.token);
  const bobs = client(bob.token);

  $<HTMLButtonElement>('send').addEventListener('click', () => void send(alices, session.convo_id, bob.did));
  $<HTMLButtonElement>('refresh').addEventListener('click', () => void refresh(bobs, session.convo_id));
  await refresh(bobs, session.convo_id);
}

async function send(alices: BrokerClient, convoId: string, recipient: string): Promise<void> {
  const file = $<HTMLInputElement>('file').files?.[0];
  const status = $('send-status');
  if (!file) {
    status.textContent = 'pick a file first';
    return;
  }
  const bar = $<HTMLProgressElement>('bar');
  let reports = 0;
  bar.max = file.size;
  bar.value = 0;
  status.textContent = 'hashing…';
  try {
    const sha256 = await sha256Base64(new Uint8Array(await file.arrayBuffer()));
    const done = await alices.upload(convoId, file, {
      recipients: [recipient],
      sha256,
      onProgress: ({ sent: bytes, total }) => {
        reports++;
        bar.value = bytes;
        status.textContent = `${bytes} of ${total} bytes sent`;
        $('reports').textContent = String(reports);
      },
    });
    sent.set(done.message_id, sha256);
    status.textContent = `committed ${done.message_id} (${done.size} bytes)`;
    status.dataset.messageId = done.message_id;
  } catch (err) {
    status.textContent = `failed: ${(err as Error).message}`;
  }
}

async function refresh(bobs: BrokerClient, convoId: string): Promise<void> {
  const list = $('pending');
  const page = await bobs.pending({ convoId, limit: 100 });
  list.replaceChildren(...page.messages.map((m) => pendingItem(bobs, m)));
  $('pending-count').textContent = String(page.messages.length);
}

function pendingItem(bobs: BrokerClient, m: PendingMessage): HTMLLIElement {
  const li = document.createElement('li');
  li.dataset.messageId = m.message_id;
  const label = document.createElement('span');
  label.textContent = `${m.message_id} · ${m.size} bytes · from ${m.sender_did} `;
  const button = document.createElement('button');
  button.textContent = 'Download';
  const result = document.createElement('span');
  result.className = 'result';
  button.addEventListener('click', async () => {
    result.textContent = 'downloading…';
    try {
      const got = await bobs.fetchMessage(m.message_id);
      const digest = await sha256Base64(got.data);
      const expected = sent.get(m.message_id);
      const same = expected === undefined ? 'sent from another page' : digest === expected ? 'identical to the file sent' : 'DIFFERENT from the file sent';
      result.textContent = `intact: ${got.data.length} bytes, verified by ${got.verified}; ${same}`;
      result.dataset.sha256 = digest;
      const link = document.createElement('a');
      link.href = URL.createObjectURL(new Blob([got.data as Uint8Array<ArrayBuffer>]));
      link.download = `${m.message_id}.bin`;
      link.textContent = ' save';
      result.append(link);
      await bobs.ack(m.message_id);
    } catch (err) {
      result.textContent = `failed: ${(err as Error).message}`;
    }
  });
  li.append(label, button, result);
  return li;
}

main().catch((err) => {
  $('send-status').textContent = `cannot start: ${(err as Error).message}`;
});
