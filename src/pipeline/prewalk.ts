/**
 * Issue 19 item 3: a restart's first walk of each root watched by folders, on a worker thread
 * that the CLI starts as soon as it knows the command is `run` (or `backfill`, whose one walk of
 * each root it is too, never gated: nothing is watched), and gives the roots to once the config
 * is read (cli/main.ts, startWalker; the pipeline starts one itself when it is given none).
 * A restart is a walk: an lstat of every file, compared with the journal. On the main thread
 * that walk came after the start-up (modules, journal, targets) and cost about what a bare walk
 * costs (~0.45 s of lstat and readdir per 100k files), so a restart took the start-up plus the
 * walk. Here the worker walks while the main thread starts, and the main thread
 * only sets up the folders' watches and compares the files it is sent with the journal
 * (watch-source.ts): on two cores a restart takes about the longer of the two, not their sum.
 *
 * What the worker sends of a root, in batches: its folders (each as its parent's read finds it,
 * breadth first), its regular files with their stat (size, mtime and ctime in whole ms, inode,
 * device), its symbolic links, the folders it could not read, and the folders holding a name
 * that is not valid UTF-8 (`raw`: the main thread walks those itself, with walk.ts, which reads
 * names as bytes). It skips what the root's filter skips by name (hidden and temp names,
 * excluded folders: `NameRules`, the same rules PathFilter is built from); the include and
 * exclude globs of files are the main thread's (the filter's `byChild`).
 *
 * A folder must be watched before it is read, or a file made in between raises no event and is
 * in no read. Until the watcher takes a root's walk (its first `watched` call: the gate) the
 * worker reads freely; from then on it reads a folder only once the watcher says it watches it.
 * The folders it read before are read once more when `catchUp` is asked, after every folder is
 * watched: it sends their files stamped since the worker started (ctime: a write, a rename or a
 * link stamps it; the caller takes the watcher's slack for the kernel's clock off), and their
 * folders the first walk did not see at that path with that inode (made, moved in or replaced
 * since: the watcher walks each whole). A worker that fails or exits fails what it has not
 * finished: the caller walks on the main thread instead.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { nameRulesOf, PICOMATCH_OPTIONS, type NameRules } from '../archive/filters.js';
import type { Config } from '../config/index.js';

export interface PrewalkRoot {
  name: string;
  /** Absolute path. */
  path: string;
  rules: NameRules;
}

/** One message's worth of what a walk found (see the module comment). */
export interface WalkBatch {
  /** Folders kept, relative to the root (POSIX), each before anything under it. */
  dirs: string[];
  /** Regular files found, relative to the root. */
  files: string[];
  /** Five numbers per file, in the order of `files`: size, mtimeMs, ino, ctimeMs (whole ms), dev. */
  stats: Float64Array;
  /** Symbolic links whose name the rules keep. */
  links: string[];
  /** Folders holding a name that is not valid UTF-8: not read further here. */
  raw: string[];
  /** Folders or files that could not be read, with the error's code. */
  errors: Array<{ relPath: string; code: string | undefined; message: string }>;
}

/** Files per message. */
const BATCH_FILES = 2048;

/** CommonJS, run with `eval`: no file of its own to find in dist/, in the bundle or under vitest. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { lstatSync, readdirSync } = require('node:fs');
const { sep } = require('node:path');
const BATCH_FILES = workerData.batchFiles;

function rulesOf(rules) {
  const temp = rules.tempName === null ? null : new RegExp(rules.tempName);
  const dirs = rules.excludedDirs.length === 0 ? null : require(job.picomatch)(rules.excludedDirs, job.picomatchOptions);
  const skipsName = (name) =>
    (rules.ignoreHidden && name.charCodeAt(0) === 46 && name !== '.' && name !== '..') || (temp !== null && temp.test(name));
  return { skipsName, skipsDir: (relPath, name) => skipsName(name) || (dirs !== null && dirs(relPath)) };
}

function emptyBatch() {
  return { dirs: [], files: [], stats: [], links: [], raw: [], errors: [] };
}

function errorOf(relPath, e) {
  return { relPath, code: e && e.code, message: e && e.message ? e.message : String(e) };
}

// What to walk, from the first message: the worker starts before the config is read (startWalker).
let job = null;
// Per root: its folders as the first walk found them (relative path -> inode), and the folders
// it read before the watcher watched them (see catchUp).
let seen = [];
let unwatched = [];
// Per root, two Int32s: the gate (1 once the watcher watches what this walk reports) and how
// many of the folders reported it has watched (the root itself is folder 0).
let shared = null;

function sender(id) {
  let b = emptyBatch();
  let sentDirs = 0;
  return {
    get batch() {
      return b;
    },
    get reported() {
      return sentDirs + b.dirs.length;
    },
    /** Folders handed over so far (those in the batch being filled are not). */
    get sentDirs() {
      return sentDirs;
    },
    send(end) {
      const stats = Float64Array.from(b.stats);
      sentDirs += b.dirs.length;
      parentPort.postMessage({ id, end, batch: { ...b, stats } }, [stats.buffer]);
      b = emptyBatch();
    },
  };
}

