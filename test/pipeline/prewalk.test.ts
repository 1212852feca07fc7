/**
 * Issue 19 item 3: a restart's first walk of each root on a worker thread (src/pipeline/prewalk.ts),
 * handed to the watcher (src/pipeline/watch-source.ts): it must find what the main thread's walk
 * finds, through the same filter, and what changes between the worker's read of a folder and the
 * watcher's watch of it must still be found.
 */
import { mkdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createPathFilter, type FilterOptions, nameRulesOf } from '../../src/archive/filters.js';
import type { FileItem, FileStat } from '../../src/archive/item.js';
import { Prewalk, type PrewalkRun, type PrewalkSource, startWalker, type WalkBatch } from '../../src/pipeline/prewalk.js';
import { fileStatOf, WatchSource } from '../../src/pipeline/watch-source.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir, waitFor } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const filterOptions: FilterOptions = { include: [], exclude: ['skip/**', '**/*.log'], minSize: 0, maxSize: null, ignoreHidden: true, ignoreTemp: true };
const old = new Date(Date.now() - 3_600_000);

function put(root: string, rel: string, body = rel): void {
  const abs = path.join(root, rel);
  mkdirSync(path.dirname(abs), { recursive: true });
  writeFileSync(abs, body);
  utimesSync(abs, old, old);
}

/**
 * The walk after the watches takes what was stamped (ctime) since the first walk began, less
 * the second of slack the watcher allows the kernel's clock: a tree made just before would be
 * taken whole. Waited out where a test counts what that walk takes.
 */
const agedTree = async (): Promise<string> => {
  const root = await tree();
  await new Promise((r) => setTimeout(r, 1100));
  return root;
};

/** A tree with what the filter keeps and skips, a symbolic link and a folder named in Latin-1. */
async function tree(): Promise<string> {
  const t = await tempDir();
  cleanups.push(t.cleanup);
  const root = path.join(t.dir, 'root');
  for (const rel of ['a.txt', 'd1/b.txt', 'd1/sub/c.txt', 'd1/sub/deeper/e.txt', 'd2/f.txt', '.hidden/x.txt', 'd1/.h.txt', 'd1/g.tmp', 'skip/inner/y.txt', 'd1/z.log']) put(root, rel);
  symlinkSync(path.join(root, 'a.txt'), path.join(root, 'd2/link.txt'));
  // `café` in Latin-1: not valid UTF-8, so its folder is read as bytes (on the main thread).
  const latin1 = Buffer.concat([Buffer.from(`${root}/d2/caf`), Buffer.from([0xe9])]);
  mkdirSync(latin1);
  const inLatin1 = Buffer.concat([latin1, Buffer.from('/r.txt')]);
  writeFileSync(inLatin1, 'r');
  utimesSync(inLatin1, old, old);
  return root;
}

function source(root: string, opts: { prewalk?: PrewalkSource; index?: Map<string, FileStat> } = {}) {
  const ready: FileItem[] = [];
  const lines: string[] = [];
  const dest = new PassThrough();
  dest.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const src = new WatchSource({
    roots: [{ name: 'r', path: root, filter: createPathFilter(filterOptions), polling: false, pollIntervalMs: 100 }],
    stableMs: 50,
    rescanMs: 0,
    index: async () => opts.index ?? new Map(),
    log: createLogger({ level: 'info', format: 'json', destination: dest }),
    onReady: (item) => ready.push(item),
    onUnready: () => undefined,
    ...(opts.prewalk ? { prewalk: opts.prewalk } : {}),
  });
  cleanups.push(() => src.close());
  return { src, ready, lines };
}

const found = (items: FileItem[]) =>
  items.map((i) => ({ relPath: i.relPath, size: i.size, mtimeMs: i.mtimeMs, ino: i.ino, ctimeMs: i.ctimeMs, raw: i.rawRelPath?.toString('hex') })).sort((a, b) => a.relPath.localeCompare(b.relPath));

