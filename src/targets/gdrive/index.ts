/**
 * The Google Drive target: archives into My Drive (OAuth refresh token) or a shared drive
 * (service account, or OAuth with `sharedDriveId`), under `remoteRoot`.
 *
 * A put looks the folder path up (creating what is missing, once: see folders.ts), looks for a
 * file of the same exact name there, and then:
 * - same size and the same md5 as the source (hashed only in that case) → unchanged, nothing sent;
 * - otherwise uploads: multipart up to `simpleUploadMax` (5 MB), a resumable session above
 *   (8 MiB chunks, its handle saved in the store so a restart resumes it); onto the existing
 *   file as a new revision (same file id), or as a new file;
 * - then checks Drive's size and md5Checksum against the bytes read. A mismatch is a failed
 *   attempt (retry `hash-mismatch`): a file it just created is deleted; a new revision of an
 *   existing file stays until the retry replaces it (Drive keeps the old revision).
 * Drive stores nothing for an upload that does not complete (a multipart body cut before its
 * end, a session never finished), so a failed put leaves the previous copy or nothing.
 */
import { ConfigError, TargetError, type ErrorKind } from '../../errors.js';
import { abortError } from '../kit/abort.js';
import { passThrough } from '../kit/classify.js';
import { foldersAhead } from '../kit/ahead.js';
import { createLifecycle } from '../kit/lifecycle.js';
import { checkOptions } from '../kit/options.js';
import type { DownloadRequest, Features, PutRequest, PutResult, RemoteDownload, RemoteEntry, RemoteStat, Target, TargetContext } from '../target.js';
import { driveDownload } from './download.js';
import {
  CHUNK_GRANULARITY,
  DAY_MS,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_SIMPLE_UPLOAD_MAX,
  type DriveFileFields,
  type GdriveInternals,
  type GdriveOptions,
} from './api-types.js';
import { createDriveAuth } from './auth.js';
import { classify as classifyDrive, inspect, toTargetError } from './classify.js';
import { createDriveApi } from './transport.js';
import { DriveFolders } from './folders.js';
import { drivePathKey, mapDrivePath, mapRemoteRoot } from './names.js';
import { provider } from './provider.js';
import { decodeHandle, hashSource, resumableUpload, simpleUpload, type UploadDest, type UploadOutcome } from './upload.js';
import { hashBuffer } from '../../archive/hash.js';
import { readSmallSync } from '../kit/chunks.js';

export type { GdriveInternals, GdriveOptions } from './api-types.js';

function validate(options: GdriveOptions, internals: GdriveInternals): void {
  checkOptions(provider.schema, options, ['auth']);
  const chunk = internals.chunkSize;
  if (chunk !== undefined && (!Number.isSafeInteger(chunk) || chunk <= 0 || chunk % CHUNK_GRANULARITY !== 0)) {
    throw new ConfigError('chunkSize', `Expected \`chunkSize\` to be a positive multiple of ${CHUNK_GRANULARITY}, got ${chunk}`);
  }
  const simple = internals.simpleUploadMax;
  if (simple !== undefined && (!Number.isSafeInteger(simple) || simple < 0)) {
    throw new ConfigError('simpleUploadMax', `Expected \`simpleUploadMax\` to be a size in bytes, got ${simple}`);
  }
}

/**
 * Makes a Google Drive target.
 *
 * - `put`: see the module comment. Puts to one remote path run one at a time; folders are
 *   made once per path even under concurrent puts. The resume handle (JSON with the session
 *   URI, a bearer capability: never logged) is saved when a session opens and cleared on
 *   success, on a source that changed, and when the session is gone.
 * - `stat`: the exact-name file (most recent of same-name siblings), its size and md5; null
 *   when it or a folder on the way is missing. Creates nothing.
 * - `ensureFolder`: the folder's id, made if missing ('' is the `remoteRoot` folder).
 * - `classify`: classify.ts; every error a method throws is a TargetError already classified
 *   (or ShortReadError / AbortError), its message and cause free of tokens.
 * - `check`: who the target writes as, the storage quota, whether `remoteRoot` exists; warns
 *   when a service account has no shared drive (it has no storage quota of its own).
 * - `close`: resolves once the puts in flight have settled; later puts fail fatal `closed`.
 * Auth: a refresh token (`auth.kind: oauth`) refreshed 5 min before expiry and after a 401;
 * a revoked one fails fatal `auth-revoked` naming `stagecoach auth <id>`.
 * `internals` are for tests (the config sets only `requestTimeoutMs`).
 */
