/**
 * Many small files to a local target (issue 8, item 2; goal: faster than rclone).
 *
 *   npx tsc -p tsconfig.json; node dist/bench/small-files.js [--files N] [--runs N] [--dir DIR]
 *
 * One source tree of N files of 4 KiB (100 per folder, folders nested two deep, mtimes an hour
 * old so every file is stable at once). Per run, each tool copies the whole tree into a fresh
 * folder on the same file system, in turn: `stagecoach backfill --once` (dist/src/cli/main.js,
 * local target, fresh journal), `rclone copy` (Debian's rclone; installed with
 * `apt-get install -y rclone` when missing, and the script says so) and `cp -r`. Each copy is
 * checked by counting the files it made. Figures: seconds and CPU seconds (user + system, of the
 * tool's process and its children, from the waited-for children's times in /proc/self/stat) per
 * tool, and stagecoach ÷ rclone and ÷ cp -r for both: on a loaded machine the wall time is mostly
 * other people's work, the CPU time much less so. Stagecoach's copy is durable (each file and
 * folder fsynced before it is recorded done); rclone's and cp's are not.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { commandLine, emit, fmt, fmtRatio, summarize, table, type Figure } from './lib/report.js';

const DAEMON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const PER_FOLDER = 100;

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

function run(cmd: string, args: string[], timeoutMs = 600_000): { seconds: number; cpu: number | null; ok: boolean; detail: string } {
  const t = process.hrtime.bigint();
  const c0 = childCpu();
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
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
  if (!existsSync(DAEMON)) throw new Error(`${DAEMON} is missing: run npx tsc -p tsconfig.json first`);
  const rclone = ensureRclone();
  const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-small-'));
  try {
    const src = path.join(work, 'src');
    makeTree(src, files);
    const times = new Map<string, number[]>([['stagecoach', []], ['rclone', []], ['cp -r', []]]);
    const cpus = new Map<string, number[]>([['stagecoach', []], ['rclone', []], ['cp -r', []]]);
    const ratioRclone: number[] = [];
    const ratioCp: number[] = [];
    const cpuRclone: number[] = [];
    const cpuCp: number[] = [];
    const errors: string[] = [];
    for (let r = 0; r < runs; r++) {
      const dest = (tool: string): string => path.join(work, `out-${r}-${tool}`);
      // stagecoach
      const d = dest('stagecoach');
      const cfg = path.join(work, `config-${r}.json`);
      writeFileSync(cfg, JSON.stringify({ stateDir: path.join(work, `state-${r}`), stableMs: 200, log: { level: 'warn', format: 'json' }, roots: [{ path: src, name: 'src' }], targets: [{ type: 'local', path: d }] }));
      const sc = run(process.execPath, [DAEMON, 'backfill', '--once', '--config', cfg]);
      const scCount = existsSync(d) ? countFiles(d) : 0;
      if (!sc.ok || scCount !== files) errors.push(`stagecoach run ${r + 1}: ${sc.detail || `copied ${scCount} of ${files} files`}`);
      else {
        times.get('stagecoach')!.push(sc.seconds);
        if (sc.cpu !== null) cpus.get('stagecoach')!.push(sc.cpu);
      }
      // rclone
      let rc: number | null = null;
      if (rclone) {
        const res = run(rclone, ['copy', src, dest('rclone')]);
        const n = existsSync(dest('rclone')) ? countFiles(dest('rclone')) : 0;
        if (!res.ok || n !== files) errors.push(`rclone run ${r + 1}: ${res.detail || `copied ${n} of ${files}`}`);
        else {
          times.get('rclone')!.push((rc = res.seconds));
          if (res.cpu !== null) cpus.get('rclone')!.push(res.cpu);
          if (sc.ok && scCount === files && sc.cpu !== null && res.cpu) cpuRclone.push(sc.cpu / res.cpu);
        }
      }
      const cp = run('cp', ['-r', src, dest('cp')]);
      if (!cp.ok) errors.push(`cp run ${r + 1}: ${cp.detail}`);
      else {
        times.get('cp -r')!.push(cp.seconds);
        if (cp.cpu !== null) cpus.get('cp -r')!.push(cp.cpu);
        if (sc.ok && scCount === files && sc.cpu !== null && cp.cpu) cpuCp.push(sc.cpu / cp.cpu);
      }
      if (sc.ok && scCount === files) {
        if (rc !== null) ratioRclone.push(sc.seconds / rc);
        if (cp.ok) ratioCp.push(sc.seconds / cp.seconds);
      }
      for (const t of ['stagecoach', 'rclone', 'cp']) rmSync(dest(t), { recursive: true, force: true });
      rmSync(path.join(work, `state-${r}`), { recursive: true, force: true });
    }
    process.stdout.write(`${files} files of 4 KiB, ${PER_FOLDER} per folder, ${runs} runs, under ${values.dir} (median (min–max))\n\n`);
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
    process.stdout.write(`\nstagecoach ÷ rclone: ${figures[0]!.value} (CPU ${figures[2]!.value}); stagecoach ÷ cp -r: ${figures[1]!.value} (CPU ${figures[3]!.value})\n\n`);
    emit({ script: 'small-files', command: commandLine(), figures });
    return errors.length === 0 && figures[0]!.met ? 0 : 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
