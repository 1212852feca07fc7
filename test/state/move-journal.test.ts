import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { openSqliteStore } from '../../src/state/index.js';
import { moveJournalToPg } from '../../src/state/move-journal.js';
import { openPgStore } from '../../src/state/pg-store.js';
import { runCli } from '../helpers/daemon.js';
import { listFiles, tempDir as fsTempDir } from '../helpers/fs.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { newItem, tempDir } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function database() {
  const db = await createTestDatabase(inject('pgUrl'));
  cleanups.push(() => db.drop());
  return db;
}

async function scalar(url: string, sql: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ v: string | number | null }>(sql);
    return Number(r.rows[0]?.v ?? 0);
  } finally {
    await c.end();
  }
}

describe('moving a SQLite journal to PostgreSQL', () => {
  it('copies every file, delivery (ids and results kept) and health record; in flight arrives pending', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const src = await openSqliteStore({ dir: tmp.dir });
    const targets = ['local', 'box', 'gdrive'];
    const N = 3000;
    await src.recordItems(
      Array.from({ length: N }, (_, i) => newItem(`dir ${i % 30}/ficher é ${i}.bin`, { ino: 2 ** 40 + i, mtimeMs: 1_700_000_000_000.5 + i, size: i })),
      targets,
    );
    await src.recordItems([newItem('x', { root: 'photos', rootPath: '/srv/photos' })], targets);
    const done = await src.lease('local', 2000);
    for (const d of done) await src.complete(d.id, d.generation, { remoteId: `id-${d.id}`, remoteHash: `h-${d.id}`, bytesSent: d.size });
    const failed = await src.lease('box', 10);
    for (const d of failed) await src.fail(d.id, d.generation, 'name refused');
    const inFlight = await src.lease('gdrive', 5);
    await src.saveResume(inFlight[0]!.id, 'session-url');
    await src.setHealth({ target: 'box', status: 'down', reason: 'token revoked', since: 5, retryAt: 99 });
    // The audit view comes along: when copies were last verified, and the removals journaled.
    await src.audit.markVerified(done.slice(0, 10).map((d) => d.id), 1_700_000_000_000);
    const [cand] = await src.audit.removalCandidates('inbox', 1, 'scrub');
    const removal = await src.audit.recordRemoval({ fileId: cand!.fileId, action: 'delete', dest: null, size: 7, mtimeMs: cand!.mtimeMs, ino: cand!.ino, dev: 1, copies: 1 });
    await src.audit.settleRemoval(removal, 'done', null);
    const verifiedBefore = await src.audit.doneCopies('local', { limit: 20 });
    const before = { counts: await src.counts(), index: await src.fileIndex('inbox'), recent: await src.recent({ status: 'done', limit: 50 }) };
    await src.close();

    const db = await database();
    const report = await moveJournalToPg({ stateDir: tmp.dir, url: db.url });
    expect(report).toEqual({ roots: 2, files: N + 1, deliveries: (N + 1) * 3, targetHealth: 1, removals: 1, inFlightReset: 5 });

    const dst = await openPgStore({ url: db.url });
    cleanups.push(() => dst.close());
    const gdrive = before.counts.find((c) => c.target === 'gdrive')!;
    expect(await dst.counts()).toEqual(
      before.counts.map((c) => (c.target === 'gdrive' ? { ...gdrive, pending: gdrive.pending + 5, inFlight: 0 } : c)),
    );
    expect(await dst.fileIndex('inbox')).toEqual(before.index);
    expect(await dst.recent({ status: 'done', limit: 50 })).toEqual(before.recent);
    expect(await dst.health()).toEqual([{ target: 'box', status: 'down', reason: 'token revoked', since: 5, retryAt: 99 }]);
    expect(await dst.audit.doneCopies('local', { limit: 20 })).toEqual(verifiedBefore);
    expect(await dst.audit.freedBytes()).toBe(7);
    // The upload that was in flight resumes from its saved session, as it would have on SQLite.
    const again = await dst.lease('gdrive', 5);
    expect(again.map((d) => d.id)).toEqual(inFlight.map((d) => d.id));
    expect(again[0]!.resumeHandle).toBe('session-url');
    // New rows continue the ids, never reuse one.
    await dst.recordItems([newItem('new-after-move')], ['local']);
    const [fresh] = await dst.lease('local', 5000).then((l) => l.filter((d) => d.relPath === 'new-after-move'));
    expect(fresh!.id).toBeGreaterThan((N + 1) * 3);
  });

  it('keeps ctimes and the bytes of paths that are not valid UTF-8', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const raw = Buffer.from([0x78, 0xff, 0x2e, 0x62, 0x69, 0x6e]);
    const src = await openSqliteStore({ dir: tmp.dir });
    await src.recordItems([newItem('x%FF.bin', { rawRelPath: raw, ctimeMs: 1_700_000_000_123 })], ['local']);
    await src.close();
    const db = await database();
    await moveJournalToPg({ stateDir: tmp.dir, url: db.url });
    const dst = await openPgStore({ url: db.url });
    cleanups.push(() => dst.close());
    expect((await dst.fileIndex('inbox')).get('x%FF.bin')).toMatchObject({ ctimeMs: 1_700_000_000_123 });
    expect((await dst.lease('local', 1))[0]!.rawRelPath).toEqual(raw);
  });

  it('refuses a journal that already holds deliveries, and changes nothing in it', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    await (await openSqliteStore({ dir: tmp.dir })).close();
    const db = await database();
    const dst = await openPgStore({ url: db.url });
    await dst.recordItems([newItem('a')], ['local']);
    await dst.close();
    await expect(moveJournalToPg({ stateDir: tmp.dir, url: db.url })).rejects.toMatchObject({ code: 'state.move-target-not-empty' });
    expect(await scalar(db.url, 'SELECT count(*) AS v FROM deliveries')).toBe(1);
  });

  it('`journal migrate --to`, then a restart on PostgreSQL archives nothing again', async () => {
    const t = await fsTempDir();
    cleanups.push(() => t.cleanup());
    const db = await database();
    const inbox = path.join(t.dir, 'inbox');
    await mkdir(inbox);
    const FILES = 400;
    for (let i = 0; i < FILES; i++) await writeFile(path.join(inbox, `f${i}.txt`), `file ${i}`);
    const base = `stateDir: ./state
stableMs: 100
log: { level: warn, format: json }
http: { listen: null }
roots: [{ path: ./inbox }]
targets: [{ type: local, path: ./archive, maxDemand: 8 }]
`;
    await writeFile(path.join(t.dir, 'sqlite.yaml'), base);
    await writeFile(path.join(t.dir, 'pg.yaml'), `${base}journal: { url: "\${JOURNAL_URL}" }\n`);

    expect(runCli(['backfill', '--once', '--config', 'sqlite.yaml'], { cwd: t.dir, timeoutMs: 120_000 }).code).toBe(0);
    expect(await listFiles(path.join(t.dir, 'archive'))).toHaveLength(FILES);

    const moved = runCli(['journal', 'migrate', '--to', db.url, '--config', 'sqlite.yaml'], { cwd: t.dir });
    expect(moved.stderr).toBe('');
    expect(moved.code).toBe(0);
    expect(moved.stdout).toContain(`${FILES} files, ${FILES} deliveries`);
    const lastUpdate = await scalar(db.url, 'SELECT max(updated_at) AS v FROM deliveries');

    const again = runCli(['backfill', '--once', '--config', 'pg.yaml'], { cwd: t.dir, env: { JOURNAL_URL: db.url }, timeoutMs: 120_000 });
    expect(again.stderr + again.stdout).not.toContain('"level":50');
    expect(again.code).toBe(0);
    expect(await scalar(db.url, `SELECT count(*) AS v FROM deliveries WHERE status = 'done'`)).toBe(FILES);
    expect(await scalar(db.url, 'SELECT count(*) AS v FROM deliveries')).toBe(FILES);
    // Nothing was leased again: no delivery changed since the move.
    expect(await scalar(db.url, 'SELECT max(updated_at) AS v FROM deliveries')).toBe(lastUpdate);

    // And a new file after the move is archived through the PostgreSQL journal.
    await writeFile(path.join(inbox, 'after.txt'), 'after');
    expect(runCli(['backfill', '--once', '--config', 'pg.yaml'], { cwd: t.dir, env: { JOURNAL_URL: db.url }, timeoutMs: 120_000 }).code).toBe(0);
    expect(await listFiles(path.join(t.dir, 'archive'))).toHaveLength(FILES + 1);
  });
});
