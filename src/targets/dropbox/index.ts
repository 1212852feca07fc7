/**
 * The Dropbox target: archives into a folder of a Dropbox account through the official SDK
 * (`dropbox` 10.34), signed in with an app key, a refresh token and the app secret (or none, for
 * a token obtained with PKCE).
 *
 * - Small files (≤ 8 MiB) go in one `files/upload` request, streamed from disk; larger ones
 *   through an upload session in 8 MiB chunks, resumable from the saved `{sessionId, offset}`.
 * - Every upload is verified: the bytes read equal `size`, and Dropbox's `content_hash` and
 *   `size` of the stored file equal the content hash and count of the bytes sent. A mismatch is a
 *   `retry`.
 * - A file already at the path with the same size and content hash uploads nothing; a changed
 *   file overwrites the same path (mode `overwrite`: a new revision of the same file id).
 * - Names are mapped by names.ts (NFC, look-alikes for what Dropbox refuses; case-insensitive).
 * - Errors are classified by classify.ts; the target retries nothing but a 401 with an expired
 *   access token (refresh once, replay) and an `incorrect_offset` (continue from Dropbox's
 *   offset); the pipeline's pacer does the rest. No message carries a token or the app secret.
 */
import { readSavedToken } from '../saved-token.js';
import { ConfigError, TargetError } from '../../errors.js';
import { createRedactor } from '../../telemetry/redact.js';
import { abortError } from '../kit/abort.js';
import { SourceError, passThrough } from '../kit/classify.js';
import { createLifecycle } from '../kit/lifecycle.js';
import { FolderListings, type FolderHold } from '../kit/listings.js';
import { checkOptions } from '../kit/options.js';
import type { DownloadRequest, Features, PutRequest, PutResult, RemoteDownload, RemoteEntry, RemoteStat, Target, TargetContext } from '../target.js';
import { dropboxDownload } from './download.js';
import type { DropboxInternals, DropboxMetadata, DropboxOptions } from './api-types.js';
import { createDropboxSession } from './auth.js';
import { adviceFor, classify, classifyRule, describeResponse, errorTags, isDropboxResponseError } from './classify.js';
import { FolderCache, listChildren, listFiles } from './folders.js';
import { dropboxPath, dropboxPathKey, mapDropboxPath, pathKey } from './names.js';
import { provider } from './provider.js';
import { DEFAULT_CHUNK_SIZE, DROPBOX_BLOCK, IN_MEMORY_MAX, MAX_REQUEST_BYTES, chunkedUpload, hashSource, readWhole, simpleUpload, uploadBytes, type UploadContext, type UploadOutcome } from './upload.js';

export type { DropboxInternals, DropboxOptions } from './api-types.js';

/** What the Dropbox target declares. */
export const DROPBOX_FEATURES: Features = Object.freeze({
  hashKind: 'dropbox',
  caseInsensitive: true,
  simpleUploadMax: DEFAULT_CHUNK_SIZE,
  chunkSize: DEFAULT_CHUNK_SIZE,
  resumable: true,
  rangedDownload: true,
});

// With nothing sent or received for this long the connection is dead (the kit's fetch times silence, not the whole request).
const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;

function validate(options: DropboxOptions, internals: DropboxInternals): void {
  checkOptions(provider.schema, options, ['auth', 'remoteRoot', 'endpoints']);
  const chunk = internals.chunkSize;
  if (chunk !== undefined && (!Number.isInteger(chunk) || chunk <= 0 || chunk % DROPBOX_BLOCK !== 0 || chunk > MAX_REQUEST_BYTES)) {
    throw new ConfigError('chunkSize', `Expected \`chunkSize\` to be a positive multiple of 4 MiB up to 148 MiB, got ${String(chunk)}`);
  }
  const simple = internals.simpleUploadMax;
  if (simple !== undefined && (!Number.isInteger(simple) || simple < 0 || simple > MAX_REQUEST_BYTES)) {
    throw new ConfigError('simpleUploadMax', `Expected \`simpleUploadMax\` to be a size from 0 to 150 MiB, got ${String(simple)}`);
  }
}

function isNotFound(err: unknown): boolean {
  if (!isDropboxResponseError(err) || err.status !== 409) return false;
  const tags = errorTags(err);
  return tags[0] === 'path' && tags[1] === 'not_found';
}

