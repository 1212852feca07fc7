/**
 * Issue 19 item 3: the CLI as production runs it is one bundle (scripts/bundle.mjs, the last step
 * of `npm run build`: dist/bundle/main.js), so a restart loads a few files instead of ~370. The
 * bundle is made here from the tsc build of the system tier (test/setup/build.ts), then run as a
 * child process with a preload that writes down every module it loads, CommonJS (`require.cache`
 * at exit) and ESM (a resolve hook).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/daemon.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { loadedModulesPreload } from '../helpers/loaded-modules.js';

const BUNDLE = path.join(ROOT, 'dist', 'bundle', 'main.js');

/** Preload: every module the process loads, one path or URL a line, into $SC_LOADED_LOG. */
const PRELOAD = loadedModulesPreload(`const require = module.createRequire(import.meta.url);
process.on('exit', () => appendFileSync(log, Object.keys(require.cache).join('\\n') + '\\n'));
`);

/** The packages every start loads: inside the bundle, never read from node_modules. */
const BUNDLED = ['zod', 'yaml', 'pino', 'chokidar', 'picomatch', 'p-retry'];
/** The cloud SDKs, loaded on a target's first upload (lazy-sdk.test.ts), never by a restart. */
const SDKS = ['dropbox', 'box-node-sdk', '@googleapis/drive', '@microsoft/microsoft-graph-client', '@azure/msal-node'];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

beforeAll(() => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'bundle.mjs')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
}, 130_000);

describe('the bundled CLI (dist/bundle/main.js)', () => {
  it('prints the package version (it finds the package folder from dist/bundle)', () => {
    const r = spawnSync(process.execPath, [BUNDLE, '--version'], { encoding: 'utf8', timeout: 30_000 });
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('words a bad config as the unbundled CLI does (zod, inside the bundle with its English messages only)', async () => {
    const t = await tempDir();
    cleanups.push(() => t.cleanup());
    const bad = [
      'targets: [{ type: local, path: ./archive, maxDemand: four }]',
      'roots: [{ path: ./inbox, name: 5 }]\ntargets: [{ type: local, path: ./archive }]',
      'stableMs: -3\ntargets: [{ type: local, path: ./archive }]',
      'targets: [{ type: dropbox, appKey: 7 }]',
      'journal: { url: 12 }\ntargets: [{ type: local, path: ./archive }]',
      'http: { listen: "nowhere:99999" }\ntargets: [{ type: local, path: ./archive }]',
      'targets: [{ type: local, path: ./archive }]\nbogus: 1',
    ];
    for (const [i, body] of bad.entries()) {
      const cfg = path.join(t.dir, `bad-${i}.yaml`);
      await writeFile(cfg, `stateDir: ./state\nroots: [{ path: ./inbox }]\n${body}\n`);
      const run = (cli: string) => spawnSync(process.execPath, [cli, 'check', '--config', cfg], { cwd: t.dir, encoding: 'utf8', timeout: 30_000 });
      const bundled = run(BUNDLE);
      const unbundled = run(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'));
      expect(bundled.status, body).toBe(2);
      expect(bundled.stderr, body).toMatch(/^stagecoach: .*bad-\d\.yaml/);
      expect(bundled.stderr, body).toBe(unbundled.stderr);
    }
  }, 60_000);

  it('archives, then restarts over the archived files loading the bundle, better-sqlite3 and no other package file', async () => {
    const t = await tempDir();
    cleanups.push(() => t.cleanup());
    const inbox = path.join(t.dir, 'inbox');
    await mkdir(path.join(inbox, 'sub'), { recursive: true });
    const old = new Date(Date.now() - 3_600_000);
    const files = { 'a.txt': 'one\n', 'sub/b.txt': 'two\n' };
    for (const [rel, body] of Object.entries(files)) {
      await writeFile(path.join(inbox, rel), body);
      await utimes(path.join(inbox, rel), old, old);
    }
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(
      cfg,
      ['stateDir: ./state', 'log: { level: info, format: json }', 'http: { listen: "127.0.0.1:0" }', 'roots: [{ path: ./inbox }]', 'targets: [{ type: local, path: ./archive }]', ''].join('\n'),
    );
    const backfill = spawnSync(process.execPath, [BUNDLE, 'backfill', '--once', '--config', cfg], { cwd: t.dir, encoding: 'utf8', timeout: 30_000 });
    expect(backfill.status, backfill.stderr + backfill.stdout).toBe(0);
    for (const [rel, body] of Object.entries(files)) expect(await readFile(path.join(t.dir, 'archive', 'inbox', rel), 'utf8')).toBe(body);

    const preload = path.join(t.dir, 'preload.mjs');
    await writeFile(preload, PRELOAD);
    const loaded = path.join(t.dir, 'loaded.txt');
    await writeFile(loaded, '');
    const child = spawn(process.execPath, [BUNDLE, 'run', '--config', cfg], {
      cwd: t.dir,
      env: { ...process.env, SC_LOADED_LOG: loaded, NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    await waitFor('the restart idle', () => out.includes('"msg":"watching"'), 20_000);
    expect(out).toMatch(/"waiting":0,"msg":"scanned"/);
    child.kill('SIGTERM');
    expect(await exited, out).toBe(0);

    const lines = readFileSync(loaded, 'utf8').split('\n').filter(Boolean);
    expect(lines.some((l) => l.includes('/dist/bundle/main.js')), 'the preload saw the bundle load').toBe(true);
    // None of the tsc build's own modules: the bundle holds them.
    expect(lines.filter((l) => l.includes('/dist/src/'))).toEqual([]);
    const packages = (names: string[]) => names.filter((p) => lines.some((l) => l.includes(`/node_modules/${p}/`)));
    expect(packages(BUNDLED)).toEqual([]);
    expect(packages(SDKS)).toEqual([]);
    expect(packages(['better-sqlite3'])).toEqual(['better-sqlite3']);
  }, 60_000);
});
