/**
 * Issue 19 item 3: the cloud SDKs load on a target's first network call, so a restart with
 * nothing to send never loads them (bench/restart.ts measures what that saves). The daemon runs
 * as a child process with a preload that writes down every module it loads, CommonJS
 * (`require.cache` at exit) and ESM (a resolve hook registered with `module.register`).
 */
import { readFileSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon } from '../helpers/daemon.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { loadedModulesPreload } from '../helpers/loaded-modules.js';
import { closeClouds, cloudsAndConfig, verifyClouds } from '../e2e/clouds.js';

/** The packages of the four cloud SDKs (Box's and OneDrive's sign-in included). */
const SDKS = ['dropbox', 'box-node-sdk', '@googleapis/drive', '@microsoft/microsoft-graph-client', '@azure/msal-node'];

/** Preload: every module the process loads, one path or URL a line, into $SC_LOADED_LOG. */
const PRELOAD = loadedModulesPreload(`const require = module.createRequire(import.meta.url);
process.on('exit', () => appendFileSync(log, Object.keys(require.cache).join('\\n') + '\\n'));
`);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('cloud SDKs are loaded on first use', () => {
  it('a restart over archived files with all four clouds configured loads none; the first upload loads them and works', async () => {
    const t = await tempDir();
    const { clouds, yaml, inbox } = await cloudsAndConfig(t.dir);
    cleanups.push(async () => {
      await closeClouds(clouds);
      await t.cleanup();
    });
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(cfg, yaml);
    const preload = path.join(t.dir, 'preload.mjs');
    await writeFile(preload, PRELOAD);
    await writeFile(path.join(inbox, 'a.txt'), 'one file\n');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(path.join(inbox, 'a.txt'), old, old);

    /** `backfill --once`; the SDK packages the process loaded. */
    const backfill = async (run: string): Promise<string[]> => {
      const loaded = path.join(t.dir, `loaded-${run}.txt`);
      await writeFile(loaded, '');
      const d = startDaemon(['backfill', '--once', '--config', cfg], {
        cwd: t.dir,
        env: { SC_LOADED_LOG: loaded, NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` },
      });
      const { code } = await d.exited;
      expect(code, d.output()).toBe(0);
      const lines = readFileSync(loaded, 'utf8').split('\n');
      expect(lines.some((l) => l.includes('/dist/src/cli/main.js')), 'the preload saw the daemon load').toBe(true);
      return SDKS.filter((p) => lines.some((l) => l.includes(`/node_modules/${p}/`)));
    };

    // The first run uploads the file to every cloud: each SDK loads then, and works.
    expect(await backfill('first')).toEqual(SDKS);
    expect(await verifyClouds(clouds, inbox, ['a.txt'])).toEqual([]);
    // The restart finds the file archived everywhere: nothing to send, no SDK loaded.
    expect(await backfill('restart')).toEqual([]);
    expect(await verifyClouds(clouds, inbox, ['a.txt'])).toEqual([]);
  }, 60_000);
});

describe('prom-client is loaded on first use', () => {
  it('a running daemon with nothing to send loads it on the first scrape of /metrics, not at start', async () => {
    const t = await tempDir();
    cleanups.push(() => t.cleanup());
    await mkdir(path.join(t.dir, 'inbox'));
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(
      cfg,
      ['stateDir: ./state', 'log: { level: info, format: json }', 'http: { listen: "127.0.0.1:0" }', 'roots: [{ path: ./inbox }]', 'targets: [{ type: local, path: ./archive }]', ''].join('\n'),
    );
    const preload = path.join(t.dir, 'preload.mjs');
    await writeFile(preload, PRELOAD);
    const loaded = path.join(t.dir, 'loaded.txt');
    await writeFile(loaded, '');
    const d = startDaemon(['run', '--config', cfg], { cwd: t.dir, env: { SC_LOADED_LOG: loaded, NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` } });
    cleanups.push(async () => {
      d.child.kill('SIGTERM');
      await d.exited;
    });
    const promClient = () => readFileSync(loaded, 'utf8').split('\n').filter((l) => l.includes('/node_modules/prom-client/'));
    await waitFor('the root watched', async () => d.output().includes('"msg":"watching"'), 20_000);
    expect(readFileSync(loaded, 'utf8'), 'the preload saw the daemon load').toContain('/dist/src/cli/main.js');
    expect(promClient()).toEqual([]);

    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(d.output())?.[1];
    expect(url, d.output()).toBeDefined();
    const res = await fetch(new URL('/metrics', url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await res.text()).toMatch(/^stagecoach_files_archived_total\{target="local"\} 0$/m);
    expect(promClient().length).toBeGreaterThan(0);
  }, 60_000);
});
