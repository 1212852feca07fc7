import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventBus, type StageEvents } from '../../src/telemetry/bus.js';
import { ParkError, parkRequestOf, subscribe, Supervisor, type Child, type ChildSpec } from '../../src/stage/index.js';
import { CountingProducer, deferred, flush, HoldingConsumer, type Deferred } from './helpers.js';

class FakeChild implements Child {
  stopCalls = 0;
  readonly listeners = new Set<(e: unknown) => void>();
  constructor(private readonly stopping: () => Promise<void>) {}
  stop(): Promise<void> {
    this.stopCalls++;
    return this.stopping();
  }
  onCrash(cb: (e: unknown) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
  async crash(error: unknown): Promise<void> {
    for (const cb of [...this.listeners]) cb(error);
    await flush();
  }
}

interface FakeSpec extends ChildSpec {
  instances: FakeChild[];
  starts: number;
  /** The live instance. */
  readonly current: FakeChild;
}

function fake(
  id: string,
  options: { failStart?: (attempt: number) => unknown; gate?: () => Promise<void>; stopping?: () => Promise<void> } = {},
): FakeSpec {
  const spec: FakeSpec = {
    id,
    instances: [],
    starts: 0,
    get current() {
      return spec.instances.at(-1)!;
    },
    async start() {
      spec.starts++;
      await options.gate?.();
      const failure = options.failStart?.(spec.starts);
      if (failure !== undefined) throw failure;
      const child = new FakeChild(options.stopping ?? (() => Promise.resolve()));
      spec.instances.push(child);
      return child;
    },
  };
  return spec;
}

function recorder(): { bus: EventBus<StageEvents>; log: Array<[string, object]>; of(name: string): object[] } {
  const bus = new EventBus<StageEvents>();
  const log: Array<[string, object]> = [];
  bus.onAny((name, payload) => log.push([name, payload]));
  return { bus, log, of: (name) => log.filter(([n]) => n === name).map(([, p]) => p) };
}

/** Crashes the current instance `n` times, `everyMs` apart (fake time). */
async function crashes(spec: FakeSpec, n: number, everyMs = 100, label = 'boom'): Promise<void> {
  for (let i = 1; i <= n; i++) {
    await spec.current.crash(new Error(`${label} ${i}`));
    if (i < n) await vi.advanceTimersByTimeAsync(everyMs);
  }
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
});
afterEach(() => {
  vi.useRealTimers();
});

describe('supervisor: start', () => {
  it('starts children in order, each awaited', async () => {
    const gates: Deferred[] = [deferred(), deferred(), deferred()];
    const specs = ['a', 'b', 'c'].map((id, i) => fake(id, { gate: () => gates[i]!.promise }));
    const sup = new Supervisor(specs);
    const started = sup.start();
    await flush();
    expect(specs.map((s) => s.starts)).toEqual([1, 0, 0]);
    expect(sup.status().a!.state).toBe('starting');
    gates[0]!.resolve();
    await flush();
    expect(specs.map((s) => s.starts)).toEqual([1, 1, 0]);
    gates[1]!.resolve();
    gates[2]!.resolve();
    await started;
    expect(sup.status()).toEqual({
      a: { state: 'running', restarts: 0 },
      b: { state: 'running', restarts: 0 },
      c: { state: 'running', restarts: 0 },
    });
    expect(sup.start()).toBe(started);
  });

  it('a child whose start throws counts as a crash, and the next child still starts', async () => {
    const { bus, of } = recorder();
    const flaky = fake('flaky', { failStart: (n) => (n <= 2 ? new Error(`cannot start ${n}`) : undefined) });
    const broken = fake('broken', { failStart: () => new Error('never') });
    const after = fake('after');
    const sup = new Supervisor([flaky, broken, after], { bus });
    await sup.start();
    expect(flaky.starts).toBe(3);
    expect(sup.status().flaky).toEqual({ state: 'running', restarts: 2 });
    // 1 start + 3 restarts, then the 4th crash within 5 s parks it.
    expect(broken.starts).toBe(4);
    expect(sup.status().broken).toEqual({ state: 'parked', restarts: 3, reason: 'never', retryAt: Date.now() + 30_000 });
    expect(after.starts).toBe(1);
    expect(of('stage.crash')).toHaveLength(2 + 4);
  });

  it('validates its options eagerly', () => {
    expect(() => new Supervisor([], { maxRestarts: -1 })).toThrow('Expected `maxRestarts` to be a number >= 0, got -1');
    expect(() => new Supervisor([], { coolDownMs: 10, coolDownMaxMs: 5 })).toThrow('Expected `coolDownMaxMs` to be a number >= 10, got 5');
    expect(() => new Supervisor([fake('a'), fake('a')])).toThrow(expect.objectContaining({ code: 'supervisor.duplicate-child' }));
  });
});

