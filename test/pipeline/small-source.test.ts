import { statSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { hashBuffer } from '../../src/archive/hash.js';
import { deliver } from '../../src/pipeline/deliver.js';
import { openSqliteStore } from '../../src/state/index.js';
import type { PutRequest, PutResult, Target } from '../../src/targets/target.js';
import { tempDir } from '../helpers/fs.js';
import { createScriptedTarget } from './scripted-target.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('deliver: small sources are read with synchronous calls (issue 19)', () => {
  it('a small file offers readSync through the checked descriptor (a file renamed over its path meanwhile is not read); a large one does not', async () => {
    const t = await tempDir();
    const store = await openSqliteStore({ dir: path.join(t.dir, 'state') });
    cleanups.push(async () => {
      await store.close();
      await t.cleanup();
    });
    const small = Buffer.alloc(5000, 's');
    const large = Buffer.alloc(100 * 1024, 'L');
    const items = [];
    for (const [relPath, body] of [['small.bin', small], ['large.bin', large]] as const) {
      await writeFile(path.join(t.dir, relPath), body);
      const st = statSync(path.join(t.dir, relPath));
      items.push({ root: 'r', rootPath: t.dir, relPath, size: st.size, mtimeMs: Math.floor(st.mtimeMs), ino: st.ino, dev: st.dev });
    }
    await store.recordItems(items.map((item) => ({ item, remotePath: item.relPath })), ['cloud']);
    const leased = await store.lease('cloud', 2);
    const inner = createScriptedTarget('cloud');
    const seen = new Map<string, { readSync: PutRequest['readSync']; read: Buffer | null }>();
    const target: Target = {
      ...inner,
      async put(req: PutRequest): Promise<PutResult> {
        let read: Buffer | null = null;
        if (req.readSync) {
          // Another file takes the name after the checks: what is read is still the one checked.
          await writeFile(path.join(t.dir, 'other.bin'), Buffer.alloc(req.size, 'x'));
          await rename(path.join(t.dir, 'other.bin'), path.join(t.dir, req.remotePath));
          read = Buffer.alloc(req.size + 10);
          read = read.subarray(0, req.readSync(read, 0, read.length, 0));
        }
        seen.set(req.remotePath, { readSync: req.readSync, read });
        return inner.put(req);
      },
    };
    const ctx = { target, store, retry: { retries: 0, minDelayMs: 1, maxDelayMs: 1 }, log: pino({ level: 'silent' }), signal: new AbortController().signal };
    for (const d of leased) expect(await deliver(d, ctx)).toBe('done');
    expect(seen.get('large.bin')?.readSync).toBeUndefined();
    const s = seen.get('small.bin')!;
    expect(s.read?.equals(small)).toBe(true);
    expect((await inner.memory.stat('small.bin'))?.hash).toBe(hashBuffer(inner.features.hashKind, small));
    expect((await readFile(path.join(t.dir, 'small.bin')))[0]).toBe('x'.charCodeAt(0));
    // Once the delivery is over its descriptor is closed: no read through it reaches another file.
    expect(() => s.readSync!(Buffer.alloc(10), 0, 10, 0)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});
