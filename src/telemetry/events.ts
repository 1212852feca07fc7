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
  /**
   * A journal write off a delivery's path failed (a target's health, putting a crashed
   * uploader's deliveries back): the pipeline goes on, and the next such write tries again.
   */
  'journal.error': { operation: string; target: string; error: unknown };
};

