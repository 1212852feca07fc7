/**
 * The journal as verify, scrub and restore read it: done deliveries with what the remote should
 * hold, when each was last found intact, and a way to send one back to pending. A separate
 * contract from Store (which the pipeline uses), kept by the SQLite journal as `store.audit`.
 */
import type Sqlite from 'better-sqlite3';

/** A done delivery: what the target should hold for one file. */
export interface DoneCopy {
  id: number;
  target: string;
  generation: number;
  root: string;
  relPath: string;
  remotePath: string;
  /** The file's recorded size: the remote copy must have it. */
  size: number;
  mtimeMs: number;
  remoteId: string | null;
  /** The provider's hash the upload verified (null only for rows from before hashes were kept). */
  remoteHash: string | null;
  /** Epoch ms when the copy was last found intact after its upload; null: not since. */
  verifiedAt: number | null;
  /** Epoch ms of the upload (the delivery's last update while done). */
  updatedAt: number;
}

/** One file of the journal, with its copy on each target (any status). */
export interface JournalFile {
  root: string;
  rootPath: string;
  relPath: string;
  size: number;
  mtimeMs: number;
  ino: number;
  copies: Array<{ target: string; status: string; remotePath: string; remoteHash: string | null; verifiedAt: number | null; generation: number; id: number }>;
}

export interface AuditStore {
  /** Done deliveries of `target` (one root, or all), least recently verified first (never verified first, then oldest id), at most `limit`. */
  doneCopies(target: string, opts?: { root?: string; limit?: number }): Promise<DoneCopy[]>;
  /** How many done deliveries `target` has (in one root, or all). */
  countDone(target: string, root?: string): Promise<number>;
  /** Records that these done deliveries were found intact at `at`. */
  markVerified(ids: readonly number[], at: number): Promise<void>;
  /**
   * A done delivery, still at `generation`, back to pending with `reason` as its last error and
   * attempts 0, so the next run archives the file again. Returns false when it was no longer
   * done at that generation (the file changed meanwhile: it is on its way already).
   */
  requeue(id: number, generation: number, reason: string): Promise<boolean>;
  /** Every file of the journal (one root, or all) with its deliveries, by root then path. */
  files(root?: string): Promise<JournalFile[]>;
  /**
   * Files of `root` that at least `minCopies` targets hold a hash-verified copy of (`upload`: the
   * upload's check; `scrub`: found intact since), with no upload of them in flight, and no
   * removal recorded for this very stat. Deliveries still pending to other (parked, slow)
   * targets do not hold a file back: `minCopies` is the bar.
   */
  removalCandidates(root: string, minCopies: number, verifiedBy: 'upload' | 'scrub'): Promise<RemovalCandidate[]>;
  /** Journals a removal before it happens; returns its id. */
  recordRemoval(r: NewRemoval): Promise<number>;
  /** The removal happened ('done'), or did not ('kept', with the reason). */
  settleRemoval(id: number, state: 'done' | 'kept', reason: string | null): Promise<void>;
  /** Removals journaled but not settled (a crash came between): to finish at the next start. */
  openRemovals(): Promise<OpenRemoval[]>;
  /** Bytes of every file removed (deleted or moved away) so far. */
  freedBytes(): Promise<number>;
}

export interface RemovalCandidate {
  fileId: number;
  root: string;
  rootPath: string;
  relPath: string;
  size: number;
  mtimeMs: number;
  ino: number;
  copies: number;
}

export interface NewRemoval {
  fileId: number;
  action: 'delete' | 'move';
  dest: string | null;
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  copies: number;
}

export interface OpenRemoval extends NewRemoval {
  id: number;
  root: string;
  rootPath: string;
  relPath: string;
}

/** A done delivery's row as both journals' audit queries select it. */
export interface CopyRow {
  id: number;
  target: string;
  generation: number;
  root: string;
  rel_path: string;
  remote_path: string;
  size: number;
  mtime_ms: number;
  remote_id: string | null;
  remote_hash: string | null;
  verified_at: number | null;
  updated_at: number;
}

