import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type Sqlite from 'better-sqlite3';
import { type FileStat, sameFileStat } from '../archive/item.js';
import { StagecoachError } from '../errors.js';
import { migrate } from './migrations.js';
import { Checkpointer } from './checkpointer.js';
import { readFileIndexInWorker } from './file-index-worker.js';
import { createSqliteAudit, type AuditStore } from './audit.js';
import type {
  ClaimResult,
  CompleteResult,
  RemoteClaim,
  RenamedRemote,
  Delivery,
  DeliveryRecord,
  DeliveryStatus,
  LeaseClaims,
  NewItem,
  Store,
  TargetCounts,
  TargetHealth,
} from './store.js';
import { leaseClaim } from './store.js';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** The state directory; created with mode 0700 when missing (an existing one is left as is). */
  dir: string;
  /** The database file name inside `dir`. Default `stagecoach.db`. */
  file?: string;
  /** How long a write waits for another process's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number;
  /** The checkpoint worker's waits (checkpointer.ts), for tests. */
  checkpoint?: { everyCommits?: number; idleMs?: number };
}

/** The SQLite journal: a {@link Store} plus where it lives. */
export interface SqliteStore extends Store {
  /** Absolute path of the database file. */
  readonly path: string;
  /** Verify, scrub and restore's view of the journal (src/state/audit.ts). */
  readonly audit: AuditStore;
}

const DEFAULT_FILE = 'stagecoach.db';
const DEFAULT_BUSY_TIMEOUT_MS = 5000;
/**
 * From this many files in a root, fileIndex reads on a worker thread (file-index-worker.ts), so
 * that a scan's walk runs meanwhile; below, a worker's start (~30 ms) costs more than the read.
 */
export const INDEX_WORKER_MIN_FILES = 20_000;
/** Truncate the WAL back to this size after a checkpoint, so one huge batch does not leave a huge file. */
const JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024;
/** SQLite's default automatic checkpoint, in WAL pages (on again if the checkpoint worker fails). */
const AUTO_CHECKPOINT_PAGES = 1000;

/**
 * Opens (creating when missing) the journal at `dir/file` and brings its schema up to date.
 *
 * Guarantees: WAL journal with synchronous=NORMAL (a committed transaction survives a crash of
 * the process; an OS crash may lose the last few), so another process (`stagecoach status`) can
 * read while the daemon writes; writes from two processes wait for each other up to
 * `busyTimeoutMs`; foreign keys are enforced. A database file this call creates gets mode 0600,
 * and SQLite gives its -wal and -shm files the same mode.
 *
 * Every method does its work synchronously before its promise settles: calls from one process are
 * serialised, and each is atomic. `complete` is group-committed: the completions of one turn of
 * the event loop share one transaction, and each promise settles once it has committed.
 * Timestamps are `Date.now()`.
 *
 * Throws StagecoachError `state.too-new` when the database was written by a newer Stagecoach,
 * `state.open-failed` when the file cannot be opened as a database. The caller MUST `close()` the
 * store (on shutdown); an unclosed store loses nothing that was committed.
 */
export async function openSqliteStore(opts: SqliteStoreOptions): Promise<SqliteStore> {
  const dir = path.resolve(opts.dir);
  const file = path.join(dir, opts.file ?? DEFAULT_FILE);
  const busyTimeoutMs = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new StagecoachError(
      'state.invalid-argument',
      `[stagecoach] [state] Expected \`busyTimeoutMs\` to be a non-negative integer, got ${String(busyTimeoutMs)}`,
    );
  }

  ensureDir(dir);
  ensurePrivateFile(file);

  let db: Sqlite.Database;
  try {
    db = new Database(file, { timeout: busyTimeoutMs });
  } catch (cause) {
    throw new StagecoachError('state.open-failed', `[stagecoach] [state] cannot open ${file}`, { cause });
  }
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    migrate(db);
  } catch (cause) {
    db.close();
    if (cause instanceof StagecoachError) throw cause;
    throw new StagecoachError('state.open-failed', `[stagecoach] [state] cannot use ${file} as a journal`, {
      cause,
    });
  }
  for (const suffix of ['-wal', '-shm']) tightenMode(file + suffix);
  return new SqliteStoreImpl(db, file, busyTimeoutMs, opts.checkpoint ?? {});
}

function ensureDir(dir: string): void {
  const created = mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode passes through the umask; the state dir holds tokens, so set it exactly.
  if (created !== undefined) chmodSync(dir, 0o700);
}

function ensurePrivateFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new StagecoachError('state.open-failed', `[stagecoach] [state] cannot create ${file}`, { cause: err });
  }
  closeSync(fd);
  // SQLite creates -wal/-shm with the database file's mode, so this one chmod covers all three.
  chmodSync(file, 0o600);
}

/** Best effort: a -wal/-shm left by an older run with a wider mode; not ours to fix if foreign. */
function tightenMode(file: string): void {
  try {
    const st = statSync(file);
    if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) chmodSync(file, st.mode & 0o700);
  } catch {
    // Absent (not created yet) or not ours: SQLite's own mode rule applies.
  }
}

interface FileRow {
  id: number;
  size: number;
  mtime_ms: number;
  ino: number;
  dev: number | null;
  ctime_ms: number | null;
}

