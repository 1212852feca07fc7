import pg from 'pg';
import { afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { openPgStore } from '../../src/state/pg-store.js';
import { pgMigrations } from '../../src/state/pg-migrations.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { newItem } from './helpers.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeEach(async () => {
  db = await createTestDatabase(inject('pgUrl'));
});
afterEach(async () => {
  await db.drop();
});

async function sql<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

describe('PostgreSQL migrations', () => {
  it('daemons starting together migrate once, under the advisory lock', async () => {
    const stores = await Promise.all(Array.from({ length: 5 }, () => openPgStore({ url: db.url })));
    try {
      expect(await sql('SELECT version FROM stagecoach_schema')).toEqual([{ version: pgMigrations.at(-1)!.version }]);
      await stores[0]!.recordItems([newItem('a')], ['local']);
      expect((await stores[4]!.counts())[0]).toMatchObject({ target: 'local', pending: 1 });
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('refuses a journal written by a newer Stagecoach', async () => {
    await (await openPgStore({ url: db.url })).close();
    await sql('UPDATE stagecoach_schema SET version = 999');
    await expect(openPgStore({ url: db.url })).rejects.toMatchObject({ code: 'state.too-new' });
  });
});

describe('leases across daemons', () => {
  it('many daemons leasing at once never share a delivery (FOR UPDATE SKIP LOCKED)', async () => {
    const stores = await Promise.all(Array.from({ length: 4 }, () => openPgStore({ url: db.url })));
    try {
      await stores[0]!.recordItems(Array.from({ length: 400 }, (_, i) => newItem(`f${i}`)), ['local']);
      const got = await Promise.all(
        stores.map(async (s) => {
          const ids: number[] = [];
          for (let i = 0; i < 40; i++) ids.push(...(await s.lease('local', 7)).map((d) => d.id));
          return ids;
        }),
      );
      const all = got.flat();
      expect(all).toHaveLength(400);
      expect(new Set(all).size).toBe(400);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

describe('what one turn of the event loop asks, in one round trip', () => {
  const claim = (relPath: string, wanted: string) => ({
    target: 'local',
    root: 'inbox',
    relPath,
    wanted,
    keyOf: (p: string) => p,
    alternative: (w: string, attempt: number) => `${w}.${attempt}`,
  });

  it('completions and claims asked in one turn are one statement, and each settles as if it ran alone', async () => {
    const store = await openPgStore({ url: db.url });
    const query = vi.spyOn(pg.Client.prototype, 'query');
    try {
      await store.recordItems(['a', 'b', 'c', 'd'].map((n) => newItem(n)), ['local']);
      // "c" owns its name already, "d"'s is another source's; "b"'s is free.
      expect(await store.claimRemotePath(claim('c', 'c'))).toEqual({ remotePath: 'c', takenBy: null });
      expect(await store.claimRemotePath(claim('x', 'd'))).toEqual({ remotePath: 'd', takenBy: null });
      const [a, b] = await store.lease('local', 2);
      query.mockClear();
      const [, , claimB, claimC] = await Promise.all([
        store.complete(a!.id, a!.generation, { remoteId: 'ra', remoteHash: 'ha', bytesSent: 100 }),
        store.complete(b!.id, b!.generation, { remoteId: 'rb', remoteHash: 'hb', bytesSent: 100 }),
        store.claimRemotePath(claim('b', 'b')),
        store.claimRemotePath(claim('c', 'c')),
      ]);
      expect(query).toHaveBeenCalledTimes(1);
      expect(claimB).toEqual({ remotePath: 'b', takenBy: null });
      expect(claimC).toEqual({ remotePath: 'c', takenBy: null });
      // One the statement does not settle (the name is taken) goes on to the locked transaction.
      expect(await Promise.all([store.claimRemotePath(claim('d', 'd')), store.claimRemotePath(claim('a', 'a'))])).toEqual([
        { remotePath: 'd.0', takenBy: 'inbox/x' },
        { remotePath: 'a', takenBy: null },
      ]);
      expect(await sql('SELECT id, status, remote_id FROM deliveries WHERE status = $1 ORDER BY id', ['done'])).toEqual([
        { id: String(a!.id), status: 'done', remote_id: 'ra' },
        { id: String(b!.id), status: 'done', remote_id: 'rb' },
      ]);
      expect(await sql('SELECT rel_path, remote_path FROM remote_names ORDER BY rel_path')).toEqual([
        { rel_path: 'a', remote_path: 'a' },
        { rel_path: 'b', remote_path: 'b' },
        { rel_path: 'c', remote_path: 'c' },
        { rel_path: 'd', remote_path: 'd.0' },
        { rel_path: 'x', remote_path: 'd' },
      ]);
    } finally {
      query.mockRestore();
      await store.close();
    }
  });

  it('a completion waits for the next claim and goes in its statement; alone, it is written within completeWaitMs; close writes one that waits', async () => {
    const store = await openPgStore({ url: db.url, completeWaitMs: 60_000 });
    const query = vi.spyOn(pg.Client.prototype, 'query');
    const status = async (id: number) => (await sql<{ status: string }>('SELECT status FROM deliveries WHERE id = $1', [id]))[0]!.status;
    try {
      await store.recordItems(['a', 'b', 'c'].map((n) => newItem(n)), ['local']);
      const [a, b] = await store.lease('local', 2);
      query.mockClear();
      // The put of "a" is done; "b"'s claim comes some turns later, as a freed slot's next delivery's does.
      const doneA = store.complete(a!.id, a!.generation, { remoteId: 'ra', remoteHash: 'ha', bytesSent: 100 });
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      expect(query).not.toHaveBeenCalled();
      expect(await status(a!.id)).toBe('in_flight');
      query.mockClear();
      const [, claimB] = await Promise.all([doneA, store.claimRemotePath(claim('b', 'b'))]);
      expect(query).toHaveBeenCalledTimes(1);
      expect(claimB).toEqual({ remotePath: 'b', takenBy: null });
      expect(await status(a!.id)).toBe('done');
      // With nothing to go with, close() writes it at once (it would have waited a minute).
      const doneB = store.complete(b!.id, b!.generation, { remoteId: 'rb', remoteHash: 'hb', bytesSent: 100 });
      await store.close();
      await doneB;
      expect(await status(b!.id)).toBe('done');
    } finally {
      query.mockRestore();
      await store.close();
    }
    // At the default wait, a completion alone is written without any claim, soon.
    const other = await openPgStore({ url: db.url });
    try {
      const [c] = await other.lease('local', 1);
      const t0 = Date.now();
      await other.complete(c!.id, c!.generation, { remoteId: 'rc', remoteHash: 'hc', bytesSent: 100 });
      expect(await status(c!.id)).toBe('done');
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await other.close();
    }
  });

  it('a claim PostgreSQL refuses fails alone: the completion and the claim of its turn land (they run again apart)', async () => {
    const store = await openPgStore({ url: db.url });
    try {
      await store.recordItems([newItem('a'), newItem('b')], ['local']);
      const [a] = await store.lease('local', 1);
      // A NUL character is not text PostgreSQL can store: the joined statement fails as a whole.
      const outcomes = await Promise.allSettled([
        store.complete(a!.id, a!.generation, { remoteId: 'ra', remoteHash: 'ha', bytesSent: 100 }),
        store.claimRemotePath(claim('b', 'bad\u0000name')),
        store.claimRemotePath(claim('a', 'a')),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(outcomes[2]).toMatchObject({ value: { remotePath: 'a', takenBy: null } });
      expect(await sql('SELECT status FROM deliveries WHERE id = $1', [a!.id])).toEqual([{ status: 'done' }]);
    } finally {
      await store.close();
    }
  });

  it("hasWork answers without a round trip while this node holds a lease of the target, and from the journal once it holds none", async () => {
    const store = await openPgStore({ url: db.url, node: { name: 'a', roots: new Map([['inbox', '/srv/inbox']]), watches: [] } });
    const query = vi.spyOn(pg.Client.prototype, 'query');
    try {
      await store.recordItems([newItem('a')], ['local', 'box']);
      const [a] = await store.lease('local', 1);
      query.mockClear();
      expect(await store.hasWork('local')).toBe(true);
      expect(query).not.toHaveBeenCalled();
      await store.complete(a!.id, a!.generation, { remoteId: 'ra', remoteHash: 'ha', bytesSent: 100 });
      expect(await store.hasWork('local')).toBe(false);
      // No lease of box here: the journal says its delivery is pending.
      expect(await store.hasWork('box')).toBe(true);
    } finally {
      query.mockRestore();
      await store.close();
    }
  });
});
