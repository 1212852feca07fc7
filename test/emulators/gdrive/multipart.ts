/**
 * A streaming reader for the `multipart/related` body of a Drive multipart upload: the first
 * part (JSON metadata) is buffered, the second (the media) is streamed to a sink as it arrives,
 * so a large body never sits in memory.
 */
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';

export class MultipartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MultipartError';
  }
}

export interface RelatedParts<T> {
  metadata: Buffer;
  metadataType: string;
  mediaType: string;
  /** What the sink returned for the media part. */
  media: T;
}

/** `multipart/related; boundary=X` → X, or null. */
export function boundaryOf(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/related\s*(;|$)/i.test(contentType)) return null;
  const m = /boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

function parseHeaders(block: string): Record<string, string> {
  const h: Record<string, string> = {};
  for (const line of block.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return h;
}

/**
 * Reads `source` to the end. The sink gets the media part as a stream (and the metadata part) as
 * soon as the media headers are read; a sink that refuses must still consume the stream. If the
 * body is malformed or the source fails, the sink's stream is destroyed with the
 * error and this rejects.
 */
export async function readRelated<T>(
  source: AsyncIterable<Buffer>,
  boundary: string,
  sink: (media: Readable, contentType: string, metadata: Buffer) => Promise<T>,
  metadataLimit = 1 << 20,
): Promise<RelatedParts<T>> {
  const dash = Buffer.from(`--${boundary}`);
  const delim = Buffer.from(`\r\n--${boundary}`);
  const crlf2 = Buffer.from('\r\n\r\n');
  type State = 'preamble' | 'headers1' | 'body1' | 'after1' | 'headers2' | 'body2' | 'epilogue';
  let state: State = 'preamble';
  let buf: Buffer = Buffer.alloc(0);
  let metadata: Buffer = Buffer.alloc(0);
  let metadataType = '';
  let mediaType = '';
  let media: PassThrough | null = null;
  let sinkResult: Promise<T> | null = null;

  const fail = (msg: string): never => {
    throw new MultipartError(msg);
  };

  try {
    for await (const chunk of source) {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (let progressed = true; progressed; ) {
        progressed = false;
        if (state === 'preamble') {
          const i = buf.indexOf(dash);
          if (i < 0) {
            if (buf.length > metadataLimit) fail('no opening boundary');
            break;
          }
          if (buf.length < i + dash.length + 2) break;
          if (buf.subarray(i + dash.length, i + dash.length + 2).toString() !== '\r\n') fail('bad opening boundary');
          buf = buf.subarray(i + dash.length + 2);
          state = 'headers1';
          progressed = true;
        } else if (state === 'headers1' || state === 'headers2') {
          const i = buf.indexOf(crlf2);
          if (i < 0) {
            if (buf.length > 64 << 10) fail('part headers too long');
            break;
          }
          const h = parseHeaders(buf.subarray(0, i).toString('utf8'));
          buf = buf.subarray(i + 4);
          if (state === 'headers1') {
            metadataType = h['content-type'] ?? '';
            state = 'body1';
          } else {
            mediaType = h['content-type'] ?? 'application/octet-stream';
            media = new PassThrough();
            sinkResult = sink(media, mediaType, metadata);
            // The sink may fail before we finish; keep its rejection for the await below.
            sinkResult.catch(() => undefined);
            state = 'body2';
          }
          progressed = true;
        } else if (state === 'body1') {
          const i = buf.indexOf(delim);
          if (i < 0) {
            if (buf.length > metadataLimit) fail('metadata part too large');
            break;
          }
          metadata = Buffer.from(buf.subarray(0, i));
          buf = buf.subarray(i + delim.length);
          state = 'after1';
          progressed = true;
        } else if (state === 'after1') {
          if (buf.length < 2) break;
          const next = buf.subarray(0, 2).toString();
          if (next === '--') fail('the media part is missing');
          if (next !== '\r\n') fail('bad boundary');
          buf = buf.subarray(2);
          state = 'headers2';
          progressed = true;
        } else if (state === 'body2') {
          const i = buf.indexOf(delim);
          if (i >= 0) {
            if (i > 0 && !media!.write(buf.subarray(0, i))) await once(media!, 'drain');
            media!.end();
            buf = buf.subarray(i + delim.length);
            state = 'epilogue';
            progressed = true;
          } else {
            // Keep a tail that could be the start of a delimiter split across chunks.
            const keep = Math.min(buf.length, delim.length - 1);
            const out = buf.subarray(0, buf.length - keep);
            buf = Buffer.from(buf.subarray(buf.length - keep));
            if (out.length && !media!.write(out)) await once(media!, 'drain');
          }
        } else {
          // epilogue: the closing `--` and anything after it are ignored
          buf = Buffer.alloc(0);
        }
      }
    }
    if (state !== 'epilogue') fail('body ended before the closing boundary');
    return { metadata, metadataType, mediaType, media: await sinkResult! };
  } catch (e) {
    if (media && !media.destroyed) (media as PassThrough).destroy(e as Error);
    if (sinkResult !== null) await (sinkResult as Promise<T>).catch(() => undefined);
    throw e;
  }
}
