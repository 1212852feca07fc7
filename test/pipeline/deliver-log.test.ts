import { statSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { deliver } from '../../src/pipeline/deliver.js';
import { openSqliteStore } from '../../src/state/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir } from '../helpers/fs.js';
import { createScriptedTarget } from './scripted-target.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('deliver: what is worth a warning (issue 18)', () => {
  it('a file that changed again is logged at info (it is archived later); a refused name at warn', async () => {
    const t = await tempDir();
    const store = await openSqliteStore({ dir: path.join(t.dir, 'state') });
    cleanups.push(async () => {
      await store.close();
      await t.cleanup();
    });
    const items = [];
    for (const relPath of ['growing.log.txt', 'bad?name.txt']) {
      await writeFile(path.join(t.dir, relPath), 'first version');
      const st = statSync(path.join(t.dir, relPath));
      items.push({ root: 'r', rootPath: t.dir, relPath, size: st.size, mtimeMs: Math.floor(st.mtimeMs), ino: st.ino });
    }
    await store.recordItems(items.map((item) => ({ item, remotePath: item.relPath })), ['cloud']);
    const leased = await store.lease('cloud', 2);
    await appendFile(path.join(t.dir, 'growing.log.txt'), ', and more');
    const target = createScriptedTarget('cloud');
    target.script = (remotePath) => (remotePath.includes('?') ? { kind: 'fail-item', reason: 'name refused' } : 'ok');
    const out: string[] = [];
    const log = createLogger({
      level: 'debug',
      format: 'json',
      destination: new Writable({
        write(chunk, _e, done) {
          out.push(String(chunk));
          done();
        },
      }),
    });
    const ctx = { target, store, retry: { retries: 0, minDelayMs: 1, maxDelayMs: 1 }, log, signal: new AbortController().signal };
    expect(await deliver(leased.find((d) => d.relPath === 'growing.log.txt')!, ctx)).toBe('failed');
    expect(await deliver(leased.find((d) => d.relPath === 'bad?name.txt')!, ctx)).toBe('failed');
    const lines = out
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string; relPath?: string; reason?: string });
    const failed = lines.filter((l) => l.msg === 'delivery failed');
    expect(failed.map((l) => [l.relPath, l.level])).toEqual([
      ['growing.log.txt', 30],
      ['bad?name.txt', 40],
    ]);
    expect(failed[0]!.reason).toMatch(/source changed since it was queued.*archived again once it is stable/);
  });
});
