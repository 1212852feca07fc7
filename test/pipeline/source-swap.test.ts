/**
 * Issue 13, item 1: the uploader reads only the file the watcher journaled, from inside the root,
 * through one descriptor. A user who can write in a watched folder plants a bait file with the
 * size and mtime of a secret outside it, then swaps the bait (or a folder above it) for a
 * symlink while a cloud is down or between two attempts: the secret must reach no target.
 */
import { renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { listFiles, tempDir, waitFor } from '../helpers/fs.js';
import { harness } from './helpers.js';
import { createScriptedTarget } from './scripted-target.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SECRET = 'root:$6$TOPSECRET-hash-that-must-never-leave:19000:0:99999:7:::\n';
const BAIT = 'x'.repeat(SECRET.length);
const WHEN = new Date(Date.now() - 3_600_000);

async function setup() {
  const t = await tempDir();
  const h = await harness(
    t.dir,
    `  - id: cloud
    type: local
    path: ./unused
supervisor: { coolDownMs: 300, coolDownMaxMs: 1000 }
`,
  );
  const secretDir = path.join(t.dir, 'private');
  await mkdir(secretDir);
  const secret = path.join(secretDir, 'f.txt');
  await writeFile(secret, SECRET);
  await utimes(secret, WHEN, WHEN);
  const cloud = createScriptedTarget('cloud');
  let p: Pipeline | null = null;
  cleanups.push(async () => {
    cloud.release();
    await p?.stop();
    await t.cleanup();
  });
  /** The bait: a file inside the root with the secret's size and mtime. */
  const bait = async (rel: string) => {
    const f = path.join(h.inbox, rel);
    await mkdir(path.dirname(f), { recursive: true });
    await writeFile(f, BAIT);
    await utimes(f, WHEN, WHEN);
  };
  /** Every stored copy on both targets holds the bait or nothing: never the secret. */
  const secretNowhere = async () => {
    for (const r of cloud.memory.listAll()) expect(cloud.memory.readBack(r)?.toString()).not.toBe(SECRET);
    for (const f of await listFiles(h.archive)) expect(await readFile(path.join(h.archive, f), 'utf8')).not.toBe(SECRET);
  };
  return {
    h,
    cloud,
    secret,
    secretDir,
    bait,
    secretNowhere,
    async start() {
      p = await h.start({ targets: [cloud] });
      return p;
    },
  };
}

const delivery = async (p: Pipeline, status: 'done' | 'failed' | 'skipped') => p.store.recent({ status, target: 'cloud', limit: 10 });

describe('source reads by descriptor, from inside the root', () => {
  it('the file swapped for a symlink to a secret while the cloud is down: skipped with the reason, the secret on no target', async () => {
    const s = await setup();
    await s.bait('f.txt');
    let down = true;
    s.cloud.script = (remotePath) => {
      if (!down) return 'ok';
      // The attacker's moment: the cloud is down, the delivery waits; swap the bait for a link.
      renameSync(path.join(s.h.inbox, 'f.txt'), path.join(s.h.dir, 'gone.txt'));
      symlinkSync(s.secret, path.join(s.h.inbox, 'f.txt'));
      down = false;
      expect(remotePath).toBe('inbox/f.txt');
      return { kind: 'fatal', reason: 'cloud down' };
    };
    const p = await s.start();
    await waitFor('cloud delivery skipped', async () => (await delivery(p, 'skipped')).length === 1, 10_000);
    expect((await delivery(p, 'skipped'))[0]!.lastError).toMatch(/symbolic link; not followed/);
    await s.secretNowhere();
  });

  it('a folder on the path swapped for a symlink to the secret\'s folder: skipped with the reason, the secret on no target', async () => {
    const s = await setup();
    await s.bait('dir/f.txt');
    let down = true;
    s.cloud.script = () => {
      if (!down) return 'ok';
      renameSync(path.join(s.h.inbox, 'dir'), path.join(s.h.dir, 'gone'));
      symlinkSync(s.secretDir, path.join(s.h.inbox, 'dir'));
      down = false;
      return { kind: 'fatal', reason: 'cloud down' };
    };
    const p = await s.start();
    await waitFor('cloud delivery settled', async () => (await delivery(p, 'skipped')).length + (await delivery(p, 'failed')).length === 1, 10_000);
    const settled = [...(await delivery(p, 'skipped')), ...(await delivery(p, 'failed'))];
    expect(settled[0]!.lastError).toMatch(/symbolic link|replaced by another file/);
    expect(await delivery(p, 'done')).toEqual([]);
    await s.secretNowhere();
  });

  it('a swap between two attempts: the retry reads the journaled bytes through the same descriptor, never the secret', async () => {
    const s = await setup();
    await s.bait('f.txt');
    s.cloud.script = (_remotePath, attempt) => {
      if (attempt > 1) return 'ok';
      renameSync(path.join(s.h.inbox, 'f.txt'), path.join(s.h.dir, 'gone.txt'));
      symlinkSync(s.secret, path.join(s.h.inbox, 'f.txt'));
      return { kind: 'retry', reason: 'HTTP 503' };
    };
    const p = await s.start();
    await waitFor('cloud delivery settled', async () => (await delivery(p, 'done')).length + (await delivery(p, 'skipped')).length === 1, 10_000);
    expect(s.cloud.attempts.get('inbox/f.txt')).toBe(2);
    // What was journaled and opened is what was sent: the bait.
    expect(s.cloud.memory.readBack('inbox/f.txt')?.toString()).toBe(BAIT);
    await s.secretNowhere();
  });

  it('a folder swapped between two attempts: the retry still reads the journaled file', async () => {
    const s = await setup();
    await s.bait('dir/f.txt');
    s.cloud.script = (_remotePath, attempt) => {
      if (attempt > 1) return 'ok';
      renameSync(path.join(s.h.inbox, 'dir'), path.join(s.h.dir, 'gone'));
      symlinkSync(s.secretDir, path.join(s.h.inbox, 'dir'));
      return { kind: 'retry', reason: 'HTTP 503' };
    };
    const p = await s.start();
    // The watcher may see the linked folder as a change and journal it again: the new version
    // is then skipped (the folder is a link), the one sent was the bait.
    await waitFor('cloud delivery settled', async () => (await delivery(p, 'done')).length + (await delivery(p, 'skipped')).length === 1, 10_000);
    expect(s.cloud.attempts.get('inbox/dir/f.txt')).toBeGreaterThanOrEqual(2);
    expect(s.cloud.memory.readBack('inbox/dir/f.txt')?.toString()).toBe(BAIT);
    await s.secretNowhere();
  });

  it('the file rewritten in place between attempts (same inode, new mtime): the retry sends nothing and fails it as changed; the new version follows', async () => {
    const s = await setup();
    await s.bait('f.txt');
    const reasons: string[] = [];
    s.h.bus.on('upload.exception', (e) => {
      if (e.target === 'cloud') reasons.push(e.reason);
    });
    const f = path.join(s.h.inbox, 'f.txt');
    s.cloud.script = (_remotePath, attempt) => {
      if (attempt > 1) return 'ok';
      writeFileSync(f, 'y'.repeat(SECRET.length));
      return { kind: 'retry', reason: 'HTTP 503' };
    };
    const p = await s.start();
    await waitFor('the new version archived', async () => s.cloud.memory.readBack('inbox/f.txt')?.toString() === 'y'.repeat(SECRET.length), 10_000);
    expect(reasons.some((r) => /changed since it was queued/.test(r))).toBe(true);
    expect((await delivery(p, 'done')).length).toBe(1);
  });

  it('the request carries the creation time the descriptor shows (issue 16 item 9), absent where the platform gives none', async () => {
    const s = await setup();
    await s.bait('born.txt');
    const birth = statSync(path.join(s.h.inbox, 'born.txt')).birthtimeMs;
    const seen: Array<number | undefined> = [];
    const put = s.cloud.put.bind(s.cloud);
    s.cloud.put = async (req) => {
      seen.push(req.birthtimeMs);
      return await put(req);
    };
    const p = await s.start();
    await waitFor('cloud delivery done', async () => (await delivery(p, 'done')).length === 1, 10_000);
    expect(seen).toEqual([birth > 0 ? birth : undefined]);
  });
});
