/**
 * Watching a tree (issue 8, item 4: the daemon's watcher ≤ 1.2× chokidar alone; issue 19, item 5:
 * a million files with ≤ 1 KiB per file above the idle daemon, live in ≤ 2× a bare walk).
 *
 *   npx tsc -p tsconfig.json; node dist/bench/watching.js [--files 10000,100000] [--runs N] [--dir DIR] [--chokidar-max N]
 *   node dist/bench/watching.js --files 1000000 --runs 1     # the million files of issue 19 (~10 min here)
 *
 * Per size, one tree of empty files, 100 per folder (bench/lib/tree.ts's layout: d<i>/e<j>, so
 * 1,000,000 files are 11,001 folders), made with one open and close per file and removed after;
 * per run, each way of discovering it runs alone in a fresh process (bench/lib/watch-child.ts),
 * in turn: a bare recursive stat walk, chokidar alone (up to `--chokidar-max` files, default
 * 100,000: it keeps ~7 KB per file, ~7 GB at a million), and the daemon's WatchSource over the
 * daemon's SQLite journal holding every file of the tree (recorded once per size, before the
 * runs), whose scans each read the root's index from it as the daemon's do. Figures: time to
 * every file watched live, RSS once ready (after GC) above the process's idle RSS (after imports
 * and the journal opened, before anything is read), bytes per file, and the ratios to the bare
 * walk and to chokidar alone in the same run.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { commandLine, emit, fmt, fmtRatio, summarize, table, type Figure } from './lib/report.js';
import { PER_FOLDER } from './lib/tree.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'watch-child.js');
const MODES = ['walk', 'chokidar', 'stagecoach'] as const;
type Mode = (typeof MODES)[number];
interface Sample { mode: Mode; files: number; ms: number; scannedMs: number | null; baseKiB: number; rssKiB: number; hwmKiB: number }

function child(args: string[]): string {
  const r = spawnSync(process.execPath, ['--expose-gc', CHILD, ...args], { encoding: 'utf8', timeout: 1_800_000, maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${args[0]}: exited ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

function measure(mode: Mode, root: string, journal: string): Sample {
  return JSON.parse(child([mode, root, journal]).trim().split('\n').pop()!) as Sample;
}

/** bench/lib/tree.ts's layout with empty files and no mtime set: a stat costs the same whatever the size. */
function makeEmptyTree(root: string, files: number): number {
  let folders = 1;
  for (let i = 0; i < files; i++) {
    const folder = Math.floor(i / PER_FOLDER);
    const dir = path.join(root, `d${Math.floor(folder / 10)}`, `e${folder % 10}`);
    if (i % PER_FOLDER === 0) {
      folders += folder % 10 === 0 ? 2 : 1;
      mkdirSync(dir, { recursive: true });
    }
    closeSync(openSync(path.join(dir, `f${i}.dat`), 'w'));
  }
  return folders;
}

