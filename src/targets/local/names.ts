/**
 * Names on a local (POSIX) disk: a remote path becomes a safe path under the archive root, and
 * the names the target makes itself (temp files, kept versions) stay within the byte limit.
 * Pure functions; the root is joined by the caller.
 */
import { TargetError } from '../../errors.js';
import { truncateUtf8 } from '../kit/names.js';

export { truncateUtf8 };

/** The longest file name most local filesystems accept (ext4, xfs, btrfs, zfs), in bytes. */
export const MAX_NAME_BYTES = 255;

/** The rules a remote path can break; each is the tail of the error code `local.<rule>`. */
export type NameRule = 'empty' | 'absolute' | 'nul' | 'empty-segment' | 'dot-segment' | 'name-too-long';

function refuse(targetId: string, rule: NameRule, detail: string): TargetError {
  return new TargetError(targetId, 'fail-item', `${rule}: ${detail}`, { code: `local.${rule}` });
}

/**
 * Maps `remotePath` (POSIX separators, relative to the target's root) to the relative path it is
 * stored at: NFC-normalised, so the NFD and NFC spellings of one name are one file. Refuses,
 * with a TargetError of kind `fail-item` and code `local.<rule>`: an empty path, an absolute
 * path, a NUL byte, an empty segment (`a//b`, a trailing `/`), a `.` or `..` segment, and a
 * segment longer than `maxNameBytes` UTF-8 bytes. Everything else a POSIX name may hold is kept
 * as it is (spaces, `? < > " ' : \`, control characters).
 */
export function mapLocalPath(remotePath: string, targetId = 'local', maxNameBytes = MAX_NAME_BYTES): string {
  if (remotePath.length === 0) throw refuse(targetId, 'empty', 'the remote path is empty');
  if (remotePath.includes('\0')) throw refuse(targetId, 'nul', `the remote path ${JSON.stringify(remotePath)} holds a NUL byte`);
  if (remotePath.startsWith('/')) throw refuse(targetId, 'absolute', `the remote path ${JSON.stringify(remotePath)} is absolute`);
  const nfc = remotePath.normalize('NFC');
  const segments = nfc.split('/');
  for (const seg of segments) {
    if (seg.length === 0) throw refuse(targetId, 'empty-segment', `the remote path ${JSON.stringify(remotePath)} has an empty segment`);
    if (seg === '.' || seg === '..') throw refuse(targetId, 'dot-segment', `the remote path ${JSON.stringify(remotePath)} has a "${seg}" segment`);
    const bytes = Buffer.byteLength(seg, 'utf8');
    if (bytes > maxNameBytes) {
      throw refuse(targetId, 'name-too-long', `the name ${JSON.stringify(truncateUtf8(seg, 40))}… is ${bytes} bytes, the limit is ${maxNameBytes}`);
    }
  }
  return nfc;
}

const TEMP_PREFIX = '.';
const TEMP_INFIX = '.stagecoach-';
const TEMP_SUFFIX = '.tmp';

/**
 * The name of the temp file a put writes before renaming it over `name`:
 * `.<name>.stagecoach-<random>.tmp`, in the same folder so the rename is atomic. The `<name>`
 * part is cut (on a character boundary) so the whole stays within `maxNameBytes`.
 */
export function tempName(name: string, random: string, maxNameBytes = MAX_NAME_BYTES): string {
  const fixed = Buffer.byteLength(TEMP_PREFIX + TEMP_INFIX + random + TEMP_SUFFIX, 'utf8');
  return `${TEMP_PREFIX}${truncateUtf8(name, maxNameBytes - fixed)}${TEMP_INFIX}${random}${TEMP_SUFFIX}`;
}

/** True for a name `tempName` could have made (an interrupted put's leftover). */
export function isTempName(name: string): boolean {
  return /^\..*\.stagecoach-[0-9a-f]+\.tmp$/su.test(name);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** `yyyymmdd-hhmmss` of `date` in UTC. */
export function versionStamp(date: Date): string {
  return (
    `${pad(date.getUTCFullYear(), 4)}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}` +
    `-${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`
  );
}

/**
 * The name a kept previous copy of `name` gets: `<stem>.<yyyymmdd-hhmmss>.<ext>` from the old
 * copy's mtime in UTC (`report.20240102-030405.pdf`; no ext: `README.20240102-030405`; a
 * dotfile has no ext). `attempt` > 0 adds `-<attempt>` after the stamp to step past a name
 * already taken. The stem is cut so the whole stays within `maxNameBytes`.
 */
export function versionName(name: string, mtime: Date, attempt = 0, maxNameBytes = MAX_NAME_BYTES): string {
  const dot = name.lastIndexOf('.');
  const hasExt = dot > 0 && dot < name.length - 1;
  const stem = hasExt ? name.slice(0, dot) : name;
  const ext = hasExt ? name.slice(dot) : '';
  const tag = `.${versionStamp(mtime)}${attempt > 0 ? `-${attempt}` : ''}`;
  const budget = maxNameBytes - Buffer.byteLength(tag + ext, 'utf8');
  return `${truncateUtf8(stem, budget)}${tag}${truncateUtf8(ext, maxNameBytes - Buffer.byteLength(tag, 'utf8') - 1)}`;
}

/**
 * The key two remote paths share when the local target stores them as one file: the NFC form
 * (`mapLocalPath` normalises), so the NFC and NFD spellings of one name collide. Never throws.
 */
export function localPathKey(remotePath: string): string {
  return remotePath.normalize('NFC');
}
