/**
 * Test data and sources for the conformance suite: seeded random bytes, and sources that behave
 * (or misbehave) the way real files do: fail mid-stream, end early, grow while read.
 */
import { Readable } from 'node:stream';
import type { PutRequest } from '../../src/targets/target.js';

/** `size` pseudo-random bytes, the same for the same seed (mulberry32). */
export function seededBytes(seed: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  let a = seed >>> 0;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    buf.writeUInt32LE((t ^ (t >>> 14)) >>> 0, i);
  }
  for (; i < size; i++) buf[i] = (seed + i * 31) & 0xff;
  return buf;
}

export const SOURCE_CHUNK = 64 * 1024;

/** A byte stream over `gen`'s chunks (not object mode, so it pipes into any sink). */
export function chunkStream(gen: () => Generator<Buffer> | AsyncGenerator<Buffer>): Readable {
  return Readable.from(gen(), { objectMode: false, highWaterMark: SOURCE_CHUNK });
}

function* chunksOf(buf: Buffer, chunk = SOURCE_CHUNK): Generator<Buffer> {
  for (let off = 0; off < buf.length; off += chunk) yield buf.subarray(off, Math.min(buf.length, off + chunk));
}

/** open() for a source holding exactly `buf`, honouring `start`. */
export function bufferSource(buf: Buffer): (start?: number) => Readable {
  return (start = 0) => chunkStream(() => chunksOf(buf.subarray(start)));
}

/** The error a failing source raises. */
export class InjectedSourceError extends Error {
  readonly code = 'EIO';
  constructor() {
    super('injected: the source failed mid-stream');
    this.name = 'InjectedSourceError';
  }
}

/** open() for a source that yields the first `failAt` bytes of `buf`, then errors. */
export function failingSource(buf: Buffer, failAt: number): () => Readable {
  return () =>
    chunkStream(function* () {
      yield* chunksOf(buf.subarray(0, failAt));
      throw new InjectedSourceError();
    });
}

/** open() for a source that yields only the first `cut` bytes of `buf`, then ends cleanly. */
export function truncatedSource(buf: Buffer, cut: number): () => Readable {
  return bufferSource(buf.subarray(0, cut));
}

/** open() for a source that yields `buf` and then `extra` more bytes (a file still growing). */
export function growingSource(buf: Buffer, extra: number): () => Readable {
  return bufferSource(Buffer.concat([buf, seededBytes(99, extra)]));
}

/**
 * open() for a source that calls `onPulled` (synchronously) once the consumer has taken its
 * first chunk and asks for the next, then goes on yielding the rest of `buf`. Used to abort a put
 * in the middle without timers: a target that ignores its signal simply completes.
 */
export function pullTriggerSource(buf: Buffer, onPulled: () => void): () => Readable {
  return () =>
    chunkStream(function* () {
      let first = true;
      for (const c of chunksOf(buf)) {
        yield c;
        if (first) {
          first = false;
          onPulled();
        }
      }
    });
}

export interface RequestOptions {
  size?: number;
  mtimeMs?: number;
  birthtimeMs?: number;
  open?: (start?: number) => Readable;
  signal?: AbortSignal;
}

/** Fixed so tests are repeatable; any whole second works for targets that keep seconds only. */
export const DEFAULT_MTIME_MS = Date.UTC(2023, 4, 17, 8, 30, 15);

/** A PutRequest for `bytes` at `remotePath`, with overrides for the misbehaving cases. */
export function request(remotePath: string, bytes: Buffer, opts: RequestOptions = {}): PutRequest {
  const req: PutRequest = {
    remotePath,
    size: opts.size ?? bytes.length,
    mtimeMs: opts.mtimeMs ?? DEFAULT_MTIME_MS,
    open: opts.open ?? bufferSource(bytes),
    resume: null,
    saveResume: async () => undefined,
  };
  if (opts.signal) req.signal = opts.signal;
  if (opts.birthtimeMs !== undefined) req.birthtimeMs = opts.birthtimeMs;
  return req;
}
