/**
 * SessionFile: an upload session's bytes in one file, hashed as they arrive in order, and exact
 * whatever order, failure or refusal the parts meet.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobStore, SessionFile, hex } from './index.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
/** A body that arrives in pieces, as a request's does. */
const body = (b: Buffer, piece = 64 * 1024): Readable => {
  const pieces: Buffer[] = [];
  for (let i = 0; i < b.length; i += piece) pieces.push(b.subarray(i, i + piece));
  return Readable.from(pieces);
};
/** A body that fails after `n` bytes (a cut connection). */
const cut = (b: Buffer, n: number): Readable =>
  Readable.from(
    (async function* () {
      yield b.subarray(0, n);
      // After the piece was taken and written, as a reset comes after the bytes before it.
      await new Promise((r) => setTimeout(r, 20));
      throw new Error('connection reset');
    })(),
  );

let store: BlobStore;
beforeEach(async () => {
  store = await BlobStore.create('session-file-test');
});
afterEach(async () => {
  await store.destroy();
});

describe('SessionFile', () => {
  const data = randomBytes(3 * 256 * 1024 + 1000);
  const a = data.subarray(0, 256 * 1024);
  const b = data.subarray(256 * 1024, 3 * 256 * 1024);
  const c = data.subarray(3 * 256 * 1024);

  it('hashes parts that come in order as they are written, and the seal hands over that one file', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    await f.writeAt(body(a), 0);
    expect(f.hashedBytes).toBe(a.length);
    await f.writeAt(body(b), a.length);
    await f.writeAt(body(c), a.length + b.length);
    // Everything is hashed before the commit: the seal reads nothing back.
    expect(f.hashedBytes).toBe(data.length);
    const { blob, hashes } = await f.seal(data.length);
    expect(hashes.md5).toBe(md5(data));
    expect(blob).toEqual({ file: f.file, size: data.length });
    expect(readFileSync(blob.file).equals(data)).toBe(true);
    // No part files: the session's one file is all the store holds.
    expect(readdirSync(store.dir)).toHaveLength(1);
  });

  it('drops the skipped prefix of a resent chunk and reports the bytes read and written', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    await f.writeAt(body(a), 0);
    const got = await f.writeAt(body(data.subarray(1000, a.length + b.length)), a.length, { skip: a.length - 1000 });
    expect(got).toEqual({ read: a.length + b.length - 1000, written: b.length });
    await f.writeAt(body(c), a.length + b.length);
    expect((await f.seal(data.length)).hashes.md5).toBe(md5(data));
  });

  it('is exact when a part comes before the one ahead of it', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    await f.writeAt(body(b), a.length);
    expect(f.hashedBytes).toBe(0);
    await f.writeAt(body(a), 0);
    expect(f.hashedBytes).toBe(a.length);
    await f.writeAt(body(c), a.length + b.length);
    expect((await f.seal(data.length)).hashes.md5).toBe(md5(data));
  });

  it('is exact when a chunk is cut after it fed the hash, and comes again whole', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    await f.writeAt(body(a), 0);
    await expect(f.writeAt(cut(b, 100_000), a.length)).rejects.toThrow('connection reset');
    await f.writeAt(body(b), a.length);
    await f.writeAt(body(c), a.length + b.length);
    const { blob, hashes } = await f.seal(data.length);
    expect(hashes.md5).toBe(md5(data));
    expect(readFileSync(blob.file).equals(data)).toBe(true);
  });

  it('is exact when the server kept only part of a chunk and its rest came again', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    await f.writeAt(body(a), 0);
    await f.writeAt(body(b), a.length);
    // Kept: a and the first 256 KiB of b; the client resends from there.
    await f.writeAt(body(data.subarray(a.length + 256 * 1024)), a.length + 256 * 1024);
    const { blob, hashes } = await f.seal(data.length);
    expect(hashes.md5).toBe(md5(data));
    expect(readFileSync(blob.file).equals(data)).toBe(true);
  });

  it('is exact when a part is written again, with other bytes, over bytes already hashed', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    await f.writeAt(body(a), 0);
    // A part the server refused after storing it (a wrong digest), then the right one.
    await f.writeAt(body(randomBytes(b.length)), a.length);
    await f.writeAt(body(b), a.length);
    await f.writeAt(body(c), a.length + b.length);
    expect((await f.seal(data.length)).hashes.md5).toBe(md5(data));
  });

  it('can be sealed again when placing the content failed (a name conflict keeps the session)', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    await f.writeAt(body(data), 0);
    const first = await f.seal(data.length);
    const again = await f.seal(data.length);
    expect(again).toEqual(first);
    expect(again.hashes.md5).toBe(md5(data));
    // Two commits at once: each seal hashes on its own.
    const both = await Promise.all([f.seal(data.length), f.seal(data.length)]);
    expect(both.map((x) => x.hashes.md5)).toEqual([md5(data), md5(data)]);
  });

  it('is exact when a part lands inside the one being hashed while it streams', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    // The first write pauses after 3000 bytes; meanwhile another writes other bytes over 2000–3000.
    const slow = Readable.from(
      (async function* () {
        yield a.subarray(0, 3000);
        await new Promise((r) => setTimeout(r, 50));
        yield a.subarray(3000);
      })(),
    );
    const first = f.writeAt(slow, 0);
    await new Promise((r) => setTimeout(r, 20));
    await f.writeAt(body(randomBytes(1000)), 2000);
    await first;
    await f.writeAt(body(data.subarray(a.length)), a.length);
    const { blob, hashes } = await f.seal(data.length);
    expect(hashes.md5).toBe(md5(readFileSync(blob.file)));
  });

  it('waits for writes in flight before it is idle', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    let done = false;
    const w = f.writeAt(body(data), 0).then(() => {
      done = true;
    });
    await f.idle();
    expect(done).toBe(true);
    await w;
  });

  it('copies a part received apart in after the write streaming at its offset, and drops its blob', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    // A refused part still streaming at offset 0 while the accepted one, received apart, waits.
    const refused = Readable.from(
      (async function* () {
        yield randomBytes(1000);
        await new Promise((r) => setTimeout(r, 30));
        yield randomBytes(a.length - 1000);
      })(),
    );
    const streaming = f.writeAt(refused, 0);
    const apart = await store.write(a);
    f.copyIn(apart, 0);
    await f.idle();
    await streaming;
    await f.writeAt(body(data.subarray(a.length)), a.length);
    const { blob, hashes } = await f.seal(data.length);
    expect(hashes.md5).toBe(md5(data));
    expect(readFileSync(blob.file).equals(data)).toBe(true);
    expect(readdirSync(store.dir)).toHaveLength(1);
  });

  it('fails the seal when a part could not be copied in', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    f.copyIn({ file: `${store.dir}/missing`, size: 10 }, 0);
    await f.idle();
    await expect(f.seal(10)).rejects.toThrow(/ENOENT/);
  });

  it('cuts the file to the size sealed, and hashes only those bytes', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5'), sha1: hex('sha1') });
    await f.writeAt(body(data), 0);
    const { blob, hashes } = await f.seal(a.length);
    expect(hashes).toEqual({ md5: md5(a), sha1: createHash('sha1').update(a).digest('hex') });
    expect(readFileSync(blob.file).equals(a)).toBe(true);
  });

  it('gives each kept byte to onChunk (a part digest) and refuses a body past its limit', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    const part = createHash('sha1');
    await f.writeAt(body(b), 0, { onChunk: (x) => part.update(x) });
    expect(part.digest('hex')).toBe(createHash('sha1').update(b).digest('hex'));
    await expect(f.writeAt(body(b), 0, { limit: b.length - 1 })).rejects.toThrow('body too large');
  });

  it('writes at most `keep` bytes of a body longer than its range, and reads the rest', async () => {
    const f = await SessionFile.create(store, { md5: hex('md5') });
    await f.writeAt(body(b), a.length);
    // A part that says 256 KiB but carries more must not reach the part after it.
    const got = await f.writeAt(body(Buffer.concat([a, randomBytes(5000)])), 0, { keep: a.length });
    expect(got).toEqual({ read: a.length + 5000, written: a.length });
    await f.writeAt(body(c), a.length + b.length);
    expect((await f.seal(data.length)).hashes.md5).toBe(md5(data));
  });
});
