/**
 * Dropbox's upload routes: `files/upload` (one request ≤ 150 MiB) and the upload sessions
 * (`upload_session/start`, `append_v2`, `finish` on content.dropboxapi.com; `finish_batch_v2` on
 * api.dropboxapi.com), sequential and concurrent, with the documented errors:
 * - sequential: the cursor offset must equal the bytes received, else 409 `incorrect_offset`
 *   with `correct_offset` (finish wraps it: `lookup_failed/incorrect_offset`);
 * - concurrent: offsets and sizes in multiples of 4 MiB, no data on start or finish, close
 *   before finish, all pieces present;
 * - `content_hash` covers the bytes of that one request and is checked against them;
 * - a commit follows WriteMode (add / overwrite / update rev), autorename, strict_conflict;
 *   identical content at the target writes nothing and is no conflict;
 * - a failed `files/upload` keeps its bytes in a closed session whose id comes back in the error
 *   (`upload_session_id`), so the commit can be retried with `upload_session/finish`.
 */
import { createHash } from 'node:crypto';
import { DropboxContentHasher } from '../../../src/archive/dropbox-hash.js';
import type { BlobInfo } from '../harness/index.js';
import { SessionFile } from '../harness/index.js';
import {
  boolArg,
  checkUploadContentType,
  contentArgs,
  contentHashArg,
  drain,
  MiB,
  receive,
  receiveInto,
  routeError,
  SESSION_TTL_MS,
  unionTag,
  type Answer,
  type Ctx,
  type Received,
  type UploadSession,
} from './context.js';
import { badInput, type Tagged } from './errors.js';
import { dropboxTime, fileMetadata, parseWritePath, TIMESTAMP_RE, type FileNode } from './model.js';

const BLOCK = 4 * MiB;

interface CommitInfo {
  parsed: { parts: string[]; lower: string } | { problem: 'malformed_path' | 'disallowed_name' };
  mode: { tag: 'add' | 'overwrite' } | { tag: 'update'; rev: string };
  autorename: boolean;
  strictConflict: boolean;
  clientModified: string | undefined;
}

/** Validates a CommitInfo (the args of `upload`, the `commit` of a finish): bad input is a 400. */
function parseCommit(ctx: Ctx, c: unknown, prefix: string): CommitInfo {
  if (!c || typeof c !== 'object') throw badInput(ctx.route, `request body: ${prefix || 'commit'}: missing required field`);
  const args = c as Record<string, unknown>;
  const parsed = parseWritePath(ctx.route, `${prefix}path`, args.path);
  const m = unionTag(args.mode ?? 'add');
  let mode: CommitInfo['mode'];
  if (m && (m.tag === 'add' || m.tag === 'overwrite')) mode = { tag: m.tag };
  else if (m && m.tag === 'update' && typeof m.value.update === 'string' && /^[0-9a-f]{9,}$/.test(m.value.update)) mode = { tag: 'update', rev: m.value.update };
  else throw badInput(ctx.route, `request body: ${prefix}mode: unknown tag or missing rev`);
  const cm = args.client_modified;
  if (cm !== undefined && cm !== null && (typeof cm !== 'string' || !TIMESTAMP_RE.test(cm))) {
    throw badInput(ctx.route, `request body: ${prefix}client_modified: time data '${String(cm)}' does not match format '%Y-%m-%dT%H:%M:%SZ'`);
  }
  boolArg(ctx, args, 'mute');
  return {
    parsed,
    mode,
    autorename: boolArg(ctx, args, 'autorename'),
    strictConflict: boolArg(ctx, args, 'strict_conflict'),
    clientModified: typeof cm === 'string' ? cm : undefined,
  };
}

type CommitResult = { node: FileNode; stored: boolean } | { writeError: Tagged };

/**
 * Commits `blob` at the commit's path. On success the blob belongs to the namespace when
 * `stored`; when nothing was written (identical content) or on a write error, the caller still
 * owns it.
 */
