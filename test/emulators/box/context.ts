/**
 * State shared by the Box emulator's route handlers, and the small helpers they all use
 * (authentication, JSON bodies, public URLs per host).
 */
import type { BlobInfo, BlobStore, EmulatorRequest, Hasher, SessionFile, TokenBook } from '../harness/index.js';
import { bearer, readBody } from '../harness/index.js';
import { sendBoxError, sendUnauthorized } from './errors.js';
import type { BoxModel, FileVersion } from './model.js';
import type { BoxOAuthServer } from './oauth.js';

/** A part stored in an upload session. */
export interface UploadedPart {
  part_id: string;
  offset: number;
  size: number;
  /** Hex, as Box returns it in `part.sha1`. */
  sha1: string;
}

/** An open upload session (parts keyed by offset). */
export interface UploadSessionState {
  id: string;
  fileSize: number;
  partSize: number;
  totalParts: number;
  expiresAt: number;
  /** New file: where and under which name. */
  folderId: string | null;
  fileName: string | null;
  /** New version of this file (POST /files/:id/upload_sessions). */
  fileId: string | null;
  parts: Map<number, UploadedPart>;
  /**
   * The parts' bytes, each at its offset, SHA-1-hashed as they come in order (made with the
   * session; null once it is committed or aborted). A part streams straight in unless the same
   * range is streaming already; such a part is received apart and copied in if accepted
   * (`SessionFile.copyIn`).
   */
  content: SessionFile<{ sha1: () => Hasher }> | null;
  /** Offsets of parts streaming straight into `content`. */
  streaming: Set<number>;
}

/** Knobs a test may turn while the emulator runs. */
export interface BoxSettings {
  /** Server-chosen `part_size` for a session of `fileSize` bytes. */
  partSize: (fileSize: number) => number;
  /** Smallest `file_size` an upload session accepts (Box: 20,000,000 bytes). */
  minChunkedSize: number;
  /** Bytes all stored versions may take; null is unlimited. */
  storageQuota: number | null;
  /** Largest single file the account's plan accepts. */
  maxFileSize: number;
  /** How many of the next commits answer 202 + Retry-After, and with which delay (seconds). */
  commitAccepted: { count: number; retryAfterS: number };
  /**
   * The largest `limit` a folder-items page honours: "If the value exceeds the maximum, the
   * maximum value will be used" (https://developer.box.com/guides/api-calls/pagination/marker-based/).
   * Box's is 1000.
   */
  maxPageSize: number;
}

/** Everything a route handler needs. */
export interface BoxContext {
  readonly model: BoxModel;
  readonly blobs: BlobStore;
  readonly tokens: TokenBook;
  readonly oauth: BoxOAuthServer;
  readonly settings: BoxSettings;
  readonly sessions: Map<string, UploadSessionState>;
  /** dl.boxcloud.com download tokens → the version they serve. */
  readonly downloads: Map<string, { fileId: string; version: FileVersion; expiresAt: number }>;
  /** Deterministic ids (session ids, part ids, version ids). */
  random(): number;
}

/** Checks the bearer token; on failure sends Box's 401 and returns false. */
export function authorize(ctx: BoxContext, r: EmulatorRequest): boolean {
  const token = bearer(r);
  if (ctx.tokens.check(token) === 'ok') return true;
  r.req.resume();
  sendUnauthorized(r, token !== null);
  return false;
}

/** A JSON request body, or sends 400 `bad_request` and returns undefined. */
export async function jsonBody(r: EmulatorRequest): Promise<Record<string, unknown> | undefined> {
  const raw = await readBody(r, 1 << 20);
  if (raw.length === 0) return {};
  try {
    const v: unknown = JSON.parse(raw.toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through: Box answers malformed JSON with a plain 400
  }
  sendBoxError(r, 400, 'bad_request', 'Could not parse JSON body');
  return undefined;
}

const BOX_HOSTS: Record<'api' | 'upload' | 'dl', string> = {
  api: 'https://api.box.com',
  upload: 'https://upload.box.com/api',
  dl: 'https://dl.boxcloud.com',
};

/**
 * The origin a client should use for `service`, as seen from this request: Box's public hosts
 * when the request came through one of them (a proxy or a URL rewrite), else the origin the
 * client used to reach the emulator (its base-URL setting). The upload origin includes `/api`.
 */
export function publicBase(r: EmulatorRequest, service: 'api' | 'upload' | 'dl'): string {
  if (r.host.endsWith('box.com') || r.host.endsWith('boxcloud.com')) return BOX_HOSTS[service];
  const origin = `http://${r.req.headers.host ?? '127.0.0.1'}`;
  return service === 'upload' ? `${origin}/api` : origin;
}

/** `fields=a,b` → ['a','b']; absent → null (standard representation). */
export function fieldsParam(url: URL): string[] | null {
  const f = url.searchParams.get('fields');
  if (f === null) return null;
  return f.split(',').map((s) => s.trim()).filter(Boolean);
}

/** An uppercase hex id of `n` characters from the context's random source (Box session ids). */
export function hexId(ctx: BoxContext, n: number): string {
  let s = '';
  while (s.length < n) s += Math.floor(ctx.random() * 16).toString(16);
  return s.toUpperCase();
}

/** Box's default part size: 8 MiB, doubled until the file fits in 10,000 parts. */
export function defaultPartSize(fileSize: number): number {
  let p = 8 * 1024 * 1024;
  while (Math.ceil(fileSize / p) > 10_000) p *= 2;
  return p;
}
