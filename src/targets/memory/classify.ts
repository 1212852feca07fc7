import { ShortReadError, TargetError } from '../../errors.js';
import type { Classified } from '../target.js';

/**
 * What an error thrown by the memory target means. Pure. A TargetError keeps its kind;
 * ShortReadError → fail-item `source-changed`; an AbortError → retry `aborted`; anything else
 * (a source that errored) → retry `unknown`. `reason` starts with the rule's name.
 */
export function classify(error: unknown): Classified {
  if (error instanceof TargetError) {
    const detail = error.message.replace(/^\[stagecoach\] \[[^\]]*\] /, '');
    return error.retryAfterMs !== undefined
      ? { kind: error.kind, reason: detail, retryAfterMs: error.retryAfterMs }
      : { kind: error.kind, reason: detail };
  }
  if (error instanceof ShortReadError) return { kind: 'fail-item', reason: `source-changed: ${error.message}` };
  const msg = error instanceof Error ? error.message : String(error);
  if (error instanceof Error && error.name === 'AbortError') return { kind: 'retry', reason: `aborted: ${msg}` };
  return { kind: 'retry', reason: `unknown: ${msg}` };
}
