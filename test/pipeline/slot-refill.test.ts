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

describe('an upload slot that frees up', () => {
  it("starts its next upload in the turn of the event loop its completion committed in, not a turn later (the completion, the lease and the name claim wait for this turn's promises only)", async () => {
    const t = await tempDir();
    const h = await harness(t.dir, '  - id: cloud\n    type: local\n    path: ./unused\n    maxDemand: 1\n');
    for (let i = 0; i < 4; i++) await writeFile(path.join(h.inbox, `f${i}.txt`), `file ${i}`);
    const cloud = createScriptedTarget('cloud');
    const marks: string[] = [];
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
    await p.idle();
    const between = marks.join(',').split('put done,').slice(1, -1).map((s) => s.split(',')[0]);
    expect(between).toEqual(['start', 'start', 'start']);
  });
});
