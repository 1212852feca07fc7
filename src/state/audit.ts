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
}

interface CopyRow {
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

interface FileRow {
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
    filesAll: db.prepare<[], FileRow>(`${FILES} ORDER BY f.root, f.rel_path, d.target`),
    filesRoot: db.prepare<[string], FileRow>(`${FILES} WHERE f.root = ? ORDER BY f.root, f.rel_path, d.target`),
  };
  const markAll = db.transaction((ids: readonly number[], at: number) => {
    for (const id of ids) st.verified.run(at, id);
  });
  const toCopy = (r: CopyRow): DoneCopy => ({
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
      const out: JournalFile[] = [];
      let last: JournalFile | undefined;
      let lastId = -1;
      for (const r of root === undefined ? st.filesAll.iterate() : st.filesRoot.iterate(root)) {
        if (r.file_id !== lastId) {
          last = { root: r.root, rootPath: r.root_path, relPath: r.rel_path, size: r.size, mtimeMs: r.mtime_ms, ino: r.ino, copies: [] };
          out.push(last);
          lastId = r.file_id;
        }
        if (r.id !== null && r.target !== null) {
          last!.copies.push({
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
    },
  };
}
