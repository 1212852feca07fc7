import { describe, expect, it } from 'vitest';
import {
  BroadcastDispatcher,
  ProducerConsumer,
  subscribe,
  type ProducerConsumerOptions,
  type SubId,
  type Subscription,
} from '../../src/stage/index.js';
import { CountingProducer, deferred, EagerConsumer, flush, HoldingConsumer, recordingBus, type Deferred } from './helpers.js';

/** Maps each event through `fn`; optionally keeps each call in flight until the test settles it. */
class MapStage<I, O> extends ProducerConsumer<I, O> {
  readonly calls: Array<{ events: I[]; done: Deferred }> = [];
  readonly cancels: string[] = [];
  constructor(
    options: ProducerConsumerOptions<O>,
    private readonly fn: (e: I) => O[],
    private readonly hold = false,
  ) {
    super(options);
  }
  protected async handleEvents(events: I[]): Promise<O[]> {
    const done = deferred();
    this.calls.push({ events, done });
    if (this.hold) await done.promise;
    else await Promise.resolve();
    return events.flatMap(this.fn);
  }
  protected override handleCancel(sub: Subscription, reason: string): void {
    this.cancels.push(`${sub.id}:${reason}`);
  }
  async release(): Promise<void> {
    for (const c of this.calls) c.done.resolve();
    await flush();
  }
}