interface DeliveryStateRow {
  id: number;
  remote_path: string;
  status: DeliveryStatus;
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
  dev: number | null;
  raw_path: Buffer | null;
  attempts: number;
  resume_handle: string | null;
  last_error: string | null;
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

interface CountRow {
  target: string;
  status: DeliveryStatus | null;
  n: number;
}

interface HealthRow {
  target: string;
  status: 'up' | 'down';
  reason: string | null;
  since: number;
  retry_at: number | null;
}

interface IndexRow {
  rel_path: string;
  size: number;
  mtime_ms: number;
  ino: number;
  ctime_ms: number | null;
}

const STATUSES: ReadonlySet<string> = new Set(['pending', 'in_flight', 'done', 'failed', 'skipped']);

const LEASE_COLUMNS = `
  d.id, d.target, d.generation, f.root, r.path AS root_path, f.rel_path, d.remote_path,
  f.size, f.mtime_ms, f.ino, f.dev, f.raw_path, d.attempts, d.resume_handle, d.last_error`;

const RECORD_COLUMNS = `
  d.id, d.target, f.root, f.rel_path, d.remote_path, f.size, d.status, d.attempts,
  d.last_error, d.remote_id, d.remote_hash, d.updated_at`;

function toRecord(r: RecordRow): DeliveryRecord {
  return {
    id: r.id,
    target: r.target,
    root: r.root,
    relPath: r.rel_path,
    remotePath: r.remote_path,
    size: r.size,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    remoteId: r.remote_id,
    remoteHash: r.remote_hash,
    updatedAt: r.updated_at,
  };
}

function prepareAll(db: Sqlite.Database) {
  return {
    upsertRoot: db.prepare<[string, string]>(
      `INSERT INTO roots (name, path) VALUES (?, ?)
       ON CONFLICT (name) DO UPDATE SET path = excluded.path WHERE path <> excluded.path`,
    ),
    getFile: db.prepare<[string, string], FileRow>(
      'SELECT id, size, mtime_ms, ino, ctime_ms, dev FROM files WHERE root = ? AND rel_path = ?',
    ),
    insertFile: db.prepare<[string, string, number, number, number, number | null, Buffer | null, number | null, number]>(
      'INSERT INTO files (root, rel_path, size, mtime_ms, ino, ctime_ms, raw_path, dev, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    updateFile: db.prepare<[number, number, number, number | null, number | null, number, number]>(
      'UPDATE files SET size = ?, mtime_ms = ?, ino = ?, ctime_ms = ?, dev = ?, updated_at = ? WHERE id = ?',
    ),
    getDelivery: db.prepare<[number, string], DeliveryStateRow>(
      'SELECT id, remote_path, status FROM deliveries WHERE file_id = ? AND target = ?',
    ),
    insertDelivery: db.prepare<[number, string, string, number, number]>(
      `INSERT INTO deliveries (file_id, target, remote_path, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?)`,
    ),
    // An in-flight delivery keeps its status: its uploader still owns it, and the stale
    // generation's complete/fail/skip turns it back to pending.
    requeue: db.prepare<[string, number, number]>(
      `UPDATE deliveries
       SET generation = generation + 1, attempts = 0, last_error = NULL, resume_handle = NULL,
           remote_path = ?, updated_at = ?,
           status = CASE status WHEN 'in_flight' THEN 'in_flight' ELSE 'pending' END
       WHERE id = ?`,
    ),
    selectLease: db.prepare<[string, number], LeaseRow>(
      `SELECT ${LEASE_COLUMNS}
       FROM deliveries d JOIN files f ON f.id = d.file_id JOIN roots r ON r.name = f.root
       WHERE d.target = ? AND d.status = 'pending'
       ORDER BY d.id LIMIT ?`,
    ),
    markInFlight: db.prepare<[number, number]>(
      `UPDATE deliveries SET status = 'in_flight', updated_at = ? WHERE id = ?`,
    ),
    complete: db.prepare<[string, string, number, number, number, number]>(
      `UPDATE deliveries
       SET status = 'done', remote_id = ?, remote_hash = ?, bytes_sent = ?,
           resume_handle = NULL, last_error = NULL, verified_at = NULL, updated_at = ?
       WHERE id = ? AND generation = ?`,
    ),
    // A finished attempt must not demote a delivery some other attempt already completed.
    finish: db.prepare<[DeliveryStatus, string, number, number, number]>(
      `UPDATE deliveries
       SET status = ?, last_error = ?, resume_handle = NULL, updated_at = ?
       WHERE id = ? AND generation = ? AND status IN ('pending', 'in_flight')`,
    ),
    staleToPending: db.prepare<[number, number, number]>(
      `UPDATE deliveries SET status = 'pending', updated_at = ?
       WHERE id = ? AND generation <> ? AND status = 'in_flight'`,
    ),
    release: db.prepare<[string | null, number, number]>(
      `UPDATE deliveries SET status = 'pending', last_error = COALESCE(?, last_error), updated_at = ?
       WHERE id = ? AND status = 'in_flight'`,
    ),
    noteAttempt: db.prepare<[string, number, number]>(
      'UPDATE deliveries SET attempts = attempts + 1, last_error = ?, updated_at = ? WHERE id = ?',
    ),
    saveResume: db.prepare<[string | null, number, number]>(
      'UPDATE deliveries SET resume_handle = ?, updated_at = ? WHERE id = ?',
    ),
    exists: db.prepare<[number], { id: number }>('SELECT id FROM deliveries WHERE id = ?'),
    resetAll: db.prepare<[number]>(
      `UPDATE deliveries SET status = 'pending', updated_at = ? WHERE status = 'in_flight'`,
    ),
    resetTarget: db.prepare<[number, string]>(
      `UPDATE deliveries SET status = 'pending', updated_at = ? WHERE target = ? AND status = 'in_flight'`,
    ),
    // Targets known only from target_health come out with a NULL status and n = 0.
    counts: db.prepare<[], CountRow>(
      `SELECT target, status, count(*) AS n FROM deliveries GROUP BY target, status
       UNION ALL
       SELECT target, NULL, 0 FROM target_health
       ORDER BY target`,
    ),
    hasWork: db.prepare<[string, string], { one: number }>(
      `SELECT 1 AS one WHERE EXISTS (SELECT 1 FROM deliveries WHERE target = ? AND status = 'pending')
          OR EXISTS (SELECT 1 FROM deliveries WHERE target = ? AND status = 'in_flight')`,
    ),
    retryFailed: db.prepare<[number, string]>(
      `UPDATE deliveries SET status = 'pending', attempts = 0, updated_at = ?
       WHERE target = ? AND status = 'failed'`,
    ),
    setHealth: db.prepare<[string, string, string | null, number, number | null]>(
      `INSERT INTO target_health (target, status, reason, since, retry_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (target) DO UPDATE SET
         status = excluded.status, reason = excluded.reason,
         since = excluded.since, retry_at = excluded.retry_at`,
    ),
    health: db.prepare<[], HealthRow>(
      'SELECT target, status, reason, since, retry_at FROM target_health ORDER BY target',
    ),
    recentAll: db.prepare<[string, number], RecordRow>(
      `SELECT ${RECORD_COLUMNS}
       FROM deliveries d JOIN files f ON f.id = d.file_id
       WHERE d.status = ?
       ORDER BY d.updated_at DESC, d.id DESC LIMIT ?`,
    ),
    recentTarget: db.prepare<[string, string, number], RecordRow>(
      `SELECT ${RECORD_COLUMNS}
       FROM deliveries d JOIN files f ON f.id = d.file_id
       WHERE d.status = ? AND d.target = ?
       ORDER BY d.updated_at DESC, d.id DESC LIMIT ?`,
    ),
    nameOwner: db.prepare<[string, string], { root: string; rel_path: string; wanted: string; remote_path: string }>(
      'SELECT root, rel_path, wanted, remote_path FROM remote_names WHERE target = ? AND name_key = ?',
    ),
    ownedBy: db.prepare<[string, string, string], { name_key: string; wanted: string; remote_path: string }>(
      OWNED_BY_SQL,
    ),
    dropOwned: db.prepare<[string, string, string]>(DROP_OWNED_SQL),
    insertName: db.prepare<[string, string, string, string, string, string]>(
      'INSERT INTO remote_names (target, name_key, root, rel_path, wanted, remote_path) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    renamed: db.prepare<[number], { target: string; root: string; rel_path: string; wanted: string; remote_path: string }>(
      `SELECT target, root, rel_path, wanted, remote_path FROM remote_names
       WHERE wanted <> remote_path ORDER BY target, remote_path LIMIT ?`,
    ),
    search: db.prepare<[string, number], RecordRow>(
      `SELECT ${RECORD_COLUMNS}
       FROM (SELECT id FROM files WHERE rel_path LIKE ? ESCAPE '\\' ORDER BY root, rel_path LIMIT ?) m
       JOIN files f ON f.id = m.id JOIN deliveries d ON d.file_id = f.id
       ORDER BY f.root, f.rel_path, d.target`,
    ),
    // Counts no further than the worker's threshold: a full count read the whole index of a large
    // root on the main thread before its walk could start (~10 ms at 100k files, more when cold).
    fileCountUpTo: db.prepare<[string, number], { n: number }>('SELECT COUNT(*) AS n FROM (SELECT 1 FROM files WHERE root = ? LIMIT ?)'),
    fileIndex: db.prepare<[string], IndexRow>(
      'SELECT rel_path, size, mtime_ms, ino, ctime_ms FROM files WHERE root = ?',
    ),
  };
}

type Statements = ReturnType<typeof prepareAll>;

function checkCount(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new StagecoachError(
      'state.invalid-argument',
      `[stagecoach] [state] Expected \`${name}\` to be a non-negative integer, got ${String(n)}`,
    );
  }
}

