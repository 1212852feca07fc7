/**
 * The pipeline's documented telemetry events. Logs and metrics subscribe to them on the bus;
 * nothing else reads them. Names are `noun.verb`.
 */
export type PipelineEvents = {
  /** A file was journaled with a pending delivery for each target. */
  'item.record': { root: string; relPath: string; targets: number };
  /** A file was skipped by the filters. */
  'item.skip': { root: string; relPath: string; reason: string };
  'upload.start': { target: string; deliveryId: number; remotePath: string; size: number };
  'upload.stop': { target: string; deliveryId: number; remotePath: string; bytes: number; bytesSent: number; durationMs: number; unchanged: boolean };
  /** An attempt failed and will be retried after `delayMs`. */
  'upload.retry': { target: string; deliveryId: number; attempt: number; reason: string; delayMs: number };
  /** A delivery ended without success: failed or skipped, with its reason. */
  'upload.exception': { target: string; deliveryId: number; remotePath: string; status: 'failed' | 'skipped'; reason: string };
  /** A target cannot work for now (retries exhausted, fatal error); the supervisor decides. */
  'target.trouble': { target: string; reason: string; kind: 'retry' | 'fatal' };
  'target.down': { target: string; reason: string; retryAt: number };
  'target.up': { target: string };
  /** Verify or a scrub found a copy missing or altered; `requeued`: its delivery went back to pending. */
  'verify.finding': { target: string; root: string; relPath: string; remotePath: string; problem: 'missing' | 'altered'; detail: string; requeued: boolean };
  /** The after-archive policy deleted or moved a local file (journaled first; its copies verified). */
  'file.remove': { root: string; relPath: string; bytes: number; action: 'delete' | 'move'; copies: number };
  /** A scrub round of one target ended (`errors`: lookups that failed). */
  'verify.stop': { target: string; checked: number; ok: number; missing: number; altered: number; errors: number; error: string | null; durationMs: number };
  /**
   * A journal write off a delivery's path failed (a target's health, putting a crashed
   * uploader's deliveries back): the pipeline goes on, and the next such write tries again.
   */
  'journal.error': { operation: string; target: string; error: unknown };
};

