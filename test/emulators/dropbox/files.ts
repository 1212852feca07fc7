/**
 * Dropbox's folder and lookup routes (RPC, api.dropboxapi.com) and `files/download` (content),
 * plus the two `users/*` routes the product uses, with their documented results and 409 shapes.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { badInput, type Tagged } from './errors.js';
import { boolArg, contentArgs, routeError, type Answer, type Ctx, type DownloadRecord } from './context.js';
import { metadata, parseWritePath, nameProblem, type FolderNode, type Node } from './model.js';
import { ACCOUNT_ID } from './oauth.js';

/** JSON that may travel in an HTTP header: every char from U+007F up as a `\uXXXX` escape. */
export function headerSafeJson(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

type Lookup = { node: Node } | { root: true } | { error: Tagged };

/**
 * Resolves a read path (`/a/b`, `id:…`, or `''` for the root where `allowRoot`). A path that does
 * not match Dropbox's pattern is a 400; one that cannot name anything is a LookupError.
 */
export function lookup(ctx: Ctx, p: unknown, opts: { allowRoot: boolean; field?: string }): Lookup {
  const field = opts.field ?? 'path';
  if (typeof p !== 'string') throw badInput(ctx.route, `request body: ${field}: expected string, got ${typeof p}`);
  if (p === '' && opts.allowRoot) return { root: true };
  if (p === '/' && opts.allowRoot) throw badInput(ctx.route, `request body: ${field}: Specify the root folder as an empty string rather than as "/".`);
  if (p.startsWith('id:')) {
    const node = ctx.ns.byId(p);
    return node ? { node } : { error: { '.tag': 'not_found' } };
  }
  if (p.startsWith('rev:') || p.startsWith('ns:')) return { error: { '.tag': 'not_found' } };
  if (!p.startsWith('/') || p === '/') {
    throw badInput(ctx.route, `request body: ${field}: '${p}' did not match pattern '(/(.|[\\r\\n])*|id:.*)|(rev:[0-9a-f]{9,})|(ns:[0-9]+(/.*)?)'`);
  }
  // The service takes a doubled slash (`//dir`, `/a//b`) as one; a trailing slash still leaves an
  // empty last component: malformed.
  const parts = p.replace(/\/{2,}(?=[^/])/g, '/').slice(1).split('/');
  for (const part of parts) {
    const why = nameProblem(part);
    if (why === 'malformed_path') return { error: { '.tag': 'malformed_path' } };
  }
  const node = ctx.ns.get('/' + parts.map((x) => x.toLowerCase()).join('/'));
  return node ? { node } : { error: { '.tag': 'not_found' } };
}

function folderMeta(node: FolderNode): Record<string, unknown> {
  const { '.tag': _t, ...rest } = metadata(node);
  return rest;
}

export async function createFolder(ctx: Ctx, args: Record<string, unknown>): Promise<Answer> {
  const autorename = boolArg(ctx, args, 'autorename');
  const parsed = parseWritePath(ctx.route, 'path', args.path);
  if ('problem' in parsed) throw routeError(ctx, { '.tag': 'path', path: { '.tag': parsed.problem } });
  const conflict = (tag: string) => routeError(ctx, { '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': tag } } });
  if (ctx.ns.ancestorConflict(parsed.parts)) throw conflict('file_ancestor');
  let name = parsed.parts.at(-1)!;
  const parentLower = parsed.lower.slice(0, parsed.lower.lastIndexOf('/'));
  const existing = ctx.ns.get(parsed.lower);
  if (existing) {
    if (!autorename) throw conflict(existing.kind);
    name = ctx.ns.freeName(parentLower, name);
  }
  const parentDisplay = ctx.ns.ensureParents(parsed.parts);
  return { json: { metadata: folderMeta(ctx.ns.addFolder(parentDisplay, name)) } };
}

export async function getMetadata(ctx: Ctx, args: Record<string, unknown>): Promise<Answer> {
  const found = lookup(ctx, args.path, { allowRoot: false });
  if ('error' in found) throw routeError(ctx, { '.tag': 'path', path: found.error });
  if ('root' in found) throw badInput(ctx.route, 'request body: path: root folder is unsupported');
  return { json: metadata(found.node) };
}

function newCursorId(ctx: Ctx): string {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
  let s = 'AAH';
  for (let i = 0; i < 40; i++) s += abc[Math.floor(ctx.state.random() * abc.length)];
  return s;
}

/** Serves one page of a cursor's state and files the rest under a new cursor. */
function page(ctx: Ctx, state: { lower: string; recursive: boolean; pending: Array<Record<string, unknown>>; seq: number }, limit: number): Answer {
  const entries = state.pending.slice(0, limit);
  const rest = state.pending.slice(limit);
  const cursor = newCursorId(ctx);
  ctx.state.cursors.set(cursor, { ...state, pending: rest });
  return { json: { entries, cursor, has_more: rest.length > 0 } };
}

export async function listFolder(ctx: Ctx, args: Record<string, unknown>): Promise<Answer> {
  const recursive = boolArg(ctx, args, 'recursive');
  let limit = ctx.state.pageSize;
  if (args.limit !== undefined && args.limit !== null) {
    if (typeof args.limit !== 'number' || !Number.isInteger(args.limit) || args.limit < 1 || args.limit > 2000) {
      throw badInput(ctx.route, `request body: limit: ${String(args.limit)} is not within the range [1, 2000]`);
    }
    limit = args.limit;
  }
  const found = lookup(ctx, args.path, { allowRoot: true });
  if ('error' in found) throw routeError(ctx, { '.tag': 'path', path: found.error });
  let lower = '';
  const entries: Array<Record<string, unknown>> = [];
  if ('node' in found) {
    if (found.node.kind !== 'folder') throw routeError(ctx, { '.tag': 'path', path: { '.tag': 'not_folder' } });
    lower = found.node.lower;
    // A recursive listing of a folder starts with the folder itself.
    if (recursive) entries.push(metadata(found.node));
  }
  entries.push(...ctx.ns.list(lower, recursive).map(metadata));
  return page(ctx, { lower, recursive, pending: entries, seq: ctx.ns.changeSeq }, limit);
}

