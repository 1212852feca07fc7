import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Progress } from '../../src/cli/progress.js';
import type { AllEvents, Pipeline } from '../../src/pipeline/topology.js';
import { EventBus } from '../../src/telemetry/bus.js';

afterEach(() => vi.useRealTimers());

describe('backfill progress on a terminal', () => {
  it('draws one line, rewritten in place, that moves as deliveries finish', async () => {
    vi.useFakeTimers();
    const bus = new EventBus<AllEvents>();
    let pending = 4;
    const pipeline = {
      bus,
      store: { counts: async () => [{ target: 'local', pending, inFlight: 0, done: 4 - pending, failed: 0, skipped: 0 }] },
      watcher: { backlog: 0 },
    } as unknown as Pipeline;
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const p = new Progress(pipeline, out as unknown as NodeJS.WriteStream);
    p.start();
    await vi.advanceTimersByTimeAsync(250);
    expect(text).toMatch(/\r\[\.{30}\] 0\/4 deliveries, 0 failed/);
    for (let i = 0; i < 2; i++) {
      pending--;
      bus.emit('upload.stop', { target: 'local', deliveryId: i, remotePath: `f${i}`, bytes: 1_048_576, bytesSent: 1_048_576, durationMs: 5, unchanged: false });
    }
    await vi.advanceTimersByTimeAsync(250);
    expect(text.split('\r').at(-1)).toMatch(/^\[#{15}\.{15}\] 2\/4 deliveries, 0 failed, 2\.0 MiB, [\d.]+ MiB\/s/);
    p.stop();
    expect(text.endsWith('\n')).toBe(true);
  });
});
