/**
 * An in-memory target, for tests of the pipeline and of the conformance suite itself. It keeps
 * the contract the way a cloud would (temp entry while streaming, atomic commit, size and hash
 * checks, NFC names, idempotent re-puts) unless told to break one rule with `broken`.
 */
import { randomBytes } from 'node:crypto';
import { addAbortSignal, type Readable } from 'node:stream';
import { ConfigError } from '../../errors.js';
import { CountingHashStream, hashBuffer, verifySize } from '../../archive/hash.js';
import type { DownloadRequest, Features, PutRequest, PutResult, RemoteDownload, RemoteStat, Target } from '../target.js';
import { memoryDownload } from './download.js';
import { MAX_NAME_BYTES, mapLocalPath, tempName } from '../local/names.js';
import type { MemoryTargetOptions } from './api-types.js';
import { classify } from './classify.js';
import { abortError } from '../kit/abort.js';
import { createLifecycle } from '../kit/lifecycle.js';
import { toBuffer } from '../kit/chunks.js';

/** The memory target throws its errors as they are. */
const asThrown = (err: unknown): unknown => err;

export type { MemoryBrokenMode, MemoryTargetOptions } from './api-types.js';

/** A stored file (or the temp entry of a put under way). Appends are O(1); bytes join lazily. */
class Entry {
  #parts: Buffer[] = [];
  constructor(
    /** The full path as first stored (its spelling survives a case-insensitive overwrite). */
    readonly path: string,
    readonly mtimeMs: number,
  ) {}
  append(chunk: Buffer): void {
    this.#parts.push(chunk);
  }
  get bytes(): Buffer {
    if (this.#parts.length !== 1) this.#parts = [Buffer.concat(this.#parts)];
    return this.#parts[0]!;
  }
  set bytes(b: Buffer) {
    this.#parts = [b];
  }
}

/** A memory target: a Target plus what tests need to look inside it. */
export interface MemoryTarget extends Target {
  /** The stored bytes at `remotePath` (NFC, case folded when case-insensitive), or null. */
  readBack(remotePath: string): Buffer | null;
  /** Every stored path, temp entries included, sorted. */
  listAll(): string[];
  /** The mtime stored with the file, or null when there is none. */
  mtimeOf(remotePath: string): number | null;
  /** Counters: puts called, puts that wrote (were not unchanged), source opens. */
  readonly stats: { puts: number; writes: number; opens: number };
}

function splitPath(path: string): { dir: string; name: string } {
  const i = path.lastIndexOf('/');
  return i < 0 ? { dir: '', name: path } : { dir: path.slice(0, i), name: path.slice(i + 1) };
}

/**
 * Makes a memory target. Without `broken` it passes the conformance suite; each `broken` mode
 * breaks exactly the rule its doc comment names (see MemoryBrokenMode). Synchronous: it needs
 * no context and touches nothing outside the process.
 */
export function createMemoryTarget(options: MemoryTargetOptions): MemoryTarget {
  if (typeof options?.id !== 'string' || options.id.length === 0) {
    throw new ConfigError('id', `Expected \`id\` to be a non-empty string, got ${JSON.stringify(options?.id)}`);
  }
  const id = options.id;
  const broken = options.broken;
  const hashKind = options.hashKind ?? 'sha256';
  const caseInsensitive = options.caseInsensitive ?? false;
  const maxNameBytes = broken === 'long-names' ? Number.POSITIVE_INFINITY : (options.maxNameBytes ?? MAX_NAME_BYTES);
  const features: Features = Object.freeze({
    hashKind,
    caseInsensitive,
    simpleUploadMax: Number.POSITIVE_INFINITY,
    chunkSize: 1024 * 1024,
    resumable: false,
    rangedDownload: true,
  });
  // folder key → (name key → entry). The root folder is ''.
  const folders = new Map<string, Map<string, Entry>>([['', new Map()]]);
  const stats = { puts: 0, writes: 0, opens: 0 };
  const life = createLifecycle(id, 'memory');

  const fold = (s: string): string => (caseInsensitive ? s.toLowerCase() : s);

  function mapPath(remotePath: string): string {
    const mapped = mapLocalPath(remotePath, id, maxNameBytes);
    return broken === 'no-nfc' ? remotePath : mapped;
  }

  async function folderOf(dir: string): Promise<Map<string, Entry>> {
    const parts = dir === '' ? [] : dir.split('/');
    let folder = folders.get('')!;
    for (let i = 1; i <= parts.length; i++) {
      const key = fold(parts.slice(0, i).join('/'));
      let f = folders.get(key);
      if (!f) {
        if (broken === 'racy-folders') {
          // The bug on purpose: look, yield, then create, so a concurrent creator's folder
          // (and the files already in it) is replaced by an empty one.
          await Promise.resolve();
          await new Promise<void>((r) => setImmediate(r));
        }
        f = new Map();
        folders.set(key, f);
      }
      folder = f;
    }
    return folder;
  }

  function find(remotePath: string): Entry | null {
    let path: string;
    try {
      path = mapPath(remotePath);
    } catch {
      return null;
    }
    const { dir, name } = splitPath(path);
    return folders.get(fold(dir))?.get(fold(name)) ?? null;
  }

  async function put(req: PutRequest): Promise<PutResult> {
    stats.puts++;
    const honourAbort = broken !== 'ignore-abort';
    const signal = honourAbort ? req.signal : undefined;
    if (signal?.aborted) throw abortError(id, signal);
    const path = mapPath(req.remotePath);
    const { dir, name } = splitPath(path);
    const folder = await folderOf(dir);
    const finalKey = fold(name);
    const previous = folder.get(finalKey);
    const tmpName = tempName(name, randomBytes(6).toString('hex'));
    const tmpKey = fold(tmpName);
    const tmpPath = dir === '' ? tmpName : `${dir}/${tmpName}`;
    const writeKey = broken === 'half-write' ? finalKey : tmpKey;
    const entry = new Entry(broken === 'half-write' ? (previous?.path ?? path) : tmpPath, 0);
    const counter = new CountingHashStream([hashKind], broken === 'no-verify' ? {} : { maxBytes: req.size });
    let committed = false;
    let src: Readable | undefined;
    try {
      stats.opens++;
      src = req.open();
      if (signal) addAbortSignal(signal, src);
      folder.set(writeKey, entry);
      for await (const raw of src) {
        const chunk = toBuffer(raw);
        counter.feed(chunk);
        entry.append(chunk);
      }
      if (broken !== 'no-verify') verifySize(req.size, counter.bytes);
      if (signal?.aborted) throw abortError(id, signal);
      const hash = counter.digest(hashKind);
      if (broken !== 'not-idempotent' && previous && previous.bytes.equals(entry.bytes)) {
        folder.delete(writeKey);
        if (broken === 'half-write') folder.set(finalKey, previous);
        committed = true;
        return { remoteId: previous.path, size: previous.bytes.length, hash, hashKind, unchanged: true, bytesSent: 0 };
      }
      if (broken === 'truncate' && entry.bytes.length > 0) entry.bytes = entry.bytes.subarray(0, entry.bytes.length - 1);
      folder.delete(writeKey);
      const stored = new Entry(previous?.path ?? path, broken === 'drops-mtime' ? 0 : req.mtimeMs);
      stored.bytes = entry.bytes;
      folder.set(finalKey, stored);
      committed = true;
      stats.writes++;
      const reported = broken === 'wrong-hash' ? hashBuffer(hashKind, Buffer.concat([stored.bytes, Buffer.from([0])])) : hash;
      return { remoteId: stored.path, size: req.size, hash: reported, hashKind, unchanged: false, bytesSent: counter.bytes };
    } catch (err) {
      if (signal?.aborted) throw abortError(id, signal);
      throw err;
    } finally {
      src?.destroy();
      if (!committed && broken !== 'leak-temp' && broken !== 'half-write') folder.delete(writeKey);
    }
  }

  return {
    id,
    type: 'memory',
    features,
    put: (req) => life.run(() => put(req), asThrown),
    stat(remotePath: string): Promise<RemoteStat | null> {
      return life.run(async () => {
        const e = find(remotePath);
        return e ? { remoteId: e.path, size: e.bytes.length, hash: hashBuffer(hashKind, e.bytes) } : null;
      }, asThrown);
    },
    download(req: DownloadRequest): Promise<RemoteDownload | null> {
      return life.run(async () => memoryDownload(id, find(req.remotePath), (b) => hashBuffer(hashKind, b), req), asThrown);
    },
    ensureFolder(remotePath: string): Promise<string> {
      return life.run(async () => {
        if (remotePath === '') return '';
        const path = mapPath(remotePath);
        await folderOf(path);
        return path;
      }, asThrown);
    },
    classify,
    check: () => life.run(async () => `memory target ${id}: ${listAll().length} files`, asThrown),
    close: life.close,
    readBack(remotePath: string): Buffer | null {
      const e = find(remotePath);
      return e ? Buffer.from(e.bytes) : null;
    },
    listAll,
    mtimeOf(remotePath: string): number | null {
      return find(remotePath)?.mtimeMs ?? null;
    },
    stats,
  };

  function listAll(): string[] {
    const out: string[] = [];
    for (const folder of folders.values()) for (const e of folder.values()) out.push(e.path);
    return out.sort();
  }
}

/** The memory target's factory, in the registry's shape (the context is not needed). */
