/**
 * Watching a tree (issue 8, item 4; goal: the daemon's watcher ≤ 1.2× chokidar alone).
 *
 *   npx tsc -p tsconfig.json; node dist/bench/watching.js [--files 10000,100000] [--runs N] [--dir DIR]
 *
 * Per size, one tree (bench/lib/tree.ts: 100 files per folder); per run, each way of discovering
 * it runs alone in a fresh process (bench/lib/watch-child.ts), in turn: a bare recursive stat
 * walk, chokidar alone, and the daemon's WatchSource with a full journal index. Figures: time to
 * ready, RSS once ready (after GC) above the process's RSS before discovery, bytes per watched
 * file, and the daemon's watcher against chokidar alone (time and memory) in the same run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { commandLine, emit, fmt, fmtRatio, summarize, table, type Figure } from './lib/report.js';
import { makeTree } from './lib/tree.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'watch-child.js');
const MODES = ['walk', 'chokidar', 'stagecoach'] as const;
type Mode = (typeof MODES)[number];
interface Sample { mode: Mode; files: number; ms: number; scannedMs: number | null; baseKiB: number; rssKiB: number; hwmKiB: number }

function measure(mode: Mode, root: string): Sample {
  const r = spawnSync(process.execPath, ['--expose-gc', CHILD, mode, root], { encoding: 'utf8', timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${mode}: exited ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Sample;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { files: { type: 'string', default: '10000' }, runs: { type: 'string', default: '3' }, dir: { type: 'string', default: os.tmpdir() } } });
  const sizes = values.files.split(',').map((s) => Math.floor(Number(s))).filter((n) => n > 0);
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  const limit = Number(readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8'));
  const figures: Figure[] = [];
  for (const n of sizes) {
    const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-watch-'));
    try {
      makeTree(path.join(work, 'tree'), n);
      const root = path.join(work, 'tree');
      const by = new Map<Mode, Sample[]>(MODES.map((m) => [m, []]));
      const tRatio: number[] = [];
      const mRatio: number[] = [];
      for (let r = 0; r < runs; r++) {
        const s = Object.fromEntries(MODES.map((m) => [m, measure(m, root)])) as Record<Mode, Sample>;
        for (const m of MODES) {
          if (s[m].files !== n) throw new Error(`${m} saw ${s[m].files} of ${n} files`);
          by.get(m)!.push(s[m]);
        }
        tRatio.push(s.stagecoach.ms / s.chokidar.ms);
        mRatio.push((s.stagecoach.rssKiB - s.stagecoach.baseKiB) / Math.max(1, s.chokidar.rssKiB - s.chokidar.baseKiB));
      }
      const rows = MODES.map((m) => {
        const xs = by.get(m)!;
        const grew = summarize(xs.map((x) => (x.rssKiB - x.baseKiB) / 1024));
        const per = summarize(xs.map((x) => ((x.rssKiB - x.baseKiB) * 1024) / n));
        return [m === 'stagecoach' ? 'stagecoach WatchSource' : m === 'walk' ? 'stat walk' : 'chokidar alone', fmt(summarize(xs.map((x) => x.ms / 1000)), 's'), `${grew.median.toFixed(1)}`, per.median.toFixed(0), `${(summarize(xs.map((x) => x.hwmKiB)).median / 1024).toFixed(0)}`];
      });
      process.stdout.write(`${n} files, ${runs} runs (inotify max_user_watches ${limit}${n * 1.02 > limit ? ': the watchers run out of watches at this size' : ''})\n\n`);
      process.stdout.write(`${table(['discovery', 'time to ready', 'RSS above base MiB', 'bytes/file', 'peak RSS MiB'], rows)}\n`);
      const walk = summarize(by.get('walk')!.map((x) => x.ms));
      const sc = summarize(by.get('stagecoach')!.map((x) => x.ms));
      process.stdout.write(`stagecoach ÷ chokidar: time ${fmtRatio(summarize(tRatio))}, memory ${fmtRatio(summarize(mRatio))}; stagecoach ÷ stat walk, time: ${(sc.median / walk.median).toFixed(1)}×\n\n`);
      const tm = summarize(tRatio);
      const mm = summarize(mRatio);
      figures.push({ figure: `watching ${n} files: daemon's watcher ÷ chokidar alone, time to ready`, value: fmtRatio(tm), goal: '≤ 1.2', met: tm.median <= 1.2 });
      figures.push({
        figure: `watching ${n} files: daemon's watcher ÷ chokidar alone, RSS once ready`,
        value: `${fmtRatio(mm)}; ${summarize(by.get('stagecoach')!.map((x) => ((x.rssKiB - x.baseKiB) * 1024) / n)).median.toFixed(0)} B/file vs ${summarize(by.get('chokidar')!.map((x) => ((x.rssKiB - x.baseKiB) * 1024) / n)).median.toFixed(0)}`,
        goal: '≤ 1.2',
        met: mm.median <= 1.2,
        note: 'the daemon\'s figure includes the journal index it holds during the initial scan',
      });
      figures.push({ figure: `watching ${n} files: daemon's watcher ÷ bare stat walk, time`, value: `${(sc.median / walk.median).toFixed(1)}× (walk ${(walk.median / 1000).toFixed(2)} s)`, goal: '–', met: null });
      // What the daemon waits for before it archives: its initial walk against the journal.
      const scanned = summarize(by.get('stagecoach')!.map((x) => x.scannedMs ?? x.ms));
      const chok = summarize(by.get('chokidar')!.map((x) => x.ms));
      figures.push({
        figure: `watching ${n} files: daemon's initial walk (files found, archiving can start) ÷ chokidar alone, time`,
        value: `${(scanned.median / chok.median).toFixed(2)}× (${(scanned.median / 1000).toFixed(2)} s vs ${(chok.median / 1000).toFixed(2)} s)`,
        goal: '–',
        met: null,
      });
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
