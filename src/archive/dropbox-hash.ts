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

  #closeBlock(): void {
    this.#outer.update(this.#block!.digest());
    this.#block = null;
    this.#inBlock = 0;
  }
}

/** The Dropbox content hash of one buffer. */
export function dropboxContentHash(buf: Buffer): string {
  return new DropboxContentHasher().update(buf).digest();
}
