import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, test } from 'vitest';
import { DropboxContentHasher } from '../../src/archive/dropbox-hash.js';
import { CountingHashStream, HASH_KINDS, createHasher, hashBuffer, hashFile, verifySize } from '../../src/archive/hash.js';
import { QuickXorHasher } from '../../src/archive/quickxor.js';
import { ShortReadError, StagecoachError } from '../../src/errors.js';
import type { HashKind } from '../../src/targets/target.js';
import { tempDir } from '../helpers/fs.js';
import { seededBytes } from '../conformance/sources.js';

describe('createHasher', () => {
  // Published vectors (FIPS 180, RFC 1321) for "abc" and the empty string.
  test.each([
    ['sha256', 'abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    ['sha256', '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['md5', 'abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['md5', '', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['sha1', 'abc', 'a9993e364706816aba3e25717850c26c9cd0d89d'],
    ['sha1', '', 'da39a3ee5e6b4b0d3255bfef95601890afd80709'],
    // No blocks: the SHA-256 of the empty concatenation. QuickXor of nothing: 20 zero bytes.
    ['dropbox', '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['quickxor', '', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='],
  ] as Array<[HashKind, string, string]>)('%s of %j', (kind, input, digest) => {
    const h = createHasher(kind);
    h.update(Buffer.from(input));
    expect(h.digest()).toBe(digest);
  });

  test('dropbox and quickxor delegate to their hashers', () => {
    const data = seededBytes(1, 5 * 1024 * 1024 + 3);
    expect(hashBuffer('dropbox', data)).toBe(new DropboxContentHasher().update(data).digest());
    expect(hashBuffer('quickxor', data)).toBe(new QuickXorHasher().update(data).digest());
  });

  test('a digest does not depend on how the bytes were split', () => {
    const data = seededBytes(2, 100_000);
    for (const kind of HASH_KINDS) {
      const h = createHasher(kind);
      for (let off = 0; off < data.length; off += 7777) h.update(data.subarray(off, off + 7777));
      expect(h.digest(), kind).toBe(hashBuffer(kind, data));
    }
  });

  test('an unknown kind throws hash.unsupported', () => {
    expect(() => createHasher('crc32' as HashKind)).toThrow(expect.objectContaining({ code: 'hash.unsupported' }));
  });
});

describe('hashFile', () => {
  test('equals hashBuffer of the file content', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const data = seededBytes(3, 300_000);
      const file = path.join(dir, 'f.bin');
      await writeFile(file, data);
      expect(await hashFile('sha256', file)).toBe(createHash('sha256').update(data).digest('hex'));
      expect(await hashFile('md5', file)).toBe(hashBuffer('md5', data));
    } finally {
      await cleanup();
    }
  });
});

describe('CountingHashStream', () => {
  async function run(data: Buffer, stream: CountingHashStream): Promise<Buffer> {
    const out: Buffer[] = [];
    await pipeline(
      Readable.from([data.subarray(0, 1000), data.subarray(1000)], { objectMode: false }),
      stream,
      new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }),
    );
    return Buffer.concat(out);
  }

  test('passes bytes through unchanged, counts them and hashes them with every kind asked', async () => {
    const data = seededBytes(4, 50_000);
    const s = new CountingHashStream(['sha256', 'md5', 'sha1']);
    const out = await run(data, s);
    expect(out.equals(data)).toBe(true);
    expect(s.bytes).toBe(data.length);
    expect(s.digest('sha256')).toBe(hashBuffer('sha256', data));
    expect(s.digest('md5')).toBe(hashBuffer('md5', data));
    expect(s.digest('sha1')).toBe(hashBuffer('sha1', data));
    expect(s.digest('sha256'), 'digest is memoised').toBe(hashBuffer('sha256', data));
  });

  test('a kind not asked for throws hash.not-requested', () => {
    const s = new CountingHashStream(['md5']);
    expect(() => s.digest('sha1')).toThrow(expect.objectContaining({ code: 'hash.not-requested' }));
  });

  test('more bytes than maxBytes fail the stream with ShortReadError at once', async () => {
    const data = seededBytes(5, 5000);
    const s = new CountingHashStream(['sha256'], { maxBytes: 4000 });
    const err = await run(data, s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShortReadError);
    expect((err as ShortReadError).expected).toBe(4000);
    expect((err as ShortReadError).actual).toBe(5000);
  });

  test('exactly maxBytes passes', async () => {
    const data = seededBytes(6, 4000);
    const s = new CountingHashStream(['sha256'], { maxBytes: 4000 });
    expect((await run(data, s)).length).toBe(4000);
  });

  test('feed() counts and hashes without piping', () => {
    const s = new CountingHashStream(['sha256'], { maxBytes: 3 });
    s.feed(Buffer.from('ab'));
    s.feed(Buffer.from('c'));
    expect(s.bytes).toBe(3);
    expect(s.digest('sha256')).toBe(hashBuffer('sha256', Buffer.from('abc')));
    expect(() => new CountingHashStream(['sha256'], { maxBytes: 1 }).feed(Buffer.from('ab'))).toThrow(ShortReadError);
  });
});

describe('verifySize', () => {
  test('equal sizes pass', () => {
    expect(() => verifySize(10, 10)).not.toThrow();
    expect(() => verifySize(0, 0)).not.toThrow();
  });
  test.each([
    [10, 9],
    [10, 11],
    [0, 1],
  ])('expected %i, read %i → ShortReadError source.size-mismatch', (expected, actual) => {
    let err: unknown;
    try {
      verifySize(expected, actual);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShortReadError);
    expect(err).toBeInstanceOf(StagecoachError);
    expect((err as ShortReadError).code).toBe('source.size-mismatch');
    expect((err as ShortReadError).expected).toBe(expected);
    expect((err as ShortReadError).actual).toBe(actual);
  });
});
