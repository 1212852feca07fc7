/**
 * What a person reads about each target, from the bus: the log lines of archiving and of
 * failing, and the "retrying" health record that `status`, the page and /healthz show before a
 * target is parked.
 *
 * Logs:
 * - one info line per archived file (`archived <path> to <target> (<size>)`), at most one a
 *   `lineMs` (1 s) per target; the files beyond that are counted, and every `summaryMs` (1 min)
 *   a target that had some gets one line: `archived 1,510 files, 214 MiB to gdrive in the last
 *   minute`. `close()` writes the last summary.
 * - each retried attempt is at debug (deliver.ts); this logs one warn when a target starts
 *   failing (its first retry since it last archived) and one info when it archives again.
 *
 * Health: while a target's uploads fail and are retried, its record is `status: 'up'` with the
 * reason `retrying: <why> (attempt 4, next in 6 s)` and `retryAt` the next attempt; it stays so
 * between attempts (no flicker), until a file is archived (`up`, no reason) or the supervisor
 * parks it (topology writes `down`). Not written while the target is parked.
 */
import type { Logger } from 'pino';
import type { TargetHealth } from '../state/store.js';
import type { EventBus } from './bus.js';
import type { PipelineEvents } from './events.js';

export interface TargetReportOptions {
  log: Logger;
  /** Where the retrying state is recorded (the journal, read by `status` and /healthz). */
  store?: { setHealth(h: TargetHealth): Promise<void> };
  /** Whether the supervisor has the target parked now (its own record wins then). */
  isParked?: (target: string) => boolean;
  now?: () => number;
  /** At most one per-file line per target this often. Default 1000 ms. */
  lineMs?: number;
  /** How often a target whose lines were held back gets its summary. Default 60 000 ms. */
  summaryMs?: number;
}

export interface TargetReport {
  /** Writes the summaries still due and unsubscribes. Idempotent. */
  close(): void;
}

/** Bytes in binary units, as everywhere in Stagecoach's output: `214 MiB`, `1.5 GiB`, `512 B`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v >= 100 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

/**
 * 1510 → `1,510`, as toLocaleString('en-US') writes it, without loading the locale data (its first
 * call took 16–40 ms here, at the end of every `backfill --once` that archived a file).
 */
function withCommas(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** The short words for a network failure, as a person says it; else the reason itself. */
export function shortReason(reason: string): string {
  const codes: Array<[RegExp, string]> = [
    [/ECONNREFUSED/, 'connection refused'],
    [/ECONNRESET|socket hang up/i, 'connection reset'],
    [/ETIMEDOUT|timed? ?out/i, 'timed out'],
    [/ENOTFOUND|EAI_AGAIN/, 'host not found'],
    [/ENETUNREACH|EHOSTUNREACH/, 'network unreachable'],
  ];
  for (const [re, words] of codes) if (re.test(reason)) return words;
  return reason;
}

interface PerTarget {
  lastLineAt: number;
  files: number;
  bytes: number;
  heldBack: number;
  windowStart: number;
  failing: { since: number; attempts: number; reason: string } | null;
}

type Bus = Pick<EventBus<PipelineEvents>, 'on'>;

export function reportTargets(bus: Bus, opts: TargetReportOptions): TargetReport {
  const now = opts.now ?? Date.now;
  const lineMs = opts.lineMs ?? 1000;
  const summaryMs = opts.summaryMs ?? 60_000;
  const log = opts.log;
  const targets = new Map<string, PerTarget>();
  const of = (id: string): PerTarget => {
    let t = targets.get(id);
    if (!t) targets.set(id, (t = { lastLineAt: -Infinity, files: 0, bytes: 0, heldBack: 0, windowStart: now(), failing: null }));
    return t;
  };
  const record = (h: TargetHealth) => {
    opts.store?.setHealth(h).catch((err: unknown) => log.debug({ err, target: h.target }, 'could not record the target health (shutting down?)'));
  };
  const summarise = () => {
    const at = now();
    for (const [id, t] of targets) {
      if (t.heldBack > 0) {
        const minutes = Math.max(1, Math.round((at - t.windowStart) / 60_000));
        const period = minutes === 1 ? 'the last minute' : `the last ${minutes} minutes`;
        log.info(
          { target: id, files: t.files, bytes: t.bytes, periodMs: at - t.windowStart },
          `archived ${withCommas(t.files)} files, ${formatBytes(t.bytes)} to ${id} in ${period}`,
        );
      }
      t.files = 0;
      t.bytes = 0;
      t.heldBack = 0;
      t.windowStart = at;
    }
  };

  const offs = [
    bus.on('upload.stop', (e) => {
      const t = of(e.target);
      const at = now();
      if (t.failing) {
        log.info({ target: e.target, failedAttempts: t.failing.attempts, failingMs: at - t.failing.since }, `${e.target} recovered: archiving again`);
        t.failing = null;
        if (!opts.isParked?.(e.target)) record({ target: e.target, status: 'up', reason: null, since: at, retryAt: null });
      }
      t.files++;
      t.bytes += e.bytes;
      if (at - t.lastLineAt >= lineMs) {
        t.lastLineAt = at;
        log.info({ target: e.target, remotePath: e.remotePath, bytes: e.bytes }, `archived ${e.remotePath} to ${e.target} (${formatBytes(e.bytes)})`);
      } else {
        t.heldBack++;
      }
    }),
    bus.on('upload.retry', (e) => {
      const t = of(e.target);
      const at = now();
      const why = shortReason(e.reason);
      if (!t.failing) {
        t.failing = { since: at, attempts: 0, reason: why };
        log.warn({ target: e.target, reason: e.reason }, `${e.target} is failing (${why}): retrying; each attempt is logged at debug level`);
      }
      t.failing.attempts++;
      t.failing.reason = why;
      if (opts.isParked?.(e.target)) return;
      const next = Math.max(1, Math.round(e.delayMs / 1000));
      record({
        target: e.target,
        status: 'up',
        reason: `retrying: ${why} (attempt ${e.attempt}, next in ${next} s)`,
        since: t.failing.since,
        retryAt: at + e.delayMs,
      });
    }),
  ];
  const timer = setInterval(summarise, summaryMs);
  timer.unref();
  let closed = false;
  return {
    close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      for (const off of offs) off();
      summarise();
    },
  };
}