/**
 * How long a completion waits for a lease to commit it with itself before it is committed on its
 * own, while leases come (one asked for within LEASES_APART_MS; else two turns of the event loop,
 * so that a caller completing deliveries one after the other is not slowed). A slot whose put is
 * done asks for its next delivery at once (uploader.ts), and leases come a few ms apart while
 * uploads run, each taking the waiting completions into its own transaction. Flushed on the next
 * turn, a completion was committed alone just before the lease (4,419 commits for 2,000
 * deliveries under the four-cloud bench); on the second turn, 2,920; with 20 ms, 1,265 for 1,000
 * files × 4 clouds (2,538 on the second turn, once a lease served several deliveries: leaseAhead).
 * A put is already durable on its target: a completion waiting longer risks nothing (a crash
 * sends it again, and the target finds it there), and `close` commits what waits.
 */
const COMPLETION_WAIT_MS = 20;
const LEASES_APART_MS = 100;

interface PendingCompletion {
  id: number;
  generation: number;
  result: CompleteResult;
}

interface LeaseArgs {
  target: string;
  n: number;
  now: number;
  claims: LeaseClaims | undefined;
}

interface QueuedOutcomes {
  completions: (undefined | Failed)[];
  claims: (ClaimResult | Failed)[];
  leased: Delivery[];
}

