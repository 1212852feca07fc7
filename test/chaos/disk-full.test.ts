/**
 * Disk full under the state folder (issue 6, item 6): the state folder is a small tmpfs. The
 * daemon archives some files, then a filler takes the last byte of it and more files arrive: the
 * daemon stops with exit 1 and one clear line (the state folder, the journal, "no space left");
 * started again on the full disk it says the same and stops. The journal passes integrity_check
 * at every step and keeps every delivery it had recorded done; once the filler is gone the
 * daemon starts on the same state and every file dropped (before, while and after the disk was
 * full) is in the local archive, byte-identical by hash.
 *
 * When the disk fills while every file is already recorded, only the uploads write to the
 * journal: the target parks (the daemon runs on) and resumes by itself once space returns.
 *
 * Needs root (or CAP_SYS_ADMIN) for `mount -t tmpfs`: without it the test fails and says so.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Daemon } from '../helpers/daemon.js';
import { bytes, listFiles, sha256File, waitFor } from '../helpers/fs.js';
import { drop, workspace, type Workspace } from './chaos-kit.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * Room for the journal as it grows in this test: its WAL reaches ~4 MiB (1,000 pages) before
 * SQLite checkpoints it, so a smaller disk would be full with no filler at all.
 */
const TMPFS_SIZE = '8m';
const EXIT_WITHIN_MS = 15_000;

/** Mounts a tmpfs of TMPFS_SIZE at `dir`; throws, saying why, when this process may not mount. */
function mountTmpfs(dir: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(
      `this test needs to mount a ${TMPFS_SIZE} tmpfs at the state folder (${dir}) to fill it, which takes root or CAP_SYS_ADMIN ` +
        `(uid ${process.getuid?.()}); mount said: ${stderr || (e as Error).message}`,
    );
  }
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  }
}

/** Writes `file` until the disk refuses with ENOSPC; returns the bytes it took. */
async function fillUp(file: string): Promise<number> {
  const fh = await open(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let n = 0;
  try {
    // Bounded by the tmpfs size: it ends with ENOSPC after at most TMPFS_SIZE bytes.
    for (let i = 0; i < 1024; i++) {
      const { bytesWritten } = await fh.write(chunk);
      n += bytesWritten;
    }
    throw new Error(`wrote ${n} bytes without filling the ${TMPFS_SIZE} tmpfs: is the state folder really on it?`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    await fh.close();
  }
  // Smaller pieces too, so not even a page is left.
  const tail = await open(file, 'a');
  try {
    for (let i = 0; i < 64; i++) n += (await tail.write(Buffer.alloc(1024, 0x5a))).bytesWritten;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    await tail.close();
  }
  return n;
}

/** The journal, opened read-only as another process would: integrity_check and the done deliveries. */
function journal(file: string): { integrity: string; done: string[] } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 2000');
    const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
    const done = (
      db.prepare(`SELECT f.rel_path AS rel FROM deliveries d JOIN files f ON f.id = d.file_id WHERE d.status = 'done' AND d.target = 'local'`).all() as Array<{ rel: string }>
    ).map((r) => r.rel);
    return { integrity, done: done.sort() };
  } finally {
    db.close();
  }
}

/** The output's log lines at error level or above (pino: 50 error, 60 fatal), as their messages. */
function errorLines(output: string): string[] {
  const out: string[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) {
      if (line.trim() !== '') out.push(line);
      continue;
    }
    const rec = JSON.parse(line) as { level: number; msg?: string };
    if (rec.level >= 50) out.push(rec.msg ?? line);
  }
  return out;
}

/** waitFor, and on a timeout the daemon's output and the journal's counts in the error. */
async function until(what: string, check: () => boolean, timeoutMs: number, d: Daemon, w: Workspace): Promise<void> {
  try {
    await waitFor(what, check, timeoutMs, 20);
  } catch (e) {
    throw new Error(`${(e as Error).message}; local deliveries ${JSON.stringify(w.counts('local'))}; daemon output:\n${d.output().slice(-4000)}`);
  }
}

