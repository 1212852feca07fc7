import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import type { PutRequest } from '../../src/targets/target.js';
import { tempDir } from '../helpers/fs.js';
import { harness } from './helpers.js';
import { createScriptedTarget } from './scripted-target.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A pipeline with one scripted target of maxDemand 1 over `files` small files; every put's start and end marked, and a turn of the event loop after each end. */
async function run(files: number, marks: string[] = [], started?: (p: Pipeline) => void): Promise<string[]> {
  const t = await tempDir();
  const h = await harness(t.dir, '  - id: cloud\n    type: local\n    path: ./unused\n    maxDemand: 1\n');
  for (let i = 0; i < files; i++) await writeFile(path.join(h.inbox, `f${i}.txt`), `file ${i}`);
  const cloud = createScriptedTarget('cloud');
  const put = cloud.put.bind(cloud);
  cloud.put = async (req: PutRequest) => {
    marks.push('start');
    const r = await put(req);
    marks.push('put done');
    // Fires on the next turn: before the next put's start only if that start waited for a turn.
    setImmediate(() => marks.push('next turn'));
    return r;
  };
  let p: Pipeline | null = null;
  cleanups.push(async () => {
    await p?.stop();
    await t.cleanup();
  });
  p = await h.start({ mode: 'once', targets: [cloud] });
  started?.(p);
  await p.idle();
  expect(marks.filter((m) => m === 'start')).toHaveLength(files);
  // What came right after each put's end, but the last's.
  return marks.join(',').split('put done,').slice(1, -1).map((s) => s.split(',')[0]!);
}

describe('an upload slot that frees up', () => {
  it('still lets the event loop turn when deliveries end without I/O', async () => {
    const after = await run(200);
    // A scripted target does no I/O: leases chained on the tick queue would run all 200 in one turn.
    expect(after.filter((m) => m === 'next turn').length).toBeGreaterThanOrEqual(2);
  });

  it('is free once the put is done: the next upload starts while the journal records the last one', async () => {
    const marks: string[] = [];
    await run(3, marks, (p) => {
      const complete = p.store.complete.bind(p.store);
      // The record of each completion takes 300 ms: a slot held until it is made would wait for it.
      p.store.complete = async (...args) => {
        await new Promise((r) => setTimeout(r, 300));
        await complete(...args);
        marks.push('recorded');
      };
    });
    expect(marks.filter((m) => m !== 'next turn').slice(0, 5)).toEqual(['start', 'put done', 'start', 'put done', 'start']);
  });
});