describe('producer-consumer', () => {
  it('a chain delivers every event once, in order, under small demands', async () => {
    const source = new CountingProducer({ name: 'source', limit: 100 });
    const odd = new MapStage<number, number>({ name: 'odd' }, (n) => (n % 2 === 1 ? [n * 10] : []));
    const plus = new MapStage<number, string>({ name: 'plus' }, (n) => [`${n + 1}`]);
    const sink = new EagerConsumer<string>({ name: 'sink' });
    for (const s of [source, odd, plus, sink]) await s.start();
    const a = subscribe(odd, source, { maxDemand: 7, minDemand: 3 });
    const b = subscribe(plus, odd, { maxDemand: 5, minDemand: 1 });
    const c = subscribe(sink, plus, { maxDemand: 3, minDemand: 0 });
    await flush(10);
    const expected = Array.from({ length: 50 }, (_, i) => `${(2 * i + 1) * 10 + 1}`);
    expect(sink.received).toEqual(expected);
    expect(a.acknowledged).toBe(100);
    expect(b.acknowledged).toBe(50);
    expect(c.acknowledged).toBe(50);
    for (const s of [a, b, c]) expect(s.received).toBeLessThanOrEqual(s.asked);
    expect(odd.calls.every((call) => call.events.length <= 7)).toBe(true);
  });

  it('hands input to handleEvents only while downstream can take it', async () => {
    const source = new CountingProducer({ name: 'source' });
    const pc = new MapStage<number, number>({ name: 'pc' }, (n) => [n]);
    await source.start();
    await pc.start();
    const up = subscribe(pc, source, { maxDemand: 10, minDemand: 5 });
    await flush();
    // No subscriber: nothing is handled, the input waits unacknowledged, upstream is not asked again.
    expect(pc.calls).toEqual([]);
    expect(pc.queued).toBe(10);
    expect(up.asked).toBe(10);
    const sink = new HoldingConsumer({ name: 'sink' });
    await sink.start();
    subscribe(sink, pc, { maxDemand: 4, minDemand: 2 });
    await flush();
    expect(pc.calls.map((c) => c.events)).toEqual([[1, 2, 3, 4]]);
    expect(sink.received).toEqual([1, 2, 3, 4]);
    expect(pc.queued).toBe(6);
    expect(up.acknowledged).toBe(4);
  });

  it('with a broadcast dispatcher, the slowest subscriber paces everything upstream', async () => {
    // Bounded, so a pacing bug fails the checks instead of looping forever.
    const source = new CountingProducer({ name: 'source', limit: 1000 });
    const pc = new MapStage<number, number>({ name: 'pc', dispatcher: new BroadcastDispatcher<number>() }, (n) => [n]);
    const fast = new EagerConsumer({ name: 'fast' });
    const slow = new HoldingConsumer({ name: 'slow', perEvent: true });
    for (const s of [source, pc, fast, slow]) await s.start();
    const fastSub = subscribe(fast, pc, { maxDemand: 10, minDemand: 5 });
    const slowSub = subscribe(slow, pc, { maxDemand: 10, minDemand: 5 });
    subscribe(pc, source, { maxDemand: 10, minDemand: 5 });
    await flush();
    const check = () => {
      expect(fast.received.length).toBeLessThanOrEqual(slowSub.acknowledged + fastSub.maxDemand);
      // Upstream is bounded too: the slow one's acks, plus what it holds, plus the stage's queue.
      expect(source.next - 1).toBeLessThanOrEqual(slowSub.acknowledged + 10 + 10);
      expect(pc.queued).toBeLessThanOrEqual(10);
    };
    check();
    expect(fast.received).toHaveLength(10);
    for (let i = 0; i < 12; i++) {
      await slow.ack(1);
      check();
    }
    expect(fast.received.length).toBeGreaterThan(10);
    expect(fast.received).toEqual(slow.received);
  });

  it('handles input as it comes when the dispatcher reports Infinity', async () => {
    const source = new CountingProducer({ name: 'source', dry: true });
    const unbounded = new BroadcastDispatcher<number>();
    unbounded.available = () => Infinity;
    const pc = new MapStage<number, number>({ name: 'pc', dispatcher: unbounded }, () => []);
    await source.start();
    await pc.start();
    subscribe(pc, source, { maxDemand: 8 });
    await flush();
    source.pushOneByOne(3);
    source.push(5);
    await flush();
    // 1 is handled at once; 2..8 queued while that call ran and go in the next call, together.
    expect(pc.calls.map((c) => c.events)).toEqual([[1], [2, 3, 4, 5, 6, 7, 8]]);
  });

  it('hands batches of one subscription queued while busy in one call, never more than available()', async () => {
    const source = new CountingProducer({ name: 'source', dry: true });
    const bounded = new BroadcastDispatcher<number>();
    bounded.available = () => 3;
    const pc = new MapStage<number, number>({ name: 'pc', dispatcher: bounded }, () => []);
    await source.start();
    await pc.start();
    subscribe(pc, source, { maxDemand: 8 });
    await flush();
    source.pushOneByOne(7);
    await flush();
    expect(pc.calls.map((c) => c.events)).toEqual([[1], [2, 3, 4], [5, 6, 7]]);
  });

  it('stop hands queued input on while there is demand, waits, then cancels both ways', async () => {
    const { bus, events } = recordingBus();
    const source = new CountingProducer({ name: 'source' });
    const pc = new MapStage<number, number>({ name: 'pc', bus }, (n) => [n], true);
    const sink = new EagerConsumer({ name: 'sink' });
    for (const s of [source, pc, sink]) await s.start();
    subscribe(sink, pc, { maxDemand: 100 });
    const up = subscribe(pc, source, { maxDemand: 6, minDemand: 3 });
    await flush();
    expect(pc.calls).toHaveLength(1);
    let stopped = false;
    const stopping = pc.stop().then(() => (stopped = true));
    await flush();
    expect(up.active).toBe(false);
    expect(stopped).toBe(false);
    await pc.release();
    expect(stopped).toBe(true);
    await stopping;
    expect(sink.received).toEqual([1, 2, 3, 4, 5, 6]);
    expect(sink.subscriptions).toEqual([]);
    expect(events.filter(([n]) => n === 'stage.stop')).toEqual([['stage.stop', { stage: 'pc', reason: 'shutdown' }]]);
  });
});