/** Waits (bounded) for the daemon to exit by itself; its code and output. */
async function exitOf(d: Daemon, what: string): Promise<{ code: number | null; output: string }> {
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), EXIT_WITHIN_MS).unref());
  const r = await Promise.race([d.exited, timeout]);
  if (r === 'timeout') throw new Error(`${what}: the daemon did not stop within ${EXIT_WITHIN_MS} ms on a full state disk; output:\n${d.output()}`);
  return { code: r.code, output: d.output() };
}

/** A workspace (local target only) whose state folder is a fresh TMPFS_SIZE tmpfs. */
interface Setup {
  w: Workspace;
  state: string;
  db: string;
  filler: string;
  /** Every file dropped so far, relative to the inbox. */
  files: string[];
  start(): Daemon;
  dropMany(prefix: string, n: number, seed: number): Promise<void>;
  /** Every file dropped is in the local archive with the source's bytes, and nothing else is. */
  verifyArchive(): Promise<void>;
}

async function setup(extra: string, edit: (yaml: string) => string = (y) => y): Promise<Setup> {
  // No HTTP server: port 8080 may be another test's.
  const w = await workspace(`http: { listen: null }\n${extra}`, { without: ['gdrive', 'dropbox', 'box', 'onedrive'] });
  await writeFile(w.cfg, edit(await readFile(w.cfg, 'utf8')));
  const state = path.join(w.dir, 'state');
  const daemons: Daemon[] = [];
  let mounted = false;
  cleanups.push(async () => {
    // The daemons go first: a tmpfs with the journal open cannot be unmounted.
    for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
    await Promise.all(daemons.map((d) => d.exited));
    try {
      if (mounted) unmount(state);
    } finally {
      await w.cleanup();
    }
  });
  await mkdir(state, { recursive: true });
  mountTmpfs(state);
  mounted = true;
  const files: string[] = [];
  return {
    w,
    state,
    db: path.join(state, 'stagecoach.db'),
    filler: path.join(state, 'filler'),
    files,
    start() {
      const d = w.start();
      daemons.push(d);
      return d;
    },
    async dropMany(prefix, n, seed) {
      for (let i = 0; i < n; i++) {
        const rel = `${prefix}/f${i}.bin`;
        await drop(w.inbox, rel, bytes(1 + ((i * 7919) % 50_000), seed + i));
        files.push(rel);
      }
    },
    async verifyArchive() {
      const problems: string[] = [];
      for (const rel of files) {
        const got = await sha256File(path.join(w.archive, 'inbox', rel)).catch(() => 'missing');
        if (got !== (await sha256File(path.join(w.inbox, rel)))) problems.push(`${rel}: ${got}`);
      }
      expect(problems).toEqual([]);
      expect(await listFiles(w.archive)).toEqual(files.map((f) => `inbox/${f}`).sort());
    },
  };
}