/** A Prewalk of the one root `r`, with what the watcher took from it. */
function prewalkOfRoot(root: string): { source: PrewalkSource; taken: Array<PrewalkRun | null> } {
  const pw = new Prewalk([{ name: 'r', path: root, rules: nameRulesOf(filterOptions) }]);
  cleanups.push(() => pw.close());
  const taken: Array<PrewalkRun | null> = [];
  return {
    source: {
      take: (name) => {
        const run = pw.take(name);
        taken.push(run);
        return run;
      },
      close: () => pw.close(),
    },
    taken,
  };
}

/** What `there` found from the worker's walk (taken once, not failed) is what `here` found walking on the main thread. */
function expectTheWorkersWalk(pw: { taken: Array<PrewalkRun | null> }, there: ReturnType<typeof source>, here: ReturnType<typeof source>): void {
  expect(pw.taken).toHaveLength(1);
  expect(pw.taken[0]).not.toBeNull();
  expect(there.lines.some((l) => l.includes('walk on a worker thread failed'))).toBe(false);
  expect(found(there.ready).map((f) => f.relPath)).toEqual(['a.txt', 'd1/b.txt', 'd1/sub/c.txt', 'd1/sub/deeper/e.txt', 'd2/caf%E9/r.txt', 'd2/f.txt']);
  expect(found(there.ready)).toEqual(found(here.ready));
  expect(there.src.roots()[0]!.skippedLinks).toBe(1);
}

async function drain(batches: AsyncIterable<WalkBatch>): Promise<WalkBatch[]> {
  const out: WalkBatch[] = [];
  for await (const b of batches) out.push(b);
  return out;
}

/** The batches again; with `failAt`, the worker dies before batch `failAt` (at the end: after them all, before its end). */
async function* replayOf(batches: WalkBatch[], failAt?: number): AsyncIterable<WalkBatch> {
  for (const [i, b] of batches.entries()) {
    if (i === failAt) throw new Error('the worker died');
    yield b;
  }
  if (failAt === batches.length) throw new Error('the worker died');
}

