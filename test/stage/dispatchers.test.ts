import { describe, expect, it } from 'vitest';
import { BroadcastDispatcher, DemandDispatcher, type Dispatch, type Dispatcher } from '../../src/stage/index.js';

type Step =
  | { op: 'subscribe' | 'cancel'; sub: string; returns: number; state: Record<string, number>; available: number }
  | { op: 'ask'; sub: string; n: number; returns: number; state: Record<string, number>; available: number }
  | { op: 'dispatch'; events: number[]; returns: Dispatch<number>; state: Record<string, number>; available: number };

function run(d: Dispatcher<number>, steps: Step[]): void {
  steps.forEach((step, i) => {
    const label = `step ${i}: ${step.op} ${JSON.stringify('sub' in step ? step.sub : step.events)}`;
    let got: unknown;
    if (step.op === 'dispatch') got = d.dispatch(step.events);
    else if (step.op === 'ask') got = d.ask(step.sub, step.n);
    else if (step.op === 'subscribe') got = d.subscribe(step.sub);
    else got = d.cancel(step.sub);
    expect(got, label).toEqual(step.returns);
    for (const [sub, demand] of Object.entries(step.state)) expect(d.demandOf(sub), `${label}: demandOf(${sub})`).toBe(demand);
    expect(d.available(), `${label}: available()`).toBe(step.available);
  });
}

describe('DemandDispatcher, exact states', () => {
  it('sends each event to the subscriber with the most unmet demand, ties to the first subscribed', () => {
    run(new DemandDispatcher<number>(), [
      { op: 'subscribe', sub: 'a', returns: 0, state: { a: 0 }, available: 0 },
      { op: 'subscribe', sub: 'b', returns: 0, state: { a: 0, b: 0 }, available: 0 },
      { op: 'dispatch', events: [1, 2], returns: { sends: [], leftovers: [1, 2] }, state: { a: 0, b: 0 }, available: 0 },
      { op: 'ask', sub: 'a', n: 3, returns: 3, state: { a: 3, b: 0 }, available: 3 },
      { op: 'ask', sub: 'b', n: 5, returns: 5, state: { a: 3, b: 5 }, available: 8 },
      { op: 'dispatch', events: [1, 2, 3, 4], returns: { sends: [['b', [1, 2, 3, 4]]], leftovers: [] }, state: { a: 3, b: 1 }, available: 4 },
      {
        op: 'dispatch',
        events: [5, 6, 7, 8, 9],
        returns: { sends: [['a', [5, 6, 7]], ['b', [8]]], leftovers: [9] },
        state: { a: 0, b: 0 },
        available: 0,
      },
      { op: 'ask', sub: 'b', n: 2, returns: 2, state: { a: 0, b: 2 }, available: 2 },
      { op: 'ask', sub: 'a', n: 2, returns: 2, state: { a: 2, b: 2 }, available: 4 },
      // A tie goes to a, which subscribed first, even though b asked first.
      { op: 'dispatch', events: [10, 11, 12], returns: { sends: [['a', [10, 11]], ['b', [12]]], leftovers: [] }, state: { a: 0, b: 1 }, available: 1 },
      { op: 'cancel', sub: 'b', returns: -1, state: { a: 0, b: 0 }, available: 0 },
      { op: 'cancel', sub: 'b', returns: 0, state: { a: 0, b: 0 }, available: 0 },
      { op: 'subscribe', sub: 'b', returns: 0, state: { a: 0, b: 0 }, available: 0 },
      { op: 'ask', sub: 'b', n: 0, returns: 0, state: { a: 0, b: 0 }, available: 0 },
    ]);
  });

  it('refuses unknown and duplicate subscribers and bad demand', () => {
    const d = new DemandDispatcher<number>();
    d.subscribe('a');
    expect(() => d.subscribe('a')).toThrow(expect.objectContaining({ code: 'stage.duplicate-subscriber' }));
    expect(() => d.ask('x', 1)).toThrow(expect.objectContaining({ code: 'stage.unknown-subscriber' }));
    for (const bad of [-1, 1.5, Number.NaN, Infinity]) {
      expect(() => d.ask('a', bad)).toThrow(expect.objectContaining({ code: 'stage.invalid-demand' }));
    }
    expect(d.demandOf('a')).toBe(0);
  });
});

