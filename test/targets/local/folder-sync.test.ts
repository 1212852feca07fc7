/**
 * Issue 19, item 1: the small puts' batches in flight on one thread share their folder's fsync
 * (`writeSmallBatch` in src/targets/local/upload.ts). A batch that renamed into a folder waits for
 * an fsync of that folder begun after its renames (never one already running), so a put is still
 * answered only once its folder entry is durable; the batches that come while one runs share the
 * next, and its error fails every put that waited on it.
 *
 * The batch function is called directly with the real node:fs, its `fsync` wrapped so that a
 * folder's fsync is held until the test lets it go.
 */
import * as realFs from 'node:fs';
import { createHash } from 'node:crypto';
import { closeSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { loadSyncfs, makeBarrier, openBarrierFd, type Barrier } from '../../../src/targets/kit/fs-barrier.js';
import { tempName } from '../../../src/targets/local/names.js';
import { writeSmallBatch, type SmallAnswer, type SmallDeps, type SmallJob } from '../../../src/targets/local/upload.js';
import { seededBytes } from '../../conformance/sources.js';
import { tempDir, waitFor } from '../../helpers/fs.js';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

/** A folder fsync held by the test: what the folder held when it began, and its callback. */
interface Held {
  entries: string[];
  done: (err: NodeJS.ErrnoException | null) => void;
}

function harness(dir: string, barrier: Barrier | null = null) {
  const real = realpathSync(dir);
  const held: Held[] = [];
  /** Every fsync made through node:fs, file or folder: what it was of. */
  const fsynced: string[] = [];
  const fsync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    const at = realFs.readlinkSync(`/proc/self/fd/${fd}`);
    fsynced.push(at);
    if (!statSync(at).isDirectory() || barrier !== null) {
      realFs.fsync(fd, cb);
      return;
    }
    held.push({ entries: readdirSync(at).sort(), done: (err) => (err ? cb(err) : realFs.fsync(fd, cb)) });
  }) as typeof realFs.fsync;
  const deps: SmallDeps = { fs: { ...realFs, fsync }, createHash, folderSyncs: new Map(), barrier };
  let seq = 0;
  const job = (name: string, seed: number): SmallJob => {
    const tmp = path.join(dir, tempName(name, `00000000${(++seq).toString(16).padStart(12, '0')}`));
    const data = seededBytes(seed, 3000);
    return {
      final: path.join(dir, name),
      tmp,
      dir,
      realTmp: path.join(real, path.basename(tmp)),
      data,
      sourceFd: null,
      size: data.length,
      mtimeMs: Date.now(),
      mode: 0o600,
      owner: null,
      keepVersions: false,
      syncDirAlways: false,
      retried: false,
    };
  };
  /** Runs a batch; `answers` is set once it resolves. */
  const run = (jobs: SmallJob[]) => {
    const out: { answers: SmallAnswer[] | null; done: Promise<SmallAnswer[]> } = { answers: null, done: null as never };
    out.done = writeSmallBatch(deps, jobs, () => false).then((a) => {
      out.answers = a;
      return a;
    });
    return out;
  };
  return { held, fsynced, job, run };
}

/** A few turns of the event loop: what was going to start has started. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('small puts: a folder fsync shared by the batches in flight', () => {
  test('batches that renamed while one folder fsync ran wait for the next, begun after their renames, and share it', async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const { held, job, run } = harness(t.dir);

    const a = run([job('a1', 1), job('a2', 2)]);
    await waitFor('the first batch\'s folder fsync', () => held.length === 1);
    expect(held[0]!.entries.filter((e) => !e.startsWith('.'))).toEqual(['a1', 'a2']);

    const b = run([job('b1', 3)]);
    const c = run([job('c1', 4), job('c2', 5)]);
    await waitFor('the later batches renamed', () => readdirSync(t.dir).filter((e) => !e.startsWith('.')).length === 5);
    await settle();
    // None starts a fsync of its own while one runs (one begun before its renames covers nothing).
    expect(held).toHaveLength(1);
    expect(a.answers).toBeNull();

    held[0]!.done(null);
    await a.done;
    expect(a.answers!.map((x) => x.outcome)).toEqual(['written', 'written']);
    await waitFor('the next folder fsync', () => held.length === 2);
    // It began after both later batches' renames; they are answered only once it is done.
    expect(held[1]!.entries.filter((e) => !e.startsWith('.'))).toEqual(['a1', 'a2', 'b1', 'c1', 'c2']);
    await settle();
    expect(b.answers).toBeNull();
    expect(c.answers).toBeNull();

    held[1]!.done(null);
    expect((await b.done).map((x) => x.outcome)).toEqual(['written']);
    expect((await c.done).map((x) => x.outcome)).toEqual(['written', 'written']);
    await settle();
    expect(held).toHaveLength(2);
  });

  test('the shared fsync fails (EIO): every put that waited on it fails with that error', async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const { held, job, run } = harness(t.dir);

    const a = run([job('a1', 1)]);
    await waitFor('the first batch\'s folder fsync', () => held.length === 1);
    const b = run([job('b1', 2)]);
    const c = run([job('c1', 3)]);
    await waitFor('the later batches renamed', () => readdirSync(t.dir).filter((e) => !e.startsWith('.')).length === 3);
    await settle();
    held[0]!.done(null);
    await a.done;
    await waitFor('the next folder fsync', () => held.length === 2);
    held[1]!.done(Object.assign(new Error('EIO: injected'), { code: 'EIO' }));
    for (const batch of [b, c]) {
      const [answer] = await batch.done;
      expect(answer!.outcome).toBe('error');
      expect((answer as { error: { code?: string } }).error.code).toBe('EIO');
    }
    expect(a.answers![0]!.outcome).toBe('written');
  });
});

/**
 * The archive's flush barrier (src/targets/kit/fs-barrier.ts) over the real syncfs, each call
 * seen as what it flushed at that moment (the folder's names) and answered as `fail` says.
 */
