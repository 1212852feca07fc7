import type Sqlite from 'better-sqlite3';
import { StagecoachError } from '../errors.js';

/**
 * One schema step. `version` numbers start at 1 and increase by one; `sql` may hold several
 * statements. A released migration is never edited: change the schema with a new one.
 */
export interface Migration {
  version: number;
  sql: string;
}

/**
 * The schema, oldest first. `PRAGMA user_version` holds the last version applied to a database.
 *
 * Column notes that the SQL cannot say:
 * - `roots` maps a root's configured name to its current absolute path, so a root moved on disk
 *   (same name, new path) moves every file of it at once; files keep only the name.
 * - `files.mtime_ms` is REAL because fs.Stats.mtimeMs has a fractional part; `ino` is INTEGER
 *   affinity, which keeps any JS number exactly (values past 2^63 stay REAL).
 * - `files.ctime_ms` (migration 2) is the status change time in whole ms, NULL when not known.
 * - `files.raw_path` (migration 2) is the path inside the root as bytes when a name in it is not
 *   valid UTF-8 (`rel_path` then holds the escaped form, archive/raw-name.ts); NULL otherwise.
 * - `files.dev` (migration 4) is the device, INTEGER like `ino`; NULL for files journaled before.
 * - `deliveries.generation` counts the file versions this delivery has been asked to carry.
 *   `remote_id`/`remote_hash`/`bytes_sent` describe the last completed upload and survive a
 *   re-queue: they say what the remote holds now.
 * - `deliveries_lease` serves lease/resetInFlight/counts; `deliveries_recent` serves recent()
 *   and resetInFlight() of all targets.
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE roots (
        name TEXT PRIMARY KEY,
        path TEXT NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE files (
        id         INTEGER PRIMARY KEY,
        root       TEXT    NOT NULL REFERENCES roots(name),
        rel_path   TEXT    NOT NULL,
        size       INTEGER NOT NULL CHECK (size >= 0),
        mtime_ms   REAL    NOT NULL,
        ino        INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (root, rel_path)
      );

      CREATE TABLE deliveries (
        id            INTEGER PRIMARY KEY,
        file_id       INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        target        TEXT    NOT NULL,
        remote_path   TEXT    NOT NULL,
        generation    INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1),
        status        TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'in_flight', 'done', 'failed', 'skipped')),
        attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error    TEXT,
        remote_id     TEXT,
        remote_hash   TEXT,
        resume_handle TEXT,
        bytes_sent    INTEGER,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        UNIQUE (file_id, target)
      );
      CREATE INDEX deliveries_lease ON deliveries (target, status, id);
      CREATE INDEX deliveries_recent ON deliveries (status, updated_at);

      CREATE TABLE target_health (
        target   TEXT PRIMARY KEY,
        status   TEXT NOT NULL CHECK (status IN ('up', 'down')),
        reason   TEXT,
        since    INTEGER NOT NULL,
        retry_at INTEGER
      ) WITHOUT ROWID;
    `,
  },
  {
    // A same-size rewrite with its mtime put back changes only the ctime (issue 14.4). NULL in
    // rows written before: such a row's ctime is filled in at its next sighting, not compared.
    // raw_path: a path with a name that is not valid UTF-8, as bytes (issue 14.3).
    version: 2,
    sql: `
      ALTER TABLE files ADD COLUMN ctime_ms INTEGER;
      ALTER TABLE files ADD COLUMN raw_path BLOB;
    `,
  },
  {
    // Issue 17. verified_at: when a done delivery's remote copy was last found intact (NULL: not
    // since upload); scrubs take the least recently verified first. removals: the after-archive
    // policy's journal, a row written ('intent') before a local file is deleted or moved, then
    // 'done' (or 'kept' with the reason it was not), with the stat it was checked against.
    version: 3,
    sql: `
      ALTER TABLE deliveries ADD COLUMN verified_at INTEGER;
      CREATE INDEX deliveries_verified ON deliveries (target, status, verified_at);

      CREATE TABLE removals (
        id         INTEGER PRIMARY KEY,
        file_id    INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        action     TEXT    NOT NULL CHECK (action IN ('delete', 'move')),
        dest       TEXT,
        size       INTEGER NOT NULL,
        mtime_ms   REAL    NOT NULL,
        ino        INTEGER NOT NULL,
        dev        INTEGER NOT NULL,
        copies     INTEGER NOT NULL,
        state      TEXT    NOT NULL CHECK (state IN ('intent', 'done', 'kept')),
        reason     TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX removals_file ON removals (file_id, state);
      CREATE INDEX removals_state ON removals (state);
    `,
  },
  {
    // The device of each file, so the uploader can tell that the descriptor it opened is the
    // very file the watcher journaled (dev + ino), not one a link or a swapped folder led to.
    // NULL for rows journaled before: only the inode is compared for them.
    //
    // remote_names: per target, which source file owns each remote path under the target's
    // name comparison (`name_key`: case folding, NFC, character mapping), so two files never
    // share one remote name. `wanted` is the path the template gave, `remote_path` the one
    // stored (a suffixed name when `wanted` was taken by another file).
    version: 4,
    sql: `
      ALTER TABLE files ADD COLUMN dev INTEGER;

      CREATE TABLE remote_names (
        target      TEXT NOT NULL,
        name_key    TEXT NOT NULL,
        root        TEXT NOT NULL,
        rel_path    TEXT NOT NULL,
        wanted      TEXT NOT NULL,
        remote_path TEXT NOT NULL,
        PRIMARY KEY (target, name_key)
      ) WITHOUT ROWID;
      CREATE INDEX remote_names_owner ON remote_names (target, root, rel_path);
    `,
  },
];

/** The schema version this code writes. */
export function latestVersion(list: readonly Migration[] = migrations): number {
  return list.at(-1)?.version ?? 0;
}

function checkList(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new StagecoachError(
        'state.bad-migrations',
        `[stagecoach] [state] migration #${i} has version ${m.version}, expected ${i + 1}: versions must be 1, 2, 3, … in order`,
      );
    }
  });
}

function userVersion(db: Sqlite.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings `db` up to the last migration of `list`. Each migration runs in its own IMMEDIATE
 * transaction together with its `user_version` bump, so a failure leaves the database at the
 * previous version, never half-migrated; a concurrent opener waits (busy_timeout) and then sees
 * the version already applied. Re-running on an up-to-date database does nothing.
 *
 * Throws StagecoachError `state.too-new` when the database was written by a newer Stagecoach
 * (its user_version is past the last migration known here): the caller must not use it.
 * Returns the version the database is at afterwards.
 */
export function migrate(db: Sqlite.Database, list: readonly Migration[] = migrations): number {
  checkList(list);
  const latest = latestVersion(list);
  const found = userVersion(db);
  if (found > latest) {
    throw new StagecoachError(
      'state.too-new',
      `[stagecoach] [state] ${db.name} has schema version ${found}, but this Stagecoach knows only up to ${latest}: it was written by a newer version; upgrade Stagecoach or point it at another state directory`,
    );
  }
  for (const m of list) {
    if (m.version <= found) continue;
    db.transaction(() => {
      // Re-read inside the write lock: another process may have migrated while we waited.
      if (userVersion(db) >= m.version) return;
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return userVersion(db);
}
