import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { createPathFilter, type PathFilter } from '../archive/filters.js';
import type { FileStat } from '../archive/item.js';
import { validateTemplate } from '../archive/remote-path.js';
import type { Config, TargetConfig } from '../config/index.js';
import { subscribe, Supervisor } from '../stage/index.js';
import { openJournal } from '../state/index.js';
import type { Store } from '../state/store.js';
import { EventBus, type StageEvents } from '../telemetry/bus.js';
import type { PipelineEvents } from '../telemetry/events.js';
import { StagecoachError } from '../errors.js';
import { createLazyTarget, createTarget } from '../targets/registry.js';
import type { Target, TargetContext } from '../targets/target.js';
import { Archiver } from './archiver.js';
import { leaseClaims } from './deliver.js';
import { whenIdle } from './idle.js';
import { watchRetryRequests } from './retry-requests.js';
import { writeRootPresence } from './roots.js';
import { trackTargetHealth } from './target-health.js';
import { type Prewalk, prewalkOf } from './prewalk.js';
import { failureLatch, Terminator } from './terminator.js';
import { uploaderSpec, type RunningUploader } from './uploader-spec.js';
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
  /**
   * The roots' first walks (in once mode their one walk), started by the caller before this
   * (prewalk.ts; the CLI starts it once the config is read). Without, started here. Its caller
   * closes it too.
   */
  prewalk?: Prewalk;
}

/** The running pipeline. topology.ts is the only file that knows the graph. */
export interface Pipeline {
  readonly store: Store;
  readonly bus: EventBus<AllEvents>;
  readonly supervisor: Supervisor;
  readonly watcher: WatchProducer;
  readonly archiver: Archiver;
  readonly targets: readonly Target[];
  /** This daemon's node name (config `node`, default the host name); it matters on a shared journal. */
  readonly node?: string;
  /** Once mode: resolves when every file found is archived or failed on every target not parked. */
  idle(): Promise<void>;
  /**
   * Rejects if the watcher or the archiver crashes (the journal cannot be written: disk full, a
   * bug), or an upload's journal write fails other than for a full disk (uploader-spec.ts).
   * Uploaders are supervised; the other two are not, so the daemon stops and says why.
   */
  readonly failed: Promise<never>;
  /**
   * Makes the target `id` again from the config (after a sign-in saved its tokens: a target that
   * was not signed in is a stand-in that only parks) and, if it is parked, starts it now. Its
   * backlog is served without a restart of the daemon. With `config` (an edited config file's
   * entry for this id), the target is made from that instead, and later calls use it too. Rejects
   * for an unknown id, a `config` of another id, or when the target cannot be made (the reason,
   * as at start); nothing is replaced then.
   */
  reconnect(id: string, config?: TargetConfig): Promise<void>;
  /**
   * Orderly shutdown: stop the watcher, stop taking work, let uploads in flight finish within
   * `shutdownMs` (those still running then are stopped and go back to pending, resumable), then
   * close the store and the targets. Idempotent.
   */
  stop(): Promise<void>;
}

/** What a target gets of a journal shared by several daemons: its shared secrets and locks. */
function fleetContext(store: Store): Pick<TargetContext, 'shared' | 'locks'> {
  return { ...(store.sharedSecrets ? { shared: store.sharedSecrets } : {}), ...(store.fleetLocks ? { locks: store.fleetLocks } : {}) };
}

/**
 * Makes a target from its config, lazily: its provider's modules (and cloud SDK) load on its
 * first network call (registry.ts), so a restart with nothing to send loads none. One that
 * cannot work for now (not signed in, credentials refused: a fatal TargetError when it is made)
 * answers with a stand-in that parks with that reason, so one target's missing token never
 * stops the daemon.
 */
function makeTarget(tc: TargetConfig, stateDir: string, log: Logger, fleet: Pick<TargetContext, 'shared' | 'locks'>): Target {
  return createLazyTarget(tc, { log: log.child({ target: tc.id }), stateDir, ...fleet }, (e) =>
    log.error({ target: tc.id, reason: e.message }, 'target unavailable: it stays parked until this is fixed'),
  );
}

