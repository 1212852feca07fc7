import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MultipartError, boundaryOf, readRelated } from './multipart.js';
import { bytes, related } from './raw-http.js';

async function collect(media: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of media) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function* pieces(body: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  let prev = 0;
  for (const c of [...cuts, body.length]) {
    yield body.subarray(prev, c);
    prev = c;
  }
}

describe('multipart/related reader', () => {
  it('finds the closing delimiter wherever the chunks split it', async () => {
    const media = bytes(2000, 4);
    const body = related('Zz-9', { name: 'a' }, media, 'image/png');
    const tail = body.length - Buffer.byteLength('\r\n--Zz-9--\r\n');
    // Every split point from a few bytes before the delimiter to the end of the body.
    for (let cut = tail - 3; cut < body.length; cut++) {
      const out = await readRelated(pieces(body, [10, cut]), 'Zz-9', (m) => collect(m));
      expect(out.media.equals(media), `cut at ${cut}`).toBe(true);
      expect(JSON.parse(out.metadata.toString())).toEqual({ name: 'a' });
      expect(out.mediaType).toBe('image/png');
    }
  });

  it('keeps bytes that look like the start of a delimiter inside the media', async () => {
    const media = Buffer.concat([Buffer.from('\r\n--Zz'), bytes(100), Buffer.from('\r\n-')]);
    const body = related('Zz-9', {}, media);
    for (let cut = 60; cut < body.length; cut += 3) {
      const out = await readRelated(pieces(body, [cut]), 'Zz-9', (m) => collect(m));
      expect(out.media.equals(media)).toBe(true);
    }
  });

  it('rejects a body with no closing boundary, and destroys the media stream', async () => {
    const body = related('b', {}, bytes(100)).subarray(0, 150);
    let sinkStream: PassThrough | null = null;
    await expect(
      readRelated(pieces(body, [30]), 'b', (m) => {
        sinkStream = m as PassThrough;
        return collect(m);
      }),
    ).rejects.toBeInstanceOf(MultipartError);
    expect(sinkStream!.destroyed).toBe(true);
  });

  it('reads the boundary parameter, quoted or not', () => {
    expect(boundaryOf('multipart/related; boundary=abc')).toBe('abc');
    expect(boundaryOf('multipart/related; boundary="a b"')).toBe('a b');
    expect(boundaryOf('multipart/form-data; boundary=abc')).toBeNull();
  });
});
