/**
 * The Box target: archives into a folder of a Box account through box-node-sdk (10.12), signed in
 * with OAuth (rotating refresh tokens kept in a token file) or a Client Credentials Grant.
 *
 * - Small files (≤ 20,000,000 bytes, Box's smallest upload session) go in one multipart request
 *   (`uploads.uploadFile`, or `uploads.uploadFileVersion` over an existing file); larger ones
 *   through an upload session, one part at a time from disk (the next read while one is sent),
 *   resumable from the saved session.
 * - Every upload is verified: the bytes read equal `size`, and Box's `sha1` and `size` of the
 *   stored file equal the SHA-1 and count of the bytes sent. A mismatch is a `retry`.
 * - A same-name file already there with the same size and sha1 (checked against Box, not only the
 *   cache) uploads nothing; a changed file becomes a new version of the same Box file (same id).
 * - Names are mapped by names.ts (NFC, look-alikes for what Box refuses; case-insensitive).
 * - Errors are classified by classify.ts; the SDK retries nothing but a 401 (refresh and replay
 *   once), the pipeline's pacer does the rest. No message carries a token or the client secret.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, TargetError } from '../../errors.js';
import { createRedactor } from '../../telemetry/redact.js';
import { abortError } from '../kit/abort.js';
import { SourceError, passThrough } from '../kit/classify.js';
import { foldersAhead } from '../kit/ahead.js';
import { createLifecycle } from '../kit/lifecycle.js';
import { checkOptions } from '../kit/options.js';
import type { DownloadRequest, Features, PutRequest, PutResult, RemoteDownload, RemoteEntry, RemoteStat, Target, TargetContext } from '../target.js';
import { boxDownload } from './download.js';
import type { BoxInternals, BoxOptions } from './api-types.js';
import { createBoxAuth, tokenFilePath, type BoxAuth } from './auth.js';
import { BoxHttpError, adviceFor, classify, classifyRule } from './classify.js';
import { FolderTree, ROOT_FOLDER_ID, type BoxEntry } from './folders.js';
import { BoxApi } from './transport.js';
import { boxPathKey, mapBoxPath, nameKey } from './names.js';
import { provider } from './provider.js';
import {
  BOX_MIN_SESSION_SIZE,
  RESTART,
  chunkedUpload,
  hashSource,
  liveFile,
  parseHandle,
  readWhole,
  simpleUpload,
  type Destination,
  type UploadContext,
} from './upload.js';

export type { BoxInternals, BoxOptions } from './api-types.js';

/** What the Box target declares. `chunkSize` is informative: Box sets each session's part size. */
export const BOX_FEATURES: Features = Object.freeze({
  hashKind: 'sha1',
  caseInsensitive: true,
  simpleUploadMax: BOX_MIN_SESSION_SIZE,
  chunkSize: 8 * 1024 * 1024,
  resumable: true,
  rangedDownload: true,
});

// With nothing sent or received for this long the connection is dead (the kit's fetch times silence, not the whole request).
const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
const DEFAULT_MAX_COMMIT_POLLS = 20;
/** Rounds of one put when items appear or vanish under it (409 / 404 / a session gone). */
const MAX_PUT_ROUNDS = 3;

function validate(options: BoxOptions): void {
  checkOptions(provider.schema, options, ['auth', 'remoteRoot']);
}

/**
 * Makes a Box target archiving under `options.remoteRoot` (from "All Files"; created on first
 * use). Nothing is read or requested until the first call. `internals` are for tests.
 *
 * - `put`: maps the path (names.ts), resolves or creates the folders, looks the name up in the
 *   folder (case-insensitive), then: same size → hash the source and confirm Box's sha1 →
 *   `unchanged`; else a multipart upload (≤ 20,000,000 bytes) or an upload session. A name taken
 *   meanwhile becomes a new version of that file; a file or session gone meanwhile is looked up
 *   again (at most 3 rounds). `req.resume` / `req.saveResume` carry the upload session.
 * - `stat`: the file's size and sha1 from Box, or null. `ensureFolder`: the folder id.
 * - `check`: signs in, reads "All Files" and looks the remote root up (does not create it).
 * - `close`: waits for the puts in flight; later calls fail `fatal` (`closed`).
 * - Errors: TargetError (`box.<rule>`, see classify.ts), ShortReadError when the source's length
 *   differs from `size`, or an AbortError when `req.signal` fired.
 */
