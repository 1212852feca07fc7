/**
 * The after-archive policy of a root (`afterArchive: { action: delete | move, ... }`): a local
 * file is deleted, or moved to `moveTo`, once it is safely archived. Guarantees, per file:
 * - at least `minCopies` targets hold a copy whose provider hash was verified (at upload, or by a
 *   later verify/scrub with `verifiedBy: scrub`), and no upload of it is in flight (deliveries
 *   pending to other, parked or slow, targets do not hold it back: they end as skipped, source gone);
 * - it is older than `minAge` and unchanged since it was archived: opened without following
 *   symlinks, its descriptor's size, mtime and inode equal the journal's; just before the removal
 *   the path still names that very file (same device and inode) with the same size and mtime;
 * - the removal is journaled ('intent') before it happens and settled after ('done'); a crash in
 *   between is finished at the next sweep from the file system's state (see finishOpenRemovals);
 * - a move goes through rename (or, across devices, a flushed copy renamed into place before the
 *   source is unlinked), never over an existing file; folders left empty are removed, the root
 *   never; `dryRun` logs what would go and touches nothing.
 */
import { constants, type Stats } from 'node:fs';
import { copyFile, lstat, mkdir, open, rename, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AllEvents } from '../pipeline/topology.js';
import type { AuditStore, OpenRemoval, RemovalCandidate } from '../state/audit.js';
import type { EventBus } from '../telemetry/bus.js';

export interface AfterArchivePolicy {
  action: 'keep' | 'delete' | 'move';
  moveTo?: string | undefined;
  minCopies: number;
  minAge: number;
  verifiedBy: 'upload' | 'scrub';
  dryRun: boolean;
}

export interface PolicyRoot {
  name: string;
  path: string;
  afterArchive?: AfterArchivePolicy | undefined;
}

export interface SweepResult {
  removed: Array<{ root: string; relPath: string; bytes: number; dest: string | null }>;
  kept: Array<{ root: string; relPath: string; reason: string }>;
  /** dryRun: what would have been removed. */
  wouldRemove: Array<{ root: string; relPath: string; bytes: number }>;
}

export interface SweepContext {
  audit: AuditStore;
  log: Logger;
  bus?: Pick<EventBus<AllEvents>, 'emit'> | undefined;
  now?: () => number;
  /** Test hook: called between the checks and the removal. */
  beforeRemove?: (src: string) => Promise<void> | void;
}

const TEMP_SUFFIX = '.stagecoach-move';

function srcOf(c: { rootPath: string; relPath: string }): string {
  return path.join(c.rootPath, ...c.relPath.split('/'));
}

function destOf(policy: AfterArchivePolicy, relPath: string): string | null {
  return policy.action === 'move' ? path.join(policy.moveTo!, ...relPath.split('/')) : null;
}

