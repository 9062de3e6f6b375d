// The CommonJS packages a start loads (the AWS SDK, Koa and its router, prom-client, pino) are
// required rather than imported. Imported from an ES module, each of their files also goes through
// the module loader hook that `npm start` runs the sources with (tsx: a round trip to its worker
// thread per file) and through Node's scan of CommonJS sources for named exports; required, only
// through Node's CommonJS loader. Together that was ~0.2 s of CPU per start, spent while the
// embedded PostgreSQL and R2 emulator boot on the same cores (scripts/bench/NOTES.md, "Round 5").
// Types still come from the packages themselves (`import type`). Only for packages that are
// CommonJS alone: one with an ES build as well would then be loaded twice, as two copies.
import { createRequire } from 'node:module';

export const requireCjs = createRequire(import.meta.url);
