/**
 * What every provider's `classify` shares: the errors a target raises itself, and the source
 * side of a put. A provider's classify.ts asks `commonRule` first and holds only its own rules
 * (its HTTP answers, its SDK's errors, its quirks) for what `commonRule` leaves to it.
 *
 * The rule names are the same in every target: `source-changed`, `source-gone`,
 * `source-is-folder`, `source-loop`, `source-denied`, `source-bad-name`, `busy`,
 * `source-unreadable`, `aborted`, `closed`.
 */
import { ShortReadError, StagecoachError, TargetError, type ErrorKind } from '../../errors.js';
import type { Classified } from '../target.js';
import { abortError, isAbort } from './abort.js';

/** A rule of a classify table: the kind it gives and its name, which starts every `reason`. */
export interface ClassifyRule {
  kind: ErrorKind;
  rule: string;
  retryAfterMs?: number;
}

/** The message of any thrown value. */
export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * An error raised while reading the source (the file being archived), not the target: a target
 * wraps what its source stream throws in it, so that classify can tell the two sides apart. The
 * original error is the `cause`.
 */
export class SourceError extends StagecoachError {
  constructor(cause: unknown, redact: (text: string) => string = (text) => text) {
    super('source.unreadable', `[stagecoach] the source could not be read: ${redact(describe(cause))}`, { cause });
    this.name = 'SourceError';
  }
}

/** The system is busy or short of handles (on either side of a put): trying later is the cure. */
export const BUSY: Readonly<Record<string, ClassifyRule>> = {
  EBUSY: { kind: 'retry', rule: 'busy' },
  EMFILE: { kind: 'retry', rule: 'busy' },
  ENFILE: { kind: 'retry', rule: 'busy' },
  EAGAIN: { kind: 'retry', rule: 'busy' },
  EINTR: { kind: 'retry', rule: 'busy' },
  ETIMEDOUT: { kind: 'retry', rule: 'busy' },
};

/** A source that cannot be read fails only its item; one that is busy is tried again. */
const SOURCE: Record<string, ClassifyRule> = {
  ...BUSY,
  ENOENT: { kind: 'fail-item', rule: 'source-gone' },
  ENOTDIR: { kind: 'fail-item', rule: 'source-gone' },
  EISDIR: { kind: 'fail-item', rule: 'source-is-folder' },
  ELOOP: { kind: 'fail-item', rule: 'source-loop' },
  EACCES: { kind: 'fail-item', rule: 'source-denied' },
  EPERM: { kind: 'fail-item', rule: 'source-denied' },
  ENAMETOOLONG: { kind: 'fail-item', rule: 'source-bad-name' },
};

/** The errno (`ENOENT`, …) an error carries, if any. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/**
 * The rules every target shares, in this order; undefined for any other error (the provider's
 * own rules decide):
 * - a TargetError keeps its kind and wait (it was classified when thrown); its rule is its code
 *   without `<provider>.`;
 * - ShortReadError (the file changed while read) → fail-item `source-changed`;
 * - an AbortError → retry `aborted` (the delivery stays pending);
 * - SourceError by its cause: a ShortReadError → `source-changed`; ENOENT/ENOTDIR
 *   `source-gone`, EISDIR `source-is-folder`, ELOOP `source-loop`, EACCES/EPERM
 *   `source-denied`, ENAMETOOLONG `source-bad-name` → fail-item; EBUSY, EMFILE, ENFILE, EAGAIN,
 *   EINTR, ETIMEDOUT `busy` → retry; anything else → retry `source-unreadable`.
 */
export function commonRule(error: unknown, provider: string): ClassifyRule | undefined {
  if (error instanceof TargetError) {
    const rule = error.code.startsWith(`${provider}.`) ? error.code.slice(provider.length + 1) : error.code;
    return error.retryAfterMs === undefined ? { kind: error.kind, rule } : { kind: error.kind, rule, retryAfterMs: error.retryAfterMs };
  }
  if (error instanceof ShortReadError) return { kind: 'fail-item', rule: 'source-changed' };
  if (isAbort(error)) return { kind: 'retry', rule: 'aborted' };
  if (error instanceof SourceError) {
    if (error.cause instanceof ShortReadError) return { kind: 'fail-item', rule: 'source-changed' };
    const code = errnoOf(error.cause);
    return (code !== undefined ? SOURCE[code] : undefined) ?? { kind: 'retry', rule: 'source-unreadable' };
  }
  return undefined;
}

/**
 * What happened, for a `reason`, of an error `commonRule` knows: a TargetError's message
 * without its `[stagecoach] [id] ` prefix and its rule; a SourceError's cause; any other's
 * message.
 */
export function commonDetail(error: unknown, rule: string): string {
  if (error instanceof TargetError) {
    const detail = error.message.replace(/^\[stagecoach\] \[[^\]]*\] /, '');
    return detail.startsWith(`${rule}: `) ? detail.slice(rule.length + 2) : detail;
  }
  if (error instanceof SourceError) return describe(error.cause);
  return describe(error);
}

/** `classify` for what `commonRule` knows (reason `<rule>: <detail>`); undefined for the rest. */
export function classifyCommon(error: unknown, provider: string): Classified | undefined {
  const r = commonRule(error, provider);
  if (r === undefined) return undefined;
  const reason = `${r.rule}: ${commonDetail(error, r.rule)}`;
  return r.retryAfterMs === undefined ? { kind: r.kind, reason } : { kind: r.kind, reason, retryAfterMs: r.retryAfterMs };
}

/**
 * The first step of every target's error wrapper (what a method throws): the error to throw as
 * it is, or undefined when the provider must convert it. A call whose signal fired rejects with
 * an AbortError; TargetError, ShortReadError and AbortError pass; a SourceError around a
 * ShortReadError is that ShortReadError.
 */
export function passThrough(err: unknown, targetId: string, signal?: AbortSignal): unknown {
  if (signal?.aborted) return isAbort(err) ? err : abortError(targetId, signal);
  if (err instanceof TargetError || err instanceof ShortReadError || isAbort(err)) return err;
  if (err instanceof SourceError && err.cause instanceof ShortReadError) return err.cause;
  return undefined;
}