// Waits until the watcher watches folder number n (reported in an earlier batch).
function watched(i, n) {
  for (;;) {
    const done = Atomics.load(shared, 2 * i + 1);
    if (done >= n) return;
    Atomics.wait(shared, 2 * i + 1, done, 100);
  }
}

// The first walk of root i. Once the watcher takes it (the gate), no folder is read before the
// watcher has watched it; those read before are listed for the catch-up.
function firstWalk(i) {
  const root = job.roots[i];
  const folders = seen[i];
  const rules = rulesOf(root.rules);
  const out = sender('first:' + i);
  const base = root.path.length > 1 && root.path.endsWith(sep) ? root.path.slice(0, -1) : root.path;
  // Breadth first: the next folder to read was reported long ago, and is watched by then.
  const queue = [['', base, 0]];
  for (let q = 0; q < queue.length; q++) {
    const [relDir, absDir, number] = queue[q];
    queue[q] = undefined;
    const gated = Atomics.load(shared, 2 * i) === 1;
    if (gated) {
      if (number > out.sentDirs) out.send(false);
      watched(i, number);
    }
    const entries = readFolder(out.batch, relDir, absDir);
    if (entries === null) continue;
    if (entries.some((e) => e.name.includes('\uFFFD'))) {
      out.batch.raw.push(relDir);
      continue;
    }
    if (!gated) unwatched[i].push(relDir);
    readEntries(entries, relDir, absDir, rules, out, -Infinity, (relPath, abs) => {
      folders.set(relPath, inoOf(abs));
      out.batch.dirs.push(relPath);
      queue.push([relPath, abs, out.reported]);
    });
  }
  out.send(true);
}

// A folder's entries into the batch: the files the rules keep, stamped at or after \`since\`, with
// their stat; the links the rules keep; each folder they keep to \`onFolder\`. A name that is not
// valid UTF-8 names nothing as a string: left to the watcher's own walks.
function readEntries(entries, relDir, absDir, rules, out, since, onFolder) {
  for (const entry of entries) {
    const name = entry.name;
    if (name.includes('\uFFFD')) continue;
    const relPath = relDir === '' ? name : relDir + '/' + name;
    const abs = absDir + sep + name;
    if (entry.isDirectory()) {
      if (!rules.skipsDir(relPath, name)) onFolder(relPath, abs);
    } else if (entry.isFile()) {
      if (rules.skipsName(name)) continue;
      const st = statOf(out.batch, relPath, abs);
      if (st === null || st.ctimeMs < since) continue;
      addFile(out.batch, relPath, st);
      if (out.batch.files.length >= BATCH_FILES) out.send(false);
    } else if (entry.isSymbolicLink() && !rules.skipsName(name)) {
      out.batch.links.push(relPath);
    }
  }
}

// A folder's entries with their types, or null when it cannot be read (the error is put in the batch).
function readFolder(b, relDir, absDir) {
  try {
    return readdirSync(absDir, { withFileTypes: true });
  } catch (e) {
    b.errors.push(errorOf(relDir, e));
    return null;
  }
}

// A folder's inode, or -1 when it is gone (its read fails and says so).
function inoOf(abs) {
  try {
    return lstatSync(abs).ino;
  } catch {
    return -1;
  }
}

// A regular file's lstat, or null (gone since the read, or replaced by a folder or link: the next
// scan or event sees it; an error is put in the batch).
function statOf(b, relPath, abs) {
  let st;
  try {
    st = lstatSync(abs, { throwIfNoEntry: false });
  } catch (e) {
    b.errors.push(errorOf(relPath, e));
    return null;
  }
  return st !== undefined && st.isFile() ? st : null;
}

function addFile(b, relPath, st) {
  b.files.push(relPath);
  b.stats.push(st.size, Math.floor(st.mtimeMs), st.ino, Math.floor(st.ctimeMs), st.dev);
}

