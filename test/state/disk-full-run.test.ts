/**
 * `stagecoach run` on a full state disk, with the pipeline stubbed: whether the journal fails at
 * start, while running, or again while closing, runCommand rejects with `state.disk-full` (the
 * CLI's one clear line); a crash that is not about space keeps exit 1 without it.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { EventBus } from '../../src/telemetry/bus.js';

vi.mock('../../src/pipeline/topology.js', () => ({ startPipeline: vi.fn() }));

const { startPipeline } = await import('../../src/pipeline/topology.js');
const { runCommand } = await import('../../src/cli/run.js');
const { DISK_FULL_CODE } = await import('../../src/state/disk-full.js');

const STATE = path.resolve('/srv/stagecoach/state');
const config = {
  stateDir: STATE,
  roots: [],
  shutdownMs: 1000,
  http: { listen: null, token: null },
  notify: { webhook: null, pingUrl: null },
} as unknown as Config;
const log = pino({ level: 'silent' });
const full = () => new Database.SqliteError('database or disk is full', 'SQLITE_FULL');

/** A pipeline whose `failed` rejects with `crash` and whose `stop` does `stop`. */
function fakePipeline(crash: unknown, stop: () => Promise<void>) {
  const failed = Promise.reject(crash);
  failed.catch(() => undefined);
  return { failed, stop: vi.fn(stop), targets: [], bus: new EventBus(), supervisor: { status: () => ({}) } };
}

beforeEach(() => {
  vi.mocked(startPipeline).mockReset();
});

describe('runCommand on a full state disk', () => {
  it('the journal full while running, closing fine: state.disk-full naming the state folder, after an orderly stop', async () => {
    const p = fakePipeline(full(), async () => undefined);
    vi.mocked(startPipeline).mockResolvedValue(p as never);
    const err = await runCommand(config, log, { once: false }).then(() => null, (e: unknown) => e);
    expect((err as { code?: string } | null)?.code).toBe(DISK_FULL_CODE);
    expect((err as Error).message).toContain(`state folder ${STATE}`);
    expect(p.stop).toHaveBeenCalledOnce();
  });

  it('the journal full while running, and closing fails for the same reason: still state.disk-full', async () => {
    const p = fakePipeline(full(), async () => {
      throw full();
    });
    vi.mocked(startPipeline).mockResolvedValue(p as never);
    await expect(runCommand(config, log, { once: false })).rejects.toMatchObject({ code: DISK_FULL_CODE });
  });

  it('the journal full at start: state.disk-full', async () => {
    vi.mocked(startPipeline).mockRejectedValue(full());
    await expect(runCommand(config, log, { once: false })).rejects.toMatchObject({ code: DISK_FULL_CODE });
  });

  it('a crash that is not about space: exit 1, no disk-full error; a failed start rethrown as is', async () => {
    vi.mocked(startPipeline).mockResolvedValue(fakePipeline(new Error('a bug'), async () => undefined) as never);
    await expect(runCommand(config, log, { once: false })).resolves.toBe(1);
    const boom = new Error('bad');
    vi.mocked(startPipeline).mockRejectedValue(boom);
    await expect(runCommand(config, log, { once: false })).rejects.toBe(boom);
  });
});
