/**
 * The after-archive policy on real files and a real journal: with minCopies 3 and only two of
 * five targets holding verified copies (the other three parked) nothing is removed; once a third
 * has them, files are deleted (journaled first, empty folders pruned, the root kept); a file
 * rewritten between upload and removal is kept; minAge, dryRun, verifiedBy: scrub and move
 * (never over an existing file) hold; a removal interrupted by a crash is finished from the disk.
 * Each case runs on the SQLite journal and on PostgreSQL (test/setup/postgres.ts starts one).
 */
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { finishOpenRemovals, sweepRoot, type AfterArchivePolicy, type PolicyRoot } from '../../src/audit/after-archive.js';
import type { AuditStore } from '../../src/state/audit.js';
import { openSqliteStore, type Store } from '../../src/state/index.js';
import { openPgStore } from '../../src/state/pg-store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir } from '../helpers/fs.js';
import { createTestDatabase } from '../helpers/postgres.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const log = createLogger({ level: 'silent', format: 'json', destination: new PassThrough() });
const TARGETS = ['local', 'gdrive', 'dropbox', 'box', 'onedrive'];
const OLD = Date.now() - 10 * 86_400_000;

type Journal = Store & { audit: AuditStore };
const JOURNALS: Array<[string, (dir: string) => Promise<Journal>]> = [
  ['SQLite', (dir) => openSqliteStore({ dir: path.join(dir, 'state') })],
  [
    'PostgreSQL',
    async () => {
      const db = await createTestDatabase(inject('pgUrl'));
      cleanups.push(() => db.drop());
      return openPgStore({ url: db.url });
    },
  ],
];
let openJournal: (dir: string) => Promise<Journal>;

async function setup(files: Record<string, string>) {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  const rootPath = path.join(t.dir, 'cam');
  const items = [];
  for (const [rel, body] of Object.entries(files)) {
    const p = path.join(rootPath, rel);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, body);
    await utimes(p, new Date(OLD), new Date(OLD));
    const st = await stat(p);
    items.push({ item: { root: 'cam', rootPath, relPath: rel, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino }, remotePath: `cam/${rel}` });
  }
  const store = await openJournal(t.dir);
  cleanups.push(() => store.close());
  await store.recordItems(items, TARGETS);
  return { dir: t.dir, rootPath, store };
}

/** Uploads every pending delivery of `target` as verified (the hash the upload checked). */
async function upload(store: Journal, target: string): Promise<void> {
  for (const d of await store.lease(target, 1000)) await store.complete(d.id, d.generation, { remoteId: `id-${d.id}`, remoteHash: `h-${d.id}`, bytesSent: d.size });
}

const policy = (p: Partial<AfterArchivePolicy> = {}): AfterArchivePolicy => ({ action: 'delete', minCopies: 3, minAge: 7 * 86_400_000, verifiedBy: 'upload', dryRun: false, ...p });

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

