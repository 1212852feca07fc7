/**
 * Many small files to a local target (issue 8, item 2; goal: faster than rclone).
 *
 *   npx tsc -p tsconfig.json; node dist/bench/small-files.js [--files N] [--runs N] [--dir DIR]
 *
 * One source tree of N files of 4 KiB (100 per folder, folders nested two deep, mtimes an hour
 * old so every file is stable at once). Per run, each tool copies the whole tree into a fresh
 * folder on the same file system, in turn: `stagecoach backfill --once` (the bundled CLI as
 * production runs it, dist/bundle/main.js, made from this build first; local target, fresh journal), the same with STAGECOACH_SYNCFS=off (an fsync per file and folder
 * rather than one syncfs per batch; where the native syncfs is built), `rclone copy` (Debian's rclone; installed with
 * `apt-get install -y rclone` when missing, and the script says so) and `cp -r`. Each copy is
 * checked by counting the files it made.
 *
 * Equal conditions: every destination folder of every run (and each run's journal folder) is made
 * before the first tool starts, no copy is deleted before the last run is over (all go in one go at
 * the end), and the order of the tools rotates per run (run 1: stagecoach, rclone, cp; run 2:
 * rclone, cp, stagecoach; …), so no tool always runs first on a cold cache or right after a tree
 * was deleted (ext4 searches its recently deleted inodes on each create, which costs the next
 * tool), and everything is written out (`sync`, untimed) before each tool starts, so that no
 * tool's flushes write another's copy. Each tool's figure is its median over the runs; the
 * ratios are per run, then medianed.
 * Disk: about N × 4 KiB × 4 tools × runs. Figures: seconds and CPU seconds (user + system, of the
 * tool's process and its children, from the waited-for children's times in /proc/self/stat) per
 * tool, and stagecoach ÷ rclone and ÷ cp -r for both: on a loaded machine the wall time is mostly
 * other people's work, the CPU time much less so. Stagecoach's copy is durable (each file and
 * folder entry flushed before it is recorded done: one syncfs a batch, or an fsync each with
 * STAGECOACH_SYNCFS=off); rclone's and cp's are not.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fsBarrierModule } from '../src/targets/kit/fs-barrier.js';
import { DAEMON_BUNDLE, buildBundle } from './lib/daemon.js';
import { commandLine, emit, fmt, fmtRatio, summarize, table, type Figure } from './lib/report.js';

const PER_FOLDER = 100;
/** The daemon again with STAGECOACH_SYNCFS=off: an fsync per file and folder, not one syncfs per batch (src/targets/kit/fs-barrier.ts). */
const PER_FILE = 'stagecoach, fsync per file';

/** CPU seconds (user + system) of this process's waited-for children so far; null off Linux. */
function childCpu(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name (which may hold spaces): cutime and cstime are 16th and 17th.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[13]) + Number(rest[14])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 600_000): { seconds: number; cpu: number | null; ok: boolean; detail: string } {
  const t = process.hrtime.bigint();
  const c0 = childCpu();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const c1 = childCpu();
  const cpu = c0 === null || c1 === null ? null : c1 - c0;
  const ok = r.status === 0;
  return { seconds, cpu, ok, detail: ok ? '' : `${cmd} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n').slice(-3).join(' | ')}` };
}

function countFiles(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}

/** rclone on PATH, installing Debian's package when it is missing; null when that fails. */
function ensureRclone(): string | null {
  if (spawnSync('rclone', ['version'], { encoding: 'utf8' }).status === 0) return 'rclone';
  process.stdout.write('rclone is missing: installing it with `apt-get install -y rclone`…\n');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
  const [cmd, ...rest] = [...sudo, 'apt-get', 'install', '-y', 'rclone'];
  const r = spawnSync(cmd!, rest, { encoding: 'utf8', stdio: 'inherit' });
  if (r.status !== 0) {
    process.stdout.write('could not install rclone (run `apt-get install -y rclone` as root); its column is left out\n');
    return null;
  }
  return spawnSync('rclone', ['version'], { encoding: 'utf8' }).status === 0 ? 'rclone' : null;
}