/**
 * Makes a Dropbox target archiving under `options.remoteRoot` (from the top of the Dropbox; made
 * on the first upload). Nothing is requested until the first call. `internals` are for tests.
 *
 * - `put`: maps the path (names.ts), looks it up (`get_metadata`): a folder there fails the
 *   item (`path-blocked`); a file of the same size is compared by content hash (the source is
 *   read once for it) → `unchanged`, nothing sent. Otherwise a simple upload (≤ 8 MiB; the source
 *   is read twice: to hash it for Dropbox's check, then to send it) or an upload session (see
 *   upload.ts). `req.resume` / `req.saveResume` carry `{sessionId, offset}`; the handle is
 *   cleared once the session is committed or found gone.
 * - `stat`: the file's id, size and content hash, or null (nothing, or a folder).
 * - `ensureFolder`: creates the folder (and its parents) unless there; resolves with its id
 *   (`''` for the top of the Dropbox when there is no remote root).
 * - `check`: signs in, reads the account and its space, and looks the remote root up.
 * - `close`: waits for the calls in flight; later calls fail `fatal` (`closed`).
 * - Errors: TargetError (`dropbox.<rule>`, see classify.ts), ShortReadError when the source's
 *   length differs from `size`, or an AbortError when `req.signal` fired.
 */
