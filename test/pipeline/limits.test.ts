import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FileItem } from '../../src/archive/item.js';
import { deliver } from '../../src/pipeline/deliver.js';
import { TokenBucket } from '../../src/retry/rate-limit.js';
import { openSqliteStore } from '../../src/state/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir } from '../helpers/fs.js';
import { createScriptedTarget } from './scripted-target.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(n: number, size: number) {
  const t = await tempDir();
  const store = await openSqliteStore({ dir: path.join(t.dir, 'state') });
  cleanups.push(async () => {
    await store.close();
    await t.cleanup();
  });
  const items: FileItem[] = [];
  for (let i = 0; i < n; i++) {
    const relPath = `f${i}.bin`;
    await writeFile(path.join(t.dir, relPath), Buffer.alloc(size, i));
    const { statSync } = await import('node:fs');
    const st = statSync(path.join(t.dir, relPath));
    items.push({ root: 'r', rootPath: t.dir, relPath, size, mtimeMs: Math.floor(st.mtimeMs), ino: st.ino });
  }
  await store.recordItems(items.map((item) => ({ item, remotePath: item.relPath })), ['cloud']);
  const leased = await store.lease('cloud', n);
  const target = createScriptedTarget('cloud');
  const starts: number[] = [];
  target.script = () => {
    starts.push(Date.now());
    return 'ok';
  };
  const ctx = { target, store, retry: { retries: 0, minDelayMs: 1, maxDelayMs: 1 }, log: createLogger({ level: 'error', format: 'json' }), signal: new AbortController().signal };
  return { leased, ctx, starts, store };
}

describe('per-target limits', () => {
  // Real timers with lower bounds only: the bucket can never let work through early, so these
  // cannot flake, and without the limit the same work takes a few milliseconds. (The bucket's
  // exact schedule is pinned with fake timers in test/retry/rate-limit.test.ts.)
  it('requestsPerSecond paces the uploads started', async () => {
    const { leased, ctx, starts, store } = await setup(4, 10);
    const limits = { requests: new TokenBucket(20, 1) }; // one budget for the target
    const before = Date.now();
    const all = await Promise.all(leased.map((d) => deliver(d, { ...ctx, limits })));
    expect(all).toEqual(['done', 'done', 'done', 'done']);
    // 20 per second with a burst of one: the i-th start cannot come before i × 50 ms after the
    // bucket's first grant, itself not before `before`. Measured from there, not from the first
    // start: a start recorded late by a busy event loop (its grant came earlier) may be followed
    // by one sooner than 50 ms, which the bucket rightly allows.
    starts.sort((a, b) => a - b);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - before).toBeGreaterThanOrEqual(i * 50 - 5);
    expect((await store.counts())[0]).toMatchObject({ done: 4 });
  });

  it('bytesPerSecond paces the bytes read for the target, and every byte arrives', async () => {
    const { leased, ctx } = await setup(1, 300_000);
    const t0 = Date.now();
    // 1 MB/s with a 100 kB burst: 300 kB cannot take less than 200 ms.
    expect(await deliver(leased[0]!, { ...ctx, limits: { bytes: new TokenBucket(1_000_000, 100_000) } })).toBe('done');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(195);
    expect((await ctx.target.memory.readBack('f0.bin'))?.length).toBe(300_000);
  });
});
