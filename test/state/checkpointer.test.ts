import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/state/index.js';
import type { SqliteStore } from '../../src/state/sqlite-store.js';
import { newItem, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function store(checkpoint: { everyCommits?: number; idleMs?: number }): Promise<SqliteStore> {
  const tmp = tempDir();
  const s = await openSqliteStore({ dir: tmp.dir, checkpoint });
  cleanups.push(tmp.cleanup, () => s.close());
  return s;
}

/**
 * The WAL's frames and how many of them a checkpoint has copied into the database, from the
 * wal-index (the -shm file; https://www.sqlite.org/walformat.html#the_wal_index_file_format):
 * mxFrame is at byte 16 of the header, nBackfill at byte 96 (after the header's two copies), in
 * the machine's byte order.
 */
function walIndex(db: string): { mxFrame: number; nBackfill: number } {
  const shm = readFileSync(`${db}-shm`);
  const le = os.endianness() === 'LE';
  return { mxFrame: le ? shm.readUInt32LE(16) : shm.readUInt32BE(16), nBackfill: le ? shm.readUInt32LE(96) : shm.readUInt32BE(96) };
}

/** 600 deliveries leased and completed one by one: ~1200 commits, several WAL pages each. */
async function deliverAll(s: SqliteStore, between?: { after: number; run: () => void }): Promise<void> {
  const items = Array.from({ length: 600 }, (_, i) => newItem(`d${i % 10}/f${i}`, { ino: i + 1 }));
  await s.recordItems(items, ['t']);
  for (let i = 0; i < items.length; i++) {
    if (between?.after === i) between.run();
    const [d] = await s.lease('t', 1);
    await s.complete(d!.id, d!.generation, { remoteId: `r${i}`, remoteHash: 'h', bytesSent: 100 });
  }
}

/** Polls the wal-index until every frame is checkpointed, or 5 s pass; the last reading. */
async function settled(path: string): Promise<{ mxFrame: number; nBackfill: number }> {
  const deadline = Date.now() + 5000;
  let wal = walIndex(path);
  while (wal.nBackfill < wal.mxFrame && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    wal = walIndex(path);
  }
  return wal;
}

describe('WAL checkpoints on a worker thread (src/state/checkpointer.ts)', () => {
  it('the main connection never checkpoints once leasing started: the WAL grows past SQLite automatic 1000 pages while the worker waits', async () => {
    // The worker waits a minute: every checkpoint during the loop would be the main thread's.
    const s = await store({ everyCommits: 1_000_000, idleMs: 60_000 });
    await deliverAll(s);
    const wal = walIndex(s.path);
    expect(wal.mxFrame).toBeGreaterThan(1000);
    expect(wal.nBackfill).toBe(0);
  });

  it('the worker checkpoints every frame a moment after the last commits, and the journal reads back what was committed', async () => {
    const s = await store({ everyCommits: 100, idleMs: 50 });
    await deliverAll(s);
    const wal = await settled(s.path);
    expect(wal.mxFrame).toBeGreaterThan(0);
    expect(wal.nBackfill).toBe(wal.mxFrame);
    const counts = await s.counts();
    expect(counts).toEqual([expect.objectContaining({ target: 't', done: 600, pending: 0, inFlight: 0 })]);
  });

  it('a checkpoint a reader cut short is tried again after idleMs, with no commit since: the WAL ends checkpointed whole', async () => {
    const s = await store({ everyCommits: 100, idleMs: 50 });
    // A reader (another connection, as `status` or a second process would be) holds a snapshot
    // from before the last 300 deliveries' commits: no checkpoint can copy the frames after it.
    const reader = new Database(s.path, { readonly: true });
    cleanups.push(() => {
      reader.close();
    });
    await deliverAll(s, {
      after: 300,
      run: () => {
        reader.exec('BEGIN');
        reader.prepare('SELECT count(*) FROM deliveries').get();
      },
    });
    // The worker's checkpoints during and after the burst stop at the reader's snapshot.
    await new Promise((r) => setTimeout(r, 300));
    const cut = walIndex(s.path);
    expect(cut.nBackfill).toBeLessThan(cut.mxFrame);
    reader.exec('COMMIT');
    const wal = await settled(s.path);
    expect(wal.nBackfill).toBe(wal.mxFrame);
  });
});
