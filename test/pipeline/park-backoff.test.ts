import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { requestRetry } from '../../src/pipeline/retry-requests.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { harness } from './helpers.js';

// Issue 14.6: a target parked for a lasting reason is tried at growing intervals (the doubling
// cool-down up to coolDownMaxMs), not every coolDownMs forever; `stagecoach retry <target>` (a
// request file in the state folder) tries it at once.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('parks for a lasting reason', () => {
  it('are tried at growing intervals, and at once when a retry is asked', async () => {
    const t = await tempDir();
    // The broken target's folder can never be made: a file sits where its parent should be.
    await writeFile(path.join(t.dir, 'not-a-folder'), 'x');
    const h = await harness(
      t.dir,
      `  - id: broken
    type: local
    path: ${path.join(t.dir, 'not-a-folder', 'archive')}
supervisor: { coolDownMs: 200, coolDownMaxMs: 60000 }
`,
      { stableMs: 100 },
    );
    const pipelines: Pipeline[] = [];
    cleanups.push(async () => {
      for (const p of pipelines) await p.stop();
      await t.cleanup();
    });
    const parks: Array<{ at: number; retryInMs: number }> = [];
    const unparks: number[] = [];
    h.bus.on('stage.park', ({ stage, retryInMs }) => {
      if (stage === 'broken') parks.push({ at: Date.now(), retryInMs });
    });
    h.bus.on('stage.unpark', ({ stage }) => {
      if (stage === 'broken') unparks.push(Date.now());
    });
    await writeFile(path.join(h.inbox, 'a.txt'), 'a');
    const p = await h.start();
    pipelines.push(p);
    await waitFor('four parks', () => parks.length >= 4, 20_000);
    expect(parks.slice(0, 4).map((x) => x.retryInMs)).toEqual([200, 400, 800, 1600]);

    // Parked for 1.6 s or more now: ask for a retry, as `stagecoach retry broken` does.
    await waitFor('parked again', () => parks.length >= 5, 20_000);
    const last = parks.at(-1)!;
    expect(last.retryInMs).toBe(3200);
    const before = unparks.length;
    await requestRetry(h.config.stateDir, 'broken');
    await waitFor('tried at once', () => unparks.length > before, 5_000);
    expect(unparks.at(-1)!).toBeLessThan(last.at + last.retryInMs);
  }, 60_000);
});
