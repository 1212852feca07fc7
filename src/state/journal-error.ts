import { StagecoachError } from '../errors.js';

/**
 * A call to the journal (the Store) failed: the error is the journal's, never a target's, so no
 * provider classifies it. Its code is `state.journal-failed` (a StagecoachError with a `state.*`
 * code passes through as is); the store's error is the `cause`, and the message says what was
 * being written. The pipeline stops with it, except on a full state disk (see the uploader spec).
 */
export class JournalError extends StagecoachError {
  constructor(what: string, cause: unknown) {
    super('state.journal-failed', `[stagecoach] [state] cannot ${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'JournalError';
  }
}

/** True for an error of the journal: a JournalError, or any StagecoachError with a `state.*` code. */
export function isJournalError(e: unknown): e is StagecoachError {
  return e instanceof StagecoachError && e.code.startsWith('state.');
}

/** The journal error in `e`'s cause chain (a target may wrap what a `saveResume` threw), if any. */
export function journalErrorIn(e: unknown): StagecoachError | undefined {
  const seen = new Set<unknown>();
  for (let x = e; typeof x === 'object' && x !== null && !seen.has(x); x = (x as { cause?: unknown }).cause) {
    seen.add(x);
    if (isJournalError(x)) return x;
  }
  return undefined;
}

/** Runs one journal call; its failure becomes a JournalError (a `state.*` error stays as it is). */
export async function journal<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw isJournalError(e) ? e : new JournalError(what, e);
  }
}
