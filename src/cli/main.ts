#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import { ConfigError, StagecoachError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import { holdSignals, takeSignals } from './early-signals.js';
import { EXIT } from './exit-codes.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/**
 * The package folder: dist/src/cli as tsc builds this file is three levels below it, the bundle
 * (dist/bundle/main.js, scripts/bundle.mjs) two.
 */
const PKG_DIR = path.resolve(HERE, ...(path.basename(HERE) === 'bundle' ? ['..', '..'] : ['..', '..', '..']));
export const EMBEDDED_CONFIG = path.join(PKG_DIR, 'config', 'stagecoach.yaml');

const HELP = `stagecoach — archive every new or changed file to several clouds at once

Usage: stagecoach <command> [options]

Commands:
  run                 run the daemon: watch the roots, archive to every target
  backfill --once     archive what is in the roots now, then exit (progress on a terminal)
  check               validate the config and reach every target
  status              per target: pending, in flight, done, failed, and whether it is parked
                      (reads the state store; works while the daemon runs)
  auth <target-id>    sign a cloud target in, headless: open the address it prints on any
                      computer, paste back what the browser shows; tokens stay in the state folder
  journal migrate --to postgres://user@host:5432/db
                      copy the SQLite journal under stateDir into an empty PostgreSQL journal
                      (stop the daemon first; docs/scale-out.md)
  retry <target-id>   ask the running daemon to try a parked target now (within a second)
  verify              look every archived copy up and compare size and hash with the journal;
                      a missing or altered copy is archived again on the next run
                      [--target ID,...] [--root NAME] [--sample PERCENT] [--report-only] [--json]
  restore PATH|GLOB   get files back from the first target whose copy is intact (PATH as
                      <root name>/<path inside the root>; a folder or root restores all below)
                      [--to DIR] [--from ID,...] [--overwrite]; --list PATH: who has a good copy

Options:
  -c, --config FILE   the config file (default: $STAGECOACH_CONFIG, else the embedded
                      config/stagecoach.yaml: watch ./data/inbox, archive to ./data/archive)
      --json          status, verify, restore: print JSON
      --to URL|DIR    journal migrate: the PostgreSQL journal to fill (default: journal.url);
                      restore: the folder to restore below
  -h, --help          this help
  -v, --version       the version

Exit codes: 0 done; 1 run-time failure (or failed deliveries after backfill --once);
2 bad usage or config, or another daemon already runs on this stateDir; 3 check found a missing root or a target that does not work; 4 verify found
a copy missing or altered (or could not look one up), or restore did not bring every file back;
130 stopped by a second signal.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(PKG_DIR, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** One line on stderr, the way every CLI error is reported. */
function fail(message: string, code: number): number {
  process.stderr.write(`stagecoach: ${message}\n`);
  return code;
}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        once: { type: 'boolean' },
        json: { type: 'boolean' },
        to: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        target: { type: 'string' },
        root: { type: 'string' },
        sample: { type: 'string' },
        'report-only': { type: 'boolean' },
        from: { type: 'string' },
        overwrite: { type: 'boolean' },
        list: { type: 'boolean' },
      },
    });
  } catch (e) {
    return fail(`${(e as Error).message}; see stagecoach --help`, EXIT.config);
  }
  const { values, positionals } = parsed;
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(`${HELP}\n`);
    return values.help ? EXIT.ok : EXIT.config;
  }
  if (!['run', 'backfill', 'check', 'status', 'auth', 'journal', 'retry', 'verify', 'restore'].includes(command)) return fail(`unknown command "${command}"; see stagecoach --help`, EXIT.config);
  if (command === 'backfill' && !values.once) return fail('backfill needs --once (archive what is there, then exit)', EXIT.config);
  if (values.once && command !== 'backfill') return fail(`--once belongs to backfill: \`stagecoach backfill --once\` archives what is there, then exits; \`${command}\` takes no --once`, EXIT.config);
  // From here a daemon's SIGTERM or SIGINT is kept for it (early-signals.ts): it stops in order once started.
  if (command === 'run' || command === 'backfill') holdSignals();

  // The daemon's first walks (issue 19 item 3: a restart is mostly that walk; a backfill's walk
  // keeps the main thread from its first puts) run on a worker thread, started now so that it is
  // up once the config is read (prewalk.ts, startWalker). Should that fail, the pipeline starts its
  // own walk (or says why it cannot): undefined here.
  const walking = command === 'run' || command === 'backfill' ? import('../pipeline/prewalk.js').then((m) => ({ prewalkOf: m.prewalkOf, walker: m.startWalker() }), () => undefined) : undefined;
  // Loaded here, not imported above: after the compile cache is on (see the end of this file),
  // and not for --help or --version.
  const [{ loadConfig }, { refuseWorldWritableStateDir }] = await Promise.all([import('../config/index.js'), import('../state/state-dir-mode.js')]);
  const file = values.config ?? process.env.STAGECOACH_CONFIG ?? EMBEDDED_CONFIG;
  let config: Config;
  try {
    config = await loadConfig(file);
    refuseWorldWritableStateDir(config.stateDir);
  } catch (e) {
    void walking?.then((w) => w?.walker.worker.terminate());
    if (e instanceof ConfigError) return fail(e.message, EXIT.config);
    throw e;
  }
  // The walks start now, while the daemon's modules load and its journal and targets open.
  const prewalk = await walking?.then((w) => {
    if (w === undefined) return undefined;
    try {
      return w.prewalkOf(config, w.walker);
    } catch {
      void w.walker.worker.terminate();
      return undefined;
    }
  });
  const [{ createLogger, flushLogger }, { collectSecrets }] = await Promise.all([import('../telemetry/logger.js'), import('../telemetry/redact.js')]);
  // A url given with --to is as secret as the config's journal.url.
  const secrets = [...collectSecrets(config), ...(values.to ? collectSecrets({ targets: [], journal: { url: values.to, leaseMs: 0 } }) : [])];
  const log = createLogger({ level: config.log.level, format: config.log.format, secrets });
  try {
    switch (command) {
      case 'status': {
        const { statusCommand } = await import('./status.js');
        return await statusCommand(config, { json: values.json ?? false });
      }
      case 'auth': {
        const { authCommand, noTerminalMessage, stdinCanAnswer, terminalIO } = await import('./auth.js');
        if (!stdinCanAnswer()) return fail(noTerminalMessage(positionals[1]), EXIT.config);
        const io = terminalIO(positionals[1]);
        try {
          return await authCommand(config, positionals[1], io);
        } finally {
          io.close();
        }
      }
      case 'verify': {
        const { verifyCommand } = await import('./verify.js');
        return await verifyCommand(config, log, { target: values.target, root: values.root, sample: values.sample, reportOnly: values['report-only'] ?? false, json: values.json ?? false });
      }
      case 'restore': {
        const { restoreCommand } = await import('./restore.js');
        return await restoreCommand(config, log, { patterns: positionals.slice(1), to: values.to, from: values.from, overwrite: values.overwrite ?? false, list: values.list ?? false, json: values.json ?? false });
      }
      case 'journal': {
        const { journalCommand } = await import('./journal.js');
        return await journalCommand(config, positionals[1], { to: values.to });
      }
      case 'retry': {
        const id = positionals[1];
        if (!id || !config.targets.some((t) => t.id === id)) {
          return fail(`retry needs a configured target id (${config.targets.map((t) => t.id).join(', ')}), got ${id ? `"${id}"` : 'none'}`, EXIT.config);
        }
        const { requestRetry } = await import('../pipeline/retry-requests.js');
        await requestRetry(config.stateDir, id);
        process.stdout.write(`asked the daemon to try ${id} now; a running daemon does within a second (see stagecoach status)\n`);
        return EXIT.ok;
      }
      case 'check': {
        const { checkCommand } = await import('./check.js');
        return await checkCommand(config, log);
      }
      default: {
        try {
          const { runCommand } = await import('./run.js');
          return await runCommand(config, log, { once: command === 'backfill', configFile: file, ...(prewalk ? { prewalk } : {}) });
        } finally {
          takeSignals();
          await prewalk?.close();
        }
      }
    }
  } catch (e) {
    if (e instanceof ConfigError) return fail(e.message, EXIT.config);
    if (e instanceof StagecoachError && e.code === 'state.locked') return fail(e.message, EXIT.locked);
    if (e instanceof StagecoachError && (e.code === 'cli.usage' || e.code === 'cli.no-terminal' || e.code.startsWith('auth.'))) {
      return fail(e.message, e.code.startsWith('cli.') ? EXIT.config : EXIT.failure);
    }
    log.fatal({ err: e }, e instanceof StagecoachError ? e.message : 'stagecoach failed');
    await flushLogger(log);
    return EXIT.failure;
  } finally {
    await flushLogger(log);
  }
}

// Run when executed as the bin (not when imported by a test).
const entry = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (entry === fileURLToPath(import.meta.url) || path.basename(entry) === 'stagecoach') {
  // Node 22.1+: the compiled code of every module loaded from here on is kept in Node's compile
  // cache (NODE_COMPILE_CACHE, else a folder in the OS temp folder), so a start after the first
  // compiles little. Node 20 has no such cache (nothing happens); a cache that cannot be written
  // is only not used.
  (module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`stagecoach: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = EXIT.failure;
    },
  );
}

export type { Logger };
