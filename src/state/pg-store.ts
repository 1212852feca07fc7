import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FileStat, sameFileStat } from '../archive/item.js';
import { StagecoachError } from '../errors.js';
import type { FleetLocks, SharedSecrets } from '../targets/target.js';
import { describePgUrl } from './open.js';
import { migratePg } from './pg-migrations.js';
import { createPgAudit } from './pg-audit.js';
import { CONFLICT_RETRIES, conflictDelay, isConflictRollback, isConnectionError, type JournalReachability, reconnectDelay } from './pg-retry.js';
import type { AuditStore } from './audit.js';
import { leaseClaim } from './store.js';
import type {
  ClaimResult,
  LeaseClaims,
  RemoteClaim,
  RenamedRemote,
  CompleteResult,
  Delivery,
  DeliveryRecord,
  DeliveryStatus,
  NewItem,
  NodeInfo,
  Store,
  TargetCounts,
  TargetHealth,
} from './store.js';

/** Options of {@link openPgStore}. */
export interface PgStoreOptions {
  /** `postgres://user:password@host:port/database` (a secret: never logged as given). */
  url: string;
  /** Most connections the pool opens. Default 10. */
  maxConnections?: number;
  /**
   * Called with an error of an idle pooled connection (the server restarted, the network
   * dropped it). The pool replaces the connection; the caller reports the error.
   */
  onError?: (err: Error) => void;
  /**
   * Called when the journal becomes unreachable (a call failed on a lost connection: it is retried
   * on a new one until the server answers) and when it answers again. See PgStore.reachability.
   */
  onReachability?: (r: JournalReachability) => void;
  /**
   * This daemon, when it shares the journal with others. Without it the store acts for the whole
   * journal (the CLI's status, journal migrate, tests): it leases from every root and resets every
   * lease.
   */
  node?: NodeOptions;
  /** How long a completion may wait for a claim to be written with (see PgStore's complete()). Default 25 ms. */
  completeWaitMs?: number;
}

/** A daemon's place in a fleet sharing one journal. */
export interface NodeOptions {
  /** Unique among the daemons on the journal: a second open under the same name is refused. */
  name: string;
  /** The roots this daemon can read, name → its local path; it leases only their deliveries. */
  roots: ReadonlyMap<string, string>;
  /** The roots it watches (for the fleet's status). */
  watches: readonly string[];
  /**
   * How long a lease lasts without a heartbeat; heartbeats run every third of it and renew the
   * node's leases. A node silent this long is dead: its leases go to whoever leases next.
   * Default 60 s.
   */
  leaseMs?: number;
}

const DEFAULT_LEASE_MS = 60_000;
/**
 * How long completions alone wait for a claim to be written with (see complete()): the claims of
 * the next lease (#claimAhead), or of a delivery its lease could not claim, come within a few ms
 * while a target has work, and they go as one statement instead of two round trips; the rest of
 * the time the completions go alone after this wait.
 */
const COMPLETE_WAIT_MS = 25;
/** Advisory lock class of "one daemon per node name"; the key is hashtext(name). */
const NODE_LOCK_CLASS = 0x53544148;

/** The PostgreSQL journal: a {@link Store} plus where it lives. */
export interface PgStore extends Store {
  /** The url without its password, for messages. */
  readonly where: string;
  nodes(): Promise<NodeInfo[]>;
  takeTokens(key: string, perSecond: number, burst: number, n: number): Promise<number>;
  /** Secrets shared by the daemons on this journal, each changed under its row's lock. */
  readonly sharedSecrets: SharedSecrets;
  /** Locks every daemon on this journal honours: a transaction-level advisory lock per key. */
  readonly fleetLocks: FleetLocks;
  /** Renews this node's heartbeat and leases now (it also runs on a timer). No-op without a node. */
  heartbeat(): Promise<void>;
  /** Verify, scrub and restore's view of the journal (src/state/audit.ts). */
  readonly audit: AuditStore;
  /** Whether the server answered the last call; while it does not, calls wait and retry. */
  reachability(): JournalReachability;
}

// bigint (int8) comes back as a string by default; every bigint the journal holds is below 2^53.
const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * Opens the journal in a PostgreSQL database and brings its schema up to date (migrations under
 * an advisory lock, so daemons starting together migrate once).
 *
 * Guarantees, as the SQLite journal's (see the {@link Store} contract): `recordItems` is one
 * transaction; `lease` takes its rows with `FOR UPDATE SKIP LOCKED`, so two daemons leasing at
 * once never get the same delivery and never wait for each other; every other method is one
 * atomic statement or transaction. Timestamps are the calling process's `Date.now()`.
 *
 * Throws StagecoachError `state.open-failed` when the database cannot be reached or used (the
 * message names the url without its password), `state.too-new` when a newer Stagecoach wrote it.
 */
export async function openPgStore(opts: PgStoreOptions): Promise<PgStore> {
  const where = describePgUrl(opts.url);
  // keepAlive: a connection a network cut left half-open fails instead of hanging forever.
  // application_name: pg_stat_activity (and the server's log) tell which node holds a connection.
  const application_name = applicationName(opts.node?.name);
  const pool = new pg.Pool({ connectionString: opts.url, max: opts.maxConnections ?? 10, types, keepAlive: true, application_name });
  pool.on('error', (err) => {
    // pool.end() resolves before the server has closed every socket: what fails then is gone.
    if (pool.ending) return;
    if (opts.onError !== undefined) opts.onError(err);
    else process.emitWarning(`[stagecoach] [state] a pooled connection to ${where} failed: ${err.message}`);
  });
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw new StagecoachError('state.open-failed', `[stagecoach] [state] cannot reach the journal at ${where}: ${(cause as Error).message}`, { cause });
  }
  try {
    await migratePg(client, where);
  } catch (cause) {
    client.release();
    await pool.end().catch(() => undefined);
    if (cause instanceof StagecoachError) throw cause;
    throw new StagecoachError('state.open-failed', `[stagecoach] [state] cannot use ${where} as a journal: ${(cause as Error).message}`, { cause });
  }
  client.release();
  if (opts.node === undefined) return new PgStoreImpl(pool, where, undefined, opts);
  const node = opts.node;
  // The node's lock lives as long as this connection: a daemon killed outright frees it at once.
  const lock = new pg.Client({ connectionString: opts.url, keepAlive: true, application_name });
  // Until the store takes it over (it then takes the lock again on a new connection when this one is lost).
  lock.on('error', () => undefined);
  try {
    await lock.connect();
    await takeNodeLock(lock, node.name, where);
    const now = Date.now();
    await lock.query(
      `INSERT INTO nodes (name, roots, watches, started_at, last_seen) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (name) DO UPDATE SET roots = excluded.roots, watches = excluded.watches,
         started_at = excluded.started_at, last_seen = excluded.last_seen`,
      [node.name, [...node.roots.keys()], [...node.watches], now],
    );
  } catch (cause) {
    await lock.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
    if (cause instanceof StagecoachError) throw cause;
    throw new StagecoachError('state.open-failed', `[stagecoach] [state] cannot join the journal at ${where}: ${(cause as Error).message}`, { cause });
  }
  return new PgStoreImpl(pool, where, { ...node, leaseMs: node.leaseMs ?? DEFAULT_LEASE_MS, lock, url: opts.url }, opts);
}

/** The connections' application_name: `stagecoach <node>` (PostgreSQL keeps its first 63 bytes). */
export const applicationName = (node: string | undefined): string => (node === undefined ? 'stagecoach' : `stagecoach ${node}`);

/** Takes "one daemon per node name" on `lock`'s session; `state.node-taken` when another daemon holds it. */
async function takeNodeLock(lock: pg.Client, name: string, where: string): Promise<void> {
  const got = await lock.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [NODE_LOCK_CLASS, name]);
  if (got.rows[0]?.ok !== true) {
    throw new StagecoachError(
      'state.node-taken',
      `[stagecoach] [state] another daemon runs as node "${name}" on the journal at ${where}: give each daemon its own node name (config \`node\`)`,
    );
  }
}

