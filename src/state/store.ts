import type { FileItem, FileStat } from '../archive/item.js';
import type { FleetLocks, SharedSecrets } from '../targets/target.js';

export type DeliveryStatus = 'pending' | 'in_flight' | 'done' | 'failed' | 'skipped';

/** One file version's delivery to one target, as leased to an uploader. */
export interface Delivery {
  id: number;
  target: string;
  /** Bumped each time the file changes; completing an older generation re-queues the delivery. */
  generation: number;
  root: string;
  rootPath: string;
  relPath: string;
  /** The path inside the root as bytes when a name in it is not valid UTF-8 (see FileItem). */
  rawRelPath?: Buffer;
  remotePath: string;
  size: number;
  mtimeMs: number;
  ino: number;
  /** The device the file was on when journaled; null for files journaled before it was kept. */
  dev: number | null;
  attempts: number;
  resumeHandle: string | null;
  lastError: string | null;
  /**
   * The remote path's claim, when the lease made it (`Store.lease` with `claims`): where the
   * file goes. Absent: claim it (claimRemotePath) before the upload.
   */
  claim?: ClaimResult;
}

/**
 * How a lease may claim its deliveries' remote paths as it leases them (see Store.lease), as
 * claimRemotePath would for each: the target's name comparison and its alternative names.
 */
export interface LeaseClaims {
  keyOf(remotePath: string): string;
  /** As RemoteClaim.alternative, for the source `owner` (`root/relPath`). Absent: a taken name is only reported. */
  alternative?(wanted: string, owner: string, attempt: number): string;
}

/** The claim of `d`'s remote path under `claims`, as claimRemotePath takes it. */
export function leaseClaim(d: Delivery, claims: LeaseClaims): RemoteClaim {
  const owner = `${d.root}/${d.relPath}`;
  const alternative = claims.alternative;
  return {
    target: d.target,
    root: d.root,
    relPath: d.relPath,
    wanted: d.remotePath,
    keyOf: claims.keyOf,
    ...(alternative ? { alternative: (wanted: string, attempt: number) => alternative(wanted, owner, attempt) } : {}),
  };
}

export interface NewItem {
  item: FileItem;
  remotePath: string;
}

export interface TargetCounts {
  target: string;
  pending: number;
  inFlight: number;
  done: number;
  failed: number;
  skipped: number;
}

/**
 * A target's health. `down`: parked, `reason` says why, `retryAt` when it is tried next. `up`
 * with a `reason`: running, but its uploads are failing and being retried (the reason says
 * `retrying: … (attempt n, next in s)`, `retryAt` is the next attempt; see
 * telemetry/target-report.ts). `up` without a reason: working.
 */
export interface TargetHealth {
  target: string;
  status: 'up' | 'down';
  reason: string | null;
  /** Epoch ms when the status last changed. */
  since: number;
  /** Epoch ms when a parked target is tried again. */
  retryAt: number | null;
}

export interface DeliveryRecord {
  id: number;
  target: string;
  root: string;
  relPath: string;
  remotePath: string;
  size: number;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  remoteId: string | null;
  remoteHash: string | null;
  updatedAt: number;
}

/** A request to own a remote path on a target (see Store.claimRemotePath). */
export interface RemoteClaim {
  target: string;
  root: string;
  relPath: string;
  /** The remote path the template gave. */
  wanted: string;
  /** The target's name comparison: two paths with one key are one file there. */
  keyOf(remotePath: string): string;
  /**
   * A deterministic alternative name for `wanted`, `attempt` 0, 1, … (used when it is taken).
   * Absent: a taken `wanted` is reported and nothing is claimed.
   */
  alternative?(wanted: string, attempt: number): string;
}

/** What a claim gave: where the file goes, and whose name it would have overwritten. */
export interface ClaimResult {
  remotePath: string;
  /** The other source (`root/relPath`) owning `wanted` on this target, or null when it was free. */
  takenBy: string | null;
}

/** A file stored under another name than its template gave, because another file owns that one. */
export interface RenamedRemote {
  target: string;
  root: string;
  relPath: string;
  wanted: string;
  remotePath: string;
}

export interface CompleteResult {
  remoteId: string;
  remoteHash: string;
  bytesSent: number;
}

/** One daemon sharing the journal (a shared journal's fleet; see Store.nodes). */
export interface NodeInfo {
  /** The daemon's node name (config `node`, default the host name). */
  name: string;
  /** Roots it can read (it leases only their deliveries). */
  roots: string[];
  /** Roots it watches. */
  watches: string[];
  /** Epoch ms of its start and of its last heartbeat. */
  startedAt: number;
  lastSeen: number;
  /** Deliveries it holds in flight. */
  leases: number;
  /** Whether its last heartbeat is within the lease time (a dead node's leases expire). */
  alive: boolean;
}

