import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/state/index.js';
import { DROP_OWNED_SQL, OWNED_BY_SQL } from '../../src/state/sqlite-store.js';
import { newItem, tempDir } from './helpers.js';
import { storeContract } from './store-contract.js';

describe('the Store contract on SQLite', () => {
  storeContract({
    async create() {
      const tmp = tempDir();
      return {
        open: () => openSqliteStore({ dir: tmp.dir }),
        async rawRow(id) {
          const db = new Database(`${tmp.dir}/stagecoach.db`, { readonly: true });
          try {
            return db.prepare('SELECT * FROM deliveries WHERE id = ?').get(id) as Record<string, unknown>;
          } finally {
            db.close();
          }
        },
        async cleanup() {
          tmp.cleanup();
        },
      };
    },
  });
});

describe('the SQLite journal claims with the lease', () => {
  it('each leased delivery comes back with its claim, made in the lease\'s transaction', async () => {
    const tmp = tempDir();
    const store = await openSqliteStore({ dir: tmp.dir });
    try {
      await store.recordItems([newItem('A.txt'), newItem('a.txt')], ['dropbox']);
      const leased = await store.lease('dropbox', 2, { keyOf: (p) => p.toLowerCase(), alternative: (w, _owner, n) => `${w}~${n}` });
      expect(leased.map((d) => d.claim)).toEqual([
        { remotePath: 'A.txt', takenBy: null },
        { remotePath: 'a.txt~0', takenBy: 'inbox/A.txt' },
      ]);
      expect((await store.renamed(10)).map((r) => r.remotePath)).toEqual(['a.txt~0']);
    } finally {
      await store.close();
      tmp.cleanup();
    }
  });
});

describe('the SQLite journal keeps the device', () => {
  it('with the inode, and a file journaled without one learns it unchanged', async () => {
    const tmp = tempDir();
    const store = await openSqliteStore({ dir: tmp.dir });
    try {
      await store.recordItems([newItem('with', { dev: 2 ** 40 + 7 }), newItem('without')], ['local']);
      expect((await store.lease('local', 2)).map((d) => [d.relPath, d.dev])).toEqual([
        ['with', 2 ** 40 + 7],
        ['without', null],
      ]);
      expect(await store.recordItems([newItem('without', { dev: 9 })], ['local'])).toEqual(new Set());
      await store.resetInFlight();
      expect((await store.lease('local', 2)).map((d) => [d.relPath, d.dev, d.generation])).toEqual([
        ['with', 2 ** 40 + 7, 1],
        ['without', 9, 1],
      ]);
    } finally {
      await store.close();
      tmp.cleanup();
    }
  });
});

describe('the SQLite journal finds a source\'s remote names by its index', () => {
  it('not by a scan of every name of the target', async () => {
    const tmp = tempDir();
    const store = await openSqliteStore({ dir: tmp.dir });
    // Before the store's close, whose `PRAGMA optimize` may give the planner statistics: a fresh
    // journal has none, and without them SQLite picks the primary key's `target` prefix.
    const db = new Database(`${tmp.dir}/stagecoach.db`, { readonly: true });
    try {
      for (let i = 0; i < 50; i++) {
        await store.claimRemotePath({ target: 'local', root: 'r', relPath: `d/f${i}`, wanted: `h/r/d/f${i}`, keyOf: (p) => p });
      }
      for (const sql of [OWNED_BY_SQL, DROP_OWNED_SQL]) {
        const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('local', 'r', 'd/f1') as { detail: string }[]).map((r) => r.detail);
        expect(plan, sql).toEqual([expect.stringContaining('USING INDEX remote_names_owner (target=? AND root=? AND rel_path=?)')]);
      }
    } finally {
      db.close();
      await store.close();
      tmp.cleanup();
    }
  });
});

describe('a SQLite lease commits the completions and name claims waiting for their turn with it', () => {
  it('in its own transaction: they are written when it returns, a stale completion\'s delivery is in it, an unknown id fails alone', async () => {
    const tmp = tempDir();
    const store = await openSqliteStore({ dir: tmp.dir });
    const db = new Database(`${tmp.dir}/stagecoach.db`, { readonly: true });
    const RESULT = { remoteId: 'r-1', remoteHash: 'h-1', bytesSent: 100 };
    try {
      await store.recordItems([newItem('a'), newItem('b'), newItem('c')], ['local']);
      const [a, b] = await store.lease('local', 2);
      // b changes while in flight: its generation-1 completion is stale and puts it back to pending.
      await store.recordItems([newItem('b', { size: 200 })], ['local']);
      const done = store.complete(a!.id, a!.generation, RESULT);
      const stale = store.complete(b!.id, b!.generation, RESULT);
      const unknown = store.complete(999_999, 1, RESULT);
      const claim = store.claimRemotePath({ target: 'local', root: 'inbox', relPath: 'a', wanted: 'x/a', keyOf: (p) => p });
      const leased = await store.lease('local', 5);
      // No turn of the event loop has passed (their own group commit waits for one): only the
      // lease's transaction can have written them.
      expect(db.prepare('SELECT status FROM deliveries WHERE id = ?').get(a!.id)).toEqual({ status: 'done' });
      expect(db.prepare('SELECT remote_path FROM remote_names WHERE rel_path = ?').get('a')).toEqual({ remote_path: 'x/a' });
      expect(leased.map((d) => [d.relPath, d.generation, d.size])).toEqual([
        ['b', 2, 200],
        ['c', 1, 100],
      ]);
      await expect(done).resolves.toBeUndefined();
      await expect(stale).resolves.toBeUndefined();
      await expect(claim).resolves.toEqual({ remotePath: 'x/a', takenBy: null });
      await expect(unknown).rejects.toMatchObject({ code: 'state.unknown-delivery' });
    } finally {
      db.close();
      await store.close();
      tmp.cleanup();
    }
  });
});
