/**
 * What every target's `download` shares: checking the requested start, and serving a start
 * past 0 from a provider that sends only whole files.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { StagecoachError } from '../errors.js';

/** The start to ask for: a whole number not past `size`, else StagecoachError `download.bad-start`. */
export function checkStart(start: number | undefined, size: number, where: string): number {
  const s = start ?? 0;
  if (!Number.isSafeInteger(s) || s < 0 || s > size) {
    throw new StagecoachError('download.bad-start', `[stagecoach] [${where}] Expected \`start\` to be a whole number from 0 to ${size}, got ${String(start)}`);
  }
  return s;
}

/** `stream` without its first `n` bytes (for providers without ranged downloads). */
export function skipBytes(stream: Readable, n: number): Readable {
  if (n === 0) return stream;
  let left = n;
  const cut = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      if (left >= chunk.length) {
        left -= chunk.length;
        cb();
        return;
      }
      const rest = chunk.subarray(left);
      left = 0;
      cb(null, rest);
    },
  });
  stream.on('error', (err) => cut.destroy(err));
  cut.on('close', () => stream.destroy());
  return stream.pipe(cut);
}
