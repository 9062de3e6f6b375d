// One esbuild bundle of an entry point under src/, for `npm start` (scripts/start.mjs): the broker's
// 69 modules through tsx cost a start about 0.7 s of CPU (each file through the loader hook, then
// resolved, read and linked on its own); the bundle is one file of plain JavaScript.
// The bundle is cached under node_modules/.cache/mls-blob-broker/, named by a hash of every file
// under src/ (path, size, modification time), tsconfig.json, esbuild's version and this file: any
// change to them builds a new one.
// Packages stay outside it (imported from node_modules as before), and each module keeps its own
// import.meta.url, so paths found from it (sql/, the /dev/ page, createRequire) do not move.
// Plain JavaScript: it runs before any TypeScript loader.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const SOURCE = /\.(?:[cm]?ts|[cm]?js|json)$/;
/** Bundles of other versions are removed once this old: a start of that version may still be loading one. */
const KEEP_OLD_MS = 3600_000;

/** The hash naming the bundle: the files under src/ as stat sees them, tsconfig.json, esbuild's version, this file. */
async function sourceKey(root, entry) {
  const hash = createHash('sha256');
  const esbuildPackage = JSON.parse(await readFile(path.join(root, 'node_modules', 'esbuild', 'package.json'), 'utf8'));
  hash.update(`${entry}\0${esbuildPackage.version}\0`);
  hash.update(await readFile(new URL(import.meta.url)));
  const tsconfig = path.join(root, 'tsconfig.json');
  if (existsSync(tsconfig)) hash.update(await readFile(tsconfig));
  // Each file's size and modification time (nanoseconds), as build tools judge freshness: reading
  // every source on every start would cost a start more than stating them.
  const files = (await readdir(path.join(root, 'src'), { recursive: true })).filter((f) => SOURCE.test(f)).sort();
  const stats = await Promise.all(files.map((f) => stat(path.join(root, 'src', f), { bigint: true })));
  files.forEach((f, i) => hash.update(`\0${f}\0${stats[i].size}\0${stats[i].mtimeNs}`));
  return hash.digest('hex').slice(0, 20);
}

/** esbuild plugin: `import.meta.url` in a source file becomes that file's own URL. */
const ownImportMetaUrl = {
  name: 'own-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      return { contents: text.replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
    });
  },
};

/**
 * The path of a bundle of `entry` (relative to `root`) for the sources as they are now: the cached
 * one, or one built now (esbuild, a few hundred ms) and written atomically, so that instances
 * starting together never read half a file.
 */
export async function bundledEntry(root, entry, cacheDir = path.join(root, 'node_modules', '.cache', 'mls-blob-broker')) {
  const name = path.basename(entry).replace(/\.[cm]?ts$/, '');
  const out = path.join(cacheDir, `${name}-${await sourceKey(root, entry)}.mjs`);
  if (existsSync(out)) return { file: out, built: false };
  const { build } = await import('esbuild');
  const result = await build({
    absWorkingDir: root,
    entryPoints: [path.join(root, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    packages: 'external',
    sourcemap: 'linked',
    sourcesContent: false,
    outfile: out,
    write: false,
    logLevel: 'silent',
    plugins: [ownImportMetaUrl],
  });
  await mkdir(cacheDir, { recursive: true });
  const suffix = `.${process.pid}.tmp`;
  // The map before the code: whoever sees the code finds its map.
  for (const f of [...result.outputFiles].sort((a, b) => (a.path.endsWith('.map') ? -1 : b.path.endsWith('.map') ? 1 : 0))) {
    await writeFile(f.path + suffix, f.contents);
    await rename(f.path + suffix, f.path);
  }
  await pruneOld(cacheDir, name, out);
  return { file: out, built: true };
}

async function pruneOld(cacheDir, name, keep) {
  const now = Date.now();
  for (const f of await readdir(cacheDir)) {
    const file = path.join(cacheDir, f);
    if (!f.startsWith(`${name}-`) || file === keep || file === `${keep}.map`) continue;
    const s = await stat(file).catch(() => null);
    if (s !== null && now - s.mtimeMs > KEEP_OLD_MS) await rm(file, { force: true });
  }
}