export async function listFolderContinue(ctx: Ctx, args: Record<string, unknown>): Promise<Answer> {
  if (typeof args.cursor !== 'string' || args.cursor === '') throw badInput(ctx.route, 'request body: cursor: expected string');
  const state = ctx.state.cursors.get(args.cursor);
  if (!state) throw badInput(ctx.route, 'Invalid cursor');
  if (state.lower !== '' && ctx.ns.get(state.lower)?.kind !== 'folder') {
    throw routeError(ctx, { '.tag': 'path', path: { '.tag': 'not_found' } });
  }
  if (state.pending.length > 0) return page(ctx, state, ctx.state.pageSize);
  const changes = ctx.ns.changesSince(state.seq, state.lower, state.recursive);
  return page(ctx, { ...state, pending: changes, seq: ctx.ns.changeSeq }, Number.MAX_SAFE_INTEGER);
}

export async function deleteV2(ctx: Ctx, args: Record<string, unknown>): Promise<Answer> {
  const found = lookup(ctx, args.path, { allowRoot: false });
  if ('error' in found) throw routeError(ctx, { '.tag': 'path_lookup', path_lookup: found.error });
  if ('root' in found) throw badInput(ctx.route, 'request body: path: cannot delete the root folder');
  const node = found.node;
  if (typeof args.parent_rev === 'string' && (node.kind !== 'file' || node.rev !== args.parent_rev)) {
    throw routeError(ctx, { '.tag': 'path_write', path_write: { '.tag': 'conflict', conflict: { '.tag': node.kind } } });
  }
  const meta = metadata(node);
  for (const gone of ctx.ns.remove(node.lower)) if (gone.kind === 'file') await ctx.blobs.remove(gone.blob);
  return { json: { metadata: meta } };
}

/** `files/download`: the bytes in the body, the FileMetadata in `Dropbox-API-Result`. */
export async function download(ctx: Ctx): Promise<Answer> {
  const args = contentArgs(ctx);
  const found = lookup(ctx, args.path, { allowRoot: false });
  if ('error' in found) throw routeError(ctx, { '.tag': 'path', path: found.error });
  if ('root' in found || found.node.kind !== 'file') throw routeError(ctx, { '.tag': 'path', path: { '.tag': 'not_file' } });
  const node = found.node;
  const { '.tag': _t, ...result } = metadata(node);
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'dropbox-api-result': headerSafeJson(result),
    'accept-ranges': 'bytes',
  };
  const range = /^bytes=(\d*)-(\d*)$/.exec(String(ctx.r.req.headers.range ?? ''));
  if (range && (range[1] || range[2]) && node.size > 0) {
    const start = range[1] ? Number(range[1]) : Math.max(0, node.size - Number(range[2]));
    const end = range[1] && range[2] ? Math.min(Number(range[2]), node.size - 1) : node.size - 1;
    if (start >= node.size || start > end) {
      return { status: 416, headers: { 'content-range': `bytes */${node.size}` }, json: null };
    }
    headers['content-range'] = `bytes ${start}-${end}/${node.size}`;
    headers['content-length'] = String(end - start + 1);
    return served(ctx, node.display, 206, headers, node.blob.file, start, end);
  }
  headers['content-length'] = String(node.size);
  return served(ctx, node.display, 200, headers, node.blob.file, 0, node.size - 1);
}

/**
 * The answer with bytes `start..end` of `file`, recorded in `state.downloads`; when a cut is
 * armed, only its first `afterBytes` are sent and the connection is then closed (a download that
 * breaks part way, as a network does).
 */
function served(ctx: Ctx, path: string, status: number, headers: Record<string, string>, file: string, start: number, end: number): Answer {
  const cut = ctx.state.cutDownloads;
  let last = end;
  let cutting = false;
  if (cut.left > 0 && end >= start) {
    cut.left--;
    cutting = true;
    last = Math.min(end, start + cut.afterBytes - 1);
  }
  const rec: DownloadRecord = { path, range: ctx.r.req.headers.range ?? null, status, bytes: 0 };
  ctx.state.downloads.push(rec);
  const stream = last >= start ? createReadStream(file, { start, end: last }) : Readable.from([]);
  stream.on('data', (c: Buffer | string) => {
    rec.bytes += c.length;
  });
  return { status, headers, stream, cut: cutting };
}

export async function getCurrentAccount(): Promise<Answer> {
  return {
    json: {
      account_id: ACCOUNT_ID,
      name: {
        given_name: 'Stage',
        surname: 'Coach',
        familiar_name: 'Stage',
        display_name: 'Stage Coach',
        abbreviated_name: 'SC',
      },
      email: 'stagecoach@example.invalid',
      email_verified: true,
      disabled: false,
      country: 'US',
      locale: 'en',
      referral_link: 'https://db.tt/emulated',
      is_paired: false,
      account_type: { '.tag': 'basic' },
      root_info: { '.tag': 'user', root_namespace_id: '3235641', home_namespace_id: '3235641' },
    },
  };
}

export async function getSpaceUsage(ctx: Ctx): Promise<Answer> {
  return { json: { used: ctx.ns.used(), allocation: { '.tag': 'individual', allocated: ctx.state.quotaBytes } } };
}