async function lstatOrNull(p: string): Promise<Stats | null> {
  try {
    return await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Same mtime to the millisecond: the journal may keep it truncated (the file system has ns). */
function sameTime(a: number, b: number): boolean {
  return Math.floor(a) === Math.floor(b);
}

function sameFile(a: Stats, b: { size: number; mtimeMs: number; ino: number }): boolean {
  return a.isFile() && a.size === b.size && sameTime(a.mtimeMs, b.mtimeMs) && a.ino === b.ino;
}

function describeChange(now: Stats, was: { size: number; mtimeMs: number; ino: number }): string {
  const parts: string[] = [];
  if (!now.isFile()) parts.push('no longer a regular file');
  if (now.size !== was.size) parts.push(`size ${was.size} → ${now.size}`);
  if (!sameTime(now.mtimeMs, was.mtimeMs)) parts.push(`mtime ${new Date(was.mtimeMs).toISOString()} → ${new Date(now.mtimeMs).toISOString()} (${was.mtimeMs} → ${now.mtimeMs})`);
  if (now.ino !== was.ino) parts.push(`inode ${was.ino} → ${now.ino}`);
  return parts.join(', ');
}

/** Removes the folders `file` leaves empty, up to (not including) `root`. */
async function pruneEmpty(file: string, root: string): Promise<void> {
  let dir = path.dirname(file);
  const top = path.resolve(root);
  while (dir.startsWith(top + path.sep) && dir !== top) {
    try {
      await rmdir(dir);
    } catch {
      return; // not empty, or not ours to remove: stop here
    }
    dir = path.dirname(dir);
  }
}

/** Moves `src` to `dest` (never over a file there): rename, or across devices a flushed copy first. */
async function moveFile(src: string, dest: string): Promise<void> {
  await mkdir(path.dirname(dest), { recursive: true });
  if (await lstatOrNull(dest)) throw Object.assign(new Error(`${dest} exists`), { code: 'EEXIST' });
  try {
    await rename(src, dest);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const tmp = dest + TEMP_SUFFIX;
  await copyFile(src, tmp, constants.COPYFILE_EXCL);
  const fh = await open(tmp, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, dest);
  await unlink(src);
}

/**
 * Finishes removals a crash interrupted, from what the file system shows: the source gone means
 * it happened (a move's copy is renamed into place before the source goes); the source still
 * there means it did not (a leftover copy of a move is removed, or a completed one lets the
 * source go). Each is settled so it is not left open.
 */
export async function finishOpenRemovals(ctx: SweepContext, roots?: readonly PolicyRoot[]): Promise<void> {
  // `roots`: this daemon's, by its own paths. On a journal shared by several daemons the others'
  // removals are theirs to finish (their paths may not exist here).
  const mine = roots && new Map(roots.map((r) => [r.name, r.path]));
  for (const r of await ctx.audit.openRemovals()) {
    if (!mine) await finishOne(ctx, r);
    else if (mine.has(r.root)) await finishOne(ctx, { ...r, rootPath: mine.get(r.root)! });
  }
}

async function finishOne(ctx: SweepContext, r: OpenRemoval): Promise<void> {
  const src = srcOf(r);
  const st = await lstatOrNull(src);
  if (r.action === 'move' && r.dest !== null) {
    await rm(r.dest + TEMP_SUFFIX, { force: true });
    const d = await lstatOrNull(r.dest);
    if (st && d && d.size === r.size && sameFile(st, r)) {
      // The copy was renamed into place; only the source's unlink was missing.
      await unlink(src);
      await ctx.audit.settleRemoval(r.id, 'done', 'finished after a restart');
      return;
    }
    if (!st) {
      await ctx.audit.settleRemoval(r.id, 'done', d ? 'moved before a restart' : 'the source was gone after a restart');
      if (!d) ctx.log.error({ root: r.root, relPath: r.relPath, dest: r.dest }, 'after a restart neither the file nor its moved copy is there');
      return;
    }
  } else if (!st) {
    await ctx.audit.settleRemoval(r.id, 'done', 'deleted before a restart');
    return;
  }
  await ctx.audit.settleRemoval(r.id, 'kept', 'interrupted before the removal; checked again by the next sweep');
}

/** One pass of one root's policy; see the module comment. */
export async function sweepRoot(root: PolicyRoot, ctx: SweepContext): Promise<SweepResult> {
  const out: SweepResult = { removed: [], kept: [], wouldRemove: [] };
  const policy = root.afterArchive;
  if (!policy || policy.action === 'keep') return out;
  const now = ctx.now ?? Date.now;
  for (const c of await ctx.audit.removalCandidates(root.name, policy.minCopies, policy.verifiedBy)) {
    if (now() - c.mtimeMs < policy.minAge) continue;
    await one(root, policy, c, ctx, out);
  }
  return out;
}

async function one(root: PolicyRoot, policy: AfterArchivePolicy, c: RemovalCandidate, ctx: SweepContext, out: SweepResult): Promise<void> {
  // This daemon's path of the root (the journal's is the last writer's on a shared journal).
  const src = srcOf({ rootPath: root.path, relPath: c.relPath });
  const dest = destOf(policy, c.relPath);
  let fh;
  try {
    fh = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // gone already: nothing to free
    out.kept.push({ root: root.name, relPath: c.relPath, reason: `cannot open: ${code ?? String(err)}` });
    return;
  }
  let removed = false;
  let id: number | null = null;
  try {
    const held = await fh.stat();
    const kept = async (reason: string): Promise<void> => {
      if (id === null) id = await ctx.audit.recordRemoval({ fileId: c.fileId, action: policy.action as 'delete' | 'move', dest, size: c.size, mtimeMs: c.mtimeMs, ino: c.ino, dev: held.dev, copies: c.copies });
      await ctx.audit.settleRemoval(id, 'kept', reason);
      out.kept.push({ root: root.name, relPath: c.relPath, reason });
      ctx.log.info({ root: root.name, relPath: c.relPath, reason }, 'after-archive: kept');
    };
    if (!sameFile(held, c)) return await kept(`changed since it was archived (${describeChange(held, c)}): it is archived again first`);
    if (policy.dryRun) {
      out.wouldRemove.push({ root: root.name, relPath: c.relPath, bytes: c.size });
      ctx.log.info({ root: root.name, relPath: c.relPath, bytes: c.size, action: policy.action, copies: c.copies }, 'after-archive (dry run): would remove');
      return;
    }
    id = await ctx.audit.recordRemoval({ fileId: c.fileId, action: policy.action as 'delete' | 'move', dest, size: c.size, mtimeMs: c.mtimeMs, ino: c.ino, dev: held.dev, copies: c.copies });
    await ctx.beforeRemove?.(src);
    // The path must still name the file checked, unchanged.
    const now1 = await fh.stat();
    const at = await lstatOrNull(src);
    if (!at || at.dev !== held.dev || at.ino !== held.ino || !sameFile(now1, c)) return await kept('changed while it was being removed');
    if (policy.action === 'delete') await unlink(src);
    else {
      try {
        await moveFile(src, dest!);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return await kept(`a file is already at ${dest}`);
        throw err;
      }
    }
    removed = true;
    await ctx.audit.settleRemoval(id, 'done', null);
    out.removed.push({ root: root.name, relPath: c.relPath, bytes: c.size, dest });
    ctx.log.info({ root: root.name, relPath: c.relPath, bytes: c.size, action: policy.action, ...(dest ? { dest } : {}), copies: c.copies }, 'after-archive: removed');
    ctx.bus?.emit('file.remove', { root: root.name, relPath: c.relPath, bytes: c.size, action: policy.action as 'delete' | 'move', copies: c.copies });
  } finally {
    await fh.close();
    if (removed) await pruneEmpty(src, root.path);
  }
}

export interface AfterArchive {
  /** One sweep of every root with a policy (rounds never overlap). */
  sweep(): Promise<SweepResult>;
  /** Stops the timer, waits for the sweep under way. Idempotent. */
  stop(): Promise<void>;
}

/** Sweeps every `everyMs` (and once at start, after finishing what a crash interrupted). */
export function startAfterArchive(roots: readonly PolicyRoot[], ctx: SweepContext, everyMs = 10_000): AfterArchive {
  const active = roots.filter((r) => r.afterArchive && r.afterArchive.action !== 'keep');
  let running: Promise<SweepResult> | null = null;
  let stopped = false;
  let recovered = false;
  const sweep = (): Promise<SweepResult> => {
    if (running !== null) return running;
    running = (async () => {
      const total: SweepResult = { removed: [], kept: [], wouldRemove: [] };
      if (!recovered) {
        await finishOpenRemovals(ctx, active);
        recovered = true;
      }
      for (const r of active) {
        if (stopped) break;
        const res = await sweepRoot(r, ctx);
        total.removed.push(...res.removed);
        total.kept.push(...res.kept);
        total.wouldRemove.push(...res.wouldRemove);
      }
      return total;
    })()
      .catch((err: unknown) => {
        ctx.log.error({ err }, 'after-archive sweep failed; the next one tries again');
        return { removed: [], kept: [], wouldRemove: [] };
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = setInterval(() => void sweep(), everyMs);
  timer.unref();
  if (active.length > 0) void sweep();
  return {
    sweep,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
