import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { fileStatOf } from './watch-source.js';
import { rootIdentity, waitForRoot, waitingReason } from './roots.js';
import { rawJoin } from './walk.js';
import { StagecoachError } from '../errors.js';
import { RetriesExhaustedError, withRetry } from '../retry/pacer.js';
import { throttleStream, type TokenBucket } from '../retry/rate-limit.js';
import type { DelayPolicy } from '../retry/delay.js';
import type { Delivery, Store } from '../state/store.js';
import type { Emitter } from '../telemetry/bus.js';
import type { PipelineEvents } from '../telemetry/events.js';
import type { PutResult, Target } from '../targets/target.js';
import { journal, journalErrorIn } from '../state/journal-error.js';

export interface DeliverContext {
  target: Target;
  store: Store;
  retry: DelayPolicy & { retries: number };
  log: Logger;
  bus?: Emitter<PipelineEvents>;
  /** Aborted on shutdown or when the uploader stops: the upload stops, the delivery goes back to pending. */
  signal: AbortSignal;
  /** The target's limits: uploads started per second, and bytes read for it per second. */
  limits?: TargetLimits;
  /** Aborted at the start of a shutdown: a wait between retries ends, the delivery goes back to pending. */
  waitSignal?: AbortSignal;
}

export interface TargetLimits {
  requests?: TokenBucket;
  bytes?: TokenBucket;
}

/**
 * The target cannot work for now: its retries ran out, or it said the error is fatal (revoked
 * credentials, storage full). The delivery was put back to pending; the uploader crashes with
 * this error so that the supervisor restarts or parks the target.
 */
export class TargetTroubleError extends StagecoachError {
  constructor(
    readonly target: string,
    readonly kind: 'retry' | 'fatal',
    reason: string,
    readonly retryAfterMs: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(kind === 'fatal' ? 'target.fatal' : 'target.unavailable', `[stagecoach] [${target}] ${reason}`, options);
    this.name = 'TargetTroubleError';
  }
}

export type DeliverOutcome = 'done' | 'failed' | 'skipped' | 'released';

/**
 * A delivery whose root folder is missing keeps its slot until the folder is back, then is
 * delivered from the start; a shutdown meanwhile puts it back to pending.
 */
async function waitForRootThenDeliver(d: Delivery, ctx: DeliverContext): Promise<DeliverOutcome> {
  ctx.log.debug({ deliveryId: d.id, relPath: d.relPath, root: d.rootPath }, 'the watched folder is missing: the delivery waits for it');
  try {
    await waitForRoot(d.rootPath, ctx.signal);
  } catch {
    await journal('put a delivery back to pending', () => ctx.store.release(d.id, waitingReason(d.rootPath)));
    return 'released';
  }
  return deliver(d, ctx);
}

const CHUNK = 1 << 20;
const MIN_CHUNK = 4 * 1024;

/**
 * Delivers one leased delivery to its target and records the outcome in the store. The source
 * is re-checked first: vanished → skipped; changed since it was journaled → failed with a reason
 * (the watcher journals the new version once it is stable). Then `put` under the retry policy.
 * Per-item errors fail the delivery with the target's reason; a shutdown puts it back to pending;
 * a target-level problem puts it back to pending and throws TargetTroubleError. Only the provider
 * call is classified by the target: a journal call that fails (recording the outcome, saving a
 * resume handle) throws its JournalError (`state.*`), whatever the upload did.
 */
