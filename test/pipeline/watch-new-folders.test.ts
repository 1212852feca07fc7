import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createPathFilter } from '../../src/archive/filters.js';
import type { FileItem } from '../../src/archive/item.js';
import { WatchSource } from '../../src/pipeline/watch-source.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir, waitFor } from '../helpers/fs.js';

const filter = createPathFilter({ include: [], exclude: [], minSize: 0, maxSize: null, ignoreHidden: true, ignoreTemp: true });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Makes each folder and writes 10 files into it from a child process, a few per millisecond. */
function writer(root: string, dirs: string[], round: number): Promise<void> {
  const script = `
    const fs = require('node:fs'), path = require('node:path');
    const [root, round, ...dirs] = process.argv.slice(1);
    const pause = () => { const t = process.hrtime.bigint(); while (process.hrtime.bigint() - t < 200000n); };
    for (const d of dirs) {
      fs.mkdirSync(path.join(root, d), { recursive: true });
      for (let f = 0; f < 10; f++) { fs.writeFileSync(path.join(root, d, 'f' + f + '.txt'), round + ' ' + d + ' ' + f); pause(); }
    }`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script, root, String(round), ...dirs], { timeout: 10_000 }, (err) => (err ? reject(err) : resolve()));
  });
}

const ROUNDS = Number(process.env.NEW_FOLDER_ROUNDS ?? 50);

describe('WatchSource: files written into folders made while watching (issue 14.1)', () => {
  it(`finds every file written into freshly made nested folders, with the rescan off (${ROUNDS} rounds)`, async () => {
    const t = await tempDir();
    const root = path.join(t.dir, 'root');
    await mkdir(root);
    const ready = new Set<string>();
    const src = new WatchSource({
      roots: [{ name: 'r', path: root, filter, polling: false, pollIntervalMs: 100 }],
      stableMs: 30,
      rescanMs: 0,
      index: async () => new Map(),
      log: createLogger({ level: 'warn', format: 'json', destination: new PassThrough() }),
      onReady: (item: FileItem) => ready.add(item.relPath),
      onUnready: () => undefined,
    });
    cleanups.push(async () => {
      await src.close();
      await t.cleanup();
    });
    await src.watch();
    await src.live;
    for (let round = 0; round < ROUNDS; round++) {
      // rsync-like: make a nested folder and write into every level of it at once.
      // Another process writes, as rsync does, while this one's watcher reacts.
      const dirs = [`n${round}`, `n${round}/a`, `n${round}/a/b`, `n${round}/a/b/c`, `n${round}/x`];
      const expected = dirs.flatMap((d) => Array.from({ length: 10 }, (_, f) => `${d}/f${f}.txt`));
      await writer(root, dirs, round);
      // Well before any rescan (there is none): every file is ready within seconds.
      await waitFor(`round ${round}: all ${expected.length} files ready`, () => expected.every((p) => ready.has(p)), 10_000, 20).catch(
        (e: Error) => {
          throw new Error(`${e.message}; missing: ${expected.filter((p) => !ready.has(p)).join(', ')}`);
        },
      );
    }
    expect(ready.size).toBe(ROUNDS * 50);
  }, 120_000);
});
