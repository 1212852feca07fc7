/**
 * The bounded read-ahead of the clouds' chunked uploads (src/targets/kit/read-ahead.ts): what it
 * pulls before it is asked, the order of chunks and errors, and that it stops with its consumer.
 * The sources are real Readables that make one chunk per read and hold at most one made ahead
 * (highWaterMark 1), so what the read-ahead pulled is what `onChunk` saw.
 */
import { Readable, addAbortSignal } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ShortReadError } from '../../../src/errors.js';
import { ReadAhead } from '../../../src/targets/kit/read-ahead.js';
import { waitFor } from '../../helpers/fs.js';
import { rejected } from '../../helpers/rejection.js';

const KiB = 1024;

/** A few turns of the event loop: what was going to happen has happened. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

/**
 * A source of `count` chunks of 1 KiB, chunk i filled with the byte i, one made per read of the
 * stream (`made` counts them); then its end, or `fail`. Each answers a tick after the read, as a
 * file's read does (the stream would join chunks pushed within the read).
 */
function source(count: number, fail?: Error): { stream: Readable; made: { chunks: number } } {
  const made = { chunks: 0 };
  const stream = new Readable({
    highWaterMark: 1,
    read() {
      if (made.chunks < count) {
        const chunk = Buffer.alloc(KiB, made.chunks++);
        process.nextTick(() => this.push(chunk));
      } else process.nextTick(() => (fail ? this.destroy(fail) : this.push(null)));
    },
  });
  return { stream, made };
}

/** What a reader makes of a source's error (SourceError, in the targets). */
class Wrapped extends Error {
  constructor(override readonly cause: unknown) {
    super('wrapped');
  }
}

