/**
 * The PostgreSQL journal across a lost connection (issue 20): the server cuts every connection
 * (`pg_terminate_backend`, as an administrator or an idle-connection reaper does) or restarts
 * mid-run, and the daemons' journal calls retry on new connections: every delivery is still done
 * exactly once, the node's lock is taken again, and the store says while it is unreachable.
 * A lease that expired meanwhile and was taken by another node is finished by that node only.
 */
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import type { JournalReachability } from '../../src/state/pg-retry.js';
import { type NodeOptions, type PgStore, openPgStore } from '../../src/state/pg-store.js';
import { createTestDatabase, startTestPostgres } from '../helpers/postgres.js';
import { newItem } from './helpers.js';

const INBOX = new Map([['inbox', '/mnt/a/inbox']]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Watched {
  store: PgStore;
  errors: Error[];
  reach: JournalReachability[];
}

const open: PgStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function node(url: string, name: string, over: Partial<NodeOptions> = {}): Promise<Watched> {
  const errors: Error[] = [];
  const reach: JournalReachability[] = [];
  const store = await openPgStore({
    url,
    onError: (e) => errors.push(e),
    onReachability: (r) => reach.push(r),
    node: { name, roots: INBOX, watches: ['inbox'], leaseMs: 3000, ...over },
  });
  open.push(store);
  return { store, errors, reach };
}

/**
 * Uploaders on each store lease up to 4 deliveries of `target`, then complete each (after
 * claiming its remote name, with `claim`, as the uploader does): until every one of `total` is
 * done (bounded by `ms`). Returns how many times each delivery id was leased.
 */
async function drain(stores: PgStore[], target: string, total: number, ms: number, paceMs = 5, claim = false): Promise<Map<number, number>> {
  const leased = new Map<number, number>();
  let done = 0;
  const deadline = Date.now() + ms;
  await Promise.all(
    stores.flatMap((s) =>
      [0, 1].map(async (u) => {
        while (done < total) {
          if (Date.now() > deadline) throw new Error(`only ${done} of ${total} done within ${ms} ms`);
          const batch = await s.lease(target, 4);
          if (batch.length === 0) {
            await sleep(20);
            continue;
          }
          for (const d of batch) leased.set(d.id, (leased.get(d.id) ?? 0) + 1);
          await Promise.all(
            batch.map(async (d) => {
              await sleep(paceMs + u);
              if (claim) {
                const got = await s.claimRemotePath({ target, root: d.root, relPath: d.relPath, wanted: d.remotePath, keyOf: (p) => p });
                if (got.remotePath !== d.remotePath || got.takenBy !== null) throw new Error(`claim of ${d.remotePath} gave ${JSON.stringify(got)}`);
              }
              await s.complete(d.id, d.generation, { remoteId: `r${d.id}`, remoteHash: 'h', bytesSent: d.size });
              done++;
            }),
          );
        }
      }),
    ),
  );
  return leased;
}

async function statuses(url: string): Promise<Record<string, number>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM deliveries GROUP BY status');
    return Object.fromEntries(r.rows.map((x) => [x.status, Number(x.n)]));
  } finally {
    await c.end();
  }
}


/**
 * Every ~150 ms, locks one of `tables` in turn for 60 ms, so that the stores' calls pile up
 * waiting and are caught in the middle, then terminates every client connection to the database
 * but its own. `stop` ends it and resolves to how many cuts terminated a connection; `admin` (the
 * cutter's connection) stays open for the caller's own queries, and is the caller's to end.
 */
