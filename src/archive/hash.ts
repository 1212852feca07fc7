/**
 * Streaming hashes: one `Hasher` per provider hash kind, a pass-through stream that counts and
 * hashes the bytes a target sends, and the size check every upload ends with.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { ShortReadError, StagecoachError } from '../errors.js';
import type { HashKind } from '../targets/target.js';
import { DropboxContentHasher } from './dropbox-hash.js';
import { QuickXorHasher } from './quickxor.js';

/** An incremental hash. `digest()` may be called once, after the last `update()`. */
export interface Hasher {
  update(b: Buffer): unknown;
  /** The digest in the provider's own notation: hex for all kinds but quickxor (base64). */
  digest(): string;
}

/** Every kind `createHasher` knows, in the order of `HashKind`. */
export const HASH_KINDS: readonly HashKind[] = ['sha256', 'md5', 'dropbox', 'sha1', 'quickxor'];

/**
 * A fresh hasher for `kind`. Digests are written the way the provider reports them, so a
 * target compares strings: sha256, md5, sha1 and dropbox (content_hash) as lower-case hex,
 * quickxor as base64. An unknown kind throws StagecoachError `hash.unsupported`.
 */
export function createHasher(kind: HashKind): Hasher {
  switch (kind) {
    case 'sha256':
    case 'md5':
    case 'sha1': {
      const h = createHash(kind);
      return { update: (b: Buffer) => h.update(b), digest: () => h.digest('hex') };
    }
    case 'dropbox':
      return new DropboxContentHasher();
    case 'quickxor':
      return new QuickXorHasher();
    default:
      throw new StagecoachError('hash.unsupported', `[stagecoach] no hasher for hash kind ${String(kind)}`);
  }
}

/** The digest of one buffer. */
export function hashBuffer(kind: HashKind, buf: Buffer): string {
  const h = createHasher(kind);
  h.update(buf);
  return h.digest();
}

/** The digest of a whole file, read as a stream (memory stays bounded whatever the size). */
export async function hashFile(kind: HashKind, path: string, signal?: AbortSignal): Promise<string> {
  const h = createHasher(kind);
  for await (const chunk of createReadStream(path, signal ? { signal } : {})) h.update(chunk as Buffer);
  return h.digest();
}

/**
 * Throws ShortReadError when `actual` differs from `expected`. Every upload calls it once the
 * source has ended: a file that changed while it was read must never be recorded as archived.
 */
export function verifySize(expected: number, actual: number): void {
  if (expected !== actual) throw new ShortReadError(expected, actual);
}

export interface CountingHashStreamOptions {
  /**
   * The size the source is stated to have. When more bytes than this arrive, the stream fails
   * with ShortReadError at once instead of passing on a file that grows while it is read.
   * (Fewer bytes are only known at the end: call `verifySize` after the stream has finished.)
   */
  maxBytes?: number;
}

/**
 * A pass-through stream that counts the bytes going through it and feeds them to one hasher per
 * requested kind, so a target hashes exactly the bytes it sent. Read `bytes` at any time;
 * `digest(kind)` only once the stream has finished (it is memoised, so it may be asked twice).
 * Asking for a kind that was not requested throws StagecoachError `hash.not-requested`.
 */
export class CountingHashStream extends Transform {
  #bytes = 0;
  readonly #hashers = new Map<HashKind, Hasher>();
  readonly #digests = new Map<HashKind, string>();
  readonly #maxBytes: number | undefined;

  constructor(kinds: readonly HashKind[], options: CountingHashStreamOptions = {}) {
    super();
    for (const kind of kinds) this.#hashers.set(kind, createHasher(kind));
    this.#maxBytes = options.maxBytes;
  }

  /** Bytes passed through so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Counts and hashes one chunk; throws ShortReadError if it takes the total past `maxBytes`. */
  feed(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#maxBytes !== undefined && this.#bytes > this.#maxBytes) {
      throw new ShortReadError(this.#maxBytes, this.#bytes);
    }
    for (const h of this.#hashers.values()) h.update(chunk);
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, cb: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    try {
      this.feed(buf);
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb(null, buf);
  }

  /** The digest of every byte fed so far. Finalises the hasher: feed nothing after it. */
  digest(kind: HashKind): string {
    const done = this.#digests.get(kind);
    if (done !== undefined) return done;
    const h = this.#hashers.get(kind);
    if (!h) throw new StagecoachError('hash.not-requested', `[stagecoach] ${kind} was not requested of this stream`);
    const d = h.digest();
    this.#digests.set(kind, d);
    return d;
  }
}