export function createGdriveTarget(options: GdriveOptions, ctx: TargetContext, internals: GdriveInternals = {}): Target {
  validate(options, internals);
  const id = options.id;
  const log = ctx.log;
  const auth = createDriveAuth(options, internals, ctx.stateDir);
  const api = createDriveApi(options, internals, auth);
  const folders = new DriveFolders(api, log, ctx.locks);
  const rootSegments = mapRemoteRoot(options.remoteRoot ?? '', id);
  const simpleUploadMax = internals.simpleUploadMax ?? DEFAULT_SIMPLE_UPLOAD_MAX;
  const chunkSize = internals.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const dailyCapParkMs = internals.dailyCapParkMs ?? DAY_MS;
  const features: Features = Object.freeze({ hashKind: 'md5', caseInsensitive: false, simpleUploadMax, chunkSize, resumable: true, rangedDownload: true });
  const life = createLifecycle(id, 'gdrive');
  const pathLocks = new Map<string, Promise<unknown>>();

  function fail(rule: string, kind: ErrorKind, detail: string): TargetError {
    return new TargetError(id, kind, `${rule}: ${detail}`, { code: `gdrive.${rule}` });
  }

  /** Every error leaving the target goes through here, so `classify` sees only known shapes. */
  function wrap(err: unknown, signal?: AbortSignal): unknown {
    const known = passThrough(err, id, signal);
    if (known !== undefined) return known;
    // A 404 on a cached folder id: the folder went away behind our back; look it up again next time.
    if (inspect(err)?.status === 404) folders.forget();
    return toTargetError(id, err, { dailyCapParkMs, authKind: auth.kind });
  }

  /** Runs puts of one remote path one after the other. */
  async function serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = pathLocks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    pathLocks.set(key, tail);
    try {
      return await run;
    } finally {
      if (pathLocks.get(key) === tail) pathLocks.delete(key);
    }
  }

  async function verified(req: PutRequest, dest: UploadDest, out: UploadOutcome): Promise<PutResult> {
    const f = out.file;
    const storedSize = f.size === undefined || f.size === null ? Number.NaN : Number(f.size);
    const remoteMd5 = f.md5Checksum ?? null;
    if (storedSize === req.size && remoteMd5 === out.md5 && f.id) {
      return { remoteId: f.id, size: storedSize, hash: out.md5, hashKind: 'md5', unchanged: false, bytesSent: out.bytesSent };
    }
    await req.saveResume(null);
    if (dest.fileId === null && f.id) {
      // A bad copy we just made must not stay behind as if archived.
      await api
        .authed(() => api.drive.files.delete({ fileId: f.id!, supportsAllDrives: true }, api.callOptions()))
        .catch((err: unknown) => log.warn({ err: toTargetError(id, err), fileId: f.id }, 'a mismatched upload could not be deleted'));
    }
    if (storedSize !== req.size) {
      throw fail('size-mismatch', 'retry', `Drive stored ${Number.isNaN(storedSize) ? 'an unknown number of' : storedSize} bytes, ${req.size} were sent`);
    }
    throw fail('hash-mismatch', 'retry', `Drive's md5Checksum ${remoteMd5 ?? '(none)'} differs from the md5 ${out.md5} of the bytes sent`);
  }

  async function upload(req: PutRequest, parentId: string, name: string, existing: DriveFileFields | null, held: Buffer | null): Promise<PutResult> {
    let handle = decodeHandle(req.resume);
    const existingId = existing?.id ?? null;
    if (req.resume !== null && (handle === null || handle.size !== req.size || handle.fileId !== existingId)) {
      // Not ours, or opened for another size or another file: start over. A session of another
      // version is abandoned, said once here: Drive documents no cancel; unused, it expires
      // within a week and creates no file.
      if (handle?.uri) log.info({ remotePath: req.remotePath, sessionSize: handle.size, size: req.size }, 'a saved Drive resumable session belongs to another version of this file; abandoned, a new upload starts');
      handle = null;
      await req.saveResume(null);
    }
    const dest: UploadDest = { parentId, name, fileId: existingId, mtimeMs: req.mtimeMs };
    const uctx = { api, targetId: id, signal: req.signal };
    let out: UploadOutcome;
    if (handle === null && req.size <= simpleUploadMax) {
      out = await api.authed(() => simpleUpload(uctx, req, dest, held));
    } else {
      out = await resumableUpload(uctx, req, dest, { chunkSize, resume: handle, saveResume: (h) => req.saveResume(h), log });
    }
    const result = await verified(req, dest, out);
    if (handle !== null || req.size > simpleUploadMax) await req.saveResume(null);
    return result;
  }

  async function doPut(req: PutRequest): Promise<PutResult> {
    if (req.signal?.aborted) throw abortError(id, req.signal);
    const segments = [...rootSegments, ...mapDrivePath(req.remotePath, id)];
    return serialised(segments.join('/'), async () => {
      const name = segments[segments.length - 1]!;
      const parentId = (await folders.resolve(segments.slice(0, -1), true, req.signal))!;
      const hold = folders.hold(parentId);
      try {
        const existing = await folders.findFile(parentId, name, req.signal, req.firstPut ? hold : undefined);
        // A small source is read once, whole: the bytes hashed here are the bytes sent.
        let held: Buffer | null = null;
        if (existing?.id && existing.md5Checksum && Number(existing.size) === req.size) {
          held = readSmallSync(req);
          const md5 = held ? hashBuffer('md5', held) : await hashSource(req, id);
          if (md5 === existing.md5Checksum) {
            if (req.resume !== null) await req.saveResume(null);
            return { remoteId: existing.id, size: req.size, hash: md5, hashKind: 'md5', unchanged: true, bytesSent: 0 };
          }
        }
        return await upload(req, parentId, name, existing, held);
      } finally {
        hold.close();
      }
    });
  }

  const target: Target = {
    id,
    type: 'gdrive',
    features,
    nameKey: drivePathKey,

    put(req: PutRequest): Promise<PutResult> {
      return life.run(() => doPut(req), (err) => wrap(err, req.signal));
    },

    stat(remotePath: string): Promise<RemoteStat | null> {
      return life.run(async () => {
        const segments = [...rootSegments, ...mapDrivePath(remotePath, id)];
        const parentId = await folders.resolve(segments.slice(0, -1), false);
        if (parentId === null) return null;
        const f = await folders.findFile(parentId, segments[segments.length - 1]!);
        if (!f?.id) return null;
        return { remoteId: f.id, size: Number(f.size ?? 0), hash: f.md5Checksum ?? null };
      }, wrap);
    },

    download(req: DownloadRequest): Promise<RemoteDownload | null> {
      return life.run(() => driveDownload({ id, api, folders, rootSegments }, req), (err) => wrap(err, req.signal));
    },

    list(): AsyncIterable<RemoteEntry> {
      return life.iterate(() => folders.files(rootSegments), (err) => wrap(err));
    },

    prepare: foldersAhead((folder) => target.ensureFolder(folder)),

    ensureFolder(remotePath: string): Promise<string> {
      return life.run(async () => {
        const segments = remotePath === '' ? rootSegments : [...rootSegments, ...mapDrivePath(remotePath, id)];
        return (await folders.resolve(segments, true))!;
      }, wrap);
    },

    classify(error: unknown) {
      return classifyDrive(error, { targetId: id, dailyCapParkMs, authKind: auth.kind });
    },

    check(): Promise<string> {
      return life.run(async () => {
        const lines: string[] = [];
        if (auth.kind === 'serviceAccount' && !api.sharedDriveId) {
          lines.push(
            `WARNING: service account ${auth.email ?? ''} has no storage quota of its own: uploads fail with storageQuotaExceeded ` +
              'unless `sharedDriveId` names a shared drive the service account is a member of (Content manager or above)',
          );
        }
        const about = await api.authed(() => api.drive.about.get({ fields: 'user(emailAddress,displayName),storageQuota(limit,usage)' }, api.callOptions()));
        const who = about.data.user?.emailAddress ?? about.data.user?.displayName ?? auth.email ?? 'an unnamed account';
        if (api.sharedDriveId) {
          const d = await api.authed(() => api.drive.files.get({ fileId: api.sharedDriveId!, fields: 'id,name', supportsAllDrives: true }, api.callOptions()));
          lines.unshift(`Google Drive reachable as ${who}; shared drive "${d.data.name ?? api.sharedDriveId}"`);
        } else {
          const q = about.data.storageQuota;
          const gib = (v: string | null | undefined): string => (v ? `${(Number(v) / 2 ** 30).toFixed(1)} GiB` : 'unlimited');
          lines.unshift(`Google Drive reachable as ${who}; ${gib(q?.usage)} used of ${gib(q?.limit)}`);
        }
        const rootId = await folders.resolve(rootSegments, false);
        lines.push(
          rootSegments.length === 0
            ? 'archiving at the top of the drive'
            : rootId === null
              ? `remoteRoot "${rootSegments.join('/')}" does not exist yet (it is made on the first upload)`
              : `remoteRoot "${rootSegments.join('/')}" exists`,
        );
        return lines.join('\n');
      }, wrap);
    },

    close: life.close,
  };
  return target;
}

/** The Drive target's factory, as the registry knows it. */
