/**
 * Issue 19, item 4: a large file's copy to the local target made by the kernel
 * (copy_file_range through native/fs-native.c, `copyInKernel` in src/targets/local/upload.ts),
 * where the delivery offers the source's descriptor (PutRequest.sourceFd, as deliver.ts does for
 * every unpaced source). The copy holds the source's bytes with its holes, its hash is that of the
 * bytes the archive holds, a source that changed size fails the put and leaves nothing, and a
 * kernel that refuses the call leaves the copy to the process.
 *
 * copy_file_range(2) (man7.org/linux/man-pages/man2/copy_file_range.2.html): "copies up to len
 * bytes of data from the source file descriptor fd_in to the target file descriptor fd_out"; "If
 * off_in is not NULL ... the file offset of fd_in is not changed"; EXDEV "The files referred to by
 * fd_in and fd_out are not on the same filesystem" (before Linux 5.3, and for some file systems
 * since 5.19). lseek(2) SEEK_DATA / SEEK_HOLE: "Adjust the file offset to the next location in the
 * file ... containing data" / "to the next hole".
 */
import { createHash } from 'node:crypto';
import { openSync, closeSync, ftruncateSync, readFileSync, readSync, readdirSync, statSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ShortReadError } from '../../../src/errors.js';
import { loadNativeFs, nativeFsModule, type CopyRangeCall } from '../../../src/targets/kit/fs-native.js';
import type { PutRequest } from '../../../src/targets/target.js';
import { localHarness, type LocalHarness } from '../../conformance/local-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { listFiles } from '../../helpers/fs.js';
import { rejected } from '../../helpers/rejection.js';

const MiB = 1024 * 1024;

let h: LocalHarness | undefined;
const closeLater: number[] = [];
const handles: FileHandle[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const fd of closeLater.splice(0)) closeSync(fd);
  for (const fh of handles.splice(0)) await fh.close();
  await h?.cleanup();
  h = undefined;
});

/** The native module as every thread of this process loads it (one module object: its functions can be spied on). */
function nativeModule(): { copyRange: CopyRangeCall } {
  const at = nativeFsModule();
  // Built here by `npm ci` (Linux, a C compiler).
  expect(at).not.toBeNull();
  return createRequire(import.meta.url)(at!) as { copyRange: CopyRangeCall };
}

/**
 * A sparse source file: `data` pieces at their offsets, holes between them and up to `size`. Its
 * bytes, and a request offering its descriptor as deliver.ts does (read and sourceFd).
 */
