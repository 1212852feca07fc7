import { spawn } from 'node:child_process';
import { chmodSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/state/index.js';
import { newItem, tempDir } from './helpers.js';
import { transpileForNode } from './transpile.js';

const CHILD_TS = fileURLToPath(new URL('./fixtures/child.ts', import.meta.url));
const CHILD_TIMEOUT_MS = 20_000;

let child: { root: string; main: string };
let tmp: ReturnType<typeof tempDir>;

beforeAll(async () => {
  child = await transpileForNode(CHILD_TS);
});
afterAll(() => rmSync(child.root, { recursive: true, force: true }));
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

interface Child {
  /** Resolves with the first stdout line. */
  firstLine: Promise<string>;
  exit: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function runChild(args: string[]): Child {
  const p = spawn(process.execPath, [child.main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onLine: (line: string) => void = () => {};
  const firstLine = new Promise<string>((resolve) => (onLine = resolve));
  p.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
    const nl = stdout.indexOf('\n');
    if (nl >= 0) onLine(stdout.slice(0, nl));
  });
  p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const killer = setTimeout(() => p.kill('SIGKILL'), CHILD_TIMEOUT_MS);
  const exit = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    p.on('close', (code) => {
      clearTimeout(killer);
      onLine('');
      resolve({ code, stdout, stderr });
    }),
  );
  return { firstLine, exit };
}

function mode(file: string): number {
  return statSync(file).mode & 0o777;
}

describe('files on disk', () => {
  it('creates the state dir 0700 and the db, -wal and -shm 0600', async () => {
    const dir = path.join(tmp.dir, 'nested', 'state');
    const store = await openSqliteStore({ dir, file: 'journal.db' });
    try {
      await store.recordItems([newItem('a')], ['local']);
      expect(store.path).toBe(path.join(dir, 'journal.db'));
      expect(mode(dir)).toBe(0o700);
      expect(mode(store.path)).toBe(0o600);
      expect(mode(`${store.path}-wal`)).toBe(0o600);
      expect(mode(`${store.path}-shm`)).toBe(0o600);
    } finally {
      await store.close();
    }
  });

  it('sets those modes exactly, whatever the umask', async () => {
    const dir = path.join(tmp.dir, 'state');
    const saved = process.umask(0o200);
    const store = await openSqliteStore({ dir }).finally(() => process.umask(saved));
    try {
      await store.recordItems([newItem('a')], ['local']);
      expect([mode(dir), mode(store.path), mode(`${store.path}-wal`), mode(`${store.path}-shm`)]).toEqual([
        0o700, 0o600, 0o600, 0o600,
      ]);
    } finally {
      await store.close();
      // Let cleanup remove it even when the modes came out wrong.
      chmodSync(dir, 0o700);
    }
  });

  it('refuses a file that is not a database with state.open-failed', async () => {
    writeFileSync(path.join(tmp.dir, 'stagecoach.db'), 'not a database, just some words long enough to matter '.repeat(20));
    await expect(openSqliteStore({ dir: tmp.dir })).rejects.toMatchObject({ code: 'state.open-failed' });
  });

  it('leaves an existing state dir as it is', async () => {
    chmodSync(tmp.dir, 0o750);
    const store = await openSqliteStore({ dir: tmp.dir });
    await store.close();
    expect(mode(tmp.dir)).toBe(0o750);
  });
});

describe('across processes', () => {
  it('keeps what a process committed when it exits without close()', async () => {
    const run = await runChild(['record', tmp.dir, '1000', 'local,box']).exit;
    expect(run).toMatchObject({ code: 0, stdout: 'recorded\n' });
    // Nothing checkpointed the WAL: the rows must be read back from it.
    expect(statSync(path.join(tmp.dir, 'stagecoach.db-wal')).size).toBeGreaterThan(0);

    const store = await openSqliteStore({ dir: tmp.dir });
    try {
      expect((await store.counts()).map((c) => [c.target, c.pending])).toEqual([
        ['box', 1000],
        ['local', 1000],
      ]);
      expect((await store.fileIndex('inbox')).get('f999')).toEqual({ size: 999, mtimeMs: 1999, ino: 999 });
    } finally {
      await store.close();
    }
  });

  it('two processes leasing at once never get the same delivery', async () => {
    const store = await openSqliteStore({ dir: tmp.dir });
    try {
      await store.recordItems(Array.from({ length: 2000 }, (_, i) => newItem(`f${i}`)), ['local']);
      const runs = await Promise.all([
        runChild(['lease', tmp.dir, 'local', '3']).exit,
        runChild(['lease', tmp.dir, 'local', '5']).exit,
      ]);
      const ids = runs.map((r) => {
        expect(r).toMatchObject({ code: 0, stderr: '' });
        return JSON.parse(r.stdout) as number[];
      });
      const all = ids.flat();
      expect(all).toHaveLength(2000);
      expect(new Set(all).size).toBe(2000);
      expect(await store.counts()).toMatchObject([{ target: 'local', pending: 0, inFlight: 2000 }]);
    } finally {
      await store.close();
    }
  });

  it('a write waits (busy_timeout) for another process to release its lock', async () => {
    const store = await openSqliteStore({ dir: tmp.dir });
    try {
      const holder = runChild(['hold', tmp.dir, '300']);
      expect(await holder.firstLine).toBe('locked');
      await store.recordItems([newItem('a')], ['local']);
      expect(await store.counts()).toMatchObject([{ target: 'local', pending: 1 }]);
      expect((await holder.exit).code).toBe(0);
    } finally {
      await store.close();
    }
  });
});

describe('a reader beside a writer', () => {
  it('reads committed state while another connection holds the write lock', async () => {
    const store = await openSqliteStore({ dir: tmp.dir });
    await store.recordItems([newItem('a'), newItem('b')], ['local']);
    const reader = await openSqliteStore({ dir: tmp.dir, busyTimeoutMs: 0 });
    const writer = new Database(store.path);
    try {
      // EXCLUSIVE keeps readers out under a rollback journal; under WAL they go on reading.
      writer.exec('BEGIN EXCLUSIVE');
      writer.prepare(`UPDATE deliveries SET status = 'done'`).run();
      writer.prepare(`INSERT INTO target_health VALUES ('box', 'down', 'x', 1, NULL)`).run();

      expect(await reader.counts()).toEqual([{ target: 'local', pending: 2, inFlight: 0, done: 0, failed: 0, skipped: 0 }]);
      expect(await reader.health()).toEqual([]);
      await expect(reader.recordItems([newItem('c')], ['local'])).rejects.toMatchObject({ code: 'SQLITE_BUSY' });

      writer.exec('COMMIT');
      expect(await reader.counts()).toEqual([
        { target: 'box', pending: 0, inFlight: 0, done: 0, failed: 0, skipped: 0 },
        { target: 'local', pending: 0, inFlight: 0, done: 2, failed: 0, skipped: 0 },
      ]);
    } finally {
      writer.close();
      await reader.close();
      await store.close();
    }
  });
});