interface Node extends NodeOptions {
  leaseMs: number;
  lock: pg.Client;
  url: string;
}

interface LeaseRow {
  id: number;
  target: string;
  generation: number;
  root: string;
  root_path: string;
  rel_path: string;
  remote_path: string;
  size: number;
  mtime_ms: number;
  ino: number;
  raw_path: Buffer | null;
  attempts: number;
  resume_handle: string | null;
  last_error: string | null;
}

interface PendingComplete {
  id: number;
  generation: number;
  result: CompleteResult;
  /** The lease's token (see PgStoreImpl.#tokens); null without a node. */
  token: string | null;
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface RecordRow {
  id: number;
  target: string;
  root: string;
  rel_path: string;
  remote_path: string;
  size: number;
  status: DeliveryStatus;
  attempts: number;
  last_error: string | null;
  remote_id: string | null;
  remote_hash: string | null;
  updated_at: number;
}

const STATUSES: ReadonlySet<string> = new Set(['pending', 'in_flight', 'done', 'failed', 'skipped']);

/** Serialises recordItems across daemons: the file/delivery upserts read before they write. */
const RECORD_LOCK: readonly [number, number] = [0x53544147, 2];

/** What a lease returns of each row (deliveries d, files f, roots r). */
const LEASE_COLUMNS = `
  d.id, d.target, d.generation, f.root, r.path AS root_path, f.rel_path, d.remote_path,
  f.size, f.mtime_ms, f.ino, f.raw_path, d.attempts, d.resume_handle, d.last_error`;

const RECORD_COLUMNS = `
  d.id, d.target, f.root, f.rel_path, d.remote_path, f.size, d.status, d.attempts,
  d.last_error, d.remote_id, d.remote_hash, d.updated_at`;

function checkCount(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new StagecoachError(
      'state.invalid-argument',
      `[stagecoach] [state] Expected \`${name}\` to be a non-negative integer, got ${String(n)}`,
    );
  }
}

function toDelivery(r: LeaseRow): Delivery {
  return {
    id: r.id,
    target: r.target,
    generation: r.generation,
    root: r.root,
    rootPath: r.root_path,
    relPath: r.rel_path,
    ...(r.raw_path ? { rawRelPath: r.raw_path } : {}),
    remotePath: r.remote_path,
    size: r.size,
    mtimeMs: r.mtime_ms,
    ino: r.ino,
    // The PostgreSQL journal keeps no device: the uploader compares the inode alone.
    dev: null,
    attempts: r.attempts,
    resumeHandle: r.resume_handle,
    lastError: r.last_error,
  };
}

function toRecord(row: RecordRow): DeliveryRecord {
  return {
    id: row.id,
    target: row.target,
    root: row.root,
    relPath: row.rel_path,
    remotePath: row.remote_path,
    size: row.size,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    remoteId: row.remote_id,
    remoteHash: row.remote_hash,
    updatedAt: row.updated_at,
  };
}

