/**
 * Issue 19 item 3: on Node 22.1+ the CLI turns Node's compile cache on before it loads the
 * config, the logger and the daemon, so a restart after the first compiles little. Node 20 has
 * no `module.enableCompileCache`; here a preload stands one in that writes down when it is
 * called, next to every module the process resolves (a resolve hook registered with
 * `module.register`).
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon } from '../helpers/daemon.js';
import { tempDir } from '../helpers/fs.js';
import { loadedModulesPreload } from '../helpers/loaded-modules.js';

const PRELOAD = loadedModulesPreload(`module.enableCompileCache = () => {
  appendFileSync(log, 'ENABLE COMPILE CACHE\\n');
  return { status: 0 };
};
`);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('compile cache', () => {
  it('is turned on, where Node has it, before the config, the logger and the daemon load', async () => {
    const t = await tempDir();
    cleanups.push(() => t.cleanup());
    await mkdir(path.join(t.dir, 'inbox'));
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(cfg, ['stateDir: ./state', 'log: { level: info, format: json }', 'roots: [{ path: ./inbox }]', 'targets: [{ type: local, path: ./archive }]', ''].join('\n'));
    const preload = path.join(t.dir, 'preload.mjs');
    await writeFile(preload, PRELOAD);
    const loaded = path.join(t.dir, 'loaded.txt');
    await writeFile(loaded, '');
    const d = startDaemon(['backfill', '--once', '--config', cfg], { cwd: t.dir, env: { SC_LOADED_LOG: loaded, NODE_OPTIONS: `--import=${pathToFileURL(preload).href}` } });
    const { code } = await d.exited;
    expect(code, d.output()).toBe(0);
    const lines = readFileSync(loaded, 'utf8').split('\n');
    const at = (part: string) => lines.findIndex((l) => l.includes(part));
    expect(at('/dist/src/cli/main.js'), 'the preload saw the CLI load').toBeGreaterThanOrEqual(0);
    const enabled = lines.indexOf('ENABLE COMPILE CACHE');
    expect(enabled, 'enableCompileCache called').toBeGreaterThan(0);
    expect(lines.lastIndexOf('ENABLE COMPILE CACHE'), 'called once').toBe(enabled);
    for (const later of ['/dist/src/config/', '/node_modules/zod/', '/node_modules/yaml/', '/node_modules/pino/', '/dist/src/cli/run.js', '/dist/src/pipeline/']) {
      expect(at(later), `${later} loaded after the compile cache was on`).toBeGreaterThan(enabled);
    }
  }, 60_000);
});