/**
 * Builds and starts the pipeline, one build after the other: the store, the targets, the
 * archiver, the watcher, the uploaders under the supervisor, the targets' health; then starts the
 * archiver, the uploaders and the watcher in that order, so the archiver takes no file before
 * every uploader has subscribed. Policy lives in the modules it builds from: the uploader's child
 * spec (uploader-spec.ts), the shutdown (terminator.ts), idleness (idle.ts).
 */
export async function startPipeline(config: Config, opts: PipelineOptions): Promise<Pipeline> {
  const log = opts.log;
  validateTemplate(config.remotePath);
  const bus = opts.bus ?? new EventBus<AllEvents>();
  // Roots with `watch: false` are read here (uploads of files another daemon watches) but not watched.
  const watched = config.roots.filter((r) => r.watch !== false);
  const nodeName = config.node ?? os.hostname();
  // Issue 19 item 3: the first walk of each root watched by folders (in once mode, its one walk)
  // runs on a worker thread, while the journal and the targets open (prewalk.ts).
  const prewalk = opts.prewalk ?? prewalkOf(config);
  let store: Store;
  let targets: Target[];
  /** Each root's journal index, read from the journal's opening on, for its first scan (see `index` below). */
  const firstIndex = new Map<string, Promise<Map<string, FileStat>>>();
  try {
    store = await buildStore(config, nodeName, watched, log);
    // While the targets open and the worker walks: a root's first scan takes its index from here.
    if (prewalk) {
      for (const r of watched) {
        const index = store.fileIndex(r.name);
        index.catch(() => undefined); // its scan sees the error; a root never scanned drops it
        firstIndex.set(r.name, index);
      }
    }
    targets = await buildTargets(config, opts, store, log);
    await makeRoots(watched, log);
  } catch (e) {
    await prewalk?.close();
    throw e;
  }
  const targetIds = targets.map((t) => t.id);
  const { failed, fail, crashed } = failureLatch(bus, log);

  const filters = new Map<string, PathFilter>(config.roots.map((r) => [r.name, createPathFilter(r.filters)]));
  const archiver = new Archiver({
    store,
    targets: targetIds,
    template: config.remotePath,
    filters,
    log: log.child({ stage: 'archiver' }),
    bus,
    host: opts.host ?? os.hostname(),
    // On a shared journal other daemons record work and leases of dead ones expire: look for both.
    ...(config.journal ? { pollMs: Math.min(1000, Math.floor(config.journal.leaseMs / 3)) } : {}),
    leaseAhead: (id) => leaseAheadOf(config.targets.find((tc) => tc.id === id)?.maxDemand ?? 0),
    // A target may find or make the folders of deliveries leased ahead before their puts ask.
    onLeased: (id, deliveries) => targets.find((t) => t.id === id)?.prepare?.(deliveries.map((d) => d.claim?.remotePath ?? d.remotePath)),
    // Each lease claims its deliveries' remote names in its own transaction (one commit, not two).
    leaseClaims: (id) => {
      const target = targets.find((t) => t.id === id);
      return target === undefined ? undefined : leaseClaims(target, config.onCollision);
    },
    releaseWaitMs: config.shutdownMs,
  });
  /** The roots.json write under way, if any (see onStatusChange). */
  let presence: Promise<void> = Promise.resolve();
  const watcher = new WatchProducer({
    roots: watched.map((r) => ({
      name: r.name,
      path: r.path,
      filter: filters.get(r.name)!,
      polling: r.polling,
      pollIntervalMs: r.pollIntervalMs,
      followSymlinks: r.followSymlinks,
    })),
    stableMs: config.stableMs,
    rescanMs: config.watcher.rescanMs,
    index: (root) => {
      const early = firstIndex.get(root);
      firstIndex.delete(root);
      return early ?? store.fileIndex(root);
    },
    log: log.child({ stage: 'watcher' }),
    bus,
    // The status CLI is another process: each change of the roots' status is written for it,
    // one write at a time, and the pipeline's stop waits for the last one.
    onStatusChange: () => {
      presence = presence
        .then(() => writeRootPresence(config.stateDir, watcher.source.roots()))
        .catch((e: unknown) => log.warn({ err: e }, 'cannot record the state of the roots for `status`'));
    },
    // The journal could not be read for a scan: the pipeline cannot go on (as when the archiver
    // cannot write it).
    onError: (e) => fail(e, 'watcher'),
    ...(prewalk ? { prewalk } : {}),
  });
  const running = new Map<string, RunningUploader>();
  const supervisor = new Supervisor(
    config.targets.map((tc, i) =>
      uploaderSpec({
        // Read at each start: reconnect() may have replaced it.
        target: () => targets[i]!,
        config: tc,
        store,
        archiver,
        retry: config.retry,
        onCollision: config.onCollision,
        coolDownMs: config.supervisor.coolDownMs,
        stateDir: config.stateDir,
        log,
        bus,
        running,
        onJournalError: (e) => fail(e, `uploader:${targets[i]!.id}`),
      }),
    ),
    { ...config.supervisor, bus },
  );
  await trackTargetHealth(bus, store, targetIds, log);
  archiver.onCrash(crashed(archiver));
  watcher.onCrash(crashed(watcher));

  // `stagecoach retry <target>` (another process) asks through the state folder.
  const stopRetryRequests = opts.mode === 'watch' ? retryOnRequest(config, targetIds, supervisor, log) : () => undefined;

  await archiver.start();
  await supervisor.start();
  await watcher.start();
  const intake = subscribe(archiver, watcher, { maxDemand: config.archiver.maxDemand, minDemand: config.archiver.minDemand });
  const scanned = opts.mode === 'watch' ? watcher.watch() : watcher.scanOnce();
  scanned.catch((e: unknown) => log.error({ err: e }, 'scan failed'));
  // A root missing at start was not scanned: its early index goes (it is read anew when it comes).
  void scanned.finally(() => firstIndex.clear()).catch(() => undefined);

  const terminator = new Terminator({ stopRetryRequests, watcher, intake, archiver, supervisor, running, targets, store, shutdownMs: config.shutdownMs, log });
  const idle = () =>
    whenIdle(bus, scanned, async () => {
      if (watcher.backlog > 0 || watcher.emitted !== archiver.handled) return false;
      const status = supervisor.status();
      for (const id of targetIds) if (status[id]?.state !== 'parked' && (await store.hasWork(id))) return false;
      return true;
    }, config.journal ? Math.min(1000, Math.floor(config.journal.leaseMs / 3)) : undefined);

  // What reconnect makes a target from: the config's entries, replaced by edited ones.
  const targetConfigs = [...config.targets];
  const reconnect = (id: string, tc?: TargetConfig) => reconnectTarget(id, tc, { config, targetConfigs, opts, targets, supervisor, store, log });
  // Nothing is written into the state folder once stop resolves: a roots.json write still under
  // way (its temp file) appeared after a quick start and stop, while a test removed the folder.
  const stop = () => terminator.stop().then(() => presence);
  return { store, bus, supervisor, watcher, archiver, targets, node: nodeName, idle, stop, failed, reconnect };
}

