// Builds every page of govflow's web front end with esbuild.
//
// A page is a folder web/<page>/ holding index.html and src/main.js; it is built into
// web/dist/<page>/ (main.js + its lazily loaded chunks, main.css, fonts, index.html) and the
// API serves that folder at /<page>/ (govflow.api.pages). Code shared by pages lives in
// web/common/. Run by scripts/setup after `npm ci`; by hand: `node web/build.mjs [page ...]`
// (`--dev` keeps the code unminified with source maps).
//
// Nothing here is fetched at run time: every asset a page uses is bundled from node_modules,
// so the pages work offline on a district network.
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WEB = dirname(fileURLToPath(import.meta.url));
const DIST = join(WEB, 'dist');
const NOT_PAGES = new Set(['common', 'dist', 'node_modules', 'tools']);

export function pages() {
  return readdirSync(WEB)
    .filter((name) => !NOT_PAGES.has(name) && !name.startsWith('.'))
    .filter((name) => statSync(join(WEB, name)).isDirectory())
    .filter((name) => existsSync(join(WEB, name, 'index.html')) && existsSync(join(WEB, name, 'src', 'main.js')))
    .sort();
}

async function buildPage(page, { dev }) {
  // built beside the served folder, then swapped in: a running server never serves half a build
  const final = join(DIST, page);
  const out = join(DIST, `.${page}.building`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const started = Date.now();
  const result = await build({
    entryPoints: { main: join(WEB, page, 'src', 'main.js') },
    bundle: true,
    // ES modules with code splitting: a page loads what it shows first, the rest on demand
    format: 'esm',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    assetNames: 'assets/[name]-[hash]',
    minify: !dev,
    sourcemap: dev ? 'linked' : false,
    target: ['chrome110', 'firefox110', 'safari16'],
    outdir: out,
    // bpmn-js/dmn-js fonts referenced from their CSS
    loader: { '.eot': 'file', '.svg': 'file', '.ttf': 'file', '.woff': 'file', '.woff2': 'file' },
    define: { 'process.env.NODE_ENV': dev ? '"development"' : '"production"' },
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
  });
  copyFileSync(join(WEB, page, 'index.html'), join(out, 'index.html'));
  const bytes = Object.entries(result.metafile.outputs)
    .filter(([name]) => !name.endsWith('.map'))
    .reduce((sum, [, meta]) => sum + meta.bytes, 0);
  writeFileSync(join(out, 'build.json'), JSON.stringify({ page, built_at: new Date().toISOString(), bytes }, null, 2));
  const old = join(DIST, `.${page}.old`);
  rmSync(old, { recursive: true, force: true });
  if (existsSync(final)) renameSync(final, old);
  renameSync(out, final);
  rmSync(old, { recursive: true, force: true });
  console.log(`web: built ${page} in ${Date.now() - started} ms (${(bytes / 1024).toFixed(0)} KiB)`);
}

const args = process.argv.slice(2);
const dev = args.includes('--dev');
const wanted = args.filter((a) => !a.startsWith('--'));
const all = pages();
for (const page of wanted) {
  if (!all.includes(page)) {
    console.error(`web: no page ${page} (pages: ${all.join(', ')})`);
    process.exit(2);
  }
}
for (const page of wanted.length ? wanted : all) {
  await buildPage(page, { dev });
}