async function sparseSource(dir: string, size: number, data: Array<[number, Buffer]>): Promise<{ file: string; bytes: Buffer; req: PutRequest }> {
  const file = path.join(dir, `src-${Math.random().toString(16).slice(2)}.bin`);
  const fd = openSync(file, 'w+');
  for (const [at, b] of data) writeSync(fd, b, 0, b.length, at);
  ftruncateSync(fd, size);
  closeSync(fd);
  const bytes = await readFile(file);
  const fh = await open(file, 'r');
  handles.push(fh);
  const req = request('big/file.bin', bytes);
  req.read = async (b, o, l, p) => (await fh.read(b, o, l, p)).bytesRead;
  req.sourceFd = fh.fd;
  return { file, bytes, req };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('local target: a large file copied in the kernel', () => {
  test('the copy holds the source byte for byte, its holes stay holes, the hash is of what the archive holds, and the kernel made the copy, a call a MiB', async () => {
    h = await localHarness();
    const native = nativeModule();
    const calls: Array<[number, number]> = [];
    const real = native.copyRange;
    vi.spyOn(native, 'copyRange').mockImplementation((src, dst, position, length, done) => {
      calls.push([position, length]);
      real(src, dst, position, length, done);
    });
    // 9 MiB + 100: data at the start, in the middle and near the end, a 4 MiB hole, a hole at the end.
    const size = 9 * MiB + 100;
    const { bytes, req } = await sparseSource(h.dir, size, [
      [0, seededBytes(1, MiB + 5000)],
      [6 * MiB, seededBytes(2, 300_000)],
      [8 * MiB + 4096, seededBytes(3, 10_000)],
    ]);
    const result = await h.target.put(req);
    expect(result.hash).toBe(sha256(bytes));
    expect(result.size).toBe(size);
    const copy = path.join(h.root, 'big/file.bin');
    expect(sha256(await readFile(copy))).toBe(sha256(bytes));
    // The copy's blocks: about its 1.3 MiB of data, not its 9 MiB.
    expect(statSync(copy).blocks * 512).toBeLessThan(2 * MiB);
    // One call a MiB, the last one asking for the byte past the stated size (a file that grew).
    expect(calls.length).toBe(10);
    expect(calls[9]).toEqual([9 * MiB, 101]);
    expect(readdirSync(path.dirname(copy))).toEqual(['file.bin']);
  });

  test.each([
    ['grew', 3 * MiB + 10, 3 * MiB],
    ['shrank', 3 * MiB - 10, 3 * MiB],
  ])('a source that %s since it was journaled fails the put (ShortReadError) and leaves nothing', async (_how, actual, stated) => {
    h = await localHarness();
    const { req } = await sparseSource(h.dir, actual, [[0, seededBytes(4, actual)]]);
    req.size = stated;
    const copyRange = vi.spyOn(nativeModule(), 'copyRange');
    const err = await rejected(h.target.put(req));
    expect(err).toBeInstanceOf(ShortReadError);
    expect(copyRange).toHaveBeenCalled();
    expect(await listFiles(h.root)).toEqual([]);
  });

  test('a kernel that refuses the first call (EXDEV): the copy goes through the process, and is right', async () => {
    h = await localHarness();
    const refused = vi.spyOn(nativeModule(), 'copyRange').mockImplementation((_src, _dst, position, _length, done) => setImmediate(() => done(18 /* EXDEV */, position)));
    const { bytes, req } = await sparseSource(h.dir, 2 * MiB + 7, [[0, seededBytes(5, 2 * MiB + 7)]]);
    const result = await h.target.put(req);
    expect(refused).toHaveBeenCalledTimes(1);
    expect(result.hash).toBe(sha256(bytes));
    expect(sha256(await readFile(path.join(h.root, 'big/file.bin')))).toBe(sha256(bytes));
  });

  test('a kernel that refuses at the first data, after a leading hole: nothing was written yet, so the copy goes through the process, and is right', async () => {
    h = await localHarness();
    const native = nativeModule();
    const real = native.copyRange;
    const refused = vi.spyOn(native, 'copyRange').mockImplementation((src, dst, position, length, done) => {
      if (position < 2 * MiB) real(src, dst, position, length, done);
      else setImmediate(() => done(18 /* EXDEV */, position));
    });
    const { bytes, req } = await sparseSource(h.dir, 3 * MiB, [[2 * MiB, seededBytes(8, 500_000)]]);
    const result = await h.target.put(req);
    expect(refused).toHaveBeenCalledTimes(3);
    expect(result.hash).toBe(sha256(bytes));
    expect(sha256(await readFile(path.join(h.root, 'big/file.bin')))).toBe(sha256(bytes));
  });

  test('an error past the first chunk (ENOSPC) fails the put with it, and leaves nothing', async () => {
    h = await localHarness();
    const native = nativeModule();
    const real = native.copyRange;
    vi.spyOn(native, 'copyRange').mockImplementation((src, dst, position, length, done) => {
      if (position >= MiB) setImmediate(() => done(28 /* ENOSPC */, position));
      else real(src, dst, position, length, done);
    });
    const { req } = await sparseSource(h.dir, 3 * MiB, [[0, seededBytes(6, 3 * MiB)]]);
    const err = await rejected(h.target.put(req));
    expect(String(err)).toContain('archive-full');
    expect((err as { cause?: unknown }).cause).toMatchObject({ code: 'ENOSPC', syscall: 'copy_file_range' });
    expect(await listFiles(h.root)).toEqual([]);
  });

  test('the native call itself: ranges, holes skipped, the end at the source\'s size, EBADF', async () => {
    h = await localHarness();
    const { copyRange } = loadNativeFs()!;
    const { file, bytes } = await sparseSource(h.dir, 3 * MiB, [[2 * MiB, seededBytes(7, 4096)]]);
    const src = openSync(file, 'r');
    const dstFile = path.join(h.dir, 'dst.bin');
    const dst = openSync(dstFile, 'w+');
    closeLater.push(src, dst);
    const call = (s: number, d: number, position: number, length: number) =>
      new Promise<[number, number]>((resolve) => copyRange(s, d, position, length, (errno, end) => resolve([errno, end])));
    expect(await call(src, dst, 0, 2 * MiB)).toEqual([0, 2 * MiB]);
    // Only a hole so far: nothing written.
    expect(statSync(dstFile).size).toBe(0);
    expect(await call(src, dst, 2 * MiB, 2 * MiB)).toEqual([0, 3 * MiB]);
    ftruncateSync(dst, 3 * MiB);
    expect(sha256(await readFile(dstFile))).toBe(sha256(bytes));
    const [errno] = await call(9999, dst, 0, 10);
    expect(errno).toBe(9 /* EBADF */);
    // The source's own offset is where it was (SEEK_DATA and SEEK_HOLE move it): /proc gives it.
    const offset = (): string | undefined => /^pos:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${src}`, 'utf8'))?.[1];
    readSync(src, Buffer.alloc(8), 0, 8, null);
    expect(offset()).toBe('8');
    expect(await call(src, dst, 0, 3 * MiB)).toEqual([0, 3 * MiB]);
    expect(offset()).toBe('8');
  });
});
