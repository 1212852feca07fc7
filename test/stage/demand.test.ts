import { describe, expect, it } from 'vitest';
import { BroadcastDispatcher, subscribe, type Dispatch, type Dispatcher, type SubId } from '../../src/stage/index.js';
import { CountingProducer, EagerConsumer, flush, HoldingConsumer, recordingBus } from './helpers.js';

/**
 * Exact demand sequences. The producer emits exactly what is asked at once; the consumer handles
 * one event per call (perEvent) and the test acknowledges `ack` more of them at each step;
 * `asks` are the asks sent after that step, in order.
 */
const table: Array<{ max?: number; min?: number; steps: Array<{ ack: number; asks: number[] }> }> = [
  {
    max: 20,
    min: 2,
    steps: [
      { ack: 0, asks: [20] },
      { ack: 17, asks: [] },
      { ack: 1, asks: [18] },
      { ack: 2, asks: [] },
      { ack: 16, asks: [18] },
    ],
  },
  {
    // The defaults: maxDemand 1000, minDemand 500.
    steps: [
      { ack: 0, asks: [1000] },
      { ack: 499, asks: [] },
      { ack: 1, asks: [500] },
      { ack: 500, asks: [500] },
    ],
  },
  {
    max: 4,
    min: 2,
    steps: [
      { ack: 0, asks: [4] },
      { ack: 1, asks: [] },
      { ack: 1, asks: [2] },
      { ack: 1, asks: [] },
      { ack: 1, asks: [2] },
    ],
  },
  {
    max: 10,
    min: 0,
    steps: [
      { ack: 0, asks: [10] },
      { ack: 9, asks: [] },
      { ack: 1, asks: [10] },
    ],
  },
  {
    // maxDemand 1 defaults minDemand to 0: one at a time.
    max: 1,
    steps: [
      { ack: 0, asks: [1] },
      { ack: 1, asks: [1] },
      { ack: 1, asks: [1] },
    ],
  },
  {
    max: 5,
    min: 4,
    steps: [
      { ack: 0, asks: [5] },
      { ack: 1, asks: [1] },
      { ack: 2, asks: [1, 1] },
    ],
  },
];

describe('consumer demand, exact sequences', () => {
  it.each(table)('maxDemand $max, minDemand $min', async ({ max, min, steps }) => {
    const { bus, asks } = recordingBus();
    const producer = new CountingProducer({ name: 'p', bus });
    const consumer = new HoldingConsumer({ name: 'c', bus, perEvent: true });
    await producer.start();
    await consumer.start();
    const options: { maxDemand?: number; minDemand?: number } = {};
    if (max !== undefined) options.maxDemand = max;
    if (min !== undefined) options.minDemand = min;
    const sub = subscribe(consumer, producer, options);
    let seen = 0;
    for (const [i, step] of steps.entries()) {
      await consumer.ack(step.ack);
      await flush();
      expect(asks().slice(seen), `after step ${i}`).toEqual(step.asks);
      seen = asks().length;
      // Nothing is ever held beyond what was asked, and the producer owes nothing (it emits at once).
      expect(sub.received).toBeLessThanOrEqual(sub.asked);
      expect(consumer.held).toBeLessThanOrEqual(sub.maxDemand);
    }
    expect(producer.demands).toEqual(asks());
  });

  it('validates minDemand and maxDemand with a clear error', async () => {
    const p = new CountingProducer({ name: 'p' });
    const c = new EagerConsumer({ name: 'c' });
    const bad = [
      [{ maxDemand: 10, minDemand: 10 }, 'Expected `minDemand` to be an integer >= 0 and < maxDemand (10), got 10'],
      [{ maxDemand: 10, minDemand: -1 }, 'Expected `minDemand` to be an integer >= 0 and < maxDemand (10), got -1'],
      [{ maxDemand: 0 }, 'Expected `maxDemand` to be an integer >= 1, got 0'],
      [{ maxDemand: 2.5 }, 'Expected `maxDemand` to be an integer >= 1, got 2.5'],
    ] as const;
    for (const [options, message] of bad) {
      expect(() => subscribe(c, p, options)).toThrow(message);
      expect(() => subscribe(c, p, options)).toThrow(expect.objectContaining({ code: 'stage.invalid-demand' }));
    }
    subscribe(c, p, { maxDemand: 10, minDemand: 9 });
    expect(() => subscribe(c, p)).toThrow(expect.objectContaining({ code: 'stage.duplicate-subscriber' }));
  });

  it('waits for both stages to start before asking', async () => {
    const { bus, asks } = recordingBus();
    const p = new CountingProducer({ name: 'p', bus, dry: true });
    const c = new EagerConsumer({ name: 'c', bus });
    subscribe(c, p, { maxDemand: 3 });
    await flush();
    expect(asks()).toEqual([]);
    await c.start();
    await flush();
    expect(asks()).toEqual([3]);
    expect(p.demands).toEqual([]);
    await p.start();
    await flush();
    expect(p.demands).toEqual([3]);
    p.push(3);
    await flush();
    expect(c.received).toEqual([1, 2, 3]);
  });
});

