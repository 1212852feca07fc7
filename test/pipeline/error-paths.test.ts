/**
 * The two error paths of issue 12: a journal error is the journal's, never the target's (only the
 * provider call is classified by the provider), and a lease that fails is retried or crashes the
 * archiver, never dropped.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Pipeline } from '../../src/pipeline/topology.js';
import { tempDir, waitFor } from '../helpers/fs.js';
import { harness } from './helpers.js';
import { createScriptedTarget } from './scripted-target.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const t = await tempDir();
  const h = await harness(t.dir, '  - id: cloud\n    type: local\n    path: ./unused\n    maxDemand: 1\n');
  const cloud = createScriptedTarget('cloud');
  const classified: unknown[] = [];
  const classify = cloud.classify;
  cloud.classify = (e) => {
    classified.push(e);
    return classify(e);
  };
  let p: Pipeline | null = null;
  cleanups.push(async () => {
    cloud.release();
    await p?.stop().catch(() => undefined);
    await t.cleanup();
  });
  return {
    h,
    cloud,
    classified,
    async start() {
      p = await h.start({ targets: [cloud] });
      return p;
    },
  };
}

/** `promise`'s rejection, or a failure after `ms` saying what was awaited. */
async function rejectionOf(promise: Promise<unknown>, what: string, ms: number): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still not rejected after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise.then(() => new Error(`${what}: resolved`)), timeout]).catch((e: unknown) => e);
  } finally {
    clearTimeout(timer);
  }
}

describe('journal errors in a delivery', () => {
  it('a journal error after a good upload is not classified by the target: the pipeline fails with a state.* code and the reason', async () => {
    const s = await setup();
    const p = await s.start();
    const diskError = Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' });
    p.store.complete = () => Promise.reject(diskError);
    await writeFile(path.join(s.h.inbox, 'a.txt'), 'a');
    const e = await rejectionOf(p.failed, 'the pipeline failing', 10_000);
    expect(e).toMatchObject({ code: expect.stringMatching(/^state\./) as unknown, cause: diskError });
    expect((e as Error).message).toContain('disk I/O error');
    expect(s.classified, 'the target never classifies a journal error').not.toContainEqual(diskError);
  });
});

describe('journal writes off a delivery’s path', () => {
  it('a health write that fails is emitted as journal.error, and the pipeline goes on', async () => {
    const s = await setup();
    const errors: Array<{ operation: string; target: string }> = [];
    s.h.bus.on('journal.error', (e) => errors.push({ operation: e.operation, target: e.target }));
    s.cloud.script = () => ({ kind: 'fatal', reason: 'token revoked' });
    const p = await s.start();
    p.store.setHealth = () => Promise.reject(new Error('database is locked'));
    await writeFile(path.join(s.h.inbox, 'a.txt'), 'a');
    await waitFor('the health write failing', () => errors.length > 0, 10_000);
    expect(errors[0]).toEqual({ operation: 'record a target’s health', target: 'cloud' });
    await waitFor('local archived a.txt all the same', async () => (await p.store.counts()).find((c) => c.target === 'local')?.done === 1, 10_000);
  });
});

describe('leases', () => {
  it('a lease that fails once is retried: the file is archived without anything else poking the target', async () => {
    const s = await setup();
    const p = await s.start();
    const lease = p.store.lease.bind(p.store);
    let failures = 0;
    p.store.lease = (target, n) => {
      if (target === 'cloud' && failures === 0) {
        failures++;
        return Promise.reject(new Error('database is locked'));
      }
      return lease(target, n);
    };
    await writeFile(path.join(s.h.inbox, 'a.txt'), 'a');
    await waitFor('the failed lease', () => failures === 1, 10_000);
    await waitFor('cloud archived a.txt after its lease failed once', async () => (await p.store.counts()).find((c) => c.target === 'cloud')?.done === 1, 5_000);
  });

  it('a lease that keeps failing crashes the archiver: the pipeline fails with the reason, and stage.crash says so', async () => {
    const s = await setup();
    const crashes: string[] = [];
    s.h.bus.on('stage.crash', (e) => crashes.push(e.stage));
    const p = await s.start();
    const broken = new Error('database disk image is malformed');
    const lease = p.store.lease.bind(p.store);
    p.store.lease = (target, n) => (target === 'cloud' ? Promise.reject(broken) : lease(target, n));
    await writeFile(path.join(s.h.inbox, 'a.txt'), 'a');
    const e = await rejectionOf(p.failed, 'the pipeline failing', 15_000);
    expect(e).toMatchObject({ cause: broken });
    expect(crashes).toEqual(['archiver']);
  });
});
