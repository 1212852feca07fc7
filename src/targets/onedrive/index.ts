/**
 * The OneDrive target: archives into a OneDrive (Personal, or for Business) through Microsoft
 * Graph v1.0 with the official SDKs (`@microsoft/microsoft-graph-client` 3.0.7 over node:http,
 * `@azure/msal-node` 7.2), signed in as a person (delegated: MSAL's token cache persisted in the
 * state folder; `stagecoach auth <id>` signs in with a device code) or as an app (client
 * credentials, a business user's drive).
 *
 * - Small files (≤ 4 MiB) go in one `PUT …:/name:/content`; larger ones through an upload
 *   session, one 3,276,800-byte fragment at a time from disk, resumable from the saved session
 *   URL. Both replace an existing file in place (`conflictBehavior: replace`): a changed file
 *   becomes a new version of the same item (same id).
 * - Every upload is verified: the bytes read equal `size`, and Graph's `size` and
 *   `file.hashes.quickXorHash` of the stored item equal the count and QuickXorHash of the bytes
 *   read. A mismatch is a `retry`.
 * - An item already at the path with the same size and quickXorHash uploads nothing.
 * - Names are mapped by names.ts (NFC, full-width look-alikes for the characters OneDrive refuses,
 *   case-insensitive); reserved names and paths of 400 characters fail the item.
 * - Errors are classified by classify.ts. The SDK retries nothing; the only replay is after a 401
 *   (a fresh token, once). No message carries a token, the client secret or an upload URL.
 */
import { ConfigError, TargetError } from '../../errors.js';
import { createRedactor } from '../../telemetry/redact.js';
import { abortError } from '../kit/abort.js';
import { SourceError, passThrough } from '../kit/classify.js';
import { foldersAhead } from '../kit/ahead.js';
import { createLifecycle } from '../kit/lifecycle.js';
import { FolderListings, type FolderHold } from '../kit/listings.js';
import { checkOptions } from '../kit/options.js';
import type { DownloadRequest, Features, PutRequest, PutResult, RemoteDownload, RemoteEntry, RemoteStat, Target, TargetContext } from '../target.js';
import { onedriveDownload } from './download.js';
import type { DriveItemJson, DriveJson, OnedriveInternals, OnedriveOptions } from './api-types.js';
import { DEFAULT_FRAGMENT_SIZE, FRAGMENT_UNIT, ITEM_SELECT, MAX_FRAGMENT, SIMPLE_UPLOAD_MAX } from './api-types.js';
import { createOneDriveAuth, tokenCachePath } from './auth.js';
import { OneDriveHttpError, adviceFor, classify, classifyRule, detailOf, retryAfterOf } from './classify.js';
import { FolderCache, childPath, listChildren, listFiles } from './folders.js';
import { GraphApi, createGraphClient, drivePathOf } from './transport.js';
import { endpointRewrite } from './transport.js';
import { encodePath, mapOneDrivePath, mapRemoteRoot, nameKey, oneDrivePathKey } from './names.js';
import { provider } from './provider.js';
import { dropSavedSession, hashSource, readWhole, remoteHash, sessionUpload, simpleUpload, type Destination, type UploadContext } from './upload.js';

export type { OnedriveInternals, OnedriveOptions } from './api-types.js';

/** What the OneDrive target declares. */
export const ONEDRIVE_FEATURES: Features = Object.freeze({
  hashKind: 'quickxor',
  caseInsensitive: true,
  simpleUploadMax: SIMPLE_UPLOAD_MAX,
  chunkSize: DEFAULT_FRAGMENT_SIZE,
  resumable: true,
  rangedDownload: true,
});

const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;

function validate(options: OnedriveOptions, internals: OnedriveInternals): void {
  checkOptions(provider.schema, options, ['auth', 'remoteRoot']);
  const f = internals.fragmentSize;
  if (f !== undefined && (!Number.isInteger(f) || f <= 0 || f % FRAGMENT_UNIT !== 0 || f >= MAX_FRAGMENT)) {
    throw new ConfigError('fragmentSize', `Expected \`fragmentSize\` to be a multiple of ${FRAGMENT_UNIT} under ${MAX_FRAGMENT}, got ${String(f)}`);
  }
}

