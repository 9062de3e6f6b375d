// TypeBox's CommonJS build. The schemas only need `Type` to build JSON Schema once at start, and
// its ES module build is ~200 files: loaded through a module loader hook (`npm start` runs the
// sources through tsx) they cost about three times as long as the same code required as CommonJS
// (scripts/bench/NOTES.md, "Round 3: cold start"). Types still come from the package itself.
import { createRequire } from 'node:module';
import type * as TypeBox from '@sinclair/typebox';

export const { Type } = createRequire(import.meta.url)('@sinclair/typebox') as typeof TypeBox;
