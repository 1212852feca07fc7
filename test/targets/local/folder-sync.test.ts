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
import { readdirSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
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

function harness(dir: string) {
  const real = realpathSync(dir);
  const held: Held[] = [];
  const fsync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    const at = realFs.readlinkSync(`/proc/self/fd/${fd}`);
    if (!statSync(at).isDirectory()) {
      realFs.fsync(fd, cb);
      return;
    }
    held.push({ entries: readdirSync(at).sort(), done: (err) => (err ? cb(err) : realFs.fsync(fd, cb)) });
  }) as typeof realFs.fsync;
  const deps: SmallDeps = { fs: { ...realFs, fsync }, createHash, folderSyncs: new Map() };
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
  return { held, job, run };
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
