// Child process of large-blob-memory.test.ts: uploads one file-backed Blob with the client library
// and prints the peak growth of its live memory as JSON. A process of its own, holding nothing but
// the client, so a forced collection is cheap and nothing else's allocations count.
//   node --expose-gc --import tsx tests/helpers/upload-memory-child.ts <baseUrl> <token> <file> <recipient> <concurrency>
import { openAsBlob } from 'node:fs';
import { BrokerClient } from '../../src/client/index.js';

const [baseUrl, token, file, recipient, concurrency] = process.argv.slice(2) as [string, string, string, string, string];
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

/** The file's Blob, reporting each slice the library takes of it. */
class ObservedBlob extends Blob {
  constructor(
    private readonly inner: Blob,
    private readonly onSlice: () => void,
  ) {
    super([]);
    Object.defineProperty(this, 'size', { get: () => inner.size });
  }
  override slice(start?: number, end?: number, type?: string): Blob {
    this.onSlice();
    return this.inner.slice(start, end, type);
  }
}

const used = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};
const client = new BrokerClient({ baseUrl, token, concurrency: Number(concurrency) });
await client.limits(); // warm up the HTTP client before the baseline
const blob = await openAsBlob(file);
gc();
const baseline = used();
let peak = 0;
let samples = 0;
// Live memory: collect first, so garbage not yet collected does not count as held. Sampled every
// 200 ms (reading 128 MiB whole takes far longer) and whenever the library takes a slice of the Blob.
const sample = () => {
  gc();
  samples++;
  peak = Math.max(peak, used() - baseline);
};
const timer = setInterval(sample, 200);
const message = await client.upload('convo-large-blob', new ObservedBlob(blob, sample), { recipients: [recipient], onProgress: sample });
clearInterval(timer);
sample();
process.stdout.write(`${JSON.stringify({ peak, samples, message })}\n`);