function makeTree(root: string, files: number): void {
  const old = new Date(Date.now() - 3_600_000);
  const body = Buffer.alloc(4096, 'x');
  for (let i = 0; i < files; i++) {
    const folder = Math.floor(i / PER_FOLDER);
    const dir = path.join(root, `d${Math.floor(folder / 10)}`, `e${folder % 10}`);
    if (i % PER_FOLDER === 0) mkdirSync(dir, { recursive: true });
    // Unique content per file, so no tool can dedupe.
    body.write(`${i}`.padStart(12, '0'), 0);
    const f = path.join(dir, `f${i}.dat`);
    writeFileSync(f, body);
    utimesSync(f, old, old);
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { files: { type: 'string', default: '10000' }, runs: { type: 'string', default: '3' }, dir: { type: 'string', default: os.tmpdir() } } });
  const files = Math.floor(Number(values.files));
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  if (!(files > 0)) throw new Error('--files must be a positive number');
  // The daemon is the CLI as production runs it (the package's bin, the Docker image, `npm start`):
  // the bundle, made here from this build (start-up is part of a backfill's time).
  buildBundle();
  const rclone = ensureRclone();
  const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-small-'));
  try {
    const src = path.join(work, 'src');
    makeTree(src, files);
    const times = new Map<string, number[]>([['stagecoach', []], [PER_FILE, []], ['rclone', []], ['cp -r', []]]);
    const cpus = new Map<string, number[]>([['stagecoach', []], [PER_FILE, []], ['rclone', []], ['cp -r', []]]);
    const ratioPerFile: number[] = [];
    const ratioRclone: number[] = [];
    const ratioCp: number[] = [];
    const cpuRclone: number[] = [];
    const cpuCp: number[] = [];
    const errors: string[] = [];
    // Every destination (and the daemon's state folder) of every run is made up front, before
    // anything is deleted, and nothing is deleted until the last run is over: ext4 searches its
    // recently deleted inodes on each create, so a tool that runs right after a tree is removed
    // pays for it. The order of the tools rotates per run, so each goes first, second and last.
    // The daemon's two ways to flush, where it has both (the native syncfs built, Linux >= 5.8).
    const tools = ['stagecoach', ...(fsBarrierModule() !== null ? [PER_FILE] : []), ...(rclone ? ['rclone'] : []), 'cp -r'];
    const dest = (r: number, tool: string): string => path.join(work, `out-${r}-${tool.replace(/\W+/g, '')}`);
    for (let r = 0; r < runs; r++) {
      for (const tool of tools) mkdirSync(path.join(dest(r, tool), 'copy'), { recursive: true });
      mkdirSync(path.join(work, `state-${r}`));
      mkdirSync(path.join(work, `state-${r}-per-file`));
    }
    for (let r = 0; r < runs; r++) {
      const res = new Map<string, { seconds: number; cpu: number | null }>();
      for (let k = 0; k < tools.length; k++) {
        const tool = tools[(r + k) % tools.length]!;
        const out = path.join(dest(r, tool), 'copy');
        // The tool before left its copy in the page cache, not yet written (rclone and cp do not
        // flush): written out here, untimed, so that no tool's flush pays for another's bytes (a
        // syncfs writes every dirty page of the file system, an fsync only its file's).
        spawnSync('sync');
        let x: ReturnType<typeof run>;
        if (tool === 'stagecoach' || tool === PER_FILE) {
          const tag = tool === PER_FILE ? '-per-file' : '';
          const cfg = path.join(work, `config-${r}${tag}.json`);
          writeFileSync(cfg, JSON.stringify({ stateDir: path.join(work, `state-${r}${tag}`), stableMs: 200, log: { level: 'warn', format: 'json' }, roots: [{ path: src, name: 'src' }], targets: [{ type: 'local', path: out }] }));
          x = run(process.execPath, [DAEMON_BUNDLE, 'backfill', '--once', '--config', cfg], tool === PER_FILE ? { ...process.env, STAGECOACH_SYNCFS: 'off' } : process.env);
        } else if (tool === 'rclone') x = run(rclone!, ['copy', src, out]);
        // The destination exists, so cp copies the tree into it as `src`.
        else x = run('cp', ['-r', src, out]);
        const n = countFiles(out);
        if (!x.ok || n !== files) errors.push(`${tool} run ${r + 1}: ${x.detail || `copied ${n} of ${files} files`}`);
        else {
          res.set(tool, x);
          times.get(tool)!.push(x.seconds);
          if (x.cpu !== null) cpus.get(tool)!.push(x.cpu);
        }
      }
      const sc = res.get('stagecoach');
      const pf = res.get(PER_FILE);
      if (sc && pf) ratioPerFile.push(sc.seconds / pf.seconds);
      const rc = res.get('rclone');
      const cp = res.get('cp -r');
      if (sc && rc) {
        ratioRclone.push(sc.seconds / rc.seconds);
        if (sc.cpu !== null && rc.cpu) cpuRclone.push(sc.cpu / rc.cpu);
      }
      if (sc && cp) {
        ratioCp.push(sc.seconds / cp.seconds);
        if (sc.cpu !== null && cp.cpu) cpuCp.push(sc.cpu / cp.cpu);
      }
    }
    process.stdout.write(`${files} files of 4 KiB, ${PER_FOLDER} per folder, ${runs} runs, tools in rotating order, trees deleted at the end, under ${values.dir} (median (min–max))\n\n`);
    const rows = [...times].map(([tool, xs]) => {
      const c = cpus.get(tool)!;
      return [tool, xs.length ? fmt(summarize(xs), 's') : 'not run', xs.length ? `${(files / summarize(xs).median).toFixed(0)}` : '–', c.length ? fmt(summarize(c), 's') : '–'];
    });
    process.stdout.write(`${table(['tool', 'seconds', 'files/s', 'CPU seconds'], rows)}\n`);
    for (const e of errors) process.stdout.write(`error: ${e}\n`);
    const figures: Figure[] = [];
    const vsR = summarize(ratioRclone);
    figures.push({
      figure: `small files: ${files} × 4 KiB, backfill --once (local) ÷ rclone copy, time`,
      value: ratioRclone.length ? fmtRatio(vsR) : rclone ? 'failed' : 'rclone missing',
      goal: '≤ 1',
      met: ratioRclone.length ? vsR.median <= 1 : false,
    });
    const vsCp = summarize(ratioCp);
    figures.push({ figure: `small files: ${files} × 4 KiB, backfill --once (local) ÷ cp -r, time`, value: ratioCp.length ? fmtRatio(vsCp) : 'failed', goal: '≤ 1.5', met: ratioCp.length ? vsCp.median <= 1.5 : false });
    const cpuR = summarize(cpuRclone);
    const cpuC = summarize(cpuCp);
    figures.push({ figure: `small files: ${files} × 4 KiB, backfill --once (local) ÷ rclone copy, CPU time`, value: cpuRclone.length ? fmtRatio(cpuR) : 'not measured', goal: '≤ 1', met: cpuRclone.length ? cpuR.median <= 1 : null });
    figures.push({ figure: `small files: ${files} × 4 KiB, backfill --once (local) ÷ cp -r, CPU time`, value: cpuCp.length ? fmtRatio(cpuC) : 'not measured', goal: '≤ 1.5', met: cpuCp.length ? cpuC.median <= 1.5 : null });
    const vsPerFile = summarize(ratioPerFile);
    figures.push({
      figure: `small files: ${files} × 4 KiB, backfill --once (local), one syncfs a batch ÷ an fsync per file and folder (STAGECOACH_SYNCFS=off), time`,
      value: ratioPerFile.length ? fmtRatio(vsPerFile) : 'not measured (no native syncfs here)',
      goal: '–',
      met: null,
    });
    process.stdout.write(`\nstagecoach ÷ rclone: ${figures[0]!.value} (CPU ${figures[2]!.value}); stagecoach ÷ cp -r: ${figures[1]!.value} (CPU ${figures[3]!.value})\n\n`);
    emit({ script: 'small-files', command: commandLine(), figures });
    return errors.length === 0 && figures[0]!.met ? 0 : 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
