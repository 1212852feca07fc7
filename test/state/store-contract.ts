/**
 * The Store contract suite: every journal (SQLite, PostgreSQL) runs these cases through
 * `storeContract(backend)` from its own test file. The describe blocks below are the body of that
 * function (kept at the left margin so the cases read as before).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Delivery, Store } from '../../src/state/index.js';
import { newItem } from './helpers.js';

/** One journal under test: a fresh, empty one per test. */
export interface StoreBackend {
  /** Sets up an empty journal; `open` may be called again (a second handle, or after close). */
  create(): Promise<JournalUnderTest>;
}

export interface JournalUnderTest {
  open(): Promise<Store>;
  /** A delivery row as stored, for columns the Store API never returns. */
  rawRow(id: number): Promise<Record<string, unknown>>;
  /** Removes the journal. */
  cleanup(): Promise<void>;
}

let journal: JournalUnderTest;
let store: Store;

const RESULT = { remoteId: 'r-1', remoteHash: 'h-1', bytesSent: 100 };

async function leaseOne(target: string): Promise<Delivery> {
  const [d, ...rest] = await store.lease(target, 10);
  expect(rest).toHaveLength(0);
  if (d === undefined) throw new Error(`nothing to lease for ${target}`);
  return d;
}

function rawRow(id: number): Promise<Record<string, unknown>> {
  return journal.rawRow(id);
}

async function countsOf(target: string) {
  return (await store.counts()).find((c) => c.target === target);
}