async function commit(ctx: Ctx, info: CommitInfo, blob: BlobInfo, size: number, contentHash: string): Promise<CommitResult> {
  if ('problem' in info.parsed) return { writeError: { '.tag': info.parsed.problem } };
  const { parts, lower } = info.parsed;
  const conflict = (tag: string): CommitResult => ({ writeError: { '.tag': 'conflict', conflict: { '.tag': tag } } });
  if (ctx.ns.ancestorConflict(parts)) return conflict('file_ancestor');
  const parentLower = lower.slice(0, lower.lastIndexOf('/'));
  let name = parts.at(-1)!;
  let replaced: FileNode | undefined;
  const existing = ctx.ns.get(lower);
  if (existing?.kind === 'folder') {
    if (!info.autorename) return conflict('folder');
    name = ctx.ns.freeName(parentLower, name);
  } else if (existing?.kind === 'file') {
    if (existing.size === size && existing.contentHash === contentHash) return { node: existing, stored: false };
    if (info.mode.tag === 'overwrite' || (info.mode.tag === 'update' && info.mode.rev === existing.rev)) {
      replaced = existing;
    } else if (!info.autorename) {
      return conflict('file');
    } else {
      name = ctx.ns.freeName(parentLower, name, info.mode.tag === 'update' ? 'conflicted copy' : undefined);
    }
  } else if (info.mode.tag === 'update' && info.strictConflict) {
    if (!info.autorename) return conflict('file');
    name = ctx.ns.freeName(parentLower, name, 'conflicted copy');
  }
  if (ctx.ns.used() - (replaced?.size ?? 0) + size > ctx.state.quotaBytes) return { writeError: { '.tag': 'insufficient_space' } };

  const now = Date.now();
  const parentDisplay = ctx.ns.ensureParents(parts);
  let node = ctx.ns.putFile({ name, size, contentHash, clientModified: info.clientModified ?? dropboxTime(now), blob, parentDisplay }, now);
  if (replaced && replaced.blob.file !== blob.file) await ctx.blobs.remove(replaced.blob);
  if (ctx.state.corruptCommits > 0) {
    // Storage going bad after the bytes were received and checked: the hash the server reports
    // is the one of what it holds, and no longer matches what the client sent.
    ctx.state.corruptCommits--;
    await ctx.blobs.corrupt(blob);
    node = { ...node, contentHash: await hashBlob(ctx, blob) };
    ctx.ns.patch(node);
  }
  return { node, stored: true };
}

async function hashBlob(ctx: Ctx, blob: BlobInfo): Promise<string> {
  return (await ctx.blobs.hash(blob, { ch: () => new DropboxContentHasher() })).ch;
}

function newSessionId(ctx: Ctx): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
  let s = 'pid_upload_session:';
  for (let i = 0; i < 48; i++) s += abc[Math.floor(ctx.state.random() * abc.length)];
  return s;
}

/** A new session, not yet listed (`open` lists it), its bytes in `content` (a new file when not given). */
async function newSession(ctx: Ctx, type: UploadSession['type'], content?: SessionFile<Record<string, never>>): Promise<UploadSession> {
  return {
    id: newSessionId(ctx),
    type,
    createdAt: Date.now(),
    content: content ?? (await SessionFile.create(ctx.blobs, {})),
    blocks: { digests: new Map(), partial: new Map() },
    parts: new Map(),
    size: 0,
    closed: false,
    committed: false,
    end: null,
  };
}

function open(ctx: Ctx, s: UploadSession): void {
  ctx.state.sessions.set(s.id, s);
}

/** Notes an accepted piece's block digests at its place in the session (see UploadSession.blocks). */
function noteBlocks(s: UploadSession, offset: number, got: { size: number; blockDigests: readonly Buffer[] }): void {
  if (s.blocks === null || got.size === 0) return;
  if (offset % BLOCK !== 0) {
    s.blocks = null;
    return;
  }
  const first = offset / BLOCK;
  got.blockDigests.forEach((d, i) => {
    s.blocks!.digests.set(first + i, d);
    s.blocks!.partial.delete(first + i);
  });
  if (got.size % BLOCK !== 0) s.blocks.partial.set(first + got.blockDigests.length - 1, offset + got.size);
}