describe.each(JOURNALS)('afterArchive on the %s journal', (_name, open) => {
  beforeEach(() => {
    openJournal = open;
  });
  it('minCopies 3: nothing goes while two targets hold copies; with a third, files go, journaled, folders pruned, the root kept', async () => {
    const s = await setup({ 'DCIM/100/a.jpg': 'aaaa', 'DCIM/100/b.jpg': 'bb', 'c.mov': 'cccccc' });
    const root: PolicyRoot = { name: 'cam', path: s.rootPath, afterArchive: policy() };
    await upload(s.store, 'local');
    await upload(s.store, 'box');
    // gdrive, dropbox and onedrive are parked: their deliveries stay pending.
    const first = await sweepRoot(root, { audit: s.store.audit, log });
    expect(first.removed).toEqual([]);
    expect(await exists(path.join(s.rootPath, 'DCIM/100/a.jpg'))).toBe(true);

    await upload(s.store, 'onedrive');
    // gdrive and dropbox stay parked, their deliveries pending: three verified copies are the bar.
    const second = await sweepRoot(root, { audit: s.store.audit, log });
    expect(second.removed.map((r) => r.relPath).sort()).toEqual(['DCIM/100/a.jpg', 'DCIM/100/b.jpg', 'c.mov']);
    expect(await exists(path.join(s.rootPath, 'DCIM')), 'empty folders are pruned').toBe(false);
    expect(await exists(s.rootPath), 'the root stays').toBe(true);
    expect(await s.store.audit.freedBytes()).toBe(12);
  });

  it('an upload in flight holds its file back', async () => {
    const s = await setup({ 'a.jpg': 'aaaa' });
    for (const t of ['local', 'box', 'onedrive']) await upload(s.store, t);
    await s.store.lease('gdrive', 10);
    const root: PolicyRoot = { name: 'cam', path: s.rootPath, afterArchive: policy() };
    expect((await sweepRoot(root, { audit: s.store.audit, log })).removed).toEqual([]);
    await s.store.resetInFlight('gdrive');
    expect((await sweepRoot(root, { audit: s.store.audit, log })).removed.map((r) => r.relPath)).toEqual(['a.jpg']);
  });

  it('a file rewritten between upload and removal is kept', async () => {
    const s = await setup({ 'DCIM/100/a.jpg': 'aaaa', 'DCIM/100/b.jpg': 'bb', 'c.mov': 'cccccc' });
    const root: PolicyRoot = { name: 'cam', path: s.rootPath, afterArchive: policy({ minCopies: 3 }) };
    for (const t of TARGETS) await upload(s.store, t);
    // Rewritten after its upload, before the sweep:
    await writeFile(path.join(s.rootPath, 'c.mov'), 'new bytes!');
    const res = await sweepRoot(root, { audit: s.store.audit, log });
    expect(res.removed.map((r) => r.relPath).sort()).toEqual(['DCIM/100/a.jpg', 'DCIM/100/b.jpg']);
    expect(res.kept).toMatchObject([{ relPath: 'c.mov', reason: expect.stringMatching(/changed since it was archived/) }]);
    expect(await readFile(path.join(s.rootPath, 'c.mov'), 'utf8')).toBe('new bytes!');
    expect(await exists(path.join(s.rootPath, 'DCIM')), 'empty folders are pruned').toBe(false);
    expect(await exists(s.rootPath), 'the root stays').toBe(true);
    expect(await s.store.audit.freedBytes()).toBe(6);
    expect(await s.store.audit.openRemovals()).toEqual([]);
  });

  it('a file changed between the checks and the removal is kept', async () => {
    const s = await setup({ 'a.jpg': 'aaaa' });
    for (const t of TARGETS) await upload(s.store, t);
    const res = await sweepRoot(
      { name: 'cam', path: s.rootPath, afterArchive: policy() },
      { audit: s.store.audit, log, beforeRemove: (src) => writeFile(src, 'rewritten') },
    );
    expect(res.removed).toEqual([]);
    expect(res.kept[0]!.reason).toMatch(/changed while it was being removed/);
    expect(await readFile(path.join(s.rootPath, 'a.jpg'), 'utf8')).toBe('rewritten');
  });

  it('minAge, dryRun and verifiedBy: scrub hold files back', async () => {
    const s = await setup({ 'a.jpg': 'aaaa' });
    for (const t of TARGETS) await upload(s.store, t);
    const ctx = { audit: s.store.audit, log };
    expect((await sweepRoot({ name: 'cam', path: s.rootPath, afterArchive: policy({ minAge: 30 * 86_400_000 }) }, ctx)).removed).toEqual([]);
    const dry = await sweepRoot({ name: 'cam', path: s.rootPath, afterArchive: policy({ dryRun: true }) }, ctx);
    expect(dry.wouldRemove).toEqual([{ root: 'cam', relPath: 'a.jpg', bytes: 4 }]);
    expect((await sweepRoot({ name: 'cam', path: s.rootPath, afterArchive: policy({ verifiedBy: 'scrub' }) }, ctx)).removed).toEqual([]);
    expect(await exists(path.join(s.rootPath, 'a.jpg'))).toBe(true);
    const copies = await s.store.audit.doneCopies('box');
    await s.store.audit.markVerified(copies.map((c) => c.id), Date.now());
    for (const t of ['local', 'gdrive']) await s.store.audit.markVerified((await s.store.audit.doneCopies(t)).map((c) => c.id), Date.now());
    const res = await sweepRoot({ name: 'cam', path: s.rootPath, afterArchive: policy({ verifiedBy: 'scrub' }) }, ctx);
    expect(res.removed.map((r) => r.relPath)).toEqual(['a.jpg']);
  });

  it('move keeps the layout below moveTo and never overwrites there', async () => {
    const s = await setup({ 'x/a.jpg': 'aaaa', 'x/b.jpg': 'bb' });
    for (const t of TARGETS) await upload(s.store, t);
    const moveTo = path.join(s.dir, 'done');
    await mkdir(path.join(moveTo, 'x'), { recursive: true });
    await writeFile(path.join(moveTo, 'x', 'b.jpg'), 'already here');
    const res = await sweepRoot({ name: 'cam', path: s.rootPath, afterArchive: policy({ action: 'move', moveTo }) }, { audit: s.store.audit, log });
    expect(res.removed.map((r) => r.relPath)).toEqual(['x/a.jpg']);
    expect(await readFile(path.join(moveTo, 'x', 'a.jpg'), 'utf8')).toBe('aaaa');
    expect(res.kept[0]).toMatchObject({ relPath: 'x/b.jpg' });
    expect(await readFile(path.join(moveTo, 'x', 'b.jpg'), 'utf8')).toBe('already here');
    expect(await readFile(path.join(s.rootPath, 'x', 'b.jpg'), 'utf8')).toBe('bb');
  });

  it('a removal journaled but not settled (a crash between) is finished from the disk at the next sweep', async () => {
    const s = await setup({ 'a.jpg': 'aaaa', 'b.jpg': 'bb' });
    for (const t of TARGETS) await upload(s.store, t);
    const [a, b] = await s.store.audit.removalCandidates('cam', 3, 'upload');
    // a: deleted before the crash; b: the crash came before its unlink.
    for (const c of [a!, b!]) await s.store.audit.recordRemoval({ fileId: c.fileId, action: 'delete', dest: null, size: c.size, mtimeMs: c.mtimeMs, ino: c.ino, dev: 0, copies: c.copies });
    const { unlink } = await import('node:fs/promises');
    await unlink(path.join(s.rootPath, 'a.jpg'));
    // A daemon without this root (another one's, on a shared journal) leaves its removals alone.
    await finishOpenRemovals({ audit: s.store.audit, log }, [{ name: 'other', path: path.join(s.dir, 'other') }]);
    expect(await s.store.audit.openRemovals()).toHaveLength(2);
    await finishOpenRemovals({ audit: s.store.audit, log }, [{ name: 'cam', path: s.rootPath }]);
    expect(await s.store.audit.openRemovals()).toEqual([]);
    expect(await s.store.audit.freedBytes()).toBe(4);
    expect(await readdir(s.rootPath)).toEqual(['b.jpg']);
    const res = await sweepRoot({ name: 'cam', path: s.rootPath, afterArchive: policy() }, { audit: s.store.audit, log });
    expect(res.removed.map((r) => r.relPath)).toEqual(['b.jpg']);
  });
});
