/**
 * createMetrics loads prom-client on the first bus event or scrape (issue 19 item 3): what
 * happens before it is there must still be counted, in order, as an eager registry would.
 */
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/http/metrics.js';
import type { AllEvents, Pipeline } from '../../src/pipeline/topology.js';
import type { Store } from '../../src/state/store.js';
import { EventBus } from '../../src/telemetry/bus.js';
import { parsePromText, sampleValue } from './prom-text.js';

/** A pipeline as far as metrics read it: no delivery pending, every target up. */
function pipeline(bus: EventBus<AllEvents>): Pick<Pipeline, 'bus' | 'store' | 'targets'> {
  const store = { counts: async () => [], health: async () => [] } as unknown as Store;
  return { bus, store, targets: [{ id: 'local' }, { id: 'box' }] as unknown as Pipeline['targets'] };
}

const stop = (target: string, bytes: number): AllEvents['upload.stop'] => ({ target, deliveryId: 1, remotePath: 'r', bytes, bytesSent: bytes, durationMs: 20, unchanged: false });

describe('metrics', () => {
  it('counts the events that came before prom-client was loaded, and those after', async () => {
    const bus = new EventBus<AllEvents>();
    const m = createMetrics(pipeline(bus));
    // Same turn as the first event: prom-client is still loading.
    bus.emit('upload.stop', stop('local', 5));
    bus.emit('upload.stop', stop('local', 7));
    bus.emit('upload.exception', { target: 'box', deliveryId: 2, remotePath: 'r', status: 'failed', reason: 'x' });
    bus.emit('target.down', { target: 'box', reason: 'x', retryAt: 0 });
    const first = parsePromText((await m.render()).text).samples;
    expect(sampleValue(first, 'stagecoach_files_archived_total', { target: 'local' })).toBe(2);
    expect(sampleValue(first, 'stagecoach_bytes_archived_total', { target: 'local' })).toBe(12);
    expect(sampleValue(first, 'stagecoach_upload_duration_seconds_count', { target: 'local' })).toBe(2);
    expect(sampleValue(first, 'stagecoach_delivery_failures_total', { target: 'box', status: 'failed' })).toBe(1);
    expect(sampleValue(first, 'stagecoach_files_archived_total', { target: 'box' })).toBe(0);
    bus.emit('upload.stop', stop('box', 1));
    const second = parsePromText((await m.render()).text).samples;
    expect(sampleValue(second, 'stagecoach_files_archived_total', { target: 'box' })).toBe(1);
    expect(sampleValue(second, 'stagecoach_files_archived_total', { target: 'local' })).toBe(2);
    m.close();
    bus.emit('upload.stop', stop('box', 1));
    expect(sampleValue(parsePromText((await m.render()).text).samples, 'stagecoach_files_archived_total', { target: 'box' })).toBe(1);
  });
});
