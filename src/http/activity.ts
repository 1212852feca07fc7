import type { AllEvents } from '../pipeline/topology.js';
import type { EventBus } from '../telemetry/bus.js';

/** Files and bytes archived by one target in one minute. `at`: the minute's start, epoch ms. */
export interface ThroughputSample {
  at: number;
  files: number;
  bytes: number;
}

const MINUTE = 60_000;

/**
 * Per-target throughput of the last `minutes` minutes (default 60), kept in memory from the bus's
 * `upload.stop` events (lost on restart, by design: the status page shows the live hour).
 * Guarantees: `samples(target)` returns exactly `minutes` samples, oldest first, the last one being
 * the current minute, zeros where nothing was archived. Callers must call `close()` to unsubscribe.
 */
export class Throughput {
  readonly #minutes: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Map<number, ThroughputSample>>();
  readonly #off: () => void;

  constructor(bus: Pick<EventBus<AllEvents>, 'on'>, opts: { minutes?: number; now?: () => number } = {}) {
    this.#minutes = opts.minutes ?? 60;
    this.#now = opts.now ?? Date.now;
    this.#off = bus.on('upload.stop', (e) => this.add(e.target, e.bytes));
  }

  /** Counts one archived file of `bytes` for `target` in the current minute. */
  add(target: string, bytes: number): void {
    const at = Math.floor(this.#now() / MINUTE) * MINUTE;
    let m = this.#buckets.get(target);
    if (!m) this.#buckets.set(target, (m = new Map()));
    const s = m.get(at) ?? { at, files: 0, bytes: 0 };
    s.files++;
    s.bytes += bytes;
    m.set(at, s);
    // Bounded memory: drop minutes that fell out of the window.
    const oldest = at - (this.#minutes - 1) * MINUTE;
    for (const k of m.keys()) if (k < oldest) m.delete(k);
  }

  samples(target: string): ThroughputSample[] {
    const now = Math.floor(this.#now() / MINUTE) * MINUTE;
    const m = this.#buckets.get(target);
    const out: ThroughputSample[] = [];
    for (let i = this.#minutes - 1; i >= 0; i--) {
      const at = now - i * MINUTE;
      const s = m?.get(at);
      out.push(s ? { ...s } : { at, files: 0, bytes: 0 });
    }
    return out;
  }

  close(): void {
    this.#off();
  }
}
