import { mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPathFilter } from '../../src/archive/filters.js';
import type { FileItem, FileStat } from '../../src/archive/item.js';
import { fileStatOf, WatchSource } from '../../src/pipeline/watch-source.js';
import { openSqliteStore } from '../../src/state/index.js';
import { INDEX_WORKER_MIN_FILES } from '../../src/state/sqlite-store.js';
import type { NewItem } from '../../src/state/store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { tempDir, waitFor } from '../helpers/fs.js';

const filter = createPathFilter({ include: [], exclude: [], minSize: 0, maxSize: null, ignoreHidden: true, ignoreTemp: true });
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function source(opts: { stableMs?: number; rescanMs?: number; index?: Map<string, FileStat>; indexFails?: () => boolean; polling?: boolean; filter?: typeof filter } = {}) {
  const t = await tempDir();
  const root = path.join(t.dir, 'root');
  await mkdir(root);
  const ready: FileItem[] = [];
  const unready: string[] = [];
  const lines: string[] = [];
  const errors: unknown[] = [];
  const dest = new PassThrough();
  dest.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  const src = new WatchSource({
    roots: [{ name: 'r', path: root, filter: opts.filter ?? filter, polling: opts.polling ?? false, pollIntervalMs: 100 }],
    stableMs: opts.stableMs ?? 200,
    rescanMs: opts.rescanMs ?? 0,
    index: async () => {
      if (opts.indexFails?.()) throw new Error('the journal is closed');
      return opts.index ?? new Map();
    },
    log: createLogger({ level: 'info', format: 'json', destination: dest }),
    onReady: (item) => ready.push(item),
    onUnready: (_root, rel) => unready.push(rel),
    onError: (e) => errors.push(e),
  });
  cleanups.push(async () => {
    await src.close();
    await t.cleanup();
  });
  return { src, root, ready, unready, lines, errors };
}

const old = new Date(Date.now() - 3_600_000);