/** Registers the contract's cases against `backend`. */
export function storeContract(backend: StoreBackend): void {
beforeEach(async () => {
  journal = await backend.create();
  store = await journal.open();
});

afterEach(async () => {
  vi.useRealTimers();
  await store.close();
  await journal.cleanup();
});

describe('recordItems', () => {
  it('records one pending delivery per target and reports those targets', async () => {
    const fresh = await store.recordItems([newItem('a.txt'), newItem('b/é ? .txt', { remotePath: 'x/b.txt' })], [
      'local',
      'gdrive',
    ]);
    expect([...fresh].sort()).toEqual(['gdrive', 'local']);
    expect(await store.counts()).toEqual([
      { target: 'gdrive', pending: 2, inFlight: 0, done: 0, failed: 0, skipped: 0 },
      { target: 'local', pending: 2, inFlight: 0, done: 0, failed: 0, skipped: 0 },
    ]);
    const leased = await store.lease('local', 10);
    expect(leased).toEqual([
      {
        id: expect.any(Number),
        target: 'local',
        generation: 1,
        root: 'inbox',
        rootPath: '/srv/inbox',
        relPath: 'a.txt',
        remotePath: 'a.txt',
        size: 100,
        mtimeMs: 1_700_000_000_000.25,
        ino: 42,
        dev: null,
        attempts: 0,
        resumeHandle: null,
        lastError: null,
      },
      expect.objectContaining({ relPath: 'b/é ? .txt', remotePath: 'x/b.txt', generation: 1 }),
    ]);
  });

  it('keeps stat values exactly: fractional mtime, inode past 2^53', async () => {
    const ino = 2 ** 60 + 2 ** 10;
    await store.recordItems([newItem('big', { ino, mtimeMs: 1_712_345_678_901.123_4, size: 5 * 2 ** 40 })], ['local']);
    const d = await leaseOne('local');
    expect([d.ino, d.mtimeMs, d.size]).toEqual([ino, 1_712_345_678_901.123_4, 5 * 2 ** 40]);
    expect((await store.fileIndex('inbox')).get('big')).toEqual({ ino, mtimeMs: 1_712_345_678_901.123_4, size: 5 * 2 ** 40 });
  });

  it('is idempotent: re-recording an unchanged file changes nothing, whatever the status', async () => {
    await store.recordItems([newItem('a'), newItem('b')], ['local']);
    const [a] = await store.lease('local', 1);
    await store.complete(a!.id, a!.generation, RESULT);
    const before = await store.counts();

    expect(await store.recordItems([newItem('a'), newItem('b')], ['local'])).toEqual(new Set());
    expect(await store.counts()).toEqual(before);
    expect(before).toEqual([{ target: 'local', pending: 1, inFlight: 0, done: 1, failed: 0, skipped: 0 }]);
    expect((await leaseOne('local')).generation).toBe(1);
  });

  it.each([
    ['size', { size: 101 }],
    ['mtime', { mtimeMs: 1_700_000_000_001 }],
    ['inode', { ino: 43 }],
  ])('re-queues a done delivery when the %s changed: generation + 1, attempts and error reset', async (_, change) => {
    await store.recordItems([newItem('a')], ['local']);
    let d = await leaseOne('local');
    await store.noteAttempt(d.id, 'timeout');
    await store.saveResume(d.id, 'session-1');
    await store.complete(d.id, 1, RESULT);

    expect(await store.recordItems([newItem('a', change)], ['local'])).toEqual(new Set(['local']));
    d = await leaseOne('local');
    expect(d).toMatchObject({ generation: 2, attempts: 0, lastError: null, resumeHandle: null, ...change });
    expect((await store.fileIndex('inbox')).get('a')).toMatchObject(change);
  });

  it('re-queues when only the remote path changed', async () => {
    await store.recordItems([newItem('a')], ['local']);
    const d = await leaseOne('local');
    await store.complete(d.id, 1, RESULT);
    expect(await store.recordItems([newItem('a', { remotePath: '2024/a' })], ['local'])).toEqual(new Set(['local']));
    expect(await leaseOne('local')).toMatchObject({ generation: 2, remotePath: '2024/a' });
  });

  it('re-queues failed and skipped deliveries of a changed file, and pending ones stay pending', async () => {
    await store.recordItems([newItem('f'), newItem('s'), newItem('p')], ['local']);
    const [f, s] = await store.lease('local', 2);
    await store.fail(f!.id, 1, 'bad name');
    await store.skip(s!.id, 1, 'too big');
    await store.recordItems([newItem('f', { size: 1 }), newItem('s', { size: 1 }), newItem('p', { size: 1 })], ['local']);
    const again = await store.lease('local', 10);
    expect(again.map((d) => [d.relPath, d.generation, d.lastError])).toEqual([
      ['f', 2, null],
      ['s', 2, null],
      ['p', 2, null],
    ]);
  });

  it('adds a delivery for a new target of a known file without touching the others', async () => {
    await store.recordItems([newItem('a')], ['local']);
    const d = await leaseOne('local');
    await store.complete(d.id, 1, RESULT);
    expect(await store.recordItems([newItem('a')], ['local', 'box', 'box'])).toEqual(new Set(['box']));
    expect(await store.counts()).toEqual([
      { target: 'box', pending: 1, inFlight: 0, done: 0, failed: 0, skipped: 0 },
      { target: 'local', pending: 0, inFlight: 0, done: 1, failed: 0, skipped: 0 },
    ]);
  });

  it('serves every file of a root from its latest recorded path', async () => {
    await store.recordItems([newItem('a')], ['local']);
    await store.recordItems([newItem('b', { rootPath: '/mnt/moved' })], ['local']);
    expect((await store.lease('local', 10)).map((d) => d.rootPath)).toEqual(['/mnt/moved', '/mnt/moved']);
    await store.recordItems([newItem('c', { rootPath: '/mnt/1' }), newItem('d', { rootPath: '/mnt/2' })], ['box']);
    expect((await store.lease('box', 10)).map((d) => d.rootPath)).toEqual(['/mnt/2', '/mnt/2']);
  });

  it('applies a batch that holds the same file twice in order', async () => {
    const fresh = await store.recordItems([newItem('a'), newItem('a', { size: 7 })], ['local']);
    expect(fresh).toEqual(new Set(['local']));
    expect(await leaseOne('local')).toMatchObject({ generation: 2, size: 7 });
  });

  it('is all or nothing: a rejected row rolls back the whole batch', async () => {
    const items = Array.from({ length: 500 }, (_, i) => newItem(`f${i}`));
    items.push(newItem('bad', { size: -1 }));
    await expect(store.recordItems(items, ['local', 'box'])).rejects.toThrow(/check constraint/i);
    expect(await store.counts()).toEqual([]);
    expect((await store.fileIndex('inbox')).size).toBe(0);
  });

  it('records 10,000 items × 5 targets in one call', async () => {
    const items = Array.from({ length: 10_000 }, (_, i) => newItem(`dir${i % 100}/file-${i}.bin`, { ino: i }));
    const targets = ['local', 'gdrive', 'dropbox', 'box', 'onedrive'];
    expect(await store.recordItems(items, targets)).toEqual(new Set(targets));
    const counts = await store.counts();
    expect(counts.map((c) => c.pending)).toEqual([10_000, 10_000, 10_000, 10_000, 10_000]);
  });
});

describe('lease', () => {
  it('returns pending deliveries of one target, oldest first, at most n, and moves them to in_flight', async () => {
    await store.recordItems(['a', 'b', 'c'].map((p) => newItem(p)), ['local', 'box']);
    const first = await store.lease('local', 2);
    expect(first.map((d) => d.relPath)).toEqual(['a', 'b']);
    expect(first.every((d) => d.target === 'local')).toBe(true);
    expect(await countsOf('local')).toMatchObject({ pending: 1, inFlight: 2 });
    expect(await countsOf('box')).toMatchObject({ pending: 3, inFlight: 0 });
    expect((await store.lease('local', 5)).map((d) => d.relPath)).toEqual(['c']);
    expect(await store.lease('local', 5)).toEqual([]);
    expect(await store.lease('nobody', 5)).toEqual([]);
  });

  it('never returns the same delivery twice while it is leased', async () => {
    await store.recordItems(Array.from({ length: 50 }, (_, i) => newItem(`f${i}`)), ['local']);
    const other = await journal.open();
    try {
      const seen: number[] = [];
      for (let round = 0; round < 20; round++) {
        seen.push(...(await store.lease('local', 3)).map((d) => d.id));
        seen.push(...(await other.lease('local', 4)).map((d) => d.id));
      }
      expect(seen).toHaveLength(50);
      expect(new Set(seen).size).toBe(50);
    } finally {
      await other.close();
    }
  });

  it('returns nothing for n = 0 and rejects a bad n', async () => {
    await store.recordItems([newItem('a')], ['local']);
    expect(await store.lease('local', 0)).toEqual([]);
    await expect(store.lease('local', -1)).rejects.toMatchObject({ code: 'state.invalid-argument' });
    await expect(store.lease('local', 1.5)).rejects.toMatchObject({ code: 'state.invalid-argument' });
    expect(await countsOf('local')).toMatchObject({ pending: 1, inFlight: 0 });
  });
});

describe('hasWork', () => {
  it('is true while a delivery of the target is pending or in flight, false once all are closed', async () => {
    expect(await store.hasWork('local')).toBe(false);
    await store.recordItems([newItem('a'), newItem('b')], ['local', 'box']);
    expect(await store.hasWork('local')).toBe(true);
    const [a, b] = await store.lease('local', 2);
    expect(await store.hasWork('local')).toBe(true); // both in flight
    await store.complete(a!.id, a!.generation, { remoteId: 'x', remoteHash: 'h', bytesSent: 1 });
    expect(await store.hasWork('local')).toBe(true);
    await store.fail(b!.id, b!.generation, 'no');
    expect(await store.hasWork('local')).toBe(false);
    expect(await store.hasWork('box')).toBe(true);
    expect(await store.hasWork('nobody')).toBe(false);
  });
});

describe('the generation rule', () => {
  it('a file changed during upload: stays in flight, the stale complete re-queues it, the next lease sends the new version', async () => {
    await store.recordItems([newItem('a')], ['local']);
    const old = await leaseOne('local');
    expect(old.generation).toBe(1);
    await store.noteAttempt(old.id, 'slow');
    await store.saveResume(old.id, 'session-of-generation-1');

    expect(await store.recordItems([newItem('a', { size: 200 })], ['local'])).toEqual(new Set());
    expect(await countsOf('local')).toMatchObject({ pending: 0, inFlight: 1 });
    expect(await store.lease('local', 10)).toEqual([]);

    await store.complete(old.id, old.generation, RESULT);
    expect(await countsOf('local')).toMatchObject({ pending: 1, inFlight: 0, done: 0 });

    const next = await leaseOne('local');
    expect(next).toMatchObject({ id: old.id, generation: 2, size: 200, attempts: 0, resumeHandle: null, lastError: null });
    await store.complete(next.id, next.generation, { ...RESULT, bytesSent: 200 });
    expect(await countsOf('local')).toMatchObject({ pending: 0, inFlight: 0, done: 1 });
  });

  it.each(['fail', 'skip'] as const)('a stale %s re-queues instead of closing the delivery', async (method) => {
    await store.recordItems([newItem('a')], ['local']);
    const old = await leaseOne('local');
    await store.recordItems([newItem('a', { size: 200 })], ['local']);
    await store[method](old.id, old.generation, 'boom');
    expect(await countsOf('local')).toMatchObject({ pending: 1, inFlight: 0, failed: 0, skipped: 0 });
    expect(await leaseOne('local')).toMatchObject({ generation: 2, lastError: null });
  });

  it('a stale complete does not disturb a delivery no longer in flight', async () => {
    await store.recordItems([newItem('a')], ['local']);
    const old = await leaseOne('local');
    await store.recordItems([newItem('a', { size: 200 })], ['local']);
    await store.complete(old.id, 1, RESULT);
    const next = await leaseOne('local');
    await store.complete(next.id, 2, RESULT);
    await store.complete(old.id, 1, RESULT);
    expect(await countsOf('local')).toMatchObject({ pending: 0, done: 1 });
  });
});

describe('complete, fail, skip', () => {
  it('complete stores the result and clears the resume handle and last error', async () => {
    await store.recordItems([newItem('a')], ['local']);
    const d = await leaseOne('local');
    await store.noteAttempt(d.id, 'reset by peer');
    await store.saveResume(d.id, 'session-1');
    await store.complete(d.id, d.generation, { remoteId: 'id-9', remoteHash: 'sha-9', bytesSent: 99 });
    const [rec] = await store.recent({ status: 'done', limit: 5 });
    expect(rec).toMatchObject({ id: d.id, status: 'done', remoteId: 'id-9', remoteHash: 'sha-9', lastError: null, attempts: 1 });
    expect(await rawRow(d.id)).toMatchObject({ bytes_sent: 99, resume_handle: null });
  });

  it('completions asked for together commit together: each settles once written, an unknown id fails alone', async () => {
    await store.recordItems(Array.from({ length: 50 }, (_, i) => newItem(`f${i}`)), ['local']);
    const leased = await store.lease('local', 50);
    const settled = await Promise.allSettled([
      ...leased.map((d) => store.complete(d.id, d.generation, RESULT)),
      store.complete(999_999, 1, RESULT),
    ]);
    expect(settled.slice(0, 50).every((s) => s.status === 'fulfilled')).toBe(true);
    expect(settled[50]).toMatchObject({ status: 'rejected', reason: { code: 'state.unknown-delivery' } });
    expect(await countsOf('local')).toMatchObject({ done: 50, inFlight: 0 });
  });

  it('completions not yet committed when the store closes are committed by close', async () => {
    await store.recordItems([newItem('a'), newItem('b')], ['local']);
    const leased = await store.lease('local', 2);
    const pending = leased.map((d) => store.complete(d.id, d.generation, RESULT));
    await store.close();
    await Promise.all(pending);
    store = await journal.open();
    expect(await countsOf('local')).toMatchObject({ done: 2, inFlight: 0 });
  });

  it('fail marks failed with the reason; retryFailed puts it back with attempts 0 and no resume handle', async () => {
    await store.recordItems([newItem('a'), newItem('b')], ['local', 'box']);
    const [a, b] = await store.lease('local', 2);
    await store.noteAttempt(a!.id, 'try 1');
    await store.saveResume(a!.id, 'session');
    await store.fail(a!.id, a!.generation, 'name cannot be mapped');
    await store.fail(b!.id, b!.generation, 'quota');
    const boxD = await store.lease('box', 1);
    await store.fail(boxD[0]!.id, 1, 'box says no');
    expect(await countsOf('local')).toMatchObject({ failed: 2, inFlight: 0 });
    const failed = await store.recent({ status: 'failed', target: 'local', limit: 10 });
    expect(failed.map((r) => [r.relPath, r.lastError]).sort()).toEqual([
      ['a', 'name cannot be mapped'],
      ['b', 'quota'],
    ]);

    expect(await store.retryFailed('local')).toBe(2);
    expect(await countsOf('local')).toMatchObject({ failed: 0, pending: 2 });
    expect(await countsOf('box')).toMatchObject({ failed: 1 });
    const again = await store.lease('local', 5);
    expect(again.find((d) => d.id === a!.id)).toMatchObject({ attempts: 0, resumeHandle: null, lastError: 'name cannot be mapped' });
    expect(await store.retryFailed('local')).toBe(0);
  });

  it('skip marks skipped with the reason', async () => {
    await store.recordItems([newItem('a')], ['local']);
    const d = await leaseOne('local');
    await store.skip(d.id, d.generation, 'filtered by size');
    expect(await store.recent({ status: 'skipped', limit: 1 })).toMatchObject([{ id: d.id, lastError: 'filtered by size' }]);
    expect(await countsOf('local')).toMatchObject({ skipped: 1, inFlight: 0 });
  });

  it('fail or skip after a complete of the same generation leaves it done', async () => {
    await store.recordItems([newItem('a')], ['local']);
    const d = await leaseOne('local');
    await store.complete(d.id, d.generation, RESULT);
    await store.fail(d.id, d.generation, 'late error');
    await store.skip(d.id, d.generation, 'late skip');
    expect(await countsOf('local')).toMatchObject({ done: 1, failed: 0, skipped: 0 });
  });

  it('every id-based method rejects an unknown id with state.unknown-delivery', async () => {
    const calls = [
      () => store.complete(999, 1, RESULT),
      () => store.fail(999, 1, 'x'),
      () => store.skip(999, 1, 'x'),
      () => store.release(999, 'x'),
      () => store.noteAttempt(999, 'x'),
      () => store.saveResume(999, 'x'),
    ];
    for (const call of calls) await expect(call()).rejects.toMatchObject({ code: 'state.unknown-delivery' });
  });
});

describe('release, noteAttempt, saveResume', () => {
  it('release puts an in-flight delivery back to pending with the reason, keeping attempts and resume handle', async () => {
    await store.recordItems([newItem('a')], ['local']);
    let d = await leaseOne('local');
    await store.noteAttempt(d.id, 'e1');
    await store.noteAttempt(d.id, 'e2');
    await store.saveResume(d.id, 'session-7');
    await store.release(d.id, 'shutting down');
    expect(await countsOf('local')).toMatchObject({ pending: 1, inFlight: 0 });
    d = await leaseOne('local');
    expect(d).toMatchObject({ attempts: 2, lastError: 'shutting down', resumeHandle: 'session-7', generation: 1 });

    await store.saveResume(d.id, null);
    // Leased ahead and never sent: the error of the attempt before stays (PutRequest.firstPut).
    await store.release(d.id, null);
    expect(await leaseOne('local')).toMatchObject({ resumeHandle: null, lastError: 'shutting down' });
  });

  it('release leaves a delivery that is no longer in flight alone', async () => {
    await store.recordItems([newItem('a'), newItem('b')], ['local']);
    const [a, b] = await store.lease('local', 2);
    await store.complete(a!.id, 1, RESULT);
    await store.resetInFlight('local');
    await store.release(a!.id, 'late');
    await store.release(b!.id, 'late');
    expect(await countsOf('local')).toMatchObject({ done: 1, pending: 1 });
    expect(await leaseOne('local')).toMatchObject({ id: b!.id, lastError: null });
  });
});

describe('resetInFlight', () => {
  it('resets one target or all, and returns how many', async () => {
    await store.recordItems(['a', 'b', 'c'].map((p) => newItem(p)), ['local', 'box', 'gdrive']);
    await store.lease('local', 2);
    await store.lease('box', 3);
    await store.lease('gdrive', 1);
    const done = await store.lease('gdrive', 1);
    await store.complete(done[0]!.id, 1, RESULT);

    expect(await store.resetInFlight('box')).toBe(3);
    expect(await countsOf('box')).toMatchObject({ pending: 3, inFlight: 0 });
    expect(await countsOf('local')).toMatchObject({ pending: 1, inFlight: 2 });

    expect(await store.resetInFlight()).toBe(3);
    expect((await store.counts()).map((c) => [c.target, c.pending, c.inFlight, c.done])).toEqual([
      ['box', 3, 0, 0],
      ['gdrive', 2, 0, 1],
      ['local', 3, 0, 0],
    ]);
    expect(await store.resetInFlight()).toBe(0);
  });
});

describe('counts and health', () => {
  it('includes targets known only from health, with zeros', async () => {
    expect(await store.counts()).toEqual([]);
    await store.setHealth({ target: 'onedrive', status: 'down', reason: 'token revoked', since: 5, retryAt: 60_005 });
    await store.recordItems([newItem('a')], ['box']);
    expect(await store.counts()).toEqual([
      { target: 'box', pending: 1, inFlight: 0, done: 0, failed: 0, skipped: 0 },
      { target: 'onedrive', pending: 0, inFlight: 0, done: 0, failed: 0, skipped: 0 },
    ]);
  });

  it('setHealth replaces the record; health lists all', async () => {
    await store.setHealth({ target: 'box', status: 'down', reason: '429 storm', since: 10, retryAt: 70 });
    await store.setHealth({ target: 'box', status: 'up', reason: null, since: 80, retryAt: null });
    await store.setHealth({ target: 'a-local', status: 'up', reason: null, since: 1, retryAt: null });
    expect(await store.health()).toEqual([
      { target: 'a-local', status: 'up', reason: null, since: 1, retryAt: null },
      { target: 'box', status: 'up', reason: null, since: 80, retryAt: null },
    ]);
  });
});

describe('recent', () => {
  it('newest first by updated time, then by id; filtered by status and target; limited', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1_000);
    await store.recordItems(['a', 'b', 'c', 'd'].map((p) => newItem(p)), ['local', 'box']);
    const [a, b, c, d] = await store.lease('local', 4);
    vi.setSystemTime(2_000);
    await store.complete(b!.id, 1, RESULT);
    await store.complete(c!.id, 1, RESULT);
    vi.setSystemTime(3_000);
    await store.complete(a!.id, 1, RESULT);
    vi.setSystemTime(1_500);
    await store.complete(d!.id, 1, RESULT);

    const done = await store.recent({ status: 'done', limit: 10 });
    expect(done.map((r) => [r.relPath, r.updatedAt])).toEqual([
      ['a', 3_000],
      ['c', 2_000],
      ['b', 2_000],
      ['d', 1_500],
    ]);
    expect((await store.recent({ status: 'done', limit: 2 })).map((r) => r.relPath)).toEqual(['a', 'c']);
    expect(await store.recent({ status: 'done', target: 'box', limit: 10 })).toEqual([]);
    const pendingBox = await store.recent({ status: 'pending', target: 'box', limit: 10 });
    expect(pendingBox).toHaveLength(4);
    expect(pendingBox[0]).toEqual({
      id: expect.any(Number),
      target: 'box',
      root: 'inbox',
      relPath: 'd',
      remotePath: 'd',
      size: 100,
      status: 'pending',
      attempts: 0,
      lastError: null,
      remoteId: null,
      remoteHash: null,
      updatedAt: 1_000,
    });
  });

  it('rejects a bad status or limit', async () => {
    await expect(store.recent({ status: 'lost' as never, limit: 1 })).rejects.toMatchObject({ code: 'state.invalid-argument' });
    await expect(store.recent({ status: 'done', limit: -1 })).rejects.toMatchObject({ code: 'state.invalid-argument' });
  });
});

