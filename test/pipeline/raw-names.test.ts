import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { unescapeName } from '../../src/archive/raw-name.js';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { listFiles, tempDir, waitFor } from '../helpers/fs.js';
import { harness } from './helpers.js';

// Issue 14.3: a name that is not valid UTF-8 is archived under its escaped name, never skipped
// silently; the journal keeps the raw bytes so a restore can write the original name back.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const latin1 = (s: string) => Buffer.from(s, 'latin1');
const bytesPath = (...parts: Array<string | Buffer>) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));

describe('names that are not valid UTF-8', () => {
  it('are archived under an escaped name, found at start and live, with the raw name in the journal', async () => {
    const t = await tempDir();
    const h = await harness(t.dir, 'watcher: { rescanMs: 0 }', { stableMs: 100 });
    const pipelines: Pipeline[] = [];
    cleanups.push(async () => {
      for (const p of pipelines) await p.stop();
      await t.cleanup();
    });
    // There at start: a Latin-1 file name, and a file inside a Latin-1 folder name.
    writeFileSync(bytesPath(h.inbox, '/', latin1('café.txt')), 'at start');
    mkdirSync(bytesPath(h.inbox, '/', latin1('Année')));
    writeFileSync(bytesPath(h.inbox, '/', latin1('Année'), '/', latin1('été.jpg')), 'nested');
    const p = await h.start();
    pipelines.push(p);
    await p.watcher.source.live;
    // Made while watching: chokidar reads names as strings and cannot see it; the walk can.
    mkdirSync(bytesPath(h.inbox, '/new'));
    writeFileSync(bytesPath(h.inbox, '/new/', latin1('reçu.pdf')), 'live');
    writeFileSync(bytesPath(h.inbox, '/', latin1('naïve.txt')), 'live at the top');

    const expected = ['inbox/Ann%E9e/%E9t%E9.jpg', 'inbox/caf%E9.txt', 'inbox/na%EFve.txt', 'inbox/new/re%E7u.pdf'];
    // The names themselves: a count alone also took a file still under its temporary name.
    await waitFor('all four archived', async () => (await listFiles(h.archive)).join('\n') === expected.join('\n'), 10_000);
    expect(await listFiles(h.archive)).toEqual(expected);
    expect(await readFile(path.join(h.archive, 'inbox', 'caf%E9.txt'), 'utf8')).toBe('at start');
    await p.idle();
    expect((await p.store.counts())[0]).toMatchObject({ done: 4, failed: 0, skipped: 0 });

    const db = new Database(path.join(t.dir, 'state', 'stagecoach.db'), { readonly: true });
    try {
      const rows = db.prepare('SELECT rel_path, raw_path FROM files ORDER BY rel_path').all() as Array<{ rel_path: string; raw_path: Buffer }>;
      expect(rows.map((r) => r.rel_path)).toEqual(expected.map((e) => e.slice('inbox/'.length)));
      for (const r of rows) expect(r.raw_path.equals(unescapeName(r.rel_path))).toBe(true);
      expect(rows.find((r) => r.rel_path === 'caf%E9.txt')!.raw_path.equals(latin1('café.txt'))).toBe(true);
    } finally {
      db.close();
    }
  });
});