async function cutConnections(url: string, tables: readonly string[]): Promise<{ admin: pg.Client; stop: () => Promise<number> }> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  let cuts = 0;
  let stopped = false;
  const cutter = (async () => {
    for (let i = 0; !stopped; i++) {
      await sleep(150);
      await admin.query('BEGIN');
      await admin.query(`LOCK TABLE ${tables[i % tables.length]} IN ACCESS EXCLUSIVE MODE`);
      await sleep(60);
      const r = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
      );
      await admin.query('COMMIT');
      if ((r.rowCount ?? 0) > 0) cuts++;
    }
  })();
  return {
    admin,
    stop: async () => {
      stopped = true;
      await cutter;
      return cuts;
    },
  };
}
describe('the PostgreSQL journal across a lost connection', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeEach(async () => {
    db = await createTestDatabase(inject('pgUrl'));
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    await db.drop();
  });

  it('a grouped completion that PostgreSQL picks as a deadlock victim (40P01) runs again and lands; it is not failed', async () => {
    const a = await node(db.url, 'a');
    await a.store.recordItems([newItem('one.bin'), newItem('two.bin')], ['local']);
    const [first, second] = (await a.store.lease('local', 2)).sort((x, y) => x.id - y.id);
    expect(second, 'two deliveries leased').toBeDefined();
    // Another session holds the second row, then (after the grouped completion has locked the
    // first row and waits for the second) asks for the first: a lock cycle. PostgreSQL's
    // deadlock check runs in the session that has waited longest (deadlock_timeout, 1 s by
    // default), the completion's, and rolls that one back.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      // This session never runs the check first, even when a loaded machine delays the
      // completion's backend past its own deadlock_timeout (it once made this one the victim).
      await other.query(`SET deadlock_timeout = '30s'`);
      await other.query('BEGIN');
      await other.query('SELECT id FROM deliveries WHERE id = $1 FOR UPDATE', [second!.id]);
      const done = Promise.allSettled(
        [first!, second!].map((d) => a.store.complete(d.id, d.generation, { remoteId: `r${d.id}`, remoteHash: 'h', bytesSent: d.size })),
      );
      const waiting = async () => {
        const r = await other.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
        );
        return Number(r.rows[0]!.n) > 0;
      };
      for (const until = Date.now() + 5000; !(await waiting()); ) {
        if (Date.now() > until) throw new Error('the completion never waited for the locked row');
        await sleep(20);
      }
      await other.query('UPDATE deliveries SET updated_at = updated_at WHERE id = $1', [first!.id]);
      await other.query('COMMIT');
      const outcomes = await done;
      expect(outcomes.map((o) => (o.status === 'rejected' ? String((o.reason as Error).message) : 'ok'))).toEqual(['ok', 'ok']);
    } finally {
      await other.end();
    }
    expect(await statuses(db.url)).toEqual({ done: 2 });
    expect(a.errors).toEqual([]);
  }, 30_000);

  it('every connection cut mid-run (pg_terminate_backend): each delivery still leased once and done once; the node lock is taken again', async () => {
    const a = await node(db.url, 'a');
    const b = await node(db.url, 'b');
    const total = 240;
    await a.store.recordItems(
      Array.from({ length: total }, (_, i) => newItem(`f-${i}.bin`)),
      ['local'],
    );
    const cutter = await cutConnections(db.url, ['deliveries']);
    let leased: Map<number, number>;
    let cuts = 0;
    try {
      leased = await drain([a.store, b.store], 'local', total, 60_000, 20);
    } finally {
      cuts = await cutter.stop();
    }
    await cutter.admin.end();

    expect(cuts).toBeGreaterThan(0);
    expect(leased.size).toBe(total);
    expect([...leased.values()].filter((n) => n !== 1)).toEqual([]);
    expect(await statuses(db.url)).toEqual({ done: total });
    // The store said it was unreachable, then reachable again; nothing else went wrong.
    const all = [...a.reach, ...b.reach];
    expect(all.some((r) => !r.reachable)).toBe(true);
    // The next call after the last cut answers, and the store is reachable again.
    await Promise.all([a.store.counts(), b.store.counts()]);
    expect(a.store.reachability().reachable).toBe(true);
    expect(b.store.reachability().reachable).toBe(true);
    // Connections cut are reported (the pool's idle ones, the node lock's), but no lease was lost.
    expect([...a.errors, ...b.errors].filter((e) => (e as { code?: string }).code === 'state.lease-lost')).toEqual([]);
    // The node locks were cut too: each is held again (a second daemon named "a" is refused).
    const deadline = Date.now() + 10_000;
    for (;;) {
      const again = await openPgStore({ url: db.url, node: { name: 'a', roots: INBOX, watches: [] } }).then(
        async (s) => {
          await s.close();
          return 'opened';
        },
        (e: { code?: string }) => e.code,
      );
      if (again === 'state.node-taken') break;
      if (Date.now() > deadline) throw new Error(`node "a" could be opened twice after the cut: ${again}`);
      await sleep(100);
    }
  }, 90_000);

  it('claims and completions joined in one statement, every connection cut mid-run: each delivery leased once and done once, each name claimed as wanted', async () => {
    const a = await node(db.url, 'a');
    const b = await node(db.url, 'b');
    const total = 240;
    await a.store.recordItems(
      Array.from({ length: total }, (_, i) => newItem(`f-${i}.bin`)),
      ['local'],
    );
    // The joined statements pile up behind a lock of either table, then every connection is cut.
    const cutter = await cutConnections(db.url, ['deliveries', 'remote_names']);
    let leased: Map<number, number>;
    let cuts = 0;
    try {
      leased = await drain([a.store, b.store], 'local', total, 60_000, 20, true);
    } finally {
      cuts = await cutter.stop();
    }
    const names = await cutter.admin.query<{ n: string; wanted: string }>(`SELECT count(*) AS n, count(*) FILTER (WHERE remote_path = wanted) AS wanted FROM remote_names`);
    await cutter.admin.end();

    expect(cuts).toBeGreaterThan(0);
    expect(leased.size).toBe(total);
    expect([...leased.values()].filter((n) => n !== 1)).toEqual([]);
    expect(await statuses(db.url)).toEqual({ done: total });
    expect(names.rows[0]).toEqual({ n: String(total), wanted: String(total) });
    expect([...a.errors, ...b.errors].filter((e) => (e as { code?: string }).code === 'state.lease-lost')).toEqual([]);
  }, 90_000);

  it("verify, scrub and sweep's queries (src/state/pg-audit.ts) cut while they wait: the replayable ones answer on a new connection, an insert is not run twice", async () => {
    const a = await node(db.url, 'a', { leaseMs: 60_000 });
    await a.store.recordItems([newItem('v-0.bin'), newItem('v-1.bin'), newItem('v-2.bin')], ['local']);
    const leased = await a.store.lease('local', 3);
    for (const d of leased) await a.store.complete(d.id, d.generation, { remoteId: `r${d.id}`, remoteHash: 'h', bytesSent: d.size });
    const [cand] = await a.store.audit.removalCandidates('inbox', 1, 'upload');
    const intent = await a.store.audit.recordRemoval({ fileId: cand!.fileId, action: 'delete', dest: null, size: cand!.size, mtimeMs: cand!.mtimeMs, ino: cand!.ino, dev: 1, copies: 1 });

    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    /** Starts `calls` while both tables are locked, cuts every other connection once all of them wait, then unlocks. */
    async function cutWhileWaiting<T>(calls: () => Promise<T>, waiting: number): Promise<PromiseSettledResult<T>> {
      await admin.query('BEGIN');
      await admin.query('LOCK TABLE deliveries, removals IN ACCESS EXCLUSIVE MODE');
      const p = calls().then(
        (value) => ({ status: 'fulfilled', value }) as const,
        (reason: unknown) => ({ status: 'rejected', reason }) as const,
      );
      const deadline = Date.now() + 10_000;
      for (;;) {
        // pg_stat_activity is read once per transaction unless its snapshot is cleared.
        await admin.query('SELECT pg_stat_clear_snapshot()');
        const r = await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        if (r.rows[0]!.n >= waiting) break;
        if (Date.now() > deadline) throw new Error(`only ${r.rows[0]!.n} of ${waiting} audit queries waited on the lock`);
        await sleep(20);
      }
      await admin.query('SELECT pg_stat_clear_snapshot()');
      const cut = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
      );
      expect(cut.rowCount).toBeGreaterThanOrEqual(waiting);
      await admin.query('COMMIT');
      return p;
    }

    try {
      // Reads and markVerified are safe to run again: they answer as if nothing happened.
      const ids = leased.map((d) => d.id);
      const reads = await cutWhileWaiting(
        () =>
          Promise.all([
            a.store.audit.countDone('local'),
            a.store.audit.doneCopies('local'),
            a.store.audit.files('inbox'),
            a.store.audit.openRemovals(),
            a.store.audit.freedBytes(),
            a.store.audit.markVerified(ids, 1234),
          ]),
        6,
      );
      if (reads.status === 'rejected') throw reads.reason;
      const [count, copies, files, removals, freed] = reads.value;
      expect(count).toBe(3);
      expect(copies.map((c) => c.id).sort()).toEqual([...ids].sort());
      expect(files.map((f) => f.relPath).sort()).toEqual(['v-0.bin', 'v-1.bin', 'v-2.bin']);
      expect(removals.map((m) => m.id)).toEqual([intent]);
      expect(freed).toBe(0);
      expect((await a.store.audit.doneCopies('local')).map((c) => c.verifiedAt)).toEqual([1234, 1234, 1234]);
      expect(a.reach.map((r) => r.reachable)).toEqual([false, true]);

      // So is settleRemoval (a second run finds the intent settled and changes nothing).
      const settle = await cutWhileWaiting(() => a.store.audit.settleRemoval(intent, 'done', null), 1);
      if (settle.status === 'rejected') throw settle.reason;
      expect(await a.store.audit.openRemovals()).toEqual([]);
      expect(await a.store.audit.freedBytes()).toBe(cand!.size);

      // recordRemoval is not: a lost connection may have committed the INSERT, so the call fails
      // with the connection error rather than write a second intent.
      const insert = await cutWhileWaiting(
        () => a.store.audit.recordRemoval({ fileId: cand!.fileId, action: 'delete', dest: null, size: cand!.size, mtimeMs: cand!.mtimeMs, ino: cand!.ino, dev: 1, copies: 1 }),
        1,
      );
      expect(insert.status).toBe('rejected');
      expect(((insert as PromiseRejectedResult).reason as { code?: string }).code).toBe('57P01');
      const rows = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM removals');
      expect(rows.rows[0]!.n).toBe(1);
    } finally {
      await admin.end();
    }
  }, 60_000);

  it('a lease that expired while its node could not reach the journal and was taken by another node is completed by that node only', async () => {
    const a = await node(db.url, 'a', { leaseMs: 60_000 });
    const b = await node(db.url, 'b', { leaseMs: 60_000 });
    await a.store.recordItems([newItem('slow.bin')], ['box']);
    const [held] = await a.store.lease('box', 1);
    // a's heartbeats did not reach the journal past the lease time: the lease is expired.
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('UPDATE deliveries SET lease_until = 0 WHERE id = $1', [held!.id]);
    await b.store.heartbeat();
    const [taken] = await b.store.lease('box', 1);
    expect(taken?.id).toBe(held!.id);

    await a.store.complete(held!.id, held!.generation, { remoteId: 'from-a', remoteHash: 'ha', bytesSent: 1 });
    const mid = await admin.query('SELECT status, leased_by, remote_id FROM deliveries WHERE id = $1', [held!.id]);
    expect(mid.rows[0]).toEqual({ status: 'in_flight', leased_by: 'b', remote_id: null });
    expect(a.errors.map((e) => (e as { code?: string }).code)).toEqual(['state.lease-lost']);
    // a's late failure or release does not disturb b's lease either.
    await a.store.fail(held!.id, held!.generation, 'late');
    await a.store.release(held!.id, 'late');
    expect((await admin.query('SELECT status, leased_by FROM deliveries WHERE id = $1', [held!.id])).rows[0]).toEqual({ status: 'in_flight', leased_by: 'b' });

    await b.store.complete(taken!.id, taken!.generation, { remoteId: 'from-b', remoteHash: 'hb', bytesSent: 1 });
    const end = await admin.query('SELECT status, remote_id FROM deliveries WHERE id = $1', [held!.id]);
    await admin.end();
    expect(end.rows[0]).toEqual({ status: 'done', remote_id: 'from-b' });
  });
});

