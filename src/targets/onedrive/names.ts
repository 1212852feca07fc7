/**
 * Names on OneDrive (Personal and for Business): a remote path becomes the list of names the
 * target stores, under OneDrive's rules ("Restrictions and limitations in OneDrive and
 * SharePoint", Graph "Addressing resources"):
 *
 * - forbidden characters `" * : < > ? / \ |` (and, as everywhere, control characters);
 * - no leading or trailing space;
 * - reserved names `.lock`, `CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`,
 *   `desktop.ini` (whole name, any case), `_vti_` anywhere in a name, names starting `~$`;
 * - the whole decoded path, from the drive root, fewer than 400 characters;
 * - names compare case-insensitively.
 *
 * What can be mapped is mapped to a look-alike, as rclone's OneDrive encoder does, so the file
 * still lands and reads almost the same: forbidden characters become their full-width forms
 * (`:` → `：` U+FF1A, `?` → `？` U+FF1F, …); control characters become the Control Pictures
 * (U+0000–U+001F → U+2400–U+241F, DEL → `␡` U+2421); a leading or trailing space (or other
 * Unicode white space) becomes `␠` (U+2420); a leading `~` of a `~$` name becomes `～` (U+FF5E);
 * a trailing `.` becomes `．` (U+FF0E), since OneDrive refuses folder names ending in a period.
 * The mapping is one way: a name that already holds a look-alike is kept as it is, so `a:b` and
 * `a：b` land on one remote name.
 *
 * What cannot be mapped without inventing a different name fails the delivery with a TargetError
 * (`fail-item`, code `onedrive.<rule>`): reserved names, `_vti_`, a name longer than 255
 * characters, a path of 400 characters or more, and the path shapes no target accepts (empty,
 * absolute, empty or `.`/`..` segments). Pure functions; NFC first, everywhere.
 */
import { TargetError } from '../../errors.js';

/**
 * The longest name (one path segment) the target stores, in UTF-16 code units. OneDrive itself
 * limits the whole path; 255 is the limit of the sync clients' file systems (NTFS, APFS), so a
 * file stored here can also be synced down. The conformance suite's over-long name is ASCII,
 * where characters and bytes agree.
 */
export const MAX_NAME_CHARS = 255;

/** The whole decoded path from the drive root (`/a/b/c.txt`) must be shorter than this. */
export const MAX_PATH_CHARS = 400;

/** The rules a remote path can break; each is the tail of the error code `onedrive.<rule>`. */
export type NameRule =
  | 'empty'
  | 'absolute'
  | 'empty-segment'
  | 'dot-segment'
  | 'reserved-name'
  | 'reserved-vti'
  | 'name-too-long'
  | 'path-too-long';

/** Forbidden characters and their full-width look-alikes (rclone's `EncodeWin` + back slash). */
export const FULL_WIDTH: Readonly<Record<string, string>> = Object.freeze({
  '"': '\uFF02',
  '*': '\uFF0A',
  ':': '\uFF1A',
  '<': '\uFF1C',
  '>': '\uFF1E',
  '?': '\uFF1F',
  '\\': '\uFF3C',
  '|': '\uFF5C',
});

/** What a leading or trailing space becomes: SYMBOL FOR SPACE. */
export const SPACE_SYMBOL = '\u2420';

const RESERVED_NAMES = new Set([
  '.lock',
  'con',
  'prn',
  'aux',
  'nul',
  'desktop.ini',
  ...Array.from({ length: 10 }, (_, i) => `com${i}`),
  ...Array.from({ length: 10 }, (_, i) => `lpt${i}`),
]);

function refuse(targetId: string, rule: NameRule, detail: string): TargetError {
  return new TargetError(targetId, 'fail-item', `${rule}: ${detail}`, { code: `onedrive.${rule}` });
}

function short(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}

function mapChar(ch: string): string {
  const full = FULL_WIDTH[ch];
  if (full !== undefined) return full;
  const c = ch.charCodeAt(0);
  if (c < 0x20) return String.fromCharCode(0x2400 + c);
  if (c === 0x7f) return '\u2421';
  return ch;
}

/**
 * The name OneDrive stores for one NFC name segment: forbidden and control characters and edge
 * spaces replaced by look-alikes (see the module comment). Reserved names are NOT handled here
 * (they are refused by `mapOneDrivePath`). Pure; idempotent.
 */
