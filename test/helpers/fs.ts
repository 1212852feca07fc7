import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A fresh temp folder, removed by the returned cleanup. */
export async function tempDir(prefix = 'stagecoach-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function sha256File(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** Every file under `dir`, relative, POSIX separators, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    let entries;
    try {
      entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else out.push(r);
    }
  };
  await walk('');
  return out.sort();
}

/**
 * Waits until `check` returns a truthy value, polling every `everyMs`, for at most `timeoutMs`;
 * then throws with `what` and the last value seen. Bounded: never loops forever.
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Time for `items` pieces of work: `baseMs`, plus `perItemMs` for each. */
export function timeFor(items: number, perItemMs: number, baseMs = 5_000): number {
  return baseMs + items * perItemMs;
}

/**
 * Waits until `pending()` lists nothing, polling every `everyMs`, for at most `timeoutMs` (give it
 * time in proportion to the work: `timeFor`); then throws with `what` and what was still pending.
 */
export async function waitForWork(what: string, timeoutMs: number, pending: () => readonly string[] | Promise<readonly string[]>, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await pending();
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      const shown = left.slice(0, 20).join(', ') + (left.length > 20 ? `, … (${left.length - 20} more)` : '');
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; still pending (${left.length}): ${shown}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `promise`, or after `timeoutMs` an error with `what` and what `pending()` says is left. */
export async function within<T>(what: string, timeoutMs: number, promise: Promise<T>, pending: () => string | Promise<string>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  try {
    const r = await Promise.race([promise, late]);
    if (r === 'late') throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; still pending: ${await pending()}`);
    return r as T;
  } finally {
    clearTimeout(timer);
  }
}

/** Deterministic pseudo-random bytes (for content that must differ file to file). */
export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}
