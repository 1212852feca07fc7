import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { openSqliteStore } from '../../src/state/sqlite-store.js';
import { waitFor } from '../helpers/fs.js';
import { scriptedHarness } from './scripted-target.js';

/*
 * Leasing ahead (ArchiverOptions.leaseAhead): a lease takes a target's demand plus up to its
 * maxDemand more (at most 16) in one journal transaction, and the archiver hands the extra out as
 * the target's slots free up, without a lease each. What is held must never be sent twice nor
 * left in flight: an uploader that leaves (stops, parks, crashes) has its held deliveries put back
 * to pending at once.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CLOUD = '  - id: cloud\n    type: local\n    path: ./unused\n    maxDemand: 2\n';

async function setUp(files: number, opts: { shutdownMs?: number; yaml?: string } = {}) {
  const s = await scriptedHarness(opts.yaml ?? CLOUD, files, { shutdownMs: opts.shutdownMs ?? 5000 });
  cleanups.push(s.cleanup);
  return s;
}

/**
 * Ten files, every put held: two running (maxDemand 2) and two more held by the archiver. A first
 * run journals every file and stops, so that the second run's first lease finds all ten pending,
 * however the scan batched their records (a first lease made after the first record alone would
 * find fewer than four).
 */
async function fourInFlight(files = 10): Promise<{ s: Awaited<ReturnType<typeof setUp>>; p: Pipeline }> {
  const s = await setUp(files, { shutdownMs: 200 });
  s.cloud.script = () => 'hold';
  await s.start('watch');
  await waitFor('all recorded', () => s.h.recorded.length === files, 5000);
  const p = await s.restart('watch');
  await waitFor('two puts running', () => s.cloud.running === 2, 5000);
  await waitFor('four in flight', async () => (await cloudCounts(p)).inFlight === 4, 2000);
  return { s, p };
}

async function cloudCounts(p: Pipeline): Promise<{ pending: number; inFlight: number; done: number }> {
  const c = (await p.store.counts()).find((x) => x.target === 'cloud');
  return { pending: c?.pending ?? 0, inFlight: c?.inFlight ?? 0, done: c?.done ?? 0 };
}

describe('leasing ahead of the demand', () => {
  it('takes the demand and as many more in one lease, and sends each of them once', async () => {
    const { s, p } = await fourInFlight(12);
    expect(await cloudCounts(p)).toEqual({ pending: 8, inFlight: 4, done: 0 });
    s.cloud.script = () => 'ok';
    s.cloud.release();
    await waitFor('all done', async () => (await cloudCounts(p)).done === 12, 5000);
    expect(await cloudCounts(p)).toEqual({ pending: 0, inFlight: 0, done: 12 });
    // Every file put once in this run: nothing held was sent twice.
    expect([...s.cloud.attempts.values()]).toEqual(Array(12).fill(1));
  });

  it('tells the target what it leased, those held ahead too, before their puts (Target.prepare)', async () => {
    const { s } = await fourInFlight();
    const held = s.cloud.prepared.filter((p) => !s.cloud.attempts.has(p));
    // Two running, two held: the held ones were told, and not put yet.
    expect(new Set(s.cloud.prepared).size).toBeGreaterThanOrEqual(4);
    expect(held.length).toBeGreaterThanOrEqual(2);
    for (const p of [...s.cloud.attempts.keys()]) expect(s.cloud.prepared).toContain(p);
  });

  it('puts what it held back to pending when the daemon stops', async () => {
    const { s } = await fourInFlight();
    const stateDir = path.join(s.h.dir, 'state');
    // The two running puts are stopped at the deadline and go back to pending; so must the two
    // deliveries held beside them.
    await s.stop();
    const store = await openSqliteStore({ dir: stateDir });
    try {
      const c = (await store.counts()).find((x) => x.target === 'cloud');
      expect({ pending: c?.pending, inFlight: c?.inFlight ?? 0 }).toEqual({ pending: 10, inFlight: 0 });
    } finally {
      await store.close();
    }
  });

  it('does not wait past shutdownMs at the stop for a journal that does not answer', async () => {
    const { s, p } = await fourInFlight();
    // Putting anything back to pending never answers (a journal out of reach).
    p.store.release = () => new Promise<void>(() => undefined);
    const stopped = s.stop().then(() => 'stopped');
    // The running puts' own releases are waited for shutdownMs + 5 s by the supervisor; the held
    // ones' for shutdownMs more. Without a bound the stop would never end.
    const timedOut = new Promise((r) => setTimeout(() => r('still stopping'), 9000));
    expect(await Promise.race([stopped, timedOut])).toBe('stopped');
  });

  it('sends nothing twice when the target parks and comes back: what it held is leased again, once', async () => {
    const s = await setUp(16, { yaml: `${CLOUD}supervisor: { coolDownMs: 200, coolDownMaxMs: 1000 }\n` });
    let first: string | null = null;
    // The first put parks the target (a fatal error) while two deliveries are held for it.
    s.cloud.script = (remotePath, attempt) => {
      first ??= remotePath;
      return remotePath === first && attempt === 1 ? { kind: 'fatal', reason: 'token revoked' } : 'ok';
    };
    // Puts take 20 and 80 ms in turn (so one slot frees while the other's put runs on), and any
    // put of a file whose other put still runs is noted.
    const live = new Set<string>();
    const twiceAtOnce: string[] = [];
    let started = 0;
    const put = s.cloud.put.bind(s.cloud);
    s.cloud.put = async (req) => {
      if (live.has(req.remotePath)) twiceAtOnce.push(req.remotePath);
      live.add(req.remotePath);
      try {
        await new Promise((r) => setTimeout(r, started++ % 2 === 0 ? 20 : 80));
        return await put(req);
      } finally {
        live.delete(req.remotePath);
      }
    };
    const p = await s.start('watch');
    await waitFor('all done', async () => (await cloudCounts(p)).done === 16, 10_000);
    expect(twiceAtOnce).toEqual([]);
    // The parked file was tried twice, the one beside it at most twice (stopped by the park), the rest once.
    expect(s.cloud.attempts.get(first!)).toBe(2);
    const others = [...s.cloud.attempts].filter(([k]) => k !== first).map(([, n]) => n);
    expect(others).toHaveLength(15);
    expect(others.filter((n) => n === 1).length).toBeGreaterThanOrEqual(14);
    expect(Math.max(...others)).toBeLessThanOrEqual(2);
    expect(await cloudCounts(p)).toEqual({ pending: 0, inFlight: 0, done: 16 });
  });
});