describe('consumer concurrency', () => {
  it('perEvent with maxDemand 4 keeps at most 4 in flight, and a slow one does not hold the others', async () => {
    const producer = new CountingProducer({ name: 'p' });
    const uploader = new HoldingConsumer({ name: 'gdrive', perEvent: true });
    await producer.start();
    await uploader.start();
    const sub = subscribe(uploader, producer, { maxDemand: 4, minDemand: 2 });
    await flush();
    expect(uploader.pending.map((c) => c.events)).toEqual([[1], [2], [3], [4]]);
    // Event 1 stays in flight; 2 and 3 finish: the credit falls to 2, so 2 more come.
    await uploader.ackAt(1);
    expect(uploader.pending).toHaveLength(3);
    await uploader.ackAt(1);
    expect(uploader.pending.map((c) => c.events[0])).toEqual([1, 4, 5, 6]);
    for (let i = 0; i < 20; i++) {
      // Any but the oldest (event 1, the slow upload).
      await uploader.ackAt(1 + (i % (uploader.pending.length - 1)));
      expect(uploader.pending.length).toBeLessThanOrEqual(4);
    }
    expect(uploader.maxHeld).toBe(4);
    expect(sub.received - sub.acknowledged).toBe(uploader.pending.length);
    expect(uploader.pending.map((c) => c.events[0])).toContain(1);
  });

  it('each batch is handed over at once, even while earlier ones are in flight', async () => {
    const producer = new CountingProducer({ name: 'p', dry: true });
    const consumer = new HoldingConsumer({ name: 'c' });
    await producer.start();
    await consumer.start();
    subscribe(consumer, producer, { maxDemand: 4, minDemand: 2 });
    await flush();
    producer.pushOneByOne(4);
    await flush();
    expect(consumer.calls).toBe(4);
    expect(consumer.pending.map((c) => c.events)).toEqual([[1], [2], [3], [4]]);
  });
});

