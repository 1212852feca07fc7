/**
 * The PostgreSQL journal's {@link AuditStore} (src/state/audit.ts): the same queries as the SQLite
 * one, in PostgreSQL's dialect, through the store's query runner. Each method is one statement
 * (markVerified one UPDATE over the ids), so daemons sharing the journal can scrub and sweep at
 * once: a requeue or a settle whose row moved on meanwhile changes nothing.
 *
 * The runner retries a statement on a new connection when the connection is lost (pg-store.ts
 * #with): always when the connection could not be made (nothing ran), and after the statement
 * was sent only when `replayable` is true, because a lost connection does not say whether it
 * committed. Replayable: every SELECT (a read), markVerified (sets the same verified_at again)
 * and settleRemoval (`state = 'intent'` in its WHERE: a second run changes nothing). Not
 * replayable: requeue (a second run finds the row already pending and would answer false for a
 * requeue that happened) and recordRemoval (a second INSERT would write a second intent): those
 * throw the connection error, and the verify or sweep that called them reports it.
 */
import type pg from 'pg';
import { groupFiles, toCopy, type AuditStore, type CopyRow, type FileRow } from './audit.js';

const COPY = `SELECT d.id, d.target, d.generation, f.root, f.rel_path, d.remote_path, f.size, f.mtime_ms,
    d.remote_id, d.remote_hash, d.verified_at, d.updated_at
  FROM deliveries d JOIN files f ON f.id = d.file_id
  WHERE d.target = $1 AND d.status = 'done' AND ($2::text IS NULL OR f.root = $2)
  ORDER BY d.verified_at IS NOT NULL, d.verified_at, d.id LIMIT $3`;

// Paths ordered byte-wise (COLLATE "C"), as SQLite's default BINARY collation orders them.
const FILES = `SELECT f.id AS file_id, f.root, r.path AS root_path, f.rel_path, f.size, f.mtime_ms, f.ino,
    d.id, d.target, d.status, d.remote_path, d.remote_hash, d.verified_at, d.generation
  FROM files f JOIN roots r ON r.name = f.root LEFT JOIN deliveries d ON d.file_id = f.id
  WHERE $1::text IS NULL OR f.root = $1
  ORDER BY f.root COLLATE "C", f.rel_path COLLATE "C", d.target COLLATE "C"`;

const CANDIDATES = `SELECT f.id AS file_id, f.root, r.path AS root_path, f.rel_path, f.size, f.mtime_ms, f.ino, count(*)::int AS copies
  FROM files f JOIN roots r ON r.name = f.root JOIN deliveries d ON d.file_id = f.id
  WHERE f.root = $1 AND d.status = 'done' AND d.remote_hash IS NOT NULL AND (NOT $2::boolean OR d.verified_at IS NOT NULL)
    AND NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.file_id = f.id AND x.status = 'in_flight')
    AND NOT EXISTS (SELECT 1 FROM removals m WHERE m.file_id = f.id AND m.state IN ('done', 'intent') AND m.size = f.size AND m.mtime_ms = f.mtime_ms AND m.ino = f.ino)
  GROUP BY f.id, r.path HAVING count(*) >= $3
  ORDER BY f.rel_path COLLATE "C"`;

/** Runs one statement; retried on a lost connection as the module's comment says. */
export type PgAuditQuery = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[], replayable: boolean) => Promise<pg.QueryResult<R>>;

/** The PostgreSQL journal's AuditStore through `query`; `open()` throws once the journal is closed. */
export function createPgAudit(query: PgAuditQuery, open: () => void): AuditStore {
  return {
    async doneCopies(target, opts = {}) {
      open();
      const r = await query<CopyRow>(COPY, [target, opts.root ?? null, opts.limit ?? null], true);
      return r.rows.map(toCopy);
    },
    async countDone(target, root) {
      open();
      const r = await query<{ n: number }>(
        `SELECT count(*)::int AS n FROM deliveries d JOIN files f ON f.id = d.file_id
         WHERE d.target = $1 AND d.status = 'done' AND ($2::text IS NULL OR f.root = $2)`,
        [target, root ?? null],
        true,
      );
      return r.rows[0]?.n ?? 0;
    },
    async markVerified(ids, at) {
      open();
      if (ids.length === 0) return;
      await query(`UPDATE deliveries SET verified_at = $1 WHERE id = ANY($2::bigint[]) AND status = 'done'`, [at, [...ids]], true);
    },
    async requeue(id, generation, reason) {
      open();
      const r = await query(
        `UPDATE deliveries SET status = 'pending', attempts = 0, last_error = $1, resume_handle = NULL, verified_at = NULL,
           leased_by = NULL, lease_until = NULL, updated_at = $2
         WHERE id = $3 AND generation = $4 AND status = 'done'`,
        [reason, Date.now(), id, generation],
        false,
      );
      return (r.rowCount ?? 0) > 0;
    },
    async files(root) {
      open();
      const r = await query<FileRow>(FILES, [root ?? null], true);
      return groupFiles(r.rows);
    },
    async removalCandidates(root, minCopies, verifiedBy) {
      open();
      const r = await query<{ file_id: number; root: string; root_path: string; rel_path: string; size: number; mtime_ms: number; ino: number; copies: number }>(
        CANDIDATES,
        [root, verifiedBy === 'scrub', minCopies],
        true,
      );
      return r.rows.map((x) => ({
        fileId: x.file_id,
        root: x.root,
        rootPath: x.root_path,
        relPath: x.rel_path,
        size: x.size,
        mtimeMs: x.mtime_ms,
        ino: x.ino,
        copies: x.copies,
      }));
    },
    async recordRemoval(m) {
      open();
      const now = Date.now();
      const r = await query<{ id: number }>(
        `INSERT INTO removals (file_id, action, dest, size, mtime_ms, ino, dev, copies, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'intent', $9, $9) RETURNING id`,
        [m.fileId, m.action, m.dest, m.size, m.mtimeMs, m.ino, m.dev, m.copies, now],
        false,
      );
      return r.rows[0]!.id;
    },
    async settleRemoval(id, state, reason) {
      open();
      await query(`UPDATE removals SET state = $1, reason = $2, updated_at = $3 WHERE id = $4 AND state = 'intent'`, [state, reason, Date.now(), id], true);
    },
    async openRemovals() {
      open();
      const r = await query<{ id: number; file_id: number; action: 'delete' | 'move'; dest: string | null; size: number; mtime_ms: number; ino: number; dev: number; copies: number; root: string; root_path: string; rel_path: string }>(
        `SELECT m.id, m.file_id, m.action, m.dest, m.size, m.mtime_ms, m.ino, m.dev, m.copies, f.root, r.path AS root_path, f.rel_path
         FROM removals m JOIN files f ON f.id = m.file_id JOIN roots r ON r.name = f.root
         WHERE m.state = 'intent' ORDER BY m.id`,
        [],
        true,
      );
      return r.rows.map((x) => ({
        id: x.id,
        fileId: x.file_id,
        action: x.action,
        dest: x.dest,
        size: x.size,
        mtimeMs: x.mtime_ms,
        ino: x.ino,
        dev: x.dev,
        copies: x.copies,
        root: x.root,
        rootPath: x.root_path,
        relPath: x.rel_path,
      }));
    },
    async freedBytes() {
      open();
      const r = await query<{ n: number | null }>(`SELECT sum(size)::bigint AS n FROM removals WHERE state = 'done'`, [], true);
      return r.rows[0]?.n ?? 0;
    },
  };
}
