/**
 * What an error from the local target means. Errors from the two sides of a put differ: a file
 * that cannot be written to the archive root (full, read-only, refused) stops the whole target,
 * while a source that cannot be read fails only that item. `put` wraps errors from the source
 * in SourceError (kit/classify.ts) so the two can be told apart.
 */
import { TargetError, type ErrorKind } from '../../errors.js';
import { BUSY, classifyCommon, commonRule, describe, errnoOf, type ClassifyRule } from '../kit/classify.js';
import type { Classified } from '../target.js';

export type { ClassifyRule } from '../kit/classify.js';

/** The TargetError the local target throws: code `local.<rule>`, message `<rule>: <detail>`. */
export function localError(targetId: string, rule: string, kind: ErrorKind, detail: string, cause?: unknown): TargetError {
  return new TargetError(targetId, kind, `${rule}: ${detail}`, { code: `local.${rule}`, cause });
}

const ARCHIVE: Record<string, ClassifyRule> = {
  ENOSPC: { kind: 'fatal', rule: 'archive-full' },
  EDQUOT: { kind: 'fatal', rule: 'archive-full' },
  EROFS: { kind: 'fatal', rule: 'archive-read-only' },
  EACCES: { kind: 'fatal', rule: 'archive-denied' },
  EPERM: { kind: 'fatal', rule: 'archive-denied' },
  // The name is fine by our rules but this filesystem refuses it (vfat/exfat/SMB: `:` `?` …).
  ENAMETOOLONG: { kind: 'fail-item', rule: 'archive-bad-name' },
  EINVAL: { kind: 'fail-item', rule: 'archive-bad-name' },
  EILSEQ: { kind: 'fail-item', rule: 'archive-bad-name' },
  // Something else occupies the path: a file where a folder is needed, or a folder at the name.
  ENOTDIR: { kind: 'fail-item', rule: 'archive-path-blocked' },
  EISDIR: { kind: 'fail-item', rule: 'archive-path-blocked' },
  EEXIST: { kind: 'fail-item', rule: 'archive-path-blocked' },
};

const UNKNOWN: ClassifyRule = { kind: 'retry', rule: 'unknown' };

/** The rule `classify` applies to `error`, without the detail. Pure. */
export function classifyRule(error: unknown): ClassifyRule {
  const common = commonRule(error, 'local');
  if (common) return common;
  const code = errnoOf(error);
  return (code && (ARCHIVE[code] ?? BUSY[code])) || UNKNOWN;
}

/**
 * Tells what an error thrown by the local target means. Pure. In order:
 * - first the rules every target shares (kit/classify.ts `commonRule`: its own TargetErrors,
 *   the source side, aborts);
 * - a bare fs error is the archive's: ENOSPC/EDQUOT `archive-full`, EROFS, EACCES/EPERM →
 *   fatal (the target is parked); ENAMETOOLONG/EINVAL/EILSEQ `archive-bad-name`,
 *   ENOTDIR/EISDIR/EEXIST `archive-path-blocked` → fail-item;
 * - EBUSY/EMFILE/ENFILE/EAGAIN/EINTR/ETIMEDOUT `busy` → retry; anything unknown → retry.
 * `reason` always starts with the rule's name, then `: ` and the error's message.
 */
export function classify(error: unknown): Classified {
  const common = classifyCommon(error, 'local');
  if (common) return common;
  const { kind, rule } = classifyRule(error);
  return { kind, reason: `${rule}: ${describe(error)}` };
}
