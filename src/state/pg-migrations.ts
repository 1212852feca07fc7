import type pg from 'pg';
import { StagecoachError } from '../errors.js';
import type { Migration } from './migrations.js';

/**
 * The PostgreSQL schema, oldest first: the same tables as the SQLite journal (see migrations.ts
 * for what each column means), in PostgreSQL's types. The table `stagecoach_schema` holds the last
 * version applied. A released migration is never edited: change the schema with a new one.
 *
 * Type notes: ids, sizes and timestamps are bigint (read back as JS numbers: every value the
 * journal writes is below 2^53); `mtime_ms` and `ino` are double precision, which keeps any JS
 * number exactly, as SQLite's REAL/INTEGER affinity does.
 */
export const pgMigrations: readonly Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE roots (
        name text PRIMARY KEY,
        path text NOT NULL
      );

      CREATE TABLE files (
        id         bigserial        PRIMARY KEY,
        root       text             NOT NULL REFERENCES roots(name),
        rel_path   text             NOT NULL,
        size       bigint           NOT NULL CHECK (size >= 0),
        mtime_ms   double precision NOT NULL,
        ino        double precision NOT NULL,
        updated_at bigint           NOT NULL,
        UNIQUE (root, rel_path)
      );

      CREATE TABLE deliveries (
        id            bigserial PRIMARY KEY,
        file_id       bigint    NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        target        text      NOT NULL,
        remote_path   text      NOT NULL,
        generation    integer   NOT NULL DEFAULT 1 CHECK (generation >= 1),
        status        text      NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'in_flight', 'done', 'failed', 'skipped')),
        attempts      integer   NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        last_error    text,
        remote_id     text,
        remote_hash   text,
        resume_handle text,
        bytes_sent    bigint,
        created_at    bigint    NOT NULL,
        updated_at    bigint    NOT NULL,
        UNIQUE (file_id, target)
      );
      CREATE INDEX deliveries_lease ON deliveries (target, status, id);
      CREATE INDEX deliveries_recent ON deliveries (status, updated_at);

      CREATE TABLE target_health (
        target   text   PRIMARY KEY,
        status   text   NOT NULL CHECK (status IN ('up', 'down')),
        reason   text,
        since    bigint NOT NULL,
        retry_at bigint
      );
    `,
  },
  {
    // Several daemons on one journal: who holds each lease and until when, and who is alive.
    version: 2,
    sql: `
      ALTER TABLE deliveries ADD COLUMN leased_by text, ADD COLUMN lease_until bigint;
      CREATE INDEX deliveries_leased_by ON deliveries (leased_by) WHERE status = 'in_flight';

      CREATE TABLE nodes (
        name       text   PRIMARY KEY,
        roots      text[] NOT NULL,
        watches    text[] NOT NULL,
        started_at bigint NOT NULL,
        last_seen  bigint NOT NULL
      );
    `,
  },
  {
    // Secrets every daemon must share, changed under a row lock (Box's rotating refresh tokens).
    version: 3,
    sql: `
      CREATE TABLE shared_secrets (
        key        text   PRIMARY KEY,
        value      text,
        updated_at bigint NOT NULL
      );
    `,
  },
  {
    // Fleet-wide token buckets (per-target requests and bytes per second), timed by the database's clock.
    version: 4,
    sql: `
      CREATE TABLE rate_buckets (
        key    text             PRIMARY KEY,
        tokens double precision NOT NULL,
        at_ms  double precision NOT NULL
      );
    `,
  },
  {
    // As SQLite's migration 2 (issue 14): the ctime in whole ms (NULL: not known yet), and the
    // path as bytes when a name in it is not valid UTF-8.
    version: 5,
    sql: `
      ALTER TABLE files ADD COLUMN ctime_ms double precision, ADD COLUMN raw_path bytea;
    `,
  },
  {
    // As SQLite's migration 4 (issue 13): per target, which source owns each remote name under
    // the target's comparison. (The device column is SQLite's only: here the inode is compared.)
    version: 6,
    sql: `
      CREATE TABLE remote_names (
        target      text NOT NULL,
        name_key    text NOT NULL,
        root        text NOT NULL,
        rel_path    text NOT NULL,
        wanted      text NOT NULL,
        remote_path text NOT NULL,
        PRIMARY KEY (target, name_key)
      );
      CREATE INDEX remote_names_owner ON remote_names (target, root, rel_path);
    `,
  },
  {
    // As SQLite's migration 3 (issue 17): when a done delivery's copy was last found intact, and
    // the after-archive policy's removals (see migrations.ts). dev and ino are double precision,
    // as files.ino, so that any device or inode number is kept exactly.
    version: 7,
    sql: `
      ALTER TABLE deliveries ADD COLUMN verified_at bigint;
      CREATE INDEX deliveries_verified ON deliveries (target, status, verified_at);

      CREATE TABLE removals (
        id         bigserial        PRIMARY KEY,
        file_id    bigint           NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        action     text             NOT NULL CHECK (action IN ('delete', 'move')),
        dest       text,
        size       bigint           NOT NULL,
        mtime_ms   double precision NOT NULL,
        ino        double precision NOT NULL,
        dev        double precision NOT NULL,
        copies     integer          NOT NULL,
        state      text             NOT NULL CHECK (state IN ('intent', 'done', 'kept')),
        reason     text,
        created_at bigint           NOT NULL,
        updated_at bigint           NOT NULL
      );
      CREATE INDEX removals_file ON removals (file_id, state);
      CREATE INDEX removals_state ON removals (state);
    `,
  },
  {
    // Each lease's own token (issue 20): a lease run again after a lost connection finds the rows
    // it took, and an outcome is written only by the lease that holds the row.
    version: 8,
    sql: `
      ALTER TABLE deliveries ADD COLUMN lease_token text;
      CREATE INDEX deliveries_lease_token ON deliveries (lease_token) WHERE status = 'in_flight';
    `,
  },
];

/** The advisory lock that serialises migrations across every daemon sharing the database. */
const MIGRATE_LOCK: readonly [number, number] = [0x53544147, 1];

/**
 * Brings the database up to the last migration of `list`, under a session advisory lock so that
 * daemons starting together migrate once: the others wait, then find the version applied. Each
 * migration runs in its own transaction together with its version bump, so a failure leaves the
 * database at the previous version.
 *
 * Throws StagecoachError `state.too-new` when the database was written by a newer Stagecoach.
 * Returns the version the database is at afterwards.
 */
export async function migratePg(client: pg.PoolClient, where: string, list: readonly Migration[] = pgMigrations): Promise<number> {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new StagecoachError('state.bad-migrations', `[stagecoach] [state] migration #${i} has version ${m.version}, expected ${i + 1}`);
    }
  });
  const latest = list.at(-1)?.version ?? 0;
  await client.query('SELECT pg_advisory_lock($1, $2)', [...MIGRATE_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS stagecoach_schema (version integer NOT NULL)');
    const found = await schemaVersion(client);
    if (found > latest) {
      throw new StagecoachError(
        'state.too-new',
        `[stagecoach] [state] the journal at ${where} has schema version ${found}, but this Stagecoach knows only up to ${latest}: it was written by a newer version; upgrade Stagecoach`,
      );
    }
    for (const m of list) {
      if (m.version <= found) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('DELETE FROM stagecoach_schema');
        await client.query('INSERT INTO stagecoach_schema (version) VALUES ($1)', [m.version]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw e;
      }
    }
    return await schemaVersion(client);
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, $2)', [...MIGRATE_LOCK]);
  }
}

async function schemaVersion(client: pg.PoolClient): Promise<number> {
  const r = await client.query<{ version: number }>('SELECT max(version) AS version FROM stagecoach_schema');
  return r.rows[0]?.version ?? 0;
}