/**
 * Makes a OneDrive target archiving under `options.remoteRoot` (from the drive root; created on
 * first use) of `/me/drive` (delegated), `/users/{userId}/drive` (app) or `/drives/{driveId}`.
 * Nothing is read or requested until the first call. `internals` are for tests.
 *
 * - `put`: maps the path (names.ts), resolves or creates the parent folders (folders.ts), reads
 *   the item at the path: same size → hash the source and compare quickXorHash → `unchanged`;
 *   else a simple upload (≤ 4 MiB) or an upload session (upload.ts), both replacing an existing
 *   file in place. `req.resume` / `req.saveResume` carry the session's upload URL; a put that
 *   finds the file already there clears a saved session.
 * - `stat`: the file's size and quickXorHash from Graph, or null (missing, or a folder).
 * - `ensureFolder`: the folder's id (`root` for the drive root).
 * - `check`: signs in, reads the drive (type, owner, free space) and looks the remote root up.
 * - `close`: waits for the calls in flight; later calls fail `fatal` (`closed`).
 * - Errors: TargetError (`onedrive.<rule>`, see classify.ts), ShortReadError when the source's
 *   length differs from `size`, or an AbortError when `req.signal` fired.
 */
export function createOnedriveTarget(options: OnedriveOptions, ctx: TargetContext, internals: OnedriveInternals = {}): Target {
  validate(options, internals);
  const id = options.id;
  const log = ctx.log;
  let rootSegments: string[];
  try {
    rootSegments = mapRemoteRoot(options.remoteRoot ?? '', id);
  } catch (err) {
    throw new ConfigError('remoteRoot', `Expected \`remoteRoot\` to be a path OneDrive accepts: ${(err as Error).message}`, { cause: err });
  }
  const timeoutMs = internals.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const simpleUploadMax = internals.simpleUploadMax ?? SIMPLE_UPLOAD_MAX;
  const rewrite = endpointRewrite(options.endpoints);
  const auth = createOneDriveAuth(options, ctx, { requestTimeoutMs: timeoutMs });
  const api = new GraphApi(createGraphClient(rewrite, timeoutMs), auth, drivePathOf(options), id);
  // A folder's children for a run of puts into it (kit/listings.ts): one listing, not a lookup per file.
  const listings = new FolderListings<DriveItemJson>({
    list: (parentId, maxPages, signal) => listChildren(api, parentId, maxPages, signal),
    keyOf: (item) => nameKey(item.name),
  });
  const folders = new FolderCache(api, id, (folderId) => listings.created(folderId));
  const uctx: UploadContext = { api, targetId: id, log, fragmentSize: internals.fragmentSize ?? DEFAULT_FRAGMENT_SIZE, timeoutMs, rewrite };
  const life = createLifecycle(id, 'onedrive');

  /** Every error leaving the target goes through here: classified, and clean of secrets. */
  function wrap(err: unknown, signal?: AbortSignal): unknown {
    const { kind, rule } = classifyRule(err);
    // Some id we hold no longer exists: look the folders up again on the next attempt.
    if (!signal?.aborted && (rule === 'not-found' || rule === 'session-expired')) {
      folders.reset();
      listings.reset();
    }
    const known = passThrough(err, id, signal);
    if (known !== undefined) return known;
    const detail = createRedactor(auth.secrets())(detailOf(err));
    const retryAfterMs = kind === 'fail-item' ? undefined : retryAfterOf(err);
    return new TargetError(id, kind, `${rule}: ${detail}${adviceFor(rule, id)}`, {
      code: `onedrive.${rule}`,
      // The cause keeps only what is safe to log: our own converted errors, never the SDK's request.
      cause: err instanceof OneDriveHttpError || err instanceof SourceError ? err : undefined,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  function run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return life.run(fn, (err) => wrap(err, signal));
  }

  /** The item at `dest`, or null; with a put's `hold` on the folder, maybe from a listing of it. */
  async function itemAt(dest: Destination, signal?: AbortSignal, hold?: FolderHold<DriveItemJson>): Promise<DriveItemJson | null> {
    const listed = await hold?.find(nameKey(dest.name), signal);
    if (listed !== undefined) return listed[0] ?? null;
    return api.getOrNull<DriveItemJson>(childPath(api.drive, dest.parentId, dest.name, false), { query: { $select: ITEM_SELECT }, signal });
  }

  async function doPut(req: PutRequest): Promise<PutResult> {
    if (req.signal?.aborted) throw abortError(id, req.signal);
    const names = [...rootSegments, ...mapOneDrivePath(req.remotePath, id, rootSegments)];
    const name = names.pop()!;
    const parentId = await folders.resolve(names);
    const hold = listings.open(parentId);
    try {
      return await putInto({ parentId, name }, req, hold);
    } finally {
      hold.close();
    }
  }

  async function putInto(dest: Destination, req: PutRequest, hold: FolderHold<DriveItemJson>): Promise<PutResult> {
    const existing = await itemAt(dest, req.signal, req.firstPut ? hold : undefined);
    if (existing?.folder) {
      throw new TargetError(id, 'fail-item', `path-blocked: a folder is at ${JSON.stringify(req.remotePath)}`, { code: 'onedrive.path-blocked' });
    }
    const same = existing !== null && existing.size === req.size;
    // OneDrive for Business may report no hash for an empty file.
    const matches = (hash: string): boolean => remoteHash(existing!) === hash || (req.size === 0 && remoteHash(existing!) === undefined);
    const unchanged = async (hash: string): Promise<PutResult> => {
      await dropSavedSession(uctx, req);
      return { remoteId: existing!.id, size: req.size, hash, hashKind: 'quickxor', unchanged: true, bytesSent: 0 };
    };
    if (req.size <= simpleUploadMax) {
      const { bytes, hash } = await readWhole(req, id);
      if (same && matches(hash)) return unchanged(hash);
      return simpleUpload(uctx, req, dest, bytes, hash);
    }
    if (same && remoteHash(existing!) !== undefined) {
      const hash = await hashSource(req, id);
      if (matches(hash)) return unchanged(hash);
    }
    return sessionUpload(uctx, req, dest);
  }

  async function doStat(remotePath: string): Promise<RemoteStat | null> {
    const names = [...rootSegments, ...mapOneDrivePath(remotePath, id, rootSegments)];
    const item = await api.getOrNull<DriveItemJson>(`${api.drive}/root:/${encodePath(names)}`, { query: { $select: ITEM_SELECT } });
    if (!item || item.folder || !item.file) return null;
    return { remoteId: item.id, size: item.size ?? 0, hash: remoteHash(item) ?? null };
  }

  async function doCheck(): Promise<string> {
    const drive = await api.get<DriveJson>(api.drive, { query: { $select: 'id,driveType,owner,quota' } });
    const who = await auth.who();
    const q = drive.quota;
    const free = q?.remaining !== undefined ? `, ${(q.remaining / 2 ** 30).toFixed(1)} GiB free` : '';
    let where = 'archiving into the drive root';
    if (rootSegments.length > 0) {
      const root = await api.getOrNull<DriveItemJson>(`${api.drive}/root:/${encodePath(rootSegments)}`, { query: { $select: 'id,folder' } });
      const shown = JSON.stringify(rootSegments.join('/'));
      where = !root ? `remote root ${shown} will be created on the first upload` : root.folder ? `remote root ${shown} is folder ${root.id}` : `remote root ${shown} is a FILE: uploads will fail`;
    }
    const how = auth.kind === 'delegated' ? `delegated, token cache ${tokenCachePath(options, ctx.stateDir)}` : 'app-only';
    return `signed in to OneDrive as ${who} (${how}); ${drive.driveType ?? 'drive'} ${drive.id}${free}; ${where}`;
  }

  const target: Target = {
    id,
    type: 'onedrive',
    features: ONEDRIVE_FEATURES,
    nameKey: oneDrivePathKey,

    put(req: PutRequest): Promise<PutResult> {
      return run(() => doPut(req), req.signal);
    },

    stat(remotePath: string): Promise<RemoteStat | null> {
      return run(() => doStat(remotePath));
    },

    download(req: DownloadRequest): Promise<RemoteDownload | null> {
      return run(() => onedriveDownload({ api, id, names: [...rootSegments, ...mapOneDrivePath(req.remotePath, id, rootSegments)], rewrite, timeoutMs }, req), req.signal);
    },

    list(): AsyncIterable<RemoteEntry> {
      return life.iterate(() => listFiles(api, rootSegments), (err) => wrap(err));
    },

    prepare: foldersAhead((folder) => target.ensureFolder(folder)),

    ensureFolder(remotePath: string): Promise<string> {
      return run(() => folders.resolve(remotePath === '' ? [...rootSegments] : [...rootSegments, ...mapOneDrivePath(remotePath, id, rootSegments)]));
    },

    classify,

    check(): Promise<string> {
      return run(doCheck);
    },

    close: life.close,
  };
  return target;
}

/** The OneDrive target's factory, as the registry knows it. */