describe('ReadAhead', () => {
  it('pulls, and runs onChunk on, up to `limit` bytes before anything is asked, and no more', async () => {
    const { stream, made } = source(20);
    const seen: number[] = [];
    const ahead = new ReadAhead(stream, { limit: 4 * KiB, onChunk: (c) => seen.push(c[0]!) });
    await waitFor('chunks read ahead', () => seen.length >= 4, 2_000, 1);
    await settle();
    expect(seen).toEqual([0, 1, 2, 3]);
    // The stream makes one more ahead of its reader (highWaterMark 1), no further.
    expect(made.chunks).toBeLessThanOrEqual(5);
    // Each chunk taken lets one more in.
    expect((await ahead.next())?.[0]).toBe(0);
    await settle();
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    ahead.close();
  });

  it('hands the chunks out in order, then null, with never more than `limit` bytes queued', async () => {
    const { stream } = source(12);
    let pulled = 0;
    let taken = 0;
    let most = 0;
    const ahead = new ReadAhead(stream, { limit: 3 * KiB, onChunk: (c) => (pulled += c.length) });
    const out: number[] = [];
    // A slow consumer: the read-ahead has all the time it wants between two chunks.
    for (let i = 0; i < 20; i++) {
      await settle();
      most = Math.max(most, pulled - taken);
      const c = await ahead.next();
      if (c === null) break;
      taken += c.length;
      out.push(c[0]!);
    }
    expect(out).toEqual([...Array(12).keys()]);
    expect(most).toBe(3 * KiB);
    expect(await ahead.next()).toBeNull();
  });

  it('with a limit of 0 pulls only when asked', async () => {
    const { stream } = source(3);
    const seen: number[] = [];
    const ahead = new ReadAhead(stream, { limit: 0, onChunk: (c) => seen.push(c[0]!) });
    await settle();
    expect(seen).toEqual([]);
    expect((await ahead.next())?.[0]).toBe(0);
    await settle();
    expect(seen).toEqual([0]);
    expect((await ahead.next())?.[0]).toBe(1);
    expect((await ahead.next())?.[0]).toBe(2);
    expect(await ahead.next()).toBeNull();
  });

  it('an error of the source comes after the chunks read before it, made by sourceError when it is thrown', async () => {
    const eio = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
    const { stream } = source(3, eio);
    const mapped: unknown[] = [];
    const sourceError = (err: unknown): Error => {
      mapped.push(err);
      return new Wrapped(err);
    };
    const ahead = new ReadAhead(stream, { limit: 8 * KiB, sourceError });
    // Nothing asked yet: the read-ahead has met the error already; it waits behind three chunks.
    await waitFor('the source failed', () => stream.destroyed, 2_000, 1);
    await settle();
    expect(stream.errored).toBe(eio);
    for (let i = 0; i < 3; i++) expect((await ahead.next())?.[0]).toBe(i);
    expect(mapped).toEqual([]);
    const err = await rejected(ahead.next());
    expect(err).toBeInstanceOf(Wrapped);
    expect((err as Wrapped).cause).toBe(eio);
    expect(mapped).toEqual([eio]);
  });

  it('what onChunk throws comes in that chunk’s place, as thrown, after the chunks before it; nothing more is pulled', async () => {
    const { stream, made } = source(20);
    const short = new ShortReadError(2 * KiB, 3 * KiB);
    const onChunk = (c: Buffer): void => {
      if (c[0] === 2) throw short;
    };
    const ahead = new ReadAhead(stream, { limit: 8 * KiB, onChunk, sourceError: (err) => new Wrapped(err) });
    await settle();
    // Three chunks pulled (the third failed), one more the stream made ahead of them.
    expect(made.chunks).toBeLessThanOrEqual(4);
    expect((await ahead.next())?.[0]).toBe(0);
    expect((await ahead.next())?.[0]).toBe(1);
    expect(await rejected(ahead.next())).toBe(short);
    expect(await rejected(ahead.next())).toBe(short);
    await settle();
    expect(made.chunks).toBeLessThanOrEqual(4);
    ahead.close();
  });

  it('close() destroys the source and stops pulling; a next() waiting then rejects', async () => {
    // A source whose second read never answers (a stalled disk): a pull is in flight.
    let reads = 0;
    const stalled = new Readable({
      highWaterMark: 1,
      read() {
        if (++reads === 1) process.nextTick(() => this.push(Buffer.alloc(KiB, 0)));
      },
    });
    const ahead = new ReadAhead(stalled, { limit: 4 * KiB, sourceError: (err) => new Wrapped(err) });
    expect((await ahead.next())?.[0]).toBe(0);
    const waiting = rejected(ahead.next());
    await settle();
    expect(reads).toBe(2);
    ahead.close();
    expect(stalled.destroyed).toBe(true);
    expect(await waiting).toBeInstanceOf(Wrapped);
    await settle();
    expect(reads).toBe(2);

    // A source whose destroy never completes leaves its pull unsettled: the waiting next() is not.
    const stuck = new Readable({ highWaterMark: 1, read() {}, destroy() {} });
    const held = new ReadAhead(stuck, { limit: KiB, sourceError: (err) => new Wrapped(err) });
    const waitingToo = rejected(held.next());
    await settle();
    held.close();
    expect(await waitingToo).toBeInstanceOf(Wrapped);

    // With `limit` bytes queued: closed, the source is destroyed and read no more.
    const { stream, made } = source(100);
    const full = new ReadAhead(stream, { limit: 2 * KiB });
    await waitFor('chunks read ahead', () => made.chunks >= 2, 2_000, 1);
    await settle();
    const before = made.chunks;
    full.close();
    await settle();
    expect(stream.destroyed).toBe(true);
    expect(made.chunks).toBe(before);
  });

  it('a source its abort signal destroyed stops the pump: the abort comes after the chunks queued', async () => {
    const ac = new AbortController();
    const { stream, made } = source(100);
    addAbortSignal(ac.signal, stream);
    const ahead = new ReadAhead(stream, { limit: 2 * KiB, sourceError: (err) => new Wrapped(err) });
    await waitFor('chunks read ahead', () => made.chunks >= 2, 2_000, 1);
    await settle();
    ac.abort();
    await settle();
    const before = made.chunks;
    expect((await ahead.next())?.[0]).toBe(0);
    expect((await ahead.next())?.[0]).toBe(1);
    const err = await rejected(ahead.next());
    expect(((err as Wrapped).cause as Error).name).toBe('AbortError');
    await settle();
    expect(made.chunks).toBe(before);
  });
});