describe('a producer keeps demand it cannot meet', () => {
  it('serves it when events come, buffered events first, and only asks handleDemand for the rest', async () => {
    const producer = new CountingProducer({ name: 'p', dry: true });
    const consumer = new HoldingConsumer({ name: 'c', perEvent: true });
    await producer.start();
    await consumer.start();
    const sub = subscribe(consumer, producer, { maxDemand: 20, minDemand: 2 });
    await flush();
    expect(producer.demands).toEqual([20]);
    expect(producer.pendingDemand).toBe(20);
    expect(consumer.received).toEqual([]);

    producer.push(8);
    await flush();
    expect(consumer.received).toHaveLength(8);
    expect(producer.pendingDemand).toBe(12);

    producer.push(17);
    await flush();
    expect(consumer.received).toHaveLength(20);
    expect(producer.pendingDemand).toBe(0);
    expect(producer.buffered).toBe(5);

    // Acking 18 re-asks 18: 5 come from the buffer, handleDemand hears of the other 13 only.
    await consumer.ack(18);
    await flush();
    expect(sub.asked).toBe(38);
    expect(consumer.received).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(producer.buffered).toBe(0);
    expect(producer.demands).toEqual([20, 13]);
    expect(producer.pendingDemand).toBe(13);
    expect(producer.subscriberDemands).toEqual([
      ['c', 20],
      ['c', 18],
    ]);
  });
});

describe('a consumer never holds more than it asked', () => {
  it('when the producer emits three times what was asked, the excess waits in the producer', async () => {
    const producer = new CountingProducer({ name: 'p', overEmit: 3 });
    const consumer = new HoldingConsumer({ name: 'c' });
    await producer.start();
    await consumer.start();
    const sub = subscribe(consumer, producer, { maxDemand: 10, minDemand: 5 });
    await flush();
    expect(consumer.held).toBe(10);
    expect(producer.buffered).toBe(20);
    for (let round = 0; round < 6; round++) {
      await consumer.ack(1);
      await flush();
      expect(consumer.maxHeld).toBeLessThanOrEqual(10);
      expect(sub.received).toBeLessThanOrEqual(sub.asked);
    }
    // Every event arrives once, in order, none lost.
    expect(consumer.received).toEqual(Array.from({ length: consumer.received.length }, (_, i) => i + 1));
    expect(consumer.received.length + producer.buffered).toBe(producer.next - 1);
  });

  it('crashes rather than take more than it asked from a broken dispatcher', async () => {
    // Assigns every event to every subscriber, ignoring demand.
    class Greedy implements Dispatcher<number> {
      readonly subs = new Set<SubId>();
      subscribe(sub: SubId): number {
        this.subs.add(sub);
        return 0;
      }
      cancel(sub: SubId): number {
        this.subs.delete(sub);
        return 0;
      }
      ask(_sub: SubId, n: number): number {
        return n;
      }
      available(): number {
        return this.subs.size > 0 ? Infinity : 0;
      }
      dispatch(events: number[]): Dispatch<number> {
        return { sends: [...this.subs].map((s) => [s, events.slice()] as [SubId, number[]]), leftovers: [] };
      }
      demandOf(): number {
        return 0;
      }
    }
    const { bus, events } = recordingBus();
    const producer = new CountingProducer({ name: 'p', overEmit: 2, dispatcher: new Greedy() });
    const consumer = new HoldingConsumer({ name: 'c', bus });
    await producer.start();
    await consumer.start();
    subscribe(consumer, producer, { maxDemand: 4 });
    await flush();
    expect(consumer.received).toEqual([]);
    expect(consumer.state).toBe('crashed');
    const crash = events.find(([n]) => n === 'stage.crash')?.[1] as { error: { code: string } };
    expect(crash.error.code).toBe('stage.over-delivery');
  });
});

describe('broadcast is paced by the slowest subscriber', () => {
  it('the fast subscriber never gets more than the slow one acknowledged plus its maxDemand', async () => {
    // Bounded, so a pacing bug fails the checks instead of looping forever.
    const producer = new CountingProducer({ name: 'p', dispatcher: new BroadcastDispatcher<number>(), limit: 1000 });
    const fast = new EagerConsumer({ name: 'fast' });
    const slow = new HoldingConsumer({ name: 'slow', perEvent: true });
    await producer.start();
    await fast.start();
    await slow.start();
    const fastSub = subscribe(fast, producer, { maxDemand: 10, minDemand: 5 });
    const slowSub = subscribe(slow, producer, { maxDemand: 10, minDemand: 5 });
    await flush();
    const check = () => expect(fast.received.length).toBeLessThanOrEqual(slowSub.acknowledged + fastSub.maxDemand);
    expect(fast.received).toHaveLength(10);
    expect(slow.received).toHaveLength(10);
    check();
    for (let i = 0; i < 10; i++) {
      await slow.ack(1);
      await flush();
      check();
    }
    // Slow acked 10: with min 5 it asked 5 after the 5th and 5 after the 10th ack.
    expect(slowSub.acknowledged).toBe(10);
    expect(fast.received).toHaveLength(20);
    expect(fast.received).toEqual(slow.received);
  });
});
