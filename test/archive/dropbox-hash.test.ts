import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DROPBOX_BLOCK_SIZE, DropboxContentHasher, dropboxContentHash } from '../../src/archive/dropbox-hash.js';
import { seededRandom } from '../emulators/harness/index.js';

const MiB = 1024 * 1024;

// rclone backend/dropbox/dbhash/dbhash_test.go: the content hash of n bytes of 'A'.
const RCLONE_VECTORS: Array<[number, string]> = [
  [0, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  [1, '1cd6ef71e6e0ff46ad2609d403dc3fee244417089aa4461245a4e4fe23a55e42'],
  [2, '01e0655fb754d10418a73760f57515f4903b298e6d67dda6bf0987fa79c22c88'],
  [4096, '8620913d33852befe09f16fff8fd75f77a83160d29f76f07e0276e9690903035'],
  [4194303, '647c8627d70f7a7d13ce96b1e7710a771a55d41a62c3da490d92e56044d311fa'],
  [4194304, 'd4d63bac5b866c71620185392a8a6218ac1092454a2d16f820363b69852befa3'],
  [4194305, '8f553da8d00d0bf509d8470e242888be33019c20c0544811f5b2b89e98360b92'],
  [8388607, '83b30cf4fb5195b04a937727ae379cf3d06673bf8f77947f6a92858536e8369c'],
  [8388608, 'e08b3ba1f538804075c5f939accdeaa9efc7b5c01865c94a41e78ca6550a88e7'],
  [8388609, '02c8a4aefc2bfc9036f89a7098001865885938ca580e5c9e5db672385edd303c'],
];

const A = Buffer.alloc(8 * MiB + 1, 'A');

/** Feeds `n` bytes of 'A' in updates of `chunk` bytes, as rclone's test does. */
function hashAs(n: number, chunk: number): string {
  const h = new DropboxContentHasher();
  let left = n;
  for (; left >= chunk; left -= chunk) h.update(A.subarray(0, chunk));
  h.update(A.subarray(0, left));
  return h.digest();
}

/** The algorithm as the reference states it, written independently of the class under test. */
function naive(buf: Buffer): string {
  const digests: Buffer[] = [];
  for (let i = 0; i < buf.length; i += DROPBOX_BLOCK_SIZE) {
    digests.push(createHash('sha256').update(buf.subarray(i, i + DROPBOX_BLOCK_SIZE)).digest());
  }
  return createHash('sha256').update(Buffer.concat(digests)).digest('hex');
}

describe('DropboxContentHasher', () => {
  it('uses 4 MiB blocks', () => {
    expect(DROPBOX_BLOCK_SIZE).toBe(4_194_304);
  });

  // Update sizes as rclone tests them, plus odd ones that straddle block boundaries.
  for (const chunk of [2047, 64 * 1024, 1_000_003, 4 * MiB, 16 * MiB]) {
    it(`matches rclone's vectors when fed in updates of ${chunk} bytes`, () => {
      for (const [n, want] of RCLONE_VECTORS) expect(hashAs(n, chunk), `length ${n}`).toBe(want);
    });
  }

  it('hashes the empty input as SHA-256 of the empty string (no block)', () => {
    expect(new DropboxContentHasher().digest()).toBe(createHash('sha256').update('').digest('hex'));
    expect(new DropboxContentHasher().update(Buffer.alloc(0)).digest()).toBe(RCLONE_VECTORS[0]![1]);
  });

  it('exactly 4 MiB is one block: the hash of its single block digest', () => {
    const buf = A.subarray(0, 4 * MiB);
    const block = createHash('sha256').update(buf).digest();
    expect(dropboxContentHash(buf)).toBe(createHash('sha256').update(block).digest('hex'));
  });

  it('4 MiB + 1 is two blocks, the second one byte long', () => {
    const buf = A.subarray(0, 4 * MiB + 1);
    const b1 = createHash('sha256').update(buf.subarray(0, 4 * MiB)).digest();
    const b2 = createHash('sha256').update(buf.subarray(4 * MiB)).digest();
    expect(dropboxContentHash(buf)).toBe(createHash('sha256').update(Buffer.concat([b1, b2])).digest('hex'));
  });

  it('gives the same digest however the input is split (random data, random splits)', () => {
    const rnd = seededRandom(42);
    const data = Buffer.alloc(9 * MiB + 12344); // a multiple of 4, not of the block size
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(Math.floor(rnd() * 2 ** 32), i);
    const want = naive(data);
    for (let trial = 0; trial < 5; trial++) {
      const h = new DropboxContentHasher();
      let pos = 0;
      while (pos < data.length) {
        const n = Math.min(data.length - pos, 1 + Math.floor(rnd() * 3 * MiB));
        h.update(data.subarray(pos, pos + n));
        pos += n;
      }
      expect(h.digest()).toBe(want);
    }
  });

  it('refuses update() or digest() after digest()', () => {
    const h = new DropboxContentHasher().update(Buffer.from('x'));
    h.digest();
    expect(() => h.update(Buffer.from('y'))).toThrow(/after digest/);
    expect(() => h.digest()).toThrow(/twice/);
  });
});

describe('DropboxContentHasher.rangeHash (a request content hash from the blocks already made)', () => {
  const B = DROPBOX_BLOCK_SIZE;
  const data = randomBytes(3 * B + 12345);

  it('gives the content hash of a block-aligned range, whole blocks or the input’s short last block', () => {
    const h = new DropboxContentHasher({ keepBlocks: true });
    // Fed in odd pieces, ahead of what is asked (a reader that reads ahead).
    for (let i = 0; i < data.length; i += 1_000_003) h.update(data.subarray(i, i + 1_000_003));
    expect(h.rangeHash(0, 2 * B)).toBe(dropboxContentHash(data.subarray(0, 2 * B)));
    expect(h.rangeHash(2 * B, data.length)).toBe(dropboxContentHash(data.subarray(2 * B)));
    expect(h.rangeHash(B, B)).toBe(dropboxContentHash(Buffer.alloc(0)));
    // The whole-input digest is not disturbed by the ranges asked for.
    expect(h.digest()).toBe(dropboxContentHash(data));
  });

  it('is null where the blocks cannot give it, so the caller hashes the bytes', () => {
    const h = new DropboxContentHasher({ keepBlocks: true });
    h.update(data.subarray(0, 2 * B + 5));
    expect(h.rangeHash(1, B)).toBeNull(); // not on a block boundary
    expect(h.rangeHash(0, B + 7)).toBeNull(); // ends inside a closed block
    expect(h.rangeHash(2 * B, 2 * B + 4)).toBeNull(); // ends before where the input stands
    expect(h.rangeHash(2 * B, 3 * B)).toBeNull(); // not read yet
    expect(h.rangeHash(2 * B, 2 * B + 5)).toBe(dropboxContentHash(data.subarray(2 * B, 2 * B + 5)));
    h.dropBlocksBefore(B + 100);
    expect(h.rangeHash(0, B)).toBeNull(); // forgotten
    expect(h.rangeHash(B, 2 * B)).toBe(dropboxContentHash(data.subarray(B, 2 * B)));
    expect(new DropboxContentHasher().update(data).rangeHash(0, B)).toBeNull(); // blocks not kept
  });
});

describe('DropboxContentHasher.blockDigests', () => {
  it('gives, after the digest, the block digests the content hash is made of, the short last one included', () => {
    const data = randomBytes(2 * DROPBOX_BLOCK_SIZE + 77);
    const h = new DropboxContentHasher({ keepBlocks: true });
    h.update(data);
    expect(h.blockDigests()).toBeNull(); // not before the digest
    const hash = h.digest();
    const blocks = h.blockDigests()!;
    expect(blocks.map((b) => b.toString('hex'))).toEqual(
      [data.subarray(0, DROPBOX_BLOCK_SIZE), data.subarray(DROPBOX_BLOCK_SIZE, 2 * DROPBOX_BLOCK_SIZE), data.subarray(2 * DROPBOX_BLOCK_SIZE)].map((b) =>
        createHash('sha256').update(b).digest('hex'),
      ),
    );
    expect(createHash('sha256').update(Buffer.concat(blocks)).digest('hex')).toBe(hash);
    expect(h.bytes).toBe(data.length);
    expect(new DropboxContentHasher().update(data).blockDigests()).toBeNull();
  });
});
