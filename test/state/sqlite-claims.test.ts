import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/state/index.js';
import { newItem, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('SQLite name claims (group commit)', () => {
  it('the claims asked for together are made before the next turn of the event loop, each its own name', async () => {
    const tmp = tempDir();
    const s = await openSqliteStore({ dir: tmp.dir });
    cleanups.push(tmp.cleanup, () => s.close());
    await s.recordItems([newItem('a'), newItem('b'), newItem('c')], ['t']);
    const order: string[] = [];
    // Scheduled first: a claim that waited for the next turn would settle after it.
    setImmediate(() => order.push('next turn'));
    const claim = (relPath: string, wanted: string) =>
      s.claimRemotePath({ target: 't', root: 'inbox', relPath, wanted, keyOf: (p) => p.toLowerCase(), alternative: (w, n) => `${w} (${n + 2})` });
    const results = await Promise.all([claim('a', 'Same'), claim('b', 'same'), claim('c', 'other')]);
    order.push('claimed');
    expect(order).toEqual(['claimed']);
    expect(results).toEqual([
      { remotePath: 'Same', takenBy: null },
      { remotePath: 'same (2)', takenBy: 'inbox/a' },
      { remotePath: 'other', takenBy: null },
    ]);
  });
});