/** The content hash of a session's `size` bytes from its blocks' digests; null when they cannot give it. */
function hashFromBlocks(s: UploadSession, size: number): string | null {
  if (s.blocks === null) return null;
  const n = Math.ceil(size / BLOCK);
  const outer = createHash('sha256');
  for (let i = 0; i < n; i++) {
    const d = s.blocks.digests.get(i);
    const end = s.blocks.partial.get(i);
    // Every block whole but the last, which ends where the file does.
    if (d === undefined || (end !== undefined && (i !== n - 1 || end !== size)) || (end === undefined && i === n - 1 && size % BLOCK !== 0)) return null;
    outer.update(d);
  }
  return outer.digest('hex');
}

/**
 * Whether a sequential request at `offset` may stream straight into the session's file: it
 * would be accepted as things stand, and nothing else is streaming in.
 */
function streamsIn(s: UploadSession, offset: number): boolean {
  return s.type === 'sequential' && !s.committed && !s.closed && offset === s.size && !s.writing;
}

/** Validates an UploadSessionCursor (400 when malformed) and finds its session. */
function findSession(ctx: Ctx, cursor: unknown, prefix: string): { session: UploadSession; offset: number } | { error: Tagged } {
  const c = cursor as { session_id?: unknown; offset?: unknown } | null;
  if (!c || typeof c !== 'object' || typeof c.session_id !== 'string') {
    throw badInput(ctx.route, `request body: ${prefix}cursor: missing required field 'session_id'`);
  }
  if (typeof c.offset !== 'number' || !Number.isInteger(c.offset) || c.offset < 0) {
    throw badInput(ctx.route, `request body: ${prefix}cursor.offset: expected unsigned integer`);
  }
  const session = ctx.state.sessions.get(c.session_id);
  if (!session || Date.now() - session.createdAt > SESSION_TTL_MS) return { error: { '.tag': 'not_found' } };
  return { session, offset: c.offset };
}

/** Whether a concurrent session holds every byte from 0 to its end. */
function concurrentComplete(s: UploadSession): boolean {
  if (s.end === null) return false;
  let pos = 0;
  for (const off of [...s.parts.keys()].sort((a, b) => a - b)) {
    if (off !== pos) return false;
    pos += s.parts.get(off)!;
  }
  return pos === s.end;
}

/**
 * The session's bytes as one blob, hashed, committed; on success the session is done. The
 * session counts as committed from the start, so a second finish or an append racing this one
 * is refused as `closed`; a failed commit reopens it for a retry.
 */
async function finalize(ctx: Ctx, s: UploadSession, info: CommitInfo): Promise<CommitResult> {
  s.committed = true;
  // Pieces still streaming in (they will be refused as closed) or being copied in (accepted).
  await s.content.idle();
  const { blob } = await s.content.seal(s.type === 'concurrent' ? s.end! : s.size);
  const result = await commit(ctx, info, blob, blob.size, hashFromBlocks(s, blob.size) ?? (await hashBlob(ctx, blob)));
  if ('writeError' in result) {
    // The bytes stay in the session: the commit may be retried.
    s.committed = false;
    return result;
  }
  s.closed = true;
  if (!result.stored) await s.content.remove();
  s.parts.clear();
  return result;
}

/**
 * The body of an append or finish: straight into the session's file when it continues the
 * session's bytes (`blob` null), else received apart, for the caller to copy in if accepted.
 */
async function receivePiece(ctx: Ctx, s: UploadSession, offset: number): Promise<Omit<Received, 'blob'> & { blob: BlobInfo | null }> {
  if (!streamsIn(s, offset)) return receive(ctx);
  s.writing = true;
  try {
    return { ...(await receiveInto(ctx, s.content, offset)), blob: null };
  } finally {
    s.writing = false;
  }
}

export async function upload(ctx: Ctx): Promise<Answer> {
  const args = contentArgs(ctx);
  const info = parseCommit(ctx, args, '');
  const expected = contentHashArg(ctx, args);
  checkUploadContentType(ctx);
  const got = await receive(ctx);
  if (got.tooLarge) throw routeError(ctx, { '.tag': 'payload_too_large' });
  if (expected !== undefined && expected !== got.contentHash) {
    await ctx.blobs.remove(got.blob);
    throw routeError(ctx, { '.tag': 'content_hash_mismatch' });
  }
  const result = await commit(ctx, info, got.blob, got.size, got.contentHash);
  if ('writeError' in result) {
    const s = await newSession(ctx, 'sequential', SessionFile.adopt(ctx.blobs, got.blob, {}));
    noteBlocks(s, 0, got);
    s.size = got.size;
    s.closed = true;
    open(ctx, s);
    throw routeError(ctx, { '.tag': 'path', reason: result.writeError, upload_session_id: s.id });
  }
  if (!result.stored) await ctx.blobs.remove(got.blob);
  return { json: fileMetadata(result.node) };
}

