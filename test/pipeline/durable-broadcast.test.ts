import { describe, expect, it } from 'vitest';
import { DurableBroadcastDispatcher } from '../../src/pipeline/durable-broadcast.js';

type D = { id: number; target: string };
const d = (id: number, target: string): D => ({ id, target });

describe('DurableBroadcastDispatcher', () => {
  it('keeps each subscriber’s demand apart: a slow subscriber never limits a fast one', () => {
    const x = new DurableBroadcastDispatcher<D>();
    expect(x.subscribe('fast')).toBe(0);
    expect(x.subscribe('slow')).toBe(0);
    // Demand goes nowhere upstream: intake from the watcher has its own subscription.
    expect(x.ask('fast', 4)).toBe(0);
    expect(x.ask('slow', 1)).toBe(0);
    expect(x.available()).toBe(Number.POSITIVE_INFINITY);
    expect(x.hungry().sort()).toEqual(['fast', 'slow']);
    const out = x.dispatch([d(1, 'fast'), d(2, 'fast'), d(3, 'fast'), d(4, 'slow')]);
    expect(out).toEqual({ sends: [['fast', [d(1, 'fast'), d(2, 'fast'), d(3, 'fast')]], ['slow', [d(4, 'slow')]]], leftovers: [] });
    expect([x.demandOf('fast'), x.demandOf('slow')]).toEqual([1, 0]);
    expect(x.hungry()).toEqual(['fast']);
  });

  it('never sends a subscriber more than it asked: the excess is an orphan, not a leftover', () => {
    const x = new DurableBroadcastDispatcher<D>();
    x.subscribe('a');
    x.ask('a', 1);
    const out = x.dispatch([d(1, 'a'), d(2, 'a'), d(3, 'gone')]);
    expect(out.sends).toEqual([['a', [d(1, 'a')]]]);
    expect(out.leftovers).toEqual([]);
    expect(x.takeOrphans()).toEqual([d(2, 'a'), d(3, 'gone')]);
    expect(x.takeOrphans()).toEqual([]);
  });

  it('forgets a cancelled subscriber’s demand; a new subscription starts from zero', () => {
    const x = new DurableBroadcastDispatcher<D>();
    x.subscribe('a');
    x.ask('a', 5);
    expect(x.cancel('a')).toBe(0);
    expect(x.demandOf('a')).toBe(0);
    expect(x.ask('a', 3)).toBe(0); // unknown subscriber: ignored
    expect(x.demandOf('a')).toBe(0);
    x.subscribe('a');
    x.ask('a', 2);
    expect(x.demandOf('a')).toBe(2);
  });

  it('demand is cumulative until met', () => {
    const x = new DurableBroadcastDispatcher<D>();
    x.subscribe('a');
    x.ask('a', 2);
    x.ask('a', 3);
    expect(x.demandOf('a')).toBe(5);
    x.dispatch([d(1, 'a'), d(2, 'a')]);
    expect(x.demandOf('a')).toBe(3);
  });
});

describe('DurableBroadcastDispatcher: deliveries leased ahead', () => {
  it('hands held deliveries out oldest first, and releases what a leaving subscriber held', () => {
    const released: D[][] = [];
    const x = new DurableBroadcastDispatcher<D>((held) => released.push(held));
    x.subscribe('a');
    x.hold('a', [d(1, 'a'), d(2, 'a'), d(3, 'a')]);
    expect(x.takeHeld('a', 2)).toEqual([d(1, 'a'), d(2, 'a')]);
    expect(x.takeHeld('a', 0)).toEqual([]);
    x.hold('a', [d(4, 'a')]);
    x.cancel('a');
    expect(released).toEqual([[d(3, 'a'), d(4, 'a')]]);
    // Its successor starts with nothing held.
    x.subscribe('a');
    expect(x.takeHeld('a', 5)).toEqual([]);
    // Held for a subscriber that is gone: an orphan, put back by the archiver.
    x.hold('gone', [d(5, 'gone')]);
    expect(x.takeOrphans()).toEqual([d(5, 'gone')]);
  });
});