/**
 * The names a source owns on a target, and dropping them (exported for the query-plan test).
 * INDEXED BY: without it SQLite's planner (3.53) searches the primary key by `target` alone once
 * the table has rows, a scan of every name of the target for each claim: quadratic, 0.3 ms per
 * claim at 2,000 names and 2 ms at 10,000, most of the journal's time in a 10,000-file backfill.
 */
export const OWNED_BY_SQL = 'SELECT name_key, wanted, remote_path FROM remote_names INDEXED BY remote_names_owner WHERE target = ? AND root = ? AND rel_path = ?';
export const DROP_OWNED_SQL = 'DELETE FROM remote_names INDEXED BY remote_names_owner WHERE target = ? AND root = ? AND rel_path = ?';

/** A claim of a group commit that threw (its savepoint rolled back). */
class Failed {
  constructor(readonly error: unknown) {}
}

/**
 * Group commit: the calls added in one turn of the event loop run as one batch; each caller's
 * promise settles once the batch has run. On the next turn `flushDue` is called, which `take`s
 * what waits (this queue's and the others') into one transaction and `settle`s it (an outcome per
 * input, a Failed failing its own caller alone) or `rejectAll`s it when it threw as a whole. A
 * lease takes what waits sooner, into its own transaction.
 */
class GroupCommit<In, Out> {
  #pending: Array<{ input: In; resolve: (out: Out) => void; reject: (err: unknown) => void }> = [];
  #scheduled = false;
  /**
   * `wait`: how long what is added waits for its own flush, asked when a flush is scheduled: a
   * number of turns of the event loop (1 or 2), or `ms` milliseconds (a lease, or the other
   * queue's flush, may take it sooner).
   */
  constructor(
    private readonly flushDue: () => void,
    private readonly wait: () => 1 | 2 | { ms: number },
  ) {}

  add(input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.#pending.push({ input, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      const flush = (): void => {
        this.#scheduled = false;
        // Already taken by a lease or the other queue's flush: nothing to commit.
        if (this.#pending.length > 0) this.flushDue();
      };
      const wait = this.wait();
      if (wait === 1) setImmediate(flush);
      else if (wait === 2) setImmediate(() => setImmediate(flush));
      else setTimeout(flush, wait.ms);
    });
  }

  /** What waits now, taken out of the queue: the caller MUST settle or reject it. */
  take(): Array<{ input: In; resolve: (out: Out) => void; reject: (err: unknown) => void }> {
    const batch = this.#pending;
    this.#pending = [];
    return batch;
  }

  static settle<In, Out>(batch: ReturnType<GroupCommit<In, Out>['take']>, outcomes: readonly (Out | Failed)[]): void {
    batch.forEach((p, i) => {
      const o = outcomes[i] as Out | Failed;
      if (o instanceof Failed) p.reject(o.error);
      else p.resolve(o);
    });
  }

  static rejectAll<In, Out>(batch: ReturnType<GroupCommit<In, Out>['take']>, err: unknown): void {
    for (const p of batch) p.reject(err);
  }
}

/** Runs a taken batch in a transaction of its own and settles it. */
function runAlone<In, Out>(batch: ReturnType<GroupCommit<In, Out>['take']>, run: (inputs: readonly In[]) => (Out | Failed)[]): void {
  if (batch.length === 0) return;
  try {
    GroupCommit.settle(batch, run(batch.map((c) => c.input)));
  } catch (err) {
    GroupCommit.rejectAll(batch, err);
  }
}

class SqliteStoreImpl implements SqliteStore {
  readonly path: string;
  readonly audit: AuditStore;
  readonly #db: Sqlite.Database;
  readonly #st: Statements;
  readonly #busyTimeoutMs: number;
  readonly #record: (items: readonly NewItem[], targets: readonly string[], now: number) => Set<string>;
  readonly #lease: (target: string, n: number, now: number, claims: LeaseClaims | undefined) => Delivery[];
  /** Completions of one event-loop turn (see complete()). */
  readonly #completions: GroupCommit<PendingCompletion, undefined>;
  readonly #claim: (claim: RemoteClaim) => ClaimResult;
  /** Claims of one event-loop turn (see claimRemotePath()). */
  readonly #claims: GroupCommit<RemoteClaim, ClaimResult>;
  /** The waiting completions and claims, then a lease or nothing, in one IMMEDIATE transaction (see #commitQueued). */
  readonly #queuedTx: (completions: readonly PendingCompletion[], claims: readonly RemoteClaim[], lease: LeaseArgs | null) => QueuedOutcomes;
  #closing: Promise<void> | undefined;
  /** When the last lease was asked for (see COMPLETION_WAIT_MS). */
  #lastLeaseAt = 0;
  /** WAL checkpoints off the main thread, from the first lease on (see #startCheckpointer). */
  #checkpointer: Checkpointer | null = null;
  #checkpointFailed = false;
  readonly #checkpointWaits: { everyCommits?: number; idleMs?: number };

