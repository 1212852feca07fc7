import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { createPathFilter, type PathFilter } from '../archive/filters.js';
import { validateTemplate } from '../archive/remote-path.js';
import type { Config, TargetConfig } from '../config/index.js';
import { TokenBucket } from '../retry/rate-limit.js';
import { ParkError, subscribe, Supervisor, type ChildSpec, type Subscription } from '../stage/index.js';
import { openSqliteStore } from '../state/index.js';
import type { Store } from '../state/store.js';
import { EventBus, type StageEvents } from '../telemetry/bus.js';
import type { PipelineEvents } from '../telemetry/events.js';
import { StagecoachError, TargetError } from '../errors.js';
import { createTarget } from '../targets/registry.js';
import { createUnavailableTarget } from '../targets/unavailable.js';
import type { Target } from '../targets/target.js';
import { Archiver } from './archiver.js';
import { TargetTroubleError } from './deliver.js';
import { watchRetryRequests } from './retry-requests.js';
import { writeRootPresence } from './roots.js';
import { Uploader } from './uploader.js';
import { WatchProducer } from './watcher.js';

export type AllEvents = StageEvents & PipelineEvents;

export interface PipelineOptions {
  log: Logger;
  /** `watch`: the daemon. `once`: archive what is there, then `idle()` resolves. */
  mode: 'watch' | 'once';
  /** Targets made by the caller instead of from the config (tests); matched by id. */
  targets?: Target[];
  bus?: EventBus<AllEvents>;
  host?: string;
}

/** The running pipeline. topology.ts is the only file that knows the graph. */
export interface Pipeline {
  readonly store: Store;
  readonly bus: EventBus<AllEvents>;
  readonly supervisor: Supervisor;
  readonly watcher: WatchProducer;
  readonly archiver: Archiver;
  readonly targets: readonly Target[];
  /** Once mode: resolves when every file found is archived or failed on every target not parked. */
  idle(): Promise<void>;
  /**
   * Rejects if the watcher or the archiver crashes (the journal cannot be written: disk full, a
   * bug). Uploaders are supervised; these two are not, so the daemon stops and says why.
   */
  readonly failed: Promise<never>;
  /**
   * Makes the target `id` again from the config (after a sign-in saved its tokens: a target that
   * was not signed in is a stand-in that only parks) and, if it is parked, starts it now. Its
   * backlog is served without a restart of the daemon. Rejects for an unknown id, or when the
   * target cannot be made (the reason, as at start).
   */
  reconnect(id: string): Promise<void>;
  /**
   * Orderly shutdown: stop the watcher, stop taking work, let uploads in flight finish within
   * `shutdownMs` (those still running then are stopped and go back to pending, resumable), then
   * close the store and the targets. Idempotent.
   */
  stop(): Promise<void>;
}

/**
 * Makes a target from its config. One that cannot work for now (not signed in, credentials
 * refused: a fatal TargetError) is replaced by a stand-in that parks with that reason, so one
 * target's missing token never stops the daemon; any other error (a bad config) does.
 */
async function makeTarget(tc: TargetConfig, stateDir: string, log: Logger): Promise<Target> {
  try {
    return await createTarget(tc, { log: log.child({ target: tc.id }), stateDir });
  } catch (e) {
    if (e instanceof TargetError && e.kind === 'fatal') {
      log.error({ target: tc.id, reason: e.message }, 'target unavailable: it stays parked until this is fixed');
      return createUnavailableTarget(tc.id, tc.type, e);
    }
    throw e;
  }
}

/**
 * Builds and starts the pipeline: store, targets, uploaders under the supervisor, archiver,
 * watcher — in that order, so the archiver takes no file before every uploader has subscribed.
 */
