/**
 * afterArchive under kill -9 (issue 17): a root with `action: delete, minCopies: 3` archiving to
 * the four emulated clouds and the local folder; the daemon is SIGKILLed while it removes (once the
 * inbox is down to a seeded random share of what it held), up to KILLS times while files are left,
 * then runs to the end. Nothing is lost: every file is either still in the inbox, byte-identical,
 * or gone from it and held byte-identical (by each provider's own hash) by at least three targets;
 * at the end every file was removed and no removal is left open in the journal.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { hashBuffer } from '../../src/archive/hash.js';
import { CLOUDS, HASH_OF } from '../e2e/clouds.js';
import { bytes, listFiles, waitFor } from '../helpers/fs.js';
import { drop, rng, workspace } from './chaos-kit.js';

const FILES = Number(process.env.FILES ?? 60);
const KILLS = Number(process.env.KILLS ?? 3);
const SEED = Number(process.env.SEED ?? 1);

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('afterArchive under kill -9', () => {
  it(`${FILES} files, delete with minCopies 3, SIGKILL up to ${KILLS} times during removals: nothing lost`, async () => {
    const w = await workspace('retry: { retries: 20, minDelayMs: 20, maxDelayMs: 500 }\nsupervisor: { coolDownMs: 200, coolDownMaxMs: 1s }\n');
    cleanups.push(() => w.cleanup());
    // The root gets the policy (the demo config's only root).
    const { writeFile } = await import('node:fs/promises');
    // Info lines too: the last life waits for `stagecoach running` (see below).
    const yaml = w.yaml
      .replace('  - path: ./inbox\n', '  - path: ./inbox\n    afterArchive: { action: delete, minCopies: 3 }\n')
      .replace('log: { level: warn, format: json }', 'log: { level: info, format: json }');
    expect(yaml).toContain('afterArchive: { action: delete, minCopies: 3 }');
    expect(yaml).toContain('level: info');
    await writeFile(w.cfg, yaml);

    const next = rng(SEED);
    const data = new Map<string, Buffer>();
    for (let i = 0; i < FILES; i++) {
      const rel = `c${i % 5}/f${i}.bin`;
      const b = bytes(1 + Math.floor(next() * 100_000), SEED * 7919 + i);
      data.set(rel, b);
      await drop(w.inbox, rel, b);
    }
    const left = async (): Promise<number> => (await listFiles(w.inbox)).length;
    const removalsOpen = (): number => {
      const db = new Database(path.join(w.dir, 'state', 'stagecoach.db'), { readonly: true });
      try {
        return (db.prepare(`SELECT count(*) AS n FROM removals WHERE state = 'intent'`).get() as { n: number }).n;
      } finally {
        db.close();
      }
    };

    const kills: Array<{ before: number; killAt: number; left: number }> = [];
    for (let k = 0; k < KILLS; k++) {
      const before = await left();
      // Everything removed already (a fast machine finishes within a life): nothing left to cut.
      if (before === 0) break;
      const d = w.start();
      // The kill lands mid-removal: as soon as the inbox is down to a random share (a quarter to
      // three quarters) of what this life started with. A wall-clock delay after the first removal
      // let a fast machine remove every file first, and the next life then waited for a removal
      // that could not come.
      const killAt = Math.floor(before * (0.25 + next() * 0.5));
      await waitFor(`removals in life ${k + 1}`, async () => (await left()) <= killAt || d.child.exitCode !== null, 60_000, 5);
      expect(d.child.exitCode, d.output()).toBe(null);
      d.child.kill('SIGKILL');
      await d.exited;
      kills.push({ before, killAt, left: await left() });
      await expectNothingLost();
    }
    const last = w.start();
    await waitFor('every file removed', async () => (await left()) === 0 || last.child.exitCode !== null, 60_000 + FILES * 500, 100);
    expect(last.child.exitCode, last.output()).toBe(null);
    // With nothing left at its start the wait above ends at once; a SIGTERM before the daemon
    // listens for it would end it by the signal's default action, not by its orderly stop.
    await waitFor('the last daemon running', () => last.output().includes('stagecoach running') || last.child.exitCode !== null, 20_000, 20);
    last.child.kill('SIGTERM');
    expect((await last.exited).code).toBe(0);
    await expectNothingLost();
    expect(removalsOpen(), 'every journaled removal settled').toBe(0);
    expect(kills.some((k) => k.left > 0 && k.left < FILES), `kills that landed mid-removal: ${JSON.stringify(kills)}`).toBe(true);

    async function expectNothingLost(): Promise<void> {
      const trees = Object.fromEntries(
        await Promise.all(CLOUDS.map(async (c) => [c, new Map((await w.clouds[c].tree()).map((f) => [f.path.replace(/^\/+/, '').toLowerCase(), f.hash.toLowerCase()]))] as const)),
      );
      const problems: string[] = [];
      for (const [rel, b] of data) {
        const here = await readFile(path.join(w.inbox, rel)).catch(() => null);
        if (here) {
          if (!here.equals(b)) problems.push(`${rel}: changed in the inbox`);
          continue;
        }
        let copies = 0;
        const local = await readFile(path.join(w.archive, 'inbox', rel)).catch(() => null);
        if (local?.equals(b)) copies++;
        for (const c of CLOUDS) if (trees[c]!.get(`stagecoach/inbox/${rel}`.toLowerCase()) === hashBuffer(HASH_OF[c], b).toLowerCase()) copies++;
        if (copies < 3) problems.push(`${rel}: removed with ${copies} good copies`);
      }
      expect(problems).toEqual([]);
    }
  }, 180_000 + FILES * 1000);
});
