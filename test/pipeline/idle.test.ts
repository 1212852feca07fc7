import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { whenIdle } from '../../src/pipeline/idle.js';
import type { AllEvents } from '../../src/pipeline/topology.js';
import { EventBus } from '../../src/telemetry/bus.js';

describe('whenIdle', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  // On a shared journal another daemon may finish the last deliveries: no event here says so.
  it('with everyMs, work that ends with no local event is noticed at the next check', async () => {
    const bus = new EventBus<AllEvents>();
    let othersWorking = true;
    let settled = false;
    const idle = whenIdle(bus, Promise.resolve(), async () => !othersWorking, 1000).then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(2500);
    expect(settled).toBe(false);
    othersWorking = false; // the other daemon completed the last delivery
    await vi.advanceTimersByTimeAsync(1000);
    expect(settled).toBe(true);
    await idle;
  });

  it('without everyMs only an event makes it check again', async () => {
    const bus = new EventBus<AllEvents>();
    let working = true;
    let settled = false;
    void whenIdle(bus, Promise.resolve(), async () => !working).then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(10);
    working = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(settled).toBe(false);
    bus.emit('item.skip', { root: 'inbox', relPath: 'a', reason: 'test' });
    await vi.advanceTimersByTimeAsync(10);
    expect(settled).toBe(true);
  });

  // Issue 19, item 2: a check reads the journal, and while uploads run nearly every turn has an
  // event. Checked on the next turn after each, it cost ~2 journal queries per delivery.
  it('after a check that found work, the events of the next 50 ms make one check, not one each', async () => {
    const bus = new EventBus<AllEvents>();
    let checks = 0;
    let working = true;
    let settled = false;
    void whenIdle(bus, Promise.resolve(), async () => {
      checks++;
      return !working;
    }).then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(1);
    expect(checks).toBe(1);
    for (let i = 0; i < 10; i++) {
      bus.emit('item.skip', { root: 'inbox', relPath: `f${i}`, reason: 'test' });
      await vi.advanceTimersByTimeAsync(2);
    }
    expect(checks).toBe(1);
    working = false;
    await vi.advanceTimersByTimeAsync(50);
    expect(checks).toBe(2);
    expect(settled).toBe(true);
  });
});
