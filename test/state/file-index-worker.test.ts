import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/state/index.js';
import { readFileIndexInWorker } from '../../src/state/file-index-worker.js';
import { INDEX_WORKER_MIN_FILES, type SqliteStore } from '../../src/state/sqlite-store.js';
import { newItem, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function store(): Promise<SqliteStore> {
  const tmp = tempDir();
  const s = await openSqliteStore({ dir: tmp.dir });
  cleanups.push(tmp.cleanup, () => s.close());
  return s;
}

describe('the journal index read on a worker thread', () => {
  it('gives the same map as the read on the main thread: sizes past 2^32, fractional mtimes, with and without ctime, odd names', async () => {
    const s = await store();
    await s.recordItems(
      [
        newItem('big', { size: 5 * 2 ** 40, mtimeMs: 1_712_345_678_901.1234, ino: 2 ** 40 + 3 }),
        newItem('sub/é ? %.txt', { size: 0, ctimeMs: 1_712_345_678_999 }),
        newItem('sub/deeper/x', { size: 7, ino: 1 }),
      ],
      ['local'],
    );
    await s.recordItems([newItem('other', { root: 'photos', rootPath: '/srv/photos' })], ['local']);
    const mainThread = await s.fileIndex('inbox');
    expect(mainThread.size).toBe(3);
    const worker = await readFileIndexInWorker(s.path, 'inbox', 5000);
    // Built without a FileStat object per row, it reads as the same map whichever way it is read.
    expect(new Map(worker)).toEqual(mainThread);
    expect(worker.size).toBe(3);
    for (const [k, v] of mainThread) {
      expect(worker.has(k)).toBe(true);
      expect(worker.get(k)).toEqual(v);
    }
    expect(worker.get('sub')).toBeUndefined();
    expect(worker.has('sub')).toBe(false);
    expect([...worker.keys()].sort()).toEqual([...mainThread.keys()].sort());
    expect(new Map([...worker.entries()])).toEqual(mainThread);
    expect([...worker.values()]).toEqual([...worker.keys()].map((k) => mainThread.get(k)));
    const seen: string[] = [];
    worker.forEach((v, k, m) => {
      expect(v).toEqual(mainThread.get(k));
      expect(m).toBe(worker);
      seen.push(k);
    });
    expect(seen).toEqual([...worker.keys()]);
    expect(() => worker.set('x', { size: 1, mtimeMs: 1, ino: 1 })).toThrow(/read-only/);
    expect(() => worker.delete('big')).toThrow(/read-only/);
    expect(worker.get('big')).toEqual(mainThread.get('big'));
    expect([...(await readFileIndexInWorker(s.path, 'photos', 5000)).keys()]).toEqual(['other']);
    expect((await readFileIndexInWorker(s.path, 'nope', 5000)).size).toBe(0);
  });

  it('a large root goes through the worker and comes back whole', async () => {
    const s = await store();
    const n = INDEX_WORKER_MIN_FILES + 10;
    const items = Array.from({ length: n }, (_, i) => newItem(`d${i % 100}/f-${i}`, { size: i, ino: i + 1, mtimeMs: 1_700_000_000_000 + i / 4 }));
    await s.recordItems(items, ['local']);
    await s.recordItems([newItem('small', { root: 'photos', rootPath: '/srv/photos' })], ['local']);
    // The worker answers on a later turn of the event loop; the main thread's read at once. The
    // count that decides stops at the threshold, and counts the root asked for only.
    const settledByNextTurn = async (p: Promise<unknown>) => {
      let settled = false;
      void p.then(() => (settled = true));
      await new Promise((r) => setImmediate(r));
      return settled;
    };
    const reading = s.fileIndex('inbox');
    expect(await settledByNextTurn(reading)).toBe(false);
    expect(await settledByNextTurn(s.fileIndex('photos'))).toBe(true);
    const index = await reading;
    expect(index.size).toBe(n);
    expect([...index.keys()].length).toBe(n);
    expect(index.get('d7/f-107')).toEqual({ size: 107, ino: 108, mtimeMs: 1_700_000_000_000 + 107 / 4 });
    expect(index.get(`d${(n - 1) % 100}/f-${n - 1}`)).toEqual({ size: n - 1, ino: n, mtimeMs: 1_700_000_000_000 + (n - 1) / 4 });
    // Looked up in the worker's hash table: every path finds its own row, in row order when
    // iterated; paths it does not hold (same length, one character off, a prefix) find none.
    const keys = [...index.keys()];
    expect(new Set(keys)).toEqual(new Set(items.map((it) => it.item.relPath)));
    for (let i = 0; i < n; i++) {
      const rel = `d${i % 100}/f-${i}`;
      expect(index.get(rel)?.size, rel).toBe(i);
      expect(index.has(`d${i % 100}/f-${i}x`) || index.has(`d${i % 100}/g-${i}`) || index.has(`d${i % 100}/f-`)).toBe(false);
    }
    expect([...index.values()].map((v) => v.size)).toEqual(keys.map((k) => index.get(k)!.size));
  });

  it('a journal that cannot be opened rejects with the reason', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    await expect(readFileIndexInWorker(path.join(tmp.dir, 'missing.db'), 'inbox', 5000)).rejects.toThrow(/cannot read the file index of .*missing\.db: .*(unable to open|does not exist)/i);
  });
});
