import { createReadStream, readdirSync, readlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdir, open, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ConfigError, ShortReadError, TargetError } from '../../../src/errors.js';
import { hashBuffer } from '../../../src/archive/hash.js';
import { createLocalTarget, LOCAL_FEATURES } from '../../../src/targets/local/index.js';
import { versionStamp } from '../../../src/targets/local/names.js';
import { smallPutsInThread } from '../../../src/targets/local/upload.js';
import { fsBarrierModule } from '../../../src/targets/kit/fs-barrier.js';
import { localHarness, type LocalHarness } from '../../conformance/local-harness.js';
import { request, seededBytes, truncatedSource } from '../../conformance/sources.js';
import { listFiles, tempDir } from '../../helpers/fs.js';
import { rejected } from '../../helpers/rejection.js';

/** Called with each descriptor fsynced through node:fs's fsync (a small file's temp file). */
const fsyncSeen = vi.hoisted(() => ({ hook: null as ((fd: number) => void) | null }));
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const fsync = ((fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => {
    fsyncSeen.hook?.(fd);
    real.fsync(fd, cb);
  }) as typeof real.fsync;
  return { ...real, default: { ...real, fsync }, fsync };
});

/** What this process's open descriptors are of, at or under `dir`. */
function openUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const at = readlinkSync(`/proc/self/fd/${fd}`);
      if (at === dir || at.startsWith(`${dir}/`)) out.push(at);
    } catch {
      // Closed meanwhile (the listing's own descriptor).
    }
  }
  return out;
}

/**
 * The small puts' calls made on this thread, where the mocks and spies see them (not on the
 * worker thread), each node:fs fsync's path pushed to `synced`; undone after the test.
 */
function seeFsyncsHere(synced: string[]): void {
  fsyncSeen.hook = (fd) => synced.push(readlinkSync(`/proc/self/fd/${fd}`));
  smallPutsInThread.forced = true;
  cleanupHook = () => {
    fsyncSeen.hook = null;
    smallPutsInThread.forced = false;
  };
}

let h: LocalHarness | undefined;
let cleanupHook: (() => void) | undefined;
afterEach(async () => {
  cleanupHook?.();
  cleanupHook = undefined;
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  await h?.cleanup();
  h = undefined;
});

async function harness(keepVersions = false): Promise<LocalHarness> {
  h = await localHarness({ keepVersions });
  return h;
}

const M1 = Date.UTC(2022, 1, 3, 4, 5, 6);
const M2 = Date.UTC(2023, 6, 8, 9, 10, 11);

