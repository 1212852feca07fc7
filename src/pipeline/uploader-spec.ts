import type { Logger } from 'pino';
import type { TargetConfig } from '../config/index.js';
import { SharedTokenBucket, TokenBucket } from '../retry/rate-limit.js';
import type { DelayPolicy } from '../retry/delay.js';
import { ParkError, subscribe, type ChildSpec, type Subscription } from '../stage/index.js';
import { openFileLimit } from '../http/connections.js';
import { diskFullError } from '../state/disk-full.js';
import { isJournalError } from '../state/journal-error.js';
import type { Store } from '../state/store.js';
import type { EventBus } from '../telemetry/bus.js';
import type { Target } from '../targets/target.js';
import type { AllEvents } from './topology.js';
import type { Archiver } from './archiver.js';
import { TargetTroubleError } from './deliver.js';
import { Uploader } from './uploader.js';

/** An uploader that is running, and its subscription to the archiver (for the terminator). */
export interface RunningUploader {
  uploader: Uploader;
  sub: Subscription;
}

export interface UploaderSpecOptions {
  /** The target, read at each start (Pipeline.reconnect may replace it; its id stays). */
  target: () => Target;
  /** The target's demand and limits. */
  config: Pick<TargetConfig, 'maxDemand' | 'minDemand' | 'requestsPerSecond' | 'bytesPerSecond'>;
  store: Store;
  archiver: Archiver;
  retry: DelayPolicy & { retries: number };
  /** See DeliverContext.onCollision. */
  onCollision?: 'rename' | 'fail';
  /** The supervisor's first parking period: the least a target in trouble is parked for. */
  coolDownMs: number;
  /** The state folder, to tell a full disk from other journal errors. */
  stateDir: string;
  log: Logger;
  bus: EventBus<AllEvents>;
  /** Where the running uploader is kept under its target id, while it runs. */
  running: Map<string, RunningUploader>;
  /** Told of a journal error that is not a full disk: the pipeline cannot go on. */
  onJournalError(error: unknown): void;
}

/**
 * A target's demand within the process's open-file limit: an upload in flight holds up to two
 * descriptors (its source, and its temp file or its connection), so one target's uploads in flight
 * are kept to an eighth of the limit, leaving the rest to the other targets, the watcher, the
 * journal and the status server. (Node raises its soft limit to the hard one at start; a hard
 * limit of 1024, as `ulimit -n 1024` or a container's `--ulimit nofile=1024` sets, gives 128.)
 * Beyond it puts fail with EMFILE: at the local target's default of 512, a 10,000-file backfill
 * under a limit of 1024 archived 9,800 files. Unchanged when the limit is not known.
 */
export function demandWithin(config: Pick<TargetConfig, 'maxDemand' | 'minDemand'>, fdLimit: number | null): { maxDemand: number; minDemand?: number } {
  const cap = fdLimit === null ? Infinity : Math.max(4, Math.floor(fdLimit / 8));
  if (config.maxDemand <= cap) return { maxDemand: config.maxDemand, ...(config.minDemand === undefined ? {} : { minDemand: config.minDemand }) };
  return { maxDemand: cap, ...(config.minDemand === undefined ? {} : { minDemand: Math.min(config.minDemand, cap - 1) }) };
}

/**
 * The supervisor's child spec for one target's uploader. `start` takes back what a predecessor
 * held (in-flight deliveries → pending), starts an uploader and subscribes it to the archiver
 * under the target id. The target's rate budgets are made once and kept across restarts.
 *
 * A crash is translated before the supervisor hears of it (the uploads still running are aborted
 * first, and the deliveries sent to it go back to pending, so status tells the truth):
 * - TargetTroubleError (retries exhausted, fatal for the target): `target.trouble`, then a
 *   ParkError with backoff (the doubling cool-down, at least the provider's Retry-After);
 * - a journal error on a full state disk: a ParkError with that reason (the journal is intact;
 *   the target is tried again after the cool-down and resumes once there is space);
 * - any other journal error: `onJournalError` (the daemon stops with the reason), and the crash;
 * - anything else (a bug): logged, and the crash as is (restarted, within the restart intensity).
 */
export function uploaderSpec(o: UploaderSpecOptions): ChildSpec {
  const { store, bus } = o;
  const id = o.target().id;
  const tlog = o.log.child({ stage: 'uploader', target: id });
  // On a shared journal the rates are the fleet's: every daemon spends from the journal's buckets.

  const bucket = (kind: string, perSecond: number) =>
    store.takeTokens ? new SharedTokenBucket((r, b, n) => store.takeTokens!(`${id}:${kind}`, r, b, n), perSecond) : new TokenBucket(perSecond);
  const limits = {
    requests: o.config.requestsPerSecond ? bucket('requests', o.config.requestsPerSecond) : undefined,
    bytes: o.config.bytesPerSecond ? bucket('bytes', o.config.bytesPerSecond) : undefined,
  };
  const fdLimit = openFileLimit();
  const demand = demandWithin(o.config, fdLimit);
  if (demand.maxDemand < o.config.maxDemand) {
    tlog.warn(
      { maxDemand: o.config.maxDemand, using: demand.maxDemand, openFileLimit: fdLimit },
      `maxDemand ${o.config.maxDemand} needs more open files than this process may have (limit ${fdLimit}; an upload in flight holds up to two): ${demand.maxDemand} at once instead. Raise the limit (ulimit -n, docker run --ulimit nofile=, LimitNOFILE= in a systemd unit) to use more`,
    );
  }

  const translate = (error: unknown): unknown => {
    if (error instanceof TargetTroubleError) {
      bus.emit('target.trouble', { target: id, reason: error.message, kind: error.kind });
      // A lasting reason (full account, revoked token, a cloud down for hours): the doubling
      // cool-down, at least as long as the provider asked.
      return new ParkError(error.message, error.retryAfterMs ?? 0, { cause: error, backoff: true });
    }
    if (isJournalError(error)) {
      const full = diskFullError(error, o.stateDir);
      if (full) return new ParkError(full.message, o.coolDownMs, { cause: full });
      o.onJournalError(error);
      return error;
    }
    tlog.error({ err: error }, 'uploader crashed');
    return error;
  };

  return {
    id,
    async start() {
      const target = o.target();
      // A restarted uploader first takes back what its predecessor held.
      await store.resetInFlight(target.id);
      const uploader = new Uploader({
        target,
        store,
        retry: o.retry,
        log: tlog,
        bus,
        limits,
        onCollision: o.onCollision,
        afterDelivery: () => o.archiver.poke(target.id),
      });
      await uploader.start();
      const sub = subscribe(uploader, o.archiver, { id: target.id, ...demand });
      o.running.set(target.id, { uploader, sub });
      return {
        stop: () => uploader.stop(),
        onCrash: (cb) =>
          uploader.onCrash((error) => {
            void (async () => {
              await uploader.abortAll(error);
              // Deliveries sent to it but not yet started were dropped with the stage: back to
              // pending now. If the journal refuses, the next start does it (and says so).
              try {
                await store.resetInFlight(target.id);
              } catch (e) {
                tlog.error({ err: e }, 'cannot put the crashed uploader’s deliveries back to pending; its next start does');
                bus.emit('journal.error', { operation: 'put a crashed uploader’s deliveries back to pending', target: id, error: e });
              }
              cb(translate(error));
            })();
          }),
      };
    },
  };
}