/** A journaled file with one of its deliveries, as both journals' audit queries select it. */
export interface FileRow {
  file_id: number;
  root: string;
  root_path: string;
  rel_path: string;
  size: number;
  mtime_ms: number;
  ino: number;
  id: number | null;
  target: string | null;
  status: string | null;
  remote_path: string | null;
  remote_hash: string | null;
  verified_at: number | null;
  generation: number | null;
}

/** A done delivery's row as a DoneCopy (both journals). */
export function toCopy(r: CopyRow): DoneCopy {
  return {
    id: r.id,
    target: r.target,
    generation: r.generation,
    root: r.root,
    relPath: r.rel_path,
    remotePath: r.remote_path,
    size: r.size,
    mtimeMs: r.mtime_ms,
    remoteId: r.remote_id,
    remoteHash: r.remote_hash,
    verifiedAt: r.verified_at,
    updatedAt: r.updated_at,
  };
}

/** Rows of a file with each of its deliveries (ordered by file) as one JournalFile per file. */
export function groupFiles(rows: Iterable<FileRow>): JournalFile[] {
  const out: JournalFile[] = [];
  let last: JournalFile | undefined;
  let lastId = -1;
  for (const r of rows) {
    if (r.file_id !== lastId || last === undefined) {
      last = { root: r.root, rootPath: r.root_path, relPath: r.rel_path, size: r.size, mtimeMs: r.mtime_ms, ino: r.ino, copies: [] };
      out.push(last);
      lastId = r.file_id;
    }
    if (r.id !== null && r.target !== null) {
      last.copies.push({
        id: r.id,
        target: r.target,
        status: r.status!,
        remotePath: r.remote_path!,
        remoteHash: r.remote_hash,
        verifiedAt: r.verified_at,
        generation: r.generation!,
      });
    }
  }
  return out;
}

const COPY = `SELECT d.id, d.target, d.generation, f.root, f.rel_path, d.remote_path, f.size, f.mtime_ms,
    d.remote_id, d.remote_hash, d.verified_at, d.updated_at
  FROM deliveries d JOIN files f ON f.id = d.file_id
  WHERE d.target = ? AND d.status = 'done'`;
const ORDER = ' ORDER BY d.verified_at IS NOT NULL, d.verified_at, d.id LIMIT ?';

const FILES = `SELECT f.id AS file_id, f.root, r.path AS root_path, f.rel_path, f.size, f.mtime_ms, f.ino,
    d.id, d.target, d.status, d.remote_path, d.remote_hash, d.verified_at, d.generation
  FROM files f JOIN roots r ON r.name = f.root LEFT JOIN deliveries d ON d.file_id = f.id`;

