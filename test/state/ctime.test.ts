import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/state/index.js';
import type { SqliteStore } from '../../src/state/index.js';
import { newItem, tempDir } from './helpers.js';

// Issue 14.4: the journal keeps the ctime (migration 2) and a changed ctime alone is a new version.

let tmp: ReturnType<typeof tempDir>;
let store: SqliteStore;
beforeEach(async () => {
  tmp = tempDir();
  store = await openSqliteStore({ dir: tmp.dir });
});
afterEach(async () => {
  await store.close();
  tmp.cleanup();
});

const RESULT = { remoteId: 'r-1', remoteHash: 'h-1', bytesSent: 5 };

async function archiveOnce(): Promise<void> {
  const [d] = await store.lease('t', 10);
  await store.complete(d!.id, d!.generation, RESULT);
}

describe('the journal compares ctime', () => {
  it('a row with only the ctime changed is queued again; the same ctime is not', async () => {
    const v1 = newItem('a', { size: 5, mtimeMs: 1000, ino: 7, ctimeMs: 2000 });
    await store.recordItems([v1], ['t']);
    await archiveOnce();
    expect(await store.recordItems([v1], ['t'])).toEqual(new Set());
    expect((await store.fileIndex('inbox')).get('a')).toEqual({ size: 5, mtimeMs: 1000, ino: 7, ctimeMs: 2000 });
    const v2 = newItem('a', { size: 5, mtimeMs: 1000, ino: 7, ctimeMs: 3000 });
    expect(await store.recordItems([v2], ['t'])).toEqual(new Set(['t']));
    const [d] = await store.lease('t', 10);
    expect(d).toMatchObject({ relPath: 'a', generation: 2 });
  });

  it('a row written before the journal kept ctimes is not queued again for it, and learns its ctime', async () => {
    await store.recordItems([newItem('a', { size: 5, mtimeMs: 1000, ino: 7 })], ['t']);
    await archiveOnce();
    expect(await store.recordItems([newItem('a', { size: 5, mtimeMs: 1000, ino: 7, ctimeMs: 2000 })], ['t'])).toEqual(new Set());
    expect((await store.fileIndex('inbox')).get('a')).toEqual({ size: 5, mtimeMs: 1000, ino: 7, ctimeMs: 2000 });
  });
});
