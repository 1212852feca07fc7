import Database from 'better-sqlite3';
import { describe } from 'vitest';
import { openSqliteStore } from '../../src/state/index.js';
import { tempDir } from './helpers.js';
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
