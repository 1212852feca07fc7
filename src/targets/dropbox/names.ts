/**
 * Names on Dropbox: a remote path becomes the path Dropbox stores, segment by segment. Pure
 * functions, no I/O.
 *
 * What Dropbox refuses, and what this module does about it:
 * - `desktop.ini`, `thumbs.db`, `.ds_store`, `icon\r`, `.dropbox`, `.dropbox.attr` in any case
 *   (Dropbox's "ignored files": `path/disallowed_name`) → refused, rule `disallowed-name`. They are
 *   OS litter that Dropbox never stores; a look-alike would only smuggle it in.
 * - a backslash → mapped to `＼` (U+FF3C FULLWIDTH REVERSE SOLIDUS);
 * - DEL (U+007F) → mapped to `␡` (U+2421 SYMBOL FOR DELETE);
 * - trailing whitespace (`malformed_path`) → each trailing space becomes `␠` (U+2420 SYMBOL FOR
 *   SPACE) and each trailing C0 control (tab, CR, LF, …) its control picture (U+2400 + code);
 *   any other trailing white space (no-break space, U+3000, …) has no look-alike and is refused,
 *   rule `trailing-whitespace`;
 * - NUL → refused (`nul`); an unpaired surrogate → refused (`invalid-unicode`); an empty, `.` or
 *   `..` segment → refused (`empty-segment`, `dot-segment`);
 * - a segment longer than 255 UTF-16 code units once mapped → refused (`name-too-long`). Dropbox
 *   documents 255 characters and counts some symbols twice (rclone found ☺ does), so counting
 *   UTF-16 units errs on the side of refusing rather than of a failed upload.
 * Everything else is stored as it is (leading spaces, `? < > " ' : * |`, trailing dots).
 *
 * The mapping is one-way: a name already holding `＼`, `␡` or `␠` is stored as it is, so
 * `a\b` and `a＼b` land on one Dropbox file. Both are rare enough on a NAS to accept this
 * rather than escape every look-alike.
 *
 * Dropbox compares names case-insensitively (the target declares `caseInsensitive`); nothing
 * is mapped for it. Every path is NFC-normalised first, so the NFD and NFC spellings of one name
 * are one file.
 */
import { TargetError } from '../../errors.js';

/** The longest name segment Dropbox stores, in UTF-16 code units (see the module comment). */
export const MAX_NAME_CHARS = 255;

/** Names Dropbox never stores (compared case-insensitively). */
export const DISALLOWED_NAMES: readonly string[] = Object.freeze(['desktop.ini', 'thumbs.db', '.ds_store', 'icon\r', '.dropbox', '.dropbox.attr']);

const DISALLOWED = new Set(DISALLOWED_NAMES);

/** The rules a remote path can break; each is the tail of the error code `dropbox.<rule>`. */
export type NameRule =
  | 'empty'
  | 'absolute'
  | 'nul'
  | 'empty-segment'
  | 'dot-segment'
  | 'disallowed-name'
  | 'invalid-unicode'
  | 'trailing-whitespace'
  | 'name-too-long';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const TRAILING_WS = /\s+$/u;

function refuse(targetId: string, rule: NameRule, detail: string): TargetError {
  return new TargetError(targetId, 'fail-item', `${rule}: ${detail}`, { code: `dropbox.${rule}` });
}

function mapTrailing(ws: string, name: string, targetId: string): string {
  let out = '';
  for (const ch of ws) {
    const code = ch.charCodeAt(0);
    if (ch === ' ') out += '\u2420';
    else if (code < 0x20) out += String.fromCharCode(0x2400 + code);
    else {
      throw refuse(
        targetId,
        'trailing-whitespace',
        `the name ${JSON.stringify(name)} ends in U+${code.toString(16).toUpperCase().padStart(4, '0')}, white space Dropbox refuses at the end of a name and that has no look-alike`,
      );
    }
  }
  return out;
}

/**
 * Maps one name segment (already NFC) to the name Dropbox stores: see the module comment for
 * every rule. Throws TargetError `fail-item` with code `dropbox.<rule>` when the name cannot be
 * stored. Pure.
 */
export function mapDropboxName(name: string, targetId = 'dropbox'): string {
  if (name.length === 0) throw refuse(targetId, 'empty-segment', 'a path segment is empty');
  if (name === '.' || name === '..') throw refuse(targetId, 'dot-segment', `a path segment is "${name}"`);
  if (name.includes('\0')) throw refuse(targetId, 'nul', `the name ${JSON.stringify(name)} holds a NUL character`);
  if (LONE_SURROGATE.test(name)) throw refuse(targetId, 'invalid-unicode', `the name ${JSON.stringify(name)} holds an unpaired UTF-16 surrogate`);
  if (DISALLOWED.has(name.toLowerCase())) {
    throw refuse(
      targetId,
      'disallowed-name',
      `Dropbox never stores files named ${JSON.stringify(name)} (its ignored names: ${DISALLOWED_NAMES.map((n) => JSON.stringify(n)).join(', ')})`,
    );
  }
  let mapped = name.replace(/\\/g, '\uFF3C').replace(/\u007F/g, '\u2421');
  const ws = TRAILING_WS.exec(mapped);
  if (ws) mapped = mapped.slice(0, ws.index) + mapTrailing(ws[0], name, targetId);
  if (mapped.length > MAX_NAME_CHARS) {
    throw refuse(
      targetId,
      'name-too-long',
      `the name ${JSON.stringify(`${mapped.slice(0, 40)}…`)} is ${mapped.length} characters (UTF-16 units), Dropbox's limit is ${MAX_NAME_CHARS}`,
    );
  }
  return mapped;
}

/**
 * Maps `remotePath` (POSIX separators, relative, NFC not yet applied) to its Dropbox name
 * segments: NFC first, then `mapDropboxName` on each segment. Refuses an empty path, an absolute
 * one, and every name `mapDropboxName` refuses, with a TargetError `fail-item`
 * (`dropbox.<rule>`). Pure.
 */
export function mapDropboxPath(remotePath: string, targetId = 'dropbox'): string[] {
  if (remotePath.length === 0) throw refuse(targetId, 'empty', 'the remote path is empty');
  if (remotePath.startsWith('/')) throw refuse(targetId, 'absolute', `the remote path ${JSON.stringify(remotePath)} is absolute`);
  return remotePath
    .normalize('NFC')
    .split('/')
    .map((segment) => mapDropboxName(segment, targetId));
}

/** The Dropbox API path of `segments` (`/a/b`), or `''` (the account's root) for none. */
export function dropboxPath(segments: readonly string[]): string {
  return segments.length === 0 ? '' : `/${segments.join('/')}`;
}

/** The key two Dropbox paths share when Dropbox takes them for one (case-insensitive). */
export function pathKey(path: string): string {
  return path.toLowerCase();
}

/**
 * The key two remote paths share when Dropbox stores them as one file: NFC, Dropbox's character
 * mapping, then lower case (Dropbox paths are case-insensitive). Never throws: a path the target
 * refuses keys as its NFC form, lower-cased.
 */
export function dropboxPathKey(remotePath: string): string {
  try {
    return pathKey(dropboxPath(mapDropboxPath(remotePath)));
  } catch {
    return pathKey(remotePath.normalize('NFC'));
  }
}