const perFile = (x: Sample, n: number): number => ((x.rssKiB - x.baseKiB) * 1024) / n;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { files: { type: 'string', default: '10000' }, runs: { type: 'string', default: '3' }, dir: { type: 'string', default: os.tmpdir() }, 'chokidar-max': { type: 'string', default: '100000' } },
  });
  const sizes = values.files.split(',').map((s) => Math.floor(Number(s))).filter((n) => n > 0);
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  const chokidarMax = Math.floor(Number(values['chokidar-max']));
  const limit = Number(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8'));
  const figures: Figure[] = [];
  for (const n of sizes) {
    const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-watch-'));
    try {
      const root = path.join(work, 'tree');
      const journal = path.join(work, 'journal');
      const t = Date.now();
      const folders = makeEmptyTree(root, n);
      const madeS = (Date.now() - t) / 1000;
      child(['index', root, journal]);
      const modes = MODES.filter((m) => m !== 'chokidar' || n <= chokidarMax);
      const by = new Map<Mode, Sample[]>(modes.map((m) => [m, []]));
      for (let r = 0; r < runs; r++) {
        for (const m of modes) {
          const s = measure(m, root, journal);
          if (s.files !== n) throw new Error(`${m} saw ${s.files} of ${n} files`);
          by.get(m)!.push(s);
        }
      }
      const label: Record<Mode, string> = { walk: 'stat walk', chokidar: 'chokidar alone', stagecoach: 'stagecoach WatchSource' };
      const rows = modes.map((m) => {
        const xs = by.get(m)!;
        const grew = summarize(xs.map((x) => (x.rssKiB - x.baseKiB) / 1024));
        const per = summarize(xs.map((x) => perFile(x, n)));
        return [label[m], fmt(summarize(xs.map((x) => x.ms / 1000)), 's'), `${grew.median.toFixed(1)}`, per.median.toFixed(0), `${(summarize(xs.map((x) => x.hwmKiB)).median / 1024).toFixed(0)}`];
      });
      // The daemon watches folders only (one inotify watch each); chokidar alone watches every path.
      process.stdout.write(`${n} files in ${folders} folders (made in ${madeS.toFixed(0)} s), ${runs} run(s); inotify max_user_watches ${limit}: the daemon needs ${folders}${n + folders > limit && n <= chokidarMax ? `, chokidar alone ${n + folders} (runs out)` : ''}\n\n`);
      process.stdout.write(`${table(['discovery', 'time to live', 'RSS above idle MiB', 'bytes/file', 'peak RSS MiB'], rows)}\n`);
      const sc = by.get('stagecoach')!;
      const walkMs = summarize(by.get('walk')!.map((x) => x.ms));
      const liveRatio = summarize(sc.map((x, i) => x.ms / by.get('walk')![i]!.ms));
      const bytes = summarize(sc.map((x) => perFile(x, n)));
      const idle = summarize(sc.map((x) => x.baseKiB / 1024));
      process.stdout.write(`stagecoach: live ÷ stat walk ${fmtRatio(liveRatio)}; ${bytes.median.toFixed(0)} B/file above an idle RSS of ${idle.median.toFixed(0)} MiB\n`);
      // Issue 19's goals are for a large tree: below 100k files fixed costs dominate (the bare
      // walk alone grows the RSS by ~10 MiB), so smaller sizes only inform.
      const large = n >= 100_000;
      figures.push({ figure: `watching ${n} files: daemon's watcher, time to every file watched live ÷ bare stat walk`, value: `${fmtRatio(liveRatio)} (${(summarize(sc.map((x) => x.ms)).median / 1000).toFixed(2)} s vs walk ${(walkMs.median / 1000).toFixed(2)} s)`, goal: large ? '≤ 2' : '–', met: large ? liveRatio.median <= 2 : null });
      figures.push({
        figure: `watching ${n} files: daemon's watcher, RSS once live above its idle RSS, per file`,
        value: `${bytes.median.toFixed(0)} B/file (${(summarize(sc.map((x) => x.rssKiB - x.baseKiB)).median / 1024).toFixed(0)} MiB above ${idle.median.toFixed(0)} MiB idle)`,
        goal: large ? '≤ 1024 B' : '–',
        met: large ? bytes.median <= 1024 : null,
        note: 'includes what the journal index read by each scan leaves behind',
      });
      const scanned = summarize(sc.map((x) => x.scannedMs ?? x.ms));
      figures.push({ figure: `watching ${n} files: daemon's initial walk (files found, archiving can start) ÷ bare stat walk, time`, value: `${(scanned.median / walkMs.median).toFixed(2)}× (${(scanned.median / 1000).toFixed(2)} s)`, goal: '–', met: null });
      const chok = by.get('chokidar');
      if (chok) {
        const tm = summarize(sc.map((x, i) => x.ms / chok[i]!.ms));
        const mm = summarize(sc.map((x, i) => (x.rssKiB - x.baseKiB) / Math.max(1, chok[i]!.rssKiB - chok[i]!.baseKiB)));
        process.stdout.write(`stagecoach ÷ chokidar alone: time ${fmtRatio(tm)}, memory ${fmtRatio(mm)}\n`);
        figures.push({ figure: `watching ${n} files: daemon's watcher ÷ chokidar alone, time to ready`, value: fmtRatio(tm), goal: '≤ 1.2', met: tm.median <= 1.2 });
        figures.push({
          figure: `watching ${n} files: daemon's watcher ÷ chokidar alone, RSS once ready`,
          value: `${fmtRatio(mm)}; ${bytes.median.toFixed(0)} B/file vs ${summarize(chok.map((x) => perFile(x, n))).median.toFixed(0)}`,
          goal: '≤ 1.2',
          met: mm.median <= 1.2,
        });
      }
      process.stdout.write('\n');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    // After each size, everything so far: run-all keeps the last line, so a time box that ends
    // the larger size still leaves the smaller one's figures.
    emit({ script: 'watching', command: commandLine(), figures });
  }
  return figures.every((f) => f.met !== false) ? 0 : 1;
}

process.exitCode = await main();