describe('local target: factory and options', () => {
  test('features as declared', () => {
    expect(LOCAL_FEATURES).toEqual({
      hashKind: 'sha256',
      caseInsensitive: false,
      simpleUploadMax: Number.POSITIVE_INFINITY,
      chunkSize: 1024 * 1024,
      resumable: false,
      rangedDownload: true,
    });
  });

  test.each([
    [{ id: '', path: '/x' }, 'id'],
    [{ id: 'l', path: '' }, 'path'],
    [{ id: 'l', path: 42 }, 'path'],
    [{ id: 'l', path: '/x', keepVersions: 'yes' }, 'keepVersions'],
  ])('invalid options %j → ConfigError at %s', (opts, key) => {
    const ctx = { log: pino({ level: 'silent' }), stateDir: '/tmp' };
    let err: unknown;
    try {
      createLocalTarget(opts as never, ctx);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).path).toBe(key);
    expect((err as Error).message).toMatch(/^Expected `/);
  });
});

describe('local target: put', () => {
  test('remoteId is the absolute path of the stored file; ensureFolder makes folders', async () => {
    const { target, root } = await harness();
    const res = await target.put(request('a/b.bin', seededBytes(1, 10)));
    expect(res.remoteId).toBe(path.join(root, 'a/b.bin'));
    expect(await target.ensureFolder('')).toBe(root);
    const made = await target.ensureFolder('x/y/z');
    expect(made).toBe(path.join(root, 'x/y/z'));
    expect((await stat(made)).isDirectory()).toBe(true);
  });

  test('a small source offered with readSync is read through it, never opened as a stream; one that grew or shrank is refused', async () => {
    const { target, root } = await harness();
    const body = seededBytes(7, 5000);
    const syncOf = (bytes: Buffer) => (buf: Buffer, off: number, len: number, pos: number) => bytes.copy(buf, off, pos, Math.min(bytes.length, pos + len));
    const noStream = () => {
      throw new Error('open() called: readSync was offered');
    };
    const res = await target.put({ ...request('r/s.bin', body, { open: noStream }), readSync: syncOf(body) });
    expect(res).toMatchObject({ size: 5000, hash: hashBuffer('sha256', body), bytesSent: 5000, unchanged: false });
    expect((await readFile(path.join(root, 'r/s.bin'))).equals(body)).toBe(true);
    for (const actual of [Buffer.concat([body, Buffer.from('more')]), body.subarray(0, 4000)]) {
      const err = await rejected(target.put({ ...request('r/t.bin', body, { open: noStream }), readSync: syncOf(actual) }));
      expect(err).toBeInstanceOf(ShortReadError);
    }
    expect(await listFiles(root)).toEqual(['r/s.bin']);
  });

  test('small files (the synchronous path) come out whole: zero blocks inside and at the end, empty, one byte', async () => {
    const { target, root } = await harness();
    const zeroTail = Buffer.concat([seededBytes(2, 4096), Buffer.alloc(8192)]);
    const zeroMiddle = Buffer.concat([seededBytes(3, 100), Buffer.alloc(4096 * 2), seededBytes(4, 50)]);
    const cases: [string, Buffer][] = [['tail.bin', zeroTail], ['middle.bin', zeroMiddle], ['empty.bin', Buffer.alloc(0)], ['one.bin', Buffer.from('x')], ['zeros.bin', Buffer.alloc(5000)]];
    for (const [name, body] of cases) {
      const res = await target.put(request(`s/${name}`, body, { mtimeMs: M1 }));
      expect(res).toMatchObject({ size: body.length, hash: hashBuffer('sha256', body), unchanged: false });
      expect((await readFile(path.join(root, 's', name))).equals(body)).toBe(true);
      expect((await stat(path.join(root, 's', name))).mtimeMs).toBe(M1);
    }
    expect((await readdir(path.join(root, 's'))).sort()).toEqual(cases.map(([n]) => n).sort());
  });

  test('an identical re-put writes nothing: same inode, same mtime', async () => {
    const { target, root } = await harness();
    const bytes = seededBytes(2, 100_000);
    await target.put(request('f.bin', bytes, { mtimeMs: M1 }));
    const before = await stat(path.join(root, 'f.bin'));
    const again = await target.put(request('f.bin', bytes, { mtimeMs: M2 }));
    const after = await stat(path.join(root, 'f.bin'));
    expect(again.unchanged).toBe(true);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(M1);
  });

  test('a source whose file vanished fails the item (source-gone), nothing written', async () => {
    const { target, root, dir } = await harness();
    const missing = path.join(dir, 'inbox', 'gone.txt');
    const req = request('inbox/gone.txt', Buffer.alloc(0), { size: 10, open: () => createReadStream(missing) });
    const err = await rejected(target.put(req));
    expect(err).toBeInstanceOf(TargetError);
    expect((err as TargetError).kind).toBe('fail-item');
    expect((err as TargetError).code).toBe('local.source-gone');
    expect(target.classify(err)).toMatchObject({ kind: 'fail-item' });
    expect(target.classify(err).reason).toMatch(/^source-gone: source: ENOENT/);
    expect(await listFiles(root)).toEqual([]);
  });

  test('open() throwing at once is the source failing', async () => {
    const { target } = await harness();
    const enoent = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
    const err = await rejected(target.put(request('x.bin', Buffer.alloc(3), { open: () => { throw enoent; } })));
    expect(target.classify(err).kind).toBe('fail-item');
    expect((err as TargetError).cause).toMatchObject({ cause: enoent });
  });

  test('a folder at the final path fails the item', async () => {
    const { target, root } = await harness();
    await mkdir(path.join(root, 'taken', 'sub'), { recursive: true });
    const err = await rejected(target.put(request('taken/sub', seededBytes(3, 10))));
    expect(err).toMatchObject({ kind: 'fail-item', code: 'local.archive-path-blocked' });
  });

  test('a file where a folder is needed fails the item', async () => {
    const { target, root } = await harness();
    await target.put(request('plain', seededBytes(3, 10)));
    const err = await rejected(target.put(request('plain/child.bin', seededBytes(4, 10))));
    expect(target.classify(err).kind).toBe('fail-item');
    expect(target.classify(err).reason).toMatch(/^archive-path-blocked: /);
    expect(await listFiles(root)).toEqual(['plain']);
  });

  test('an archive root that disappears after first use is fatal and is not re-created', async () => {
    const { target, root } = await harness();
    await target.put(request('first.bin', seededBytes(5, 10)));
    await rm(root, { recursive: true });
    const err = await rejected(target.put(request('second/x.bin', seededBytes(6, 10))));
    expect(err).toMatchObject({ kind: 'fatal', code: 'local.archive-root-gone' });
    await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a root that disappears is caught on a put into a folder already used (fatal, not re-created)', async () => {
    const { target, root } = await harness();
    await target.put(request('one.bin', seededBytes(5, 10)));
    await rm(root, { recursive: true });
    const err = await rejected(target.put(request('two.bin', seededBytes(6, 10))));
    expect(err).toMatchObject({ kind: 'fatal', code: 'local.archive-root-gone' });
    await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('a folder removed by hand after a put is made again by the next put into it', async () => {
    const { target, root } = await harness();
    await target.put(request('a/b/one.bin', seededBytes(5, 10)));
    await rm(path.join(root, 'a'), { recursive: true });
    await target.put(request('a/b/two.bin', seededBytes(6, 10)));
    expect(await listFiles(root)).toEqual(['a/b/two.bin']);
  });

  test('the root is created on first use', async () => {
    const { target, root } = await harness();
    await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
    await target.put(request('deep/file.bin', seededBytes(7, 10)));
    expect((await stat(root)).isDirectory()).toBe(true);
  });

  test('without the flush barrier (STAGECOACH_SYNCFS=off), fsync: the temp file, each new folder\'s parent, and the folder after the rename', async () => {
    vi.stubEnv('STAGECOACH_SYNCFS', 'off');
    const { target, root } = await harness();
    await target.ensureFolder('');
    const probe = await open(root, 'r');
    const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    const synced: string[] = [];
    // The fsyncs made through a FileHandle (three thread-pool round trips with its open and close).
    const throughHandle: string[] = [];
    const real = proto.sync;
    vi.spyOn(proto, 'sync').mockImplementation(function (this: { fd: number }) {
      synced.push(readlinkSync(`/proc/self/fd/${this.fd}`));
      throughHandle.push(readlinkSync(`/proc/self/fd/${this.fd}`));
      return real.call(this);
    });
    seeFsyncsHere(synced);
    await target.put(request('x/y/f.bin', seededBytes(8, 5000)));
    expect(synced).toHaveLength(4);
    // New folders x and x/y are entries of root and x: both parents are synced, each as the
    // folder is made (made one by one, so that none is made through a link).
    expect(synced[0]).toBe(root);
    expect(synced[1]).toBe(path.join(root, 'x'));
    expect(path.dirname(synced[2]!)).toBe(path.join(root, 'x/y'));
    expect(path.basename(synced[2]!)).toMatch(/^\.f\.bin\.stagecoach-[0-9a-f]+\.tmp$/);
    expect(synced[3]).toBe(path.join(root, 'x/y'));
    // On a local file system a new folder's parent is opened and closed by synchronous calls:
    // only its fsync goes to the thread pool (behind the small puts' fsyncs queued there).
    expect(throughHandle).toEqual([]);

    // Into an existing folder: the file, then its folder.
    synced.length = 0;
    await target.put(request('x/y/g.bin', seededBytes(9, 5000)));
    expect(synced.map((p) => path.basename(p))).toEqual([expect.stringMatching(/^\.g\.bin\.stagecoach-/), 'y']);
  });

  test('with the flush barrier: a small put is flushed by two syncfs of the archive (its temp file, then its rename), not by fsyncs', async () => {
    // This machine (Linux >= 5.8, ext4 or tmpfs, a C compiler at npm ci) has the native module.
    const modulePath = fsBarrierModule();
    expect(modulePath).not.toBeNull();
    const native = createRequire(import.meta.url)(modulePath!) as { syncfs: (fd: number, done: (errno: number) => void) => void };
    const flushed: string[] = [];
    const realSyncfs = native.syncfs;
    vi.spyOn(native, 'syncfs').mockImplementation((fd, done) => {
      flushed.push(readlinkSync(`/proc/self/fd/${fd}`));
      realSyncfs(fd, done);
    });
    const { target, root } = await harness();
    await target.ensureFolder('');
    const synced: string[] = [];
    seeFsyncsHere(synced);
    await target.put(request('x/y/f.bin', seededBytes(8, 5000)));
    // The new folders' parents are still fsynced as each is made; the file and its folder entry are flushed by the barrier.
    expect(synced).toEqual([root, path.join(root, 'x')]);
    expect(flushed).toEqual([root, root]);
    synced.length = 0;
    flushed.length = 0;
    await target.put(request('x/y/g.bin', seededBytes(9, 5000)));
    expect(synced).toEqual([]);
    expect(flushed).toEqual([root, root]);
    expect(await readFile(path.join(root, 'x/y/g.bin'))).toEqual(seededBytes(9, 5000));
    // Idle, the barrier keeps no descriptor of the archive (its disk can be unmounted).
    expect(openUnder(root)).toEqual([]);
  });

  test('on the worker thread too, an idle target holds no descriptor of the archive (its disk can be unmounted)', async () => {
    const { target, root } = await harness();
    await Promise.all(Array.from({ length: 40 }, (_, i) => target.put(request(`w/f${i}.bin`, seededBytes(100 + i, 3000)))));
    expect(openUnder(root)).toEqual([]);
    await Promise.all(Array.from({ length: 40 }, (_, i) => target.put(request(`w/g${i}.bin`, seededBytes(200 + i, 3000)))));
    expect(openUnder(root)).toEqual([]);
    expect(await readFile(path.join(root, 'w/f39.bin'))).toEqual(seededBytes(139, 3000));
  });

  test('a source growing without end is cut off just past the stated size', async () => {
    const { target, root } = await harness();
    const { Readable } = await import('node:stream');
    const chunk = seededBytes(80, 64 * 1024);
    let pulled = 0;
    const endless = () =>
      Readable.from(
        (function* () {
          // Bounded so a target that reads to the end still ends the test (and fails it).
          for (let i = 0; i < 2000; i++) {
            pulled++;
            yield chunk;
          }
        })(),
        { objectMode: false, highWaterMark: chunk.length },
      );
    const err = await rejected(target.put(request('grow.bin', chunk, { size: 4 * chunk.length, open: endless })));
    expect(err).toBeInstanceOf(ShortReadError);
    expect(pulled).toBeLessThanOrEqual(8);
    expect(await listFiles(root)).toEqual([]);
  });

  test('an abort destroys a stalled source at once, and the put rejects', async () => {
    const { target, root } = await harness();
    const { Readable } = await import('node:stream');
    const ac = new AbortController();
    let src: InstanceType<typeof Readable> | undefined;
    let first!: () => void;
    const firstRead = new Promise<void>((r) => (first = r));
    const stalled = () => {
      src = new Readable({
        read() {
          if (!this.readableLength) {
            this.push(Buffer.alloc(1000));
            first();
          }
          // then never another byte: a hung network mount
        },
      });
      return src;
    };
    const put = target.put(request('stall.bin', Buffer.alloc(5000), { open: stalled, signal: ac.signal }));
    await firstRead;
    ac.abort();
    const destroyedAtOnce = src!.destroyed;
    // Release a target that ignored the signal, so a failure here cannot hang the test.
    if (!destroyedAtOnce) src!.destroy(new Error('released by the test'));
    const err = await rejected(put);
    expect(destroyedAtOnce).toBe(true);
    expect((err as Error).name).toBe('AbortError');
    expect(target.classify(err).kind).toBe('retry');
    expect(await listFiles(root)).toEqual([]);
  });

  test('stat reports size and sha256; null for a folder or nothing', async () => {
    const { target, root } = await harness();
    const bytes = seededBytes(10, 1234);
    await target.put(request('s/f.bin', bytes));
    expect(await target.stat('s/f.bin')).toEqual({ remoteId: path.join(root, 's/f.bin'), size: 1234, hash: hashBuffer('sha256', bytes) });
    expect(await target.stat('s')).toBeNull();
    expect(await target.stat('nope/f.bin')).toBeNull();
    await expect(target.stat('../up')).rejects.toMatchObject({ kind: 'fail-item', code: 'local.dot-segment' });
  });
});

describe('local target: keepVersions', () => {
  const entries = async (dir: string) => (await readdir(dir)).sort();

  test('the previous copy is kept beside, named by its own mtime (UTC), content and mtime intact', async () => {
    const { target, root } = await harness(true);
    const a = seededBytes(20, 3000);
    const b = seededBytes(21, 4000);
    await target.put(request('docs/report.pdf', a, { mtimeMs: M1 }));
    await target.put(request('docs/report.pdf', b, { mtimeMs: M2 }));
    const kept = `report.${versionStamp(new Date(M1))}.pdf`;
    expect(kept).toBe('report.20220203-040506.pdf');
    expect(await entries(path.join(root, 'docs'))).toEqual([kept, 'report.pdf'].sort());
    expect((await readFile(path.join(root, 'docs', kept))).equals(a)).toBe(true);
    expect((await stat(path.join(root, 'docs', kept))).mtimeMs).toBe(M1);
    expect((await readFile(path.join(root, 'docs/report.pdf'))).equals(b)).toBe(true);
    expect((await stat(path.join(root, 'docs/report.pdf'))).mtimeMs).toBe(M2);
  });

  test('copies with the same mtime get distinct names; none is overwritten', async () => {
    const { target, root } = await harness(true);
    const versions = [seededBytes(30, 100), seededBytes(31, 100), seededBytes(32, 100), seededBytes(33, 100)];
    for (const v of versions) await target.put(request('README', v, { mtimeMs: M1 }));
    const stamp = versionStamp(new Date(M1));
    expect(await entries(root)).toEqual(['README', `README.${stamp}`, `README.${stamp}-1`, `README.${stamp}-2`].sort());
    expect((await readFile(path.join(root, `README.${stamp}`))).equals(versions[0]!)).toBe(true);
    expect((await readFile(path.join(root, `README.${stamp}-1`))).equals(versions[1]!)).toBe(true);
    expect((await readFile(path.join(root, `README.${stamp}-2`))).equals(versions[2]!)).toBe(true);
    expect((await readFile(path.join(root, 'README'))).equals(versions[3]!)).toBe(true);
  });

  test('an identical re-put and a failed put keep no version', async () => {
    const { target, root } = await harness(true);
    const a = seededBytes(40, 500);
    await target.put(request('f.txt', a, { mtimeMs: M1 }));
    expect((await target.put(request('f.txt', a, { mtimeMs: M2 }))).unchanged).toBe(true);
    const b = seededBytes(41, 600);
    const err = await rejected(target.put(request('f.txt', b, { open: truncatedSource(b, 10) })));
    expect(err).toBeInstanceOf(ShortReadError);
    expect(await entries(root)).toEqual(['f.txt']);
    expect((await readFile(path.join(root, 'f.txt'))).equals(a)).toBe(true);
  });

  test('without keepVersions the copy is replaced', async () => {
    const { target, root } = await harness(false);
    await target.put(request('f.txt', seededBytes(50, 10), { mtimeMs: M1 }));
    await target.put(request('f.txt', seededBytes(51, 10), { mtimeMs: M2 }));
    expect(await entries(root)).toEqual(['f.txt']);
  });

  test('an old copy whose mtime was changed by hand is named by that mtime', async () => {
    const { target, root } = await harness(true);
    await target.put(request('n.txt', seededBytes(60, 10), { mtimeMs: M1 }));
    await utimes(path.join(root, 'n.txt'), new Date(M2), new Date(M2));
    await target.put(request('n.txt', seededBytes(61, 10), { mtimeMs: M1 }));
    expect(await entries(root)).toEqual([`n.${versionStamp(new Date(M2))}.txt`, 'n.txt'].sort());
  });
});

describe('local target: check and close', () => {
  test('check() creates the root, writes and removes a probe, reports free space', async () => {
    const { target, root } = await harness();
    const msg = await target.check();
    expect(msg).toMatch(new RegExp(`^local folder ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is writable, \\d+\\.\\d GiB free$`));
    expect((await stat(root)).isDirectory()).toBe(true);
    expect(await readdir(root)).toEqual([]);
  });

  test('check() on a root that is a file fails fatal, naming the root', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const file = path.join(dir, 'not-a-folder');
      await writeFile(file, 'x');
      const target = createLocalTarget({ id: 'arch', path: file }, { log: pino({ level: 'silent' }), stateDir: dir });
      const err = await rejected(target.check());
      expect(err).toMatchObject({ kind: 'fatal', target: 'arch' });
      expect(target.classify(err).reason).toMatch(/^archive-path-blocked: the archive root .*not-a-folder is not usable: /);
    } finally {
      await cleanup();
    }
  });

  test('check() on a root below a file fails fatal (ENOTDIR)', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await writeFile(path.join(dir, 'file'), 'x');
      const root = path.join(dir, 'file', 'archive');
      const target = createLocalTarget({ id: 'arch', path: root }, { log: pino({ level: 'silent' }), stateDir: dir });
      const err = await rejected(target.check());
      expect(err).toMatchObject({ kind: 'fatal' });
      expect((err as Error).message).toContain(`the archive root ${root} is not usable: ENOTDIR`);
    } finally {
      await cleanup();
    }
  });

  test('close() is idempotent, waits for puts in flight, and refuses new puts', async () => {
    const { target, root } = await harness();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const bytes = seededBytes(70, 200_000);
    const { Readable } = await import('node:stream');
    const slow = target.put(
      request('slow.bin', bytes, {
        open: () =>
          Readable.from(
            (async function* () {
              yield bytes.subarray(0, 1000);
              await gate;
              yield bytes.subarray(1000);
            })(),
            { objectMode: false },
          ),
      }),
    );
    const c1 = target.close();
    const c2 = target.close();
    expect(c2).toBe(c1);
    let closed = false;
    void c1.then(() => (closed = true));
    await expect(target.put(request('late.bin', bytes))).rejects.toMatchObject({ kind: 'fatal', code: 'local.closed' });
    expect(closed).toBe(false);
    release();
    await slow;
    await c1;
    expect(closed).toBe(true);
    expect((await readFile(path.join(root, 'slow.bin'))).equals(bytes)).toBe(true);
  });
});
