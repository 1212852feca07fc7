import pg from 'pg';
import { describe, inject } from 'vitest';
import { openPgStore } from '../../src/state/pg-store.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { storeContract } from './store-contract.js';

describe('the Store contract on PostgreSQL', () => {
  storeContract({
    async create() {
      const db = await createTestDatabase(inject('pgUrl'));
      return {
        open: () => openPgStore({ url: db.url }),
        async rawRow(id) {
          const c = new pg.Client({ connectionString: db.url });
          await c.connect();
          try {
            const r = await c.query('SELECT * FROM deliveries WHERE id = $1', [id]);
            const row = r.rows[0] as Record<string, unknown>;
            // bigint columns come back as strings from a plain client.
            return { ...row, bytes_sent: row.bytes_sent === null ? null : Number(row.bytes_sent) };
          } finally {
            await c.end();
          }
        },
        cleanup: () => db.drop(),
      };
    },
  });
});
