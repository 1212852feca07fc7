/**
 * How the official Drive SDK is pointed at a Drive endpoint (the emulator in tests), and the
 * resumable uploader the SDK lacks, driven through `OAuth2Client.request` so it shares the
 * client's token handling. The product's Drive target reuses this pointing code.
 */
import { open } from 'node:fs/promises';
import { drive, type drive_v3 } from '@googleapis/drive';
import { OAuth2Client } from 'google-auth-library';
import { StagecoachError } from '../../../src/errors.js';

export interface DriveClientConfig {
  /** Base URL of the API, e.g. the emulator's `http://127.0.0.1:PORT`. */
  url: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
}

export interface DriveClient {
  auth: OAuth2Client;
  drive: drive_v3.Drive;
  /** `url` with one trailing slash: the SDK's `rootUrl`. */
  rootUrl: string;
  /**
   * Per-call options every media call (uploads, `alt=media`) MUST pass: the SDK builds upload
   * URLs from the per-call `rootUrl` only, so without it they go to www.googleapis.com.
   */
  mediaOptions: { rootUrl: string; retry: false };
}

/**
 * Builds an OAuth2Client whose token endpoint is `url + /token` and a Drive v3 client whose
 * every URL starts at `url`. The SDK's own retries are off (`retry: false`): the project's
 * retry policy governs. The refresh token is exchanged on the first call.
 */
export function createDriveClient(cfg: DriveClientConfig): DriveClient {
  const rootUrl = cfg.url.replace(/\/*$/, '/');
  const auth = new OAuth2Client({
    clientId: cfg.clientId,
    clientSecret: cfg.clientSecret,
    endpoints: { oauth2TokenUrl: `${rootUrl}token` },
  });
  auth.setCredentials({ refresh_token: cfg.refreshToken });
  const d = drive({ version: 'v3', auth, rootUrl, retry: false });
  return { auth, drive: d, rootUrl, mediaOptions: { rootUrl, retry: false } };
}

/** Google's rule for every chunk but the last. */
export const DRIVE_CHUNK_GRANULARITY = 256 * 1024;

export interface ResumableStart {
  /** Metadata of the new file (name, parents, mimeType…); for an update, fields to change. */
  metadata?: drive_v3.Schema$File;
  /** Total bytes, sent as X-Upload-Content-Length. */
  size: number;
  mimeType?: string;
  /** The `fields` of the final response (e.g. `id,name,size,md5Checksum`). */
  fields?: string;
  /** Give this existing file new content instead of creating one. */
  fileId?: string;
}

/** Opens a resumable session; resolves to its URI (persist it to resume after a restart). */
export async function startResumableSession(client: DriveClient, o: ResumableStart): Promise<string> {
  const path = o.fileId === undefined ? 'upload/drive/v3/files' : `upload/drive/v3/files/${encodeURIComponent(o.fileId)}`;
  const params = new URLSearchParams({ uploadType: 'resumable' });
  if (o.fields) params.set('fields', o.fields);
  const res = await client.auth.request({
    url: `${client.rootUrl}${path}?${params}`,
    method: o.fileId === undefined ? 'POST' : 'PATCH',
    headers: {
      'Content-Type': 'application/json; charset=UTF-8',
      'X-Upload-Content-Length': String(o.size),
      'X-Upload-Content-Type': o.mimeType ?? o.metadata?.mimeType ?? 'application/octet-stream',
    },
    data: o.metadata ?? {},
    retry: false,
  });
  const location = res.headers.get('location');
  if (!location) throw new StagecoachError('gdrive.no-session', '[stagecoach] [gdrive] resumable upload start gave no Location');
  return location;
}

export type SessionStatus = { done: true; file: drive_v3.Schema$File } | { done: false; received: number };

function readStatus(status: number, range: string | null, data: unknown): SessionStatus {
  if (status === 200 || status === 201) return { done: true, file: data as drive_v3.Schema$File };
  const m = range ? /^bytes=0-(\d+)$/.exec(range) : null;
  return { done: false, received: m ? Number(m[1]) + 1 : 0 };
}

const resumableStatus = (s: number) => s === 200 || s === 201 || s === 308;

/** Asks a session how many bytes it holds (`Content-Range: bytes *\/size`, empty body). */
export async function querySession(client: DriveClient, sessionUri: string, size: number): Promise<SessionStatus> {
  const res = await client.auth.request({
    url: sessionUri,
    method: 'PUT',
    headers: { 'Content-Range': `bytes */${size}` },
    data: Buffer.alloc(0),
    validateStatus: resumableStatus,
    retry: false,
  });
  return readStatus(res.status, res.headers.get('range'), res.data);
}

export interface ResumableUpload extends ResumableStart {
  /** The file on disk; read one chunk at a time. */
  path: string;
  /** Bytes per request, a multiple of 256 KiB (default 8 MiB). */
  chunkSize?: number;
  /** Continue this session (probe first) instead of opening a new one. */
  sessionUri?: string;
  onSession?: (uri: string) => void;
}

/**
 * Uploads a file with Drive's resumable protocol: open (or probe) a session, PUT chunks with
 * `Content-Range`, follow each 308's `Range` (the server may keep fewer bytes than sent), and
 * resolve to the file resource of the final 200/201. Errors are the SDK's GaxiosErrors.
 */
export async function uploadResumable(client: DriveClient, o: ResumableUpload): Promise<drive_v3.Schema$File> {
  const chunkSize = o.chunkSize ?? 8 * 1024 * 1024;
  if (chunkSize <= 0 || chunkSize % DRIVE_CHUNK_GRANULARITY !== 0) {
    throw new StagecoachError('gdrive.chunk-size', `Expected \`chunkSize\` to be a multiple of 262144, got ${chunkSize}`);
  }
  let uri = o.sessionUri;
  let offset = 0;
  if (uri) {
    const st = await querySession(client, uri, o.size);
    if (st.done) return st.file;
    offset = st.received;
  } else {
    uri = await startResumableSession(client, o);
  }
  o.onSession?.(uri);
  const fh = await open(o.path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(chunkSize, Math.max(o.size, 1)));
    let stalls = 0;
    // Each pass either advances or counts a stall; a server that never advances ends the loop.
    while (stalls < 3) {
      const len = Math.min(chunkSize, o.size - offset);
      const { bytesRead } = len > 0 ? await fh.read(buf, 0, len, offset) : { bytesRead: 0 };
      if (bytesRead !== len) {
        throw new StagecoachError('source.size-mismatch', `[stagecoach] [gdrive] read ${offset + bytesRead} bytes of ${o.path}, expected ${o.size}`);
      }
      const range = len > 0 ? `bytes ${offset}-${offset + len - 1}/${o.size}` : `bytes */${o.size}`;
      const res = await client.auth.request({
        url: uri,
        method: 'PUT',
        headers: { 'Content-Range': range, 'Content-Type': o.mimeType ?? o.metadata?.mimeType ?? 'application/octet-stream' },
        // The request completes before the buffer is refilled, so no copy is needed.
        data: buf.subarray(0, len),
        validateStatus: resumableStatus,
        retry: false,
      });
      const st = readStatus(res.status, res.headers.get('range'), res.data);
      if (st.done) return st.file;
      stalls = st.received > offset ? 0 : stalls + 1;
      offset = st.received;
    }
    throw new StagecoachError('gdrive.upload-stalled', `[stagecoach] [gdrive] resumable upload made no progress at byte ${offset}`);
  } finally {
    await fh.close();
  }
}
