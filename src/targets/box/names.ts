/**
 * Box names: what Box refuses, and how the target maps a local name onto one Box accepts.
 * Pure functions.
 *
 * Box refuses (400 `item_name_invalid` / `item_name_too_long`): `/` and `\`, non-printable ASCII
 * (U+0000–U+001F, U+007F), a trailing space, the names `.` and `..`, and names over 255
 * characters. Box compares names case-insensitively. The mapping follows rclone's Box encoding
 * so that archives written by either tool look the same:
 *
 * | local | stored on Box | why |
 * |---|---|---|
 * | `\` | `＼` U+FF3C FULLWIDTH REVERSE SOLIDUS | refused; the look-alike keeps the name readable |
 * | U+0000–U+001F | U+2400–U+241F (`␀`…`␟`) | refused; the control pictures name the character |
 * | U+007F | `␡` U+2421 | refused, same |
 * | a trailing space | `␠` U+2420 (the last space only) | refused; one symbol is enough to end the name on a non-space |
 * | the name `.` / `..` | `．` / `．．` U+FF0E | refused (only reachable through `mapBoxName`: a path segment `.`/`..` is refused) |
 *
 * Every mapping replaces one code point with one, so the length rule is checked after it.
 * `/` never reaches a name: it separates the segments of a remote path. What cannot be mapped
 * fails the delivery: an empty path or segment, a `.`/`..` segment, a name over 255 characters.
 */
import { TargetError } from '../../errors.js';

/** Box's longest name, in characters (code points). */
export const MAX_NAME_CHARS = 255;

/** The rules a remote path can break; each is the tail of the error code `box.<rule>`. */
export type BoxNameRule = 'empty' | 'absolute' | 'empty-segment' | 'dot-segment' | 'name-too-long';

const BACKSLASH_LOOKALIKE = '\uFF3C';
const SPACE_SYMBOL = '\u2420';
const DELETE_SYMBOL = '\u2421';
const FULLWIDTH_DOT = '\uFF0E';

function refuse(targetId: string, rule: BoxNameRule, detail: string): TargetError {
  return new TargetError(targetId, 'fail-item', `${rule}: ${detail}`, { code: `box.${rule}` });
}

/**
 * One name as Box stores it: NFC, with the characters Box refuses replaced by look-alikes (see
 * the module comment). Never throws; the length is not checked here (see `mapBoxPath`).
 */
export function mapBoxName(name: string): string {
  const nfc = name.normalize('NFC');
  if (nfc === '.' || nfc === '..') return FULLWIDTH_DOT.repeat(nfc.length);
  let out = '';
  for (const ch of nfc) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\') out += BACKSLASH_LOOKALIKE;
    else if (cp <= 0x1f) out += String.fromCodePoint(0x2400 + cp);
    else if (cp === 0x7f) out += DELETE_SYMBOL;
    else out += ch;
  }
  if (out.endsWith(' ')) out = `${out.slice(0, -1)}${SPACE_SYMBOL}`;
  return out;
}

/** The length Box counts: code points. */
export function boxNameLength(name: string): number {
  let n = 0;
  for (const _ of name) n++;
  return n;
}

/**
 * The Box names of the segments of `remotePath` (relative, POSIX separators), each mapped with
 * `mapBoxName`. Refuses with a TargetError of kind `fail-item` and code `box.<rule>`: an empty
 * path, an absolute path, an empty segment (`a//b`, a trailing `/`), a `.` or `..` segment, and
 * a name longer than 255 characters once mapped.
 */
export function mapBoxPath(remotePath: string, targetId = 'box'): string[] {
  if (remotePath.length === 0) throw refuse(targetId, 'empty', 'the remote path is empty');
  if (remotePath.startsWith('/')) throw refuse(targetId, 'absolute', `the remote path ${JSON.stringify(remotePath)} is absolute`);
  const out: string[] = [];
  for (const seg of remotePath.normalize('NFC').split('/')) {
    if (seg.length === 0) throw refuse(targetId, 'empty-segment', `the remote path ${JSON.stringify(remotePath)} has an empty segment`);
    if (seg === '.' || seg === '..') throw refuse(targetId, 'dot-segment', `the remote path ${JSON.stringify(remotePath)} has a "${seg}" segment`);
    const mapped = mapBoxName(seg);
    const length = boxNameLength(mapped);
    if (length > MAX_NAME_CHARS) {
      throw refuse(
        targetId,
        'name-too-long',
        `the name ${JSON.stringify([...mapped].slice(0, 40).join(''))}… has ${length} characters, Box allows ${MAX_NAME_CHARS}`,
      );
    }
    out.push(mapped);
  }
  return out;
}

/**
 * The key Box compares sibling names by: NFC and lower case, so `Mixed.txt` and `mIXED.txt` are
 * one file, as on Box.
 */
export function nameKey(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

/**
 * The key two remote paths share when Box stores them as one file: NFC, Box's character
 * mapping, then `nameKey` (lower case) per segment. Never throws: a path the target refuses keys
 * as its NFC form, lower-cased.
 */
export function boxPathKey(remotePath: string): string {
  try {
    return mapBoxPath(remotePath).map(nameKey).join('/');
  } catch {
    return nameKey(remotePath);
  }
}
