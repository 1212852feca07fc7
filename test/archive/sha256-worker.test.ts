import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { Sha256OnWorker } from '../../src/archive/sha256-worker.js';
import { seededBytes } from '../conformance/sources.js';

/** `data` copied into shared memory, as the local target's chunks are. */
function shared(data: Buffer): Buffer {
  const b = Buffer.from(new SharedArrayBuffer(Math.max(1, data.length)), 0, data.length);
  data.copy(b);
  return b;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('Sha256OnWorker', () => {
  // FIPS 180-2 vectors: "abc", and the empty string (no update at all).
  test('the published vectors', async () => {
    const abc = new Sha256OnWorker();
    await abc.update(shared(Buffer.from('abc')));
    expect(await abc.digest()).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await new Sha256OnWorker().digest()).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  test('one shared buffer reused for each chunk once its update resolved, two hashes at once: each digest is of its own bytes in order', async () => {
    const a = seededBytes(1, 3 * 1024 * 1024 + 17);
    const b = seededBytes(2, 2 * 1024 * 1024 + 5);
    const ha = new Sha256OnWorker();
    const hb = new Sha256OnWorker();
    const bufA = shared(Buffer.alloc(256 * 1024));
    const bufB = shared(Buffer.alloc(100 * 1024));
    const feed = async (h: Sha256OnWorker, data: Buffer, buf: Buffer) => {
      for (let off = 0; off < data.length; off += buf.length) {
        const n = data.copy(buf, 0, off, Math.min(data.length, off + buf.length));
        await h.update(buf.subarray(0, n));
      }
      return h.digest();
    };
    const [da, db] = await Promise.all([feed(ha, a, bufA), feed(hb, b, bufB)]);
    expect(da).toBe(sha256(a));
    expect(db).toBe(sha256(b));
  });

  test('a view of ordinary memory is refused (it would be copied, or changed under the worker)', async () => {
    const h = new Sha256OnWorker();
    await expect(h.update(Buffer.from('abc'))).rejects.toThrow(/SharedArrayBuffer/);
    h.drop();
  });
});