// Issue 14.4: the journal keeps the ctime, and a changed ctime alone is a new version.
describe('the journal compares ctime', () => {
  async function archiveOnce(): Promise<void> {
    const [d] = await store.lease('t', 10);
    await store.complete(d!.id, d!.generation, { ...RESULT, bytesSent: 5 });
  }

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

describe('raw names', () => {
  it('a path that is not valid UTF-8 comes back from lease as the bytes recorded', async () => {
    const raw = Buffer.from([0x64, 0x2f, 0x66, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]);
    await store.recordItems([newItem('d/f%FF%FE.bin', { rawRelPath: raw }), newItem('plain')], ['local']);
    const leased = await store.lease('local', 10);
    expect(leased[0]!.rawRelPath).toEqual(raw);
    expect(leased[1]!.rawRelPath).toBeUndefined();
  });
});

describe('search', () => {
  it('finds every delivery of the files whose path contains the query, ASCII case ignored, % and _ literal', async () => {
    await store.recordItems([newItem('Photos/B.jpg'), newItem('docs/100%_b.txt'), newItem('docs/1000xb.txt'), newItem('zz')], ['local', 'box']);
    const hits = await store.search!({ query: 'b', limit: 10 });
    expect(hits.map((r) => [r.relPath, r.target])).toEqual([
      ['Photos/B.jpg', 'box'],
      ['Photos/B.jpg', 'local'],
      ['docs/1000xb.txt', 'box'],
      ['docs/1000xb.txt', 'local'],
      ['docs/100%_b.txt', 'box'],
      ['docs/100%_b.txt', 'local'],
    ].sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : a[1]! < b[1]! ? -1 : 1)));
    expect((await store.search!({ query: '%_', limit: 10 })).map((r) => r.relPath)).toEqual(['docs/100%_b.txt', 'docs/100%_b.txt']);
    expect((await store.search!({ query: 'b', limit: 1 })).map((r) => r.relPath)).toEqual(['Photos/B.jpg', 'Photos/B.jpg']);
  });
});