  constructor(db: Sqlite.Database, file: string, busyTimeoutMs: number, checkpointWaits: { everyCommits?: number; idleMs?: number }) {
    this.#db = db;
    this.#checkpointWaits = checkpointWaits;
    this.#busyTimeoutMs = busyTimeoutMs;
    this.path = file;
    this.#st = prepareAll(db);
    this.audit = createSqliteAudit(db, () => this.#open());
    // IMMEDIATE: take the write lock before the first read. A deferred transaction that reads and
    // then writes fails at once with SQLITE_BUSY when another process wrote in between, and for
    // lease it means two processes can never select the same rows.
    this.#record = db.transaction(this.#recordTx.bind(this)).immediate;
    this.#lease = db.transaction(this.#leaseTx.bind(this)).immediate;
    // See COMPLETION_WAIT_MS: the next lease, or the flush after that wait, commits it.
    this.#completions = new GroupCommit(
      () => this.#commitQueued(null),
      () => (Date.now() - this.#lastLeaseAt < LEASES_APART_MS ? { ms: COMPLETION_WAIT_MS } : 2),
    );
    // Called inside #queuedTx, a nested transaction is a savepoint: a claim that throws rolls
    // back its own writes only.
    this.#claim = db.transaction(this.#claimTx.bind(this));
    this.#claims = new GroupCommit(() => this.#commitQueued(null), () => 1);
    this.#queuedTx = db.transaction((completions: readonly PendingCompletion[], claims: readonly RemoteClaim[], lease: LeaseArgs | null): QueuedOutcomes => ({
      completions: this.#completeTx(completions),
      claims: this.#claimAllTx(claims),
      leased: lease === null ? [] : this.#leaseTx(lease.target, lease.n, lease.now, lease.claims),
    })).immediate;
  }

  /**
   * Commits the completions and claims waiting for their turn (group commit) in one transaction,
   * with `lease` after them when given: a commit costs more than the statements of a few
   * deliveries (~85 µs against ~7 µs a row here), and an uploader's lease usually comes while
   * other uploads' completions and the last lease's claims wait. Each waiting caller's promise
   * settles as if its own batch had run. When that transaction throws as a whole, the
   * completions, the claims and the lease each run in a transaction of their own, as before they
   * were joined, so that one's error never fails another. Returns the lease's deliveries ([]
   * without one).
   */
  #commitQueued(lease: LeaseArgs | null): Delivery[] {
    try {
      return this.#commitQueuedNow(lease);
    } finally {
      // Counted once committed, so that a checkpoint this count wakes sees its frames. (Counted
      // before, the worker could take the count, checkpoint, and the commit write its frames
      // after: the last commit of a burst was then left in the WAL, as CI runs saw.)
      this.#checkpointer?.committed();
    }
  }

  #commitQueuedNow(lease: LeaseArgs | null): Delivery[] {
    const completions = this.#completions.take();
    const claims = this.#claims.take();
    const leaseAlone = (): Delivery[] => (lease === null ? [] : this.#lease(lease.target, lease.n, lease.now, lease.claims));
    if (completions.length === 0 && claims.length === 0) return leaseAlone();
    let out: QueuedOutcomes;
    try {
      out = this.#queuedTx(completions.map((c) => c.input), claims.map((c) => c.input), lease);
    } catch {
      // Each on its own, as before they shared a transaction: one's error is not the others'.
      runAlone(completions, (b) => this.#queuedTx(b, [], null).completions);
      runAlone(claims, (b) => this.#queuedTx([], b, null).claims);
      return leaseAlone();
    }
    GroupCommit.settle(completions, out.completions);
    GroupCommit.settle(claims, out.claims);
    return out.leased;
  }

  /**
   * Resolves on a later turn of the event loop for a large root (see INDEX_WORKER_MIN_FILES):
   * a caller that starts its walk before awaiting this walks while the index is read.
   */
  async fileIndex(root: string): Promise<Map<string, FileStat>> {
    this.#open();
    if (this.#st.fileCountUpTo.get(root, INDEX_WORKER_MIN_FILES)!.n >= INDEX_WORKER_MIN_FILES) return readFileIndexInWorker(this.path, root, this.#busyTimeoutMs);
    const index = new Map<string, FileStat>();
    for (const r of this.#st.fileIndex.iterate(root)) {
      index.set(r.rel_path, { size: r.size, mtimeMs: r.mtime_ms, ino: r.ino, ...(r.ctime_ms === null ? {} : { ctimeMs: r.ctime_ms }) });
    }
    return index;
  }

  /**
   * All or nothing: one transaction for the whole batch (a row the schema rejects, such as a
   * negative size, rolls the batch back and throws). Per item and target:
   * - no delivery yet: a pending one, generation 1;
   * - the file's recorded (size, mtimeMs, ino) and the delivery's remote path both unchanged:
   *   nothing (re-recording is idempotent, whatever the delivery's status);
   * - otherwise: generation + 1, attempts 0, last error and resume handle cleared, the new remote
   *   path; status pending, except an in_flight delivery, which stays in flight until its
   *   uploader reports the stale generation (then it becomes pending).
   * Returns the targets with a delivery that became pending here (not those left in flight).
   */
  async recordItems(items: NewItem[], targets: readonly string[]): Promise<Set<string>> {
    this.#open();
    if (items.length === 0) return new Set();
    try {
      return this.#record(items, [...new Set(targets)], Date.now());
    } finally {
      this.#checkpointer?.committed();
    }
  }

  #recordTx(items: readonly NewItem[], targets: readonly string[], now: number): Set<string> {
    const st = this.#st;
    const fresh = new Set<string>();
    const rootsSeen = new Map<string, string>();
    for (const { item, remotePath } of items) {
      if (rootsSeen.get(item.root) !== item.rootPath) {
        st.upsertRoot.run(item.root, item.rootPath);
        rootsSeen.set(item.root, item.rootPath);
      }
      const file = st.getFile.get(item.root, item.relPath);
      if (file === undefined) {
        const fileId = Number(
          st.insertFile.run(item.root, item.relPath, item.size, item.mtimeMs, item.ino, item.ctimeMs ?? null, item.rawRelPath ?? null, item.dev ?? null, now).lastInsertRowid,
        );
        // A new file has no deliveries: skip the lookups.
        for (const target of targets) {
          st.insertDelivery.run(fileId, target, remotePath, now, now);
          fresh.add(target);
        }
        continue;
      }
      const recorded = { size: file.size, mtimeMs: file.mtime_ms, ino: file.ino, ...(file.ctime_ms === null ? {} : { ctimeMs: file.ctime_ms }) };
      const unchanged = sameFileStat(recorded, item);
      // An unchanged row without a ctime or a device (written before the journal kept them) gets them now.
      if (!unchanged || (file.ctime_ms === null && item.ctimeMs !== undefined) || (file.dev === null && item.dev !== undefined)) {
        st.updateFile.run(item.size, item.mtimeMs, item.ino, item.ctimeMs ?? null, item.dev ?? null, now, file.id);
      }
      for (const target of targets) {
        const d = st.getDelivery.get(file.id, target);
        if (d === undefined) {
          st.insertDelivery.run(file.id, target, remotePath, now, now);
          fresh.add(target);
        } else if (!unchanged || d.remote_path !== remotePath) {
          st.requeue.run(remotePath, now, d.id);
          if (d.status !== 'in_flight') fresh.add(target);
        }
      }
    }
    return fresh;
  }

  /**
   * Atomic (one IMMEDIATE transaction): no two calls, from this process or another, return the
   * same delivery until it is pending again. Oldest delivery id first; each comes back with the
   * file's latest recorded stat and its current generation. The attempt count is not touched.
   */
  async lease(target: string, n: number, claims?: LeaseClaims): Promise<Delivery[]> {
    this.#open();
    checkCount('n', n);
    if (n === 0) return [];
    if (this.#checkpointer === null && !this.#checkpointFailed) this.#startCheckpointer();
    // With the completions and claims waiting for their turn, in one transaction (#commitQueued).
    const now = Date.now();
    this.#lastLeaseAt = now;
    return this.#commitQueued({ target, n, now, claims });
  }

  /**
   * From the first lease on (a daemon's, not a command's that reads the journal and exits), WAL
   * checkpoints run on a worker (checkpointer.ts) and the main connection's automatic checkpoint
   * is off. Should the worker fail, the automatic checkpoint is on again, and a warning says why.
   */
  #startCheckpointer(): void {
    this.#db.pragma('wal_autocheckpoint = 0');
    this.#checkpointer = new Checkpointer({
      file: this.path,
      busyTimeoutMs: this.#busyTimeoutMs,
      ...this.#checkpointWaits,
      onFailure: (reason) => {
        this.#checkpointer = null;
        this.#checkpointFailed = true;
        if (this.#closing === undefined) this.#db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT_PAGES}`);
        process.emitWarning(`the journal's checkpoints run on the main thread again: ${reason instanceof Error ? reason.message : String(reason)}`, { code: 'STAGECOACH_CHECKPOINT' });
      },
    });
  }

  /**
   * With `claims`, each leased delivery's remote path is claimed here too, in a savepoint of its
   * own (as claimRemotePath would): a claim that throws leaves its delivery without `claim`, and
   * the uploader claims it itself (and meets the error there).
   */
  #leaseTx(target: string, n: number, now: number, claims: LeaseClaims | undefined): Delivery[] {
    const rows = this.#st.selectLease.all(target, n);
    for (const r of rows) this.#st.markInFlight.run(now, r.id);
    return rows.map((r) => {
      const d = this.#delivery(r);
      if (claims !== undefined) {
        try {
          d.claim = this.#claim(leaseClaim(d, claims));
        } catch {
          // Claimed again by the uploader, which reports the error.
        }
      }
      return d;
    });
  }

  #delivery(r: LeaseRow): Delivery {
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
      dev: r.dev,
      attempts: r.attempts,
      resumeHandle: r.resume_handle,
      lastError: r.last_error,
    };
  }

  /**
   * Current generation: done, with the result; last error and resume handle cleared (from any
   * status: the bytes are verified on the remote). Stale generation (the file changed while it
   * was sent): an in_flight delivery goes back to pending so the new version is sent; otherwise
   * nothing changes. Throws `state.unknown-delivery` for an id that does not exist.
   */
  async complete(id: number, generation: number, result: CompleteResult): Promise<void> {
    this.#open();
    // Group commit: the completions asked for in one turn of the event loop are written in one
    // transaction (a put is durable before it completes, so nothing is at risk while it waits);
    // each caller's promise settles once that transaction has committed.
    await this.#completions.add({ id, generation, result });
  }

  /** One transaction for the batch; an unknown id fails its own completion, not the others. */
  #completeTx(batch: readonly PendingCompletion[]): (undefined | Failed)[] {
    const now = Date.now();
    const st = this.#st;
    return batch.map(({ id, generation, result }) => {
      if (st.complete.run(result.remoteId, result.remoteHash, result.bytesSent, now, id, generation).changes > 0) return undefined;
      if (st.staleToPending.run(now, id, generation).changes > 0) return undefined;
      try {
        this.#mustExist(id);
        return undefined;
      } catch (err) {
        return new Failed(err);
      }
    });
  }

  /**
   * Current generation and still pending or in flight: failed, `reason` kept as the last error,
   * resume handle dropped (retryFailed starts over). A delivery already done stays done. Stale
   * generation: as in complete(). Throws `state.unknown-delivery` for an unknown id.
   */
  async fail(id: number, generation: number, reason: string): Promise<void> {
    this.#finish('failed', id, generation, reason);
  }

  /** As fail(), with status skipped (the target will never take this file, by rule). */
  async skip(id: number, generation: number, reason: string): Promise<void> {
    this.#finish('skipped', id, generation, reason);
  }

  #finish(status: 'failed' | 'skipped', id: number, generation: number, reason: string): void {
    this.#open();
    const now = Date.now();
    if (this.#st.finish.run(status, reason, now, id, generation).changes > 0) return;
    if (this.#st.staleToPending.run(now, id, generation).changes > 0) return;
    this.#mustExist(id);
  }

  /**
   * An in_flight delivery back to pending with `reason` as its last error; attempts unchanged.
   * A delivery no longer in flight (reset meanwhile, or finished) is left as is.
   * Throws `state.unknown-delivery` for an unknown id.
   */
  async release(id: number, reason: string | null): Promise<void> {
    this.#open();
    if (this.#st.release.run(reason, Date.now(), id).changes > 0) return;
    this.#mustExist(id);
  }

  /** attempts + 1 and `reason` as the last error, whatever the status. */
  async noteAttempt(id: number, reason: string): Promise<void> {
    this.#open();
    if (this.#st.noteAttempt.run(reason, Date.now(), id).changes === 0) this.#mustExist(id);
  }

  /** Stores (or with null, drops) the resumable-upload handle; cleared again by a new generation. */
  async saveResume(id: number, handle: string | null): Promise<void> {
    this.#open();
    if (this.#st.saveResume.run(handle, Date.now(), id).changes === 0) this.#mustExist(id);
  }

  /**
   * Atomic: two claims (of any process) never get one key. Group commit, as complete(): the
   * claims asked for in one turn of the event loop are made in order in one IMMEDIATE
   * transaction, each in a savepoint of its own (one that throws fails alone); each caller's
   * promise settles once that transaction has committed. One transaction per claim cost ~150 µs
   * of the main thread per file in a 10,000-file backfill.
   */
  async claimRemotePath(claim: RemoteClaim): Promise<ClaimResult> {
    this.#open();
    return this.#claims.add(claim);
  }

  #claimAllTx(batch: readonly RemoteClaim[]): (ClaimResult | Failed)[] {
    return batch.map((claim) => {
      try {
        return this.#claim(claim);
      } catch (err) {
        return new Failed(err);
      }
    });
  }

  #claimTx(c: RemoteClaim): ClaimResult {
    const st = this.#st;
    const mine = st.ownedBy.get(c.target, c.root, c.relPath);
    if (mine !== undefined && mine.wanted === c.wanted) {
      const taken = mine.remote_path === c.wanted ? null : st.nameOwner.get(c.target, c.keyOf(c.wanted));
      return { remotePath: mine.remote_path, takenBy: taken ? `${taken.root}/${taken.rel_path}` : null };
    }
    if (mine !== undefined) st.dropOwned.run(c.target, c.root, c.relPath);
    const first = st.nameOwner.get(c.target, c.keyOf(c.wanted));
    if (first === undefined) {
      st.insertName.run(c.target, c.keyOf(c.wanted), c.root, c.relPath, c.wanted, c.wanted);
      return { remotePath: c.wanted, takenBy: null };
    }
    if (first.root === c.root && first.rel_path === c.relPath) return { remotePath: c.wanted, takenBy: null };
    if (c.alternative === undefined) return { remotePath: c.wanted, takenBy: `${first.root}/${first.rel_path}` };
    for (let attempt = 0; attempt < 1000; attempt++) {
      const alt = c.alternative(c.wanted, attempt);
      const key = c.keyOf(alt);
      if (st.nameOwner.get(c.target, key) === undefined) {
        st.insertName.run(c.target, key, c.root, c.relPath, c.wanted, alt);
        return { remotePath: alt, takenBy: `${first.root}/${first.rel_path}` };
      }
    }
    throw new StagecoachError('state.names-exhausted', `[stagecoach] [state] no free alternative name for ${c.wanted} on ${c.target}`);
  }

  async renamed(limit: number): Promise<RenamedRemote[]> {
    this.#open();
    checkCount('limit', limit);
    return this.#st.renamed.all(limit).map((r) => ({ target: r.target, root: r.root, relPath: r.rel_path, wanted: r.wanted, remotePath: r.remote_path }));
  }

  async resetInFlight(target?: string): Promise<number> {
    this.#open();
    const now = Date.now();
    const r = target === undefined ? this.#st.resetAll.run(now) : this.#st.resetTarget.run(now, target);
    return r.changes;
  }

  async hasWork(target: string): Promise<boolean> {
    this.#open();
    return this.#st.hasWork.get(target, target) !== undefined;
  }

  /**
   * One row per target that has a delivery or a health record, sorted by target name; statuses
   * with no delivery count 0. Counting scans the lease index: linear in deliveries.
   */
  async counts(): Promise<TargetCounts[]> {
    this.#open();
    const out = new Map<string, TargetCounts>();
    for (const r of this.#st.counts.iterate()) {
      let c = out.get(r.target);
      if (c === undefined) {
        c = { target: r.target, pending: 0, inFlight: 0, done: 0, failed: 0, skipped: 0 };
        out.set(r.target, c);
      }
      switch (r.status) {
        case 'pending': c.pending = r.n; break;
        case 'in_flight': c.inFlight = r.n; break;
        case 'done': c.done = r.n; break;
        case 'failed': c.failed = r.n; break;
        case 'skipped': c.skipped = r.n; break;
        case null: break;
      }
    }
    return [...out.values()];
  }

  /** Failed deliveries of the target back to pending with attempts 0 (last error kept). */
  async retryFailed(target: string): Promise<number> {
    this.#open();
    return this.#st.retryFailed.run(Date.now(), target).changes;
  }

  /** Replaces the target's health record. */
  async setHealth(h: TargetHealth): Promise<void> {
    this.#open();
    this.#st.setHealth.run(h.target, h.status, h.reason, h.since, h.retryAt);
  }

  /** Every health record, sorted by target name. */
  async health(): Promise<TargetHealth[]> {
    this.#open();
    return this.#st.health.all().map((r) => ({
      target: r.target,
      status: r.status,
      reason: r.reason,
      since: r.since,
      retryAt: r.retry_at,
    }));
  }

  /** Up to `limit` deliveries with the status (of one target or all), newest updated_at first, then highest id. */
  async recent(opts: { status: DeliveryStatus; target?: string; limit: number }): Promise<DeliveryRecord[]> {
    this.#open();
    if (!STATUSES.has(opts.status)) {
      throw new StagecoachError(
        'state.invalid-argument',
        `[stagecoach] [state] Expected \`status\` to be one of ${[...STATUSES].join(', ')}, got ${String(opts.status)}`,
      );
    }
    checkCount('limit', opts.limit);
    const rows =
      opts.target === undefined
        ? this.#st.recentAll.all(opts.status, opts.limit)
        : this.#st.recentTarget.all(opts.status, opts.target, opts.limit);
    return rows.map(toRecord);
  }

  /** See Store.search. */
  async search(opts: { query: string; limit: number }): Promise<DeliveryRecord[]> {
    this.#open();
    checkCount('limit', opts.limit);
    const pattern = `%${opts.query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    return this.#st.search.all(pattern, opts.limit).map(toRecord);
  }

  /** Idempotent: every call returns the same promise. Later calls of other methods throw `state.closed`. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Claims and completions asked for before close are committed, not dropped.
    this.#commitQueued(null);
    // The last connection's close checkpoints what is left.
    await this.#checkpointer?.stop();
    try {
      // SQLite's advice for long-lived connections: refresh planner statistics on close. Best
      // effort: on a full disk it cannot write, and the journal is closed all the same.
      this.#db.pragma('optimize');
    } catch {
      // nothing to undo
    } finally {
      this.#db.close();
    }
  }

  #open(): void {
    if (this.#closing !== undefined) {
      throw new StagecoachError('state.closed', `[stagecoach] [state] ${this.path} is closed`);
    }
  }

  #mustExist(id: number): void {
    if (this.#st.exists.get(id) === undefined) {
      throw new StagecoachError('state.unknown-delivery', `[stagecoach] [state] no delivery with id ${id}`);
    }
  }
}
