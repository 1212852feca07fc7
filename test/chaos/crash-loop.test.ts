/**
 * Crash loop (issue 6, item 1): files of mixed sizes (some above every provider's chunk
 * threshold) to the four emulated clouds and the local folder; the daemon is SIGKILLed at
 * seeded random moments, then runs to completion. At the end every file is on every target,
 * byte-identical by hash, once. Prints the bytes uploaded twice.
 *
 * Short form (npm test): FILES=150, KILLS=3. Long form: `npm run soak -- --files 2000 --kills 20`
 * (test/chaos/soak.mjs sets FILES, KILLS and SEED and runs this file).
 */
import path from 'node:path';
import { stat } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { bytes, sha256File, waitFor } from '../helpers/fs.js';
import { CLOUDS, verifyClouds } from '../e2e/clouds.js';
import { drop, rng, workspace } from './chaos-kit.js';

const FILES = Number(process.env.FILES ?? 150);
const KILLS = Number(process.env.KILLS ?? 3);
const SEED = Number(process.env.SEED ?? 1);
const LONG = process.env.FILES !== undefined || process.env.KILLS !== undefined;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The size of file i: mostly small, some above gdrive's 5 MB and OneDrive's 4 MiB, a few above Box's 20 MB. */
function sizeOf(i: number, next: () => number): number {
  if (i % 75 === 7) return 21_000_000;
  if (i % 25 === 3) return 6_000_000 + Math.floor(next() * 3_000_000);
  if (i % 10 === 5) return 0;
  return 1 + Math.floor(next() * 200_000);
}

describe('crash loop', () => {
  it(`${FILES} files of mixed sizes to the four clouds and the local folder, SIGKILL ${KILLS} times at random moments: every file everywhere once, byte-identical`, async () => {
    const w = await workspace('retry: { retries: 20, minDelayMs: 20, maxDelayMs: 500 }\nsupervisor: { coolDownMs: 200, coolDownMaxMs: 1s }\n');
    cleanups.push(() => w.cleanup());
    const next = rng(SEED);
    const files: string[] = [];
    let total = 0;
    for (let i = 0; i < FILES; i++) {
      const rel = `c${i % 7}/f${i}.bin`;
      const n = sizeOf(i, next);
      await drop(w.inbox, rel, bytes(n, SEED * 100_003 + i));
      files.push(rel);
      total += n;
    }
    const want = FILES * 5;
    const done = () => w.rows().filter((r) => r.status === 'done').length;

    const kills: Array<{ afterMs: number; done: number }> = [];
    for (let k = 0; k < KILLS; k++) {
      const before = done();
      const d = w.start();
      // Some progress first, so each life does work; then a random moment.
      await waitFor(`progress in life ${k + 1}`, () => done() > before || d.child.exitCode !== null, 60_000, 20);
      expect(d.child.exitCode, d.output()).toBe(null);
      const afterMs = 100 + Math.floor(next() * (LONG ? 4000 : 1500));
      await new Promise((r) => setTimeout(r, afterMs)); // the kill moment is the subject: a real wall-clock wait
      d.child.kill('SIGKILL');
      await d.exited;
      kills.push({ afterMs, done: done() });
    }
    const last = w.start();
    await waitFor('every delivery done', () => done() === want || last.child.exitCode !== null, 60_000 + FILES * 400, 100);
    expect(last.child.exitCode, last.output()).toBe(null);
    last.child.kill('SIGTERM');
    expect((await last.exited).code).toBe(0);
    expect(kills.filter((k) => k.done < want).length, `kills that landed before the end: ${JSON.stringify(kills)}`).toBeGreaterThan(0);

    expect(await verifyClouds(w.clouds, w.inbox, files)).toEqual([]);
    const localProblems: string[] = [];
    for (const rel of files) {
      const a = await sha256File(path.join(w.archive, 'inbox', rel)).catch(() => 'missing');
      if (a !== (await sha256File(path.join(w.inbox, rel)))) localProblems.push(rel);
    }
    expect(localProblems).toEqual([]);
    // Nothing half-written or temporary left in the archive.
    const { listFiles } = await import('../helpers/fs.js');
    expect((await listFiles(w.archive)).length).toBe(FILES);

    const received = Object.fromEntries(CLOUDS.map((c) => [c, w.clouds[c].server.requests().reduce((a, r) => a + r.bodyBytes, 0)]));
    const twice = Object.fromEntries(CLOUDS.map((c) => [c, received[c]! - total]));
    const sumTwice = Object.values(twice).reduce((a, b) => a + b, 0);
    const sizes = await Promise.all(files.map(async (f) => (await stat(path.join(w.inbox, f))).size));
    console.log(
      `[crash-loop] files=${FILES} kills=${KILLS} seed=${SEED} bytes=${total} (max file ${Math.max(...sizes)}) ` +
        `kill moments=${JSON.stringify(kills)} bytes uploaded twice (request bodies − file bytes): ${JSON.stringify(twice)} total ${sumTwice} ` +
        `(${((100 * sumTwice) / (4 * total)).toFixed(2)}% of ${4 * total})`,
    );
  }, 180_000 + FILES * 600 + KILLS * 10_000);
});
