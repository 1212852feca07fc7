import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { checkHealth } from '../http/health.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import { createNotifier } from '../notify/notifier.js';
import { startPipeline } from '../pipeline/topology.js';
import { diskFullError } from '../state/disk-full.js';
import { lockStateDir, type StateDirLock } from '../state/lock.js';
import { describePgUrl } from '../state/open.js';
import { flushLogger } from '../telemetry/logger.js';
import { reportTargets } from '../telemetry/target-report.js';
import { createSignIn } from './auth.js';
import { takeSignals } from './early-signals.js';
import { EXIT } from './exit-codes.js';
import { Progress } from './progress.js';
import { startScrub, type Scrub } from '../audit/scrub.js';
import { startAfterArchive, type AfterArchive } from '../audit/after-archive.js';
import path from 'node:path';
import type { Pipeline } from '../pipeline/topology.js';
import type { Prewalk } from '../pipeline/prewalk.js';
import type { AuditStore } from '../state/audit.js';
import { watchConfigFile } from './config-reload.js';

/** The roots' after-archive policies (src/audit/after-archive.ts); null when every root keeps its files. */
function startReaper(config: Config, pipeline: Pipeline, log: Logger): AfterArchive | null {
  const roots = (config.roots ?? []).filter((r) => r.afterArchive && r.afterArchive.action !== 'keep');
  if (roots.length === 0) return null;
  const audit = (pipeline.store as { audit?: AuditStore }).audit;
  if (!audit) {
    log.warn('afterArchive is set but this journal cannot tell verified copies; every file is kept');
    return null;
  }
  for (const r of roots) {
    const to = r.afterArchive!.moveTo;
    const inside = to !== undefined && config.roots.some((w) => to === w.path || to.startsWith(w.path + path.sep));
    if (inside) {
      log.error({ root: r.name, moveTo: to }, 'afterArchive.moveTo is inside a watched root: every file is kept');
      return null;
    }
  }
  const reaper = startAfterArchive(roots, { audit, log: log.child({ stage: 'after-archive' }), bus: pipeline.bus });
  // Files become removable as uploads end: sweep shortly after, not only every 10 s.
  let soon: NodeJS.Timeout | undefined;
  const off = pipeline.bus.on('upload.stop', () => {
    if (soon) return;
    soon = setTimeout(() => {
      soon = undefined;
      void reaper.sweep();
    }, 500);
    soon.unref();
  });
  return {
    sweep: () => reaper.sweep(),
    async stop() {
      off();
      clearTimeout(soon);
      await reaper.stop();
    },
  };
}

/** The scrub of `verify.every` (src/audit/scrub.ts), on the pipeline's own targets; null when off. */
function startDaemonScrub(config: Config, pipeline: Pipeline, log: Logger): Scrub | null {
  // A config built by hand (tests, embedders) may lack the block: off.
  if (config.verify?.every == null) return null;
  const audit = (pipeline.store as { audit?: AuditStore }).audit;
  if (!audit) {
    log.warn('verify.every is set but this journal cannot be scrubbed; the scrub is off');
    return null;
  }
  const scrub = startScrub({
    everyMs: config.verify.every,
    sample: config.verify.sample,
    targets: pipeline.targets,
    requestsPerSecond: new Map(config.targets.map((t) => [t.id, t.requestsPerSecond])),
    audit,
    store: pipeline.store,
    bus: pipeline.bus,
    log: log.child({ stage: 'scrub' }),
    poke: (id) => pipeline.archiver.poke(id),
  });
  log.info({ every: config.verify.every, sample: config.verify.sample, tickMs: scrub.tickMs }, 'scrub started');
  return scrub;
}

export interface RunOptions {
  /** `backfill --once`: archive what is there, then return. */
  once: boolean;
  /** The config file `config` was read from: the daemon (not once) applies its edits (config-reload.ts). */
  configFile?: string;
  /** The daemon's first walks, begun as soon as the config was read (see PipelineOptions.prewalk). */
  prewalk?: Prewalk;
}

/**
 * `run` (the daemon) and `backfill --once`, each holding the state directory's lock (see
 * lockStateDir) from before the journal is opened until after it is closed. SIGINT/SIGTERM start the orderly shutdown; a second
 * signal exits at once (exit 130): what was in flight resumes at the next start.
 *
 * A journal that cannot be written because the state folder's disk is full (at start or while
 * running) rejects with StagecoachError `state.disk-full`, whose one-line message names the state
 * folder and the journal and tells what to do (the CLI logs it and exits 1); the journal keeps
 * what it held, and a start after space is freed resumes.
 */
export async function runCommand(config: Config, log: Logger, opts: RunOptions): Promise<number> {
  // One daemon per journal: a second `run` or `backfill` throws StagecoachError `state.locked`
  // (the CLI prints its one line and exits 2) before it touches the journal or any target.
  let lock: StateDirLock;
  try {
    // The lock is the state folder's (its tokens, its journal when SQLite): daemons sharing a
    // PostgreSQL journal each have their own state folder.
    lock = lockStateDir(config.stateDir, config.journal ? describePgUrl(config.journal.url) : path.join(config.stateDir, 'stagecoach.db'));
  } catch (e) {
    throw diskFullError(e, config.stateDir) ?? e;
  }
  try {
    return await runPipeline(config, log, opts);
  } catch (e) {
    // A full disk is the user's to fix, not a bug: say so, and where, rather than "SQLITE_FULL".
    throw diskFullError(e, config.stateDir) ?? e;
  } finally {
    lock.release();
  }
}

