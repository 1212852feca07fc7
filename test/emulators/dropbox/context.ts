/**
 * What every Dropbox route handler gets: the request, the namespace, the blob store, the
 * emulator's mutable state, and the helpers that read arguments and bodies the way Dropbox does.
 */
import { Transform, type Readable } from 'node:stream';
import { DropboxContentHasher } from '../../../src/archive/dropbox-hash.js';
import type { BlobInfo, BlobStore, EmulatorRequest, SessionFile } from '../harness/index.js';
import { badInput, DropboxHttpError, type Summaries, type Tagged } from './errors.js';
import type { Namespace } from './model.js';

export const MiB = 1024 * 1024;
/** Dropbox's per-request payload limit for uploads (150 MiB). */
export const MAX_REQUEST_BYTES = 150 * MiB;
/** Upload sessions live 7 days. */
export const SESSION_TTL_MS = 7 * 24 * 3600 * 1000;

export interface UploadSession {
  id: string;
  type: 'sequential' | 'concurrent';
  createdAt: number;
  /**
   * Every accepted byte at its offset. A request whose offset is the session's end streams
   * straight into it; any other is received apart and copied in once accepted
   * (`SessionFile.copyIn`).
   */
  content: SessionFile<Record<string, never>>;
  /**
   * The SHA-256 of each 4 MiB block of the session, by block number, from the requests' own
   * content hashes (each request's bytes are hashed once): the session's content hash is the
   * SHA-256 of them all. `partial`: blocks shorter than 4 MiB, with the offset they end at (only
   * the file's last block may be). Null once a piece came off the block boundaries: the commit
   * then hashes the file.
   */
  blocks: { digests: Map<number, Buffer>; partial: Map<number, number> } | null;
  /** A sequential piece is streaming straight into `content`. */
  writing?: boolean;
  /** Concurrent: accepted pieces' sizes, by offset. */
  parts: Map<number, number>;
  /** Bytes received (sequential: the next expected offset). */
  size: number;
  closed: boolean;
  committed: boolean;
  /** Concurrent: the end offset of the piece sent with close = true. */
  end: number | null;
}

export interface ListCursor {
  lower: string;
  recursive: boolean;
  /** The initial listing still to page through (metadata objects). */
  pending: Array<Record<string, unknown>>;
  /** Changes after this number come once `pending` is empty. */
  seq: number;
}

/** The emulator's mutable state that tests steer through the controls. */
export interface DropboxState {
  quotaBytes: number;
  pageSize: number;
  maxRequestBytes: number;
  /** Commits left whose stored bytes get one byte flipped before they are hashed. */
  corruptCommits: number;
  sessions: Map<string, UploadSession>;
  cursors: Map<string, ListCursor>;
  random: () => number;
  /** Downloads left whose body is cut (the connection closed) after `afterBytes` bytes. */
  cutDownloads: { left: number; afterBytes: number };
  /** Every `files/download` answered with bytes: the Range asked, the status, the body bytes sent. */
  downloads: DownloadRecord[];
}

/** One `files/download` as the emulator served it. */
export interface DownloadRecord {
  path: string;
  range: string | null;
  status: number;
  /** Body bytes written (fewer than the answer's Content-Length when the download was cut). */
  bytes: number;
}

export interface Ctx {
  r: EmulatorRequest;
  /** Route name as Dropbox's error messages write it (`files/upload`). */
  route: string;
  ns: Namespace;
  blobs: BlobStore;
  errors: Summaries;
  state: DropboxState;
}

/** What a handler answers: JSON (the default), or a download stream with its result header. */
export interface Answer {
  status?: number;
  json?: unknown;
  headers?: Record<string, string>;
  stream?: Readable;
  /** Close the connection once the stream is written, whatever Content-Length promised (a cut download). */
  cut?: boolean;
}

/** A route error answer: `throw ctx.errors.route(...)` reads better through this. */
export function routeError(ctx: Ctx, error: Tagged): DropboxHttpError {
  return ctx.errors.route(error);
}

/**
 * The arguments of a content endpoint: the `Dropbox-API-Arg` header or the `arg` query
 * parameter, JSON that must be HTTP-header-safe (non-ASCII as `\uXXXX` escapes; raw bytes above
 * 0x7e are refused as Dropbox refuses them).
 */