/** The SQLite journal's AuditStore on `db`; `open()` throws once the journal is closed. */
export function createSqliteAudit(db: Sqlite.Database, open: () => void): AuditStore {
  const st = {
    all: db.prepare<[string, number], CopyRow>(COPY + ORDER),
    root: db.prepare<[string, string, number], CopyRow>(`${COPY} AND f.root = ?${ORDER}`),
    countAll: db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM deliveries WHERE target = ? AND status = 'done'`),
    countRoot: db.prepare<[string, string], { n: number }>(
      `SELECT count(*) AS n FROM deliveries d JOIN files f ON f.id = d.file_id WHERE d.target = ? AND d.status = 'done' AND f.root = ?`,
    ),
    verified: db.prepare<[number, number]>(`UPDATE deliveries SET verified_at = ? WHERE id = ? AND status = 'done'`),
    requeue: db.prepare<[string, number, number, number]>(
      `UPDATE deliveries SET status = 'pending', attempts = 0, last_error = ?, resume_handle = NULL, verified_at = NULL, updated_at = ?
       WHERE id = ? AND generation = ? AND status = 'done'`,
    ),
    candidates: db.prepare<[string, number, number], { file_id: number; root: string; root_path: string; rel_path: string; size: number; mtime_ms: number; ino: number; copies: number }>(
      `SELECT f.id AS file_id, f.root, r.path AS root_path, f.rel_path, f.size, f.mtime_ms, f.ino, count(*) AS copies
       FROM files f JOIN roots r ON r.name = f.root JOIN deliveries d ON d.file_id = f.id
       WHERE f.root = ? AND d.status = 'done' AND d.remote_hash IS NOT NULL AND (? = 0 OR d.verified_at IS NOT NULL)
         AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.file_id = f.id AND x.status = 'in_flight')
         AND NOT EXISTS (SELECT 1 FROM removals m WHERE m.file_id = f.id AND m.state IN ('done', 'intent') AND m.size = f.size AND m.mtime_ms = f.mtime_ms AND m.ino = f.ino)
       GROUP BY f.id HAVING count(*) >= ?
       ORDER BY f.rel_path`,
    ),
    addRemoval: db.prepare<[number, string, string | null, number, number, number, number, number, number, number]>(
      `INSERT INTO removals (file_id, action, dest, size, mtime_ms, ino, dev, copies, state, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'intent', ?, ?)`,
    ),
    settle: db.prepare<[string, string | null, number, number]>(`UPDATE removals SET state = ?, reason = ?, updated_at = ? WHERE id = ? AND state = 'intent'`),
    open: db.prepare<[], { id: number; file_id: number; action: 'delete' | 'move'; dest: string | null; size: number; mtime_ms: number; ino: number; dev: number; copies: number; root: string; root_path: string; rel_path: string }>(
      `SELECT m.id, m.file_id, m.action, m.dest, m.size, m.mtime_ms, m.ino, m.dev, m.copies, f.root, r.path AS root_path, f.rel_path
       FROM removals m JOIN files f ON f.id = m.file_id JOIN roots r ON r.name = f.root
       WHERE m.state = 'intent' ORDER BY m.id`,
    ),
    freed: db.prepare<[], { n: number | null }>(`SELECT sum(size) AS n FROM removals WHERE state = 'done'`),
    filesAll: db.prepare<[], FileRow>(`${FILES} ORDER BY f.root, f.rel_path, d.target`),
    filesRoot: db.prepare<[string], FileRow>(`${FILES} WHERE f.root = ? ORDER BY f.root, f.rel_path, d.target`),
  };
  const markAll = db.transaction((ids: readonly number[], at: number) => {
    for (const id of ids) st.verified.run(at, id);
  });
  return {
    async doneCopies(target, opts = {}) {
      open();
      const limit = opts.limit ?? -1;
      const rows = opts.root === undefined ? st.all.all(target, limit) : st.root.all(target, opts.root, limit);
      return rows.map(toCopy);
    },
    async countDone(target, root) {
      open();
      return (root === undefined ? st.countAll.get(target) : st.countRoot.get(target, root))?.n ?? 0;
    },
    async markVerified(ids, at) {
      open();
      if (ids.length > 0) markAll(ids, at);
    },
    async requeue(id, generation, reason) {
      open();
      return st.requeue.run(reason, Date.now(), id, generation).changes > 0;
    },
    async files(root) {
      open();
      return groupFiles(root === undefined ? st.filesAll.iterate() : st.filesRoot.iterate(root));
    },
    async removalCandidates(root, minCopies, verifiedBy) {
      open();
      return st.candidates.all(root, verifiedBy === 'scrub' ? 1 : 0, minCopies).map((r) => ({
        fileId: r.file_id,
        root: r.root,
        rootPath: r.root_path,
        relPath: r.rel_path,
        size: r.size,
        mtimeMs: r.mtime_ms,
        ino: r.ino,
        copies: r.copies,
      }));
    },
    async recordRemoval(r) {
      open();
      const now = Date.now();
      return Number(st.addRemoval.run(r.fileId, r.action, r.dest, r.size, r.mtimeMs, r.ino, r.dev, r.copies, now, now).lastInsertRowid);
    },
    async settleRemoval(id, state, reason) {
      open();
      st.settle.run(state, reason, Date.now(), id);
    },
    async openRemovals() {
      open();
      return st.open.all().map((r) => ({
        id: r.id,
        fileId: r.file_id,
        action: r.action,
        dest: r.dest,
        size: r.size,
        mtimeMs: r.mtime_ms,
        ino: r.ino,
        dev: r.dev,
        copies: r.copies,
        root: r.root,
        rootPath: r.root_path,
        relPath: r.rel_path,
      }));
    },
    async freedBytes() {
      open();
      return st.freed.get()?.n ?? 0;
    },
  };
}