async function runPipeline(config: Config, log: Logger, opts: RunOptions): Promise<number> {
  // Listening before the pipeline starts: a signal while it starts (uploads may already run)
  // stops it in order once started, rather than killing the process.
  let signals = 0;
  let stopped: () => void = () => undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal: sig }, 'second signal: exiting now; uploads in flight resume at next start');
      void flushLogger(log).finally(() => process.exit(130));
      return;
    }
    log.info({ signal: sig, shutdownMs: config.shutdownMs }, 'shutting down: letting uploads in flight finish');
    stopped();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const signalled = new Promise<void>((resolve) => {
    stopped = resolve;
  });
  // One that came while the config was read and the modules loaded (early-signals.ts).
  for (const sig of takeSignals()) onSignal(sig);
  let pipeline: Awaited<ReturnType<typeof startPipeline>>;
  try {
    pipeline = await startPipeline(config, { log, mode: opts.once ? 'once' : 'watch', ...(opts.prewalk ? { prewalk: opts.prewalk } : {}) });
  } catch (e) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    throw e;
  }
  const report = reportTargets(pipeline.bus, { log, store: pipeline.store, isParked: (id) => pipeline.supervisor.status()[id]?.state === 'parked' });
  let server: HttpServer | null = null;
  if (!opts.once && config.http.listen) {
    try {
      server = await startHttpServer(pipeline, {
        host: config.http.listen.host,
        port: config.http.listen.port,
        token: config.http.token,
        allowedHosts: config.http.allowedHosts,
        log,
        signIn: createSignIn(config, pipeline),
      });
    } catch (e) {
      // A port taken by another program costs the status page, never the archiving.
      log.error({ err: e, listen: config.http.listen }, 'the HTTP server could not start; archiving goes on without it');
    }
  }
  const scrub = opts.once ? null : startDaemonScrub(config, pipeline, log);
  const stopConfigWatch = !opts.once && opts.configFile ? watchConfigFile({ file: opts.configFile, config, pipeline, log }) : null;
  const reaper = startReaper(config, pipeline, log);
  const notifier =
    config.notify.webhook || config.notify.pingUrl
      ? createNotifier(pipeline.bus, { ...config.notify, isHealthy: async () => (await checkHealth(pipeline)).ok, log })
      : null;
  log.info(
    { roots: config.roots.map((r) => r.path), targets: pipeline.targets.map((t) => `${t.id} (${t.type})`), stateDir: config.stateDir, journal: config.journal ? describePgUrl(config.journal.url) : 'sqlite' },
    opts.once ? 'backfill started' : 'stagecoach running',
  );
  let crashed: unknown = null;
  const failed = pipeline.failed.catch((e: unknown) => {
    crashed = e;
  });
  // Only a signal or a crash ends the daemon. With the status server off and the only watches gone
  // (a vanished root), nothing else holds the event loop, and Node would end it with exit 0.
  const keepAlive = opts.once ? null : setInterval(() => undefined, 0x7fffffff);
  try {
    if (opts.once) {
      const progress = process.stderr.isTTY ? new Progress(pipeline, process.stderr) : null;
      progress?.start();
      await Promise.race([pipeline.idle(), signalled, failed]);
      progress?.stop();
      await reaper?.sweep();
    } else {
      await Promise.race([signalled, failed]);
    }
  } finally {
    // On a full disk this throws too (closing the journal writes): runCommand words it the same.
    try {
      stopConfigWatch?.();
      await scrub?.stop();
      await reaper?.stop();
      await server?.close();
      await pipeline.stop();
    } finally {
      if (keepAlive) clearInterval(keepAlive);
      // After the drain: the files archived while stopping are in the last summary.
      report.close();
      await notifier?.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  if (crashed !== null) {
    // Logged already by the pipeline as a crash; a full disk gets the clear line on top.
    if (diskFullError(crashed, config.stateDir)) throw crashed;
    return EXIT.failure;
  }
  if (!opts.once) {
    log.info('stopped');
    return EXIT.ok;
  }
  const { openJournal } = await import('../state/index.js');
  const store = await openJournal(config);
  try {
    const counts = await store.counts();
    const ids = new Set(pipeline.targets.map((t) => t.id));
    const mine = counts.filter((c) => ids.has(c.target));
    log.info({ targets: mine }, 'backfill done');
    const missingRoot = pipeline.watcher.source.roots().some((r) => !r.present);
    const unreadable = pipeline.watcher.source.unreadable;
    if (unreadable > 0) log.error({ unreadable }, `${unreadable} folder(s) or file(s) could not be read while scanning (see the warnings above): what is in them was not archived`);
    return mine.some((c) => c.failed > 0 || c.pending > 0 || c.inFlight > 0) || signals > 0 || missingRoot || unreadable > 0 ? EXIT.failure : EXIT.ok;
  } finally {
    await store.close();
  }
}
