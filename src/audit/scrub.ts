/**
 * Scrub: verify (src/audit/verify.ts) run by the daemon in the background, a little at a time.
 * With `verify: { every: 7d, sample: 100% }`, each target's copies are checked once per week:
 * every tick (a 168th of the period, between 1 s and 1 h) each target checks its share of that
 * period's sample, least recently verified first, one lookup at a time and at most a quarter of
 * the target's `requestsPerSecond` (2 a second without one), so uploads keep the target's limits.
 * A parked target is left alone until it is back. Findings go back to pending as with `verify`
 * (the pipeline is poked, so a running daemon archives them again at once)
 * and are told on the bus (`verify.finding`, `verify.stop`): the status page, /metrics and the
 * webhook listen there.
 */
import type { Logger } from 'pino';
import type { AllEvents } from '../pipeline/topology.js';
import type { AuditStore } from '../state/audit.js';
import type { Store } from '../state/store.js';
import type { Target } from '../targets/target.js';
import type { EventBus } from '../telemetry/bus.js';
import { verifyTarget } from './verify.js';

export interface ScrubOptions {
  /** The period over which `sample` percent of each target's copies are checked (ms). */
  everyMs: number;
  /** Percent, in (0, 100]. */
  sample: number;
  targets: readonly Target[];
  /** Per target id, its configured `requestsPerSecond` (null: none). */
  requestsPerSecond: ReadonlyMap<string, number | null>;
  audit: AuditStore;
  /** For the parked state of each target. */
  store: Pick<Store, 'health'>;
  bus: Pick<EventBus<AllEvents>, 'emit'>;
  log: Logger;
  /** Tells the pipeline a target has new pending work (a delivery sent back by the scrub). */
  poke?: (target: string) => void;
}

export interface Scrub {
  /** Ms between two rounds. */
  readonly tickMs: number;
  /** Runs one round now (tests; the timer calls it too). Rounds never overlap. */
  round(): Promise<void>;
  /** Stops the timer and waits for the round under way. Idempotent. */
  stop(): Promise<void>;
}

export function scrubTickMs(everyMs: number): number {
  return Math.min(3_600_000, Math.max(1000, Math.round(everyMs / 168)));
}

/** Starts the scrub timer; see the module comment. */
export function startScrub(o: ScrubOptions): Scrub {
  const tickMs = scrubTickMs(o.everyMs);
  const ac = new AbortController();
  let running: Promise<void> | null = null;
  let stopping: Promise<void> | null = null;

  const one = async (t: Target): Promise<void> => {
    const total = await o.audit.countDone(t.id);
    const n = Math.ceil((total * o.sample * tickMs) / (100 * o.everyMs));
    if (n === 0) return;
    const rps = o.requestsPerSecond.get(t.id);
    const started = Date.now();
    const s = await verifyTarget(t, o.audit, {
      limit: n,
      concurrency: 1,
      requestsPerSecond: rps ? rps / 4 : 2,
      signal: ac.signal,
      onFinding: (f) => o.bus.emit('verify.finding', f),
    });
    o.bus.emit('verify.stop', { target: t.id, checked: s.checked, ok: s.ok, missing: s.missing, altered: s.altered, errors: s.errors, error: s.error, durationMs: Date.now() - started });
    if (s.findings.some((f) => f.requeued)) o.poke?.(t.id);
    if (s.missing + s.altered > 0) o.log.warn({ target: t.id, missing: s.missing, altered: s.altered }, 'scrub: copies missing or altered; they are archived again');
    if (s.errors > 0) o.log.warn({ target: t.id, errors: s.errors, error: s.error }, 'scrub: some lookups failed');
  };

  const round = (): Promise<void> => {
    if (running || ac.signal.aborted) return running ?? Promise.resolve();
    running = (async () => {
      const parked = new Set((await o.store.health()).filter((h) => h.status === 'down').map((h) => h.target));
      await Promise.all(
        o.targets
          .filter((t) => !parked.has(t.id))
          .map((t) =>
            one(t).catch((err: unknown) => {
              if (ac.signal.aborted) return;
              o.log.error({ err, target: t.id }, 'scrub round failed');
            }),
          ),
      );
    })().finally(() => {
      running = null;
    });
    return running;
  };

  const timer = setInterval(() => void round(), tickMs);
  timer.unref();
  return {
    tickMs,
    round,
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        ac.abort();
        await running;
      })();
      return stopping;
    },
  };
}
