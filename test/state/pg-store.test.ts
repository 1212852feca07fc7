import pg from 'pg';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
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
