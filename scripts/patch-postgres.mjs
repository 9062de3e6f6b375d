// Run by `npm install`/`npm ci` (postinstall). Four defects of postgres.js 3.4.9. The first three are
// met when a database backend dies under a transaction (pg_terminate_backend, a failover, a pooler
// closing the connection); tests/faults.test.ts kills one mid-commit and fails without these fixes:
// 1. nextWrite() writes to a null socket from a setImmediate, so the TypeError escapes every
//    try/catch and ends the process (porsager/postgres#1208, unfixed upstream). The guard settles
//    the connection's queries with CONNECTION_CLOSED instead (the broker answers 503).
// 2. A connection that closed in the middle of a query (the backend's FATAL error, then the close)
//    keeps that query and error when it reconnects: the first query of the new session is failed
//    with the old session's error. A new session now starts clean.
// 3. release() of a reserved connection (src/db/sql.ts transaction()) puts it back among the open
//    connections even when it closed meanwhile: the pool then keeps a connection without a socket
//    and every query routed to it fails. A closed one is left where the pool's onclose put it, to
//    be reconnected on demand like any other closed connection.
// 4. A pool's first query was built before the array types its connection had just fetched were
//    known (porsager/postgres#789, open upstream): a JavaScript array went as the text "a,b", and
//    the broker's first ack, commit or reservation with recipients after a start answered 500
//    ("malformed array literal"). That query now waits for the types (tests/first-array-query.test.ts).
// Plain JavaScript so that it runs in a production install, where tsx is absent. It refuses a
// version whose code it does not recognise: check whether that version still needs the fixes.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'postgres');
const MARK = '/* mls-blob-broker patch */';
const patches = [
  {
    file: 'connection.js',
    from: `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)`,
    to: `  function nextWrite(fn) {
    ${MARK} // porsager/postgres#1208
    if (!socket) {
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)`,
  },
  {
    file: 'connection.js',
    from: `    connect(query) {
      initial = query
      reconnect()
    },`,
    to: `    connect(q) {
      ${MARK} // the last session's unanswered query and error must not reach the next one
      query && queryError(query, errorResponse || Errors.connection('CONNECTION_CLOSED', options))
      query = errorResponse = null
      initial = q
      reconnect()
    },`,
  },
  {
    file: 'index.js',
    from: `    sql.release = () => {
      c.reserved = null
      onopen(c)
    }`,
    to: `    sql.release = () => {
      c.reserved = null
      ${MARK} // a connection that closed while reserved stays with the closed ones
      ;(c.queue === reserved || c.queue === full) && onopen(c)
    }`,
  },
  {
    file: 'connection.js',
    from: `    , needsTypes = options.fetch_types
    , backendParameters = {}`,
    to: `    , needsTypes = options.fetch_types
    , typesFetched = null ${MARK}
    , backendParameters = {}`,
  },
  {
    file: 'connection.js',
    from: `      if (needsTypes) {
        initial.reserve && (initial = null)
        return fetchArrayTypes()
      }

      initial && !initial.reserve && execute(initial)
      options.shared.retries = retries = 0
      initial = null
      return`,
    to: `      if (needsTypes) {
        initial.reserve && (initial = null)
        return (typesFetched = fetchArrayTypes())
      }

      ${MARK} // porsager/postgres#789: the first query is built once the array types are known
      const first = initial && !initial.reserve ? initial : null
        , fetched = typesFetched
      typesFetched = null
      options.shared.retries = retries = 0
      initial = null
      first && (fetched ? fetched.then(() => execute(first), () => execute(first)) : execute(first))
      return`,
  },
];

let problems = 0;
for (const dir of ['src', 'cjs/src']) {
  for (const p of patches) {
    const file = path.join(root, dir, p.file);
    if (!existsSync(file)) continue; // postgres not installed (yet): nothing to patch
    const text = readFileSync(file, 'utf8');
    if (text.includes(p.to)) continue;
    if (!text.includes(p.from)) {
      process.stderr.write(`patch-postgres: ${dir}/${p.file} is not the code this patch knows (postgres.js 3.4.9)\n`);
      problems++;
      continue;
    }
    writeFileSync(file, text.replace(p.from, p.to));
  }
}
process.exit(problems === 0 ? 0 : 1);
