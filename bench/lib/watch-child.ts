/**
 * One way of discovering a tree, alone in a fresh process, for bench/watching.ts:
 *
 *   node --expose-gc dist/bench/lib/watch-child.js <walk|chokidar|stagecoach> <root> [index.tsv]
 *
 * - walk: a bare synchronous recursive stat walk (bench/lib/tree.ts);
 * - chokidar: chokidar 5 alone, with the daemon's options (alwaysStat, no symlinks), until `ready`;
 * - stagecoach: the daemon's WatchSource (src/pipeline/watch-source.ts) in watch mode until every
 *   file is watched live (`live`; its initial walk, `scannedMs`, ends well before), given the
 *   index a journal would give after every file was archived (so it has nothing to emit: the
 *   steady state of a watched, archived tree). As the journal does (`fileIndex`), each scan gets
 *   a fresh Map, read from `index.tsv` (written by `index` mode: relPath, size, mtimeMs, ino,
 *   ctimeMs per line), which the scan drops when it is done.
 * - index: writes `index.tsv` for the tree (not a measurement).
 * Prints one JSON line: {mode, files, ms, scannedMs, baseKiB, rssKiB, hwmKiB, heapKiB} — `baseKiB` is the
 * idle RSS after imports and GC, before anything is read (the journal's index included);
 * `rssKiB` the RSS once ready, after GC and a 300 ms settle.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import chokidar from 'chokidar';
import pino from 'pino';
import { createPathFilter } from '../../src/archive/filters.js';
import type { FileStat } from '../../src/archive/item.js';
import { fileStatOf, WatchSource } from '../../src/pipeline/watch-source.js';
import { readMemory } from './proc-memory.js';
import { statWalk } from './tree.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function indexLines(root: string): string {
  const out: string[] = [];
  const stack = [''];
  while (stack.length) {
    const rel = stack.pop()!;
    for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) stack.push(r);
      else if (e.isFile()) {
        const st = fileStatOf(statSync(path.join(root, r)));
        out.push(`${r}\t${st.size}\t${st.mtimeMs}\t${st.ino}\t${st.ctimeMs}`);
      }
    }
  }
  return `${out.join('\n')}\n`;
}

/** A fresh index from `file`, as the journal's `fileIndex` builds one per scan. */
function readIndex(file: string): Map<string, FileStat> {
  const m = new Map<string, FileStat>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    const [rel, size, mtimeMs, ino, ctimeMs] = line.split('\t');
    m.set(rel!, { size: Number(size), mtimeMs: Number(mtimeMs), ino: Number(ino), ctimeMs: Number(ctimeMs) });
  }
  return m;
}

async function main(): Promise<void> {
  const [mode, root, indexFile] = process.argv.slice(2);
  if (!mode || !root) throw new Error('usage: watch-child.js <walk|chokidar|stagecoach|index> <root> [index.tsv]');
  if (mode === 'index') {
    writeFileSync(indexFile!, indexLines(root));
    process.exit(0);
  }
  // The idle daemon: nothing read yet. What the scans read from the journal is counted above it.
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
  } else if (mode === 'stagecoach') {
    const filter = createPathFilter({ include: [], exclude: [], minSize: 0, maxSize: null, ignoreHidden: true, ignoreTemp: true });
    let emitted = 0;
    let indexed = 0;
    const src = new WatchSource({
      roots: [{ name: 'root', path: root, filter, polling: false, pollIntervalMs: 1000 }],
      stableMs: 1000,
      rescanMs: 0,
      index: async () => {
        const m = readIndex(indexFile!);
        indexed = m.size;
        return m;
      },
      log: pino({ level: 'silent' }),
      onReady: () => void emitted++,
      onUnready: () => undefined,
    });
    await src.watch();
    scannedMs = Number(process.hrtime.bigint() - t) / 1e6;
    // Ready means watched live, as chokidar's `ready`: the walk is done well before.
    await src.live;
    files = indexed;
    if (emitted > 0) throw new Error(`the watcher emitted ${emitted} files that the index holds`);
    close = () => src.close();
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
