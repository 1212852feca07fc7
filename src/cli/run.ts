import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { checkHealth } from '../http/health.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import { createNotifier } from '../notify/notifier.js';
import { startPipeline } from '../pipeline/topology.js';
import { diskFullError } from '../state/disk-full.js';
import { describePgUrl } from '../state/open.js';
import { flushLogger } from '../telemetry/logger.js';
import { reportTargets } from '../telemetry/target-report.js';
import { createSignIn } from './auth.js';
import { EXIT } from './exit-codes.js';
import { Progress } from './progress.js';

/**
 * `run` (the daemon) and `backfill --once`. SIGINT/SIGTERM start the orderly shutdown; a second
 * signal exits at once (exit 130): what was in flight resumes at the next start.
 *
 * A journal that cannot be written because the state folder's disk is full (at start or while
 * running) rejects with StagecoachError `state.disk-full`, whose one-line message names the state
 * folder and the journal and tells what to do (the CLI logs it and exits 1); the journal keeps
 * what it held, and a start after space is freed resumes.
 */
export async function runCommand(config: Config, log: Logger, opts: { once: boolean }): Promise<number> {
  try {
    return await runPipeline(config, log, opts);
  } catch (e) {
    // A full disk is the user's to fix, not a bug: say so, and where, rather than "SQLITE_FULL".
    throw diskFullError(e, config.stateDir) ?? e;
  }
}

async function runPipeline(config: Config, log: Logger, opts: { once: boolean }): Promise<number> {
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
  let pipeline: Awaited<ReturnType<typeof startPipeline>>;
  try {
    pipeline = await startPipeline(config, { log, mode: opts.once ? 'once' : 'watch' });
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
    } else {
      await Promise.race([signalled, failed]);
    }
  } finally {
    // On a full disk this throws too (closing the journal writes): runCommand words it the same.
    try {
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
    return mine.some((c) => c.failed > 0 || c.pending > 0 || c.inFlight > 0) || signals > 0 || missingRoot ? EXIT.failure : EXIT.ok;
  } finally {
    await store.close();
  }
}
