import type { EventBus } from '../telemetry/bus.js';
import type { AllEvents } from './topology.js';

/**
 * Resolves once `isIdle()` is true: checked when `ready` resolves, then again after every event
 * on the bus (each upload that ends, each file journaled or skipped, each park emits one), on the
 * next turn of the event loop so the counters the event reports on have settled. One check runs
 * at a time; events during a check run one more. Rejects with `ready`'s or `isIdle`'s error.
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
    const check = () => {
      if (done || !started) return;
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      setImmediate(() => {
        isIdle().then(
          (idle) => {
            checking = false;
            if (idle) finish();
            else if (again) {
              again = false;
              check();
            }
          },
          (e: unknown) => finish(e),
        );
      });
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