describe('WatchSource', () => {
  it('reconciles with the journal at start: unchanged files produce nothing, changed and new ones become ready', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const pre = path.join(t.dir, 'pre');
    await mkdir(pre);
    for (const n of ['same.txt', 'changed.txt', 'new.txt']) {
      await writeFile(path.join(pre, n), n);
      await utimes(path.join(pre, n), old, old);
    }
    const { statSync } = await import('node:fs');
    const index = new Map<string, FileStat>([
      ['same.txt', fileStatOf(statSync(path.join(pre, 'same.txt')))],
      ['changed.txt', { ...fileStatOf(statSync(path.join(pre, 'changed.txt'))), size: 999 }],
    ]);
    const s = await source({ index });
    await rm(s.root, { recursive: true });
    const { rename } = await import('node:fs/promises');
    await rename(pre, s.root);
    await s.src.watch();
    await waitFor('two ready', () => s.ready.length >= 2, 5000);
    expect(s.ready.map((i) => i.relPath).sort()).toEqual(['changed.txt', 'new.txt']);
  });

  it('issue 19 item 5: the first walk watches each folder before it reads it, so the root is live when the walk ends; files made in a folder during the walk, before or after its read, are each found once, with no walk after', async () => {
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const folders = Array.from({ length: 8 }, (_, d) => `d${d}`).flatMap((d) => [d, `${d}/sub`]);
    // While the walk reads a folder (asked about its first file, after the folder's readdir):
    // `after.txt` into that folder (only its watch can report it), into the first one read also
    // a new folder with a file, and `before.txt` into every folder not read yet (watched
    // already: the watch and the walk's read both see it).
    const read = new Set<string>();
    const made: string[] = [];
    let root = '';
    const during = {
      ...filter,
      byChild: (rel: string, name: string) => {
        const dir = rel.slice(0, Math.max(0, rel.lastIndexOf('/')));
        if (root !== '' && name === 'f0' && !read.has(dir)) {
          read.add(dir);
          writeFileSync(path.join(root, dir, 'after.txt'), `made after ${dir} was read`);
          made.push(`${dir}/after.txt`);
          if (read.size === 1) {
            mkdirSync(path.join(root, dir, 'new'));
            writeFileSync(path.join(root, dir, 'new', 'inside.txt'), `made in a folder made after ${dir} was read`);
            made.push(`${dir}/new/inside.txt`);
          }
          for (const other of folders) {
            if (read.has(other) || made.includes(`${other}/before.txt`)) continue;
            writeFileSync(path.join(root, other, 'before.txt'), `made before ${other} was read`);
            made.push(`${other}/before.txt`);
          }
        }
        return filter.byChild(rel, name);
      },
    };
    let reads = 0;
    const s = await source({ stableMs: 50, filter: during, indexFails: () => void reads++ === null });
    for (const d of folders) {
      await mkdir(path.join(s.root, d));
      for (let f = 0; f < 5; f++) await writeFile(path.join(s.root, d, `f${f}`), 'x');
    }
    root = s.root;
    await s.src.watch();
    // Live when the walk is done: `watching` said right after `scanned`, a watch on every folder.
    const said = s.lines.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((m) => m === 'scanned' || m === 'watching');
    expect(said).toEqual(['scanned', 'watching']);
    const watched = Object.keys(s.src.chokidarWatchers[0]!.getWatched());
    for (const d of ['', ...folders]) expect(watched).toContain(path.join(s.root, d));
    expect(read.size).toBe(folders.length);
    expect(made.filter((m) => m.endsWith('/after.txt'))).toHaveLength(folders.length);
    expect(made.filter((m) => m.endsWith('/new/inside.txt'))).toHaveLength(1);
    expect(made.filter((m) => m.endsWith('/before.txt')).length).toBeGreaterThan(0);
    // Every file the walk read plus every one made during it; those made after their folder's
    // read by the watches alone: before the walk SETTLE_WALK_MS (2 s) later reads the index again.
    const all = [...folders.flatMap((d) => Array.from({ length: 5 }, (_, f) => `${d}/f${f}`)), ...made].sort();
    await waitFor('every file', () => all.every((r) => s.ready.some((i) => i.relPath === r)), 1500);
    expect(reads).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(s.ready.map((i) => i.relPath).sort()).toEqual(all);
  });

  it('a polled root: the walk once the watches are set up reads no journal index: it takes only what was stamped since the first walk', async () => {
    let reads = 0;
    const index = new Map<string, FileStat>();
    const s = await source({ stableMs: 50, index, polling: true, indexFails: () => void reads++ === null });
    const { statSync, renameSync } = await import('node:fs');
    for (let d = 0; d < 5; d++) {
      await mkdir(path.join(s.root, `d${d}`));
      for (let f = 0; f < 10; f++) {
        const rel = `d${d}/f${f}.txt`;
        await writeFile(path.join(s.root, rel), rel);
        await utimes(path.join(s.root, rel), old, old);
        index.set(rel, fileStatOf(statSync(path.join(s.root, rel))));
      }
    }
    // A folder outside the root, moved in between the first walk and the watches: its file's ctime is old.
    const outside = path.join(path.dirname(s.root), 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'm.txt'), 'moved in');
    await utimes(path.join(outside, 'm.txt'), old, old);
    // Every ctime above older than the first walk by more than the slack (1 s).
    await new Promise((r) => setTimeout(r, 1300));
    await s.src.watch();
    expect(reads).toBe(1);
    await writeFile(path.join(s.root, 'd2', 'between.txt'), 'made before the watches are set');
    renameSync(outside, path.join(s.root, 'd3', 'moved'));
    await s.src.live;
    // The first walk's read only: the one after the watches compares by ctime instead.
    expect(reads).toBe(1);
    await waitFor('the files made and moved in between', () => ['d2/between.txt', 'd3/moved/m.txt'].every((r) => s.ready.some((i) => i.relPath === r)), 1500);
    await new Promise((r) => setTimeout(r, 200));
    // A folder whose entries changed since (d2, d3) is taken whole, for the archiver to compare
    // with the journal; nothing in the folders left alone is taken again.
    expect(s.ready.filter((i) => /^d[014]\//.test(i.relPath))).toEqual([]);
  });

  it('a journal that cannot be read for a scan is reported through onError, and the scan is given up', async () => {
    let broken = false;
    const s = await source({ rescanMs: 0, indexFails: () => broken });
    await writeFile(path.join(s.root, 'a.txt'), 'a');
    broken = true;
    await s.src.watch();
    expect(s.errors.map((e) => (e as Error).message)).toEqual(['the journal is closed']);
    expect(s.ready).toEqual([]);
  });

  it('walks while the journal index is read: files found before the index arrives are compared with it once it does', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const root = path.join(t.dir, 'root');
    const files: string[] = [];
    for (let d = 0; d < 5; d++) {
      await mkdir(path.join(root, `d${d}`), { recursive: true });
      for (let f = 0; f < 10; f++) {
        const rel = `d${d}/f${f}.txt`;
        await writeFile(path.join(root, rel), rel);
        await utimes(path.join(root, rel), old, old);
        files.push(rel);
      }
    }
    const { statSync } = await import('node:fs');
    // Every file archived as it is, but d3/f3.txt recorded with another size: it alone is changed.
    const index = new Map<string, FileStat>(files.map((rel) => [rel, fileStatOf(statSync(path.join(root, rel)))]));
    index.set('d3/f3.txt', { ...index.get('d3/f3.txt')!, size: 999 });
    // The index answers only once the walk has looked at every file (or after 3 s): a scan that
    // waited for the index before walking would see none by then.
    const seen = new Set<string>();
    const watched = { ...filter, byChild: (rel: string, name: string) => (seen.add(rel), filter.byChild(rel, name)) };
    let seenWhenAnswered = -1;
    const ready: FileItem[] = [];
    const src = new WatchSource({
      roots: [{ name: 'r', path: root, filter: watched, polling: false, pollIntervalMs: 100 }],
      stableMs: 50,
      rescanMs: 0,
      index: async () => {
        for (let i = 0; i < 300 && seen.size < files.length; i++) await new Promise((r) => setTimeout(r, 10));
        seenWhenAnswered = seen.size;
        return index;
      },
      log: createLogger({ level: 'warn', format: 'json', destination: new PassThrough() }),
      onReady: (item) => ready.push(item),
      onUnready: () => undefined,
    });
    cleanups.push(() => src.close());
    await src.watch();
    expect(seenWhenAnswered).toBe(files.length);
    expect(ready.map((i) => i.relPath)).toEqual(['d3/f3.txt']);
    // Kept as it was found, while it waited for the index: its stat as on disk.
    const { dev: _dev, ...onDisk } = fileStatOf(statSync(path.join(root, 'd3/f3.txt')));
    expect(ready[0]).toMatchObject({ root: 'r', rootPath: root, ...onDisk });
  });

  it('a restart over a root the journal index worker reads (20k+ files) finds only the files changed or made while it was down', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const root = path.join(t.dir, 'root');
    const n = INDEX_WORKER_MIN_FILES + 200;
    const items: NewItem[] = [];
    for (let i = 0; i < n; i++) {
      const rel = `d${Math.floor(i / 100)}/f-${i}.dat`;
      const abs = path.join(root, rel);
      if (i % 100 === 0) mkdirSync(path.dirname(abs), { recursive: true });
      writeFileSync(abs, '');
      utimesSync(abs, old, old);
      const { dev: _dev, ...st } = fileStatOf(statSync(abs));
      items.push({ item: { root: 'r', rootPath: root, relPath: rel, ...st }, remotePath: rel });
    }
    const store = await openSqliteStore({ dir: path.join(t.dir, 'state') });
    cleanups.push(async () => store.close());
    await store.recordItems(items, ['local']);
    // While the daemon was down: one file rewritten (another size), one made, one removed.
    writeFileSync(path.join(root, 'd7/f-777.dat'), 'changed');
    utimesSync(path.join(root, 'd7/f-777.dat'), old, old);
    writeFileSync(path.join(root, 'd12/new.dat'), 'new');
    utimesSync(path.join(root, 'd12/new.dat'), old, old);
    await rm(path.join(root, 'd3/f-333.dat'));
    const ready: FileItem[] = [];
    const src = new WatchSource({
      roots: [{ name: 'r', path: root, filter, polling: false, pollIntervalMs: 100 }],
      stableMs: 50,
      rescanMs: 0,
      index: (r) => store.fileIndex(r),
      log: createLogger({ level: 'warn', format: 'json', destination: new PassThrough() }),
      onReady: (item) => ready.push(item),
      onUnready: () => undefined,
    });
    cleanups.push(() => src.close());
    await src.watch();
    expect(ready.map((i) => i.relPath).sort()).toEqual(['d12/new.dat', 'd7/f-777.dat']);
  }, 120_000);

  it('coalesces the events of a file that keeps changing and declares it ready once, with its final stat', async () => {
    const s = await source({ stableMs: 300 });
    await s.src.watch();
    const f = path.join(s.root, 'busy.txt');
    for (let i = 1; i <= 5; i++) {
      await writeFile(f, 'x'.repeat(i * 100));
      await new Promise((r) => setTimeout(r, 60));
    }
    await waitFor('ready', () => s.ready.length > 0, 5000);
    await new Promise((r) => setTimeout(r, 400));
    expect(s.ready).toHaveLength(1);
    expect(s.ready[0]).toMatchObject({ relPath: 'busy.txt', size: 500 });
  });

  it('forgets a file deleted before it became stable', async () => {
    const s = await source({ stableMs: 400 });
    await s.src.watch();
    await writeFile(path.join(s.root, 'brief.txt'), 'here and gone');
    await waitFor('seen', () => s.src.waiting === 1, 5000);
    await rm(path.join(s.root, 'brief.txt'));
    await waitFor('forgotten', () => s.src.waiting === 0, 5000);
    await new Promise((r) => setTimeout(r, 600));
    expect(s.ready).toEqual([]);
  });

  it('chokidar keeps the folders only (issue 19: ~7 KB a file); new, written, chmod-ed, renamed and deleted files are still seen live', async () => {
    const s = await source({ stableMs: 100 });
    await mkdir(path.join(s.root, 'a', 'b'), { recursive: true });
    for (const f of ['a/one.txt', 'a/b/two.txt', 'top.txt']) await writeFile(path.join(s.root, f), f);
    await s.src.watch();
    await s.src.live;
    await waitFor('the walk found all three', () => s.ready.length === 3, 5000);
    // Past the walk a little after 'ready' (SETTLE_WALK_MS): what follows is seen live or not at all.
    await new Promise((r) => setTimeout(r, 2300));
    for (const i of s.ready.splice(0)) s.src.taken(i.root, i.relPath);
    const watched = s.src.chokidarWatchers[0]!.getWatched();
    const entries = Object.entries(watched).flatMap(([dir, names]) => names.map((n) => path.join(dir, n)));
    const { chmod, rename, stat } = await import('node:fs/promises');
    const kinds = await Promise.all(entries.map(async (p) => ((await stat(p).catch(() => null))?.isDirectory() ? 'folder' : p)));
    expect(kinds.filter((k) => k !== 'folder')).toEqual([]);
    expect(entries.length).toBeGreaterThan(0);

    await writeFile(path.join(s.root, 'a', 'b', 'new.txt'), 'new');
    await writeFile(path.join(s.root, 'top.txt'), 'written again, longer');
    await chmod(path.join(s.root, 'a', 'one.txt'), 0o600); // the ctime only
    await rename(path.join(s.root, 'a', 'b', 'two.txt'), path.join(s.root, 'moved.txt'));
    await writeFile(path.join(s.root, 'a', 'brief.txt'), 'here and gone');
    await rm(path.join(s.root, 'a', 'brief.txt'));
    await waitFor('four live changes', () => s.ready.length >= 4, 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.ready.map((i) => i.relPath).sort()).toEqual(['a/b/new.txt', 'a/one.txt', 'moved.txt', 'top.txt']);
    expect(s.ready.find((i) => i.relPath === 'top.txt')?.size).toBe('written again, longer'.length);
    expect(s.src.waiting).toBe(0);
  });

  it.each([
    ['ENOSPC', 'System limit for number of file watchers reached', 'max_user_watches', 'inotify watches ran out'],
    ['EMFILE', 'too many open files (inotify_init)', 'max_user_instances', 'inotify instances ran out'],
  ])('%s from the watcher: says once, loudly, the exact sysctl to raise and the line that keeps it, shows it in status, and walks the root meanwhile', async (code, text, limit, what) => {
    const s = await source({ rescanMs: 0 });
    // Three folders (and the root): what the watcher watches, which the advice counts.
    for (const d of ['a', 'a/b', 'c']) await mkdir(path.join(s.root, d));
    await s.src.watch();
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const watcher = s.src.chokidarWatchers[0]!;
    const error = Object.assign(new Error(`${code}: ${text}`), { code });
    watcher.emit('error', error);
    watcher.emit('error', error);
    // The watches are gone: chokidar sees nothing more under this root.
    await watcher.close();
    await waitFor('the advice logged', () => s.lines.some((l) => l.includes(what)), 5000);
    await writeFile(path.join(s.root, 'a', 'b', 'unseen.txt'), 'only a walk finds me');
    await utimes(path.join(s.root, 'a', 'b', 'unseen.txt'), old, old);
    await new Promise((r) => setTimeout(r, 300));
    expect(s.ready).toEqual([]);
    await vi.advanceTimersByTimeAsync(60_000);
    await waitFor('found by the periodic walk', () => s.ready.length === 1, 5000);
    expect(s.ready[0]!.relPath).toBe('a/b/unseen.txt');
    const warnings = s.lines.filter((l) => l.includes(what));
    expect(warnings).toHaveLength(1);
    const line = JSON.parse(warnings[0]!) as { level: number; msg: string; sysctl: string; persist: string; folders: number; files: number };
    expect(line.level).toBe(50);
    // The exact sysctl: the limit now plus the root's 4 folders (watches), or twice the instances, rounded up to 8192.
    const current = Number.parseInt(await readFile(`/proc/sys/fs/inotify/${limit}`, 'utf8'), 10);
    const wanted = Math.ceil((limit === 'max_user_watches' ? current + 4 : current * 2) / 8192) * 8192;
    expect(line).toMatchObject({ folders: 4, files: 0, sysctl: `sysctl fs.inotify.${limit}=${wanted}`, persist: `fs.inotify.${limit}=${wanted} in /etc/sysctl.d/90-stagecoach.conf` });
    expect(line.msg).toContain(`\`sysctl fs.inotify.${limit}=${wanted}\``);
    expect(line.msg).toContain(`the line \`fs.inotify.${limit}=${wanted}\` in /etc/sysctl.d/90-stagecoach.conf`);
    // `status` shows the root polled, and why.
    expect(s.src.roots()[0]!.polled).toMatch(new RegExp(`^${what} \\(fs\\.inotify\\.${limit} is ${current}\\); walked every 60 s until \`sysctl fs\\.inotify\\.${limit}=${wanted}\``));
  });
});
