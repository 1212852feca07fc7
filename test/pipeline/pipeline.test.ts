import { createWriteStream, rmSync } from 'node:fs';
import { mkdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { bytes, listFiles, sha256File, tempDir, timeFor, waitFor, waitForWork, within } from '../helpers/fs.js';
import { harness } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(yamlExtra = '', opts: { stableMs?: number } = {}) {
  const t = await tempDir();
  const h = await harness(t.dir, yamlExtra, opts);
  const pipelines: Pipeline[] = [];
  cleanups.push(async () => {
    for (const p of pipelines) await p.stop();
    await t.cleanup();
  });
  return {
    ...h,
    async run(mode: 'watch' | 'once' = 'watch') {
      const p = await h.start({ mode });
      pipelines.push(p);
      return p;
    },
  };
}

async function sameContent(a: string, b: string): Promise<boolean> {
  try {
    return (await sha256File(a)) === (await sha256File(b));
  } catch {
    return false;
  }
}

describe('pipeline on the local target, real chokidar and SQLite', () => {
  it('archives files written into the root, nested folders and a folder moved in whole, byte-identical', async () => {
    const h = await setup();
    const p = await h.run();
    await p.idle();
    await writeFile(path.join(h.inbox, 'a.txt'), 'hello');
    await mkdir(path.join(h.inbox, 'x', 'y'), { recursive: true });
    await writeFile(path.join(h.inbox, 'x', 'y', 'z.bin'), bytes(300_000, 1));
    const outside = path.join(h.dir, 'outside', 'album');
    await mkdir(path.join(outside, 'day 1'), { recursive: true });
    await writeFile(path.join(outside, 'p1.jpg'), bytes(10_000, 2));
    await writeFile(path.join(outside, 'day 1', 'p2.jpg'), bytes(20_000, 3));
    await writeFile(path.join(outside, 'day 1', 'p3.jpg'), Buffer.alloc(0));
    await rename(outside, path.join(h.inbox, 'album'));

    const expected = ['a.txt', 'album/day 1/p2.jpg', 'album/day 1/p3.jpg', 'album/p1.jpg', 'x/y/z.bin'];
    await waitForWork('every file archived', timeFor(expected.length, 2_000, 10_000), async () => {
      const left: string[] = [];
      for (const f of expected) if (!(await sameContent(path.join(h.inbox, f), path.join(h.archive, 'inbox', f)))) left.push(f);
      return left;
    });
    // Nothing else in the archive: no temp files, no duplicates.
    expect(await listFiles(h.archive)).toEqual(expected.map((f) => `inbox/${f}`));
    await p.idle();
    const counts = await p.store.counts();
    expect(counts).toEqual([expect.objectContaining({ target: 'local', done: 5, pending: 0, inFlight: 0, failed: 0 })]);
  });

  it('follows an editor\'s atomic save (temp file renamed over the original), never archives the temp, and never deletes from the archive', async () => {
    const h = await setup();
    const p = await h.run();
    await p.idle();
    const doc = path.join(h.inbox, 'report.txt');
    await writeFile(doc, 'first draft');
    await waitFor('first draft archived', () => sameContent(doc, path.join(h.archive, 'inbox', 'report.txt')));
    // gedit/GNOME style: write a hidden temp beside it, then rename it over the original.
    const tmp = path.join(h.inbox, '.goutputstream-ABC123');
    await writeFile(tmp, 'second draft, saved atomically');
    await rename(tmp, doc);
    await waitFor('second draft archived', async () => (await readFile(path.join(h.archive, 'inbox', 'report.txt'), 'utf8')) === 'second draft, saved atomically');
    // A delete at the source is never carried to the archive.
    const { rm } = await import('node:fs/promises');
    await rm(doc);
    await new Promise((r) => setTimeout(r, 600));
    await p.idle();
    expect(await listFiles(h.archive)).toEqual(['inbox/report.txt']);
    expect(await readFile(path.join(h.archive, 'inbox', 'report.txt'), 'utf8')).toBe('second draft, saved atomically');
    expect(h.recorded.filter((r) => r.includes('goutputstream'))).toEqual([]);
  });

  it('archives a file written slowly over several seconds once, complete, after it stops growing', async () => {
    const h = await setup('', { stableMs: 1000 });
    const p = await h.run();
    await p.idle();
    const file = path.join(h.inbox, 'slow.log');
    const out = createWriteStream(file);
    const chunks = 12;
    for (let i = 0; i < chunks; i++) {
      out.write(bytes(50_000, 100 + i));
      await new Promise((r) => setTimeout(r, 300)); // the writer's pace: the subject is the watcher's, not time
    }
    await new Promise<void>((r) => out.end(r));
    await waitFor('the slow file archived', () => sameContent(file, path.join(h.archive, 'inbox', 'slow.log')), 20_000);
    await p.idle();
    expect((await stat(path.join(h.archive, 'inbox', 'slow.log'))).size).toBe(chunks * 50_000);
    expect(h.uploads).toEqual(['local:inbox/slow.log']);
  });

  it('a restart over 1,000 archived files archives nothing; a file changed while stopped is archived', async () => {
    const h = await setup();
    const old = new Date(Date.now() - 3_600_000);
    for (let i = 0; i < 1000; i++) {
      const f = path.join(h.inbox, `d${i % 10}`, `f${i}.txt`);
      await mkdir(path.dirname(f), { recursive: true });
      await writeFile(f, `file ${i}`);
      await utimes(f, old, old);
    }
    const first = await h.run('once');
    await within('1,000 files archived', timeFor(1000, 20), first.idle(), async () => JSON.stringify(await first.store.counts()));
    expect((await first.store.counts())[0]).toMatchObject({ done: 1000, pending: 0 });
    await first.stop();
    expect(h.uploads).toHaveLength(1000);

    h.uploads.length = 0;
    h.recorded.length = 0;
    await writeFile(path.join(h.inbox, 'd3', 'f3.txt'), 'changed while stopped');
    const second = await h.run();
    await second.idle();
    await waitFor('the changed file archived', async () => (await readFile(path.join(h.archive, 'inbox', 'd3', 'f3.txt'), 'utf8')) === 'changed while stopped');
    await second.idle();
    expect(h.recorded).toEqual(['d3/f3.txt']);
    expect(h.uploads).toEqual(['local:inbox/d3/f3.txt']);
  }, timeFor(1000, 40));

  it('a target that always fails does not hold up the local target; its deliveries wait with a reason', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    // The broken target's folder cannot be created: a file sits where its parent should be.
    await writeFile(path.join(t.dir, 'not-a-folder'), 'x');
    const h = await setup(`
  - id: broken
    type: local
    path: ${path.join(t.dir, 'not-a-folder', 'archive')}
    maxDemand: 2
supervisor: { coolDownMs: 60000 }
`);
    for (let i = 0; i < 50; i++) await writeFile(path.join(h.inbox, `f${i}.bin`), bytes(2000, i));
    const p = await h.run();
    await waitForWork('local done', timeFor(50, 200, 10_000), async () => {
      const local = (await p.store.counts()).find((c) => c.target === 'local');
      return local?.done === 50 ? [] : [`${50 - (local?.done ?? 0)} of 50 on local: ${JSON.stringify(local)}`];
    });
    const counts = await p.store.counts();
    const broken = counts.find((c) => c.target === 'broken')!;
    expect(broken.done).toBe(0);
    expect(broken.pending + broken.failed + broken.inFlight).toBe(50);
    await waitFor('broken parked', async () => (await p.store.health()).find((x) => x.target === 'broken')?.status === 'down');
    const health = (await p.store.health()).find((x) => x.target === 'broken')!;
    expect(health.reason).toMatch(/not-a-folder|ENOTDIR|EEXIST|folder/i);
    expect(p.supervisor.status().broken?.state).toBe('parked');
  });

  it('an unreadable or vanished file fails or skips its own delivery with a reason, and the rest go on', async () => {
    const h = await setup();
    const p = await h.run();
    await p.idle();
    // vanishes between being journaled and being read: the uploader re-checks and skips it
    const doomed = path.join(h.inbox, 'doomed.txt');
    await writeFile(doomed, 'soon gone');
    await writeFile(path.join(h.inbox, 'fine.txt'), 'fine');
    const off = p.bus.on('item.record', ({ relPath }) => {
      // At once (the event is emitted before the lease): a small source is opened with synchronous
      // calls, and an rm on the thread pool could lose the race and see it archived, as allowed.
      if (relPath === 'doomed.txt') rmSync(doomed, { force: true });
    });
    await waitFor('fine archived', () => sameContent(path.join(h.inbox, 'fine.txt'), path.join(h.archive, 'inbox', 'fine.txt')));
    await p.idle();
    off();
    const skipped = await p.store.recent({ status: 'skipped', limit: 10 });
    const failed = await p.store.recent({ status: 'failed', limit: 10 });
    const ended = [...skipped, ...failed].filter((d) => d.relPath === 'doomed.txt');
    // Either the watcher saw the delete first (nothing to do) or the uploader ended it with a reason.
    for (const d of ended) expect(d.lastError).toMatch(/vanished|changed|cannot read|gone|ENOENT/);
    expect(await listFiles(h.archive)).toEqual(['inbox/fine.txt']);
  });
});