/** Retries a parked target when `stagecoach retry <target>` asks; returns the function that stops listening. */
function retryOnRequest(config: Config, targetIds: readonly string[], supervisor: Supervisor, log: Logger): () => void {
  return watchRetryRequests(
    config.stateDir,
    targetIds,
    (id) => {
      if (supervisor.retryNow(id)) log.info({ target: id }, 'trying the parked target now, as asked');
      else log.info({ target: id }, 'a retry was asked, but the target is not parked');
    },
    log,
  );
}

/** Pipeline.reconnect: the target made again from its config (or `edited`), and retried now if it is parked. */
async function reconnectTarget(
  id: string,
  edited: TargetConfig | undefined,
  p: { config: Config; targetConfigs: TargetConfig[]; opts: PipelineOptions; targets: Target[]; supervisor: Supervisor; store: Store; log: Logger },
): Promise<void> {
  const { config, targetConfigs, opts, targets, supervisor, store, log } = p;
  const i = targetConfigs.findIndex((tc) => tc.id === id);
  if (i < 0) throw new StagecoachError('pipeline.unknown-target', `[stagecoach] no target ${id}`);
  if (edited && edited.id !== id) throw new StagecoachError('pipeline.unknown-target', `[stagecoach] the config given for ${id} is ${edited.id}'s`);
  if (opts.targets?.some((t) => t.id === id)) return;
  const tc = edited ?? targetConfigs[i]!;
  const made = await createTarget(tc, {
    log: log.child({ target: id }),
    stateDir: path.join(config.stateDir, 'targets', id),
    ...fleetContext(store),
  });
  const old = targets[i]!;
  targets[i] = made;
  targetConfigs[i] = tc;
  log.info({ target: id }, edited ? 'target made again from the edited config' : 'target made again after a sign-in');
  if (supervisor.status()[id]?.state === 'parked') {
    await old.close().catch((err: unknown) => log.debug({ err, target: id }, 'closing the replaced target failed'));
    supervisor.retryNow(id);
  }
}

