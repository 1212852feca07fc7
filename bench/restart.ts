/**
 * Restart over an archived tree (issue 8, item 5; goal: start to idle ≤ 2× a bare recursive stat
 * walk, and no request to the clouds).
 *
 *   npx tsc -p tsconfig.json
 *   node dist/bench/restart.js [--files N] [--runs N] [--seed journal|backfill] [--check N] [--profile DIR] [--dir DIR]
 *
 * A tree of N empty files (bench/lib/tree.ts) is made, with the local target and the four
 * emulated clouds (child process) configured. Empty, because a restart reads no content, only
 * stats, and here ext4 takes ~0.7 ms per 1 KiB file to delete once written back (over a minute
 * at 100k) against ~0.03 ms per empty one. The journal is then filled as `backfill --once`
 * leaves it — every file done on every target:
 * - `--seed journal` (default): written directly through the product's Store API
 *   (bench/lib/seed-journal.ts), ~100k files in well under a minute;
 * - `--seed backfill`: by a real `stagecoach backfill --once` (~150–250 files/s here: small N).
 * Unless `--check 0`, a check first proves the two give the same journal: over a tree of `--check`
 * files of 1 KiB (default 200), one journal filled by `backfill --once` and one by the seeder must
 * hold the same (root, path, stat, target, status, remote path, generation, attempts, error) rows;
 * the script stops if not.
 *
 * Then, per run: a bare synchronous stat walk of the tree (the baseline; also in a fresh node
 * process), and the daemon started as in production (`node dist/bundle/main.js run`: the CLI
 * bundled by scripts/bundle.mjs from this build, as `npm run build` does) until it is idle — its initial walk
 * against the journal done (`scanned` logged) — and then until every file is watched live
 * (`watching`, set up in the background after idle), and 1 s later no delivery pending — then
 * stopped. Figures: time from spawn to `scanned` ÷ the walk (with spawn → `stagecoach running`,
 * i.e. modules loaded, journal open and targets made, and spawn → `watching` printed apart), and
 * the daemon's CPU from spawn to idle (/proc: every thread, and the main thread alone; read as
 * soon as `scanned` is seen), which says whether the restart waits for a core or for the disk,
 * the requests the emulators logged during the restarts
 * (must be 0; token requests counted apart). After every restart the journal must be unchanged
 * (same deliveries, generations and update times, none pending): a restart that journals anything
 * fails the script loudly. `--profile DIR` runs the daemon under `--cpu-prof` into DIR.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { buildBundle, DAEMON_BUNDLE, DAEMON_MAIN, Daemon, type LogEntry } from './lib/daemon.js';
import { CLOUDS, startEmulatorChild, type EmulatorChild, type RequestCount } from './lib/emulators.js';
import { cpuSeconds, readCpu } from './lib/proc-cpu.js';
import { commandLine, emit, fmt, fmtRatio, sleep, summarize, table, type Figure, type ScriptResult } from './lib/report.js';
import { seedJournal } from './lib/seed-journal.js';
import { makeTree, statWalk } from './lib/tree.js';

/** The stat walk of bench/lib/tree.ts in a bare node process (no imports to load). */
const WALK_SCRIPT = `const fs=require('node:fs'),p=require('node:path');let n=0;const st=[process.argv[1]];
while(st.length){const d=st.pop();for(const e of fs.readdirSync(d,{withFileTypes:true})){const f=p.join(d,e.name);const s=fs.statSync(f);if(s.isDirectory())st.push(f);else if(s.isFile())n++;}}
process.stdout.write(String(n));`;

/** Size of every file of the trees (see above: a restart reads none of it). */
const FILE_SIZE = 0;

/** Every configured target: the local folder and the four emulated clouds. */
const TARGETS = 1 + CLOUDS.length;

const sum = (c: Record<string, RequestCount>, k: keyof RequestCount): number => Object.values(c).reduce((a, x) => a + x[k], 0);
/** A log line's time as epoch ms (pino writes a number; an ISO string is read too). */
const logTime = (e: LogEntry): number => (typeof e.time === 'number' ? e.time : Date.parse(String(e.time)));
const secs = (t0: number): string => ((Date.now() - t0) / 1000).toFixed(1);

/** Writes a daemon config: one root named `tree`, the local target and the four emulators. */
function writeConfig(file: string, emu: EmulatorChild, o: { tree: string; stateDir: string; archive: string }): void {
  writeFileSync(
    file,
    JSON.stringify({
      stateDir: o.stateDir,
      stableMs: 500,
      log: { level: 'info', format: 'json' },
      roots: [{ path: o.tree, name: 'tree' }],
      targets: [{ type: 'local', path: o.archive }, ...CLOUDS.map((c) => emu.ready.targets[c])],
    }),
  );
}

