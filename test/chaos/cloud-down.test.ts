/**
 * One cloud down (issue 6, item 3): Dropbox refuses every connection for the first half of a
 * run. The other targets archive every file while Dropbox has archived none; the daemon's memory
 * stays flat while Dropbox's backlog of pending deliveries grows to the number of files; when
 * Dropbox comes back it catches up and every file is on every target, verified by hash. A run
 * of the same files with nothing down gives the baseline time of the other targets.
 *
 * Short form (npm test): 500 files. Long form, with the 10,000-delivery backlog of the issue:
 * `npm run soak -- --down 10000` (sets DOWN_FILES and runs this file).
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { bytes, waitFor } from '../helpers/fs.js';
import { verifyClouds } from '../e2e/clouds.js';
import { drop, workspace, type Workspace } from './chaos-kit.js';

const FILES = Number(process.env.DOWN_FILES ?? 500);
const DOWN = 'dropbox';
const OTHERS = ['local', 'gdrive', 'box', 'onedrive'];

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Resident set size of a process, bytes (Linux /proc). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

const EXTRA = 'retry: { retries: 3, minDelayMs: 20, maxDelayMs: 200 }\nsupervisor: { coolDownMs: 200, coolDownMaxMs: 1s }\n';
const files = Array.from({ length: FILES }, (_, i) => `d${i % 20}/f${i}.txt`);

async function fill(w: Workspace): Promise<void> {
  for (const [i, rel] of files.entries()) await drop(w.inbox, rel, bytes(1 + (i % 4096), i));
}

const MiB = 1024 * 1024;

describe('one cloud down', () => {
  it(`${DOWN} down for the first half of a run of ${FILES} files: the others finish unhindered, memory stays flat, ${DOWN} catches up`, async () => {
    // Baseline: the same files with nothing down; the time until the other targets are done.
    const base = await workspace(EXTRA);
    cleanups.push(() => base.cleanup());
    await fill(base);
    const t0 = Date.now();
    const b = base.start();
    let baselinePeak = 0;
    await waitFor(
      'baseline: every delivery done',
      () => {
        if (b.child.exitCode !== null) return true;
        baselinePeak = Math.max(baselinePeak, rssOf(b.child.pid!));
        return base.done(OTHERS) === OTHERS.length * FILES;
      },
      30_000 + FILES * 100,
      100,
    );
    expect(b.child.exitCode, b.output()).toBe(null);
    const baselineMs = Date.now() - t0;
    b.child.kill('SIGTERM');
    expect((await b.exited).code, b.output()).toBe(0);

    // The run with Dropbox down: every connection to it is dropped.
    const w = await workspace(EXTRA);
    cleanups.push(() => w.cleanup());
    await fill(w);
    w.clouds[DOWN].server.setFaults({ down: true });
    const t1 = Date.now();
    const d = w.start();
    const pid = d.child.pid!;
    const samples: Array<{ backlog: number; rss: number }> = [];
    await waitFor(
      'the other targets done while dropbox is down',
      () => {
        if (d.child.exitCode !== null) return true;
        { const c = w.counts(DOWN); samples.push({ backlog: (c.pending ?? 0) + (c.in_flight ?? 0), rss: rssOf(pid) }); }
        return w.done(OTHERS) === OTHERS.length * FILES;
      },
      30_000 + FILES * 100,
      100,
    );
    expect(d.child.exitCode, d.output()).toBe(null);
    const othersMs = Date.now() - t1;
    // Dropbox is still down: none of its deliveries is done and all of them wait in the journal.
    const held = w.counts(DOWN);
    expect(held.done ?? 0).toBe(0);
    expect((held.pending ?? 0) + (held.in_flight ?? 0)).toBe(FILES);
    expect(w.clouds[DOWN].server.requests().filter((r) => r.fault !== 'down')).toEqual([]);

    const maxBacklog = Math.max(...samples.map((s) => s.backlog));
    expect(maxBacklog).toBe(FILES);
    const downPeak = Math.max(...samples.map((s) => s.rss));
    // Once every file is journaled the backlog is whole; from then on memory must not climb.
    const full = samples.findIndex((s) => s.backlog === FILES);
    const atFull = samples[full]!.rss;

    // Dropbox comes back: it catches up from its backlog.
    w.clouds[DOWN].server.clearFaults();
    const t2 = Date.now();
    await waitFor('dropbox catches up', () => w.done([DOWN]) === FILES || d.child.exitCode !== null, 30_000 + FILES * 100, 100);
    expect(d.child.exitCode, d.output()).toBe(null);
    const catchUpMs = Date.now() - t2;
    d.child.kill('SIGTERM');
    expect((await d.exited).code, d.output()).toBe(0);
    expect(await verifyClouds(w.clouds, w.inbox, files)).toEqual([]);

    console.log(
      `[cloud-down] files=${FILES} others done: baseline ${baselineMs} ms, with ${DOWN} down ${othersMs} ms ` +
        `(ratio ${(othersMs / baselineMs).toFixed(2)}); ${DOWN} backlog peak ${maxBacklog}; daemon peak RSS ` +
        `${(downPeak / MiB).toFixed(1)} MiB with the backlog against ${(baselinePeak / MiB).toFixed(1)} MiB with none; ` +
        `${(atFull / MiB).toFixed(1)} MiB when the backlog was whole; ${DOWN} caught up in ${catchUpMs} ms`,
    );
    // Flat: the run with a backlog of every file peaks no higher than the run without one, give
    // or take V8's and SQLite's caches (the backlog is on disk, not in memory).
    expect(downPeak).toBeLessThan(baselinePeak * 1.15 + 16 * MiB);
  }, 120_000 + FILES * 400);
});
