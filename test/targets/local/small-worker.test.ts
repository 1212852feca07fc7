/**
 * Issue 19, item 1: a small file's put makes its file calls on the local target's worker thread,
 * in batches (`SmallPuts` in src/targets/local/upload.ts). What the worker meets reaches the caller as the
 * same error as when the calls ran on the main thread; a worker that cannot start or dies leaves
 * the puts to the main thread, whole.
 *
 * node:fs is wrapped to count the temp files opened on this (the main) thread; node:worker_threads
 * so a test can act just as a batch is posted to the worker (swap a folder for a link, end the
 * worker) or refuse to start it.
 */
import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { Worker as RealWorker } from 'node:worker_threads';
import { ShortReadError, TargetError } from '../../../src/errors.js';
import { createLocalTarget } from '../../../src/targets/local/index.js';
import { isTempName } from '../../../src/targets/local/names.js';
import { oneATurn, smallPutsInThread } from '../../../src/targets/local/upload.js';
import type { PutRequest, Target } from '../../../src/targets/target.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { listFiles, tempDir } from '../../helpers/fs.js';
import { rejected } from '../../helpers/rejection.js';

const seen = vi.hoisted(() => ({
  /** Temp files opened with openSync on the main thread. */
  tempOpens: 0,
  /** Run just before a batch is posted to the worker. */
  beforePost: null as ((w: unknown) => void) | null,
  /** Run just after a batch is posted to the worker. */
  afterPost: null as ((w: RealWorker) => void) | null,
  /** Starting a worker thread throws. */
  noWorker: false,
  /** Batches posted to a worker. */
  posted: 0,
}));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const { basename } = await import('node:path');
  const openSync = ((p: string, flags: string, mode?: number) => {
    if (/^\..*\.stagecoach-[0-9a-f]+\.tmp$/su.test(basename(String(p)))) seen.tempOpens++;
    return real.openSync(p, flags, mode);
  }) as typeof real.openSync;
  return { ...real, default: { ...real, openSync }, openSync };
});

vi.mock('node:worker_threads', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:worker_threads')>();
  class Hooked extends real.Worker {
    constructor(...args: ConstructorParameters<typeof real.Worker>) {
      if (seen.noWorker) throw new Error('no threads here');
      super(...args);
    }
    override postMessage(...args: Parameters<RealWorker['postMessage']>): void {
      seen.posted++;
      seen.beforePost?.(args[0]);
      super.postMessage(...args);
      seen.afterPost?.(this);
    }
  }
  return { ...real, default: { ...real, Worker: Hooked }, Worker: Hooked };
});

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  Object.assign(seen, { tempOpens: 0, beforePost: null, afterPost: null, noWorker: false, posted: 0 });
  smallPutsInThread.forced = false;
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

interface Setup {
  target: Target;
  root: string;
  dir: string;
  logs: Array<{ level: number; msg: string }>;
}

