/**
 * A journal filled as `stagecoach backfill --once` leaves it after archiving every file of a
 * config's roots to every target, without sending a byte: for benchmarks that need a large
 * archived tree (bench/restart.ts), where a real backfill (~150–250 files/s here) is too slow.
 *
 * It goes through the product's own code, so it cannot drift from it silently: the config is
 * read by `loadConfig`, each root is walked by the watcher's `walkTree` with the root's
 * `createPathFilter`, each file's stat is the watcher's `fileStatOf`, the archiver's per-file
 * filter `check` applies, the remote path is the archiver's `renderRemotePath(config.remotePath,
 * {…item, host})`, and the journal is written only through the `Store` API: `recordItems` (one
 * delivery per configured target id) in large batches, then `lease` and `complete` of every
 * delivery, as the uploaders do. Only the remote's answer is made up (`remoteId`/`remoteHash`),
 * which nothing reads at a restart. bench/restart.ts `--check` compares the outcome with a real
 * backfill's.
 *
 * Speed: the Store has no batch `complete`, and one autocommit per delivery costs ~0.25 ms here
 * (100k files × 5 targets: ~2 minutes). So the seeder borrows the store's own connection (caught
 * while `openSqliteStore` prepares its statements) to wrap each batch of `complete` calls in one
 * transaction: the same statements, run in the same order with the same values, committed
 * together. This relies on the SQLite store doing its work synchronously inside each call (its
 * documented guarantee); bench-only, never a pattern for src/.
 */
import os from 'node:os';
import Database from 'better-sqlite3';
import { createPathFilter } from '../../src/archive/filters.js';
import type { FileItem } from '../../src/archive/item.js';
import { renderRemotePath } from '../../src/archive/remote-path.js';
import { loadConfig } from '../../src/config/index.js';
import { walkTree } from '../../src/pipeline/walk.js';
import { fileStatOf } from '../../src/pipeline/watch-source.js';
import { openSqliteStore, type Delivery, type NewItem, type SqliteStore } from '../../src/state/index.js';

export interface SeedResult {
  /** Files recorded (all roots). */
  files: number;
  /** Files the archiver's filters would have skipped (not recorded). */
  skipped: number;
  /** Deliveries completed: files × targets. */
  deliveries: number;
  ms: number;
}

/**
 * Fills the journal of the config at `configFile` (its `stateDir`; the journal is created when
 * missing) with every file now under its roots, each delivered (`done`) to each target, in
 * batches of `batch` files per `recordItems` transaction. The tree MUST not change meanwhile, and
 * no daemon may run on that journal. `host` is the `{host}` of the template (default: this
 * machine's, as the daemon's). Throws when the store refuses a write or a lease comes back short.
 */
export async function seedJournal(configFile: string, opts: { batch?: number; host?: string } = {}): Promise<SeedResult> {
  const t0 = Date.now();
  const batchSize = opts.batch ?? 5000;
  const host = opts.host ?? os.hostname();
  const config = await loadConfig(configFile);
  const targets = config.targets.map((t) => t.id);
  const { store, db } = await openWithConnection(config.stateDir);
  // This connection only: SQLite's default 2 MiB page cache makes every index update of a
  // 100k-file journal a read from the OS; neither pragma changes what is written.
  db.pragma('cache_size = -262144');
  db.pragma('synchronous = OFF');
  // Each call's SQL runs before its promise settles, so all of them run inside this transaction.
  const completeAll = db.transaction((ds: Delivery[]) =>
    ds.map((d) => store.complete(d.id, d.generation, { remoteId: `seeded:${d.remotePath}`, remoteHash: 'seeded', bytesSent: d.size })),
  );
  let files = 0;
  let skipped = 0;
  let deliveries = 0;
  const flush = async (batch: NewItem[]): Promise<void> => {
    if (batch.length === 0) return;
    await store.recordItems(batch, targets);
    for (const target of targets) {
      const leased = await store.lease(target, batch.length);
      if (leased.length !== batch.length) throw new Error(`seed: leased ${leased.length} deliveries of ${target}, expected ${batch.length} (was the journal empty?)`);
      await Promise.all(completeAll(leased));
      deliveries += leased.length;
    }
    files += batch.length;
  };
  try {
    for (const root of config.roots) {
      const filter = createPathFilter(root.filters);
      const found: FileItem[] = [];
      await walkTree(root.path, filter, (relPath, stats) => {
        found.push({ root: root.name, rootPath: root.path, relPath, ...fileStatOf(stats) });
      });
      let batch: NewItem[] = [];
      for (const item of found) {
        if (filter.check(item.relPath, item.size) !== null) {
          skipped++;
          continue;
        }
        batch.push({ item, remotePath: renderRemotePath(config.remotePath, { ...item, host }) });
        if (batch.length >= batchSize) {
          await flush(batch);
          batch = [];
        }
      }
      await flush(batch);
    }
  } finally {
    await store.close();
  }
  return { files, skipped, deliveries, ms: Date.now() - t0 };
}

/** Opens the store as the daemon does, and catches the better-sqlite3 connection it opened. */
async function openWithConnection(dir: string): Promise<{ store: SqliteStore; db: Database.Database }> {
  const proto = Database.prototype as { prepare: (this: Database.Database, ...args: unknown[]) => unknown };
  const prepare = proto.prepare;
  let db: Database.Database | null = null;
  proto.prepare = function (this: Database.Database, ...args: unknown[]) {
    db ??= this;
    return prepare.apply(this, args);
  };
  let store: SqliteStore;
  try {
    store = await openSqliteStore({ dir });
  } finally {
    proto.prepare = prepare;
  }
  if (db === null) {
    await store.close();
    throw new Error('seed: the store prepared no statement through better-sqlite3: cannot batch its writes');
  }
  return { store, db };
}
