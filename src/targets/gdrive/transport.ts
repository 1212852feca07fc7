/**
 * The Drive v3 SDK pointed where the config says (Google, or an emulator on loopback), with its
 * retries off, and the two habits every call of the target shares: a 401 drops the access token
 * and replays the call once, and every request has a timeout.
 *
 * Pointing: `drive({rootUrl})` serves metadata calls, but the SDK builds upload URLs from the
 * per-call `rootUrl` only, so every media call passes `callOptions()` (without it uploads go
 * to www.googleapis.com whatever the client says).
 */
import { drive, type drive_v3 } from '@googleapis/drive';
import type { gaxios } from 'google-auth-library';
import { DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_ROOT_URL, type GdriveInternals, type GdriveOptions } from './api-types.js';
import type { DriveAuth } from './auth.js';

export interface CallOptions {
  signal?: AbortSignal;
  /** Bytes the request carries: the timeout grows with them. */
  bytes?: number;
}

/** The SDK and raw-request access a Drive target uses. */
export interface DriveApi {
  readonly drive: drive_v3.Drive;
  readonly auth: DriveAuth;
  /** Base URL with one trailing slash (`https://www.googleapis.com/`). */
  readonly rootUrl: string;
  /** Set when archiving into a shared drive: its id is also its root folder's id. */
  readonly sharedDriveId: string | undefined;
  /** Per-call options: rootUrl, retries off, timeout, abort signal. Media calls MUST pass them. */
  callOptions(o?: CallOptions): { rootUrl: string; retry: false; signal: AbortSignal };
  /** Parameters of `files.list` (shared-drive corpora when one is configured). */
  listParams(): { supportsAllDrives: true; includeItemsFromAllDrives: true; corpora?: string; driveId?: string };
  /**
   * Runs `fn`; when it fails with a 401 from Drive (an access token refused before its
   * expiry), drops the token and runs `fn` once more. `fn` MUST rebuild its request body
   * (re-open a stream) on each call: a stream is consumed by the first try.
   */
  authed<T>(fn: () => Promise<T>): Promise<T>;
  /** A request through the auth client (Authorization added, retries off, timeout set). */
  request<T>(opts: gaxios.GaxiosOptions, o?: CallOptions): Promise<gaxios.GaxiosResponse<T>>;
}

/** True for a 401 from the Drive API (not the token endpoint's `invalid_client`). */
export function isTokenRefused(err: unknown): boolean {
  const res = (err as { response?: { status?: unknown; data?: unknown } } | null)?.response;
  if (res?.status !== 401) return false;
  const data = res.data as { error?: unknown } | null | undefined;
  return typeof data?.error !== 'string';
}

/**
 * A signal that aborts after `ms` (reason: a TimeoutError) or when `outer` aborts. Given both a
 * `timeout` and a `signal`, gaxios combines them with `AbortSignal.any([signal,
 * AbortSignal.timeout(ms)])` and keeps no reference to the timeout signal: on Node 20 a garbage
 * collection then drops it and the request never times out (a hung request held its upload for
 * ever; the chaos suite found it). Here the combined signal holds its timeout signal itself, and
 * is held by the request while it runs.
 */
export function timeoutSignal(ms: number, outer?: AbortSignal): AbortSignal {
  const timedOut = AbortSignal.timeout(ms);
  if (!outer) return timedOut;
  const both = AbortSignal.any([outer, timedOut]);
  Object.defineProperty(both, KEEP, { value: timedOut });
  return both;
}

const KEEP = Symbol('stagecoach.timeout-signal');

export function createDriveApi(options: GdriveOptions, internals: GdriveInternals, auth: DriveAuth): DriveApi {
  const rootUrl = (options.endpoints?.rootUrl ?? DEFAULT_ROOT_URL).replace(/\/*$/, '/');
  const requestTimeoutMs = internals.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const minUploadRate = internals.minUploadRate ?? 16 * 1024;
  const sharedDriveId = options.sharedDriveId;
  const d = drive({ version: 'v3', auth: auth.client, rootUrl, retry: false });

  const timeoutFor = (bytes = 0): number => Math.ceil(requestTimeoutMs + (bytes / minUploadRate) * 1000);

  return {
    drive: d,
    auth,
    rootUrl,
    sharedDriveId,
    callOptions(o = {}) {
      return { rootUrl, retry: false, signal: timeoutSignal(timeoutFor(o.bytes), o.signal) };
    },
    listParams() {
      return sharedDriveId
        ? { supportsAllDrives: true, includeItemsFromAllDrives: true, corpora: 'drive', driveId: sharedDriveId }
        : { supportsAllDrives: true, includeItemsFromAllDrives: true };
    },
    async authed<T>(fn: () => Promise<T>): Promise<T> {
      try {
        return await fn();
      } catch (err) {
        if (!isTokenRefused(err)) throw err;
        auth.invalidate();
        return await fn();
      }
    },
    request<T>(opts: gaxios.GaxiosOptions, o: CallOptions = {}) {
      const full: gaxios.GaxiosOptions = { ...opts, retry: false, signal: timeoutSignal(timeoutFor(o.bytes), o.signal) };
      return auth.client.request<T>(full);
    },
  };
}
