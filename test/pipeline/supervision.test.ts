import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { waitFor } from '../helpers/fs.js';
import { scriptedHarness } from './scripted-target.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(extra: string, files: number, opts: { shutdownMs?: number } = {}) {
  const s = await scriptedHarness(extra, files, opts);
  cleanups.push(s.cleanup);
  return s;
}

const counts = async (p: Pipeline, target: string) => (await p.store.counts()).find((c) => c.target === target);

describe('uploader supervision', () => {
  it('a fatal error parks the target with its reason; after the cool-down it comes back and catches up', async () => {
    const s = await setup(
      `  - id: cloud
    type: local
    path: ./unused
    maxDemand: 2
supervisor: { coolDownMs: 300, coolDownMaxMs: 1000 }
`,
      10,
    );
    let revoked = true;
    s.cloud.script = () => (revoked ? { kind: 'fatal', reason: 'token revoked' } : 'ok');
    const p = await s.start();
    await waitFor('local done', async () => (await counts(p, 'local'))?.done === 10);
    await waitFor('cloud parked', async () => (await p.store.health()).find((x) => x.target === 'cloud')?.status === 'down');
    expect((await p.store.health()).find((x) => x.target === 'cloud')!.reason).toMatch(/token revoked/);
    expect(await counts(p, 'cloud')).toMatchObject({ done: 0, pending: 10, inFlight: 0 });
    revoked = false; // the user fixed the token
    await waitFor('cloud caught up', async () => (await counts(p, 'cloud'))?.done === 10, 10_000);
    expect((await p.store.health()).find((x) => x.target === 'cloud')!.status).toBe('up');
    expect((await s.cloud.memory.listAll()).length).toBe(10);
  });

  it('only a file\'s first put to a target says so (PutRequest.firstPut): not a retry, not a changed file\'s', async () => {
    const s = await setup('  - id: cloud\n    type: local\n    path: ./unused\n', 3);
    s.cloud.script = (remotePath, attempt) => (remotePath.endsWith('f1.txt') && attempt === 1 ? { kind: 'retry', reason: 'HTTP 503' } : 'ok');
    const p = await s.start();
    await waitFor('cloud done', async () => (await counts(p, 'cloud'))?.done === 3);
    const of = (name: string) => s.cloud.puts.filter((x) => x.remotePath.endsWith(name)).map((x) => [x.attempt, x.firstPut]);
    expect(of('f0.txt')).toEqual([[1, true]]);
    expect(of('f1.txt')).toEqual([
      [1, true],
      [2, false],
    ]);
    // The file changes: its next version's put is not a first one.
    await writeFile(path.join(s.h.inbox, 'f2.txt'), 'file 2, changed');
    await waitFor('the new version put', () => of('f2.txt').length === 2, 10_000);
    expect(of('f2.txt')).toEqual([
      [1, true],
      [2, false],
    ]);
  });

  it('a per-item failure fails that delivery alone, with the reason, and the target goes on', async () => {
    const s = await setup('  - id: cloud\n    type: local\n    path: ./unused\n', 5);
    s.cloud.script = (remotePath) => (remotePath.endsWith('f2.txt') ? { kind: 'fail-item', reason: 'name refused: rule X' } : 'ok');
    const p = await s.start();
    await waitFor('cloud settled', async () => {
      const c = await counts(p, 'cloud');
      return c && c.done === 4 && c.failed === 1;
    });
    const failed = await p.store.recent({ status: 'failed', target: 'cloud', limit: 5 });
    expect(failed.map((d) => [d.relPath, d.lastError])).toEqual([['f2.txt', 'name refused: rule X']]);
    expect(p.supervisor.status().cloud?.state).toBe('running');
  });

  it('transient errors are retried; when the retries run out the delivery goes back to pending and the target parks', async () => {
    const s = await setup(
      `  - id: cloud
    type: local
    path: ./unused
    maxDemand: 1
supervisor: { coolDownMs: 60000 }
`,
      1,
    );
    s.cloud.script = () => ({ kind: 'retry', reason: 'HTTP 503', retryAfterMs: 5 });
    const p = await s.start();
    await waitFor('parked', async () => (await p.store.health()).find((x) => x.target === 'cloud')?.status === 'down');
    // retries: 2 in the harness config, so 3 attempts
    expect(s.cloud.attempts.get('inbox/f0.txt')).toBe(3);
    expect(await counts(p, 'cloud')).toMatchObject({ pending: 1, inFlight: 0, failed: 0, done: 0 });
    expect((await p.store.health()).find((x) => x.target === 'cloud')!.reason).toMatch(/gave up after 3 attempts: HTTP 503/);
  });

  it('shutdown lets uploads in flight finish within shutdownMs, and records them done', async () => {
    const s = await setup('  - id: cloud\n    type: local\n    path: ./unused\n    maxDemand: 3\n', 3);
    s.cloud.script = () => 'hold';
    const p = await s.start();
    await waitFor('three in flight', () => s.cloud.running === 3);
    const stopped = p.stop();
    await new Promise((r) => setTimeout(r, 100));
    expect(s.cloud.running).toBe(3); // not cut: still running, within shutdownMs
    s.cloud.release();
    await stopped;
    const { openSqliteStore } = await import('../../src/state/index.js');
    const store = await openSqliteStore({ dir: s.h.config.stateDir });
    expect((await store.counts()).find((c) => c.target === 'cloud')).toMatchObject({ done: 3, inFlight: 0, pending: 0 });
    await store.close();
  });

  it('uploads still running at the shutdown deadline are stopped and left pending, never recorded done', async () => {
    const s = await setup('  - id: cloud\n    type: local\n    path: ./unused\n    maxDemand: 2\n', 2, { shutdownMs: 300 });
    s.cloud.script = () => 'hold';
    const p = await s.start();
    await waitFor('two in flight', () => s.cloud.running === 2);
    await p.stop();
    expect(s.cloud.running).toBe(0);
    const { openSqliteStore } = await import('../../src/state/index.js');
    const store = await openSqliteStore({ dir: s.h.config.stateDir });
    expect((await store.counts()).find((c) => c.target === 'cloud')).toMatchObject({ done: 0, inFlight: 0, pending: 2 });
    expect((await s.cloud.memory.listAll()).length).toBe(0);
    await store.close();
  });
});

describe('an unsupervised stage that cannot go on', () => {
  it('the journal failing under the archiver stops the pipeline with the reason instead of stalling', async () => {
    const s = await setup('  - id: cloud\n    type: local\n    path: ./unused\n', 0);
    const p = await s.start();
    await p.idle();
    await p.store.close(); // as if the journal could no longer be written
    await writeFile(path.join(s.h.inbox, 'late.txt'), 'arrives after the journal broke');
    const err = await Promise.race([p.failed.catch((e: unknown) => e), new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
    expect(String((err as Error)?.message ?? err)).toMatch(/closed/);
  });
});
