import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { latestVersion, migrate, migrations } from '../../src/state/migrations.js';
import type { Migration } from '../../src/state/migrations.js';
import { openSqliteStore } from '../../src/state/index.js';
import { newItem, tempDir } from './helpers.js';

let tmp: ReturnType<typeof tempDir>;
let db: Database.Database;

beforeEach(() => {
  tmp = tempDir();
  db = new Database(path.join(tmp.dir, 'm.db'));
});
afterEach(() => {
  db.close();
  tmp.cleanup();
});

const version = (d: Database.Database) => d.pragma('user_version', { simple: true });
const tables = (d: Database.Database) =>
  (d.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as { name: string }[]).map(
    (r) => r.name,
  );

describe('the shipped migrations', () => {
  it('are numbered 1, 2, 3, … and build the schema on a fresh database', () => {
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
    expect(migrate(db)).toBe(latestVersion());
    expect(version(db)).toBe(latestVersion());
    expect(tables(db)).toEqual(['deliveries', 'files', 'remote_names', 'removals', 'roots', 'target_health']);
  });

  it('re-opening an up-to-date store is a no-op that keeps the data', async () => {
    const first = await openSqliteStore({ dir: tmp.dir });
    await first.recordItems([newItem('a')], ['local']);
    await first.close();
    const again = await openSqliteStore({ dir: tmp.dir });
    try {
      expect(await again.counts()).toMatchObject([{ target: 'local', pending: 1 }]);
    } finally {
      await again.close();
    }
    const raw = new Database(path.join(tmp.dir, 'stagecoach.db'));
    expect(version(raw)).toBe(latestVersion());
    raw.close();
  });

  it('refuses a database from a newer Stagecoach with state.too-new', async () => {
    const file = path.join(tmp.dir, 'stagecoach.db');
    const raw = new Database(file);
    raw.pragma(`user_version = ${latestVersion() + 1}`);
    raw.close();
    await expect(openSqliteStore({ dir: tmp.dir })).rejects.toMatchObject({
      name: 'StagecoachError',
      code: 'state.too-new',
      message: expect.stringMatching(/newer version/),
    });
    // Nothing was created in it.
    const after = new Database(file);
    expect(tables(after)).toEqual([]);
    after.close();
  });
});

describe('migrate', () => {
  const list: Migration[] = [
    { version: 1, sql: 'CREATE TABLE a (x INTEGER)' },
    { version: 2, sql: 'CREATE TABLE b (x INTEGER); INSERT INTO b VALUES (1)' },
  ];

  it('applies only what is missing, and nothing twice', () => {
    expect(migrate(db, list.slice(0, 1))).toBe(1);
    db.prepare('INSERT INTO a VALUES (7)').run();
    expect(migrate(db, list)).toBe(2);
    // A second run would fail on CREATE TABLE if it re-applied anything.
    expect(migrate(db, list)).toBe(2);
    expect(tables(db)).toEqual(['a', 'b']);
    expect(db.prepare('SELECT x FROM a').pluck().all()).toEqual([7]);
  });

  it('runs each migration in its own transaction: a failing one leaves the previous version intact', () => {
    const broken: Migration[] = [list[0]!, { version: 2, sql: 'CREATE TABLE b (x INTEGER); INSERT INTO missing VALUES (1)' }];
    expect(() => migrate(db, broken)).toThrow(/no such table: missing/);
    expect(version(db)).toBe(1);
    expect(tables(db)).toEqual(['a']);
  });

  it('rejects a list that is not numbered 1, 2, 3, …', () => {
    expect(() => migrate(db, [list[0]!, { version: 3, sql: 'SELECT 1' }])).toThrow(
      expect.objectContaining({ code: 'state.bad-migrations' }),
    );
    expect(version(db)).toBe(0);
  });

  it('throws state.too-new for a database past the list', () => {
    db.pragma('user_version = 5');
    expect(() => migrate(db, list)).toThrow(expect.objectContaining({ code: 'state.too-new' }));
    expect(tables(db)).toEqual([]);
  });
});
