import { isUtf8 } from 'node:buffer';

/**
 * Names that are not valid UTF-8 (Latin-1 `café` from old SMB shares, Windows ZIPs). Linux hands
 * names over as bytes; read as strings they come back with U+FFFD in place of the bad bytes, a
 * name that does not exist. Such a name is carried as its raw bytes (the journal keeps them, so a
 * restore can write the original name back) and shown, and archived, under an escaped name:
 * every valid UTF-8 sequence as it is, every other byte as `%XX` (upper-case hex), and `%` itself
 * as `%25`. The escape is deterministic and reversible (`unescapeName`). Names that are valid
 * UTF-8 are never escaped.
 */

/** Whether a name (or path) read as bytes is valid UTF-8, so a string can stand for it. */
export function isUtf8Name(name: Buffer): boolean {
  return isUtf8(name);
}

/** Length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there starts none. */
function sequenceAt(b: Buffer, i: number): number {
  const lead = b[i]!;
  const len = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
  if (len <= 1 || i + len > b.length) return len === 1 ? 1 : 0;
  // isUtf8 also refuses overlong forms and surrogates.
  return isUtf8(b.subarray(i, i + len)) ? len : 0;
}

const hex = (n: number) => `%${n.toString(16).toUpperCase().padStart(2, '0')}`;

/** The escaped form of a name that is not valid UTF-8 (see the module comment). */
export function escapeName(name: Buffer): string {
  let out = '';
  for (let i = 0; i < name.length; ) {
    const n = sequenceAt(name, i);
    if (n === 0) {
      out += hex(name[i]!);
      i++;
      continue;
    }
    const s = name.subarray(i, i + n).toString('utf8');
    out += s === '%' ? '%25' : s;
    i += n;
  }
  return out;
}

/** The original bytes of an escaped name: `unescapeName(escapeName(b))` equals `b`. */
export function unescapeName(escaped: string): Buffer {
  const parts: Buffer[] = [];
  let text = '';
  for (let i = 0; i < escaped.length; i++) {
    const m = escaped[i] === '%' ? /^%([0-9A-F]{2})/.exec(escaped.slice(i, i + 3)) : null;
    if (m) {
      parts.push(Buffer.from(text, 'utf8'), Buffer.from([parseInt(m[1]!, 16)]));
      text = '';
      i += 2;
    } else {
      text += escaped[i];
    }
  }
  parts.push(Buffer.from(text, 'utf8'));
  return Buffer.concat(parts);
}
