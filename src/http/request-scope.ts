// The request a piece of code runs for, wherever it runs: AsyncLocalStorage follows callbacks and
// promises, so a crash handler can name the request that set off an uncaught error.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, Next } from 'koa';

const scope = new AsyncLocalStorage<Context>();

/** Outermost middleware: everything below runs inside the request's scope. */
export function requestScope(ctx: Context, next: Next): Promise<void> {
  return scope.run(ctx, next);
}

/** What may be logged of the current request (no headers, no body), or undefined outside one. */
export function currentRequest(): { method: string; path: string; did?: string; requestId?: string } | undefined {
  const ctx = scope.getStore();
  if (ctx === undefined) return undefined;
  const state = ctx.state as { caller?: { did?: string }; requestId?: string };
  return { method: ctx.method, path: ctx.path, did: state.caller?.did || undefined, requestId: state.requestId };
}
