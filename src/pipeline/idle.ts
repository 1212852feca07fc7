import type { EventBus } from '../telemetry/bus.js';
import type { AllEvents } from './topology.js';

/**
 * After a check that found work, the next one (for the events since) waits this long: a check
 * reads the journal (a query per target, ~2 per delivery when every event checked on the next
 * turn, with the caches gone cold in between: ~40 µs each under the four-cloud bench), and while
 * uploads run nearly every turn has an event. Idleness is seen at most this much later.
 */
const RECHECK_MS = 50;

/**
 * Resolves once `isIdle()` is true: checked when `ready` resolves, then again after every event
 * on the bus (each upload that ends, each file journaled or skipped, each park emits one), on the
 * next turn of the event loop so the counters the event reports on have settled, or RECHECK_MS
 * after the last check that found work. One check runs at a time; events during a check run one
 * more. Rejects with `ready`'s or `isIdle`'s error.
 * `everyMs`: also checked that often, for work that ends with no local event (on a journal shared
 * by several daemons, another daemon may finish the last deliveries).
 */
export function whenIdle(bus: EventBus<AllEvents>, ready: Promise<unknown>, isIdle: () => Promise<boolean>, everyMs?: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let checking = false;
    let again = false;
    let started = false;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (error?: unknown) => {
      done = true;
      off();
      if (timer !== undefined) clearInterval(timer);
      if (error === undefined) resolve();
      else reject(error);
    };
    /** When the last check that found work ended (a later one waits RECHECK_MS from then). */
    let busyAt = -Infinity;
    const run = () => {
      // Settled while this check waited (ready failed): the journal may be closed by now.
      if (done) return;
      isIdle().then(
        (idle) => {
          checking = false;
          if (idle) return finish();
          busyAt = performance.now();
          if (again) {
            again = false;
            check();
          }
        },
        (e: unknown) => finish(e),
      );
    };
    const check = () => {
      if (done || !started) return;
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      const wait = busyAt + RECHECK_MS - performance.now();
      if (wait > 0) setTimeout(run, wait);
      else setImmediate(run);
    };
    const off = bus.onAny(check);
    if (everyMs !== undefined) {
      timer = setInterval(check, everyMs);
      timer.unref();
    }
    ready.then(
      () => {
        started = true;
        check();
      },
      (e: unknown) => finish(e),
    );
  });
}
