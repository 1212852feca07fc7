// The CLI as one bundle, the last step of `npm run build` (after tsc): dist/bundle/main.js, from
// what tsc built under dist/src, with the packages every start loads (zod, yaml, pino, chokidar,
// picomatch, p-retry and their own dependencies) inside it.
//
//   node scripts/bundle.mjs [--dist DIR]   (default: ./dist; reads DIR/src/cli/main.js)
//
// Why: a restart is mostly start-up. Node 20 loads the unbundled CLI as ~370 files (zod ~100,
// yaml ~85, pino and its helpers ~35, ~100 of ours), each resolved, read and linked on its own;
// the bundle's ~35 start chunks load in about half the CPU, and Node 20 has no compile cache.
// What stays outside, loaded from node_modules as before: the native better-sqlite3, and what
// only some starts load (the cloud SDKs on a target's first upload, pg, prom-client,
// pino-pretty, the proxy and fetch helpers). Modules the code imports lazily stay lazy: each
// dynamic import() is a chunk of its own beside main.js (code splitting). The Docker image and
// the package's bin run this file; dist/src/cli/main.js (what the tests start) runs the same code.
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

/** The dependencies bundled: what every start of the CLI loads. Every other one stays external. */
const BUNDLED = new Set(['chokidar', 'p-retry', 'picomatch', 'pino', 'yaml', 'zod']);

/**
 * zod's namespace export `locales` holds the error messages of 60 languages (~370 KB of the
 * bundle), which every start would compile and run; the CLI uses the English ones only (zod
 * sets them as its default itself, from locales/en.js, and config/messages.ts words the config's
 * errors). The bundle's locales index exports English alone: ~15 ms less CPU per start here.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({
      contents: 'export { default as en } from "./en.js";',
      resolveDir: path.dirname(args.path),
    }));
  },
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { dist: { type: 'string', default: path.join(root, 'dist') } } });
const dist = path.resolve(values.dist);
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const external = Object.keys(pkg.dependencies).filter((d) => !BUNDLED.has(d));

const outdir = path.join(dist, 'bundle');
// Chunks are named by their content's hash: the chunks of an earlier build would stay beside these.
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [path.join(dist, 'src', 'cli', 'main.js')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  external,
  // The CommonJS packages inside (yaml, pino) call require() for Node's own modules.
  banner: { js: "import { createRequire as __scCreateRequire } from 'node:module'; const require = __scCreateRequire(import.meta.url);" },
  chunkNames: 'chunk-[hash]',
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
});
