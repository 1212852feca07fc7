import type { Logger } from 'pino';
import type { Stage, Subscription, Supervisor } from '../stage/index.js';
import type { Store } from '../state/store.js';
import type { EventBus } from '../telemetry/bus.js';
import type { Target } from '../targets/target.js';
import type { Archiver } from './archiver.js';
import type { AllEvents } from './topology.js';
import type { RunningUploader } from './uploader-spec.js';
import type { WatchProducer } from './watcher.js';

export interface TerminatorParts {
  /** Stops taking `stagecoach retry` requests. */
  stopRetryRequests: () => void;
  watcher: WatchProducer;
  /** The archiver's subscription to the watcher. */
  intake: Subscription;
  archiver: Archiver;
  supervisor: Supervisor;
  /** The uploaders running, by target id. */
  running: ReadonlyMap<string, RunningUploader>;
  targets: readonly Target[];
  store: Store;
  shutdownMs: number;
  log: Logger;
}

/**
 * The pipeline's shutdown (Broadway's Terminator). `stop()`, idempotent (the first call's
 * promise): no more `stagecoach retry` requests are taken; the watcher stops watching and the archiver's intake is cancelled; every uploader
 * stops asking for work, all at once, and stops waiting to retry (those deliveries go back to
 * pending); the uploads under way get `shutdownMs` to finish, and those
 * still running then are aborted (their deliveries go back to pending with their resume handles);
 * the supervisor closes (no restart from then on); then the archiver and the watcher stop, the
 * targets and the store close.
 */
export class Terminator {
  #stopping: Promise<void> | undefined;

  constructor(private readonly parts: TerminatorParts) {}

  stop(): Promise<void> {
    return (this.#stopping ??= this.#stop());
  }

  async #stop(): Promise<void> {
    const { stopRetryRequests, watcher, intake, archiver, supervisor, running, targets, store, shutdownMs, log } = this.parts;
    stopRetryRequests();
    await watcher.closeSource();
    intake.cancel();
    // Stop asking for work first, everywhere at once; then let what is in flight finish.
    for (const { sub } of running.values()) sub.cancel();
    // Uploads waiting to retry go back to pending at once; those under way get shutdownMs.
    for (const { uploader } of running.values()) uploader.stopRetrying();
    const deadline = setTimeout(() => {
      log.warn({ shutdownMs }, 'shutdown deadline: stopping the uploads still running; they resume at next start');
      for (const { uploader } of running.values()) void uploader.abortAll(new Error('shutdown deadline'));
    }, shutdownMs);
    try {
      await supervisor.close(shutdownMs + 5_000);
    } finally {
      clearTimeout(deadline);
    }
    await archiver.stop();
    await watcher.stop();
    await Promise.allSettled(targets.map((t) => t.close()));
    await store.close();
  }
}

/**
 * The latch of a pipeline that cannot go on: `failed` rejects with the first error given to
 * `fail`; later ones are logged only. `crashed(stage)` is the crash listener of a stage no
 * supervisor watches (the watcher, the archiver): it emits `stage.crash` (the stage does not
 * when someone listens) and fails the pipeline.
 */
export function failureLatch(bus: EventBus<AllEvents>, log: Logger) {
  let reject: (e: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, r) => {
    reject = r;
  });
  // Marked handled: every error is logged (fatal) here first, and the caller reads `failed`.
  failed.catch(() => undefined);
  const fail = (error: unknown, stage: string) => {
    log.fatal({ err: error, stage }, 'the pipeline cannot go on');
    reject(error);
  };
  const crashed = (stage: Stage) => (error: unknown) => {
    bus.emit('stage.crash', { stage: stage.name, error, restarts: 0 });
    fail(error, stage.name);
  };
  return { failed, fail, crashed };
}
