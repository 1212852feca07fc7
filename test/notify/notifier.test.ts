import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createNotifier, type Notifier, type NotifierOptions, type NotifyPayload } from '../../src/notify/notifier.js';
import type { AllEvents } from '../../src/pipeline/topology.js';
import { EventBus } from '../../src/telemetry/bus.js';
import { createLogger } from '../../src/telemetry/logger.js';

const log = createLogger({ level: 'silent', format: 'json' });

interface Call {
  url: string;
  method: string;
  at: number;
  body: NotifyPayload | null;
}

let notifier: Notifier | undefined;
beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
});
afterEach(async () => {
  await notifier?.close();
  notifier = undefined;
  vi.useRealTimers();
});

function setup(opts: Partial<NotifierOptions> = {}) {
  const bus = new EventBus<AllEvents>();
  const calls: Call[] = [];
  const fakeFetch = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), method: init?.method ?? 'GET', at: Date.now(), body: init?.body ? (JSON.parse(String(init.body)) as NotifyPayload) : null });
    return new Response('ok', { status: 200 });
  }) as typeof fetch;
  notifier = createNotifier(bus, { webhook: 'http://127.0.0.1:9/hook', minIntervalMs: 60_000, batchMs: 10_000, recoverAfterMs: 30_000, log, fetch: fakeFetch, ...opts });
  const posts = (event?: string) => calls.filter((c) => c.method === 'POST' && (!event || c.body?.event === event));
  return { bus, calls, posts };
}

const down = (bus: EventBus<AllEvents>, target = 'cloud', reason = 'token revoked') => bus.emit('target.down', { target, reason, retryAt: Date.now() + 1000 });
const stop = (bus: EventBus<AllEvents>, target = 'cloud') =>
  bus.emit('upload.stop', { target, deliveryId: 1, remotePath: 'a', bytes: 1, bytesSent: 1, durationMs: 1, unchanged: false });
const fail = (bus: EventBus<AllEvents>, i: number, target = 'cloud') =>
  bus.emit('upload.exception', { target, deliveryId: i, remotePath: `inbox/f${i}.txt`, status: 'failed', reason: `refused ${i}` });

