// What a migration's recorded digest covers: its statements, not its comments or layout. A
// comment that goes stale (or cites something that moved) can then be fixed in an applied
// migration without the database refusing it, while any change PostgreSQL would see is refused.
import { createHash } from 'node:crypto';

const IDENT = /[A-Za-z0-9_$\u0080-\uffff]/;
const DOLLAR_TAG = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

/**
 * The SQL text with comments dropped and every run of white space outside literals folded to one
 * space. String literals, quoted identifiers and dollar-quoted bodies (function sources, which
 * PostgreSQL stores verbatim) are kept exactly as written, comments inside them included.
 */
export function normaliseSql(text: string): string {
  let out = '';
  let gap = false;
  const emit = (s: string): void => {
    if (gap && out !== '') out += ' ';
    gap = false;
    out += s;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '-' && next === '-') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
      gap = true;
    } else if (c === '/' && next === '*') {
      // PostgreSQL's block comments nest.
      let depth = 1;
      i += 2;
      while (i < text.length && depth > 0) {
        if (text.startsWith('/*', i)) (depth += 1), (i += 2);
        else if (text.startsWith('*/', i)) (depth -= 1), (i += 2);
        else i += 1;
      }
      gap = true;
    } else if (/\s/.test(c)) {
      i += 1;
      gap = true;
    } else if (c === "'" || c === '"') {
      const prev = text[i - 1];
      const escapes = c === "'" && (prev === 'E' || prev === 'e') && !IDENT.test(text[i - 2] ?? ' ');
      const end = quotedEnd(text, i, c, escapes);
      emit(text.slice(i, end));
      i = end;
    } else if (c === '$' && !IDENT.test(text[i - 1] ?? ' ') && DOLLAR_TAG.test(text.slice(i, i + 64))) {
      const tag = DOLLAR_TAG.exec(text.slice(i, i + 64))![0];
      const close = text.indexOf(tag, i + tag.length);
      const end = close < 0 ? text.length : close + tag.length;
      emit(text.slice(i, end));
      i = end;
    } else {
      emit(c);
      i += 1;
    }
  }
  return out;
}

/** The index just past the literal opened at `start`; a doubled quote (or, in E'…', a backslash) escapes. */
function quotedEnd(text: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < text.length) {
    if (backslashEscapes && text[i] === '\\') i += 2;
    else if (text[i] === quote && text[i + 1] === quote) i += 2;
    else if (text[i] === quote) return i + 1;
    else i += 1;
  }
  return text.length;
}

/** The digest recorded in schema_migrations: SHA-256 of the normalised text, hex. */
export function migrationDigest(text: string): string {
  return createHash('sha256').update(normaliseSql(text)).digest('hex');
}

/**
 * Until 2026-12 the recorded digest was the SHA-256 of the file's exact bytes. Each migration's
 * bytes as then shipped, by that old digest, with the normalised digest they stand for: a database
 * that recorded one of these still checks out as long as the file's statements are unchanged.
 * Rows are not rewritten to the new digest, so the build before this one still starts on them.
 */
export const LEGACY_DIGESTS: Readonly<Record<string, string>> = {
  '3224522f46be4700930411b08aa2ae3c081023b37d10f9aa331b262df0851e11': '32eb33c5fc220d5dea94de67f330fdae758b111b6e51ad02da832d4509bc7258', // 00001
  'f3c4c71e0c6d87b34ffcba41a1f49ac8bd0c7c7ca53522b5040b5f6fa35e1036': '0a7514c9892a7786ad749c84926a872c6b35f6aa0b0576bb6337803fd36c90af', // 00002
  'c8f39e976116338201920f773fdcfceddacad607e3c72cb80d4e472d0817e099': 'ede6e75312a21ac8c3c508f7e0ebbfd16c8e8f6bb7dd6a7c77d7d895505e4228', // 00003
  '509a79ef6c1e66826d94183138eaf2e211812129938251949a3d9b1f6503bf62': '9f1a410785dc74a47b79ff43ded5d6330602ffcc53f8f5bfdd37584c0332b703', // 00004
  '8ef5e713bf21178b84fc80036779f62a9be16c15d1c2996107e7a1e5c38b9c30': '05c93ee9194c8a3b3439cdcdc34370978ec2f63ac6263ca454d8b048054f0abe', // 00005
  'e58cb8beafd86ba165d4fdbdfab7ca771987ecd06521d656391160ff64bf8709': '5ecbdf0c64913cc98cea9621d10d169ec7d1bb7c530b3cc7404b93b277208fcd', // 00006
};