describe('disk full under the state folder', () => {
  it('stops with exit 1 and one clear line, refuses to start while full, keeps the journal intact, and archives every file once space returns', async () => {
    const { w, state, db, filler, files, start, dropMany, verifyArchive } = await setup('');
    // The clear line: the state folder, the journal, "no space left"; and nothing generic.
    const clear = (output: string, what: string) => {
      const lines = errorLines(output);
      const full = lines.filter((l) => /no space left/i.test(l));
      expect(full, `${what}: one line saying the disk is full; error lines:\n${lines.join('\n')}`).toHaveLength(1);
      expect(full[0]).toContain(`state folder ${state}`);
      expect(full[0]).toContain(`journal ${db}`);
      expect(full[0]).toMatch(/free some space/i);
      expect(lines.at(-1), `${what}: the clear line is the last word`).toBe(full[0]);
      expect(lines.filter((l) => l === 'stagecoach failed'), `${what}: no generic failure line`).toEqual([]);
    };

    // 1. Some files archived while there is room.
    await dropMany('before', 10, 1_000);
    const first = start();
    await until('the first 10 files archived', () => w.done(['local']) === 10 || first.child.exitCode !== null, 15_000, first, w);
    expect(first.child.exitCode, first.output()).toBe(null);
    const doneBefore = journal(db).done;
    expect(doneBefore).toHaveLength(10);

    // 2. The disk fills up, then more files arrive: the journal must grow and cannot.
    const filled = await fillUp(filler);
    await dropMany('while-full', 10, 2_000);
    const crash = await exitOf(first, 'running when the disk filled');
    expect(crash.code, crash.output).toBe(1);
    clear(crash.output, 'running when the disk filled');
    let j = journal(db);
    expect(j.integrity, 'integrity_check after the crash').toBe('ok');
    expect(j.done).toEqual(expect.arrayContaining(doneBefore));

    // 3. Started again on the still-full disk: the same clear line, exit 1, journal untouched.
    const refused = await exitOf(start(), 'starting on a full disk');
    expect(refused.code, refused.output).toBe(1);
    clear(refused.output, 'starting on a full disk');
    j = journal(db);
    expect(j.integrity, 'integrity_check after the refused start').toBe('ok');
    expect(j.done).toEqual(expect.arrayContaining(doneBefore));

    // 4. Space returns; more files meanwhile. The same state, every file archived, byte-identical.
    await dropMany('after', 5, 3_000);
    await rm(filler);
    const last = start();
    await until('every file archived', () => w.done(['local']) === files.length || last.child.exitCode !== null, 20_000, last, w);
    expect(last.child.exitCode, last.output()).toBe(null);
    last.child.kill('SIGTERM');
    expect((await last.exited).code, last.output()).toBe(0);
    j = journal(db);
    expect(j.integrity, 'integrity_check at the end').toBe('ok');
    expect(j.done).toEqual([...files].sort());
    await verifyArchive();
    console.log(`[disk-full] filler took ${filled} bytes of the ${TMPFS_SIZE} tmpfs; the crash said: ${errorLines(crash.output).at(-1)}`);
  }, 40_000);

  it('full while only the uploads write (every file already recorded): the target parks, the daemon runs on, and resumes by itself when space returns', async () => {
    // Uploads paced at 5 a second, so the disk fills while most deliveries are still pending.
    const { w, db, filler, files, start, dropMany, verifyArchive } = await setup(
      'supervisor: { coolDownMs: 200, coolDownMaxMs: 500ms }\n',
      (yaml) => {
        const paced = yaml.replace('path: ./archive\n', 'path: ./archive\n    requestsPerSecond: 5\n');
        if (paced === yaml) throw new Error('no local target at ./archive in the config');
        return paced;
      },
    );
    await dropMany('paced', 20, 4_000);
    const d = start();
    const recorded = () => Object.values(w.counts('local')).reduce((a, n) => a + n, 0);
    await until('every file recorded', () => recorded() === files.length || d.child.exitCode !== null, 10_000, d, w);
    const doneBefore = journal(db).done;
    expect(doneBefore.length, 'uploads must still be pending when the disk fills').toBeLessThan(files.length - 5);
    await fillUp(filler);
    await until('the uploads hit the full disk', () => /"msg":"target parked/.test(d.output()) || d.child.exitCode !== null, 10_000, d, w);
    expect(d.child.exitCode, d.output()).toBe(null);
    const j = journal(db);
    expect(j.integrity, 'integrity_check while full').toBe('ok');
    expect(j.done).toEqual(expect.arrayContaining(doneBefore));

    await rm(filler);
    await until('every file archived after space returned', () => w.done(['local']) === files.length || d.child.exitCode !== null, 20_000, d, w);
    expect(d.child.exitCode, d.output()).toBe(null);
    d.child.kill('SIGTERM');
    expect((await d.exited).code, d.output()).toBe(0);
    expect(journal(db).integrity, 'integrity_check at the end').toBe('ok');
    await verifyArchive();
  }, 40_000);
});
