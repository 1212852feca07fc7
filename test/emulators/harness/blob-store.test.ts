/**
 * The emulators' blob store keeps exactly the bytes it was given, whether a body is small enough
 * to be held and written at its end in one call or large enough to be streamed to disk once it
 * passes that size, and refuses a body over the caller's limit.
 */
import { readFileSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStore } from './index.js';

let blobs: BlobStore;
beforeEach(async () => {
  blobs = await BlobStore.create('blob-test');
});
afterEach(async () => {
  await blobs.destroy();
});

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** `data` as a stream of `piece`-byte chunks. */
function chunked(data: Buffer, piece: number): Readable {
  const parts: Buffer[] = [];
  for (let at = 0; at < data.length; at += piece) parts.push(data.subarray(at, at + piece));
  return Readable.from(parts);
}

describe('BlobStore.write', () => {
  it.each([
    ['empty', 0, 1],
    ['small, one chunk', 1000, 4096],
    ['small, many chunks', 300_000, 7_000],
    ['exactly 1 MiB', 1 << 20, 64 * 1024],
    ['past 1 MiB: streamed once it passes', 3 * (1 << 20) + 5, 64 * 1024],
  ])('%s: the blob holds every byte, in order', async (_name, n, piece) => {
    const data = bytes(n, n % 251);
    const blob = await blobs.write(chunked(data, piece));
    expect(blob.size).toBe(n);
    expect(readFileSync(blob.file).equals(data)).toBe(true);
    await blobs.remove(blob);
  });

  it('a Buffer, small or large, is stored as given', async () => {
    for (const n of [10, 2 * (1 << 20)]) {
      const data = bytes(n, 3);
      const blob = await blobs.write(data);
      expect(readFileSync(blob.file).equals(data)).toBe(true);
    }
  });

  it('a body over the limit fails, small or past 1 MiB', async () => {
    for (const [n, limit] of [[5000, 4000], [2 * (1 << 20), (1 << 20) + 10]] as const) {
      await expect(blobs.write(chunked(bytes(n, 1), 1000), limit)).rejects.toThrow(/too large/);
    }
  });

  it('a body that fails midway fails the write', async () => {
    const src = new PassThrough();
    const written = blobs.write(src);
    src.write(bytes(100, 2));
    src.destroy(new Error('connection reset'));
    await expect(written).rejects.toThrow(/connection reset/);
  });
});
