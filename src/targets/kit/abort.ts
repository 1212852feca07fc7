/** Cancellation, the same in every target. */

/**
 * The error a call cancelled through its AbortSignal rejects with: name `AbortError` (what the
 * pipeline and every classify recognise), the signal's reason as `cause`. `what` names what was
 * cancelled: "the put" (default) or "the request".
 */
export function abortError(targetId: string, signal: AbortSignal, what = 'the put'): Error {
  const err = new Error(`[stagecoach] [${targetId}] aborted: ${what} was cancelled`, { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

/** True for an AbortError, ours or Node's. */
export function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}
