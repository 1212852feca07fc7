/**
 * Restore: files of the journal brought back from whichever target still holds a good copy.
 *
 * For each file, the targets are tried in the order given: a target is skipped, with the reason
 * kept, when the file is not archived there, when it cannot download, when its copy is gone, or
 * when its copy's size or provider hash differs from the journal (before any byte is written, when
 * the lookup reports the hash, and always after, on the bytes read). The bytes go to a temp file
 * next to the destination, named after the target and the archived hash, so a cut download
 * resumes from where it stopped on a target with ranged downloads; they are flushed, given the
 * archived mtime, and linked into place only once their hash matches. An existing file is never
 * replaced unless `overwrite`.
 */
import { createReadStream } from 'node:fs';
import { link, lstat, mkdir, open, rename, rm, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { createHasher } from '../archive/hash.js';
import type { JournalFile } from '../state/audit.js';
import type { Target } from '../targets/target.js';

/** Why a target did not give a file back, or which one did. */
export interface RestoreAttempt {
  target: string;
  outcome: 'restored' | 'not-archived' | 'cannot-download' | 'missing' | 'altered' | 'error';
  detail: string;
}

export interface RestoreResult {
  /** `<root>/<path inside the root>`. */
  key: string;
  dest: string;
  /** The target the file came from; null when none could give it. */
  from: string | null;
  /** Skipped: the destination exists and `overwrite` is off. */
  skipped: boolean;
  attempts: RestoreAttempt[];
  /** Bytes read from the target that gave the file (less than its size when resumed). */
  bytesRead: number;
}

export interface RestoreOptions {
  /** Targets in the order to try them. */
  targets: readonly Target[];
  /** Below this folder as `<root>/<path>`; absent: back where the file was archived from. */
  to?: string | undefined;
  overwrite?: boolean;
  onResult?: (r: RestoreResult) => void;
  signal?: AbortSignal;
}

const GLOB_CHARS = /[*?[\]{}!]/;

/** The journal's files that `patterns` name: a file, a folder or a root (everything below), or a glob, all as `<root>/<path>`. */
export function selectFiles(files: readonly JournalFile[], patterns: readonly string[]): JournalFile[] {
  const tests = patterns.map((raw) => {
    const p = raw.replace(/\\/g, '/').replace(/^\/+|\/+$/g, '').normalize('NFC');
    if (GLOB_CHARS.test(p)) {
      const m = picomatch(p, { dot: true });
      const below = picomatch(`${p}/**`, { dot: true });
      return (k: string) => m(k) || below(k);
    }
    return (k: string) => k === p || k.startsWith(`${p}/`);
  });
  return files.filter((f) => {
    const k = keyOf(f);
    return tests.some((t) => t(k));
  });
}

export function keyOf(f: JournalFile): string {
  return `${f.root}/${f.relPath}`;
}

/** Where a file goes: below `to` as `<root>/<path>`, or its own place in its root. */
export function destinationOf(f: JournalFile, to: string | undefined): string {
  const parts = f.relPath.split('/');
  return to === undefined ? path.join(f.rootPath, ...parts) : path.join(to, f.root, ...parts);
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Puts `tmp` at `dest`: without overwrite, a hard link that fails if dest appeared meanwhile. */
async function place(tmp: string, dest: string, overwrite: boolean): Promise<void> {
  if (overwrite) {
    await rename(tmp, dest);
    return;
  }
  try {
    await link(tmp, dest);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      // Someone else's file appeared meanwhile: it stays; our verified copy goes.
      await rm(tmp, { force: true });
      throw err;
    }
    // No hard links on this filesystem: check, then rename (a small window, said in the docs).
    if (await exists(dest)) {
      await rm(tmp, { force: true });
      throw Object.assign(new Error(`${dest} exists`), { code: 'EEXIST' });
    }
    await rename(tmp, dest);
    return;
  }
  await unlink(tmp);
}

/** One file from one target; throws a reason for the next target. */
async function fromTarget(t: Target, f: JournalFile, dest: string, overwrite: boolean, signal?: AbortSignal): Promise<{ outcome: RestoreAttempt['outcome']; detail: string; bytesRead: number }> {
  const copy = f.copies.find((c) => c.target === t.id);
  if (!copy || copy.status !== 'done' || copy.remoteHash === null) {
    return { outcome: 'not-archived', detail: `not archived on ${t.id}${copy ? ` (${copy.status.replace('_', ' ')})` : ''}`, bytesRead: 0 };
  }
  if (!t.download) return { outcome: 'cannot-download', detail: `${t.id} (${t.type}) cannot download`, bytesRead: 0 };
  const want = copy.remoteHash.toLowerCase();
  const dir = path.dirname(dest);
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(dest)}.${t.id}.${want.replace(/[^a-z0-9]/gi, '').slice(0, 16)}.stagecoach-part`);
  // Resume only where the provider sends ranges; else a partial file is of no use.
  let have = 0;
  if (t.features.rangedDownload) {
    try {
      const st = await lstat(tmp);
      if (st.isFile() && st.size < f.size) have = st.size;
    } catch {
      have = 0;
    }
  }
  const d = await t.download({ remotePath: copy.remotePath, start: have, ...(signal ? { signal } : {}) });
  if (!d) return { outcome: 'missing', detail: `no copy on ${t.id}`, bytesRead: 0 };
  if (d.size !== f.size || (d.hash !== null && d.hash.toLowerCase() !== want)) {
    d.stream.destroy();
    return { outcome: 'altered', detail: `the copy on ${t.id} was altered (${d.size} bytes, ${t.features.hashKind} ${d.hash ?? '?'}; archived: ${f.size} bytes, ${want})`, bytesRead: 0 };
  }
  const hasher = createHasher(t.features.hashKind);
  if (have > 0) for await (const c of createReadStream(tmp, { end: have - 1 })) hasher.update(c as Buffer);
  const fh = await open(tmp, have > 0 ? 'a' : 'w', 0o600);
  let read = 0;
  try {
    for await (const chunk of d.stream) {
      const b = chunk as Buffer;
      hasher.update(b);
      read += b.length;
      await fh.write(b);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  const got = hasher.digest().toLowerCase();
  if (have + read !== f.size || got !== want) {
    await rm(tmp, { force: true });
    return { outcome: 'altered', detail: `the bytes read from ${t.id} do not match the archive (${have + read} bytes, ${t.features.hashKind} ${got}; archived: ${f.size} bytes, ${want})`, bytesRead: read };
  }
  const mtime = new Date(f.mtimeMs);
  await utimes(tmp, mtime, mtime);
  await place(tmp, dest, overwrite);
  return { outcome: 'restored', detail: `from ${t.id}${have > 0 ? ` (resumed at byte ${have})` : ''}`, bytesRead: read };
}

/** Restores each file; see the module comment. Never throws for one file's trouble: it is in that file's result. */
export async function restoreFiles(files: readonly JournalFile[], o: RestoreOptions): Promise<RestoreResult[]> {
  const results: RestoreResult[] = [];
  for (const f of files) {
    const dest = destinationOf(f, o.to);
    const r: RestoreResult = { key: keyOf(f), dest, from: null, skipped: false, attempts: [], bytesRead: 0 };
    if (!o.overwrite && (await exists(dest))) {
      r.skipped = true;
    } else {
      for (const t of o.targets) {
        if (o.signal?.aborted) break;
        let a: { outcome: RestoreAttempt['outcome']; detail: string; bytesRead: number };
        try {
          a = await fromTarget(t, f, dest, o.overwrite ?? false, o.signal);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
            r.skipped = true;
            break;
          }
          a = { outcome: 'error', detail: `${t.id}: ${message(err)}`, bytesRead: 0 };
        }
        r.attempts.push({ target: t.id, outcome: a.outcome, detail: a.detail });
        if (a.outcome === 'restored') {
          r.from = t.id;
          r.bytesRead = a.bytesRead;
          break;
        }
      }
    }
    results.push(r);
    o.onResult?.(r);
  }
  return results;
}

/** Per target, whether it holds a good copy of `f` now (a lookup each). */
export async function listCopies(f: JournalFile, targets: readonly Target[]): Promise<Array<{ target: string; state: 'ok' | 'missing' | 'altered' | 'not archived' | 'error'; detail: string }>> {
  return Promise.all(
    targets.map(async (t) => {
      const copy = f.copies.find((c) => c.target === t.id);
      if (!copy || copy.status !== 'done') return { target: t.id, state: 'not archived' as const, detail: copy ? copy.status.replace('_', ' ') : 'no delivery' };
      try {
        const st = await t.stat(copy.remotePath);
        if (!st) return { target: t.id, state: 'missing' as const, detail: `no file at ${copy.remotePath}` };
        if (st.size !== f.size || (st.hash !== null && copy.remoteHash !== null && st.hash.toLowerCase() !== copy.remoteHash.toLowerCase())) {
          return { target: t.id, state: 'altered' as const, detail: `${st.size} bytes, ${t.features.hashKind} ${st.hash ?? '?'}` };
        }
        return { target: t.id, state: 'ok' as const, detail: `${st.size} bytes, ${t.features.hashKind} ${st.hash ?? '(size only)'}${t.download ? '' : ', cannot download'}` };
      } catch (err) {
        return { target: t.id, state: 'error' as const, detail: message(err) };
      }
    }),
  );
}