describe('supervisor: one_for_one restarts', () => {
  it('restarts only the crashed child', async () => {
    const { bus, log } = recorder();
    const a = fake('a');
    const b = fake('b');
    const sup = new Supervisor([a, b], { bus });
    await sup.start();
    const err = new Error('bug');
    await a.current.crash(err);
    expect(a.starts).toBe(2);
    expect(b.starts).toBe(1);
    expect(b.instances[0]!.stopCalls).toBe(0);
    expect(sup.status()).toEqual({ a: { state: 'running', restarts: 1 }, b: { state: 'running', restarts: 0 } });
    expect(log).toEqual([
      ['stage.crash', { stage: 'a', error: err, restarts: 0 }],
      ['stage.restart', { stage: 'a', restarts: 1 }],
    ]);
    // A stale instance's late crash report is ignored.
    await a.instances[0]!.crash(new Error('stale'));
    expect(a.starts).toBe(2);
  });

  it('more than maxRestarts crashes within maxSeconds park the child; it comes back after the cool-down', async () => {
    const { bus, of } = recorder();
    const a = fake('a');
    const b = fake('b');
    const sup = new Supervisor([a, b], { bus });
    await sup.start();
    await crashes(a, 3, 1000);
    expect(sup.status().a).toEqual({ state: 'running', restarts: 3 });
    await vi.advanceTimersByTimeAsync(1000);
    await a.current.crash(new Error('revoked'));
    const parkedAt = Date.now();
    expect(sup.status().a).toEqual({ state: 'parked', restarts: 3, reason: 'revoked', retryAt: parkedAt + 30_000 });
    expect(of('stage.park')).toEqual([{ stage: 'a', reason: 'revoked', retryInMs: 30_000 }]);
    expect(sup.status().b).toEqual({ state: 'running', restarts: 0 });
    expect(a.starts).toBe(4);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(a.starts).toBe(4);
    expect(sup.status().a!.state).toBe('parked');
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect(of('stage.unpark')).toEqual([{ stage: 'a' }]);
    expect(a.starts).toBe(5);
    expect(sup.status().a).toEqual({ state: 'running', restarts: 4 });
  });

  it('crashes spread wider than the window never park', async () => {
    const a = fake('a');
    const sup = new Supervisor([a], { maxRestarts: 3, maxSeconds: 5 });
    await sup.start();
    // One crash every 2 s: at most 3 fall in any 5 s window.
    await crashes(a, 10, 2000);
    expect(sup.status().a).toEqual({ state: 'running', restarts: 10 });
  });

  it('the cool-down doubles on each consecutive park, caps, and resets after a quiet cool-down', async () => {
    const { bus, of } = recorder();
    const a = fake('a');
    const sup = new Supervisor([a], { bus, coolDownMs: 30_000, coolDownMaxMs: 100_000 });
    await sup.start();
    const parkAndWait = async () => {
      await crashes(a, 4);
      const { retryInMs } = of('stage.park').at(-1) as { retryInMs: number };
      await vi.advanceTimersByTimeAsync(retryInMs);
      await flush();
      expect(sup.status().a!.state).toBe('running');
      return retryInMs;
    };
    const delays = [];
    for (let i = 0; i < 4; i++) delays.push(await parkAndWait());
    expect(delays).toEqual([30_000, 60_000, 100_000, 100_000]);
    // Ran a whole cool-down without crashing: back to the first step.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(await parkAndWait()).toBe(30_000);
    expect(await parkAndWait()).toBe(60_000);
  });

  it('a ParkError parks at once for its own delay, without feeding the doubling', async () => {
    const { bus, of } = recorder();
    const a = fake('a');
    const sup = new Supervisor([a], { bus });
    await sup.start();
    await a.current.crash(new ParkError('daily upload cap reached', 3_600_000));
    expect(sup.status().a).toEqual({ state: 'parked', restarts: 0, reason: 'daily upload cap reached', retryAt: Date.now() + 3_600_000 });
    expect(of('stage.park')).toEqual([{ stage: 'a', reason: 'daily upload cap reached', retryInMs: 3_600_000 }]);
    await vi.advanceTimersByTimeAsync(3_600_000);
    await flush();
    expect(sup.status().a!.state).toBe('running');
    // Any error carrying a well-formed `park` works the same.
    await a.current.crash(Object.assign(new Error('x'), { park: { reason: 'quota', retryInMs: 5000 } }));
    expect(sup.status().a).toMatchObject({ state: 'parked', reason: 'quota' });
    await vi.advanceTimersByTimeAsync(5000);
    await flush();
    await crashes(a, 4);
    expect(of('stage.park').at(-1)).toEqual({ stage: 'a', reason: 'boom 4', retryInMs: 30_000 });
    expect(parkRequestOf({ park: { reason: 'r', retryInMs: -1 } })).toBeUndefined();
    expect(parkRequestOf(new Error('plain'))).toBeUndefined();
  });

  it('retryNow starts a parked child at once (a sign-in fixed it), and does nothing to one that is not parked', async () => {
    const { bus, of } = recorder();
    const a = fake('a');
    const sup = new Supervisor([a], { bus });
    await sup.start();
    expect(sup.retryNow('a')).toBe(false);
    expect(sup.retryNow('nobody')).toBe(false);
    await a.current.crash(new ParkError('not signed in', 3_600_000));
    expect(sup.status().a!.state).toBe('parked');
    expect(sup.retryNow('a')).toBe(true);
    await flush();
    expect(sup.status().a).toEqual({ state: 'running', restarts: 1 });
    expect(of('stage.unpark')).toEqual([{ stage: 'a' }]);
    expect(a.starts).toBe(2);
    // The old timer is gone: no second start when its hour is up.
    await vi.advanceTimersByTimeAsync(3_600_000);
    await flush();
    expect(a.starts).toBe(2);
    await sup.close();
    expect(sup.retryNow('a')).toBe(false);
  });
});

