/**
 * Fault injection for the local target: node:fs/promises is wrapped so a test can make opening,
 * writing or probing fail with a chosen errno (ENOSPC, EROFS, EACCES, EMFILE), or corrupt the
 * bytes written. Each failure must leave the previous copy intact and no temp file behind.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { isTempName } from '../../../src/targets/local/names.js';
import { smallPutsInThread } from '../../../src/targets/local/upload.js';
import { localHarness, type LocalHarness } from '../../conformance/local-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { listFiles } from '../../helpers/fs.js';
import { rejected } from '../../helpers/rejection.js';

const faults = vi.hoisted(() => ({
  /** errno thrown by open() of a temp file. */
  openTemp: null as string | null,
  /** errno thrown once a temp file has received more than `after` bytes. */
  write: null as { after: number; code: string } | null,
  /** flip the first byte of the write to a temp file that covers this offset of it. */
  corrupt: null as number | null,
  /** the length of every write to a temp file, in the order asked. */
  writes: [] as number[],
  /** errno thrown by writeFile() (check()'s probe). */
  writeFile: null as string | null,
  /** errno of every fdatasync of a temp file (a large copy's write-behind flush). */
  datasync: null as string | null,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const { basename } = await import('node:path');
  const errno = (code: string) => Object.assign(new Error(`${code}: injected`), { code });
  const isTemp = (p: string) => /^\..*\.stagecoach-[0-9a-f]+\.tmp$/su.test(basename(p));
  const open = (async (p: string, flags?: string, mode?: number) => {
    if (faults.openTemp && isTemp(String(p))) throw errno(faults.openTemp);
    const fh = await real.open(p, flags, mode);
    if (isTemp(String(p)) && faults.datasync) {
      const code = faults.datasync;
      (fh as unknown as { datasync: unknown }).datasync = async () => {
        throw errno(code);
      };
    }
    if (isTemp(String(p))) {
      const original = fh.write.bind(fh) as (b: Buffer, o: number, l: number, at?: number) => Promise<{ bytesWritten: number; buffer: Buffer }>;
      let written = 0;
      (fh as unknown as { write: unknown }).write = async (buf: Buffer, off: number, len: number, at?: number) => {
        faults.writes.push(len);
        if (faults.write && written + len > faults.write.after) throw errno(faults.write.code);
        let data = buf;
        const from = at ?? written;
        if (faults.corrupt !== null && from <= faults.corrupt && faults.corrupt < from + len) {
          data = Buffer.from(buf);
          data[off] = data[off]! ^ 0xff;
        }
        const r = await original(data, off, len, at);
        written += r.bytesWritten;
        return r;
      };
    }
    return fh;
  }) as typeof real.open;
  const writeFile = (async (...args: Parameters<typeof real.writeFile>) => {
    if (faults.writeFile) throw errno(faults.writeFile);
    return real.writeFile(...args);
  }) as typeof real.writeFile;
  return { ...real, default: { ...real, open, writeFile }, open, writeFile };
});

// A small file's put opens its temp file with openSync (node:fs): the same fault there. Its file
// calls, and a large copy's writes, run on the main thread here (smallPutsInThread), where this
// mock is: the worker thread's node:fs is its own (test/targets/local/small-worker.test.ts and
// chunk-sync.test.ts cover that path).
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const { basename } = await import('node:path');
  const openSync = ((p: string, flags: string, mode?: number) => {
    if (faults.openTemp && /^\..*\.stagecoach-[0-9a-f]+\.tmp$/su.test(basename(String(p)))) {
      throw Object.assign(new Error(`${faults.openTemp}: injected`), { code: faults.openTemp });
    }
    return real.openSync(p, flags, mode);
  }) as typeof real.openSync;
  return { ...real, default: { ...real, openSync }, openSync };
});

smallPutsInThread.forced = true;

let h: LocalHarness | undefined;
afterEach(async () => {
  faults.openTemp = null;
  faults.write = null;
  faults.corrupt = null;
  faults.writes = [];
  faults.writeFile = null;
  faults.datasync = null;
  await h?.cleanup();
  h = undefined;
});

async function withOldCopy(): Promise<{ h: LocalHarness; old: Buffer }> {
  h = await localHarness();
  const old = seededBytes(1, 200_000);
  await h.target.put(request('dir/file.bin', old));
  return { h, old };
}

async function expectOldIntact(h: LocalHarness, old: Buffer): Promise<void> {
  expect((await readFile(path.join(h.root, 'dir/file.bin'))).equals(old)).toBe(true);
  const files = await listFiles(h.root);
  expect(files.filter((f) => isTempName(path.basename(f)))).toEqual([]);
  expect(files).toEqual(['dir/file.bin']);
}

