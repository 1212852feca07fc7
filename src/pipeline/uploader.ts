import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { Consumer } from '../stage/index.js';
import type { DelayPolicy } from '../retry/delay.js';
import type { Delivery, Store } from '../state/store.js';
import type { Emitter } from '../telemetry/bus.js';
import type { PipelineEvents } from '../telemetry/events.js';
import type { Target } from '../targets/target.js';
import { deliver, type TargetLimits } from './deliver.js';

export interface UploaderOptions {
  target: Target;
  store: Store;
  retry: DelayPolicy & { retries: number };
  log: Logger;
  bus?: Emitter<PipelineEvents>;
  limits?: TargetLimits;
  /** See DeliverContext.onCollision. */
  onCollision?: 'rename' | 'fail';
  /** Called after each delivery settles (a stale generation may have put it back to pending). */
  afterDelivery?: () => void;
}

/**
 * One consumer per target. It subscribes to the Archiver with the target's own
 * minDemand/maxDemand, so maxDemand is the most uploads in flight to that target; each delivery
 * is handled on its own (perEvent) and acknowledged when its upload settles. Per-item failures
 * stay with the item; a target-level problem (retries exhausted, fatal error) rejects, which
 * crashes this stage and hands the target to the supervisor.
 */
export class Uploader extends Consumer<Delivery> {
  private readonly abort = new AbortController();
  private readonly stopWaits = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly opts: UploaderOptions) {
    super({ name: `uploader:${opts.target.id}`, perEvent: true });
    // Every upload in flight listens on this one signal.
    setMaxListeners(0, this.abort.signal);
    setMaxListeners(0, this.stopWaits.signal);
  }

  get target(): Target {
    return this.opts.target;
  }

  get active(): number {
    return this.inFlight.size;
  }

  /**
   * Each delivery holds its slot (its event unacknowledged) until its put is done: then the next
   * one is asked for while the journal records this one (the next lease commits it with itself).
   * A delivery that fails after that (the journal's record) crashes the stage as a callback would.
   */
  protected override async handleEvents(events: Delivery[]): Promise<void> {
    for (const d of events) {
      let putDone = (): void => undefined;
      const freed = new Promise<void>((resolve) => {
        putDone = resolve;
      });
      const p = deliver(d, {
        target: this.opts.target,
        store: this.opts.store,
        retry: this.opts.retry,
        log: this.opts.log,
        bus: this.opts.bus,
        signal: this.abort.signal,
        waitSignal: this.stopWaits.signal,
        limits: this.opts.limits,
        onCollision: this.opts.onCollision,
        onPutDone: putDone,
      });
      this.inFlight.add(p);
      let released = false;
      void freed.then(() => {
        released = true;
      });
      const settled = p.then(
        () => undefined,
        (e: unknown) => {
          // One upload's target-level failure stops the others at once: they go back to pending.
          this.abort.abort(e);
          if (released) this.crash(e);
          throw e;
        },
      ).finally(() => {
        this.inFlight.delete(p);
        this.opts.afterDelivery?.();
      });
      // Rejections after the slot was released are the crash's; this one is handled here.
      settled.catch(() => undefined);
      await Promise.race([freed, settled]);
    }
  }

  /** Stops every upload under way (their deliveries go back to pending) and waits for them. */
  async abortAll(reason: unknown): Promise<void> {
    this.abort.abort(reason);
    await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Shutdown: uploads waiting to retry stop waiting and go back to pending at once; uploads under
   * way go on (they get shutdownMs).
   */
  stopRetrying(): void {
    this.stopWaits.abort(new Error('shutting down'));
  }

  /** Waits for the uploads under way. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }
}