export async function startPipeline(config: Config, opts: PipelineOptions): Promise<Pipeline> {
  const log = opts.log;
  validateTemplate(config.remotePath);
  const bus = opts.bus ?? new EventBus<AllEvents>();
  const store = await openSqliteStore({ dir: config.stateDir });
  const reset = await store.resetInFlight();
  if (reset > 0) log.info({ deliveries: reset }, 'resuming deliveries that were in flight when the daemon stopped');

  const targets: Target[] = [];
  try {
    for (const tc of config.targets) {
      const given = opts.targets?.find((t) => t.id === tc.id);
      const stateDir = path.join(config.stateDir, 'targets', tc.id);
      targets.push(given ?? (await makeTarget(tc, stateDir, log)));
    }
  } catch (e) {
    await Promise.allSettled(targets.map((t) => t.close()));
    await store.close();
    throw e;
  }
  const targetIds = targets.map((t) => t.id);

  for (const r of config.roots) {
    // Only where asked (the embedded default's inbox): a missing root is otherwise a typo or an
    // unmounted share, and making it would watch an empty folder or fill the system volume.
    if (!r.createRoot) continue;
    const made = await mkdir(r.path, { recursive: true });
    if (made !== undefined) log.warn({ root: r.name, path: r.path }, 'the watched folder did not exist: created it (createRoot: true)');
  }

  const filters = new Map<string, PathFilter>(config.roots.map((r) => [r.name, createPathFilter(r.filters)]));
  const archiver = new Archiver({
    store,
    targets: targetIds,
    template: config.remotePath,
    filters,
    log: log.child({ stage: 'archiver' }),
    bus,
    host: opts.host ?? os.hostname(),
  });
  let fail: (e: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => undefined);
  const watcher = new WatchProducer({
    roots: config.roots.map((r) => ({
      name: r.name,
      path: r.path,
      filter: filters.get(r.name)!,
      polling: r.polling,
      pollIntervalMs: r.pollIntervalMs,
      followSymlinks: r.followSymlinks,
    })),
    stableMs: config.stableMs,
    rescanMs: config.watcher.rescanMs,
    index: (root) => store.fileIndex(root),
    log: log.child({ stage: 'watcher' }),
    bus,
    // The status CLI is another process: each change of the roots' status is written for it.
    onStatusChange: () => {
      writeRootPresence(config.stateDir, watcher.source.roots()).catch((e: unknown) =>
        log.warn({ err: e }, 'cannot record the state of the roots for `status`'),
      );
    },
    // The journal could not be read for a scan: the pipeline cannot go on (as when the archiver
    // cannot write it).
    onError: (e) => {
      log.fatal({ err: e, stage: 'watcher' }, 'the pipeline cannot go on');
      fail(e);
    },
  });

  const uploaders = new Map<string, { uploader: Uploader; sub: Subscription }>();
  const children: ChildSpec[] = config.targets.map((tc, i) => {
    const target = targets[i]!;
    // One budget per target, kept across restarts of its uploader.
    const limits = {
      requests: tc.requestsPerSecond ? new TokenBucket(tc.requestsPerSecond) : undefined,
      bytes: tc.bytesPerSecond ? new TokenBucket(tc.bytesPerSecond) : undefined,
    };
    const tlog = log.child({ stage: 'uploader', target: target.id });
    return {
      id: target.id,
      async start() {
        // Read at each start: reconnect() may have replaced it.
        const target = targets[i]!;
        // A restarted uploader first takes back what its predecessor held.
        await store.resetInFlight(target.id);
        const uploader = new Uploader({
          target,
          store,
          retry: config.retry,
          log: tlog,
          bus,
          limits,
          afterDelivery: () => archiver.poke(target.id),
        });
        await uploader.start();
        const sub = subscribe(uploader, archiver, { id: target.id, maxDemand: tc.maxDemand, minDemand: tc.minDemand });
        uploaders.set(target.id, { uploader, sub });
        return {
          stop: () => uploader.stop(),
          onCrash: (cb) =>
            uploader.onCrash((error) => {
              void uploader.abortAll(error).then(async () => {
                // Deliveries sent to it but not yet started were dropped with the stage: back to
                // pending now, so status tells the truth while the target is parked.
                await store.resetInFlight(target.id).catch(() => undefined);
                if (error instanceof TargetTroubleError) {
                  bus.emit('target.trouble', { target: target.id, reason: error.message, kind: error.kind });
                  // A lasting reason (full account, revoked token, a cloud down for hours): the
                  // doubling cool-down, at least as long as the provider asked.
                  cb(new ParkError(error.message, error.retryAfterMs ?? 0, { cause: error, backoff: true }));
                } else {
                  tlog.error({ err: error }, 'uploader crashed');
                  cb(error);
                }
              });
            }),
        };
      },
    };
  });
  const supervisor = new Supervisor(children, { ...config.supervisor, bus });

  // Warn once per change of state (up → parked, or a new reason), not at every retry.
  const parkedFor = new Map<string, string>();
  bus.on('stage.park', ({ stage, reason, retryInMs }) => {
    if (!targetIds.includes(stage)) return;
    const now = Date.now();
    if (parkedFor.get(stage) !== reason) {
      log.warn({ target: stage, reason, retryInMs }, 'target parked: its deliveries wait on disk until it is tried again');
    } else {
      log.debug({ target: stage, reason, retryInMs }, 'target still parked: tried again later');
    }
    parkedFor.set(stage, reason);
    void store.setHealth({ target: stage, status: 'down', reason, since: now, retryAt: now + retryInMs }).catch(() => undefined);
    bus.emit('target.down', { target: stage, reason, retryAt: now + retryInMs });
  });
  bus.on('stage.unpark', ({ stage }) => {
    if (!targetIds.includes(stage)) return;
    log.debug({ target: stage }, 'parked target tried again');
    void store.setHealth({ target: stage, status: 'up', reason: null, since: Date.now(), retryAt: null }).catch(() => undefined);
    bus.emit('target.up', { target: stage });
  });
  bus.on('upload.stop', ({ target }) => {
    if (parkedFor.delete(target)) log.info({ target }, 'target back from parking: it archives again');
  });
  for (const id of targetIds) await store.setHealth({ target: id, status: 'up', reason: null, since: Date.now(), retryAt: null });

  for (const stage of [archiver, watcher]) {
    stage.onCrash((e) => {
      log.fatal({ err: e, stage: stage.name }, 'the pipeline cannot go on');
      fail(e);
    });
  }

  // `stagecoach retry <target>` (another process) asks through the state folder.
  const stopRetryRequests =
    opts.mode === 'watch'
      ? watchRetryRequests(
          config.stateDir,
          targetIds,
          (id) => {
            if (supervisor.retryNow(id)) log.info({ target: id }, 'trying the parked target now, as asked');
            else log.info({ target: id }, 'a retry was asked, but the target is not parked');
          },
          log,
        )
      : () => undefined;

  await archiver.start();
  await supervisor.start();
  await watcher.start();
  const intake = subscribe(archiver, watcher, { maxDemand: config.archiver.maxDemand, minDemand: config.archiver.minDemand });

  const scanned = opts.mode === 'watch' ? watcher.watch() : watcher.scanOnce();
  scanned.catch((e: unknown) => log.error({ err: e }, 'scan failed'));

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      stopRetryRequests();
      await watcher.closeSource();
      intake.cancel();
      // Stop asking for work first, everywhere at once; then let what is in flight finish.
      for (const { sub } of uploaders.values()) sub.cancel();
      for (const { uploader } of uploaders.values()) uploader.stopRetrying();
      const deadline = setTimeout(() => {
        log.warn({ shutdownMs: config.shutdownMs }, 'shutdown deadline: stopping the uploads still running; they resume at next start');
        for (const { uploader } of uploaders.values()) void uploader.abortAll(new Error('shutdown deadline'));
      }, config.shutdownMs);
      try {
        await supervisor.close(config.shutdownMs + 5_000);
      } finally {
        clearTimeout(deadline);
      }
      await archiver.stop();
      await watcher.stop();
      await Promise.allSettled(targets.map((t) => t.close()));
      await store.close();
    })());

  const idle = async () => {
    await scanned;
    for (;;) {
      if (watcher.backlog === 0 && watcher.emitted === archiver.handled) {
        const status = supervisor.status();
        let busy = false;
        for (const id of targetIds) if (status[id]?.state !== 'parked' && (await store.hasWork(id))) busy = true;
        if (!busy) return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const reconnect = async (id: string) => {
    const i = config.targets.findIndex((tc) => tc.id === id);
    if (i < 0) throw new StagecoachError('pipeline.unknown-target', `[stagecoach] no target ${id}`);
    if (opts.targets?.some((t) => t.id === id)) return;
    const tc = config.targets[i]!;
    const made = await createTarget(tc, { log: log.child({ target: id }), stateDir: path.join(config.stateDir, 'targets', id) });
    const old = targets[i]!;
    targets[i] = made;
    log.info({ target: id }, 'target made again after a sign-in');
    if (supervisor.status()[id]?.state === 'parked') {
      await old.close().catch((err: unknown) => log.debug({ err, target: id }, 'closing the replaced target failed'));
      supervisor.retryNow(id);
    }
  };

  return { store, bus, supervisor, watcher, archiver, targets, idle, stop, failed, reconnect };
}
