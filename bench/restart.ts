/**
 * Restart over an archived tree (issue 8, item 5; goal: start to idle ≤ 2× a bare recursive stat
 * walk, and no request to the clouds).
 *
 *   npx tsc -p tsconfig.json; node dist/bench/restart.js [--files N] [--runs N] [--dir DIR]
 *
 * A tree of N files of 1 KiB (bench/lib/tree.ts) is archived to the local target and the four
 * emulated clouds (child process) by `backfill --once`, which fills the journal. Then, per run:
 * a bare synchronous stat walk of the tree (the baseline), and the daemon started as in
 * production (`run`) until it is idle — its initial scan done (`watching` logged), and 1 s later
 * no delivery pending — then stopped. Figures: time from spawn to `watching` ÷ the walk, and the
 * requests the emulators logged during the restarts (must be 0; token requests counted apart).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { DAEMON_MAIN, Daemon, requireBuild } from './lib/daemon.js';
import { CLOUDS, startEmulatorChild, type EmulatorChild, type RequestCount } from './lib/emulators.js';
import { commandLine, emit, fmt, fmtRatio, sleep, summarize, table, type Figure } from './lib/report.js';
import { makeTree, statWalk } from './lib/tree.js';

/** The stat walk of bench/lib/tree.ts in a bare node process (no imports to load). */
const WALK_SCRIPT = `const fs=require('node:fs'),p=require('node:path');let n=0;const st=[process.argv[1]];
while(st.length){const d=st.pop();for(const e of fs.readdirSync(d,{withFileTypes:true})){const f=p.join(d,e.name);const s=fs.statSync(f);if(s.isDirectory())st.push(f);else if(s.isFile())n++;}}
process.stdout.write(String(n));`;

const sum = (c: Record<string, RequestCount>, k: keyof RequestCount): number => Object.values(c).reduce((a, x) => a + x[k], 0);

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { files: { type: 'string', default: '2000' }, runs: { type: 'string', default: '3' }, dir: { type: 'string', default: os.tmpdir() } } });
  const files = Math.max(1, Math.floor(Number(values.files)));
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  requireBuild();
  const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-restart-'));
  const tree = path.join(work, 'tree');
  const stateDir = path.join(work, 'state');
  const blobDir = path.join(work, 'blobs');
  mkdirSync(blobDir, { recursive: true });
  let emu: EmulatorChild | null = null;
  let daemon: Daemon | null = null;
  try {
    makeTree(tree, files, 1024);
    emu = await startEmulatorChild({ blobDir });
    const config = path.join(work, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        stateDir,
        stableMs: 500,
        log: { level: 'info', format: 'json' },
        roots: [{ path: tree, name: 'tree' }],
        targets: [{ type: 'local', path: path.join(work, 'archive') }, ...CLOUDS.map((c) => emu!.ready.targets[c])],
      }),
    );
    const t = Date.now();
    const fill = spawnSync(process.execPath, [DAEMON_MAIN, 'backfill', '--once', '--config', config], { encoding: 'utf8', timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
    if (fill.status !== 0) throw new Error(`backfill --once exited ${fill.status ?? fill.signal}: ${(fill.stderr || fill.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    const fillS = (Date.now() - t) / 1000;
    const db = new Database(path.join(stateDir, 'stagecoach.db'), { readonly: true, fileMustExist: true });
    const notDone = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM deliveries WHERE status <> 'done'`);
    const done = db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM deliveries WHERE status = 'done'`).get()!.n;
    if (done !== files * (1 + CLOUDS.length)) throw new Error(`the backfill left ${done} deliveries done of ${files * (1 + CLOUDS.length)}`);
    process.stdout.write(`journal filled: ${files} files × ${1 + CLOUDS.length} targets archived by backfill --once in ${fillS.toFixed(1)} s\n`);

    const before = await emu.requests();
    const walkMs: number[] = [];
    const startMs: number[] = [];
    const procWalkMs: number[] = [];
    const ratios: number[] = [];
    let pendingAfter = 0;
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
      daemon = new Daemon(config);
      await daemon.waitFor('watching', 600_000);
      const s = Date.now() - daemon.startedAt;
      await sleep(1000);
      pendingAfter = Math.max(pendingAfter, notDone.get()!.n);
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
    process.stdout.write(`\n${files} archived files, ${runs} restarts (median (min–max))\n\n`);
    process.stdout.write(
      `${table(
        ['', 'time'],
        [
          ['bare stat walk', fmt(summarize(walkMs), 'ms', 0)],
          ['node process: spawn → stat walk done', fmt(summarize(procWalkMs), 'ms', 0)],
          ['daemon: spawn → idle', fmt(summarize(startMs), 'ms', 0)],
          ['daemon ÷ walk', fmtRatio(rs, 1)],
        ],
      )}\n`,
    );
    process.stdout.write(`requests to the clouds during the restarts: ${total} (token: ${token}) ${JSON.stringify(delta)}; deliveries not done 1 s after idle: ${pendingAfter}\n\n`);
    const figures: Figure[] = [
      { figure: `restart, ${files} archived files: spawn → idle ÷ bare stat walk`, value: `${fmtRatio(rs, 1)} (${(summarize(startMs).median / 1000).toFixed(2)} s vs ${summarize(walkMs).median.toFixed(0)} ms)`, goal: '≤ 2', met: rs.median <= 2 },
      { figure: `restart, ${files} archived files: spawn → idle ÷ a node process spawned to walk`, value: fmtRatio(summarize(startMs.map((x, i) => x / procWalkMs[i]!)), 1), goal: '–', met: null },
      { figure: `restart, ${files} archived files: requests sent to the clouds`, value: `${total} over ${runs} restarts (token: ${token}); not done after: ${pendingAfter}`, goal: '0', met: total === 0 && pendingAfter === 0 },
    ];
    emit({ script: 'restart', command: commandLine(), figures });
    return figures.every((f) => f.met) ? 0 : 1;
  } finally {
    if (daemon) await daemon.stop();
    if (emu) await emu.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