export function createDropboxTarget(options: DropboxOptions, ctx: TargetContext, internals: DropboxInternals = {}): Target {
  validate(options, internals);
  const id = options.id;
  const log = ctx.log;
  let rootSegments: string[] = [];
  const remoteRoot = (options.remoteRoot ?? '').replace(/^\/+|\/+$/g, '');
  if (remoteRoot !== '') {
    try {
      rootSegments = mapDropboxPath(remoteRoot, id);
    } catch (err) {
      throw new ConfigError('remoteRoot', `Expected \`remoteRoot\` to be a path Dropbox accepts: ${(err as Error).message}`, { cause: err });
    }
  }
  const rootPath = dropboxPath(rootSegments);
  // No token in the config: the one `stagecoach auth` saved (none is fatal for this target).
  if (options.auth.refreshToken === undefined) options = { ...options, auth: { ...options.auth, refreshToken: readSavedToken(options.id, ctx.stateDir) } };
  const session = createDropboxSession(options, { timeoutMs: internals.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS });
  const redact = (s: string): string => createRedactor(session.secrets())(s);
  const folders = new FolderCache(session);
  // A folder's children for a run of puts into it (kit/listings.ts): one listing, not a lookup per file.
  const listings = new FolderListings<DropboxMetadata>({
    list: (folder, maxPages, signal) => listChildren(session, folder, maxPages, signal),
    keyOf: (e) => pathKey(e.name),
  });
  const simpleUploadMax = internals.simpleUploadMax ?? DEFAULT_CHUNK_SIZE;
  const life = createLifecycle(id, 'dropbox');

  const uctx: UploadContext = {
    session,
    targetId: id,
    log,
    chunkSize: internals.chunkSize ?? DEFAULT_CHUNK_SIZE,
    abortError: (signal) => abortError(id, signal),
  };

  /** Every error leaving the target goes through here: classified, and clean of secrets. */
  function wrap(err: unknown, where: string, signal?: AbortSignal): unknown {
    const known = passThrough(err, id, signal);
    if (known !== undefined) return known;
    const { kind, rule, retryAfterMs } = classifyRule(err);
    if (isDropboxResponseError(err) && err.status === 404) {
      folders.reset();
      listings.reset();
    }
    let detail: string;
    if (isDropboxResponseError(err)) detail = describeResponse(err);
    else if (err instanceof SourceError) detail = `source: ${err.cause instanceof Error ? err.cause.message : String(err.cause)}`;
    else detail = err instanceof Error ? err.message.replace(/^\[stagecoach\] \[[^\]]*\] /, '') : String(err);
    if (detail.startsWith(`${rule}: `)) detail = detail.slice(rule.length + 2);
    const message = redact(`${rule}: ${detail} (${where})${adviceFor(rule, id)}`);
    return new TargetError(id, kind, message, {
      code: `dropbox.${rule}`,
      cause: err,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  function fullPath(remotePath: string): string {
    return dropboxPath([...rootSegments, ...mapDropboxPath(remotePath, id)]);
  }

  /** The metadata at `path`, or null; with a put's `hold` on its folder, maybe from a listing of it. */
  async function lookup(path: string, signal?: AbortSignal, hold?: FolderHold<DropboxMetadata>): Promise<DropboxMetadata | null> {
    const listed = await hold?.find(pathKey(path.slice(path.lastIndexOf('/') + 1)), signal);
    if (listed !== undefined) return listed[0] ?? null;
    try {
      const res = await session.call((dbx) => dbx.filesGetMetadata({ path }), signal);
      return res.result as unknown as DropboxMetadata;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async function doPut(req: PutRequest): Promise<PutResult> {
    if (req.signal?.aborted) throw abortError(id, req.signal);
    const path = fullPath(req.remotePath);
    const hold = listings.open(pathKey(path.slice(0, path.lastIndexOf('/'))));
    try {
      return await putAt(path, req, hold);
    } finally {
      hold.close();
    }
  }

  async function putAt(path: string, req: PutRequest, hold: FolderHold<DropboxMetadata>): Promise<PutResult> {
    const existing = await lookup(path, req.signal, req.firstPut ? hold : undefined);
    if (existing?.['.tag'] === 'folder') {
      throw new TargetError(id, 'fail-item', `path-blocked: a folder is at ${JSON.stringify(path)}, where the file ${JSON.stringify(req.remotePath)} goes`, {
        code: 'dropbox.path-blocked',
      });
    }
    const same = existing?.['.tag'] === 'file' && existing.size === req.size ? existing : null;
    const unchanged = async (hash: string): Promise<PutResult> => {
      if (req.resume !== null) await req.saveResume(null);
      return { remoteId: same!.id, size: same!.size, hash, hashKind: 'dropbox', unchanged: true, bytesSent: 0 };
    };
    let out: UploadOutcome;
    if (req.size <= Math.min(IN_MEMORY_MAX, simpleUploadMax)) {
      // Small: one read serves the "already there" check and the upload.
      const { bytes, hash } = await readWhole(uctx, req);
      if (same && hash === same.content_hash) return unchanged(hash);
      out = await uploadBytes(uctx, req, path, bytes, hash);
    } else {
      let local: string | undefined;
      if (same) {
        local = await hashSource(uctx, req);
        if (local === same.content_hash) return unchanged(local);
      }
      out =
        req.size <= simpleUploadMax
          ? await simpleUpload(uctx, req, path, local ?? (await hashSource(uctx, req)))
          : await chunkedUpload(uctx, req, path);
    }
    if (existing?.['.tag'] === 'file' && existing.id !== out.meta.id) {
      log.warn({ path, before: existing.id, after: out.meta.id }, 'Dropbox stored the new version under another file id');
    }
    return { remoteId: out.meta.id, size: out.meta.size, hash: out.hash, hashKind: 'dropbox', unchanged: false, bytesSent: out.bytesSent };
  }

  const target: Target = {
    id,
    type: 'dropbox',
    features: DROPBOX_FEATURES,
    nameKey: dropboxPathKey,

    put(req: PutRequest): Promise<PutResult> {
      return life.run(() => doPut(req), (err) => wrap(err, `put ${JSON.stringify(req.remotePath)}`, req.signal));
    },

    stat(remotePath: string): Promise<RemoteStat | null> {
      return life.run(
        async () => {
          const meta = await lookup(fullPath(remotePath));
          if (meta?.['.tag'] !== 'file') return null;
          return { remoteId: meta.id, size: meta.size, hash: meta.content_hash ?? null };
        },
        (err) => wrap(err, `stat ${JSON.stringify(remotePath)}`),
      );
    },

    download(req: DownloadRequest): Promise<RemoteDownload | null> {
      const missing = (e: unknown): boolean => isNotFound(e) || (isDropboxResponseError(e) && e.status === 409 && errorTags(e)[1] === 'not_file');
      return life.run(
        () => dropboxDownload(session, id, fullPath(req.remotePath), missing, req),
        (err) => wrap(err, `download ${JSON.stringify(req.remotePath)}`, req.signal),
      );
    },

    list(): AsyncIterable<RemoteEntry> {
      return life.iterate(() => listFiles(session, rootPath), (err) => wrap(err, 'list'));
    },

    ensureFolder(remotePath: string): Promise<string> {
      return life.run(
        () => folders.ensure(remotePath === '' ? rootPath : fullPath(remotePath)),
        (err) => wrap(err, `ensureFolder ${JSON.stringify(remotePath)}`),
      );
    },

    classify,

    check(): Promise<string> {
      return life.run(async () => {
        const account = (await session.call((dbx) => dbx.usersGetCurrentAccount())).result;
        const space = (await session.call((dbx) => dbx.usersGetSpaceUsage())).result;
        const allocated = (space.allocation as { allocated?: number }).allocated;
        const gib = (n: number): string => `${(n / 2 ** 30).toFixed(1)} GiB`;
        const usage = allocated !== undefined ? `${gib(space.used)} of ${gib(allocated)} used` : `${gib(space.used)} used`;
        let where = 'archiving into the top of the Dropbox';
        if (rootPath !== '') {
          const meta = await lookup(rootPath);
          if (meta?.['.tag'] === 'file') {
            throw new TargetError(id, 'fatal', `root-blocked: a file is at the remote root ${JSON.stringify(rootPath)}; remove it or change remoteRoot`, {
              code: 'dropbox.root-blocked',
            });
          }
          where = meta ? `remote root ${JSON.stringify(rootPath)} exists` : `remote root ${JSON.stringify(rootPath)} will be made on the first upload`;
        }
        const how = options.auth.appSecret ? 'app key + secret' : 'app key + PKCE';
        return `signed in to Dropbox as ${account.email} (${how}); ${usage}; ${where}`;
      }, (err) => wrap(err, 'check'));
    },

    close: life.close,
  };
  return target;
}

/** The Dropbox target's factory, as the registry knows it. */