export function contentArgs(ctx: Ctx): Record<string, unknown> {
  const header = ctx.r.req.headers['dropbox-api-arg'];
  const fromQuery = ctx.r.url.searchParams.get('arg');
  const raw = typeof header === 'string' ? header : fromQuery;
  const where = typeof header === 'string' ? 'HTTP header "Dropbox-API-Arg"' : 'URL parameter "arg"';
  if (raw === null || raw === undefined) {
    throw badInput(ctx.route, 'Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".');
  }
  // Node decodes header bytes as latin1: anything past 0x7e here was raw, unescaped UTF-8.
  if (typeof header === 'string' && /[^\x20-\x7e]/.test(raw)) {
    throw badInput(ctx.route, `${where}: could not decode input as JSON`);
  }
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw badInput(ctx.route, `${where}: could not decode input as JSON`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw badInput(ctx.route, `${where}: expected object`);
  return v as Record<string, unknown>;
}

/** Upload bodies must be declared as bytes. */
export function checkUploadContentType(ctx: Ctx): void {
  const type = String(ctx.r.req.headers['content-type'] ?? '').toLowerCase();
  if (type !== 'application/octet-stream' && type !== 'text/plain; charset=dropbox-cors-hack') {
    throw badInput(
      ctx.route,
      `Bad HTTP "Content-Type" header: "${type}".  Expecting one of "application/octet-stream", "text/plain; charset=dropbox-cors-hack".`,
    );
  }
}

export interface Received {
  blob: BlobInfo;
  size: number;
  /** Dropbox content hash of the bytes of this request. */
  contentHash: string;
  /** The digests of its 4 MiB blocks (the content hash is the SHA-256 of them). */
  blockDigests: readonly Buffer[];
  /** More than `maxRequestBytes` arrived: nothing past the limit was kept; the blob is gone. */
  tooLarge: boolean;
}

/**
 * The request body as `receive` takes it: counted, content-hashed, and past the per-request limit
 * still read to the end (so the answer reaches a client that is still sending) but not passed on.
 */
function bodyTap(ctx: Ctx): { tap: Transform; result: () => Omit<Received, 'blob'> } {
  const limit = ctx.state.maxRequestBytes;
  const hasher = new DropboxContentHasher({ keepBlocks: true });
  let size = 0;
  let tooLarge = false;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > limit) {
        tooLarge = true;
        cb();
        return;
      }
      hasher.update(chunk);
      cb(null, chunk);
    },
  });
  ctx.r.req.once('error', (e) => tap.destroy(e));
  ctx.r.req.once('aborted', () => tap.destroy(new Error('request aborted')));
  ctx.r.req.pipe(tap);
  return {
    tap,
    result: () => {
      ctx.r.countBody(size);
      const contentHash = hasher.digest();
      return { size, contentHash, blockDigests: hasher.blockDigests() ?? [], tooLarge };
    },
  };
}

/** Streams the request body to a new blob on disk, hashing it on the way (see bodyTap). */
export async function receive(ctx: Ctx): Promise<Received> {
  const { tap, result } = bodyTap(ctx);
  const blob = await ctx.blobs.write(tap);
  const got = result();
  if (got.tooLarge) await ctx.blobs.remove(blob);
  return { blob, ...got };
}

/**
 * Streams the request body into a session's file at `offset` (see bodyTap). The bytes count
 * only once the caller accepts them (the session's size moves past them); refused, they are
 * written over by a later piece or cut off when the session is sealed.
 */
export async function receiveInto(ctx: Ctx, content: SessionFile<Record<string, never>>, offset: number): Promise<Omit<Received, 'blob'>> {
  const { tap, result } = bodyTap(ctx);
  await content.writeAt(tap, offset);
  return result();
}

/** Reads and drops the rest of a body we answer without storing. */
export async function drain(ctx: Ctx): Promise<void> {
  let n = 0;
  for await (const c of ctx.r.req) n += (c as Buffer).length;
  ctx.r.countBody(n);
}

/** `true`, `false` or absent (→ `dflt`); anything else is bad input. */
export function boolArg(ctx: Ctx, args: Record<string, unknown>, key: string, dflt = false): boolean {
  const v = args[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw badInput(ctx.route, `request body: ${key}: expected boolean, got ${typeof v}`);
  return v;
}

/** A union argument that may be given as `"tag"` (void member) or `{'.tag': "tag", …}`. */
export function unionTag(v: unknown): { tag: string; value: Record<string, unknown> } | null {
  if (typeof v === 'string') return { tag: v, value: { '.tag': v } };
  if (v && typeof v === 'object' && typeof (v as Tagged)['.tag'] === 'string') return { tag: (v as Tagged)['.tag'], value: v as Record<string, unknown> };
  return null;
}

/** An optional 64-hex `content_hash` argument. */
export function contentHashArg(ctx: Ctx, args: Record<string, unknown>): string | undefined {
  const v = args.content_hash;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length !== 64) {
    throw badInput(ctx.route, `request body: content_hash: '${String(v)}' must be exactly 64 characters`);
  }
  return v;
}