export async function sessionStart(ctx: Ctx): Promise<Answer> {
  const args = contentArgs(ctx);
  const close = boolArg(ctx, args, 'close');
  const type = unionTag(args.session_type ?? 'sequential');
  if (!type || (type.tag !== 'sequential' && type.tag !== 'concurrent')) throw badInput(ctx.route, 'request body: session_type: unknown tag');
  const expected = contentHashArg(ctx, args);
  checkUploadContentType(ctx);
  if (type.tag === 'concurrent' && close) {
    await drain(ctx);
    throw routeError(ctx, { '.tag': 'concurrent_session_close_not_allowed' });
  }
  const s = await newSession(ctx, type.tag);
  let got;
  try {
    got = await receiveInto(ctx, s.content, 0);
  } catch (e) {
    await s.content.remove();
    throw e;
  }
  const refuse = async (error: Tagged) => {
    await s.content.remove();
    return routeError(ctx, error);
  };
  if (got.tooLarge) throw await refuse({ '.tag': 'payload_too_large' });
  if (type.tag === 'concurrent' && got.size > 0) throw await refuse({ '.tag': 'concurrent_session_data_not_allowed' });
  if (expected !== undefined && expected !== got.contentHash) throw await refuse({ '.tag': 'content_hash_mismatch' });
  noteBlocks(s, 0, got);
  s.size = got.size;
  s.closed = close;
  open(ctx, s);
  return { json: { session_id: s.id } };
}

/** `append_v2` (args `{cursor, close, content_hash}`), or the deprecated `append` (args = cursor). */
export async function sessionAppend(ctx: Ctx, legacy: boolean): Promise<Answer> {
  const args = contentArgs(ctx);
  const close = legacy ? false : boolArg(ctx, args, 'close');
  const expected = legacy ? undefined : contentHashArg(ctx, args);
  const found = findSession(ctx, legacy ? args : args.cursor, '');
  checkUploadContentType(ctx);
  if ('error' in found) {
    await drain(ctx);
    throw routeError(ctx, found.error);
  }
  const { session: s, offset } = found;
  // Checked once the body is in, not before: another append may land while this one streams.
  const got = await receivePiece(ctx, s, offset);
  const discard = async (error: Tagged) => {
    if (got.blob) await ctx.blobs.remove(got.blob);
    return routeError(ctx, error);
  };
  if (s.committed || (s.type === 'sequential' && s.closed)) throw await discard({ '.tag': 'closed' });
  if (s.type === 'sequential' && offset !== s.size) throw await discard({ '.tag': 'incorrect_offset', correct_offset: s.size });
  if (s.type === 'concurrent' && offset % BLOCK !== 0) throw await discard({ '.tag': 'concurrent_session_invalid_offset' });
  if (got.tooLarge) throw routeError(ctx, { '.tag': 'payload_too_large' });
  if (expected !== undefined && expected !== got.contentHash) throw await discard({ '.tag': 'content_hash_mismatch' });
  if (s.type === 'concurrent') {
    if (!close && got.size % BLOCK !== 0) throw await discard({ '.tag': 'concurrent_session_invalid_data_size' });
    s.parts.set(offset, got.size);
    noteBlocks(s, offset, got);
    s.size = [...s.parts.values()].reduce((n, size) => n + size, 0);
    if (got.blob) s.content.copyIn(got.blob, offset);
    if (close) {
      s.closed = true;
      s.end = offset + got.size;
    }
    return { json: null };
  }
  if (got.blob) s.content.copyIn(got.blob, offset);
  noteBlocks(s, offset, got);
  s.size += got.size;
  if (close) s.closed = true;
  return { json: null };
}

