import { describe, expect, it } from 'vitest';
import { Throughput } from '../../src/http/activity.js';
import type { AllEvents } from '../../src/pipeline/topology.js';
import { EventBus } from '../../src/telemetry/bus.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 30);

describe('Throughput', () => {
  it('keeps files and bytes per target per minute for the last hour, oldest first, zeros between', () => {
    let now = T0;
    const bus = new EventBus<AllEvents>();
    const tp = new Throughput(bus, { now: () => now });
    const stop = (target: string, bytes: number) =>
      bus.emit('upload.stop', { target, deliveryId: 1, remotePath: 'a', bytes, bytesSent: bytes, durationMs: 1, unchanged: false });
    stop('a', 10);
    stop('a', 5);
    stop('b', 7);
    now += 2 * 60_000;
    stop('a', 1);

    const s = tp.samples('a');
    expect(s).toHaveLength(60);
    expect(s[59]).toEqual({ at: Date.UTC(2026, 0, 1, 12, 2), files: 1, bytes: 1 });
    expect(s[58]).toEqual({ at: Date.UTC(2026, 0, 1, 12, 1), files: 0, bytes: 0 });
    expect(s[57]).toEqual({ at: Date.UTC(2026, 0, 1, 12, 0), files: 2, bytes: 15 });
    expect(tp.samples('b')[57]).toMatchObject({ files: 1, bytes: 7 });

    now += 59 * 60_000; // the 12:00 minute is now out of the hour
    expect(tp.samples('a').reduce((n, x) => n + x.files, 0)).toBe(1);
    now += 60_000;
    expect(tp.samples('a').reduce((n, x) => n + x.files, 0)).toBe(0);

    tp.close();
    stop('a', 1);
    expect(tp.samples('a').reduce((n, x) => n + x.files, 0)).toBe(0);
  });
});