/**
 * The journal. The pipeline talks only to this interface; no SQL lives outside src/state/.
 * Methods are async so that a shared store (PostgreSQL) can implement them later.
 *
 * Guarantees: `recordItems` is one transaction; a delivery is leased to one uploader at a time
 * (`lease` moves pending to in_flight atomically); `complete` with a stale generation puts the
 * delivery back to pending instead of done, so a file changed mid-upload is sent again.
 */
export interface Store {
  /** The recorded stat of every file under a root (for reconciliation at start). */
  fileIndex(root: string): Promise<Map<string, FileStat>>;
  /**
   * Records each item's file row and one pending delivery per target, in one transaction.
   * An existing delivery of the same file and target is re-queued (generation + 1) unless the
   * recorded stat is unchanged. Returns the targets that got new pending work.
   */
  recordItems(items: NewItem[], targets: readonly string[]): Promise<Set<string>>;
  /**
   * Moves up to n pending deliveries of the target to in_flight, oldest first. With `claims`,
   * the store may also claim each delivery's remote path in the same transaction (one commit
   * where there were two); each delivery it claimed for comes back with `claim`.
   */
  lease(target: string, n: number, claims?: LeaseClaims): Promise<Delivery[]>;
  complete(id: number, generation: number, result: CompleteResult): Promise<void>;
  fail(id: number, generation: number, reason: string): Promise<void>;
  skip(id: number, generation: number, reason: string): Promise<void>;
  /**
   * Back to pending (shutdown, transient failure past this run), attempts kept and `reason` noted
   * as the last error. A null reason (a delivery leased ahead and never sent) keeps the last
   * error there was: it may say that an earlier attempt, or a daemon whose lease expired, may
   * have put the file already (PutRequest.firstPut).
   */
  release(id: number, reason: string | null): Promise<void>;
  /** Counts an attempt and its error, the delivery staying in flight. */
  noteAttempt(id: number, reason: string): Promise<void>;
  saveResume(id: number, handle: string | null): Promise<void>;
  /**
   * Atomically makes the source (root, relPath) the owner of a remote path on the target: the
   * one it already owns for `wanted`, else `wanted` when no other source owns its key, else the
   * first free `alternative`. Returns the path to store at and, when `wanted` was taken, by whom.
   * A source owns one path per target at a time: a claim for a new `wanted` frees its old one.
   */
  claimRemotePath(claim: RemoteClaim): Promise<ClaimResult>;
  /** Files stored under another name than their template gave (see claimRemotePath), by target. */
  renamed(limit: number): Promise<RenamedRemote[]>;
  /**
   * Every in_flight delivery (of one target, or of all) back to pending: at start, and when an
   * uploader restarts after a crash. Returns how many.
   */
  resetInFlight(target?: string): Promise<number>;
  counts(): Promise<TargetCounts[]>;
  /** Whether the target has a delivery pending or in flight (an index lookup, not a count). */
  hasWork(target: string): Promise<boolean>;
  /** Failed deliveries of a target back to pending. Returns how many. */
  retryFailed(target: string): Promise<number>;
  setHealth(health: TargetHealth): Promise<void>;
  health(): Promise<TargetHealth[]>;
  recent(opts: { status: DeliveryStatus; target?: string; limit: number }): Promise<DeliveryRecord[]>;
  /**
   * A journal shared by several daemons only (PostgreSQL): every node that has joined it, by name.
   * Absent on the embedded SQLite journal.
   */
  nodes?(): Promise<NodeInfo[]>;
  /**
   * A shared journal only: takes `n` tokens from the fleet-wide bucket `key` (refilled at
   * `perSecond`, holding at most `burst`), going into debt when short, and returns how many
   * milliseconds the caller must wait before acting (0 when the tokens were there).
   */
  takeTokens?(key: string, perSecond: number, burst: number, n: number): Promise<number>;
  /**
   * A journal on a server only (PostgreSQL): whether it answered its last call. While it does not,
   * calls wait and retry on a new connection (see src/state/pg-retry.ts).
   */
  reachability?(): { reachable: boolean; since: number; error: string | null };
  /** A shared journal only: secrets the daemons share (see SharedSecrets in src/targets/target.ts). */
  readonly sharedSecrets?: SharedSecrets;
  /** A shared journal only: locks every daemon on it honours (see FleetLocks in src/targets/target.ts). */
  readonly fleetLocks?: FleetLocks;
  /**
   * "Where is my file?": every delivery of the files whose path inside their root contains
   * `query` (case-insensitive for ASCII letters; `%` and `_` match themselves), at most `limit`
   * files, ordered by root and path, then target. Optional: a store without it has no search box.
   */
  search?(opts: { query: string; limit: number }): Promise<DeliveryRecord[]>;
  /** Idempotent. */
  close(): Promise<void>;
}
