import type { AllEvents } from '../pipeline/topology.js';
import type { EventBus } from '../telemetry/bus.js';
import type { PipelineEvents } from '../telemetry/events.js';

/** What the status page shows of the scrub: per target its totals since start, and the latest findings. */
export interface VerifyStatus {
  targets: Array<{ target: string; checked: number; ok: number; missing: number; altered: number; errors: number; lastRoundAt: number | null; lastError: string | null }>;
  /** Newest first, at most `limit`. */
  findings: Array<PipelineEvents['verify.finding'] & { at: number }>;
}

/**
 * The scrub's findings as the bus tells them (`verify.stop`, `verify.finding`), kept in memory
 * since the daemon started (the journal keeps the deliveries sent back to pending). Callers must
 * `close()` to unsubscribe.
 */
export class VerifyState {
  readonly #totals = new Map<string, VerifyStatus['targets'][number]>();
  readonly #findings: VerifyStatus['findings'] = [];
  readonly #offs: Array<() => void>;

  constructor(bus: Pick<EventBus<AllEvents>, 'on'>, private readonly limit = 20) {
    this.#offs = [
      bus.on('verify.stop', (e) => {
        const t = this.#totals.get(e.target) ?? { target: e.target, checked: 0, ok: 0, missing: 0, altered: 0, errors: 0, lastRoundAt: null, lastError: null };
        t.checked += e.checked;
        t.ok += e.ok;
        t.missing += e.missing;
        t.altered += e.altered;
        t.errors += e.errors;
        t.lastRoundAt = Date.now();
        if (e.error !== null) t.lastError = e.error;
        this.#totals.set(e.target, t);
      }),
      bus.on('verify.finding', (e) => {
        this.#findings.unshift({ ...e, at: Date.now() });
        this.#findings.length = Math.min(this.#findings.length, this.limit);
      }),
    ];
  }

  status(): VerifyStatus {
    return { targets: [...this.#totals.values()].map((t) => ({ ...t })), findings: this.#findings.map((f) => ({ ...f })) };
  }

  close(): void {
    for (const off of this.#offs.splice(0)) off();
  }
}
