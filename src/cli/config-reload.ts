import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { parseConfig, type Config, type TargetConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import type { Pipeline } from '../pipeline/topology.js';
import { collectSecrets } from '../telemetry/redact.js';

/** A target's keys that its uploader reads once, at the daemon's start. */
const LIMIT_KEYS = ['maxDemand', 'minDemand', 'requestsPerSecond', 'bytesPerSecond'] as const;

export interface ConfigWatchOptions {
  /** The config file the daemon was started with, as given (relative to `cwd`). */
  file: string;
  /** The config the daemon runs. */
  config: Config;
  pipeline: Pick<Pipeline, 'reconnect' | 'supervisor'>;
  log: Logger;
  /** Resolves `file` and the paths inside it, as at start. Default: process.cwd(). */
  cwd?: string;
  /** Quiet time after the last event in the folder before the file is read. Default 300 ms. */
  settleMs?: number;
}

/**
 * The running daemon's answer to an edit of its config file (issue 14 item 6). The file's folder
 * is watched (fs.watch), not the file: an editor that saves by writing a new file and renaming it
 * over the old one, or a Kubernetes ConfigMap's symlink swap, replaces the watched inode. Each
 * burst of events is followed, once quiet for `settleMs`, by one read; a text equal to the last
 * one read does nothing. The text is parsed and validated as at start (parseConfig):
 * - invalid: one warn line with the ConfigError's one-line message; nothing changes;
 * - a target (same id) whose options changed and that is parked: made again from its new options
 *   (Pipeline.reconnect) and tried at once, instead of at the end of its cool-down; one that
 *   cannot be made (e.g. still no token) stays parked, said at warn;
 * - everything else that differs (roots, stateDir, http, ...; targets added, removed or moved; a
 *   target not parked; a target's demand and rate limits; a new secret, which the logs were not
 *   told to hide): one info line per edit naming the keys that need a restart.
 * Returns the function that stops watching. A folder that cannot be watched is said at warn.
 */
export function watchConfigFile(o: ConfigWatchOptions): () => void {
  const cwd = o.cwd ?? process.cwd();
  const file = path.resolve(cwd, o.file);
  const log = o.log.child({ stage: 'config' });
  const knownSecrets = new Set(collectSecrets(o.config));
  // What the daemon runs: the start's config, with the targets remade from edits.
  let running = o.config;
  let lastText: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let busy: Promise<void> = Promise.resolve();
  let stopped = false;

  const apply = async (next: Config) => {
    const needRestart: string[] = [];
    for (const key of new Set([...Object.keys(running), ...Object.keys(next)])) {
      if (key !== 'targets' && !isDeepStrictEqual(running[key as keyof Config], next[key as keyof Config])) needRestart.push(key);
    }
    const ids = (c: Config) => c.targets.map((t) => t.id);
    if (!isDeepStrictEqual(ids(running), ids(next))) needRestart.push('targets (added, removed or in another order)');
    const status = o.pipeline.supervisor.status();
    const targets = [...running.targets];
    for (const [i, was] of running.targets.entries()) {
      const now = next.targets.find((t) => t.id === was.id);
      if (!now || isDeepStrictEqual(was, now)) continue;
      for (const key of LIMIT_KEYS) if (was[key] !== now[key]) needRestart.push(`targets.${was.id}.${key}`);
      if (status[was.id]?.state !== 'parked') {
        needRestart.push(`targets.${was.id} (not parked)`);
        continue;
      }
      if (collectSecrets({ targets: [now] }).some((s) => !knownSecrets.has(s))) {
        needRestart.push(`targets.${was.id} (a new secret)`);
        continue;
      }
      try {
        await o.pipeline.reconnect(was.id, now);
        targets[i] = now;
        log.info({ target: was.id }, 'the parked target’s options changed in the config: trying it now');
      } catch (e) {
        log.warn({ target: was.id, reason: e instanceof Error ? e.message : String(e) }, 'the edited target cannot be made: it stays parked');
      }
    }
    running = { ...running, targets };
    if (needRestart.length > 0) log.info({ keys: needRestart }, 'the config file changed: these changes need a restart');
  };

  const look = async () => {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      // Between an editor's unlink and its rename: the next event brings the file.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err: e, file: o.file }, 'cannot read the edited config file');
      return;
    }
    if (text === lastText) return;
    lastText = text;
    let next: Config;
    try {
      next = parseConfig(text, { env: process.env, cwd, source: o.file });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      log.warn({ file: o.file }, `the edited config is not valid, nothing changed: ${e.message}`);
      return;
    }
    await apply(next);
  };

  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      busy = busy.then(() => (stopped ? undefined : look())).catch((e: unknown) => log.error({ err: e }, 'applying the edited config failed'));
    }, o.settleMs ?? 300);
  };

  // The text the daemon started from: an event that leaves it as it was changes nothing.
  void readFile(file, 'utf8').then(
    (t) => (lastText ??= t),
    () => undefined,
  );
  let watcher: FSWatcher;
  try {
    watcher = watch(path.dirname(file), { persistent: false }, changed);
  } catch (e) {
    log.warn({ err: e, file: o.file }, 'cannot watch the config file: an edit needs a restart');
    return () => undefined;
  }
  watcher.on('error', (e) => {
    log.warn({ err: e, file: o.file }, 'stopped watching the config file: an edit needs a restart');
    watcher.close();
  });
  return () => {
    stopped = true;
    clearTimeout(timer);
    watcher.close();
  };
}