function realBarrier(dir: string, fail: (call: number) => number = () => 0) {
  const syncfs = loadSyncfs();
  // Built here by `npm ci` (see test/targets/kit/fs-barrier.test.ts).
  expect(syncfs).not.toBeNull();
  const at = openBarrierFd(dir);
  expect(at).not.toBeNull();
  const flushes: string[][] = [];
  const barrier = makeBarrier(
    (fd, done) => {
      flushes.push(readdirSync(dir).sort());
      const errno = fail(flushes.length);
      syncfs!(fd, (real) => done(errno || real));
    },
    (errno) => getSystemErrorName(-errno),
    at!,
    dir,
  );
  return { barrier, flushes, close: () => closeSync(at!.fd) };
}

const visible = (dir: string): string[] => readdirSync(dir).filter((e) => !e.startsWith('.')).sort();

describe('small puts: one flush barrier a batch (syncfs) where the archive has one', () => {
  test('a batch is flushed by two syncfs, one after its temp files are written and one after its renames, and by no fsync', async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const b = realBarrier(t.dir);
    const { fsynced, job, run } = harness(t.dir, b.barrier);
    const answers = await run([job('a1', 1), job('a2', 2), job('a3', 3)]).done;
    b.close();
    expect(answers.map((a) => a.outcome)).toEqual(['written', 'written', 'written']);
    expect(fsynced).toEqual([]);
    // The first flush saw the temp files only, the second the renamed files.
    expect(b.flushes).toHaveLength(2);
    expect(b.flushes[0]!.filter((e) => !e.startsWith('.'))).toEqual([]);
    expect(b.flushes[0]!.filter((e) => e.startsWith('.'))).toHaveLength(3);
    expect(b.flushes[1]).toEqual(['a1', 'a2', 'a3']);
    expect(readFileSync(`${t.dir}/a2`)).toEqual(seededBytes(2, 3000));
  });

  test('the temp files\' flush fails (EIO): every put of the batch fails with it, and nothing is left at a final name or as a temp file', async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const b = realBarrier(t.dir, (call) => (call === 1 ? 5 : 0));
    const { job, run } = harness(t.dir, b.barrier);
    const answers = await run([job('a1', 1), job('a2', 2)]).done;
    b.close();
    for (const a of answers) {
      expect(a.outcome).toBe('error');
      expect((a as { error: { code?: string; syscall?: string } }).error).toMatchObject({ code: 'EIO', syscall: 'syncfs' });
    }
    expect(readdirSync(t.dir)).toEqual([]);
  });

  test('the renames\' flush fails: every put of the batch fails (its folder entry is not known durable)', async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const b = realBarrier(t.dir, (call) => (call === 2 ? 28 : 0));
    const { job, run } = harness(t.dir, b.barrier);
    const answers = await run([job('a1', 1), job('a2', 2)]).done;
    b.close();
    expect(answers.map((a) => [a.outcome, (a as { error?: { code?: string } }).error?.code])).toEqual([
      ['error', 'ENOSPC'],
      ['error', 'ENOSPC'],
    ]);
    // Renamed, not known durable: the puts are made again (the journal has them as not done).
    expect(visible(t.dir)).toEqual(['a1', 'a2']);
  });

  test('files on another file system than the barrier\'s are fsynced one by one, folder too', async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    const b = realBarrier(t.dir);
    // The same descriptor, said to be of another device: no file of this folder is on it.
    const elsewhere: Barrier = { ...b.barrier, dev: b.barrier.dev + 1 };
    const { fsynced, job, run } = harness(t.dir, elsewhere);
    const answers = await run([job('a1', 1), job('a2', 2)]).done;
    b.close();
    expect(answers.map((a) => a.outcome)).toEqual(['written', 'written']);
    expect(b.flushes).toEqual([]);
    const real = realpathSync(t.dir);
    expect(fsynced.filter((p) => p === real)).toHaveLength(1);
    expect(fsynced.filter((p) => p !== real)).toHaveLength(2);
  });
});