/** Splits a batch into runs in which no file appears twice, so each run can be applied set-wise. */
function rounds(items: readonly NewItem[]): NewItem[][] {
  const out: NewItem[][] = [];
  let cur: NewItem[] = [];
  let seen = new Set<string>();
  for (const it of items) {
    const key = `${it.item.root}\0${it.item.relPath}`;
    if (seen.has(key)) {
      out.push(cur);
      cur = [];
      seen = new Set();
    }
    seen.add(key);
    cur.push(it);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** A claim waiting for its turn (see PgStoreImpl.#queued); resolves to whether the one-statement case settled it. */
interface PendingClaim {
  claim: RemoteClaim;
  /** `claim.keyOf(claim.wanted)`. */
  key: string;
  resolve: (settled: boolean) => void;
  reject: (e: unknown) => void;
}

/** A row of the queued statement: `kind` D (a completion written, `ci` its delivery id) or C (a claim's outcome, `ci` its place from 1). */
interface QueuedRow {
  kind: 'D' | 'C';
  ci: number;
  mine_wanted: string | null;
  mine_path: string | null;
  inserted: boolean | null;
}

/**
 * One statement (data-modifying CTEs: one round trip, one transaction) for the completions and
 * claims waiting for their turn. Each part is safe to run twice:
 * - completions (D rows): as the single completion, written only for the current generation and,
 *   on a shared journal, while the row carries this lease's token; run again, it writes the same
 *   values;
 * - claims (C rows: `inserted`, and the source's current name `mine_wanted` / `mine_path`): the
 *   source's own name is read, or `wanted` taken when the source owns none and its key is free
 *   (ON CONFLICT DO NOTHING; keys inserted in order, so two batches never wait for each other in a
 *   cycle); run again, it finds the name its first run took.
 * The text depends only on which parts are present, so each shape is a prepared statement. (A
 * lease joined in too cost PostgreSQL more than it saved: with the completions and claims it
 * ran several times slower than the lease alone, by pg_stat_statements.)
 */
function queuedStatement(done: readonly PendingComplete[], claims: readonly PendingClaim[], now: number): pg.QueryConfig {
  const values: unknown[] = [];
  const $ = (v: unknown, type: string): string => {
    values.push(v);
    return `$${values.length}::${type}`;
  };
  const ctes: string[] = [];
  const selects: string[] = [];
  if (done.length > 0) {
    const ids = $(done.map((b) => b.id), 'bigint[]');
    // `d.id = ANY(ids)` as well as the join: the plan kept for every batch then finds the rows by
    // the primary key, whatever size it guessed for the arrays.
    const update = `UPDATE deliveries d
      SET status = 'done', remote_id = u.remote_id, remote_hash = u.remote_hash, bytes_sent = u.bytes_sent,
          resume_handle = NULL, last_error = NULL, verified_at = NULL, updated_at = ${$(now, 'bigint')}
      FROM unnest(${ids}, ${$(done.map((b) => b.generation), 'integer[]')}, ${$(done.map((b) => b.result.remoteId), 'text[]')},
                  ${$(done.map((b) => b.result.remoteHash), 'text[]')}, ${$(done.map((b) => b.result.bytesSent), 'bigint[]')},
                  ${$(done.map((b) => b.token), 'text[]')})
        AS u(id, generation, remote_id, remote_hash, bytes_sent, token)
      WHERE d.id = ANY(${ids}) AND d.id = u.id AND d.generation = u.generation
        AND (u.token IS NULL OR (d.lease_token = u.token AND d.status IN ('pending', 'in_flight', 'done')))`;
    // Alone, the plain statement: less for PostgreSQL to plan than a CTE under a UNION.
    if (claims.length === 0) return { name: 'stagecoach.queued-d', text: `${update} RETURNING 'D' AS kind, d.id AS ci`, values };
    ctes.push(`done AS (${update} RETURNING d.id)`);
    selects.push(`SELECT 'D' AS kind, id AS ci, NULL::text AS mine_wanted, NULL::text AS mine_path, NULL::boolean AS inserted FROM done`);
  }
  if (claims.length > 0) {
    ctes.push(`cu AS (
      SELECT * FROM unnest(${$(claims.map((x) => x.claim.target), 'text[]')}, ${$(claims.map((x) => x.claim.root), 'text[]')},
                           ${$(claims.map((x) => x.claim.relPath), 'text[]')}, ${$(claims.map((x) => x.key), 'text[]')},
                           ${$(claims.map((x) => x.claim.wanted), 'text[]')})
        WITH ORDINALITY AS cu(target, root, rel_path, name_key, wanted, i)
    ), mine AS (
      SELECT cu.i, n.wanted, n.remote_path FROM cu JOIN remote_names n ON n.target = cu.target AND n.root = cu.root AND n.rel_path = cu.rel_path
    ), ins AS (
      INSERT INTO remote_names (target, name_key, root, rel_path, wanted, remote_path)
      SELECT target, name_key, root, rel_path, wanted, wanted FROM cu WHERE NOT EXISTS (SELECT 1 FROM mine WHERE mine.i = cu.i)
      ORDER BY target, name_key
      ON CONFLICT (target, name_key) DO NOTHING
      RETURNING target, name_key, root, rel_path, wanted
    )`);
    selects.push(`SELECT 'C' AS kind, cu.i AS ci, m.wanted AS mine_wanted, m.remote_path AS mine_path, ins.name_key IS NOT NULL AS inserted
      FROM cu LEFT JOIN mine m ON m.i = cu.i
      LEFT JOIN ins ON ins.target = cu.target AND ins.name_key = cu.name_key AND ins.root = cu.root AND ins.rel_path = cu.rel_path AND ins.wanted = cu.wanted`);
  }
  const shape = `${done.length > 0 ? 'd' : ''}${claims.length > 0 ? 'c' : ''}`;
  return { name: `stagecoach.queued-${shape}`, text: `WITH ${ctes.join(', ')}\n${selects.join('\nUNION ALL\n')}`, values };
}

class PgStoreImpl implements PgStore {
  readonly where: string;
  readonly audit: AuditStore;
  readonly #pool: pg.Pool;
  readonly #node: Node | undefined;
  readonly #heartbeat: NodeJS.Timeout | undefined;
  /** When lease() last looked for expired leases (of every target at once). */
  #expiredChecked = 0;
  #closing: Promise<void> | undefined;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #onReachability: ((r: JournalReachability) => void) | undefined;
  #reach: JournalReachability = { reachable: true, since: Date.now(), error: null };
  /** Aborted by close(): a call waiting to reconnect gives up. */
  readonly #stop = new AbortController();
  /**
   * On a shared journal: the leases this node handed out and not yet finished, delivery id →
   * lease token (written in the row by lease). complete/fail/skip write only while the row still
   * carries the token: a lease that expired and was taken by another node (or leased again here)
   * is not finished twice.
   */
  readonly #tokens = new Map<number, { token: string; target: string }>();
  /** A heartbeat is running (one waiting to reconnect is not doubled by the next tick). */
  #beating = false;

  constructor(pool: pg.Pool, where: string, node: Node | undefined, opts: PgStoreOptions) {
    this.#pool = pool;
    this.where = where;
    this.#node = node;
    this.#onError = opts.onError;
    this.#onReachability = opts.onReachability;
    this.#completeWaitMs = opts.completeWaitMs ?? COMPLETE_WAIT_MS;
    this.audit = createPgAudit(
      (text, values, replayable) => this.#with((c) => c.query(text, values), () => replayable),
      () => this.#open(),
    );
    if (node !== undefined) {
      this.#watchLock(node.lock);
      this.#heartbeat = setInterval(() => {
        if (this.#beating) return;
        this.#beating = true;
        this.heartbeat()
          .catch((err: unknown) => this.#warn(new Error(`[stagecoach] [state] heartbeat to ${where} failed: ${(err as Error).message}`, { cause: err })))
          .finally(() => (this.#beating = false));
      }, Math.max(50, Math.floor(node.leaseMs / 3)));
      this.#heartbeat.unref();
    }
  }

  reachability(): JournalReachability {
    return { ...this.#reach };
  }

  #warn(err: Error): void {
    if (this.#onError !== undefined) this.#onError(err);
    else process.emitWarning(err.message);
  }

  /**
   * Runs `fn` on a pooled connection. When the connection is lost (see isConnectionError) the
   * journal is unreachable until a call succeeds again, and `fn` runs again on a new connection
   * after 100 ms doubling to 5 s, until the server answers or the store closes. A failed connect
   * is always retried; a failure once `fn` ran only when `replayable()` says a second run is
   * safe, and the second run is told (`replay`) that the first may have committed. A call that
   * PostgreSQL rolled back to end a deadlock or a serialization conflict (isConflictRollback)
   * runs again, up to CONFLICT_RETRIES times: nothing of it was applied.
   */
  async #with<T>(fn: (c: pg.PoolClient, replay: boolean) => Promise<T>, replayable: () => boolean = () => true): Promise<T> {
    let replay = false;
    let conflicts = 0;
    for (let attempt = 1; ; attempt++) {
      let c: pg.PoolClient;
      try {
        c = await this.#pool.connect();
      } catch (e) {
        if (!isConnectionError(e)) throw e;
        await this.#lost(e, attempt);
        continue;
      }
      // The pool listens for a connection's errors only while it is idle. One cut between two of
      // fn's queries (no query to fail) is an 'error' event, which unheard would end the process:
      // the next query fails with it as a lost connection, handled below.
      const cutBetweenQueries = () => undefined;
      c.on('error', cutBetweenQueries);
      const release = (err?: Error) => {
        c.removeListener('error', cutBetweenQueries);
        c.release(err);
      };
      try {
        const out = await fn(c, replay);
        release();
        this.#found();
        return out;
      } catch (e) {
        if (isConflictRollback(e) && conflicts < CONFLICT_RETRIES && !this.#stop.signal.aborted) {
          release();
          conflicts++;
          await sleep(conflictDelay(conflicts));
          continue;
        }
        if (!isConnectionError(e)) {
          release();
          throw e;
        }
        // The pool must drop this connection rather than hand it out again.
        release(e as Error);
        if (!replayable()) throw e;
        replay = true;
        await this.#lost(e, attempt);
      }
    }
  }

  /** One statement through #with; `name` makes it a prepared statement (parsed once per connection). */
  #q<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = [], name?: string): Promise<pg.QueryResult<R>> {
    return this.#with((c) => c.query<R>(name === undefined ? { text, values } : { name, text, values }));
  }

  async #lost(e: unknown, attempt: number): Promise<void> {
    if (this.#stop.signal.aborted) throw e;
    if (this.#reach.reachable) {
      this.#reach = { reachable: false, since: Date.now(), error: (e as Error).message };
      if (this.#onReachability !== undefined) this.#onReachability(this.reachability());
      else process.emitWarning(`[stagecoach] [state] the journal at ${this.where} is unreachable (${this.#reach.error}); retrying`);
    }
    try {
      await sleep(reconnectDelay(attempt), undefined, { signal: this.#stop.signal });
    } catch {
      throw e;
    }
  }

  #found(): void {
    if (this.#reach.reachable) return;
    this.#reach = { reachable: true, since: Date.now(), error: null };
    if (this.#onReachability !== undefined) this.#onReachability(this.reachability());
    // Renew this node's leases at once: a lease that expired meanwhile is taken by the next
    // lease of any node, this one's included, unless renewed first.
    if (this.#node !== undefined && !this.#beating) {
      this.#beating = true;
      this.heartbeat()
        .catch((err: unknown) => this.#warn(new Error(`[stagecoach] [state] heartbeat to ${this.where} failed: ${(err as Error).message}`, { cause: err })))
        .finally(() => (this.#beating = false));
    }
  }

  /**
   * The node's lock dies with its connection (a server restart, a cut): take it again on a new
   * one, retrying until it is ours or the store closes. Another daemon that took the name
   * meanwhile is reported, and retried (it may be this daemon's stale session, freed shortly).
   */
  #watchLock(lock: pg.Client): void {
    const node = this.#node!;
    let lost = false;
    const relock = async () => {
      for (let attempt = 1; this.#closing === undefined; attempt++) {
        const next = new pg.Client({ connectionString: node.url, keepAlive: true, types, application_name: applicationName(node.name) });
        next.on('error', () => undefined);
        try {
          await next.connect();
          await takeNodeLock(next, node.name, this.where);
          if (this.#closing !== undefined) {
            await next.end();
            return;
          }
          node.lock = next;
          this.#watchLock(next);
          return;
        } catch (e) {
          await next.end().catch(() => undefined);
          if (!isConnectionError(e)) this.#warn(e as Error);
          try {
            await sleep(reconnectDelay(attempt), undefined, { signal: this.#stop.signal });
          } catch {
            return;
          }
        }
      }
    };
    const onLost = (err?: Error) => {
      if (lost || this.#closing !== undefined) return;
      lost = true;
      this.#warn(new Error(`[stagecoach] [state] the node lock's connection to ${this.where} was lost${err ? `: ${err.message}` : ''}; taking the lock again`, { cause: err }));
      void relock();
    };
    lock.removeAllListeners('error');
    lock.on('error', onLost);
    lock.on('end', () => onLost());
  }

  /**
   * One statement, timed by the database's clock so that the nodes' clocks do not matter. Run
   * again after a lost connection: a take counted twice only makes the caller wait longer.
   */
  async takeTokens(key: string, perSecond: number, burst: number, n: number): Promise<number> {
    this.#open();
    const r = await this.#q<{ tokens: number }>(
      `WITH now AS (SELECT extract(epoch FROM clock_timestamp()) * 1000 AS ms)
       INSERT INTO rate_buckets AS b (key, tokens, at_ms) SELECT $1, $3::float8 - $4::float8, ms FROM now
       ON CONFLICT (key) DO UPDATE SET
         tokens = LEAST($3::float8, b.tokens + GREATEST(0, (SELECT ms FROM now) - b.at_ms) * $2::float8 / 1000) - $4::float8,
         at_ms = GREATEST(b.at_ms, (SELECT ms FROM now))
       RETURNING tokens`,
      [key, perSecond, burst, n],
    );
    const tokens = r.rows[0]?.tokens ?? 0;
    return tokens >= 0 ? 0 : Math.ceil((-tokens / perSecond) * 1000);
  }

  readonly sharedSecrets: SharedSecrets = {
    update: (key, fn) => this.#updateSecret(key, fn),
  };

  readonly fleetLocks: FleetLocks = {
    run: (key, fn) => this.#locked(key, fn),
  };

  /**
   * One transaction holding the advisory lock of `key` (pg_advisory_xact_lock on a 64-bit hash of
   * it, a key space apart from the node locks' two-key one) while `fn` runs. Two keys may share a
   * hash: then they wait for each other, which costs time, never safety. Once `fn` started the
   * transaction is not run again; its commit failing (a lost connection) fails the call.
   */
  async #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    this.#open();
    let started = false;
    return this.#tx(async (c) => {
      await c.query({ name: 'stagecoach.fleet-lock', text: 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', values: [key] });
      started = true;
      return fn();
    }, () => !started);
  }

  /**
   * One transaction holding the row lock of `key` (SELECT … FOR UPDATE) while `fn` runs: a second
   * daemon's update of the same key waits, then sees what the first stored.
   */
  async #updateSecret<T>(key: string, fn: (current: string | null) => Promise<{ value?: string; result: T }>): Promise<T> {
    this.#open();
    // Once `fn` ran (it may have spent a refresh token) the transaction is not run again.
    let spent = false;
    return this.#tx(async (c) => {
      await c.query('INSERT INTO shared_secrets (key, value, updated_at) VALUES ($1, NULL, $2) ON CONFLICT (key) DO NOTHING', [key, Date.now()]);
      const r = await c.query<{ value: string | null }>('SELECT value FROM shared_secrets WHERE key = $1 FOR UPDATE', [key]);
      spent = true;
      const out = await fn(r.rows[0]?.value ?? null);
      if (out.value !== undefined) await c.query('UPDATE shared_secrets SET value = $2, updated_at = $3 WHERE key = $1', [key, out.value, Date.now()]);
      return out.result;
    }, () => !spent);
  }

  /**
   * The node is alive: its last_seen, and the expiry of every lease it holds, move to now + leaseMs.
   * Runs on a timer every third of the lease time; callable at any time. No-op without a node.
   */
  async heartbeat(): Promise<void> {
    const node = this.#node;
    if (node === undefined || this.#closing !== undefined) return;
    const now = Date.now();
    // One round trip. A lease of this node that expired meanwhile (the journal was unreachable)
    // is renewed if no other node took it; one taken carries another lease token, so this
    // node's complete will not write it (see #tokens).
    await this.#q(
      `WITH seen AS (UPDATE nodes SET last_seen = $1 WHERE name = $2)
       UPDATE deliveries SET lease_until = $3 WHERE leased_by = $2 AND status = 'in_flight'`,
      [now, node.name, now + node.leaseMs],
      'stagecoach.heartbeat',
    );
  }

  async nodes(): Promise<NodeInfo[]> {
    this.#open();
    const now = Date.now();
    const leaseMs = this.#node?.leaseMs ?? DEFAULT_LEASE_MS;
    const r = await this.#q<{ name: string; roots: string[]; watches: string[]; started_at: number; last_seen: number; leases: number }>(
      `SELECT n.name, n.roots, n.watches, n.started_at, n.last_seen,
              (SELECT count(*) FROM deliveries d WHERE d.leased_by = n.name AND d.status = 'in_flight') AS leases
       FROM nodes n`,
    );
    return r.rows
      .map((n) => ({
        name: n.name,
        roots: n.roots,
        watches: n.watches,
        startedAt: n.started_at,
        lastSeen: n.last_seen,
        leases: n.leases,
        alive: now - n.last_seen < leaseMs,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async fileIndex(root: string): Promise<Map<string, FileStat>> {
    this.#open();
    const r = await this.#q<{ rel_path: string; size: number; mtime_ms: number; ino: number; ctime_ms: number | null }>(
      'SELECT rel_path, size, mtime_ms, ino, ctime_ms FROM files WHERE root = $1',
      [root],
    );
    const index = new Map<string, FileStat>();
    for (const row of r.rows) {
      index.set(row.rel_path, { size: row.size, mtimeMs: row.mtime_ms, ino: row.ino, ...(row.ctime_ms === null ? {} : { ctimeMs: row.ctime_ms }) });
    }
    return index;
  }

  /** As the SQLite journal's recordItems: one transaction, all or nothing, same re-queue rules. */
  async recordItems(items: NewItem[], targets: readonly string[]): Promise<Set<string>> {
    this.#open();
    if (items.length === 0) return new Set();
    const uniqTargets = [...new Set(targets)];
    const now = Date.now();
    return this.#tx(async (c, replay) => {
      await c.query('SELECT pg_advisory_xact_lock($1, $2)', [...RECORD_LOCK]);
      const rootPaths = new Map<string, string>();
      for (const { item } of items) {
        rootPaths.delete(item.root);
        rootPaths.set(item.root, item.rootPath);
      }
      await c.query(
        `INSERT INTO roots (name, path) SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT (name) DO UPDATE SET path = excluded.path WHERE roots.path <> excluded.path`,
        [[...rootPaths.keys()], [...rootPaths.values()]],
      );
      const fresh = new Set<string>();
      for (const round of rounds(items)) await this.#recordRound(c, round, uniqTargets, now, fresh);
      // A run again after a lost connection finds what the first run (maybe) committed as
      // unchanged: every target is said to have new work, so none is left waiting for it.
      return replay ? new Set(uniqTargets) : fresh;
    });
  }

  async #recordRound(c: pg.PoolClient, items: readonly NewItem[], targets: readonly string[], now: number, fresh: Set<string>): Promise<void> {
    const key = (root: string, rel: string) => `${root}\0${rel}`;
    const existing = await c.query<{ id: number; root: string; rel_path: string; size: number; mtime_ms: number; ino: number; ctime_ms: number | null }>(
      `SELECT f.id, f.root, f.rel_path, f.size, f.mtime_ms, f.ino, f.ctime_ms
       FROM files f JOIN unnest($1::text[], $2::text[]) AS k(root, rel_path) ON f.root = k.root AND f.rel_path = k.rel_path`,
      [items.map((i) => i.item.root), items.map((i) => i.item.relPath)],
    );
    const known = new Map(existing.rows.map((r) => [key(r.root, r.rel_path), r]));
    const added: NewItem[] = [];
    const changed: { id: number; it: NewItem }[] = [];
    const kept: { id: number; it: NewItem; unchanged: boolean }[] = [];
    for (const it of items) {
      const f = known.get(key(it.item.root, it.item.relPath));
      if (f === undefined) {
        added.push(it);
        continue;
      }
      const recorded = { size: f.size, mtimeMs: f.mtime_ms, ino: f.ino, ...(f.ctime_ms === null ? {} : { ctimeMs: f.ctime_ms }) };
      const unchanged = sameFileStat(recorded, it.item);
      // An unchanged row without a ctime (written before the journal kept it) gets it now.
      if (!unchanged || (f.ctime_ms === null && it.item.ctimeMs !== undefined)) changed.push({ id: f.id, it });
      kept.push({ id: f.id, it, unchanged });
    }

    const newDeliveries: { fileId: number; target: string; remotePath: string }[] = [];
    if (added.length > 0) {
      const ins = await c.query<{ id: number; root: string; rel_path: string }>(
        `INSERT INTO files (root, rel_path, size, mtime_ms, ino, ctime_ms, raw_path, updated_at)
         SELECT root, rel_path, size, mtime_ms, ino, ctime_ms, raw_path, $8
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::float8[], $6::float8[], $7::bytea[])
           AS u(root, rel_path, size, mtime_ms, ino, ctime_ms, raw_path)
         RETURNING id, root, rel_path`,
        [
          added.map((i) => i.item.root),
          added.map((i) => i.item.relPath),
          added.map((i) => i.item.size),
          added.map((i) => i.item.mtimeMs),
          added.map((i) => i.item.ino),
          added.map((i) => i.item.ctimeMs ?? null),
          added.map((i) => i.item.rawRelPath ?? null),
          now,
        ],
      );
      const ids = new Map(ins.rows.map((r) => [key(r.root, r.rel_path), r.id]));
      for (const it of added) {
        const fileId = ids.get(key(it.item.root, it.item.relPath))!;
        for (const target of targets) newDeliveries.push({ fileId, target, remotePath: it.remotePath });
      }
    }
    if (changed.length > 0) {
      await c.query(
        `UPDATE files f SET size = u.size, mtime_ms = u.mtime_ms, ino = u.ino, ctime_ms = u.ctime_ms, updated_at = $6
         FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[], $5::float8[]) AS u(id, size, mtime_ms, ino, ctime_ms)
         WHERE f.id = u.id`,
        [
          changed.map((x) => x.id),
          changed.map((x) => x.it.item.size),
          changed.map((x) => x.it.item.mtimeMs),
          changed.map((x) => x.it.item.ino),
          changed.map((x) => x.it.item.ctimeMs ?? null),
          now,
        ],
      );
    }
    const requeue: { id: number; remotePath: string }[] = [];
    if (kept.length > 0) {
      const ds = await c.query<{ id: number; file_id: number; target: string; remote_path: string; status: DeliveryStatus }>(
        `SELECT id, file_id, target, remote_path, status FROM deliveries
         WHERE file_id = ANY($1::bigint[]) AND target = ANY($2::text[]) FOR UPDATE`,
        [kept.map((k) => k.id), targets],
      );
      const byKey = new Map(ds.rows.map((d) => [`${d.file_id}\0${d.target}`, d]));
      for (const k of kept) {
        for (const target of targets) {
          const d = byKey.get(`${k.id}\0${target}`);
          if (d === undefined) newDeliveries.push({ fileId: k.id, target, remotePath: k.it.remotePath });
          else if (!k.unchanged || d.remote_path !== k.it.remotePath) {
            requeue.push({ id: d.id, remotePath: k.it.remotePath });
            if (d.status !== 'in_flight') fresh.add(target);
          }
        }
      }
    }
    if (newDeliveries.length > 0) {
      await c.query(
        `INSERT INTO deliveries (file_id, target, remote_path, created_at, updated_at)
         SELECT file_id, target, remote_path, $4, $4
         FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(file_id, target, remote_path)`,
        [newDeliveries.map((d) => d.fileId), newDeliveries.map((d) => d.target), newDeliveries.map((d) => d.remotePath), now],
      );
      for (const d of newDeliveries) fresh.add(d.target);
    }
    if (requeue.length > 0) {
      // An in-flight delivery keeps its status: its uploader still owns it, and the stale
      // generation's complete/fail/skip turns it back to pending.
      await c.query(
        `UPDATE deliveries d
         SET generation = d.generation + 1, attempts = 0, last_error = NULL, resume_handle = NULL,
             remote_path = u.remote_path, updated_at = $3,
             status = CASE d.status WHEN 'in_flight' THEN 'in_flight' ELSE 'pending' END
         FROM unnest($1::bigint[], $2::text[]) AS u(id, remote_path)
         WHERE d.id = u.id`,
        [requeue.map((r) => r.id), requeue.map((r) => r.remotePath), now],
      );
    }
  }

  /**
   * One statement: the oldest pending rows of the target not locked by another lease are moved to
   * in_flight (`FOR UPDATE SKIP LOCKED`), so concurrent leases from any daemon never share a row.
   * With `claims`, the leased deliveries' remote paths are then claimed together (#claimAhead)
   * before the lease resolves: one more round trip per lease, where each upload waited for its
   * own claim's round trip before its first request.
   */
  async lease(target: string, n: number, claims?: LeaseClaims): Promise<Delivery[]> {
    const leased = await this.#lease(target, n);
    if (claims !== undefined && leased.length > 0) await this.#claimAhead(leased, claims);
    return leased;
  }

  /**
   * Claims the leased deliveries' remote paths as their uploaders would (claimRemotePath: the
   * claims of one turn are one statement), in lease order: a delivery whose name compares equal
   * to an earlier one's is claimed once that one's claim is settled, so the older file keeps the
   * name. A claim that fails leaves its delivery without `claim`: its uploader claims it, and
   * meets the error there, as without claims.
   */
  async #claimAhead(leased: Delivery[], claims: LeaseClaims): Promise<void> {
    let rest = leased;
    while (rest.length > 0) {
      const keys = new Set<string>();
      const now: Delivery[] = [];
      const later: Delivery[] = [];
      for (const d of rest) {
        let key: string;
        try {
          key = claims.keyOf(d.remotePath);
        } catch {
          // A name the target refuses: its uploader claims it and fails the delivery there. The
          // lease has committed: a throw here would leave its rows in flight with nobody.
          continue;
        }
        if (keys.has(key)) later.push(d);
        else {
          keys.add(key);
          now.push(d);
        }
      }
      await Promise.all(
        now.map((d) =>
          this.claimRemotePath(leaseClaim(d, claims)).then(
            (claim) => {
              d.claim = claim;
            },
            () => undefined,
          ),
        ),
      );
      rest = later;
    }
  }

  async #lease(target: string, n: number): Promise<Delivery[]> {
    this.#open();
    checkCount('n', n);
    if (n === 0) return [];
    const now = Date.now();
    const node = this.#node;
    // Each lease writes a token of its own in its rows: run again after a lost connection, it
    // first looks for rows with its token (the first run committed), so no lease is orphaned.
    const token = randomUUID();
    if (node === undefined) {
      const rows = await this.#leaseOnce(token, {
        name: 'stagecoach.lease',
        text: `WITH picked AS (
           SELECT id FROM deliveries WHERE target = $1 AND status = 'pending'
           ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
         )
         UPDATE deliveries d SET status = 'in_flight', updated_at = $3, lease_token = $4
         FROM picked, files f, roots r
         WHERE d.id = picked.id AND f.id = d.file_id AND r.name = f.root
         RETURNING ${LEASE_COLUMNS}`,
        values: [target, n, now, token],
      });
      return rows.sort((a, b) => a.id - b.id).map(toDelivery);
    }
    // Leases of a dead node (no heartbeat within leaseMs) are pending again, resume handle kept:
    // its large uploads continue from the provider's session. Looked for once a second at most
    // (a lease expires after leaseMs anyway), for every target at once: not at every lease, nor
    // once per target.
    if (now - this.#expiredChecked >= Math.min(1000, node.leaseMs / 3)) {
      this.#expiredChecked = now;
      await this.#expire(now);
    }
    // A target parked by any node (revoked token, Drive's daily cap) is parked for every node
    // until its retry time: no node leases its deliveries meanwhile.
    const leased = await this.#leaseOnce(token, {
      name: 'stagecoach.lease-node',
      text: `WITH picked AS (
         SELECT d.id FROM deliveries d JOIN files f ON f.id = d.file_id
         WHERE d.target = $1 AND d.status = 'pending' AND f.root = ANY($4::text[])
           AND NOT EXISTS (SELECT 1 FROM target_health h WHERE h.target = $1 AND h.status = 'down' AND h.retry_at > $3)
         ORDER BY d.id LIMIT $2 FOR UPDATE OF d SKIP LOCKED
       )
       UPDATE deliveries d SET status = 'in_flight', updated_at = $3, leased_by = $5, lease_until = $6, lease_token = $7
       FROM picked, files f, roots r
       WHERE d.id = picked.id AND f.id = d.file_id AND r.name = f.root
       RETURNING ${LEASE_COLUMNS}`,
      values: [target, n, now, [...node.roots.keys()], node.name, now + node.leaseMs, token],
    });
    for (const row of leased) this.#tokens.set(row.id, { token, target });
    // Each node reads a root at its own mount point.
    return leased.sort((a, b) => a.id - b.id).map((row) => toDelivery({ ...row, root_path: node.roots.get(row.root)! }));
  }

  /** Runs a lease statement; run again after a lost connection, it returns the rows the first run took if it committed. */
  #leaseOnce(token: string, statement: pg.QueryConfig): Promise<LeaseRow[]> {
    return this.#with(async (c, replay) => {
      if (replay) {
        const had = await c.query<LeaseRow>(
          `SELECT ${LEASE_COLUMNS} FROM deliveries d JOIN files f ON f.id = d.file_id JOIN roots r ON r.name = f.root
           WHERE d.lease_token = $1 AND d.status = 'in_flight'`,
          [token],
        );
        if (had.rows.length > 0) return had.rows;
      }
      return (await c.query<LeaseRow>(statement)).rows;
    });
  }

  /**
   * Runs the waiting completions and claims as one statement (queuedStatement) and settles each
   * one's promise as if it had run alone. Run again after a lost connection (#with), the
   * statement finds what its first run wrote (see queuedStatement). When it fails, the
   * completions and each claim run again apart, as before they were joined, so that one's error
   * is never another's.
   */
  async #queued(done: PendingComplete[], claims: PendingClaim[]): Promise<void> {
    const now = Date.now();
    let rows: QueuedRow[];
    try {
      rows = (await this.#with((c) => c.query<QueuedRow>(queuedStatement(done, claims, now)))).rows;
    } catch (e) {
      if ((done.length > 0 ? 1 : 0) + claims.length <= 1 || isConnectionError(e) || this.#stop.signal.aborted) {
        for (const b of done) b.reject(e);
        for (const x of claims) x.reject(e);
        return;
      }
      // Apart, each error goes to its own caller's promise.
      if (done.length > 0) void this.#queued(done, []);
      for (const x of claims) void this.#queued([], [x]);
      return;
    }
    const written = new Set<number>();
    const settled = new Set<number>();
    for (const r of rows) {
      if (r.kind === 'D') written.add(r.ci);
      else {
        const x = claims[r.ci - 1];
        if (x !== undefined && (r.inserted === true || (r.mine_wanted === x.claim.wanted && r.mine_path === x.claim.wanted))) settled.add(r.ci);
      }
    }
    for (const b of done) {
      if (written.has(b.id)) {
        this.#forget(b.id, b.token);
        b.resolve();
      } else this.#notWritten(b.id, b.generation, b.token, now).then(b.resolve, b.reject);
    }
    claims.forEach((x, i) => x.resolve(settled.has(i + 1)));
  }

  async #expire(now: number): Promise<void> {
    await this.#q(
      // The error says why it is sent again, and marks it as attempted (PutRequest.firstPut):
      // the node that held it may have put it moments before it went silent.
      `UPDATE deliveries SET status = 'pending', leased_by = NULL, lease_until = NULL, updated_at = $1,
         last_error = COALESCE(last_error, 'the daemon that held it stopped answering (its lease expired); sent again')
       WHERE status = 'in_flight' AND lease_until < $1`,
      [now],
      'stagecoach.expire',
    );
  }

  /**
   * Outcomes being written: close() waits for them, so a completion asked before close is
   * committed (the Store contract; the SQLite journal's group commit does the same).
   */
  readonly #writing = new Set<Promise<unknown>>();

  /** `write()` once the journal is known open (a closed journal rejects, as every method does). */
  #track<T>(write: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      this.#open();
      p = write();
    } catch (e) {
      return Promise.reject(e);
    }
    this.#writing.add(p);
    const done = () => this.#writing.delete(p);
    p.then(done, done);
    return p;
  }

  /** Completions asked in this turn of the event loop, written together (see #queued). */
  readonly #completes: PendingComplete[] = [];
  /** Claims asked in this turn of the event loop, run together (see claimRemotePath). */
  readonly #claims: PendingClaim[] = [];
  /** A flush of the waiting completions and claims is due at the end of this turn. */
  #flushDue = false;
  /** Completions wait for this (completeWaitMs), unless a claim flushes them first. */
  #completeTimer: NodeJS.Timeout | undefined;
  readonly #completeWaitMs: number;

  /** The waiting completions and claims run together at the end of this turn. */
  #flushSoon(): void {
    if (this.#flushDue) return;
    this.#flushDue = true;
    setImmediate(() => {
      this.#flushDue = false;
      clearTimeout(this.#completeTimer);
      this.#completeTimer = undefined;
      const done = this.#completes.splice(0);
      const claims = this.#claims.splice(0);
      // #queued settles each completion's and claim's promise: it never rejects.
      if (done.length + claims.length > 0) void this.#queued(done, claims);
    });
  }

  /** Flushes the waiting completions within completeWaitMs, or with the next claim's flush if sooner. */
  #flushLater(): void {
    if (this.#flushDue || this.#completeTimer !== undefined) return;
    this.#completeTimer = setTimeout(() => {
      this.#completeTimer = undefined;
      this.#flushSoon();
    }, this.#completeWaitMs);
  }

  /**
   * Group commit, as the SQLite journal's: completions are one statement with the claims asked
   * with them (see #queued). A completion waits at most completeWaitMs for a claim (the next
   * delivery's, most often) and goes with it: the put is done and the delivery still this node's
   * lease meanwhile; a crash in that time leaves it in flight, to be sent again, as a crash during
   * the put would. close() writes what waits at once. (PgStoreOptions.completeWaitMs)
   * On a shared journal a completion is written only while the row carries this node's lease
   * token (see #tokens).
   */
  complete(id: number, generation: number, result: CompleteResult): Promise<void> {
    return this.#track(
      () =>
        new Promise<void>((resolve, reject) => {
          const token = this.#tokenOf(id);
          if (token === undefined) {
            this.#leaseLost(id, null).then(resolve, reject);
            return;
          }
          this.#completes.push({ id, generation, result, token, resolve, reject });
          this.#flushLater();
        }),
    );
  }

  /** This node's lease token of the delivery: null without a node; undefined when this node holds no lease of it. */
  #tokenOf(id: number): string | null | undefined {
    if (this.#node === undefined) return null;
    return this.#tokens.get(id)?.token;
  }

  #forget(id: number, token: string | null): void {
    if (token !== null && this.#tokens.get(id)?.token === token) this.#tokens.delete(id);
  }

  /**
   * An outcome was not written: the file changed meanwhile (a stale generation: the delivery goes
   * back to pending), the lease was lost, or there is no such delivery (`state.unknown-delivery`).
   */
  async #notWritten(id: number, generation: number, token: string | null, now: number): Promise<void> {
    if (token !== null) {
      const row = (await this.#q<{ lease_token: string | null; leased_by: string | null }>('SELECT lease_token, leased_by FROM deliveries WHERE id = $1', [id])).rows[0];
      if (row !== undefined && row.lease_token !== token) {
        this.#forget(id, token);
        await this.#leaseLost(id, row.leased_by);
        return;
      }
    }
    this.#forget(id, token);
    await this.#staleOrMissing(id, generation, now);
  }

  /**
   * This node's lease of the delivery expired (the journal was unreachable past the lease time)
   * and was taken again: that lease's uploader finishes it, this outcome is not written (its
   * upload, if any, is one of the "uploads in flight sent twice" docs/scale-out.md allows).
   */
  async #leaseLost(id: number, by: string | null): Promise<void> {
    await this.#mustExist(id);
    this.#warn(
      new StagecoachError(
        'state.lease-lost',
        `[stagecoach] [state] the lease of delivery ${id} expired while the journal was unreachable and was taken again${by ? ` by node "${by}"` : ''}: its outcome here is not recorded, the new lease's is`,
      ),
    );
  }

  fail(id: number, generation: number, reason: string): Promise<void> {
    return this.#track(() => this.#finish('failed', id, generation, reason));
  }

  skip(id: number, generation: number, reason: string): Promise<void> {
    return this.#track(() => this.#finish('skipped', id, generation, reason));
  }

  async #finish(status: 'failed' | 'skipped', id: number, generation: number, reason: string): Promise<void> {
    this.#open();
    const now = Date.now();
    const token = this.#tokenOf(id);
    if (token === undefined) return this.#leaseLost(id, null);
    // A finished attempt must not demote a delivery some other attempt already completed, nor
    // one another lease holds. Run again after a lost connection it finds the status written.
    const r = await this.#q(
      `UPDATE deliveries SET status = $1, last_error = $2, resume_handle = NULL, updated_at = $3
       WHERE id = $4 AND generation = $5 AND status IN ('pending', 'in_flight') AND ($6::text IS NULL OR lease_token = $6)`,
      [status, reason, now, id, generation, token],
    );
    if ((r.rowCount ?? 0) > 0) {
      this.#forget(id, token);
      return;
    }
    await this.#notWritten(id, generation, token, now);
  }

  async #staleOrMissing(id: number, generation: number, now: number): Promise<void> {
    const r = await this.#q(
      `UPDATE deliveries SET status = 'pending', leased_by = NULL, lease_until = NULL, updated_at = $1
       WHERE id = $2 AND generation <> $3 AND status = 'in_flight' AND ${this.#mine('$4')}`,
      [now, id, generation, this.#node?.name ?? null],
    );
    if ((r.rowCount ?? 0) > 0) return;
    await this.#mustExist(id);
  }

  async release(id: number, reason: string | null): Promise<void> {
    this.#open();
    // A lease another node (or another lease of this node) took over after ours expired is its
    // to release, not ours: on a shared journal only the row with this lease's token goes back.
    const token = this.#tokenOf(id) ?? '';
    const r = await this.#q(
      `UPDATE deliveries SET status = 'pending', last_error = COALESCE($1, last_error), updated_at = $2, leased_by = NULL, lease_until = NULL
       WHERE id = $3 AND status = 'in_flight' AND ${this.#mine('$4')} AND ($4::text IS NULL OR lease_token = $5)`,
      [reason, Date.now(), id, this.#node?.name ?? null, token],
    );
    this.#forget(id, token);
    if ((r.rowCount ?? 0) === 0) await this.#mustExist(id);
  }

  async noteAttempt(id: number, reason: string): Promise<void> {
    this.#open();
    const now = Date.now();
    // Run again after a lost connection, it does not count the attempt twice: the row then
    // already has this call's time and reason.
    const r = await this.#q(
      `UPDATE deliveries SET attempts = attempts + 1, last_error = $1, updated_at = $2
       WHERE id = $3 AND NOT (updated_at = $2 AND last_error IS NOT DISTINCT FROM $1)`,
      [reason, now, id],
    );
    if ((r.rowCount ?? 0) === 0) await this.#mustExist(id);
  }

  async saveResume(id: number, handle: string | null): Promise<void> {
    this.#open();
    const r = await this.#q('UPDATE deliveries SET resume_handle = $1, updated_at = $2 WHERE id = $3', [handle, Date.now(), id]);
    if ((r.rowCount ?? 0) === 0) await this.#mustExist(id);
  }

  async resetInFlight(target?: string): Promise<number> {
    this.#open();
    const now = Date.now();
    // On a shared journal only this node's leases: the others' uploads are running.
    const set = `SET status = 'pending', leased_by = NULL, lease_until = NULL, updated_at = $1`;
    for (const [id, held] of this.#tokens) if (target === undefined || held.target === target) this.#tokens.delete(id);
    const r =
      target === undefined
        ? await this.#q(`UPDATE deliveries ${set} WHERE status = 'in_flight' AND ${this.#mine('$2')}`, [now, this.#node?.name ?? null])
        : await this.#q(`UPDATE deliveries ${set} WHERE target = $2 AND status = 'in_flight' AND ${this.#mine('$3')}`, [
            now,
            target,
            this.#node?.name ?? null,
          ]);
    return r.rowCount ?? 0;
  }

  /**
   * See Store.hasWork. While this node holds a lease of the target, true without a round trip:
   * the daemon's idle check asks after every event of a busy run.
   */
  async hasWork(target: string): Promise<boolean> {
    this.#open();
    for (const held of this.#tokens.values()) if (held.target === target) return true;
    const r = await this.#q<{ w: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM deliveries WHERE target = $1 AND status = 'pending')
           OR EXISTS (SELECT 1 FROM deliveries WHERE target = $1 AND status = 'in_flight') AS w`,
      [target],
    );
    return r.rows[0]?.w === true;
  }

  async counts(): Promise<TargetCounts[]> {
    this.#open();
    const r = await this.#q<{ target: string; status: DeliveryStatus | null; n: number }>(
      `SELECT target, status, count(*) AS n FROM deliveries GROUP BY target, status
       UNION ALL
       SELECT target, NULL, 0 FROM target_health
       ORDER BY target`,
    );
    const out = new Map<string, TargetCounts>();
    for (const row of r.rows) {
      let c = out.get(row.target);
      if (c === undefined) {
        c = { target: row.target, pending: 0, inFlight: 0, done: 0, failed: 0, skipped: 0 };
        out.set(row.target, c);
      }
      switch (row.status) {
        case 'pending': c.pending = row.n; break;
        case 'in_flight': c.inFlight = row.n; break;
        case 'done': c.done = row.n; break;
        case 'failed': c.failed = row.n; break;
        case 'skipped': c.skipped = row.n; break;
        case null: break;
      }
    }
    // Sorted as SQLite sorts text (by code point), whatever the database's collation.
    return [...out.values()].sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  }

  async retryFailed(target: string): Promise<number> {
    this.#open();
    const r = await this.#q(
      `UPDATE deliveries SET status = 'pending', attempts = 0, updated_at = $1 WHERE target = $2 AND status = 'failed'`,
      [Date.now(), target],
    );
    return r.rowCount ?? 0;
  }

  async setHealth(h: TargetHealth): Promise<void> {
    this.#open();
    await this.#q(
      `INSERT INTO target_health (target, status, reason, since, retry_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (target) DO UPDATE SET
         status = excluded.status, reason = excluded.reason, since = excluded.since, retry_at = excluded.retry_at`,
      [h.target, h.status, h.reason, h.since, h.retryAt],
    );
  }

  async health(): Promise<TargetHealth[]> {
    this.#open();
    const r = await this.#q<{ target: string; status: 'up' | 'down'; reason: string | null; since: number; retry_at: number | null }>(
      'SELECT target, status, reason, since, retry_at FROM target_health',
    );
    return r.rows
      .map((row) => ({ target: row.target, status: row.status, reason: row.reason, since: row.since, retryAt: row.retry_at }))
      .sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  }

  async recent(opts: { status: DeliveryStatus; target?: string; limit: number }): Promise<DeliveryRecord[]> {
    this.#open();
    if (!STATUSES.has(opts.status)) {
      throw new StagecoachError(
        'state.invalid-argument',
        `[stagecoach] [state] Expected \`status\` to be one of ${[...STATUSES].join(', ')}, got ${String(opts.status)}`,
      );
    }
    checkCount('limit', opts.limit);
    const r =
      opts.target === undefined
        ? await this.#q<RecordRow>(
            `SELECT ${RECORD_COLUMNS} FROM deliveries d JOIN files f ON f.id = d.file_id
             WHERE d.status = $1 ORDER BY d.updated_at DESC, d.id DESC LIMIT $2`,
            [opts.status, opts.limit],
          )
        : await this.#q<RecordRow>(
            `SELECT ${RECORD_COLUMNS} FROM deliveries d JOIN files f ON f.id = d.file_id
             WHERE d.status = $1 AND d.target = $2 ORDER BY d.updated_at DESC, d.id DESC LIMIT $3`,
            [opts.status, opts.target, opts.limit],
          );
    return r.rows.map(toRecord);
  }

  /** See Store.search; paths in byte order (as SQLite's), whatever the database's collation. */
  async search(opts: { query: string; limit: number }): Promise<DeliveryRecord[]> {
    this.#open();
    checkCount('limit', opts.limit);
    const pattern = `%${opts.query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const r = await this.#q<RecordRow>(
      `SELECT ${RECORD_COLUMNS}
       FROM (SELECT id FROM files WHERE rel_path ILIKE $1 ESCAPE '\\' ORDER BY root COLLATE "C", rel_path COLLATE "C" LIMIT $2) m
       JOIN files f ON f.id = m.id JOIN deliveries d ON d.file_id = f.id
       ORDER BY f.root COLLATE "C", f.rel_path COLLATE "C", d.target COLLATE "C"`,
      [pattern, opts.limit],
    );
    return r.rows.map(toRecord);
  }

  /** Idempotent: every call returns the same promise. Later calls of other methods throw `state.closed`. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
      // Completions waiting for a claim are written now.
      if (this.#completeTimer !== undefined) this.#flushSoon();
      // A call waiting for an unreachable server gives up (its delivery stays in flight: reset at the next start).
      this.#stop.abort();
      // Outcomes asked before close are written before the pool ends (their own errors are theirs).
      await Promise.allSettled([...this.#writing]);
      try {
        await this.#pool.end();
      } finally {
        await this.#node?.lock.end();
      }
    })();
    return this.#closing;
  }

  /** SQL: the delivery is this node's to release (its lease, or nobody's); `param` holds the node name or NULL. */
  #mine(param: string): string {
    return this.#node === undefined ? `${param}::text IS NULL` : `(leased_by IS NULL OR leased_by = ${param})`;
  }

  /**
   * As the SQLite journal's claimRemotePath. The common cases need no lock: the source already
   * owns `wanted`, or owns nothing and `wanted`'s key is free (the key's primary key settles a
   * race); the claims of one turn of the event loop are one statement for those, with the turn's
   * completions (#queued). Any other case is one transaction holding an advisory lock
   * per target. Either way two sources never own one key.
   */
  claimRemotePath(c: RemoteClaim): Promise<ClaimResult> {
    return this.#track(async () => {
      const key = c.keyOf(c.wanted);
      const settled = await new Promise<boolean>((resolve, reject) => {
        this.#claims.push({ claim: c, key, resolve, reject });
        this.#flushSoon();
      });
      return settled ? { remotePath: c.wanted, takenBy: null } : this.#claimLocked(c, key);
    });
  }

  /** A claim the one-statement case did not settle: one transaction under the target's advisory lock. */
  #claimLocked(c: RemoteClaim, key: string): Promise<ClaimResult> {
    return this.#tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`stagecoach.remote_names.${c.target}`]);
      const ownerOf = async (key: string) =>
        (await q.query<{ root: string; rel_path: string }>('SELECT root, rel_path FROM remote_names WHERE target = $1 AND name_key = $2', [c.target, key])).rows[0];
      // A claim without the lock (above) may take a free key meanwhile: then it is not free.
      const insert = async (key: string, remotePath: string) =>
        ((
          await q.query('INSERT INTO remote_names (target, name_key, root, rel_path, wanted, remote_path) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (target, name_key) DO NOTHING', [
            c.target, key, c.root, c.relPath, c.wanted, remotePath,
          ])
        ).rowCount ?? 0) > 0;
      const mine = (
        await q.query<{ wanted: string; remote_path: string }>('SELECT wanted, remote_path FROM remote_names WHERE target = $1 AND root = $2 AND rel_path = $3', [
          c.target, c.root, c.relPath,
        ])
      ).rows[0];
      if (mine !== undefined && mine.wanted === c.wanted) {
        const taken = mine.remote_path === c.wanted ? undefined : await ownerOf(c.keyOf(c.wanted));
        return { remotePath: mine.remote_path, takenBy: taken ? `${taken.root}/${taken.rel_path}` : null };
      }
      if (mine !== undefined) await q.query('DELETE FROM remote_names WHERE target = $1 AND root = $2 AND rel_path = $3', [c.target, c.root, c.relPath]);
      let first = await ownerOf(key);
      for (let tries = 0; first === undefined && tries < 3; tries++) {
        if (await insert(key, c.wanted)) return { remotePath: c.wanted, takenBy: null };
        first = await ownerOf(key);
      }
      if (first === undefined) throw new StagecoachError('state.claim-contended', `[stagecoach] [state] the name ${c.wanted} on ${c.target} keeps changing owner`);
      if (first.root === c.root && first.rel_path === c.relPath) return { remotePath: c.wanted, takenBy: null };
      const takenBy = `${first.root}/${first.rel_path}`;
      if (c.alternative === undefined) return { remotePath: c.wanted, takenBy };
      for (let attempt = 0; attempt < 1000; attempt++) {
        const alt = c.alternative(c.wanted, attempt);
        if ((await ownerOf(c.keyOf(alt))) === undefined && (await insert(c.keyOf(alt), alt))) return { remotePath: alt, takenBy };
      }
      throw new StagecoachError('state.names-exhausted', `[stagecoach] [state] no free alternative name for ${c.wanted} on ${c.target}`);
    });
  }

  async renamed(limit: number): Promise<RenamedRemote[]> {
    this.#open();
    const r = await this.#q<{ target: string; root: string; rel_path: string; wanted: string; remote_path: string }>(
      'SELECT target, root, rel_path, wanted, remote_path FROM remote_names WHERE wanted <> remote_path ORDER BY target, remote_path LIMIT $1',
      [limit],
    );
    return r.rows.map((x) => ({ target: x.target, root: x.root, relPath: x.rel_path, wanted: x.wanted, remotePath: x.remote_path }));
  }

  /**
   * `fn` in one transaction, through #with: on a lost connection it runs again on a new one
   * while `replayable()` allows (`replay`: an earlier run's COMMIT may have been applied).
   */
  #tx<T>(fn: (c: pg.PoolClient, replay: boolean) => Promise<T>, replayable?: () => boolean): Promise<T> {
    return this.#with(async (c, replay) => {
      await c.query('BEGIN');
      let out: T;
      try {
        out = await fn(c, replay);
      } catch (e) {
        // A ROLLBACK that fails throws its own (connection) error: #with then drops the connection.
        if (!isConnectionError(e)) await c.query('ROLLBACK');
        throw e;
      }
      await c.query('COMMIT');
      return out;
    }, replayable);
  }

  #open(): void {
    if (this.#closing !== undefined) {
      throw new StagecoachError('state.closed', `[stagecoach] [state] the journal at ${this.where} is closed`);
    }
  }

  async #mustExist(id: number): Promise<void> {
    const r = await this.#q('SELECT 1 FROM deliveries WHERE id = $1', [id]);
    if (r.rowCount === 0) {
      throw new StagecoachError('state.unknown-delivery', `[stagecoach] [state] no delivery with id ${id}`);
    }
  }
}