export async function deliver(d: Delivery, ctx: DeliverContext): Promise<DeliverOutcome> {
  const { target, store, log } = ctx;
  // A name that is not valid UTF-8 is opened by its bytes (relPath holds its escaped form).
  const abs = d.rawRelPath ? rawJoin(d.rootPath, d.rawRelPath) : path.join(d.rootPath, ...d.relPath.split('/'));
  // `routine`: nothing is lost (a file that changed again is archived once it is stable): info, not warn.
  const end = async (status: 'failed' | 'skipped', reason: string, routine = false): Promise<DeliverOutcome> => {
    if (status === 'failed') await journal('record a failed delivery', () => store.fail(d.id, d.generation, reason));
    else await journal('record a skipped delivery', () => store.skip(d.id, d.generation, reason));
    log[routine ? 'info' : 'warn']({ deliveryId: d.id, relPath: d.relPath, reason }, status === 'failed' ? 'delivery failed' : 'delivery skipped');
    ctx.bus?.emit('upload.exception', { target: target.id, deliveryId: d.id, remotePath: d.remotePath, status, reason });
    return status;
  };
  const release = (reason: string | null) => journal('put a delivery back to pending', () => store.release(d.id, reason));

  try {
    const s = await stat(abs);
    if (!s.isFile()) return end('skipped', 'source is no longer a regular file');
    const st = fileStatOf(s);
    if (st.size !== d.size || st.mtimeMs !== d.mtimeMs) {
      return end('failed', `source changed since it was queued (size ${d.size} → ${st.size}); it is archived again once it is stable`, true);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      // Its whole root is gone (unmounted): the file is not, it waits for the root's return.
      if ((await rootIdentity(d.rootPath)) === null) return waitForRootThenDeliver(d, ctx);
      return end('skipped', 'source vanished before upload');
    }
    return end('failed', `cannot read source: ${code ?? (e as Error).message}`);
  }

  const started = Date.now();
  ctx.bus?.emit('upload.start', { target: target.id, deliveryId: d.id, remotePath: d.remotePath, size: d.size });
  let resume = d.resumeHandle;
  let result: PutResult;
  // Only the provider call is classified by the provider: a journal error is the journal's.
  try {
    const { requests, bytes } = ctx.limits ?? {};
    const open = (start = 0) => {
      // A read buffer the size of the file (up to 1 MiB, at least 4 KiB): each read allocates
      // one, and 1 MiB (later 64 KiB) for every 4 KiB file made garbage collection the cost of
      // small files.
      const file = createReadStream(abs, { start, highWaterMark: Math.min(CHUNK, Math.max(MIN_CHUNK, d.size - start + 1)) });
      if (!bytes) return file;
      // Errors of the file must reach the reader of the throttled stream.
      const paced = throttleStream(bytes, ctx.signal);
      file.once('error', (e) => paced.destroy(e));
      return file.pipe(paced);
    };
    result = await withRetry(
      async () => {
        await requests?.take(1, ctx.signal);
        return target.put({
          remotePath: d.remotePath,
          size: d.size,
          mtimeMs: d.mtimeMs,
          open,
          resume,
          saveResume: async (h) => {
            resume = h;
            await journal('save a resume handle', () => store.saveResume(d.id, h));
          },
          signal: ctx.signal,
        });
      },
      {
        ...ctx.retry,
        classify: (e) => (journalErrorIn(e) ? { kind: 'fatal', reason: 'the journal failed' } : target.classify(e)),
        signal: ctx.signal,
        waitSignal: ctx.waitSignal,
        onRetry: async ({ attempt, classified, delayMs }) => {
          await journal('note a failed attempt', () => store.noteAttempt(d.id, classified.reason));
          // At debug: one warn when the target starts failing, one info when it recovers (target-report.ts).
          log.debug({ deliveryId: d.id, attempt, delayMs, reason: classified.reason }, 'upload attempt failed; retrying');
          ctx.bus?.emit('upload.retry', { target: target.id, deliveryId: d.id, attempt, reason: classified.reason, delayMs });
        },
      },
    );
  } catch (error) {
    const journalError = journalErrorIn(error);
    if (journalError) throw journalError;
    if (ctx.signal.aborted) {
      await release('interrupted: the uploader stopped before the upload finished');
      return 'released';
    }
    if (ctx.waitSignal?.aborted && error === ctx.waitSignal.reason) {
      await release('interrupted: stopped while waiting to retry');
      return 'released';
    }
    if (error instanceof RetriesExhaustedError) {
      await release(error.message);
      throw new TargetTroubleError(target.id, 'retry', error.message, error.classified.retryAfterMs, { cause: error });
    }
    const c = target.classify(error);
    if (c.kind === 'fatal') {
      await release(c.reason);
      throw new TargetTroubleError(target.id, 'fatal', c.reason, c.retryAfterMs, { cause: error });
    }
    // Moved or deleted while it uploaded: not a failure. The watcher pairs a move with the new
    // path, which is journaled and archived on its own.
    if (await gone(abs)) {
      if ((await rootIdentity(d.rootPath)) === null) return waitForRootThenDeliver(d, ctx);
      return end('skipped', 'source vanished during its upload: moved or deleted (a moved file is archived at its new path)');
    }
    return end('failed', c.reason);
  }
  if (result.size !== d.size) return end('failed', `remote copy holds ${result.size} bytes, expected ${d.size}`);
  await journal('record a delivery done', () => store.complete(d.id, d.generation, { remoteId: result.remoteId, remoteHash: result.hash, bytesSent: result.bytesSent }));
  const durationMs = Date.now() - started;
  log.debug({ deliveryId: d.id, remotePath: d.remotePath, bytesSent: result.bytesSent, durationMs, unchanged: result.unchanged }, 'archived');
  ctx.bus?.emit('upload.stop', {
    target: target.id,
    deliveryId: d.id,
    remotePath: d.remotePath,
    bytes: d.size,
    bytesSent: result.bytesSent,
    durationMs,
    unchanged: result.unchanged,
  });
  return 'done';
}

/** Whether nothing is at the source path any more (a stat that fails with ENOENT or ENOTDIR). */
async function gone(abs: string | Buffer): Promise<boolean> {
  try {
    await stat(abs);
    return false;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR';
  }
}
