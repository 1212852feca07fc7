/**
 * A bounded read-ahead over a source stream, for the clouds' chunked uploads. An upload sends one
 * chunk and waits for the answer before it asks for the next: a source read (and hashed) only when
 * asked left the daemon idle while the service took the chunk, and the service idle while the
 * daemon read and hashed the next one. A ReadAhead pulls the source in the background instead,
 * runs `onChunk` (the reader's counting and hashing) on each chunk in order as it arrives, and
 * keeps the chunks until the consumer takes them with `next()`, in order, null at the end. So
 * while a chunk's request is in flight, the next chunk is read and hashed.
 *
 * - Memory: a pull starts only while fewer than `limit` bytes are queued (or while `next()`
 *   waits), so the queue holds less than `limit` plus one chunk of the source. A `limit` of 0
 *   pulls only when asked: no read-ahead.
 * - Errors keep their place: an error of the source, or what `onChunk` throws for a chunk (the
 *   reader's ShortReadError; that chunk is not handed out), is thrown by the `next()` that reaches
 *   it, after the chunks queued before it. A source error goes through `sourceError` then (the
 *   reader's SourceError, or its abort error once the put's signal fired). Nothing is pulled
 *   after an error or the end.
 * - `close()` (the consumer stops) drops the queue and destroys the source: a pull in flight
 *   settles, its result is ignored, and nothing more is pulled.
 */
import type { Readable } from 'node:stream';
import { toBuffer } from './chunks.js';

export interface ReadAheadOptions {
  /** Bytes to keep queued ahead of the consumer (0: pull only when `next()` waits). */
  limit: number;
  /** Runs on each chunk, in order, as it arrives; what it throws is thrown by `next()` in the chunk's place. */
  onChunk?(chunk: Buffer): void;
  /** What `next()` throws for an error of the source, made when it is thrown (default: the error). */
  sourceError?(err: unknown): unknown;
}

/** What follows the queued chunks, once known. */
type End = { kind: 'done' } | { kind: 'source'; err: unknown } | { kind: 'chunk'; err: unknown };

export class ReadAhead {
  readonly #src: Readable;
  readonly #it: AsyncIterator<unknown>;
  readonly #limit: number;
  readonly #onChunk: ((chunk: Buffer) => void) | undefined;
  readonly #sourceError: (err: unknown) => unknown;
  #queue: Buffer[] = [];
  #queued = 0;
  #end: End | null = null;
  #pulling = false;
  /** `next()` calls waiting for a chunk or the end. */
  #waiting: Array<() => void> = [];

  constructor(src: Readable, opts: ReadAheadOptions) {
    this.#src = src;
    this.#it = src[Symbol.asyncIterator]() as AsyncIterator<unknown>;
    this.#limit = opts.limit;
    this.#onChunk = opts.onChunk;
    this.#sourceError = opts.sourceError ?? ((err) => err);
    this.#pull();
  }

  /** The next chunk in order, or null at the end of the source; throws an error in its place. */
  async next(): Promise<Buffer | null> {
    while (this.#queue.length === 0 && this.#end === null) {
      await new Promise<void>((resolve) => {
        this.#waiting.push(resolve);
        this.#pull();
      });
    }
    const chunk = this.#queue.shift();
    if (chunk !== undefined) {
      this.#queued -= chunk.length;
      this.#pull();
      return chunk;
    }
    const end = this.#end!;
    if (end.kind === 'done') return null;
    throw end.kind === 'source' ? this.#sourceError(end.err) : end.err;
  }

  /** Stops: the queue is dropped, the source destroyed, nothing more is pulled. */
  close(): void {
    this.#queue = [];
    this.#queued = 0;
    this.#end = { kind: 'source', err: new Error('[stagecoach] read-ahead: the source was closed') };
    this.#wake();
    this.#src.destroy();
  }

  #pull(): void {
    if (this.#pulling || this.#end !== null) return;
    if (this.#queued >= this.#limit && this.#waiting.length === 0) return;
    this.#pulling = true;
    let pulled: Promise<IteratorResult<unknown>>;
    try {
      pulled = this.#it.next();
    } catch (err) {
      pulled = Promise.reject(err);
    }
    pulled.then(
      (r) => this.#arrived(r),
      (err: unknown) => {
        this.#pulling = false;
        this.#settle({ kind: 'source', err });
      },
    );
  }

  #arrived(r: IteratorResult<unknown>): void {
    this.#pulling = false;
    // Closed meanwhile: the chunk is of no use.
    if (this.#end !== null) return;
    if (r.done) {
      this.#settle({ kind: 'done' });
      return;
    }
    const chunk = toBuffer(r.value);
    try {
      this.#onChunk?.(chunk);
    } catch (err) {
      this.#settle({ kind: 'chunk', err });
      return;
    }
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    this.#wake();
    this.#pull();
  }

  /** The end is known (the first one found stands, a close's above all): the waiting calls look again. */
  #settle(end: End): void {
    this.#end ??= end;
    this.#wake();
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
  }
}