export function mapOneDriveName(name: string): string {
  let out = '';
  for (const ch of name) out += mapChar(ch);
  // String.prototype.trim's white space (all of it in the BMP, so one code unit): what OneDrive
  // refuses at either end. Control characters were mapped above, so only spaces remain here.
  if (/^\s/.test(out)) out = SPACE_SYMBOL + out.slice(1);
  if (/\s$/.test(out)) out = out.slice(0, -1) + SPACE_SYMBOL;
  if (out.startsWith('~$')) out = `\uFF5E${out.slice(1)}`;
  if (out.endsWith('.')) out = `${out.slice(0, -1)}\uFF0E`;
  return out;
}

/** The key two names share when OneDrive treats them as one (case-insensitive). */
export function nameKey(name: string): string {
  return name.toLowerCase();
}

/** Checks one mapped name against the rules mapping cannot fix. */
function checkMapped(targetId: string, original: string, mapped: string): void {
  const lower = mapped.toLowerCase();
  if (RESERVED_NAMES.has(lower)) {
    throw refuse(targetId, 'reserved-name', `OneDrive reserves the name ${short(original)} (.lock, CON, PRN, AUX, NUL, COM0-9, LPT0-9, desktop.ini)`);
  }
  if (lower.includes('_vti_')) throw refuse(targetId, 'reserved-vti', `OneDrive refuses names containing "_vti_": ${short(original)}`);
  if (mapped.length > MAX_NAME_CHARS) {
    throw refuse(targetId, 'name-too-long', `the name ${short(original)} is ${mapped.length} characters once mapped, the limit is ${MAX_NAME_CHARS}`);
  }
}

/** Splits and maps `path` (already NFC, no leading or trailing `/`) segment by segment. */
function mapSegments(targetId: string, path: string, whole: string): string[] {
  const out: string[] = [];
  for (const seg of path.split('/')) {
    if (seg.length === 0) throw refuse(targetId, 'empty-segment', `the remote path ${short(whole)} has an empty segment`);
    if (seg === '.' || seg === '..') throw refuse(targetId, 'dot-segment', `the remote path ${short(whole)} has a "${seg}" segment`);
    const mapped = mapOneDriveName(seg);
    checkMapped(targetId, seg, mapped);
    out.push(mapped);
  }
  return out;
}

/**
 * Maps `remoteRoot` (the config's folder under the drive root; may be empty) to its names.
 * Leading and trailing `/` are ignored. Throws like `mapOneDrivePath`.
 */
export function mapRemoteRoot(remoteRoot: string, targetId = 'onedrive'): string[] {
  const trimmed = remoteRoot.normalize('NFC').replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return [];
  return mapSegments(targetId, trimmed, remoteRoot);
}

/**
 * Maps `remotePath` (POSIX separators, relative to the target's root) to the names OneDrive
 * stores, NFC first. `rootSegments` (from `mapRemoteRoot`) count towards the 400-character path
 * limit, measured as OneDrive does on the decoded path from the drive root: `/` + every name
 * joined by `/`. Refuses with a TargetError (`fail-item`, code `onedrive.<rule>`, the message
 * naming the rule): `empty`, `absolute`, `empty-segment`, `dot-segment`, `reserved-name`,
 * `reserved-vti`, `name-too-long`, `path-too-long`.
 */
export function mapOneDrivePath(remotePath: string, targetId = 'onedrive', rootSegments: readonly string[] = []): string[] {
  if (remotePath.length === 0) throw refuse(targetId, 'empty', 'the remote path is empty');
  if (remotePath.startsWith('/')) throw refuse(targetId, 'absolute', `the remote path ${short(remotePath)} is absolute`);
  const segments = mapSegments(targetId, remotePath.normalize('NFC'), remotePath);
  const full = `/${[...rootSegments, ...segments].join('/')}`;
  if (full.length >= MAX_PATH_CHARS) {
    throw refuse(targetId, 'path-too-long', `the path ${short(full)} is ${full.length} characters on OneDrive, the limit is ${MAX_PATH_CHARS - 1}`);
  }
  return segments;
}

/** Percent-encodes names for Graph path addressing (`root:/a/b:`): each name on its own. */
export function encodePath(names: readonly string[]): string {
  return names.map((n) => encodeURIComponent(n)).join('/');
}

/**
 * The key two remote paths share when OneDrive stores them as one file: NFC, OneDrive's
 * look-alike substitutions (`a:b` and `a\uFF1Ab` are one name), then lower case per segment.
 * Never throws: a path the target refuses keys as its NFC form, lower-cased.
 */
export function oneDrivePathKey(remotePath: string): string {
  try {
    return mapOneDrivePath(remotePath).map(nameKey).join('/');
  } catch {
    return nameKey(remotePath.normalize('NFC'));
  }
}