export function createBoxTarget(options: BoxOptions, ctx: TargetContext, internals: BoxInternals = {}): Target {
  validate(options);
  const id = options.id;
  const log = ctx.log;
  let rootSegments: string[] = [];
  const remoteRoot = options.remoteRoot ?? '';
  if (remoteRoot !== '') {
    try {
      rootSegments = mapBoxPath(remoteRoot.replace(/^\/+|\/+$/g, ''), id);
    } catch (err) {
      throw new ConfigError('remoteRoot', `Expected \`remoteRoot\` to be a path Box accepts: ${(err as Error).message}`, { cause: err });
    }
  }
  const now = internals.now ?? Date.now;
  const auth: BoxAuth = createBoxAuth(options, ctx.stateDir, { requestTimeoutMs: internals.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, now, shared: ctx.shared });
  const redact = (s: string): string => createRedactor(auth.secrets())(s);
  const api = new BoxApi(auth.networkSession, auth.gate, redact);
  const tree = new FolderTree(api, id);
  const life = createLifecycle(id, 'box');

  const uctx: UploadContext = {
    api,
    tree,
    targetId: id,
    log,
    simpleUploadMax: internals.simpleUploadMax ?? BOX_MIN_SESSION_SIZE,
    maxCommitPolls: internals.maxCommitPolls ?? DEFAULT_MAX_COMMIT_POLLS,
    sleep: internals.sleep ?? ((ms, signal) => sleep(ms, undefined, { signal })),
    now,
    abortError: (signal) => abortError(id, signal),
  };

  /** Every error leaving the target goes through here: classified, and clean of secrets. */
  function wrap(err: unknown, signal?: AbortSignal): unknown {
    const known = passThrough(err, id, signal);
    if (known !== undefined) return known;
    if (err instanceof SourceError) {
      const { kind, rule } = classifyRule(err);
      return new TargetError(id, kind, `${rule}: ${err.message.replace(/^\[stagecoach\] /, '')}`, { code: `box.${rule}`, cause: err });
    }
    const e = api.convert(err);
    const { kind, rule } = classifyRule(e);
    // Some id we hold no longer exists on Box: look everything up again on the next attempt.
    if (e instanceof BoxHttpError && e.status === 404) tree.reset();
    const detail = redact(e instanceof Error ? e.message : String(e));
    const retryAfterMs = e instanceof BoxHttpError && kind !== 'fail-item' ? e.retryAfterMs : undefined;
    return new TargetError(id, kind, `${rule}: ${detail}${adviceFor(rule, id)}`, {
      code: `box.${rule}`,
      cause: e instanceof Error ? e : undefined,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }

  async function putOnce(req: PutRequest, dest: Destination): Promise<PutResult | typeof RESTART> {
    const existing = dest.existing;
    if (existing && existing.type !== 'file') {
      throw new TargetError(id, 'fail-item', `path-blocked: a ${existing.type} named ${JSON.stringify(existing.name)} is at ${JSON.stringify(req.remotePath)}`, {
        code: 'box.path-blocked',
      });
    }
    const small = req.size <= uctx.simpleUploadMax;
    let held: Buffer | undefined;
    if (existing && existing.size === req.size) {
      // Read once: a small file's bytes are kept for the upload if it turns out to differ.
      let local: string;
      if (small) {
        held = await readWhole(uctx, req);
        local = createHash('sha1').update(held).digest('hex');
      } else {
        local = await hashSource(uctx, req);
      }
      const live = await liveFile(uctx, existing.id, req.signal);
      if (!live) {
        await tree.forget(dest.parentId, existing.name);
        return RESTART;
      }
      if (live.sha1 === local && live.size === req.size) {
        const stale = parseHandle(req.resume);
        if (stale) log.debug({ sessionId: stale.sessionId }, 'already on Box; dropping the saved upload session');
        if (req.resume !== null) await req.saveResume(null);
        return { remoteId: existing.id, size: req.size, hash: local, hashKind: 'sha1', unchanged: true, bytesSent: 0 };
      }
    }
    if (small) return simpleUpload(uctx, req, dest, held);
    return chunkedUpload(uctx, req, dest);
  }

  async function doPut(given: PutRequest): Promise<PutResult> {
    // `resume` follows what this put saves, so a later round sees the handle it cleared.
    const req: PutRequest = {
      ...given,
      saveResume: async (handle) => {
        req.resume = handle;
        await given.saveResume(handle);
      },
    };
    if (req.signal?.aborted) throw abortError(id, req.signal);
    const segments = [...rootSegments, ...mapBoxPath(req.remotePath, id)];
    const name = segments.pop()!;
    const parentId = (await tree.resolve(segments, true))!;
    for (let round = 0; round < MAX_PUT_ROUNDS; round++) {
      const existing: BoxEntry | undefined = (await tree.listing(parentId)).get(nameKey(name));
      const out = await putOnce(req, { parentId, name, existing });
      if (out !== RESTART) return out;
    }
    throw new TargetError(id, 'retry', `busy-name: ${JSON.stringify(req.remotePath)} keeps changing on Box while it is uploaded`, { code: 'box.busy-name' });
  }

  async function doStat(remotePath: string): Promise<RemoteStat | null> {
    const segments = [...rootSegments, ...mapBoxPath(remotePath, id)];
    const name = segments.pop()!;
    const parentId = await tree.resolve(segments, false);
    if (parentId === null) return null;
    for (let round = 0; round < 2; round++) {
      const entry = (await tree.listing(parentId)).get(nameKey(name));
      if (!entry || entry.type !== 'file') return null;
      const live = await liveFile(uctx, entry.id);
      if (live) return { remoteId: live.id, size: live.size, hash: live.sha1 ?? null };
      // Gone since it was listed: list again, it may exist under another id.
      tree.invalidate(parentId);
    }
    return null;
  }

  const target: Target = {
    id,
    type: 'box',
    features: BOX_FEATURES,
    nameKey: boxPathKey,

    put(req: PutRequest): Promise<PutResult> {
      return life.run(() => doPut(req), (err) => wrap(err, req.signal));
    },

    stat(remotePath: string): Promise<RemoteStat | null> {
      return life.run(() => doStat(remotePath), wrap);
    },

    download(req: DownloadRequest): Promise<RemoteDownload | null> {
      return life.run(() => boxDownload(api, id, doStat, req), (err) => wrap(err, req.signal));
    },

    list(): AsyncIterable<RemoteEntry> {
      return life.iterate(() => tree.files(rootSegments), wrap);
    },

    prepare: foldersAhead((folder) => target.ensureFolder(folder)),

    ensureFolder(remotePath: string): Promise<string> {
      return life.run(async () => {
        const segments = remotePath === '' ? [...rootSegments] : [...rootSegments, ...mapBoxPath(remotePath, id)];
        return (await tree.resolve(segments, true))!;
      }, wrap);
    },

    classify,

    check(): Promise<string> {
      return life.run(async () => {
        await api.call({ method: 'GET', url: `${api.baseUrl}/2.0/folders/${ROOT_FOLDER_ID}`, params: { fields: 'id,name' } });
        const rootId = await tree.resolve(rootSegments, false);
        const how = options.auth.kind === 'oauth' ? `OAuth, tokens in ${tokenFilePath(options, ctx.stateDir)}` : 'Client Credentials Grant';
        const where = rootSegments.length === 0 ? 'archiving into "All Files"' : rootId ? `remote root "${rootSegments.join('/')}" is folder ${rootId}` : `remote root "${rootSegments.join('/')}" will be created on the first upload`;
        return `signed in to Box (${how}); ${where}`;
      }, wrap);
    },

    close: life.close,
  };
  return target;
}

/** The Box target's factory, as the registry knows it. */