describe('notifier', () => {
  it('a parked target sends one webhook however often the supervisor retries it, and one when it recovers', async () => {
    const { bus, posts } = setup({ minIntervalMs: 0 });
    down(bus);
    for (let i = 0; i < 20; i++) {
      await vi.advanceTimersByTimeAsync(1000);
      bus.emit('target.up', { target: 'cloud' });
      await vi.advanceTimersByTimeAsync(10);
      down(bus);
    }
    await notifier!.settled();
    expect(posts().map((c) => c.body?.event)).toEqual(['target.parked']);
    const p = posts()[0]!.body!;
    expect(p).toMatchObject({ event: 'target.parked', target: 'cloud', reason: 'token revoked', type: 'failure' });
    expect(p.title).toMatch(/cloud/);
    expect(p.message).toMatch(/token revoked/);
    expect(p.body).toBe(p.message);
    expect(new Date(p.at).toISOString()).toBe(p.at);

    bus.emit('target.up', { target: 'cloud' });
    stop(bus);
    stop(bus);
    await notifier!.settled();
    expect(posts().map((c) => c.body?.event)).toEqual(['target.parked', 'target.recovered']);
  });

  it('a target up for recoverAfterMs without parking again counts as recovered, with no delivery', async () => {
    const { bus, posts } = setup();
    down(bus);
    bus.emit('target.up', { target: 'cloud' });
    await vi.advanceTimersByTimeAsync(29_000);
    expect(posts('target.recovered')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_000);
    await notifier!.settled();
    expect(posts('target.recovered')).toHaveLength(1);
  });

  it('rate limit per (event, target): a second park within minIntervalMs is held to the end of the window', async () => {
    const { bus, posts } = setup();
    down(bus);
    down(bus, 'other');
    bus.emit('target.up', { target: 'cloud' });
    stop(bus);
    await vi.advanceTimersByTimeAsync(5_000);
    down(bus, 'cloud', 'storage full');
    await notifier!.settled();
    expect(posts().map((c) => `${c.body?.event} ${c.body?.target}`)).toEqual(['target.parked cloud', 'target.parked other', 'target.recovered cloud']);
    await vi.advanceTimersByTimeAsync(54_999);
    expect(posts('target.parked')).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    await notifier!.settled();
    expect(posts('target.parked')).toHaveLength(3);
    expect(posts('target.parked')[2]!.body).toMatchObject({ target: 'cloud', reason: 'storage full' });
    expect(posts('target.parked')[2]!.at).toBe(new Date('2026-01-01T00:01:00Z').getTime());
  });

  it('a flap inside the window sends nothing: held park, then recovery before the window ends', async () => {
    const { bus, posts } = setup();
    down(bus);
    stop(bus);
    await vi.advanceTimersByTimeAsync(1_000);
    down(bus);
    await vi.advanceTimersByTimeAsync(1_000);
    stop(bus);
    await vi.advanceTimersByTimeAsync(120_000);
    await notifier!.settled();
    expect(posts().map((c) => c.body?.event)).toEqual(['target.parked', 'target.recovered']);
  });

  it('failed deliveries are batched over batchMs, then held by the rate limit', async () => {
    const { bus, posts } = setup();
    for (let i = 0; i < 12; i++) fail(bus, i);
    bus.emit('upload.exception', { target: 'cloud', deliveryId: 99, remotePath: 'x', status: 'skipped', reason: 'vanished' });
    await vi.advanceTimersByTimeAsync(9_999);
    expect(posts()).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    await notifier!.settled();
    expect(posts()).toHaveLength(1);
    const b = posts()[0]!.body!;
    expect(b).toMatchObject({ event: 'deliveries.failed', target: 'cloud', count: 12, reason: 'refused 0', type: 'warning' });
    expect(b.failures).toHaveLength(5);
    expect(b.failures![4]).toEqual({ remotePath: 'inbox/f4.txt', reason: 'refused 4' });

    for (let i = 20; i < 23; i++) fail(bus, i);
    await vi.advanceTimersByTimeAsync(59_999); // 60 s after the first webhook, not 10 s after these
    expect(posts()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await notifier!.settled();
    expect(posts()).toHaveLength(2);
    expect(posts()[1]!.body).toMatchObject({ count: 3, reason: 'refused 20' });
  });

  it('close sends the failures still gathered', async () => {
    const { bus, posts } = setup();
    fail(bus, 1);
    await notifier!.close();
    expect(posts()).toHaveLength(1);
    expect(posts()[0]!.body).toMatchObject({ count: 1 });
  });

  it('puts the ntfy topic in the body when given one', async () => {
    const { bus, posts } = setup({ topic: 'nas-alerts' });
    down(bus);
    await notifier!.settled();
    expect(posts()[0]!.body).toMatchObject({ topic: 'nas-alerts', priority: 4 });
  });

  it('pings pingUrl after each healthy interval, and not after an unhealthy one', async () => {
    let healthy = true;
    const { calls } = setup({ webhook: null, pingUrl: 'http://127.0.0.1:9/ping/abc', pingIntervalMs: 60_000, isHealthy: async () => healthy });
    await vi.advanceTimersByTimeAsync(59_999);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    await notifier!.settled();
    expect(calls.map((c) => [c.method, c.url])).toEqual([['GET', 'http://127.0.0.1:9/ping/abc']]);
    healthy = false;
    await vi.advanceTimersByTimeAsync(60_000);
    await notifier!.settled();
    expect(calls).toHaveLength(1);
    healthy = true;
    await vi.advanceTimersByTimeAsync(60_000);
    await notifier!.settled();
    expect(calls).toHaveLength(2);
  });

  it('a webhook that fails does not throw', async () => {
    const bus = new EventBus<AllEvents>();
    notifier = createNotifier(bus, { webhook: 'http://127.0.0.1:9/hook', log, fetch: (async () => Promise.reject(new Error('ECONNREFUSED'))) as typeof fetch });
    down(bus);
    await expect(notifier.settled()).resolves.toBeUndefined();
  });
});