describe('supervisor: parks for a lasting reason (issue 14.6)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a ParkError with backoff parks at growing intervals up to coolDownMaxMs, never below its own delay', async () => {
    const { bus, of } = recorder();
    const a = fake('a');
    const sup = new Supervisor([a], { bus, coolDownMs: 30_000, coolDownMaxMs: 200_000 });
    await sup.start();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      // The token is revoked: every fresh start fails its first upload at once.
      await a.current.crash(new ParkError('credentials revoked', 1000, { backoff: true }));
      const { retryInMs } = of('stage.park').at(-1) as { retryInMs: number };
      delays.push(retryInMs);
      expect(sup.status().a).toMatchObject({ state: 'parked', reason: 'credentials revoked', retryAt: Date.now() + retryInMs });
      await vi.advanceTimersByTimeAsync(retryInMs);
      await flush();
      expect(sup.status().a!.state).toBe('running');
    }
    expect(delays).toEqual([30_000, 60_000, 120_000, 200_000, 200_000]);
    // A Retry-After longer than the step is honoured.
    await a.current.crash(new ParkError('storage full', 500_000, { backoff: true }));
    expect(of('stage.park').at(-1)).toEqual({ stage: 'a', reason: 'storage full', retryInMs: 500_000 });
  });

  it('retryNow tries a parked child at once; not parked, unknown or closing: nothing', async () => {
    const { bus, of } = recorder();
    const a = fake('a');
    const sup = new Supervisor([a], { bus, coolDownMs: 30_000 });
    await sup.start();
    expect(sup.retryNow('a')).toBe(false);
    expect(sup.retryNow('nope')).toBe(false);
    await a.current.crash(new ParkError('credentials revoked', 0, { backoff: true }));
    expect(sup.status().a!.state).toBe('parked');
    expect(sup.retryNow('a')).toBe(true);
    await flush();
    expect(sup.status().a!.state).toBe('running');
    expect(of('stage.unpark')).toEqual([{ stage: 'a' }]);
    expect(a.starts).toBe(2);
    // Parked again at once: the doubling went on.
    await a.current.crash(new ParkError('credentials revoked', 0, { backoff: true }));
    expect(of('stage.park').at(-1)).toMatchObject({ retryInMs: 60_000 });
    // The first park's timer is gone: no start when it would have fired.
    await vi.advanceTimersByTimeAsync(40_000);
    expect(a.starts).toBe(2);
    await sup.close(1000);
    expect(sup.retryNow('a')).toBe(false);
  });
});