/** `stagecoach backfill --once`, as a user runs it; throws unless it exits 0. */
function backfill(config: string): void {
  const r = spawnSync(process.execPath, [DAEMON_MAIN, 'backfill', '--once', '--config', config], { encoding: 'utf8', timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`backfill --once exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
}

/** The journal as a restart must find it and leave it. */
interface Fingerprint {
  files: number;
  deliveries: number;
  done: number;
  notDone: number;
  generations: number;
  lastUpdate: number;
}

function fingerprint(db: Database.Database): Fingerprint {
  const d = db
    .prepare<[], { deliveries: number; done: number; generations: number; lastUpdate: number }>(
      `SELECT COUNT(*) AS deliveries, COALESCE(SUM(status = 'done'), 0) AS done, COALESCE(SUM(generation), 0) AS generations,
              COALESCE(MAX(updated_at), 0) AS lastUpdate FROM deliveries`,
    )
    .get()!;
  const f = db.prepare<[], { files: number; lastUpdate: number }>('SELECT COUNT(*) AS files, COALESCE(MAX(updated_at), 0) AS lastUpdate FROM files').get()!;
  return { files: f.files, deliveries: d.deliveries, done: d.done, notDone: d.deliveries - d.done, generations: d.generations, lastUpdate: Math.max(d.lastUpdate, f.lastUpdate) };
}

/** Every delivery as "root|path|size|mtime|ino|target|status|remote path|generation", sorted. */
function journalRows(stateDir: string): string[] {
  const db = new Database(path.join(stateDir, 'stagecoach.db'), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare<[], { row: string }>(
        `SELECT r.name || '|' || r.path || '|' || f.rel_path || '|' || f.size || '|' || f.mtime_ms || '|' || f.ino || '|' ||
                d.target || '|' || d.status || '|' || d.remote_path || '|' || d.generation || '|' || d.attempts || '|' || COALESCE(d.last_error, '') AS row
         FROM deliveries d JOIN files f ON f.id = d.file_id JOIN roots r ON r.name = f.root`,
      )
      .all()
      .map((r) => r.row)
      .sort();
  } finally {
    db.close();
  }
}

/**
 * Proves the seeder right at a small size: the same tree archived by `backfill --once` into one
 * journal and seeded into another must give identical delivery rows. Throws otherwise.
 */
async function checkSeeding(work: string, emu: EmulatorChild, files: number): Promise<string> {
  const tree = path.join(work, 'check-tree');
  makeTree(tree, files, 1024);
  const cfgA = path.join(work, 'check-backfill.json');
  const cfgB = path.join(work, 'check-seed.json');
  writeConfig(cfgA, emu, { tree, stateDir: path.join(work, 'check-state-backfill'), archive: path.join(work, 'check-archive') });
  writeConfig(cfgB, emu, { tree, stateDir: path.join(work, 'check-state-seed'), archive: path.join(work, 'check-archive-unused') });
  backfill(cfgA);
  await seedJournal(cfgB);
  const a = journalRows(path.join(work, 'check-state-backfill'));
  const b = journalRows(path.join(work, 'check-state-seed'));
  const bSet = new Set(b);
  const aSet = new Set(a);
  const onlyA = a.filter((r) => !bSet.has(r));
  const onlyB = b.filter((r) => !aSet.has(r));
  if (a.length !== files * TARGETS || onlyA.length > 0 || onlyB.length > 0 || a.length !== b.length) {
    throw new Error(
      `SEEDING CHECK FAILED at ${files} files: backfill journaled ${a.length} deliveries, the seeder ${b.length} (expected ${files * TARGETS}); ` +
        `only after backfill: ${onlyA.slice(0, 3).join(' ; ') || '–'}; only after seeding: ${onlyB.slice(0, 3).join(' ; ') || '–'}`,
    );
  }
  rmSync(tree, { recursive: true, force: true });
  return `seeding check passed: ${files} files × ${TARGETS} targets, the journal seeded and the one \`backfill --once\` left hold the same ${a.length} (root, path, size, mtime, inode, target, status, remote path, generation, attempts, error) rows`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '2000' },
      runs: { type: 'string', default: '3' },
      seed: { type: 'string', default: 'journal' },
      check: { type: 'string', default: '200' },
      profile: { type: 'string' },
      dir: { type: 'string', default: os.tmpdir() },
    },
  });
  const files = Math.max(1, Math.floor(Number(values.files)));
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  const checkFiles = Math.max(0, Math.floor(Number(values.check)));
  if (values.seed !== 'journal' && values.seed !== 'backfill') throw new Error(`--seed must be journal or backfill, got ${values.seed}`);
  const profileDir = values.profile ? path.resolve(values.profile) : null;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  // The daemon restarted is the CLI as production runs it: the bundle, made here from this build.
  buildBundle();
  const tStart = Date.now();
  const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-restart-'));
  const tree = path.join(work, 'tree');
  const stateDir = path.join(work, 'state');
  const blobDir = path.join(work, 'blobs');
  mkdirSync(blobDir, { recursive: true });
  let emu: EmulatorChild | null = null;
  let daemon: Daemon | null = null;
  let result: ScriptResult;
  try {
    let t = Date.now();
    makeTree(tree, files, FILE_SIZE);
    process.stdout.write(`tree: ${files} files of ${FILE_SIZE} bytes made in ${secs(t)} s\n`);
    emu = await startEmulatorChild({ blobDir });
    if (checkFiles > 0) {
      t = Date.now();
      const msg = await checkSeeding(work, emu, checkFiles);
      process.stdout.write(`${msg} (${secs(t)} s)\n`);
    }
    const config = path.join(work, 'config.json');
    writeConfig(config, emu, { tree, stateDir, archive: path.join(work, 'archive') });
    t = Date.now();
    if (values.seed === 'backfill') backfill(config);
    else await seedJournal(config);
    const db = new Database(path.join(stateDir, 'stagecoach.db'), { readonly: true, fileMustExist: true });
    const seeded = fingerprint(db);
    if (seeded.files !== files || seeded.done !== files * TARGETS || seeded.notDone !== 0) {
      throw new Error(`the journal holds ${seeded.files} files and ${seeded.done} deliveries done (${seeded.notDone} not done), expected ${files} and ${files * TARGETS}`);
    }
    process.stdout.write(`journal filled: ${files} files × ${TARGETS} targets done, by ${values.seed === 'backfill' ? '`backfill --once`' : 'the Store API (bench/lib/seed-journal.ts)'} in ${secs(t)} s\n`);

    const before = await emu.requests();
    const walkMs: number[] = [];
    const startMs: number[] = [];
    const runningMs: number[] = [];
    const liveMs: number[] = [];
    const procWalkMs: number[] = [];
    const ratios: number[] = [];
    const cpuMs: number[] = [];
    const mainCpuMs: number[] = [];
    const journalFaults: string[] = [];
    for (let r = 0; r < runs; r++) {
      const w0 = process.hrtime.bigint();
      const n = statWalk(tree);
      const w = Number(process.hrtime.bigint() - w0) / 1e6;
      if (n !== files) throw new Error(`the walk saw ${n} of ${files} files`);
      // The same walk in a fresh node process: what any daemon pays to start and look.
      const p0 = Date.now();
      const pw = spawnSync(process.execPath, ['-e', WALK_SCRIPT, tree], { encoding: 'utf8' });
      if (pw.status !== 0 || Number(pw.stdout) !== files) throw new Error(`walk process: ${pw.stdout} files; ${pw.stderr}`);
      procWalkMs.push(Date.now() - p0);
      daemon = new Daemon(config, ['run'], profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [], DAEMON_BUNDLE);
      const running = daemon.waitFor('stagecoach running', 600_000);
      const watching = daemon.waitFor('watching', 600_000);
      // Idle: the root reconciled with the journal by the initial walk (`scanned`), nothing to
      // send. Live watching is then set up in the background (`watching`), timed apart.
      await daemon.waitFor('scanned', 600_000);
      const s = Date.now() - daemon.startedAt;
      // Read at once, as the daemon sits idle: its CPU to get there, all threads and the main one.
      const pid = daemon.child.pid!;
      const cpu = cpuSeconds(pid);
      const mainCpu = readCpu(pid, pid);
      if (cpu !== null && mainCpu !== null) {
        cpuMs.push(cpu * 1000);
        mainCpuMs.push(mainCpu * 1000);
      }
      runningMs.push(logTime(await running) - daemon.startedAt);
      liveMs.push(logTime(await watching) - daemon.startedAt);
      await sleep(1000);
      const now = fingerprint(db);
      for (const k of Object.keys(seeded) as Array<keyof Fingerprint>) {
        if (now[k] !== seeded[k]) journalFaults.push(`restart ${r + 1}: ${k} ${seeded[k]} → ${now[k]}`);
      }
      await daemon.stop();
      daemon = null;
      walkMs.push(w);
      startMs.push(s);
      ratios.push(s / w);
    }
    db.close();
    const after = await emu.requests();
    const delta = Object.fromEntries(CLOUDS.map((c) => [c, { total: after[c].total - before[c].total, token: after[c].token - before[c].token }]));
    const total = sum(delta, 'total');
    const token = sum(delta, 'token');
    const rs = summarize(ratios);
    /** The daemon's CPU from spawn to idle (median ms, every thread and the main one), and the cores it kept busy; null off Linux. */
    const cpuToIdle =
      cpuMs.length > 0
        ? { all: summarize(cpuMs).median, main: summarize(mainCpuMs).median, cores: summarize(cpuMs).median / summarize(startMs).median }
        : null;
    process.stdout.write(`\n${files} archived files, ${runs} restarts (median (min–max))\n\n`);
    process.stdout.write(
      `${table(
        ['', 'time'],
        [
          ['bare stat walk', fmt(summarize(walkMs), 'ms', 0)],
          ['node process: spawn → stat walk done', fmt(summarize(procWalkMs), 'ms', 0)],
          ['daemon: spawn → `stagecoach running` (modules, journal, targets)', fmt(summarize(runningMs), 'ms', 0)],
          ['daemon: spawn → idle (`scanned`: the initial walk against the journal done)', fmt(summarize(startMs), 'ms', 0)],
          ['daemon: spawn → every file watched live (`watching`, after one more walk)', fmt(summarize(liveMs), 'ms', 0)],
          ['daemon ÷ walk', fmtRatio(rs, 1)],
          ...(cpuToIdle
            ? [
                ['daemon: CPU from spawn to idle, every thread (cores busy on average)', `${fmt(summarize(cpuMs), 'ms', 0)} (${cpuToIdle.cores.toFixed(2)} of ${os.availableParallelism()})`],
                ['daemon: CPU from spawn to idle, main thread', fmt(summarize(mainCpuMs), 'ms', 0)],
              ]
            : []),
        ],
      )}\n`,
    );
    const journalOk = journalFaults.length === 0;
    process.stdout.write(`requests to the clouds during the restarts: ${total} (token: ${token}) ${JSON.stringify(delta)}\n`);
    if (journalOk) process.stdout.write(`journal unchanged by the restarts: ${seeded.deliveries} deliveries, all done, same generations and update times\n`);
    else process.stderr.write(`\nRESTART JOURNALED NEW WORK (the seeding or the daemon is wrong): ${journalFaults.join('; ')}\n\n`);
    process.stdout.write(`restarts measured after ${secs(tStart)} s\n`);
    const figures: Figure[] = [
      { figure: `restart, ${files} archived files: spawn → idle ÷ bare stat walk`, value: `${fmtRatio(rs, 1)} (${(summarize(startMs).median / 1000).toFixed(2)} s vs ${summarize(walkMs).median.toFixed(0)} ms)`, goal: '≤ 2', met: rs.median <= 2 },
      { figure: `restart, ${files} archived files: spawn → idle ÷ a node process spawned to walk`, value: fmtRatio(summarize(startMs.map((x, i) => x / procWalkMs[i]!)), 1), goal: '–', met: null },
      { figure: `restart, ${files} archived files: spawn → every file watched live (background, after idle)`, value: `${(summarize(liveMs).median / 1000).toFixed(2)} s`, goal: '–', met: null },
      ...(cpuToIdle
        ? [
            {
              figure: `restart, ${files} archived files: daemon's CPU from spawn to idle (every thread; main thread) ÷ the bare walk's time`,
              value: `${(cpuToIdle.all / summarize(walkMs).median).toFixed(1)}× (${cpuToIdle.all.toFixed(0)} ms, ${cpuToIdle.cores.toFixed(2)} of ${os.availableParallelism()} cores busy; main thread ${cpuToIdle.main.toFixed(0)} ms)`,
              goal: '–',
              met: null,
            },
          ]
        : []),
      {
        figure: `restart, ${files} archived files: requests sent to the clouds`,
        value: `${total} over ${runs} restarts (token: ${token}); journal ${journalOk ? 'unchanged' : `CHANGED: ${journalFaults.join('; ')}`}`,
        goal: '0',
        met: total === 0 && journalOk,
      },
    ];
    result = { script: 'restart', command: commandLine(), figures };
  } finally {
    const t = Date.now();
    if (daemon) await daemon.stop();
    if (emu) await emu.stop();
    const tRm = Date.now();
    rmSync(work, { recursive: true, force: true });
    process.stdout.write(`cleanup: ${((tRm - t) / 1000).toFixed(1)} s to stop the processes, ${secs(tRm)} s to remove the files; whole script ${secs(tStart)} s\n\n`);
  }
  // The result line comes last (bench/lib/report.ts), after the cleanup it waited for.
  emit(result);
  return result.figures.every((f) => f.met !== false) ? 0 : 1;
}

process.exitCode = await main();