describe('fileIndex', () => {
  it('maps every recorded path of one root to its latest stat', async () => {
    await store.recordItems(
      [newItem('a', { size: 1, mtimeMs: 10, ino: 100 }), newItem('sub/b', { size: 2, mtimeMs: 20, ino: 200 })],
      ['local'],
    );
    await store.recordItems([newItem('x', { root: 'photos', rootPath: '/srv/photos' })], ['local']);
    await store.recordItems([newItem('a', { size: 3, mtimeMs: 30, ino: 100 })], ['local']);
    expect(await store.fileIndex('inbox')).toEqual(
      new Map([
        ['a', { size: 3, mtimeMs: 30, ino: 100 }],
        ['sub/b', { size: 2, mtimeMs: 20, ino: 200 }],
      ]),
    );
    expect([...(await store.fileIndex('photos')).keys()]).toEqual(['x']);
    expect((await store.fileIndex('nope')).size).toBe(0);
  });
});

describe('close', () => {
  it('is idempotent, and the store refuses work afterwards', async () => {
    const p1 = store.close();
    const p2 = store.close();
    expect(p2).toBe(p1);
    await p1;
    await expect(store.counts()).rejects.toMatchObject({ code: 'state.closed' });
    await expect(store.recordItems([newItem('a')], ['local'])).rejects.toMatchObject({ code: 'state.closed' });
  });

  it('keeps the data across close and reopen', async () => {
    await store.recordItems([newItem('a')], ['local']);
    const d = await leaseOne('local');
    await store.complete(d.id, 1, RESULT);
    await store.setHealth({ target: 'local', status: 'up', reason: null, since: 1, retryAt: null });
    await store.close();
    store = await journal.open();
    expect(await store.counts()).toEqual([{ target: 'local', pending: 0, inFlight: 0, done: 1, failed: 0, skipped: 0 }]);
    expect(await store.health()).toHaveLength(1);
    expect((await store.fileIndex('inbox')).has('a')).toBe(true);
  });
});

