import { open, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../../src/pipeline/topology.js';
import { sha256File, tempDir, waitFor } from '../../helpers/fs.js';
import { harness } from '../../pipeline/helpers.js';

// Issue 14.9: a sparse source stays sparse in the local archive (holes as holes), measured as
// `du` does: allocated blocks (stat.blocks, 512 bytes each) against the size.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const MiB = 1024 * 1024;

describe('local target: sparse files', () => {
  it('a 32 MiB file with 3 small islands of data is archived byte-identical in about as few blocks as the source', async () => {
    const t = await tempDir();
    const h = await harness(t.dir, '', { stableMs: 100 });
    const src = path.join(h.inbox, 'disk.img');
    const fh = await open(src, 'w');
    await fh.write(Buffer.from('boot sector'), 0, 11, 0);
    await fh.write(Buffer.alloc(10_000, 7), 0, 10_000, 20 * MiB + 123);
    await fh.write(Buffer.from('the end'), 0, 7, 32 * MiB - 7);
    await fh.close();
    const s = await stat(src);
    // This file system must itself keep holes, or there is nothing to compare against.
    expect(s.blocks * 512).toBeLessThan(MiB);
    await writeFile(path.join(h.inbox, 'dense.bin'), Buffer.alloc(MiB, 1));
    const p: Pipeline = await h.start();
    cleanups.push(async () => {
      await p.stop();
      await t.cleanup();
    });
    const out = path.join(h.archive, 'inbox', 'disk.img');
    await waitFor('archived', async () => (await stat(out).catch(() => null))?.size === 32 * MiB, 20_000);
    await p.idle();
    expect(await sha256File(out)).toBe(await sha256File(src));
    const a = await stat(out);
    expect(a.blocks * 512).toBeLessThan(MiB);
    // Dense data is still written whole.
    expect((await stat(path.join(h.archive, 'inbox', 'dense.bin'))).blocks * 512).toBeGreaterThanOrEqual(MiB);
    expect(await readFile(path.join(h.archive, 'inbox', 'dense.bin'))).toEqual(Buffer.alloc(MiB, 1));
  }, 60_000);
});
