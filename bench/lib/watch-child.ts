/**
 * One way of discovering a tree, alone in a fresh process, for bench/watching.ts:
 *
 *   node --expose-gc dist/bench/lib/watch-child.js <walk|chokidar|stagecoach> <root> [journal-dir]
 *
 * - walk: a bare synchronous recursive stat walk (bench/lib/tree.ts);
 * - chokidar: chokidar 5 alone, with the daemon's options (alwaysStat, no symlinks), until `ready`;
 * - stagecoach: the daemon's WatchSource (src/pipeline/watch-source.ts) in watch mode, its first
 *   walk on a worker thread as the daemon's (src/pipeline/prewalk.ts), until every
 *   file is watched live (`live`; its initial walk, `scannedMs`, ends before or with it), with the
 *   daemon's SQLite journal (src/state/sqlite-store.ts) in `journal-dir` holding every file of the
 *   tree (so it has nothing to emit: the steady state of a watched, archived tree). Each scan
 *   reads the root's index as the daemon's does, through the journal's `fileIndex` (from 20,000
 *   files on a worker thread, while the walk runs), and drops it when it is done.
 * - index: records every file of the tree in a new journal in `journal-dir`, through the
 *   journal's `recordItems` with the watcher's own walk and stat (not a measurement).
 * Prints one JSON line: {mode, files, ms, scannedMs, baseKiB, rssKiB, hwmKiB, heapKiB} — `baseKiB` is the
 * idle RSS after imports, the journal opened, and GC, before anything is read (the journal's index included);
 * `rssKiB` the RSS once ready, after GC and a 300 ms settle.
 */
import chokidar from 'chokidar';
import pino from 'pino';
import { createPathFilter, nameRulesOf } from '../../src/archive/filters.js';
import { Prewalk } from '../../src/pipeline/prewalk.js';
import { walkTree } from '../../src/pipeline/walk.js';
import { fileStatOf, WatchSource } from '../../src/pipeline/watch-source.js';
import { type NewItem, openSqliteStore } from '../../src/state/index.js';
import { readMemory } from './proc-memory.js';
import { statWalk } from './tree.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const filterOptions = { include: [], exclude: [], minSize: 0, maxSize: null, ignoreHidden: true, ignoreTemp: true };
const filter = createPathFilter(filterOptions);

/** Records every file under `root` in a new journal in `dir`, one pending delivery each, 5,000 a transaction. */
async function recordTree(root: string, dir: string): Promise<void> {
  const store = await openSqliteStore({ dir });
  try {
    let batch: NewItem[] = [];
    const flush = async () => {
      await store.recordItems(batch, ['local']);
      batch = [];
    };
    const found: NewItem[] = [];
    await walkTree(root, filter, (relPath, stats) => {
      found.push({ item: { root: 'root', rootPath: root, relPath, ...fileStatOf(stats) }, remotePath: relPath });
    });
    for (const it of found) {
      batch.push(it);
      if (batch.length >= 5000) await flush();
    }
    await flush();
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const [mode, root, journalDir] = process.argv.slice(2);
  if (!mode || !root) throw new Error('usage: watch-child.js <walk|chokidar|stagecoach|index> <root> [journal-dir]');
  if (mode === 'index') {
    await recordTree(root, journalDir!);
    process.exit(0);
  }
  // The idle daemon: its journal open, nothing read yet. What the scans read from it is counted above it.
  const store = mode === 'stagecoach' ? await openSqliteStore({ dir: journalDir! }) : null;
  gc();
  await sleep(200);
  const base = readMemory(process.pid)!;
  let files = 0;
  let scannedMs: number | null = null;
  let close: () => Promise<void> = async () => undefined;
  const t = process.hrtime.bigint();
  if (mode === 'walk') {
    files = statWalk(root);
  } else if (mode === 'chokidar') {
    const w = chokidar.watch(root, { ignoreInitial: false, alwaysStat: true, followSymlinks: false, ignorePermissionErrors: true });
    w.on('add', () => void files++);
    await new Promise<void>((r) => w.once('ready', () => r()));
    close = () => w.close();
  } else if (mode === 'stagecoach' && store) {
    let emitted = 0;
    let indexed = 0;
    // The daemon's first walk runs on a worker thread (src/pipeline/prewalk.ts): as the daemon does.
    const prewalk = new Prewalk([{ name: 'root', path: root, rules: nameRulesOf(filterOptions) }]);
    const src = new WatchSource({
      roots: [{ name: 'root', path: root, filter, polling: false, pollIntervalMs: 1000 }],
      stableMs: 1000,
      rescanMs: 0,
      index: async (name) => {
        const m = await store.fileIndex(name);
        indexed = m.size;
        return m;
      },
      log: pino({ level: 'silent' }),
      onReady: () => void emitted++,
      onUnready: () => undefined,
      prewalk,
    });
    await src.watch();
    scannedMs = Number(process.hrtime.bigint() - t) / 1e6;
    // Ready means watched live, as chokidar's `ready`: the walk is done well before.
    await src.live;
    files = indexed;
    if (emitted > 0) throw new Error(`the watcher emitted ${emitted} files that the index holds`);
    close = async () => {
      await src.close();
      await store.close();
    };
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  gc();
  await sleep(300);
  gc();
  const after = readMemory(process.pid)!;
  // The JS heap in use: what RSS holds above it is memory freed but kept by the allocators.
  const heapKiB = Math.round(process.memoryUsage().heapUsed / 1024);
  process.stdout.write(`${JSON.stringify({ mode, files, ms, scannedMs, baseKiB: base.rssKiB, rssKiB: after.rssKiB, hwmKiB: after.hwmKiB, heapKiB })}\n`);
  await close();
  process.exit(0);
}

void main().catch((err: unknown) => {
  process.stderr.write(`watch-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
