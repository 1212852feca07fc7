/**
 * What an error from the local target means. Errors from the two sides of a put differ: a file
 * that cannot be written to the archive root (full, read-only, refused) stops the whole target,
 * while a source that cannot be read fails only that item. `put` wraps errors from the source
 * in SourceError so the two can be told apart here.
 */
import { ShortReadError, StagecoachError, TargetError, type ErrorKind } from '../../errors.js';
import type { Classified } from '../target.js';

/**
 * An error raised while reading the source (the file being archived), not the archive. The
 * original error is the `cause`.
 */
export class SourceError extends StagecoachError {
  constructor(cause: unknown) {
    super('source.unreadable', `[stagecoach] the source could not be read: ${describe(cause)}`, { cause });
    this.name = 'SourceError';
  }
}

/** A rule of the table below: the kind it gives and its name, which starts every `reason`. */
export interface ClassifyRule {
  kind: ErrorKind;
  rule: string;
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

const SOURCE: Record<string, ClassifyRule> = {
  ENOENT: { kind: 'fail-item', rule: 'source-gone' },
  ENOTDIR: { kind: 'fail-item', rule: 'source-gone' },
  EISDIR: { kind: 'fail-item', rule: 'source-is-folder' },
  ELOOP: { kind: 'fail-item', rule: 'source-loop' },
  EACCES: { kind: 'fail-item', rule: 'source-denied' },
  EPERM: { kind: 'fail-item', rule: 'source-denied' },
  ENAMETOOLONG: { kind: 'fail-item', rule: 'source-bad-name' },
};

// Either side: the system is busy or short of handles; trying later is the cure.
const TRANSIENT: Record<string, ClassifyRule> = {
  EBUSY: { kind: 'retry', rule: 'busy' },
  EMFILE: { kind: 'retry', rule: 'busy' },
  ENFILE: { kind: 'retry', rule: 'busy' },
  EAGAIN: { kind: 'retry', rule: 'busy' },
  EINTR: { kind: 'retry', rule: 'busy' },
  ETIMEDOUT: { kind: 'retry', rule: 'busy' },
};

const UNKNOWN: ClassifyRule = { kind: 'retry', rule: 'unknown' };

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/** The rule `classify` applies to `error`, without the detail. Pure. */
export function classifyRule(error: unknown): ClassifyRule {
  if (error instanceof TargetError) return { kind: error.kind, rule: error.code.replace(/^local\./, '') };
  if (error instanceof ShortReadError) return { kind: 'fail-item', rule: 'source-changed' };
  if (isAbort(error)) return { kind: 'retry', rule: 'aborted' };
  if (error instanceof SourceError) {
    if (error.cause instanceof ShortReadError) return { kind: 'fail-item', rule: 'source-changed' };
    const code = errnoOf(error.cause);
    return (code && (SOURCE[code] ?? TRANSIENT[code])) || { kind: 'retry', rule: 'source-unknown' };
  }
  const code = errnoOf(error);
  return (code && (ARCHIVE[code] ?? TRANSIENT[code])) || UNKNOWN;
}

/**
 * Tells what an error thrown by the local target means. Pure. In order:
 * - a TargetError keeps its kind (it was classified when thrown);
 * - ShortReadError (the file changed while read) → fail-item `source-changed`;
 * - an AbortError → retry `aborted` (the delivery stays pending);
 * - SourceError by its cause's errno: ENOENT/ENOTDIR `source-gone`, EISDIR, ELOOP,
 *   EACCES/EPERM `source-denied` → fail-item; busy errnos → retry; anything else → retry;
 * - a bare fs error is the archive's: ENOSPC/EDQUOT `archive-full`, EROFS, EACCES/EPERM →
 *   fatal (the target is parked); ENAMETOOLONG/EINVAL/EILSEQ `archive-bad-name`,
 *   ENOTDIR/EISDIR/EEXIST `archive-path-blocked` → fail-item;
 * - EBUSY/EMFILE/ENFILE/EAGAIN/EINTR/ETIMEDOUT `busy` → retry; anything unknown → retry.
 * `reason` always starts with the rule's name, then `: ` and the error's message.
 */
export function classify(error: unknown): Classified {
  const { kind, rule } = classifyRule(error);
  if (error instanceof TargetError) {
    const detail = error.message.replace(/^\[stagecoach\] \[[^\]]*\] /, '');
    const reason = detail.startsWith(`${rule}: `) ? detail : `${rule}: ${detail}`;
    return error.retryAfterMs !== undefined ? { kind, reason, retryAfterMs: error.retryAfterMs } : { kind, reason };
  }
  const detail = error instanceof SourceError ? describe(error.cause) : describe(error);
  return { kind, reason: `${rule}: ${detail}` };
}
