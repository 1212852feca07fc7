import { EventBus, type StageEvents } from '../../src/telemetry/bus.js';
import { Consumer, Producer, type ConsumerOptions, type ProducerOptions, type SubId } from '../../src/stage/index.js';

// Captured before any test fakes timers: flushing must still reach the real event loop.
const realSetImmediate = globalThis.setImmediate;

/** Lets every pending microtask chain run (the stages' messages), whatever the timers are. */
export async function flush(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => realSetImmediate(resolve));
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A bus that records every event, in order. */
export function recordingBus(): { bus: EventBus<StageEvents>; events: Array<[string, unknown]>; asks(consumer?: string): number[] } {
  const bus = new EventBus<StageEvents>();
  const events: Array<[string, unknown]> = [];
  bus.onAny((name, payload) => events.push([name, payload]));
  return {
    bus,
    events,
    asks: (consumer) =>
      events
        .filter(([n, p]) => n === 'stage.ask' && (consumer === undefined || (p as StageEvents['stage.ask']).consumer === consumer))
        .map(([, p]) => (p as StageEvents['stage.ask']).demand),
  };
}

/**
 * A producer of 1, 2, 3, … up to `limit` (default 10 000): by default it emits exactly what is
 * asked;
 * with `dry: true` it emits nothing on demand and only what the test `push`es.
 */
export class CountingProducer extends Producer<number> {
  next = 1;
  readonly demands: number[] = [];
  readonly subscriberDemands: Array<[SubId, number]> = [];
  readonly #dry: boolean;
  readonly #factor: number;
  readonly #limit: number;

  constructor(options: ProducerOptions<number> & { dry?: boolean; overEmit?: number; limit?: number }) {
    super(options);
    this.#dry = options.dry ?? false;
    this.#factor = options.overEmit ?? 1;
    // Never endless: a broken pacing rule then fails an assertion instead of looping forever.
    this.#limit = options.limit ?? 10_000;
  }

  protected handleDemand(n: number): void {
    this.demands.push(n);
    if (!this.#dry) this.push(Math.min(n * this.#factor, this.#limit - (this.next - 1)));
  }

  protected override handleSubscriberDemand(sub: SubId, n: number): void {
    this.subscriberDemands.push([sub, n]);
  }

  /** Emits the next `n` numbers now. */
  push(n: number): void {
    const events: number[] = [];
    for (let i = 0; i < n; i++) events.push(this.next++);
    this.emit(events);
  }

  /** Emits one event per call, `n` times (n separate batches). */
  pushOneByOne(n: number): void {
    for (let i = 0; i < n; i++) this.emit([this.next++]);
  }
}

/**
 * A consumer whose every handleEvents call stays in flight until the test settles it. It
 * records what it got and the most events it ever held at once.
 */
export class HoldingConsumer<E = number> extends Consumer<E> {
  readonly pending: Array<{ events: E[]; from: SubId; done: Deferred }> = [];
  readonly received: E[] = [];
  held = 0;
  maxHeld = 0;
  calls = 0;

  constructor(options: ConsumerOptions) {
    super(options);
  }

  protected handleEvents(events: E[], from: SubId): Promise<void> {
    this.calls++;
    this.received.push(...events);
    this.held += events.length;
    this.maxHeld = Math.max(this.maxHeld, this.held);
    const done = deferred();
    this.pending.push({ events, from, done });
    return done.promise.then(() => {
      this.held -= events.length;
    });
  }

  /** Settles the `n` oldest calls still in flight, then lets the stages react. */
  async ack(n = Infinity): Promise<void> {
    const calls = this.pending.splice(0, Math.min(n, this.pending.length));
    for (const c of calls) c.done.resolve();
    await flush();
  }

  /** Settles the call in flight at index `i` (0 = oldest), leaving the others in flight. */
  async ackAt(i: number): Promise<void> {
    const [call] = this.pending.splice(i, 1);
    call?.done.resolve();
    await flush();
  }

  /** Rejects the oldest call in flight. */
  async fail(error: unknown): Promise<void> {
    this.pending.shift()?.done.reject(error);
    await flush();
  }
}

/** A consumer that acknowledges at once and records what it got. */
export class EagerConsumer<E = number> extends Consumer<E> {
  readonly received: E[] = [];
  protected handleEvents(events: E[]): void {
    this.received.push(...events);
  }
}