describe('supervisor: close', () => {
  it('stops children in reverse order, each awaited', async () => {
    const order: string[] = [];
    const gates = new Map<string, Deferred>();
    const specs = ['a', 'b', 'c'].map((id) =>
      fake(id, {
        stopping: () => {
          order.push(id);
          const d = deferred();
          gates.set(id, d);
          return d.promise;
        },
      }),
    );
    const sup = new Supervisor(specs);
    await sup.start();
    const closing = sup.close(10_000);
    await flush();
    expect(order).toEqual(['c']);
    gates.get('c')!.resolve();
    await flush();
    expect(order).toEqual(['c', 'b']);
    expect(sup.status().c!.state).toBe('stopped');
    expect(sup.status().b!.state).toBe('running');
    gates.get('b')!.resolve();
    await flush();
    gates.get('a')!.resolve();
    expect(await closing).toEqual({ stopped: ['c', 'b', 'a'], abandoned: [], failed: [] });
    expect(sup.close()).toBe(closing);
  });

  it('respects its deadline: what has not stopped is abandoned and reported, yet asked to stop', async () => {
    const a = fake('a');
    const b = fake('b', { stopping: () => new Promise<void>(() => undefined) });
    const c = fake('c', { stopping: () => Promise.reject(new Error('stop failed')) });
    const sup = new Supervisor([a, b, c]);
    await sup.start();
    let report: unknown;
    void sup.close(1000).then((r) => (report = r));
    await vi.advanceTimersByTimeAsync(999);
    expect(report).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect(report).toEqual({ stopped: [], abandoned: ['b', 'a'], failed: [{ id: 'c', error: new Error('stop failed') }] });
    expect(a.current.stopCalls).toBe(1);
  });

  it('restarts nothing once closing, and cancels the retries of parked children', async () => {
    const a = fake('a');
    const b = fake('b', { stopping: () => new Promise<void>(() => undefined) });
    const { bus, of } = recorder();
    const sup = new Supervisor([a, b], { bus });
    await sup.start();
    await crashes(a, 4);
    expect(sup.status().a!.state).toBe('parked');
    void sup.close(60_000);
    await flush();
    // Only close's own deadline is left: the parked child's retry timer is gone.
    expect(vi.getTimerCount()).toBe(1);
    await b.current.crash(new Error('while closing'));
    await vi.advanceTimersByTimeAsync(120_000);
    await flush();
    expect(a.starts).toBe(4);
    expect(b.starts).toBe(1);
    expect(sup.status()).toEqual({ a: { state: 'stopped', restarts: 3 }, b: { state: 'stopped', restarts: 0 } });
    // The crash while stopping is still reported, and nothing is restarted or retried.
    expect(of('stage.crash').at(-1)).toEqual({ stage: 'b', error: new Error('while closing'), restarts: 0 });
    expect(of('stage.restart')).toHaveLength(3);
    expect(of('stage.unpark')).toHaveLength(0);
  });
});

describe('supervisor over real stages', () => {
  it('a crashing uploader is restarted alone and resubscribes under the same id', async () => {
    vi.useRealTimers();
    const producer = new CountingProducer({ name: 'archiver' });
    await producer.start();
    const uploaders: Record<string, HoldingConsumer[]> = { gdrive: [], dropbox: [] };
    const spec = (id: string): ChildSpec => ({
      id,
      async start() {
        const u = new HoldingConsumer({ name: id, perEvent: true });
        await u.start();
        subscribe(u, producer, { maxDemand: 2, minDemand: 1 });
        uploaders[id]!.push(u);
        return u;
      },
    });
    const sup = new Supervisor([spec('gdrive'), spec('dropbox')]);
    await sup.start();
    await flush();
    const [drive] = uploaders.gdrive!;
    const [dropbox] = uploaders.dropbox!;
    expect(drive!.received).toEqual([1, 2]);
    expect(dropbox!.received).toEqual([3, 4]);
    await drive!.fail(new Error('revoked token'));
    await flush();
    expect(drive!.state).toBe('crashed');
    expect(uploaders.gdrive).toHaveLength(2);
    expect(uploaders.dropbox).toHaveLength(1);
    expect(dropbox!.state).toBe('running');
    expect(dropbox!.subscriptions[0]!.active).toBe(true);
    const fresh = uploaders.gdrive![1]!;
    expect(fresh.subscriptions.map((s) => s.id)).toEqual(['gdrive']);
    expect(fresh.received).toEqual([5, 6]);
    expect(sup.status()).toEqual({ gdrive: { state: 'running', restarts: 1 }, dropbox: { state: 'running', restarts: 0 } });
    let report: unknown;
    void sup.close(5000).then((r) => (report = r));
    // Each stop waits for the uploads in flight; settle them until both have drained.
    for (let i = 0; i < 10 && report === undefined; i++) {
      await dropbox!.ack();
      await fresh.ack();
    }
    expect(report).toEqual({ stopped: ['dropbox', 'gdrive'], abandoned: [], failed: [] });
    expect([fresh.state, dropbox!.state]).toEqual(['stopped', 'stopped']);
  });
});
