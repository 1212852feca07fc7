/**
 * Names on Google Drive. Drive stores almost any name as given: `/`, `\`, `: * ? " < > |`,
 * leading and trailing spaces, and names differing only in case are all kept, and same-name
 * siblings are allowed (so the target looks names up before it creates anything). What is left
 * to decide here is what a remote path may hold at all and how long a name may be.
 *
 * The length limit. Drive documents none; names well past 255 characters are stored. Two
 * things bound it in practice: a name lookup travels in the `q` parameter of a GET, and
 * Google's front ends refuse URLs past about 8 KB (googleapis/google-api-nodejs-client#972),
 * where one UTF-8 byte can take three characters once percent-encoded; and rclone users saw
 * Drive fail on names past 1024 characters (rclone/rclone#3884). So names are capped at
 * 1024 UTF-8 bytes, which keeps every lookup URL well inside 8 KB.
 *
 * Pure functions; the target joins `remoteRoot` and the remote path before mapping.
 */
import { TargetError } from '../../errors.js';
import { truncateUtf8 } from '../kit/names.js';

export { truncateUtf8 };

/** The longest name (one path segment) the Drive target stores, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 1024;

/** The rules a remote path can break; each is the tail of the error code `gdrive.<rule>`. */
export type NameRule = 'empty' | 'absolute' | 'nul' | 'invalid-unicode' | 'empty-segment' | 'dot-segment' | 'name-too-long';

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_G = new RegExp(LONE_SURROGATE.source, 'g');

function refuse(targetId: string, rule: NameRule, detail: string): TargetError {
  return new TargetError(targetId, 'fail-item', `${rule}: ${detail}`, { code: `gdrive.${rule}` });
}

function preview(s: string): string {
  return JSON.stringify(truncateUtf8(s, 60)) + (Buffer.byteLength(s, 'utf8') > 60 ? '…' : '');
}

/**
 * Maps a remote path (POSIX separators, relative) to the names of its segments on Drive,
 * NFC-normalised, so the NFC and NFD spellings of a name are one file. Refuses, with a
 * TargetError of kind `fail-item` and code `gdrive.<rule>`:
 * - `empty`: an empty path;
 * - `absolute`: a path starting with `/`;
 * - `nul`: a NUL character (it cannot travel in Drive's query strings);
 * - `invalid-unicode`: an unpaired UTF-16 surrogate (it has no UTF-8 form);
 * - `empty-segment`: `a//b` or a trailing `/`;
 * - `dot-segment`: a `.` or `..` segment (Drive would store it, but no file system could
 *   restore it, and it reads as a path trick);
 * - `name-too-long`: a segment over `maxNameBytes` UTF-8 bytes (default 1024, see above).
 * Everything else is kept exactly: spaces at either end, `? < > " ' : \ * |`, control
 * characters, case.
 */
export function mapDrivePath(remotePath: string, targetId = 'gdrive', maxNameBytes = MAX_NAME_BYTES): string[] {
  if (remotePath.length === 0) throw refuse(targetId, 'empty', 'the remote path is empty');
  if (remotePath.includes('\0')) throw refuse(targetId, 'nul', `the remote path ${preview(remotePath)} holds a NUL character`);
  if (LONE_SURROGATE.test(remotePath)) {
    throw refuse(targetId, 'invalid-unicode', `the remote path ${preview(remotePath.replace(LONE_SURROGATE_G, '\uFFFD'))} holds an unpaired surrogate`);
  }
  if (remotePath.startsWith('/')) throw refuse(targetId, 'absolute', `the remote path ${preview(remotePath)} is absolute`);
  const segments = remotePath.normalize('NFC').split('/');
  for (const seg of segments) {
    if (seg.length === 0) throw refuse(targetId, 'empty-segment', `the remote path ${preview(remotePath)} has an empty segment`);
    if (seg === '.' || seg === '..') throw refuse(targetId, 'dot-segment', `the remote path ${preview(remotePath)} has a "${seg}" segment`);
    const bytes = Buffer.byteLength(seg, 'utf8');
    if (bytes > maxNameBytes) {
      throw refuse(targetId, 'name-too-long', `the name ${preview(seg)} is ${bytes} bytes, the limit on Drive is ${maxNameBytes}`);
    }
  }
  return segments;
}

/**
 * The segments of `remoteRoot` (already trimmed of slashes by the config; may be empty), mapped
 * like any remote path.
 */
export function mapRemoteRoot(remoteRoot: string, targetId = 'gdrive', maxNameBytes = MAX_NAME_BYTES): string[] {
  const trimmed = remoteRoot.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? [] : mapDrivePath(trimmed, targetId, maxNameBytes);
}

/**
 * A string literal for Drive's `q` language: `'` and `\` escaped with a backslash, wrapped in
 * single quotes (`O'Brien` → `'O\'Brien'`).
 */
export function queryLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * The key two remote paths share when this target stores them as one file: Drive compares names
 * exactly (case-sensitive), and the target looks names up in their NFC form, so the NFC and NFD
 * spellings of one name collide. Never throws: a path the target refuses keys as its NFC form.
 */
export function drivePathKey(remotePath: string): string {
  try {
    return mapDrivePath(remotePath).join('/');
  } catch {
    return remotePath.normalize('NFC');
  }
}