describe('local target under injected faults', () => {
  test.each([
    ['ENOSPC', 'fatal', 'archive-full'],
    ['EDQUOT', 'fatal', 'archive-full'],
    ['EIO', 'retry', 'unknown'],
  ])('%s while writing → %s %s; temp removed, old copy intact', async (code, kind, rule) => {
    const { h, old } = await withOldCopy();
    faults.write = { after: 100_000, code };
    const err = await rejected(h.target.put(request('dir/file.bin', seededBytes(2, 200_000))));
    expect(err).toBeInstanceOf(TargetError);
    expect(err).toMatchObject({ kind, code: `local.${rule}`, target: 'local' });
    expect(h.target.classify(err).reason).toMatch(new RegExp(`^${rule}: ${code}: injected`));
    await expectOldIntact(h, old);
  });

  test.each([
    ['EACCES', 'fatal', 'archive-denied', 1000],
    ['EROFS', 'fatal', 'archive-read-only', 1000],
    ['EMFILE', 'retry', 'busy', 1000],
    ['EACCES', 'fatal', 'archive-denied', 100_000],
    ['EMFILE', 'retry', 'busy', 100_000],
  ])('%s opening the temp file → %s %s (%d bytes)', async (code, kind, rule, size) => {
    const { h, old } = await withOldCopy();
    faults.openTemp = code;
    const err = await rejected(h.target.put(request('dir/file.bin', seededBytes(3, size))));
    expect(err).toMatchObject({ kind, code: `local.${rule}` });
    await expectOldIntact(h, old);
  });

  test('bytes corrupted on the way to disk are caught by the read-back check: retry, nothing renamed', async () => {
    const { h, old } = await withOldCopy();
    faults.corrupt = 0;
    const err = await rejected(h.target.put(request('dir/file.bin', seededBytes(4, 200_000))));
    expect(err).toMatchObject({ kind: 'retry', code: 'local.write-mismatch' });
    await expectOldIntact(h, old);
  });

  test('bytes corrupted in a later chunk of a large copy are caught at the first byte of that chunk: retry, nothing renamed', async () => {
    const { h, old } = await withOldCopy();
    faults.corrupt = 2 * 1024 * 1024 + 300_000;
    const err = await rejected(h.target.put(request('dir/file.bin', seededBytes(4, 5 * 1024 * 1024))));
    expect(err).toMatchObject({ kind: 'retry', code: 'local.write-mismatch' });
    expect((err as Error).message).toContain('(from byte 2097152)');
    await expectOldIntact(h, old);
  });

  test('a large copy writes at most 128 KiB a call (a larger write costs several times more in a VM: see WRITE_PIECE), and stores every byte', async () => {
    h = await localHarness();
    const bytes = seededBytes(8, 3 * 1024 * 1024 + 5000);
    await h.target.put(request('dir/big.bin', bytes));
    expect(Math.max(...faults.writes)).toBeLessThanOrEqual(128 * 1024);
    expect(faults.writes.reduce((a, b) => a + b, 0)).toBe(bytes.length);
    expect((await readFile(path.join(h.root, 'dir/big.bin'))).equals(bytes)).toBe(true);
  });

  test('ENOSPC halfway through a copy of several chunks, with chunks read ahead and hashing: fatal archive-full; temp removed, old copy intact', async () => {
    const { h, old } = await withOldCopy();
    faults.write = { after: 2_500_000, code: 'ENOSPC' };
    const err = await rejected(h.target.put(request('dir/file.bin', seededBytes(5, 5 * 1024 * 1024))));
    expect(err).toMatchObject({ kind: 'fatal', code: 'local.archive-full' });
    await expectOldIntact(h, old);
  });

  test('a write-behind fdatasync of a large copy fails (EIO): the put fails (retry), temp removed, old copy intact', async () => {
    const { h, old } = await withOldCopy();
    faults.datasync = 'EIO';
    const err = await rejected(h.target.put(request('dir/file.bin', seededBytes(6, 66 * 1024 * 1024))));
    expect(err).toMatchObject({ kind: 'retry', code: 'local.unknown' });
    expect(h.target.classify(err).reason).toMatch(/^unknown: EIO: injected/);
    await expectOldIntact(h, old);
  });

  test.each([
    ['EACCES', 'archive-denied'],
    ['EROFS', 'archive-read-only'],
    ['ENOSPC', 'archive-full'],
  ])('check() on a root where the probe cannot be written (%s) fails fatal with a clear reason', async (code, rule) => {
    h = await localHarness();
    faults.writeFile = code;
    const err = await rejected(h.target.check());
    expect(err).toMatchObject({ kind: 'fatal', code: `local.${rule}` });
    const reason = h.target.classify(err).reason;
    expect(reason).toBe(`${rule}: the archive root ${h.root} is not usable: ${code}: injected`);
    expect(await listFiles(h.root)).toEqual([]);
  });
});