async function setup(): Promise<Setup> {
  const { dir, cleanup } = await tempDir('stagecoach-small-worker-');
  const root = path.join(dir, 'archive');
  const logs: Setup['logs'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logs.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  const target = createLocalTarget({ id: 'local', path: root }, { log: pino({ level: 'debug' }, sink), stateDir: dir });
  cleanups.push(async () => {
    await target.close();
    await cleanup();
  });
  return { target, root, dir, logs };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const files = (n: number, seed: number): Array<[string, Buffer]> =>
  Array.from({ length: n }, (_, i) => [`d${i % 3}/f ${i} ü?.bin`, seededBytes(seed + i, [0, 1, 4096, 5000, 65_536][i % 5]!)]);

async function expectWhole(root: string, put: Array<[string, Buffer]>): Promise<void> {
  for (const [p, bytes] of put) expect((await readFile(path.join(root, p))).equals(bytes)).toBe(true);
  expect((await listFiles(root)).filter((f) => isTempName(path.basename(f)))).toEqual([]);
}

describe('local target: small puts on the worker thread', () => {
  test('a burst of small puts goes to the worker in few batches; no temp file is opened on the main thread; copies whole, mtime set', async () => {
    const { target, root, logs } = await setup();
    const put = files(30, 1);
    const results = await Promise.all(put.map(([p, b]) => target.put(request(p, b, { mtimeMs: Date.UTC(2021, 2, 3) }))));
    expect(results.every((r) => !r.unchanged && r.hashKind === 'sha256')).toBe(true);
    await expectWhole(root, put);
    expect((await stat(path.join(root, put[3]![0]))).mtimeMs).toBe(Date.UTC(2021, 2, 3));
    expect(seen.tempOpens).toBe(0);
    expect(seen.posted).toBeGreaterThan(0);
    expect(seen.posted).toBeLessThan(put.length);
    expect(logs.some((l) => l.msg === 'small puts on a worker thread')).toBe(true);

    // The counter sees a put made on this thread.
    smallPutsInThread.forced = true;
    await target.put(request('d0/here.bin', seededBytes(99, 100)));
    expect(seen.tempOpens).toBe(1);
  });

  test('a turn that queues many puts sends the first ones before it ends: the worker writes them while this thread reads the next', async () => {
    const { target, root } = await setup();
    // The folders made and the worker started, so that the next puts all queue in one turn.
    await target.put(request('many/first.bin', seededBytes(1, 100)));
    let turnOver = false;
    // Registered before the puts: it runs before anything they put off to the next turn.
    setImmediate(() => {
      turnOver = true;
    });
    const postedInTurn: boolean[] = [];
    seen.beforePost = () => void postedInTurn.push(!turnOver);
    const put = Array.from({ length: 150 }, (_, i): [string, Buffer] => [`many/f${i}.bin`, seededBytes(100 + i, 512)]);
    await Promise.all(put.map(([p, b]) => target.put(request(p, b))));
    await expectWhole(root, put);
    // Sent at 64 and 128 puts queued, within the turn; the rest once it is over.
    expect(postedInTurn.filter(Boolean).length).toBeGreaterThan(0);
    expect(postedInTurn.at(-1)).toBe(false);
  });

  test('the worker takes a burst of batches one a turn: what became ready while one was written (its flush) runs before the next', async () => {
    const order: string[] = [];
    const take = oneATurn((m: number) => {
      order.push(`batch ${m}`);
      // As a flush that returns while batch 0 is written (its callback is queued meanwhile).
      if (m === 0) setImmediate(() => order.push('flush of batch 0 returned'));
    });
    // A burst: every message delivered in one go.
    for (let i = 0; i < 4; i++) take(i);
    for (let turns = 0; turns < 20 && order.length < 5; turns++) await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['batch 0', 'flush of batch 0 returned', 'batch 1', 'batch 2', 'batch 3']);
    // And a message after the burst is taken too, in its own turn.
    take(4);
    await new Promise((r) => setImmediate(r));
    expect(order.at(-1)).toBe('batch 4');
  });

  test('the same bytes again: unchanged, nothing written; other bytes of the same size: written', async () => {
    const { target, root } = await setup();
    await target.put(request('a/x.bin', seededBytes(1, 3000)));
    expect(await target.put(request('a/x.bin', seededBytes(1, 3000)))).toMatchObject({ unchanged: true, bytesSent: 0 });
    expect(await target.put(request('a/x.bin', seededBytes(2, 3000)))).toMatchObject({ unchanged: false, bytesSent: 3000 });
    await expectWhole(root, [['a/x.bin', seededBytes(2, 3000)]]);
  });

  test('a link at the final name, a folder at it: the same errors as on the main thread, from the worker', async () => {
    const { target, root, dir } = await setup();
    await target.put(request('a/first.bin', seededBytes(1, 10)));
    await symlink(path.join(dir, 'victim'), path.join(root, 'a/link.bin'));
    await mkdir(path.join(root, 'a/folder.bin'));
    const posted = seen.posted;
    const [link, folder] = await Promise.all([rejected(target.put(request('a/link.bin', seededBytes(2, 10)))), rejected(target.put(request('a/folder.bin', seededBytes(3, 10))))]);
    expect(seen.posted).toBe(posted + 1);
    expect(link).toBeInstanceOf(TargetError);
    expect(link).toMatchObject({ kind: 'fail-item', code: 'local.archive-path-link' });
    expect(target.classify(link).kind).toBe('fail-item');
    expect(folder).toMatchObject({ kind: 'fail-item', code: 'local.archive-path-blocked' });
    await expect(stat(path.join(dir, 'victim'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(seen.tempOpens).toBe(0);
  });

  test('the folder swapped for a link out of the root just as the batch goes to the worker: archive-path-link, nothing written outside', async () => {
    const { target, root, dir } = await setup();
    await target.put(request('inbox/old.bin', seededBytes(1, 10)));
    const outside = path.join(dir, 'outside');
    await mkdir(outside);
    const { renameSync, symlinkSync } = await vi.importActual<typeof import('node:fs')>('node:fs');
    seen.beforePost = () => {
      seen.beforePost = null;
      renameSync(path.join(root, 'inbox'), path.join(root, 'inbox-moved'));
      symlinkSync(outside, path.join(root, 'inbox'));
    };
    const err = await rejected(target.put(request('inbox/new.bin', seededBytes(2, 2000))));
    expect(err).toMatchObject({ kind: 'fail-item', code: 'local.archive-path-link' });
    expect(await readdir(outside)).toEqual([]);
    expect(seen.tempOpens).toBe(0);
  });

  test('the folder removed just as the batch goes to the worker: made again, the put lands', async () => {
    const { target, root } = await setup();
    await target.put(request('gone/old.bin', seededBytes(1, 10)));
    // Moved aside (the folder is not empty), before the worker's open.
    const { renameSync } = await vi.importActual<typeof import('node:fs')>('node:fs');
    seen.beforePost = () => {
      seen.beforePost = null;
      renameSync(path.join(root, 'gone'), path.join(root, 'moved'));
    };
    await target.put(request('gone/new.bin', seededBytes(2, 2000)));
    await expectWhole(root, [['gone/new.bin', seededBytes(2, 2000)]]);
  });

  test('a put aborted while its batch is on the worker: AbortError, nothing renamed, no temp file left; the others of the batch land', async () => {
    const { target, root } = await setup();
    const stop = new AbortController();
    // Once the batch's flags are made, as it is posted: only the worker's check can see it.
    seen.beforePost = () => {
      seen.beforePost = null;
      stop.abort();
    };
    const [cancelled, other] = await Promise.all([
      rejected(target.put(request('q/cancelled.bin', seededBytes(1, 3000), { signal: stop.signal }))),
      target.put(request('q/other.bin', seededBytes(2, 3000))),
    ]);
    expect(cancelled).toMatchObject({ name: 'AbortError' });
    expect(target.classify(cancelled).kind).toBe('retry');
    expect(other.unchanged).toBe(false);
    expect(await listFiles(root)).toEqual(['q/other.bin']);
    expect(seen.tempOpens).toBe(0);
  });

  test('a source offered with its descriptor is read on the worker (readSync never called); one that grew, or a descriptor that fails, gives the same error as readSync does', async () => {
    const { target, root, dir } = await setup();
    const real = await vi.importActual<typeof import('node:fs')>('node:fs');
    const bytes = seededBytes(5, 6000);
    const file = path.join(dir, 'source.bin');
    real.writeFileSync(file, bytes);
    const fd = real.openSync(file, 'r');
    cleanups.push(async () => real.closeSync(fd));
    let mainReads = 0;
    const viaFd = (p: string, size: number, sourceFd: number): PutRequest => ({
      ...request(p, bytes, { size }),
      readSync: (b, o, l, pos) => {
        mainReads++;
        return real.readSync(sourceFd, b, o, l, pos);
      },
      sourceFd,
    });
    expect(await target.put(viaFd('fd/whole.bin', 6000, fd))).toMatchObject({ size: 6000, bytesSent: 6000 });
    expect((await readFile(path.join(root, 'fd/whole.bin'))).equals(bytes)).toBe(true);
    expect(mainReads).toBe(0);

    // Stated smaller than it is (it grew), then a descriptor that is not open: each as readSync's error.
    // A number no descriptor has (past the open-file limit): a closed one's number may be reused
    // by the next open (the archive root's, for its flush barrier) before the put reads it.
    const badFd = 1 << 24;
    const worker = [await rejected(target.put(viaFd('fd/grew.bin', 5000, fd))), await rejected(target.put(viaFd('fd/bad.bin', 6000, badFd)))];
    expect(mainReads).toBe(0);
    const withoutFd = (r: PutRequest): PutRequest => {
      const { sourceFd: _, ...rest } = r;
      return rest;
    };
    const inThread = [await rejected(target.put(withoutFd(viaFd('fd/grew.bin', 5000, fd)))), await rejected(target.put(withoutFd(viaFd('fd/bad.bin', 6000, badFd))))];
    expect(mainReads).toBeGreaterThan(0);
    expect(worker[0]).toBeInstanceOf(ShortReadError);
    expect(worker[0]).toMatchObject({ expected: 5000, actual: 5001 });
    expect(worker[1]).toMatchObject({ code: 'local.source-unreadable' });
    for (const [i, err] of worker.entries()) {
      expect((err as Error).constructor).toBe((inThread[i] as Error).constructor);
      expect(target.classify(err)).toEqual(target.classify(inThread[i]));
    }
    expect(await listFiles(root)).toEqual(['fd/whole.bin']);
  });

  test('a worker that dies with a batch in hand: a warning, the batch done again on the main thread, whole, no temp file left', async () => {
    const { target, root, logs } = await setup();
    seen.afterPost = (w) => {
      seen.afterPost = null;
      void w.terminate();
    };
    const put = files(12, 20);
    await Promise.all(put.map(([p, b]) => target.put(request(p, b))));
    await expectWhole(root, put);
    expect(logs.some((l) => l.level === 40 && /small-file worker thread failed/.test(l.msg))).toBe(true);
    // From then on, on this thread.
    const opens = seen.tempOpens;
    await target.put(request('after.bin', seededBytes(7, 10)));
    expect(seen.tempOpens).toBe(opens + 1);
  });

  test('a large copy goes to the worker a chunk a message, stored byte for byte with its holes; a second put in flight is not mixed with it', async () => {
    const { target, root } = await setup();
    const big = seededBytes(61, 3 * 1024 * 1024 + 777);
    big.fill(0, 1024 * 1024, 2 * 1024 * 1024 + 4096);
    const other = seededBytes(62, 2 * 1024 * 1024);
    const chunks: number[] = [];
    seen.beforePost = (m) => {
      const c = (m as { chunk?: { length: number } }).chunk;
      if (c) chunks.push(c.length);
    };
    const [a, b] = await Promise.all([target.put(request('big.bin', big)), target.put(request('other.bin', other))]);
    expect(a).toMatchObject({ size: big.length, hash: sha256(big), unchanged: false });
    expect(b).toMatchObject({ size: other.length, hash: sha256(other), unchanged: false });
    // 4 chunks of big.bin and 2 of other.bin, each one message.
    expect(chunks.sort((x, y) => x - y)).toEqual([777, 1024 * 1024, 1024 * 1024, 1024 * 1024, 1024 * 1024, 1024 * 1024]);
    await expectWhole(root, [['big.bin', big], ['other.bin', other]]);
    // The zeros were not written: fewer blocks than the size.
    expect((await stat(path.join(root, 'big.bin'))).blocks * 512).toBeLessThanOrEqual(big.length - 1024 * 1024 + 64 * 1024);
  });

  test('a worker that dies during a large copy: that put fails (retry, nothing renamed, no temp left) rather than waits; the next copy is made on the main thread', async () => {
    const { target, root, logs } = await setup();
    // The local target's worker, as it is given the copy's first chunk (not the sha256 worker).
    let chunkPosted = false;
    seen.beforePost = (m) => {
      chunkPosted = (m as { chunk?: unknown }).chunk !== undefined;
    };
    seen.afterPost = (w) => {
      if (!chunkPosted) return;
      seen.afterPost = null;
      void w.terminate();
    };
    const big = seededBytes(63, 3 * 1024 * 1024);
    const err = await rejected(target.put(request('big.bin', big)));
    expect(err).toBeInstanceOf(TargetError);
    expect(target.classify(err).kind).toBe('retry');
    expect(await listFiles(root)).toEqual([]);
    expect(logs.some((l) => l.level === 40 && /worker thread failed/.test(l.msg))).toBe(true);
    let chunksAfter = 0;
    seen.beforePost = (m) => {
      if ((m as { chunk?: unknown }).chunk !== undefined) chunksAfter++;
    };
    await target.put(request('big.bin', big));
    expect(chunksAfter).toBe(0);
    await expectWhole(root, [['big.bin', big]]);
  });

  test('a worker that cannot start: a warning, the puts made on the main thread', async () => {
    seen.noWorker = true;
    const { target, root, logs } = await setup();
    const put = files(5, 40);
    await Promise.all(put.map(([p, b]) => target.put(request(p, b))));
    await expectWhole(root, put);
    expect(seen.tempOpens).toBe(5);
    expect(logs.some((l) => l.level === 40 && /small-file worker thread failed/.test(l.msg))).toBe(true);
  });
});