// The folders root i's first walk read before they were watched, read again now that they are:
// files stamped since \`after\`, and folders the first walk did not see there (made, moved in or
// replaced since: the watcher walks each whole). Folders it read once watched need nothing.
function catchUp(i, after) {
  const root = job.roots[i];
  const folders = seen[i];
  const rules = rulesOf(root.rules);
  const out = sender('catchUp:' + i);
  const base = root.path.length > 1 && root.path.endsWith(sep) ? root.path.slice(0, -1) : root.path;
  for (const relDir of unwatched[i]) {
    const absDir = relDir === '' ? base : base + sep + relDir.split('/').join(sep);
    const entries = readFolder(out.batch, relDir, absDir);
    if (entries === null) continue;
    readEntries(entries, relDir, absDir, rules, out, after, (relPath, abs) => {
      const ino = inoOf(abs);
      if (ino !== -1 && folders.get(relPath) !== ino) out.batch.dirs.push(relPath);
    });
  }
  unwatched[i] = [];
  out.send(true);
}

// The first message says what to walk (see Prewalk); each one after asks for a catch-up.
parentPort.on('message', (m) => {
  if (job === null) {
    job = m;
    seen = job.roots.map(() => new Map());
    unwatched = job.roots.map(() => []);
    shared = new Int32Array(job.shared);
    for (let i = 0; i < job.roots.length; i++) {
      try {
        firstWalk(i);
      } catch (e) {
        parentPort.postMessage({ id: 'first:' + i, failed: String(e && e.stack ? e.stack : e) });
      }
    }
    return;
  }
  try {
    catchUp(m.root, m.after);
  } catch (e) {
    parentPort.postMessage({ id: 'catchUp:' + m.root, failed: String(e && e.stack ? e.stack : e) });
  }
});
`;

type WorkerMessage = { id: string; end: boolean; batch: WalkBatch } | { id: string; failed: string };

/** The batches of one walk, as they come. */
class Batches implements AsyncIterable<WalkBatch> {
  readonly #queue: WalkBatch[] = [];
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  push(batch: WalkBatch, end: boolean): void {
    this.#queue.push(batch);
    if (end) this.#ended = true;
    this.#notify();
  }

  fail(error: Error): void {
    if (this.#ended) return;
    this.#error = error;
    this.#notify();
  }

  get settled(): boolean {
    return this.#ended || this.#error !== null;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WalkBatch> {
    for (;;) {
      const next = this.#queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#ended) return;
      if (this.#error) throw this.#error;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }
}

/** A root's first walk, taken by the watcher (see Prewalk.take). */
export interface PrewalkRun {
  /** Epoch ms just before the worker started: anything stamped before was there for its read. */
  readonly startedAt: number;
  readonly batches: AsyncIterable<WalkBatch>;
  /**
   * The watcher has watched the root and the first `dirs` folders the batches listed, in their
   * order. The first call opens the gate: from then on the worker reads no folder before it is
   * watched (see the module comment).
   */
  watched(dirs: number): void;
  /** The walk after the root's folders are watched (see the module comment). */
  catchUp(afterMs: number): AsyncIterable<WalkBatch>;
}

/** What the watcher takes the first walks from (a Prewalk). */
export interface PrewalkSource {
  take(name: string): PrewalkRun | null;
  close(): Promise<void>;
}

/**
 * The walk's worker, started before what it walks is known: the CLI starts it as soon as it knows
 * the command is `run` or `backfill`, so that the thread is up by the time the config is read (a worker takes
 * ~30 ms to start), and Prewalk hands it the roots. It waits for them, and is never what keeps
 * the process alive.
 */
export interface Walker {
  readonly worker: Worker;
  /** The worker's error, or that it exited, before a Prewalk took it. */
  readonly failure: Error | null;
}

export function startWalker(): Walker {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { batchFiles: BATCH_FILES } });
  worker.unref();
  const walker = { worker, failure: null as Error | null };
  // Listened for at once: an error event with no listener would end the process.
  worker.once('error', (e) => (walker.failure ??= e));
  worker.once('exit', (code) => (walker.failure ??= new Error(`the walk's worker exited (code ${code}) before it was given its roots`)));
  return walker;
}

export class Prewalk implements PrewalkSource {
  readonly #worker: Worker | null;
  /** The walks under way (sent to until they end or fail), by the worker's id for each. */
  readonly #walks = new Map<string, Batches>();
  /** Each root's first walk, by its index in the roots. */
  readonly #firsts: Batches[] = [];
  readonly #taken = new Set<number>();
  readonly #index = new Map<string, number>();
  readonly #startedAt: number;
  /** Per root: the gate, and how many of the folders reported are watched (see the worker). */
  readonly #shared: Int32Array;
  #closed = false;

