import Database from 'better-sqlite3';
import pg from 'pg';
import { StagecoachError } from '../errors.js';
import { describePgUrl } from './open.js';
import { openPgStore } from './pg-store.js';
import { openSqliteStore } from './sqlite-store.js';

/** What {@link moveJournalToPg} copied, per table. */
export interface MoveReport {
  roots: number;
  files: number;
  deliveries: number;
  targetHealth: number;
  /** After-archive removals (src/state/audit.ts). */
  removals: number;
  /** Deliveries that were in flight in the SQLite journal and arrive as pending. */
  inFlightReset: number;
}

/** Tables in the order their foreign keys need. */
const TABLES = ['roots', 'files', 'deliveries', 'target_health', 'removals'] as const;
const BATCH = 5000;

/** PostgreSQL column types the journal uses, and the array type each is sent as. */
const ARRAY_TYPE: Record<string, string> = {
  text: 'text[]',
  bigint: 'int8[]',
  integer: 'int4[]',
  'double precision': 'float8[]',
  bytea: 'bytea[]',
};

/**
 * Copies the SQLite journal under `stateDir` into the (empty) PostgreSQL journal at `url`, ids
 * kept, in one PostgreSQL transaction: the result is all of it or nothing. The SQLite journal is
 * first brought up to date, then read in one read transaction; it is left as it was. Deliveries in
 * flight arrive as pending (the daemon that held them is stopped). The columns copied are those
 * both schemas have, so a column one backend adds that the other lacks is left behind, never
 * invented.
 *
 * The daemon MUST be stopped first. Throws StagecoachError `state.move-target-not-empty` when
 * the PostgreSQL journal already holds a file or delivery, and the errors of opening either journal.
 */
export async function moveJournalToPg(opts: { stateDir: string; url: string; onProgress?: (table: string, rows: number) => void }): Promise<MoveReport> {
  const where = describePgUrl(opts.url);
  // Opening migrates both journals to the schema this Stagecoach writes.
  const src = await openSqliteStore({ dir: opts.stateDir });
  const file = src.path;
  await src.close();
  const dst = await openPgStore({ url: opts.url, maxConnections: 1 });
  await dst.close();

  const db = new Database(file, { readonly: true, fileMustExist: true });
  const client = new pg.Client({ connectionString: opts.url });
  try {
    await client.connect();
  } catch (cause) {
    db.close();
    throw new StagecoachError('state.open-failed', `[stagecoach] [state] cannot reach the journal at ${where}: ${(cause as Error).message}`, { cause });
  }
  const report: MoveReport = { roots: 0, files: 0, deliveries: 0, targetHealth: 0, removals: 0, inFlightReset: 0 };
  try {
    await client.query('BEGIN');
    const held = await client.query<{ n: string }>('SELECT (SELECT count(*) FROM files) + (SELECT count(*) FROM deliveries) AS n');
    if (Number(held.rows[0]?.n ?? 0) > 0) {
      throw new StagecoachError(
        'state.move-target-not-empty',
        `[stagecoach] [state] the journal at ${where} already holds files or deliveries: move into an empty database`,
      );
    }
    // One read transaction: a consistent picture even if something writes the file meanwhile.
    db.exec('BEGIN');
    try {
      for (const table of TABLES) {
        const n = await copyTable(db, client, table, (rows) => opts.onProgress?.(table, rows));
        if (table === 'target_health') report.targetHealth = n;
        else report[table] = n;
      }
    } finally {
      db.exec('COMMIT');
    }
    const reset = await client.query(`UPDATE deliveries SET status = 'pending' WHERE status = 'in_flight'`);
    report.inFlightReset = reset.rowCount ?? 0;
    for (const table of ['files', 'deliveries', 'removals']) {
      await client.query(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), GREATEST((SELECT max(id) FROM ${table}), 1))`);
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    db.close();
    await client.end();
  }
  return report;
}

async function copyTable(db: Database.Database, client: pg.Client, table: string, progress: (rows: number) => void): Promise<number> {
  const srcCols = new Set((db.pragma(`table_info(${table})`) as { name: string }[]).map((c) => c.name));
  const dstCols = (
    await client.query<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns
       WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`,
      [table],
    )
  ).rows.filter((c) => srcCols.has(c.column_name));
  for (const c of dstCols) {
    if (ARRAY_TYPE[c.data_type] === undefined) {
      throw new StagecoachError('state.move-failed', `[stagecoach] [state] cannot copy ${table}.${c.column_name} of type ${c.data_type}`);
    }
  }
  const names = dstCols.map((c) => c.column_name);
  const insert = `INSERT INTO ${table} (${names.join(', ')}) SELECT * FROM unnest(${dstCols
    .map((c, i) => `$${i + 1}::${ARRAY_TYPE[c.data_type]}`)
    .join(', ')})`;
  const order = table === 'roots' ? 'name' : table === 'target_health' ? 'target' : 'id';
  const select = db.prepare(`SELECT ${names.join(', ')} FROM ${table} ORDER BY ${order}`).raw(true);
  let columns: unknown[][] = names.map(() => []);
  let batched = 0;
  let total = 0;
  const flush = async () => {
    if (batched === 0) return;
    await client.query(insert, columns);
    total += batched;
    progress(total);
    columns = names.map(() => []);
    batched = 0;
  };
  for (const row of select.iterate() as IterableIterator<unknown[]>) {
    for (let i = 0; i < row.length; i++) {
      const v = row[i];
      columns[i]!.push(typeof v === 'bigint' ? Number(v) : v);
    }
    if (++batched >= BATCH) await flush();
  }
  await flush();
  return total;
}