describe('the PostgreSQL journal across a server restart', () => {
  it('the server restarts mid-run: calls wait while it is down (reachability says so), then every delivery is done once', async () => {
    const server = await startTestPostgres();
    try {
      const db = await createTestDatabase(server.url);
      // Leases outlive the restart here (one that expires is the next test's case).
      const a = await node(db.url, 'a', { leaseMs: 60_000 });
      const b = await node(db.url, 'b', { leaseMs: 60_000 });
      const total = 160;
      await a.store.recordItems(
        Array.from({ length: total }, (_, i) => newItem(`r-${i}.bin`)),
        ['local'],
      );
      let sawDown = false;
      const restarting = (async () => {
        await sleep(300);
        const down = server.restart(1500);
        // While no server runs, the stores say they cannot reach the journal.
        const deadline = Date.now() + 10_000;
        while (!sawDown && Date.now() < deadline) {
          sawDown = !a.store.reachability().reachable && a.store.reachability().error !== null;
          await sleep(50);
        }
        await down;
      })();
      // At least 10 rounds of 4 leases × 4 workers, 100 ms each: the drain outlasts the 300 ms before
      // the restart whatever the machine's speed (at 25 ms a quiet machine finished first).
      const leased = await drain([a.store, b.store], 'local', total, 90_000, 100);
      await restarting;
      expect(sawDown).toBe(true);
      expect(leased.size).toBe(total);
      expect([...leased.values()].filter((n) => n !== 1)).toEqual([]);
      expect(await statuses(db.url)).toEqual({ done: total });
      expect(a.store.reachability().reachable).toBe(true);
      expect(a.reach.map((r) => r.reachable)).toEqual([false, true]);
      await Promise.all(open.splice(0).map((s) => s.close()));
      await db.drop();
    } finally {
      await server.stop();
    }
  }, 120_000);
});
