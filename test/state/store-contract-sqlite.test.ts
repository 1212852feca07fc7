import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/state/index.js';
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
