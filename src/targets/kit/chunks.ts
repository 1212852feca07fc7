/** Reading a source stream, the same in every target. */

import { verifySize } from '../../archive/hash.js';
import type { PutRequest } from '../target.js';
import { SourceError } from './classify.js';

/** A chunk a source stream yielded, as a Buffer (a Uint8Array is wrapped, not copied). */
export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk));
}

/** Every chunk of a stream (or any async iterable of chunks), as one Buffer. */
export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of stream) {
    const b = toBuffer(c);
    chunks.push(b);
    size += b.length;
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/**
 * The whole of a small source through `req.readSync` (see PutRequest), or null when the source
 * offers none (the target then reads `open`'s stream). One byte more than `size` is asked for, so
 * a file that grew fails as one that shrank (ShortReadError); errors of the read are SourceError.
 */
export function readSmallSync(req: PutRequest): Buffer | null {
  const read = req.readSync;
  if (!read) return null;
  const buf = Buffer.allocUnsafe(req.size + 1);
  let got = 0;
  try {
    while (got < buf.length) {
      const n = read(buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
  } catch (err) {
    throw new SourceError(err);
  }
  verifySize(req.size, got);
  return buf.subarray(0, got);
}
