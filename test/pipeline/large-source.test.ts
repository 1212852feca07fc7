import { statSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { hashBuffer } from '../../src/archive/hash.js';
import { deliver, type TargetLimits } from '../../src/pipeline/deliver.js';
import { TokenBucket } from '../../src/retry/rate-limit.js';
import { openSqliteStore } from '../../src/state/index.js';
import type { PutRequest, PutResult, Target } from '../../src/targets/target.js';
import { tempDir } from '../helpers/fs.js';
import { createScriptedTarget } from './scripted-target.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Delivers one 100 KiB file (past the small-source size) to a target that records its request. */
async function deliverLarge(limits?: TargetLimits) {
  const t = await tempDir();
  const store = await openSqliteStore({ dir: path.join(t.dir, 'state') });
  cleanups.push(async () => {
    await store.close();
    await t.cleanup();
  });
  const body = Buffer.alloc(100 * 1024, 'L');
  await writeFile(path.join(t.dir, 'large.bin'), body);
  const st = statSync(path.join(t.dir, 'large.bin'));
  const item = { root: 'r', rootPath: t.dir, relPath: 'large.bin', size: st.size, mtimeMs: Math.floor(st.mtimeMs), ino: st.ino, dev: st.dev };
  await store.recordItems([{ item, remotePath: item.relPath }], ['cloud']);
  const [leased] = await store.lease('cloud', 1);
  const inner = createScriptedTarget('cloud');
  let seen: { read: PutRequest['read']; got: Buffer | null } | null = null;
  const target: Target = {
    ...inner,
    async put(req: PutRequest): Promise<PutResult> {
      let got: Buffer | null = null;
      if (req.read) {
        // Another file takes the name after the checks: what is read is still the one checked.
        await writeFile(path.join(t.dir, 'other.bin'), Buffer.alloc(req.size, 'x'));
        await rename(path.join(t.dir, 'other.bin'), path.join(t.dir, req.remotePath));
        got = Buffer.alloc(req.size + 10);
        let n = 0;
        for (let k; (k = await req.read(got, n, got.length - n, n)) > 0; ) n += k;
        got = got.subarray(0, n);
      }
      seen = { read: req.read, got };
      return inner.put(req);
    },
  };
  const ctx = { target, store, retry: { retries: 0, minDelayMs: 1, maxDelayMs: 1 }, log: pino({ level: 'silent' }), signal: new AbortController().signal, ...(limits ? { limits } : {}) };
  expect(await deliver(leased!, ctx)).toBe('done');
  return { body, seen: seen!, inner };
}

describe('deliver: a large source offers positional reads (issue 19 item 4)', () => {
  it('read() reads the checked descriptor (a file renamed over the path meanwhile is not read), and fails once the delivery is over', async () => {
    const { body, seen, inner } = await deliverLarge();
    expect(seen.got?.equals(body)).toBe(true);
    expect((await inner.memory.stat('large.bin'))?.hash).toBe(hashBuffer(inner.features.hashKind, body));
    await expect(seen.read!(Buffer.alloc(10), 0, 10, 0)).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('a source paced by a byte limit offers no read(): its bytes go through the paced stream only', async () => {
    const { seen } = await deliverLarge({ bytes: new TokenBucket(1e9) });
    expect(seen.read).toBeUndefined();
  });
});
