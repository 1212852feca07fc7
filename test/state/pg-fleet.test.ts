import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { SharedTokenBucket } from '../../src/retry/rate-limit.js';
import type { Store } from '../../src/state/index.js';
import { type NodeOptions, openPgStore } from '../../src/state/pg-store.js';
import { waitFor } from '../helpers/fs.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { newItem } from './helpers.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
const open: Store[] = [];
beforeEach(async () => {
  db = await createTestDatabase(inject('pgUrl'));
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await db.drop();
});

const INBOX = new Map([['inbox', '/mnt/a/inbox']]);

async function node(name: string, over: Partial<NodeOptions> = {}) {
  const s = await openPgStore({ url: db.url, node: { name, roots: INBOX, watches: ['inbox'], leaseMs: 1000, ...over } });
  open.push(s);
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('several daemons on one PostgreSQL journal', () => {
  it('one daemon per node name: a second one under the same name is refused until the first stops', async () => {
    const a = await node('nas-a');
    await expect(node('nas-a')).rejects.toMatchObject({ code: 'state.node-taken', message: expect.stringContaining('"nas-a"') });
    await a.close();
    await expect(node('nas-a')).resolves.toBeDefined();
    await expect(node('nas-b')).resolves.toBeDefined();
  });

  it('a node leases only deliveries of roots it can read, each at its own mount point', async () => {
    const a = await node('a', { roots: new Map([['inbox', '/mnt/a/inbox']]) });
    const b = await node('b', { roots: new Map([['photos', '/mnt/b/photos']]), watches: [] });
    await a.recordItems([newItem('x'), newItem('p', { root: 'photos', rootPath: '/srv/photos' }), newItem('y')], ['local']);
    expect((await b.lease('local', 10)).map((d) => [d.root, d.rootPath, d.relPath])).toEqual([['photos', '/mnt/b/photos', 'p']]);
    expect((await a.lease('local', 10)).map((d) => [d.root, d.rootPath, d.relPath])).toEqual([
      ['inbox', '/mnt/a/inbox', 'x'],
      ['inbox', '/mnt/a/inbox', 'y'],
    ]);
  });

  it('a node that stops heartbeating loses its leases to another node, resume handles kept; its restart does not take them back', async () => {
    const a = await node('a');
    const b = await node('b');
    await a.recordItems(['1', '2', '3'].map((p) => newItem(p)), ['box']);
    const held = await a.lease('box', 10);
    await a.saveResume(held[0]!.id, 'https://upload.box.example/sessions/42');
    await a.close(); // dies: no heartbeat, nothing released

    expect(await b.lease('box', 10)).toEqual([]); // not expired yet
    await sleep(1300);
    const taken = await b.lease('box', 10);
    expect(taken.map((d) => d.id)).toEqual(held.map((d) => d.id));
    expect(taken[0]!.resumeHandle).toBe('https://upload.box.example/sessions/42');
    // Each says why it is sent again (and so is no file's first put: PutRequest.firstPut).
    expect(taken.map((d) => d.lastError)).toEqual(Array(3).fill('the daemon that held it stopped answering (its lease expired); sent again'));

    const again = await node('a'); // restarted: resets only its own leases (none now)
    expect(await again.resetInFlight()).toBe(0);
    await again.release(taken[1]!.id, 'late release from the old lease');
    const nodes = await b.nodes();
    expect(nodes.map((n) => [n.name, n.leases, n.alive])).toEqual([
      ['a', 0, true],
      ['b', 3, true],
    ]);
  });

  it('a target one node parked is parked for every node until its retry time', async () => {
    const a = await node('a');
    const b = await node('b');
    await a.recordItems(['1', '2'].map((p) => newItem(p)), ['gdrive', 'box']);
    await a.setHealth({ target: 'gdrive', status: 'down', reason: 'daily upload limit', since: Date.now(), retryAt: Date.now() + 800 });
    expect(await b.lease('gdrive', 10)).toEqual([]);
    expect(await b.lease('box', 10)).toHaveLength(2);
    await sleep(1000);
    expect(await b.lease('gdrive', 10)).toHaveLength(2);
  });

  it('rate limits are the fleet\'s: what one node spent, another node waits for', async () => {
    const a = await node('a');
    const b = await node('b');
    expect(await a.takeTokens('box:requests', 10, 10, 10)).toBe(0);
    const wait = await b.takeTokens('box:requests', 10, 10, 5);
    expect(wait).toBeGreaterThan(400);
    expect(wait).toBeLessThanOrEqual(500);
    expect(await b.takeTokens('dropbox:requests', 10, 10, 5)).toBe(0); // a bucket per key

    // Through the pipeline's bucket: the second node's take waits for the first node's spending.
    const bucketA = new SharedTokenBucket((r, burst, n) => a.takeTokens('gdrive:bytes', r, burst, n), 1000);
    const bucketB = new SharedTokenBucket((r, burst, n) => b.takeTokens('gdrive:bytes', r, burst, n), 1000);
    await bucketA.take(1000);
    const t0 = Date.now();
    await bucketB.take(300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('sources on several nodes claiming one remote name at once: one owns it, every other gets its own alternative', async () => {
    const a = await node('a');
    const b = await node('b');
    const claim = (s: Store, i: number) =>
      s.claimRemotePath({
        target: 'box',
        root: 'inbox',
        relPath: `dir${i}/Report.PDF`,
        wanted: 'inbox/report.pdf',
        keyOf: (p) => p.toLowerCase(),
        alternative: (w, n) => w.replace('.pdf', `~${i}-${n}.pdf`),
      });
    const got = await Promise.all(Array.from({ length: 16 }, (_, i) => claim(i % 2 === 0 ? a : b, i)));
    expect(got.filter((g) => g.takenBy === null)).toHaveLength(1);
    expect(new Set(got.map((g) => g.remotePath.toLowerCase())).size).toBe(16);
    // Claiming again changes nothing (the owner's one statement; the others' stored alternative).
    const again = await Promise.all(Array.from({ length: 16 }, (_, i) => claim(i % 2 === 0 ? b : a, i)));
    expect(again.map((g) => g.remotePath)).toEqual(got.map((g) => g.remotePath));
  });

  it('a fleet lock is held by one node at a time, per key, until its function settles', async () => {
    const a = await node('a');
    const b = await node('b');
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = a.fleetLocks.run('gdrive-folder:p/x', async () => {
      order.push('a in');
      await held;
      order.push('a out');
      return 'a';
    });
    await waitFor('a holding the lock', () => order.includes('a in'), 5_000, 10);
    const second = b.fleetLocks.run('gdrive-folder:p/x', async () => {
      order.push('b in');
      return 'b';
    });
    // Another key is not held up.
    await expect(b.fleetLocks.run('gdrive-folder:p/y', async () => 'y')).resolves.toBe('y');
    await sleep(300);
    expect(order).toEqual(['a in']);
    release();
    expect(await Promise.all([first, second])).toEqual(['a', 'b']);
    expect(order).toEqual(['a in', 'a out', 'b in']);
    // What the function throws comes back, and the lock is free again.
    await expect(a.fleetLocks.run('gdrive-folder:p/x', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(b.fleetLocks.run('gdrive-folder:p/x', async () => 'free')).resolves.toBe('free');
  });

  it('heartbeats keep a live node\'s leases past the lease time', async () => {
    const a = await node('a');
    const b = await node('b');
    await a.recordItems(['1', '2'].map((p) => newItem(p)), ['box']);
    expect(await a.lease('box', 10)).toHaveLength(2);
    await sleep(2500);
    expect(await b.lease('box', 10)).toEqual([]);
    const nodes = await b.nodes();
    expect(nodes.find((n) => n.name === 'a')).toMatchObject({ roots: ['inbox'], watches: ['inbox'], leases: 2, alive: true });
  });
});
