/**
 * The Dropbox content hash (`content_hash` in Dropbox's FileMetadata), as the reference
 * https://www.dropbox.com/developers/reference/content-hash defines it: split the content into
 * blocks of 4 MiB (4,194,304 bytes; the last one may be shorter), SHA-256 each block, concatenate
 * the 32-byte binary digests, SHA-256 that string, and write the result in lower-case hex. An
 * empty input has no block, so its hash is the SHA-256 of the empty string.
 */
import { createHash, type Hash } from 'node:crypto';

/** Size of one content-hash block: 4 MiB. */
export const DROPBOX_BLOCK_SIZE = 4 * 1024 * 1024;

/**
 * An incremental Dropbox content hasher. Blocks may span `update()` calls of any size: the digest
 * depends only on the bytes, never on how they were split. Memory stays bounded to two SHA-256
 * states (the current block's and the outer one); no block is buffered.
 *
 * Callers MUST call `digest()` once, after the last `update()`; the hasher cannot be reused.
 */
export class DropboxContentHasher {
  readonly #outer: Hash = createHash('sha256');
  #block: Hash | null = null;
  /** Bytes already fed into the current block. */
  #inBlock = 0;
  #done = false;
  /** Bytes fed, and blocks closed, so far. */
  #fed = 0;
  #closed = 0;
  /** With `keepBlocks`: the digests of closed blocks from number #keptFrom on. */
  readonly #kept: Buffer[] | null;
  #keptFrom = 0;

  /**
   * With `keepBlocks`, each closed block's digest (32 bytes a 4 MiB block) is kept until
   * `dropBlocksBefore`, so `rangeHash` can give a request's own content hash from blocks this
   * hasher already made, instead of hashing the request's bytes a second time.
   */
  constructor(opts: { keepBlocks?: boolean } = {}) {
    this.#kept = opts.keepBlocks ? [] : null;
  }

  /** Feeds bytes; returns the hasher so calls can be chained. */
  update(buf: Buffer): this {
    if (this.#done) throw new Error('[stagecoach] DropboxContentHasher: update() after digest()');
    let pos = 0;
    while (pos < buf.length) {
      // A block starts only when a byte arrives for it: an input that ends on a block boundary
      // must not gain an empty trailing block.
      this.#block ??= createHash('sha256');
      const take = Math.min(DROPBOX_BLOCK_SIZE - this.#inBlock, buf.length - pos);
      this.#block.update(take === buf.length ? buf : buf.subarray(pos, pos + take));
      this.#inBlock += take;
      this.#fed += take;
      pos += take;
      if (this.#inBlock === DROPBOX_BLOCK_SIZE) this.#closeBlock();
    }
    return this;
  }

  /** The content hash of every byte fed so far, as 64 lower-case hex characters. */
  digest(): string {
    if (this.#done) throw new Error('[stagecoach] DropboxContentHasher: digest() called twice');
    this.#done = true;
    if (this.#block) this.#closeBlock();
    return this.#outer.digest('hex');
  }

  /**
   * The content hash of bytes [start, end) of the input (what Dropbox checks a request's
   * `content_hash` against), from the blocks kept: `start` on a block boundary, every block up
   * to `end` closed, and where `end` is not on a boundary it must be where the input stands
   * (the file's last, short block, read to its end). Null when the blocks cannot give it (not
   * kept, dropped, not yet read, a range off the blocks): the caller hashes the bytes itself.
   */
  rangeHash(start: number, end: number): string | null {
    if (this.#kept === null || this.#done || start % DROPBOX_BLOCK_SIZE !== 0 || end < start) return null;
    const first = start / DROPBOX_BLOCK_SIZE;
    const whole = Math.floor(end / DROPBOX_BLOCK_SIZE);
    const tail = end - whole * DROPBOX_BLOCK_SIZE;
    if (first < this.#keptFrom || whole > this.#closed) return null;
    if (tail > 0 && (whole !== this.#closed || this.#fed !== end)) return null;
    const outer = createHash('sha256');
    for (let i = first; i < whole; i++) outer.update(this.#kept[i - this.#keptFrom]!);
    if (tail > 0) outer.update(this.#block!.copy().digest());
    return outer.digest('hex');
  }

  /**
   * With `keepBlocks`, once `digest()` was called: the digest of every block of the input, in
   * order (the last one of `bytes % 4 MiB` bytes when that is not 0), which the content hash is
   * the SHA-256 of. Null when blocks were not kept, some were dropped, or before the digest.
   */
  blockDigests(): readonly Buffer[] | null {
    return this.#kept !== null && this.#done && this.#keptFrom === 0 ? this.#kept : null;
  }

  /** Bytes fed so far. */
  get bytes(): number {
    return this.#fed;
  }

  /** Forgets the kept digests of the blocks before the one holding byte `offset`. */
  dropBlocksBefore(offset: number): void {
    if (this.#kept === null) return;
    const n = Math.min(Math.floor(offset / DROPBOX_BLOCK_SIZE), this.#keptFrom + this.#kept.length) - this.#keptFrom;
    if (n <= 0) return;
    this.#kept.splice(0, n);
    this.#keptFrom += n;
  }

  #closeBlock(): void {
    const d = this.#block!.digest();
    this.#outer.update(d);
    this.#kept?.push(d);
    this.#closed += 1;
    this.#block = null;
    this.#inBlock = 0;
  }
}

/** The Dropbox content hash of one buffer. */
export function dropboxContentHash(buf: Buffer): string {
  return new DropboxContentHasher().update(buf).digest();
}
