/**
 * multipart/form-data parsing for Box's direct uploads, done on a body already written to disk
 * so a large upload never sits in memory: parts are located by scanning the file for the
 * boundary, small parts are read, the `file` part is described by its byte range. A body of up
 * to `IN_MEMORY_MAX` bytes is parsed in memory (held since it arrived, or read whole, at once):
 * for a small file's upload the file's writes and reads were most of the emulator's own time per
 * request.
 */
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';

/** Bodies up to this size are parsed in memory (read with one synchronous call). */
export const IN_MEMORY_MAX = 1 << 20;

/** Positional reads of the body: its file's handle, or the body itself held in memory. */
interface BodyReader {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

/** A body held in memory, or the file it was written to. */
export type Body = Buffer | string;

async function openBody(file: Body, size: number): Promise<BodyReader> {
  if (typeof file === 'string' && size > IN_MEMORY_MAX) return open(file, 'r');
  const body = typeof file === 'string' ? readFileSync(file) : file;
  return {
    read: async (buf, offset, length, position) => ({ bytesRead: body.copy(buf, offset, position, Math.min(body.length, position + length)) }),
    close: async () => undefined,
  };
}

export interface MultipartPart {
  name: string;
  filename: string | null;
  /** Byte range of the part's content in the body file: [start, end). */
  start: number;
  end: number;
}

/** The boundary of a `multipart/form-data` content type, or null. */
export function boundaryOf(contentType: string | undefined): string | null {
  if (!contentType || !/^multipart\/form-data/i.test(contentType)) return null;
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

async function indexOf(fh: BodyReader, size: number, needle: Buffer, from: number): Promise<number> {
  const chunk = 1 << 20;
  let pos = from;
  let carry = Buffer.alloc(0);
  while (pos < size) {
    const buf = Buffer.allocUnsafe(Math.min(chunk, size - pos));
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    const hay = carry.length ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
    const i = hay.indexOf(needle);
    if (i >= 0) return pos - carry.length + i;
    // Keep a tail shorter than the needle so a match split across reads is still found.
    carry = Buffer.from(hay.subarray(Math.max(0, hay.length - needle.length + 1)));
    pos += bytesRead;
  }
  return -1;
}

async function readRange(fh: BodyReader, start: number, end: number): Promise<Buffer> {
  const buf = Buffer.alloc(end - start);
  await fh.read(buf, 0, buf.length, start);
  return buf;
}

/** Parses the parts of a multipart body (held, or stored in `file`); throws on a malformed body. */
export async function parseMultipart(file: Body, size: number, boundary: string): Promise<MultipartPart[]> {
  const fh = await openBody(file, size);
  try {
    const delim = Buffer.from(`--${boundary}`);
    const sep = Buffer.from(`\r\n--${boundary}`);
    const parts: MultipartPart[] = [];
    let pos = await indexOf(fh, size, delim, 0);
    if (pos < 0) throw new Error('no boundary');
    pos += delim.length;
    for (;;) {
      const after = await readRange(fh, pos, Math.min(pos + 2, size));
      if (after.toString() === '--') return parts;
      if (after.toString() !== '\r\n') throw new Error('malformed boundary line');
      const headStart = pos + 2;
      const headEnd = await indexOf(fh, size, Buffer.from('\r\n\r\n'), headStart);
      if (headEnd < 0 || headEnd - headStart > 16 * 1024) throw new Error('malformed part headers');
      const head = (await readRange(fh, headStart, headEnd)).toString('utf8');
      const disp = /^content-disposition:(.*)$/im.exec(head)?.[1] ?? '';
      const name = /\bname="([^"]*)"/i.exec(disp)?.[1];
      if (name === undefined) throw new Error('part without a name');
      const filename = /\bfilename="([^"]*)"/i.exec(disp)?.[1] ?? null;
      const start = headEnd + 4;
      const end = await indexOf(fh, size, sep, start);
      if (end < 0) throw new Error('unterminated part');
      parts.push({ name, filename, start, end });
      pos = end + sep.length;
    }
  } finally {
    await fh.close();
  }
}

/** Reads a small part's content as text (attributes JSON); `bodySize` is the whole body's. */
export async function readPartText(file: Body, part: MultipartPart, bodySize: number, limit = 1 << 20): Promise<string> {
  if (part.end - part.start > limit) throw new Error('part too large');
  const fh = await openBody(file, bodySize);
  try {
    return (await readRange(fh, part.start, part.end)).toString('utf8');
  } finally {
    await fh.close();
  }
}
