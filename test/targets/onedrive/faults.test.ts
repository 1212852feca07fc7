/**
 * The OneDrive target under a storm of faults (20 % of Graph and upload requests: 429 with
 * Retry-After, 500, 503, connection resets), driven the way the pipeline drives it: each failed
 * attempt is classified, and a `retry` is tried again with the saved resume handle. Every file
 * lands, verified; no fault is ever mistaken for a fatal or a fail-item.
 */
import { afterEach, expect, it } from 'vitest';
import { quickXorHash } from '../../../src/archive/quickxor.js';
import { DEFAULT_FRAGMENT_SIZE as FRAG } from '../../../src/targets/onedrive/api-types.js';
import type { Classified, PutRequest, PutResult } from '../../../src/targets/target.js';
import { onedriveHarness, type OnedriveHarness } from '../../conformance/onedrive-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { tempDir } from '../../helpers/fs.js';
import { ResumeStore, fileRequest, seededFile } from './helpers.js';

let h: OnedriveHarness | undefined;
let done: (() => Promise<void>) | undefined;
afterEach(async () => {
  await h?.cleanup();
  await done?.();
  h = undefined;
});

it('20 % faults: 24 small and 2 large files all land verified; every failure is a retry, throttles carry their Retry-After', async () => {
  h = await onedriveHarness({ emulator: { seed: 7 } });
  const { dir, cleanup } = await tempDir('stagecoach-od-faults-');
  done = cleanup;
  const small = Array.from({ length: 24 }, (_, i) => ({ path: `storm/s${i}.bin`, bytes: seededBytes(200 + i, 1000 + i * 997) }));
  const large = await Promise.all([0, 1].map((i) => seededFile(dir, `l${i}.bin`, 300 + i, 3 * FRAG + 17 * i)));
  h.emu.server.setFaults({
    rate: 0.2,
    mix: [
      { kind: 'status', status: 429, retryAfterS: 2, weight: 1 },
      { kind: 'status', status: 500, weight: 1 },
      { kind: 'status', status: 503, retryAfterS: 1, weight: 1 },
      { kind: 'reset', weight: 1 },
    ],
  });
  const failures: Classified[] = [];
  const target = h.target;
  async function deliver(make: (store: ResumeStore) => PutRequest): Promise<PutResult> {
    const store = new ResumeStore();
    for (let attempt = 1; attempt <= 40; attempt++) {
      try {
        return await target.put(make(store));
      } catch (err) {
        const c = target.classify(err);
        failures.push(c);
        if (c.kind !== 'retry') throw err;
      }
    }
    throw new Error('not delivered in 40 attempts');
  }
  const results = await Promise.all([
    ...small.map((f) => deliver((store) => ({ ...request(f.path, f.bytes), resume: store.handle, saveResume: store.save }))),
    ...large.map((f, i) => deliver((store) => fileRequest(`storm/l${i}.bin`, f.file, f.bytes.length, { store }))),
  ]);
  h.emu.server.clearFaults();
  small.forEach((f, i) => expect(results[i]!.hash).toBe(quickXorHash(f.bytes)));
  large.forEach((f, i) => expect(results[small.length + i]!.hash).toBe(quickXorHash(f.bytes)));
  for (const f of small) expect((await h.emu.readFile(`Stagecoach/${f.path}`))!.equals(f.bytes)).toBe(true);
  for (const [i, f] of large.entries()) expect((await h.emu.readFile(`Stagecoach/storm/l${i}.bin`))!.equals(f.bytes)).toBe(true);
  expect(failures.length).toBeGreaterThan(5);
  expect(failures.every((c) => c.kind === 'retry')).toBe(true);
  const throttled = failures.filter((c) => c.reason.startsWith('rate-limited: '));
  expect(throttled.length).toBeGreaterThan(0);
  expect(throttled.every((c) => c.retryAfterMs === 2000)).toBe(true);
  // Exactly the files put: no duplicates, no renamed copies.
  expect((await h.emu.tree()).filter((f) => f.path.startsWith('/Stagecoach/storm/')).length).toBe(26);
});