  /**
   * Starts walking `roots` at once, in their order, on a worker of its own (`walker`'s, when
   * given: see startWalker). `gated`: every root's gate open from the start (tests: no folder is
   * read before it is watched).
   */
  constructor(roots: readonly PrewalkRoot[], opts: { gated?: boolean; walker?: Walker } = {}) {
    this.#startedAt = Date.now();
    this.#shared = new Int32Array(new SharedArrayBuffer(8 * Math.max(1, roots.length)));
    if (opts.gated) for (let i = 0; i < roots.length; i++) this.#shared[2 * i] = 1;
    roots.forEach((r, i) => {
      this.#index.set(r.name, i);
      this.#firsts.push(new Batches());
      this.#walks.set(`first:${i}`, this.#firsts[i]!);
    });
    let picomatch: string | null = null;
    try {
      if (roots.some((r) => r.rules.excludedDirs.length > 0)) picomatch = createRequire(import.meta.url).resolve('picomatch');
    } catch (e) {
      this.#worker = null;
      void opts.walker?.worker.terminate();
      this.#failAll(new Error(`cannot find picomatch for the walk's worker: ${(e as Error).message}`));
      return;
    }
    // Never what keeps the process alive (startWalker): the watcher closes it, or it ends with the process.
    const walker = opts.walker ?? startWalker();
    const worker = walker.worker;
    this.#worker = worker;
    worker.postMessage({ roots, picomatch, picomatchOptions: PICOMATCH_OPTIONS, shared: this.#shared.buffer });
    worker.on('message', (m: WorkerMessage) => {
      const walk = this.#walks.get(m.id);
      if (walk === undefined) return;
      if ('failed' in m) walk.fail(new Error(`the walk's worker failed: ${m.failed}`));
      else walk.push(m.batch, m.end);
      if (walk.settled) this.#walks.delete(m.id);
    });
    worker.on('error', (e) => this.#failAll(e));
    worker.on('exit', (code) => this.#failAll(new Error(`the walk's worker exited (code ${code}) before its walk ended`)));
    if (walker.failure !== null) this.#failAll(walker.failure);
  }

  /**
   * The first walk of root `name`, once (null when it is not walked here, was taken already,
   * or the worker is closed).
   */
  take(name: string): PrewalkRun | null {
    const i = this.#index.get(name);
    if (i === undefined || this.#closed || this.#taken.has(i)) return null;
    this.#taken.add(i);
    const batches = this.#firsts[i]!;
    return {
      startedAt: this.#startedAt,
      batches,
      watched: (dirs) => {
        Atomics.store(this.#shared, 2 * i, 1);
        Atomics.store(this.#shared, 2 * i + 1, dirs);
        Atomics.notify(this.#shared, 2 * i + 1);
      },
      catchUp: (afterMs) => this.#catchUp(i, afterMs),
    };
  }

  #catchUp(i: number, afterMs: number): AsyncIterable<WalkBatch> {
    const id = `catchUp:${i}`;
    const batches = new Batches();
    if (this.#worker === null || this.#closed) {
      batches.fail(new Error("the walk's worker is closed"));
      return batches;
    }
    this.#walks.set(id, batches);
    this.#worker.postMessage({ root: i, after: afterMs });
    return batches;
  }

  #failAll(e: Error): void {
    for (const b of this.#walks.values()) b.fail(e);
  }

  /** Stops the worker; a walk not yet ended fails (its caller walks on the main thread). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#failAll(new Error("the walk's worker is closed"));
    this.#walks.clear();
    // What a root nobody took (missing at start) holds.
    this.#firsts.length = 0;
    await this.#worker?.terminate();
  }
}

/**
 * The daemon's first walks of the roots it watches by folders (not `watch: false`, not polled),
 * started now (on `walker`'s thread, when given); undefined when there is none (`walker` is
 * then ended). The CLI calls it as soon as the config is read, before the daemon's own modules
 * load (cli/main.ts).
 */
export function prewalkOf(config: Config, walker?: Walker): Prewalk | undefined {
  const roots = config.roots.filter((r) => r.watch !== false && !r.polling);
  if (roots.length === 0) {
    void walker?.worker.terminate();
    return undefined;
  }
  return new Prewalk(
    roots.map((r) => ({ name: r.name, path: r.path, rules: nameRulesOf(r.filters) })),
    walker ? { walker } : {},
  );
}
