/**
 * recordItems throughput: batches of 1 item (one transaction per item) against batches of 100.
 * Prints items/s and delivery rows/s per batch size, each measured on a fresh database in a temp
 * dir, the same run giving the baseline. Compare the two lines, never against other machines.
 *
 *   npx tsc -p tsconfig.json; node dist/bench/state-record.js [items=20000] [targets=1]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openSqliteStore } from '../src/state/index.js';
import type { NewItem } from '../src/state/index.js';

const items = Number(process.argv[2] ?? 20_000);
const targetCount = Number(process.argv[3] ?? 1);
const targets = ['local', 'gdrive', 'dropbox', 'box', 'onedrive'].slice(0, Math.max(1, Math.min(5, targetCount)));

function makeItems(n: number): NewItem[] {
  return Array.from({ length: n }, (_, i) => ({
    item: {
      root: 'inbox',
      rootPath: '/srv/inbox',
      relPath: `dir${i % 100}/file-${i}.bin`,
      size: 4096,
      mtimeMs: 1_700_000_000_000 + i,
      ino: i,
    },
    remotePath: `dir${i % 100}/file-${i}.bin`,
  }));
}

async function run(batch: number): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stagecoach-bench-'));
  const store = await openSqliteStore({ dir });
  try {
    const all = makeItems(items);
    const t0 = performance.now();
    for (let i = 0; i < all.length; i += batch) await store.recordItems(all.slice(i, i + batch), targets);
    const s = (performance.now() - t0) / 1000;
    const rows = items * targets.length;
    console.log(
      `batch ${String(batch).padStart(3)}: ${items} items × ${targets.length} targets in ${s.toFixed(2)} s — ` +
        `${Math.round(items / s).toLocaleString('en')} items/s, ${Math.round(rows / s).toLocaleString('en')} delivery rows/s`,
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const batch of [1, 100]) await run(batch);