describe('lifecycle', () => {
  it('stop cancels upstream, waits for the handleEvents in flight and for events already sent', async () => {
    const { bus, events } = recordingBus();
    const producer = new CountingProducer({ name: 'p', dry: true, bus });
    const consumer = new HoldingConsumer({ name: 'c', bus });
    await producer.start();
    await consumer.start();
    const sub = subscribe(consumer, producer, { maxDemand: 10 });
    await flush();
    producer.push(2);
    await flush();
    producer.push(3);
    // Stop in the same tick: the 3 are on their way and must still be handled.
    let stopped = false;
    const stopping = consumer.stop().then(() => (stopped = true));
    expect(sub.active).toBe(false);
    await flush();
    expect(consumer.received).toEqual([1, 2, 3, 4, 5]);
    expect(stopped).toBe(false);
    await consumer.ack(1);
    expect(stopped).toBe(false);
    await consumer.ack(1);
    expect(stopped).toBe(true);
    await stopping;
    expect(consumer.state).toBe('stopped');
    expect(events.filter(([n]) => n === 'stage.ask')).toHaveLength(1);
    expect(events.at(-1)).toEqual(['stage.stop', { stage: 'c', reason: 'shutdown' }]);
    expect(consumer.stop()).toBe(consumer.stop());
    // Nothing more is sent to it: the producer buffers.
    producer.push(1);
    await flush();
    expect(consumer.received).toHaveLength(5);
    expect(producer.buffered).toBe(1);
  });

  it('stop with nothing in flight still handles the events already on their way', async () => {
    const producer = new CountingProducer({ name: 'p', dry: true });
    const consumer = new EagerConsumer({ name: 'c' });
    await producer.start();
    await consumer.start();
    subscribe(consumer, producer, { maxDemand: 10 });
    await flush();
    producer.push(2);
    const stopping = consumer.stop();
    await stopping;
    expect(consumer.received).toEqual([1, 2]);
  });

  it('a handleEvents rejection crashes the stage: subscriptions cancelled, crash reported once', async () => {
    const { bus, events } = recordingBus();
    const producer = new CountingProducer({ name: 'p', bus });
    const consumer = new HoldingConsumer({ name: 'c', bus });
    await producer.start();
    await consumer.start();
    const sub = subscribe(consumer, producer, { maxDemand: 5 });
    await flush();
    const boom = new Error('boom');
    await consumer.fail(boom);
    expect(consumer.state).toBe('crashed');
    expect(sub.active).toBe(false);
    expect(events.filter(([n]) => n === 'stage.crash')).toEqual([['stage.crash', { stage: 'c', error: boom, restarts: 0 }]]);
    // What it held is gone; the producer owes it nothing more.
    expect(producer.pendingDemand).toBe(0);
    await expect(consumer.stop()).resolves.toBeUndefined();
  });

  it('with a crash listener, the stage tells it and leaves the event to the listener', async () => {
    const { bus, events } = recordingBus();
    class Thrower extends EagerConsumer {
      protected override handleEvents(): void {
        throw new Error('sync boom');
      }
    }
    const producer = new CountingProducer({ name: 'p' });
    const consumer = new Thrower({ name: 'c', bus });
    const seen: unknown[] = [];
    consumer.onCrash((e) => seen.push(e));
    await producer.start();
    await consumer.start();
    subscribe(consumer, producer, { maxDemand: 5 });
    await flush();
    expect(seen).toEqual([new Error('sync boom')]);
    expect(events.some(([n]) => n === 'stage.crash')).toBe(false);
  });

  it('a producer whose handleDemand throws crashes and its consumers hear why', async () => {
    class Broken extends CountingProducer {
      protected override handleDemand(): void {
        throw new Error('no source');
      }
    }
    const producer = new Broken({ name: 'p' });
    const pc = new MapStage<number, number>({ name: 'pc' }, (n) => [n]);
    const seen: unknown[] = [];
    producer.onCrash((e) => seen.push(e));
    await producer.start();
    await pc.start();
    const sub = subscribe(pc, producer);
    await flush();
    expect(producer.state).toBe('crashed');
    expect(seen).toEqual([new Error('no source')]);
    expect(sub.active).toBe(false);
    expect(pc.cancels).toEqual(['pc:crash']);
    expect(pc.state).toBe('running');
    expect(() => subscribe(pc, producer, { id: 'again' })).toThrow(expect.objectContaining({ code: 'stage.not-running' }));
  });

  it('init runs before any callback; a failing init fails start', async () => {
    const order: string[] = [];
    class Late extends CountingProducer {
      protected override async init(): Promise<void> {
        await flush();
        order.push('init');
      }
      protected override handleDemand(n: number): void {
        order.push(`demand ${n}`);
      }
    }
    const producer = new Late({ name: 'p' });
    const consumer = new EagerConsumer({ name: 'c' });
    await consumer.start();
    subscribe(consumer, producer, { maxDemand: 2 });
    await flush();
    await producer.start();
    await flush();
    expect(order).toEqual(['init', 'demand 2']);

    class Failing extends EagerConsumer {
      protected override init(): void {
        throw new Error('no credentials');
      }
    }
    const failing = new Failing({ name: 'f' });
    await expect(failing.start()).rejects.toThrow('no credentials');
    expect(failing.state).toBe('crashed');
  });

  it('handleSubscriberDemand learns which subscriber asked', async () => {
    const producer = new CountingProducer({ name: 'p', dispatcher: new BroadcastDispatcher<number>(), dry: true });
    const a = new EagerConsumer({ name: 'a' });
    const b = new EagerConsumer({ name: 'b' });
    for (const s of [producer, a, b]) await s.start();
    subscribe(a, producer, { maxDemand: 3, id: 'gdrive' as SubId });
    subscribe(b, producer, { maxDemand: 5, id: 'dropbox' });
    await flush();
    expect(producer.subscriberDemands).toEqual([
      ['gdrive', 3],
      ['dropbox', 5],
    ]);
    // Broadcast: upstream demand is the minimum, 3, asked in one go once both had asked.
    expect(producer.pendingDemand).toBe(3);
  });
});