describe('claimRemotePath', () => {
  const claim = (relPath: string, wanted: string, rename = true) =>
    store.claimRemotePath({
      target: 'dropbox',
      root: 'inbox',
      relPath,
      wanted,
      keyOf: (p) => p.normalize('NFC').toLowerCase(),
      ...(rename ? { alternative: (w: string, n: number) => `${w}~${relPath.length}${n > 0 ? `-${n}` : ''}` } : {}),
    });

  it('the first file owns a name; a second one with the same key gets an alternative, stable across calls; renamed lists it', async () => {
    expect(await claim('Case.txt', 'Case.txt')).toEqual({ remotePath: 'Case.txt', takenBy: null });
    expect(await claim('Case.txt', 'Case.txt')).toEqual({ remotePath: 'Case.txt', takenBy: null });
    expect(await claim('case.txt', 'case.txt')).toEqual({ remotePath: 'case.txt~8', takenBy: 'inbox/Case.txt' });
    expect(await claim('case.txt', 'case.txt')).toEqual({ remotePath: 'case.txt~8', takenBy: 'inbox/Case.txt' });
    // Another file that maps to the same alternative steps past it.
    expect(await claim('CASE.txt', 'CASE.txt')).toEqual({ remotePath: 'CASE.txt~8-1', takenBy: 'inbox/Case.txt' });
    expect((await store.renamed(10)).map((r) => [r.relPath, r.remotePath])).toEqual([
      ['CASE.txt', 'CASE.txt~8-1'],
      ['case.txt', 'case.txt~8'],
    ]);
  });

  it('without an alternative a taken name is only reported; a file that changes its wanted name frees the old one', async () => {
    await claim('a.txt', 'old/a.txt');
    expect(await claim('b.txt', 'OLD/A.TXT', false)).toEqual({ remotePath: 'OLD/A.TXT', takenBy: 'inbox/a.txt' });
    expect(await store.renamed(10)).toEqual([]);
    await claim('a.txt', 'new/a.txt');
    expect(await claim('b.txt', 'OLD/A.TXT', false)).toEqual({ remotePath: 'OLD/A.TXT', takenBy: null });
  });

  it('claims asked for together: one that finds no free name fails alone, keeping the name it owned; the others are made', async () => {
    await claim('a.txt', 'a.txt');
    await claim('b.txt', 'b.txt');
    // a.txt now wants b.txt's name, and every alternative is taken: nothing of its claim stays
    // (it still owns a.txt); c.txt, claimed in the same turn, gets its name.
    const [a, c] = await Promise.allSettled([
      store.claimRemotePath({ target: 'dropbox', root: 'inbox', relPath: 'a.txt', wanted: 'b.txt', keyOf: (p) => p, alternative: () => 'b.txt' }),
      claim('c.txt', 'c.txt'),
    ]);
    expect(a.status === 'rejected' && (a.reason as { code?: string }).code).toBe('state.names-exhausted');
    expect(c).toEqual({ status: 'fulfilled', value: { remotePath: 'c.txt', takenBy: null } });
    expect(await claim('d.txt', 'A.TXT', false)).toEqual({ remotePath: 'A.TXT', takenBy: 'inbox/a.txt' });
    expect(await claim('a.txt', 'a.txt')).toEqual({ remotePath: 'a.txt', takenBy: null });
  });

  it('a lease with claims: each delivery it claimed for owns the name claimRemotePath gives; one whose claim fails comes back to be claimed by its uploader', async () => {
    await claim('other.txt', 'b.txt');
    await store.recordItems([newItem('Case.txt'), newItem('case.txt'), newItem('b.txt'), newItem('x.txt')], ['dropbox']);
    const claims = {
      keyOf: (p: string) => p.normalize('NFC').toLowerCase(),
      // b.txt's every alternative is taken: its claim fails (names exhausted), the lease stands.
      alternative: (w: string, owner: string, n: number) => (w === 'b.txt' ? 'b.txt' : `${w}~${owner.length - 'inbox/'.length}${n > 0 ? `-${n}` : ''}`),
    };
    const leased = await store.lease('dropbox', 10, claims);
    expect(leased.map((d) => d.relPath)).toEqual(['Case.txt', 'case.txt', 'b.txt', 'x.txt']);
    expect(leased.find((d) => d.relPath === 'b.txt')!.claim).toBeUndefined();
    // Every store claims with the lease (SQLite in its transaction, PostgreSQL right after it), in
    // lease order (the older of two names that compare equal keeps it); what it claimed is what
    // claimRemotePath now gives those files.
    const claimed = leased.filter((d) => d.relPath !== 'b.txt');
    const now = await Promise.all(claimed.map((d) => claim(d.relPath, d.remotePath)));
    expect(now).toEqual([
      { remotePath: 'Case.txt', takenBy: null },
      { remotePath: 'case.txt~8', takenBy: 'inbox/Case.txt' },
      { remotePath: 'x.txt', takenBy: null },
    ]);
    expect(claimed.map((d) => d.claim)).toEqual(now);
  });

  it('a lease whose target refuses a name (its nameKey throws) still leases it, unclaimed, and claims the rest', async () => {
    await store.recordItems([newItem('ok.txt'), newItem('bad..txt'), newItem('ok2.txt')], ['dropbox']);
    const claims = {
      keyOf: (p: string) => {
        if (p.includes('..')) throw new Error(`refused: ${p}`);
        return p.toLowerCase();
      },
    };
    const leased = await store.lease('dropbox', 10, claims);
    expect(leased.map((d) => [d.relPath, d.claim])).toEqual([
      ['ok.txt', { remotePath: 'ok.txt', takenBy: null }],
      ['bad..txt', undefined],
      ['ok2.txt', { remotePath: 'ok2.txt', takenBy: null }],
    ]);
    expect(await countsOf('dropbox')).toMatchObject({ inFlight: 3 });
  });
});
}