describe('prewalk: the first walk on a worker thread', () => {
  it('finds what the walk on the main thread finds: the same files, with the same stat, through the same filter (hidden, temp, excluded folders and globs, links, names not valid UTF-8)', async () => {
    const root = await tree();
    const here = source(root);
    await here.src.watch();
    await waitFor('the main thread walk', () => here.ready.length >= 6, 10_000);

    const pw = prewalkOfRoot(root);
    const there = source(root, { prewalk: pw.source });
    await there.src.watch();
    await there.src.live;
    // Found by the worker's walk, not by the one 2 s after the root is live (see watchingNow).
    await new Promise((r) => setTimeout(r, 500));

    expectTheWorkersWalk(pw, there, here);
    expect(here.src.roots()[0]!.skippedLinks).toBe(1);
  });

  it('once mode (backfill --once) scans from the worker\'s walk too: the same files as the main thread\'s scan, and the worker closed after', async () => {
    const root = await tree();
    const here = source(root);
    await here.src.scanOnce();

    const pw = prewalkOfRoot(root);
    let closed = 0;
    const there = source(root, { prewalk: { take: pw.source.take, close: () => (closed++, pw.source.close()) } });
    await there.src.scanOnce();

    expectTheWorkersWalk(pw, there, here);
    expect(closed).toBeGreaterThanOrEqual(1);
  });

  it('a restart over a journaled tree: files as the journal has them produce nothing; a changed one does', async () => {
    const root = await agedTree();
    const index = new Map<string, FileStat>();
    for (const rel of ['a.txt', 'd1/b.txt', 'd1/sub/c.txt', 'd1/sub/deeper/e.txt', 'd2/f.txt']) index.set(rel, fileStatOf(statSync(path.join(root, rel))));
    index.set('d1/b.txt', { ...index.get('d1/b.txt')!, size: 999 });
    const s = source(root, { prewalk: prewalkOfRoot(root).source, index });
    await s.src.watch();
    await s.src.live;
    // Found by the worker's walk, not by the one 2 s after the root is live (see watchingNow).
    await new Promise((r) => setTimeout(r, 500));
    expect(found(s.ready).map((f) => f.relPath)).toEqual(['d1/b.txt', 'd2/caf%E9/r.txt']);
  });

  it('what is made or changed after the worker read a folder and before the watcher watched it is found by the walk after the watches (no event was raised for it)', async () => {
    const root = await agedTree();
    const index = new Map<string, FileStat>();
    for (const rel of ['a.txt', 'd1/b.txt', 'd1/sub/c.txt', 'd1/sub/deeper/e.txt', 'd2/f.txt', 'd2/caf%E9/r.txt']) {
      index.set(rel, fileStatOf(statSync(rel.includes('%') ? Buffer.concat([Buffer.from(`${root}/d2/caf`), Buffer.from([0xe9]), Buffer.from('/r.txt')]) : path.join(root, rel))));
    }
    const pw = new Prewalk([{ name: 'r', path: root, rules: nameRulesOf(filterOptions) }]);
    cleanups.push(() => pw.close());
    const run = pw.take('r')!;
    // The worker's first walk is over: every folder was read before what follows.
    const first = await drain(run.batches);
    put(root, 'd1/sub/new.txt');
    writeFileSync(path.join(root, 'd2/f.txt'), 'changed: longer than before');
    utimesSync(path.join(root, 'd2/f.txt'), old, old);
    put(root, 'made/later/m.txt');
    const late = source(root, {
      index,
      prewalk: { take: () => ({ ...run, batches: replayOf(first) }), close: () => pw.close() },
    });
    await late.src.watch();
    await late.src.live;
    // Found by that walk, not by the one that comes 2 s after a root is live (see watchingNow):
    // stable 50 ms after it found them.
    await new Promise((r) => setTimeout(r, 500));
    expect(found(late.ready).map((f) => f.relPath)).toEqual(['d1/sub/new.txt', 'd2/f.txt', 'made/later/m.txt']);
    // And the folder made meanwhile is watched: a file written there now is seen live.
    put(root, 'made/later/live.txt');
    await waitFor('live in the new folder', () => late.ready.some((i) => i.relPath === 'made/later/live.txt'), 10_000);
  });

  it('once the watcher takes the walk, the worker reads no folder before the watcher says it is watched', async () => {
    const root = await tree();
    const pw = new Prewalk([{ name: 'r', path: root, rules: nameRulesOf(filterOptions) }], { gated: true });
    cleanups.push(() => pw.close());
    const run = pw.take('r')!;
    const it = run.batches[Symbol.asyncIterator]();
    const first = await it.next();
    // The root's read: its files and folders, and nothing from inside them.
    expect((first.value as WalkBatch).files).toEqual(['a.txt']);
    expect([...(first.value as WalkBatch).dirs].sort()).toEqual(['d1', 'd2']);
    const next = it.next();
    const waited = await Promise.race([next.then(() => 'a batch'), new Promise((r) => setTimeout(() => r('nothing'), 300))]);
    expect(waited).toBe('nothing');
    // Made now, after the root's read and before d1 is watched: d1's read comes after.
    put(root, 'd1/late.txt');
    let watched = 2;
    run.watched(watched);
    const rest: WalkBatch[] = [];
    for (let r = await next; !r.done; r = await it.next()) {
      rest.push(r.value);
      watched += r.value.dirs.length;
      run.watched(watched);
    }
    // The file globs are the watcher's (z.log); d2 holds a name not valid UTF-8: the watcher reads it.
    expect(rest.flatMap((b) => b.files).sort()).toEqual(['d1/b.txt', 'd1/late.txt', 'd1/sub/c.txt', 'd1/sub/deeper/e.txt', 'd1/z.log']);
    expect(rest.flatMap((b) => b.raw)).toEqual(['d2']);
  });

  it('a walker started before its roots were known (as the CLI starts it) walks them; one that died meanwhile fails the walk at once', async () => {
    const root = await tree();
    const early = startWalker();
    const pw = new Prewalk([{ name: 'r', path: root, rules: nameRulesOf(filterOptions) }], { walker: early });
    cleanups.push(() => pw.close());
    const batches = await drain(pw.take('r')!.batches);
    // The file globs are the watcher's (z.log); d2 holds a name not valid UTF-8: the watcher reads it.
    expect(batches.flatMap((b) => b.files).sort()).toEqual(['a.txt', 'd1/b.txt', 'd1/sub/c.txt', 'd1/sub/deeper/e.txt', 'd1/z.log']);
    expect(batches.flatMap((b) => b.raw)).toEqual(['d2']);

    const dead = startWalker();
    await dead.worker.terminate();
    const failed = new Prewalk([{ name: 'r', path: root, rules: nameRulesOf(filterOptions) }], { walker: dead });
    cleanups.push(() => failed.close());
    // The caller (the watcher) walks on the main thread instead: see the test below.
    await expect(drain(failed.take('r')!.batches)).rejects.toThrow(/exited/);
  });

  it('a worker that fails part-way: the walk runs on the main thread, and finds everything', async () => {
    const root = await tree();
    const pw = new Prewalk([{ name: 'r', path: root, rules: nameRulesOf({ ...filterOptions }) }]);
    cleanups.push(() => pw.close());
    const run = pw.take('r')!;
    const [whole] = await drain(run.batches);
    // Its folders and half of its files are handed over (watched, compared), then it dies: the
    // other half and the Latin-1 folder must come from the walk here.
    const half = Math.floor(whole!.files.length / 2);
    const part: WalkBatch = { ...whole!, files: whole!.files.slice(0, half), stats: whole!.stats.slice(0, half * 5), links: [], raw: [], errors: [] };
    expect(part.files.length).toBeGreaterThan(0);
    const s = source(root, {
      prewalk: { take: () => ({ ...run, batches: replayOf([part], 1) }), close: () => pw.close() },
    });
    await s.src.watch();
    await s.src.live;
    // Found by that walk, not by the one 2 s after the root is live (see watchingNow).
    await new Promise((r) => setTimeout(r, 500));
    expect(found(s.ready).map((f) => f.relPath)).toEqual(['a.txt', 'd1/b.txt', 'd1/sub/c.txt', 'd1/sub/deeper/e.txt', 'd2/caf%E9/r.txt', 'd2/f.txt']);
    expect(s.lines.some((l) => l.includes('walk on a worker thread failed'))).toBe(true);
  });

  it('a root the worker could not read (made after it looked) is walked on the main thread', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const root = path.join(t.dir, 'later');
    const pw = new Prewalk([{ name: 'r', path: root, rules: nameRulesOf(filterOptions) }]);
    cleanups.push(() => pw.close());
    const run = pw.take('r')!;
    const seen = await drain(run.batches);
    expect(seen.flatMap((b) => b.errors.map((e) => [e.relPath, e.code]))).toEqual([['', 'ENOENT']]);
    put(root, 'a.txt');
    const s = source(root, { prewalk: { take: () => ({ ...run, batches: replayOf(seen) }), close: () => pw.close() } });
    await s.src.watch();
    await s.src.live;
    // Found by that walk, not by the one 2 s after the root is live (see watchingNow).
    await new Promise((r) => setTimeout(r, 500));
    expect(found(s.ready).map((f) => f.relPath)).toEqual(['a.txt']);
    // Not a failure worth a warning (the embedded default's root is made after the worker looks).
    expect(s.lines.some((l) => l.includes('walk on a worker thread'))).toBe(false);
  });
});
