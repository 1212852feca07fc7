import type { Logger } from 'pino';
import type { EventBus } from '../telemetry/bus.js';
import type { PipelineEvents } from '../telemetry/events.js';

/** The events a notifier sends. */
export type NotifyEvent = 'target.parked' | 'target.recovered' | 'deliveries.failed' | 'copies.damaged';

/**
 * The JSON body of a webhook. `title` and `message` are what ntfy (JSON publishing, with `topic`)
 * shows; `body` and `type` are Apprise's names for the same; `priority` and `tags` are ntfy's.
 */
export interface NotifyPayload {
  event: NotifyEvent;
  target: string;
  reason: string;
  /** ISO 8601. */
  at: string;
  title: string;
  message: string;
  body: string;
  type: 'success' | 'warning' | 'failure';
  priority: number;
  tags: string[];
  topic?: string;
  /** target.parked: when it is tried again (ISO 8601). */
  retryAt?: string;
  /** deliveries.failed: how many failed in this batch, and the first few; copies.damaged: how many copies the scrub found missing or altered, and the first few (`failures`). */
  count?: number;
  failures?: Array<{ remotePath: string; reason: string }>;
}

export interface NotifierOptions {
  /** Where the JSON POSTs go; null: no webhook. */
  webhook?: string | null;
  /** GET after each healthy interval (healthchecks.io style); null: none. */
  pingUrl?: string | null;
  /** Least time between two webhooks of one event for one target. Default 5 minutes. */
  minIntervalMs?: number;
  /** Failed deliveries are gathered this long, then reported in one webhook. Default 30 s. */
  batchMs?: number;
  /**
   * A target back from parking counts as recovered at its first delivery, or once it has been up
   * this long without parking again. Default 60 s.
   */
  recoverAfterMs?: number;
  /** Default 60 s. */
  pingIntervalMs?: number;
  /** Decides whether an interval was healthy; no ping otherwise. Default: always healthy. */
  isHealthy?: () => Promise<boolean>;
  /** ntfy topic, put in the body for ntfy's JSON publishing (webhook = the server's root URL). */
  topic?: string | null;
  /** Per request. Default 10 s. */
  timeoutMs?: number;
  log: Logger;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
}

export interface Notifier {
  /** Resolves when every webhook and ping started so far has been answered or has failed. */
  settled(): Promise<void>;
  /** Unsubscribes, stops the timers, sends the failures still gathered, waits for the sends. Idempotent. */
  close(): Promise<void>;
}

interface TargetState {
  /** What the webhook's audience was last told. */
  reported: 'up' | 'down';
  actual: 'up' | 'down';
  reason: string;
  retryAt: number | null;
  lastSent: Map<NotifyEvent, number>;
  stateTimer?: NodeJS.Timeout | undefined;
  recoverTimer?: NodeJS.Timeout | undefined;
  failed: number;
  samples: Array<{ remotePath: string; reason: string }>;
  failTimer?: NodeJS.Timeout | undefined;
  /** Scrub findings not told yet. */
  damaged: number;
  damagedSamples: Array<{ remotePath: string; reason: string }>;
  damageTimer?: NodeJS.Timeout | undefined;
}

const SAMPLES = 5;

/**
 * Sends webhooks from the bus: `target.parked` when a target is parked, `target.recovered` when it
 * works again, `deliveries.failed` for failed deliveries, `copies.damaged` when the scrub found
 * archived copies missing or altered (after its round, at most one per `minIntervalMs`); and pings `pingUrl` after each healthy
 * interval.
 *
 * Guarantees:
 * - One webhook per change of state, not per file: a target parked with 20 deliveries waiting
 *   gives one `target.parked`; the supervisor's retries while it stays broken (down, up, down…)
 *   give nothing more, because recovery counts only after a delivery or `recoverAfterMs` up.
 * - Rate limit per (event, target): at most one per `minIntervalMs`. A state change that comes
 *   sooner is held and sent at the end of the window if it still holds (a flap inside the window
 *   sends nothing); the last state is always reported in the end.
 * - Failures are batched per target over `batchMs` (and held by the rate limit): one webhook with
 *   the count and the first few paths and reasons.
 * - Never throws: a webhook that fails is logged, not retried.
 * Callers must `close()` it (timers are unref'd, so a forgotten one does not hold the process).
 */