/**
 * The journal the config names (SQLite under stateDir, or a shared PostgreSQL), with the
 * deliveries left in flight by the last run put back to pending.
 */
async function buildStore(config: Config, nodeName: string, watched: Config['roots'], log: Logger): Promise<Store> {
  const store = await openJournal(config, {
    onError: (err) => log.warn({ err }, 'a journal connection, heartbeat or lease failed; the pool opens a new one'),
    onReachability: (r) =>
      r.reachable
        ? log.info({ since: r.since }, 'the journal is reachable again')
        : log.error({ error: r.error, since: r.since }, 'the journal is unreachable: its calls wait and retry until it answers'),
    node: { name: nodeName, roots: new Map(config.roots.map((r) => [r.name, r.path])), watches: watched.map((r) => r.name) },
  });
  const reset = await store.resetInFlight();
  if (reset > 0) log.info({ deliveries: reset }, 'resuming deliveries that were in flight when the daemon stopped');
  return store;
}

/** The targets, in config order: the caller's (matched by id), else made from the config. */
async function buildTargets(config: Config, opts: PipelineOptions, store: Store, log: Logger): Promise<Target[]> {
  const targets: Target[] = [];
  try {
    for (const tc of config.targets) {
      const given = opts.targets?.find((t) => t.id === tc.id);
      const stateDir = path.join(config.stateDir, 'targets', tc.id);
      targets.push(given ?? makeTarget(tc, stateDir, log, fleetContext(store)));
    }
  } catch (e) {
    await Promise.allSettled(targets.map((t) => t.close()));
    await store.close();
    throw e;
  }
  return targets;
}

/** A missing root is made only where asked (`createRoot`, the embedded default's inbox), and said. */
async function makeRoots(roots: Config['roots'], log: Logger): Promise<void> {
  for (const r of roots) {
    // Only where asked (the embedded default's inbox): a missing root is otherwise a typo or an
    // unmounted share, and making it would watch an empty folder or fill the system volume.
    if (!r.createRoot) continue;
    const made = await mkdir(r.path, { recursive: true });
    if (made !== undefined) log.warn({ root: r.name, path: r.path }, 'the watched folder did not exist: created it (createRoot: true)');
  }
}

/** Deliveries leased past a target's demand (see ArchiverOptions.leaseAhead): its maxDemand, at most 16. */
function leaseAheadOf(maxDemand: number): number {
  return Math.min(16, maxDemand);
}