export async function sessionFinish(ctx: Ctx): Promise<Answer> {
  const args = contentArgs(ctx);
  const found = findSession(ctx, args.cursor, '');
  const info = parseCommit(ctx, args.commit, 'commit.');
  const expected = contentHashArg(ctx, args);
  checkUploadContentType(ctx);
  if ('error' in found) {
    await drain(ctx);
    throw routeError(ctx, { '.tag': 'lookup_failed', lookup_failed: found.error });
  }
  const { session: s, offset } = found;
  const got = await receivePiece(ctx, s, offset);
  const discard = async (error: Tagged) => {
    if (got.blob) await ctx.blobs.remove(got.blob);
    return routeError(ctx, error);
  };
  const lookupFailed = (error: Tagged) => discard({ '.tag': 'lookup_failed', lookup_failed: error });
  if (s.committed) throw await lookupFailed({ '.tag': 'closed' });
  if (s.type === 'concurrent') {
    if (got.size > 0 || got.tooLarge) throw await discard({ '.tag': 'concurrent_session_data_not_allowed' });
    if (got.blob) void ctx.blobs.remove(got.blob);
    if (!s.closed) throw routeError(ctx, { '.tag': 'concurrent_session_not_closed' });
    if (!concurrentComplete(s)) throw routeError(ctx, { '.tag': 'concurrent_session_missing_data' });
    if (offset !== s.end) throw routeError(ctx, { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'incorrect_offset', correct_offset: s.end } });
  } else {
    if (offset !== s.size) throw await lookupFailed({ '.tag': 'incorrect_offset', correct_offset: s.size });
    if (got.tooLarge) throw routeError(ctx, { '.tag': 'payload_too_large' });
    if (got.size > 0 && s.closed) throw await lookupFailed({ '.tag': 'closed' });
    if (expected !== undefined && expected !== got.contentHash) throw await discard({ '.tag': 'content_hash_mismatch' });
    // No await: nothing may run between the checks and finalize.
    if (got.blob) s.content.copyIn(got.blob, offset);
    noteBlocks(s, offset, got);
    s.size += got.size;
  }
  const result = await finalize(ctx, s, info);
  // The data stays in the session: the commit may be retried with an empty body.
  if ('writeError' in result) throw routeError(ctx, { '.tag': 'path', path: result.writeError });
  return { json: fileMetadata(result.node) };
}

/** `upload_session/finish_batch_v2` (RPC): commits closed sessions, one result per entry, in order. */
export async function finishBatchV2(ctx: Ctx, args: Record<string, unknown>): Promise<Answer> {
  const entries = args.entries;
  if (!Array.isArray(entries)) throw badInput(ctx.route, "request body: missing required field 'entries'");
  if (entries.length > 1000) throw badInput(ctx.route, 'request body: entries: must have at most 1000 items');
  const checked = entries.map((e: unknown, i) => {
    const entry = (e ?? {}) as Record<string, unknown>;
    return { found: findSession(ctx, entry.cursor, `entries.${i}.`), info: parseCommit(ctx, entry.commit, `entries.${i}.commit.`) };
  });
  const results: unknown[] = [];
  for (const { found, info } of checked) {
    const failure = (error: Tagged) => results.push({ '.tag': 'failure', failure: error });
    const lookupFailed = (error: Tagged) => failure({ '.tag': 'lookup_failed', lookup_failed: error });
    if ('error' in found) {
      lookupFailed(found.error);
      continue;
    }
    const { session: s, offset } = found;
    if (s.committed) lookupFailed({ '.tag': 'closed' });
    else if (!s.closed) lookupFailed({ '.tag': 'not_closed' });
    else if (s.type === 'concurrent' && !concurrentComplete(s)) failure({ '.tag': 'concurrent_session_missing_data' });
    else if (offset !== (s.type === 'concurrent' ? s.end : s.size)) {
      lookupFailed({ '.tag': 'incorrect_offset', correct_offset: s.type === 'concurrent' ? s.end : s.size });
    } else {
      const result = await finalize(ctx, s, info);
      if ('writeError' in result) failure({ '.tag': 'path', path: result.writeError });
      else results.push({ '.tag': 'success', ...fileMetadata(result.node) });
    }
  }
  return { json: { entries: results } };
}