export function createNotifier(bus: Pick<EventBus<PipelineEvents>, 'on'>, opts: NotifierOptions): Notifier {
  const minInterval = opts.minIntervalMs ?? 300_000;
  const batchMs = opts.batchMs ?? 30_000;
  const recoverAfter = opts.recoverAfterMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const doFetch = opts.fetch ?? fetch;
  const log = opts.log.child({ stage: 'notify' });
  const webhook = opts.webhook ?? null;
  const targets = new Map<string, TargetState>();
  const sending = new Set<Promise<void>>();
  let closed = false;

  const stateOf = (target: string): TargetState => {
    let s = targets.get(target);
    if (!s) targets.set(target, (s = { reported: 'up', actual: 'up', reason: '', retryAt: null, lastSent: new Map(), failed: 0, samples: [], damaged: 0, damagedSamples: [] }));
    return s;
  };
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t;
  };
  const track = (p: Promise<void>) => {
    sending.add(p);
    void p.finally(() => sending.delete(p));
  };

  const post = (payload: NotifyPayload) => {
    if (webhook === null) return;
    track(
      (async () => {
        try {
          const res = await doFetch(webhook, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-title': payload.title, 'x-priority': String(payload.priority), 'x-tags': payload.tags.join(',') },
            body: JSON.stringify(payload),
            signal: AbortSignal.timeout(timeoutMs),
          });
          await res.arrayBuffer().catch(() => undefined);
          if (!res.ok) log.warn({ event: payload.event, target: payload.target, status: res.status }, 'webhook refused');
        } catch (e) {
          log.warn({ event: payload.event, target: payload.target, err: e }, 'webhook failed');
        }
      })(),
    );
  };

  const payload = (event: NotifyEvent, target: string, reason: string, extra: Partial<NotifyPayload>): NotifyPayload => {
    const [title, message, type, priority, tags]: [string, string, NotifyPayload['type'], number, string[]] =
      event === 'target.parked'
        ? [`Stagecoach: ${target} is parked`, `Target ${target} is parked: ${reason}. Its files wait on disk until it works again.`, 'failure', 4, ['warning']]
        : event === 'target.recovered'
          ? [`Stagecoach: ${target} recovered`, `Target ${target} works again; its backlog is being delivered.`, 'success', 3, ['white_check_mark']]
          : event === 'copies.damaged'
            ? [`Stagecoach: ${extra.count ?? 0} copies on ${target} missing or altered`, `The scrub found ${extra.count ?? 0} archived copies on ${target} missing or altered (first: ${reason}); they are archived again.`, 'warning', 3, ['mag']]
            : [`Stagecoach: ${extra.count ?? 0} deliveries to ${target} failed`, `${extra.count ?? 0} deliveries to ${target} failed, first: ${reason}`, 'warning', 3, ['x']];
    return {
      event,
      target,
      reason,
      at: new Date().toISOString(),
      title,
      message,
      body: message,
      type,
      priority,
      tags,
      ...(opts.topic ? { topic: opts.topic } : {}),
      ...extra,
    };
  };

  const reconcile = (target: string) => {
    const s = stateOf(target);
    if (closed || s.actual === s.reported || s.stateTimer) return;
    const event: NotifyEvent = s.actual === 'down' ? 'target.parked' : 'target.recovered';
    const wait = (s.lastSent.get(event) ?? -Infinity) + minInterval - Date.now();
    if (wait > 0) {
      s.stateTimer = later(wait, () => {
        s.stateTimer = undefined;
        reconcile(target);
      });
      return;
    }
    s.reported = s.actual;
    s.lastSent.set(event, Date.now());
    post(
      payload(
        event,
        target,
        s.actual === 'down' ? s.reason : 'recovered',
        s.actual === 'down' && s.retryAt !== null ? { retryAt: new Date(s.retryAt).toISOString() } : {},
      ),
    );
  };

  const recovered = (target: string) => {
    const s = stateOf(target);
    clearTimeout(s.recoverTimer);
    s.recoverTimer = undefined;
    if (s.actual === 'up') return;
    s.actual = 'up';
    reconcile(target);
  };

  const flushFailures = (target: string) => {
    const s = stateOf(target);
    s.failTimer = undefined;
    if (s.failed === 0) return;
    const count = s.failed;
    const failures = s.samples;
    s.failed = 0;
    s.samples = [];
    s.lastSent.set('deliveries.failed', Date.now());
    post(payload('deliveries.failed', target, failures[0]?.reason ?? 'failed', { count, failures }));
  };

  const flushDamaged = (target: string) => {
    const s = stateOf(target);
    s.damageTimer = undefined;
    if (s.damaged === 0) return;
    const count = s.damaged;
    const failures = s.damagedSamples;
    s.damaged = 0;
    s.damagedSamples = [];
    s.lastSent.set('copies.damaged', Date.now());
    post(payload('copies.damaged', target, failures[0]?.reason ?? 'missing or altered', { count, failures }));
  };

  const offs = [
    bus.on('verify.finding', (e) => {
      if (closed) return;
      const s = stateOf(e.target);
      s.damaged++;
      if (s.damagedSamples.length < SAMPLES) s.damagedSamples.push({ remotePath: e.remotePath, reason: `${e.problem}: ${e.detail}` });
    }),
    bus.on('verify.stop', (e) => {
      const s = stateOf(e.target);
      if (closed || s.damaged === 0 || s.damageTimer) return;
      // One webhook per scrub round at most, and per minIntervalMs.
      s.damageTimer = later((s.lastSent.get('copies.damaged') ?? -Infinity) + minInterval - Date.now(), () => flushDamaged(e.target));
    }),
    bus.on('target.down', (e) => {
      const s = stateOf(e.target);
      clearTimeout(s.recoverTimer);
      s.recoverTimer = undefined;
      s.actual = 'down';
      s.reason = e.reason;
      s.retryAt = e.retryAt;
      reconcile(e.target);
    }),
    bus.on('target.up', (e) => {
      const s = stateOf(e.target);
      if (s.actual !== 'down' || s.recoverTimer) return;
      s.recoverTimer = later(recoverAfter, () => recovered(e.target));
    }),
    bus.on('upload.stop', (e) => {
      if (targets.get(e.target)?.actual === 'down') recovered(e.target);
    }),
    bus.on('upload.exception', (e) => {
      if (e.status !== 'failed' || closed) return;
      const s = stateOf(e.target);
      s.failed++;
      if (s.samples.length < SAMPLES) s.samples.push({ remotePath: e.remotePath, reason: e.reason });
      if (!s.failTimer) {
        const wait = Math.max(batchMs, (s.lastSent.get('deliveries.failed') ?? -Infinity) + minInterval - Date.now());
        s.failTimer = later(wait, () => flushFailures(e.target));
      }
    }),
  ];

  let pinger: NodeJS.Timeout | undefined;
  if (opts.pingUrl) {
    const pingUrl = opts.pingUrl;
    pinger = setInterval(() => {
      track(
        (async () => {
          try {
            if (opts.isHealthy && !(await opts.isHealthy())) {
              log.warn('unhealthy interval: no ping');
              return;
            }
            const res = await doFetch(pingUrl, { method: 'GET', signal: AbortSignal.timeout(timeoutMs) });
            await res.arrayBuffer().catch(() => undefined);
            if (!res.ok) log.warn({ status: res.status }, 'ping refused');
          } catch (e) {
            log.warn({ err: e }, 'ping failed');
          }
        })(),
      );
    }, opts.pingIntervalMs ?? 60_000);
    pinger.unref();
  }

  const settled = async () => {
    while (sending.size > 0) await Promise.allSettled([...sending]);
  };
  let closing: Promise<void> | undefined;
  return {
    settled,
    close: () =>
      (closing ??= (async () => {
        for (const off of offs) off();
        clearInterval(pinger);
        for (const [target, s] of targets) {
          clearTimeout(s.stateTimer);
          clearTimeout(s.recoverTimer);
          clearTimeout(s.failTimer);
          clearTimeout(s.damageTimer);
          // What was gathered is sent now rather than lost with the process.
          flushFailures(target);
          flushDamaged(target);
        }
        closed = true;
        await settled();
      })()),
  };
}
