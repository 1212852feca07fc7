import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { EventBus } from '../../src/telemetry/bus.js';
import type { PipelineEvents } from '../../src/telemetry/events.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { formatBytes, reportTargets } from '../../src/telemetry/target-report.js';
import type { TargetHealth } from '../../src/state/store.js';

function capture() {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _e, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const log = createLogger({ level: 'info', format: 'json', destination });
  const lines = () =>
    chunks
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string; target?: string });
  return { log, lines };
}

const INFO = 30;
const WARN = 40;

function archived(bus: EventBus<PipelineEvents>, target: string, i: number, bytes: number) {
  bus.emit('upload.stop', { target, deliveryId: i, remotePath: `inbox/f${i}.jpg`, bytes, bytesSent: bytes, durationMs: 3, unchanged: false });
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('reportTargets: archived files', () => {
  test('one line per file at most once a second per target; the rest summed up once a minute', async () => {
    const bus = new EventBus<PipelineEvents>();
    const { log, lines } = capture();
    const report = reportTargets(bus, { log });
    // 1,510 files to gdrive in one minute, 214 MiB in all; 2 files to the local target.
    const each = Math.floor((214 * 1024 ** 2) / 1510);
    for (let i = 0; i < 1510; i++) {
      archived(bus, 'gdrive', i, i === 0 ? 214 * 1024 ** 2 - each * 1509 : each);
      if (i % 30 === 29) await vi.advanceTimersByTimeAsync(1000);
    }
    archived(bus, 'local', 9000, 10);
    archived(bus, 'local', 9001, 10);
    const perFile = lines().filter((l) => l.msg.startsWith('archived inbox/'));
    // 1,510 files over about 50 s: about one line a second, not 1,510.
    expect(perFile.filter((l) => l.target === 'gdrive').length).toBeGreaterThanOrEqual(45);
    expect(perFile.filter((l) => l.target === 'gdrive').length).toBeLessThanOrEqual(52);
    expect(perFile.filter((l) => l.target === 'local')).toHaveLength(1);
    expect(perFile[0]).toMatchObject({ level: INFO, msg: expect.stringMatching(/^archived inbox\/f0\.jpg to gdrive \(\d+(\.\d)? [KM]iB\)$/) });

    await vi.advanceTimersByTimeAsync(60_000);
    const summaries = lines().filter((l) => / files, .* in the last minute$/.test(l.msg));
    expect(summaries.map((l) => l.msg)).toEqual(['archived 1,510 files, 214 MiB to gdrive in the last minute', 'archived 2 files, 20 B to local in the last minute']);
    // A quiet minute writes nothing more.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(lines().filter((l) => / in the last minute$/.test(l.msg))).toHaveLength(2);
    report.close();
  });

  test('close() writes the summary still due', async () => {
    const bus = new EventBus<PipelineEvents>();
    const { log, lines } = capture();
    const report = reportTargets(bus, { log });
    for (let i = 0; i < 5; i++) archived(bus, 'box', i, 1024);
    report.close();
    expect(lines().map((l) => l.msg)).toEqual(['archived inbox/f0.jpg to box (1.0 KiB)', 'archived 5 files, 5.0 KiB to box in the last minute']);
    archived(bus, 'box', 6, 1);
    expect(lines()).toHaveLength(2);
  });

  test('binary units', () => {
    expect([formatBytes(0), formatBytes(1023), formatBytes(1024), formatBytes(1536 * 1024), formatBytes(214 * 1024 ** 2), formatBytes(3 * 1024 ** 4)]).toEqual([
      '0 B',
      '1023 B',
      '1.0 KiB',
      '1.5 MiB',
      '214 MiB',
      '3.0 TiB',
    ]);
  });
});

describe('reportTargets: a target that fails, then recovers', () => {
  test('one warn when it starts failing, a retrying record per attempt, one info when it archives again', async () => {
    const bus = new EventBus<PipelineEvents>();
    const { log, lines } = capture();
    const health: TargetHealth[] = [];
    const report = reportTargets(bus, { log, store: { setHealth: async (h) => void health.push(h) } });
    const reason = 'network error: connect ECONNREFUSED 127.0.0.1:8701';
    for (let attempt = 1; attempt <= 4; attempt++) {
      bus.emit('upload.retry', { target: 'gdrive', deliveryId: 1, attempt, reason, delayMs: attempt * 1500 });
      bus.emit('upload.retry', { target: 'gdrive', deliveryId: 2, attempt, reason, delayMs: attempt * 1500 });
      await vi.advanceTimersByTimeAsync(attempt * 1500);
    }
    const warns = lines().filter((l) => l.level === WARN);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ target: 'gdrive', msg: expect.stringMatching(/^gdrive is failing \(connection refused\): retrying/) });
    expect(health).toHaveLength(8);
    expect(health.at(-1)).toMatchObject({ target: 'gdrive', status: 'up', reason: 'retrying: connection refused (attempt 4, next in 6 s)' });
    // The next attempt is due 6 s after the last retry, which is now (the loop waited those 6 s).
    expect(health.at(-1)!.retryAt).toBe(Date.now());
    // The record keeps the time it started failing: the card does not flicker between attempts.
    expect(new Set(health.map((h) => h.since)).size).toBe(1);

    archived(bus, 'gdrive', 3, 100);
    archived(bus, 'gdrive', 4, 100);
    const infos = lines().filter((l) => l.level === INFO && /recovered/.test(l.msg));
    expect(infos).toHaveLength(1);
    expect(infos[0]!.msg).toBe('gdrive recovered: archiving again');
    expect(health.at(-1)).toMatchObject({ target: 'gdrive', status: 'up', reason: null, retryAt: null });
    expect(health).toHaveLength(9);
    report.close();
  });

  test('a parked target keeps the supervisor record: no retrying record over it', () => {
    const bus = new EventBus<PipelineEvents>();
    const { log } = capture();
    const health: TargetHealth[] = [];
    const report = reportTargets(bus, { log, store: { setHealth: async (h) => void health.push(h) }, isParked: () => true });
    bus.emit('upload.retry', { target: 'box', deliveryId: 1, attempt: 1, reason: 'HTTP 503', delayMs: 1000 });
    expect(health).toEqual([]);
    report.close();
  });
});
