/**
 * `npm run demo`: the four cloud emulators plus the daemon archiving ./data/inbox to them and to
 * ./data/demo-archive (config/demo.yaml), so a newcomer sees Stagecoach work with no accounts.
 * The emulators keep nothing between runs, so the demo's state and archive start fresh too.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { browseLines, startAll } from './run.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

async function main(): Promise<void> {
  for (const d of ['data/demo-state', 'data/demo-archive']) await rm(path.join(ROOT, d), { recursive: true, force: true });
  await mkdir(path.join(ROOT, 'data', 'inbox'), { recursive: true });
  const emus = await startAll();
  process.stdout.write(
    `Emulated clouds on 127.0.0.1:8701-8704. Drop files into ./data/inbox; they go to ./data/demo-archive and to the four emulators.\n` +
      `See what each cloud holds, in a browser:\n${browseLines(emus)}` +
      `and the daemon's own view: npx stagecoach status --config config/demo.yaml (in another terminal). Ctrl-C stops.\n\n`,
  );
  const daemon = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'run', '--config', path.join(ROOT, 'config', 'demo.yaml')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  const report = setInterval(async () => {
    const counts = await Promise.all(Object.entries(emus).map(async ([name, e]) => `${name} ${(await e.tree()).length}`));
    process.stdout.write(`[demo] files held by the emulated clouds: ${counts.join(', ')}\n`);
  }, 15_000);
  const stop = () => {
    clearInterval(report);
    daemon.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  daemon.once('exit', async (code) => {
    clearInterval(report);
    for (const e of Object.values(emus)) {
      await e.close();
      await e.blobs.destroy();
    }
    process.exit(code ?? 0);
  });
}

void main();
