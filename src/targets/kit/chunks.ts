/** Reading a source stream, the same in every target. */

/** A chunk a source stream yielded, as a Buffer (a Uint8Array is wrapped, not copied). */
export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk));
}
