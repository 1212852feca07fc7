import { mkdirSync, renameSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { harness } from './helpers.js';

// Issue 14.7: a file moved while it uploads is archived at its new path, and its old delivery
// is not counted failed.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('a file moved during its upload', () => {
  it('is archived at its new path; the delivery of the old path is skipped with a reason, not failed', async () => {
    const t = await tempDir();
    const h = await harness(t.dir, 'watcher: { rescanMs: 0 }', { stableMs: 100 });
    const p: Pipeline = await h.start();
    cleanups.push(async () => {
      await p.stop();
      await t.cleanup();
    });
    await p.watcher.source.live;
    // Moved the moment its upload starts: after the uploader's check, before the target reads.
    h.bus.on('upload.start', ({ remotePath }) => {
      if (remotePath !== 'inbox/a.txt') return;
      mkdirSync(path.join(h.inbox, 'sorted'));
      renameSync(path.join(h.inbox, 'a.txt'), path.join(h.inbox, 'sorted', 'a.txt'));
    });
    await writeFile(path.join(h.inbox, 'a.txt'), 'moving soon');
    await waitFor('archived at its new path', async () => (await readFile(path.join(h.archive, 'inbox', 'sorted', 'a.txt'), 'utf8').catch(() => '')) === 'moving soon', 10_000);
    await p.idle();
    // The old path's upload reads the file through the descriptor it opened (issue 13): it is
    // done with the journaled bytes, or skipped with the reason when it had not opened it yet.
    const c = (await p.store.counts())[0]!;
    expect(c).toMatchObject({ failed: 0, pending: 0 });
    expect(c.done + c.skipped).toBe(2);
    for (const s of await p.store.recent({ status: 'skipped', limit: 5 })) {
      expect(s).toMatchObject({ relPath: 'a.txt' });
      expect(s.lastError).toMatch(/vanished/);
    }
  });
});
