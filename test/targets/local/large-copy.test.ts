/**
 * A large file's put to the local target reads the source by position into reused shared chunks
 * (`PutRequest.read`, issue 19 item 4), hashes them on a worker thread and writes and reads back
 * each one: the bytes stored, the sha256 recorded and the size checks must be those of the stream
 * path.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { ShortReadError } from '../../../src/errors.js';
import type { PutRequest } from '../../../src/targets/target.js';
import { localHarness, type LocalHarness } from '../../conformance/local-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { listFiles } from '../../helpers/fs.js';

const MiB = 1024 * 1024;
let h: LocalHarness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

/** A request whose only way to the bytes is `read` (positional, as deliver offers it): `open` throws. */
function readOnly(remotePath: string, bytes: Buffer, read: PutRequest['read'], size = bytes.length): PutRequest {
  return {
    ...request(remotePath, bytes, { size }),
    open: () => {
      throw new Error('open() must not be called when read() is offered');
    },
    read,
  };
}

/** read() over `bytes`, at most `most` bytes a call (short reads, as a file system may give). */
function reader(bytes: Buffer, most = Number.POSITIVE_INFINITY, log: number[] = []): NonNullable<PutRequest['read']> {
  return async (buf, off, len, pos) => {
    const n = Math.max(0, Math.min(len, most, bytes.length - pos));
    bytes.copy(buf, off, pos, pos + n);
    log.push(n);
    return n;
  };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('local target: a large file read by position', () => {
  test('a file of several chunks with a run of zeros inside, read in short pieces: stored byte for byte, its sha256 recorded, the zeros a hole', async () => {
    h = await localHarness();
    const bytes = seededBytes(7, 6 * MiB + 12_345);
    bytes.fill(0, 2 * MiB, 4 * MiB);
    const result = await h.target.put(readOnly('dir/big file ü.bin', bytes, reader(bytes, 300_000)));
    expect(result).toMatchObject({ size: bytes.length, bytesSent: bytes.length, hash: sha256(bytes), hashKind: 'sha256', unchanged: false });
    const stored = path.join(h.root, 'dir/big file ü.bin');
    expect((await readFile(stored)).equals(bytes)).toBe(true);
    // 2 MiB of zeros left unwritten: fewer blocks than the size.
    expect((await stat(stored)).blocks * 512).toBeLessThanOrEqual(bytes.length - 2 * MiB + 64 * 1024);
    expect(await listFiles(h.root)).toEqual(['dir/big file ü.bin']);
  });

  test('a source that grows is cut off one byte past its stated size: ShortReadError, nothing stored', async () => {
    h = await localHarness();
    const bytes = seededBytes(8, 5 * MiB);
    const log: number[] = [];
    const err = await h.target.put(readOnly('grow.bin', bytes, reader(bytes, Number.POSITIVE_INFINITY, log), 3 * MiB)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShortReadError);
    expect(log.reduce((a, b) => a + b, 0)).toBe(3 * MiB + 1);
    expect(await listFiles(h.root)).toEqual([]);
  });

  test('a source that ends early: ShortReadError, nothing stored', async () => {
    h = await localHarness();
    const bytes = seededBytes(9, 3 * MiB);
    const err = await h.target.put(readOnly('short.bin', bytes, reader(bytes), 4 * MiB)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShortReadError);
    expect(await listFiles(h.root)).toEqual([]);
  });

  test('a read that fails mid-file is the source’s error (retry source-unreadable), with chunks still in flight; nothing stored, the old copy kept', async () => {
    h = await localHarness();
    const old = seededBytes(10, 100_000);
    await h.target.put(request('f.bin', old));
    const bytes = seededBytes(11, 5 * MiB);
    const log: number[] = [];
    const read = reader(bytes, Number.POSITIVE_INFINITY, log);
    const err = await h.target
      .put(
        readOnly('f.bin', bytes, async (buf, off, len, pos) => {
          if (pos >= 3 * MiB) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
          return read(buf, off, len, pos);
        }),
      )
      .catch((e: unknown) => e);
    expect(h.target.classify(err)).toMatchObject({ kind: 'retry', reason: expect.stringMatching(/^source-unreadable: source: EIO: injected/) });
    expect(log.reduce((a, b) => a + b, 0)).toBe(3 * MiB);
    expect((await readFile(path.join(h.root, 'f.bin'))).equals(old)).toBe(true);
    expect(await listFiles(h.root)).toEqual(['f.bin']);
  });

  test('puts at once share nothing: each stores and hashes its own bytes', async () => {
    h = await localHarness();
    const files = [1, 2, 3].map((k) => seededBytes(20 + k, 3 * MiB + k * 1000));
    const results = await Promise.all(files.map((b, k) => h!.target.put(readOnly(`p${k}.bin`, b, reader(b, 700_000)))));
    for (const [k, b] of files.entries()) {
      expect(results[k]!.hash).toBe(sha256(b));
      expect((await readFile(path.join(h.root, `p${k}.bin`))).equals(b)).toBe(true);
    }
  });
});