describe('BroadcastDispatcher, exact states', () => {
  it('sends every event to every subscriber, paced by the minimum demand', () => {
    run(new BroadcastDispatcher<number>(), [
      { op: 'subscribe', sub: 'a', returns: 0, state: { a: 0 }, available: 0 },
      { op: 'ask', sub: 'a', n: 5, returns: 5, state: { a: 5 }, available: 5 },
      // The newcomer has 0 demand: the minimum falls, upstream is told to take back 5.
      { op: 'subscribe', sub: 'b', returns: -5, state: { a: 5, b: 0 }, available: 0 },
      { op: 'dispatch', events: [1], returns: { sends: [], leftovers: [1] }, state: { a: 5, b: 0 }, available: 0 },
      { op: 'ask', sub: 'b', n: 3, returns: 3, state: { a: 5, b: 3 }, available: 3 },
      { op: 'ask', sub: 'b', n: 4, returns: 2, state: { a: 5, b: 7 }, available: 5 },
      {
        op: 'dispatch',
        events: [1, 2, 3, 4, 5, 6, 7],
        returns: { sends: [['a', [1, 2, 3, 4, 5]], ['b', [1, 2, 3, 4, 5]]], leftovers: [6, 7] },
        state: { a: 0, b: 2 },
        available: 0,
      },
      { op: 'ask', sub: 'a', n: 10, returns: 2, state: { a: 10, b: 2 }, available: 2 },
      // Cancelling the slowest raises the minimum.
      { op: 'cancel', sub: 'b', returns: 8, state: { a: 10, b: 0 }, available: 10 },
      { op: 'dispatch', events: [6, 7], returns: { sends: [['a', [6, 7]]], leftovers: [] }, state: { a: 8 }, available: 8 },
      { op: 'subscribe', sub: 'c', returns: -8, state: { a: 8, c: 0 }, available: 0 },
      { op: 'cancel', sub: 'c', returns: 8, state: { a: 8, c: 0 }, available: 8 },
      { op: 'cancel', sub: 'a', returns: -8, state: { a: 0 }, available: 0 },
      { op: 'cancel', sub: 'a', returns: 0, state: { a: 0 }, available: 0 },
      { op: 'dispatch', events: [9], returns: { sends: [], leftovers: [9] }, state: {}, available: 0 },
    ]);
  });

  it('gives each subscriber its own array', () => {
    const d = new BroadcastDispatcher<number>();
    d.subscribe('a');
    d.subscribe('b');
    d.ask('a', 2);
    d.ask('b', 2);
    const { sends } = d.dispatch([1, 2]);
    sends[0]![1].push(99);
    expect(sends[1]![1]).toEqual([1, 2]);
  });
});

// A seeded generator keeps the random schedule reproducible.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe.each([
  ['DemandDispatcher', () => new DemandDispatcher<number>(), 'one'],
  ['BroadcastDispatcher', () => new BroadcastDispatcher<number>(), 'all'],
] as const)('%s over a random schedule', (_name, make, delivery) => {
  it('never assigns more than asked and never drops or reorders an event', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const rand = prng(seed);
      const d: Dispatcher<number> = make();
      const subs = ['a', 'b', 'c'];
      const asked = new Map<string, number>();
      const got = new Map<string, number[]>();
      const live = new Set<string>();
      let buffer: number[] = [];
      let next = 0;
      for (let step = 0; step < 200; step++) {
        const sub = subs[Math.floor(rand() * subs.length)]!;
        const r = rand();
        if (r < 0.1 && !live.has(sub)) {
          d.subscribe(sub);
          live.add(sub);
          asked.set(sub, 0);
          got.set(sub, []);
        } else if (r < 0.15 && live.has(sub)) {
          d.cancel(sub);
          live.delete(sub);
        } else if (r < 0.5 && live.has(sub)) {
          const n = Math.floor(rand() * 6);
          d.ask(sub, n);
          asked.set(sub, asked.get(sub)! + n);
        } else {
          const fresh = Array.from({ length: Math.floor(rand() * 5) }, () => next++);
          const events = [...buffer, ...fresh];
          const { sends, leftovers } = d.dispatch(events);
          const sent: number[] = [];
          for (const [s, evs] of sends) {
            expect(live.has(s)).toBe(true);
            got.get(s)!.push(...evs);
            if (delivery === 'one' || sent.length === 0) sent.push(...evs);
            else expect(evs).toEqual(sent);
          }
          expect([...sent, ...leftovers]).toEqual(events);
          buffer = leftovers;
        }
        for (const s of live) {
          expect(got.get(s)!.length, `seed ${seed} step ${step} sub ${s}`).toBeLessThanOrEqual(asked.get(s)!);
          expect(d.demandOf(s)).toBe(asked.get(s)! - got.get(s)!.length);
        }
      }
    }
  });
});
