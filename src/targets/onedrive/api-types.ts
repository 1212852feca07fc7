/**
 * The OneDrive target's options (the config's `type: onedrive` entry) and the shapes of the
 * Microsoft Graph v1.0 answers it reads. Only the fields the target uses are typed; everything
 * else Graph sends is ignored.
 */
import type { OnedriveConfig } from './provider.js';

/**
 * Options of the OneDrive target: the config's resolved `type: onedrive` target. Only `id`,
 * `auth`, `remoteRoot`, `driveId` and `endpoints` are read; the pipeline's keys (`maxDemand`, …)
 * may be present.
 */
export type OnedriveOptions = Pick<OnedriveConfig, 'id' | 'auth'> &
  Partial<Pick<OnedriveConfig, 'type' | 'remoteRoot' | 'driveId' | 'endpoints'>>;

/** Delegated sign-in (a person's OneDrive, Personal or for Business), device-code flow. */
export type OnedriveDelegatedAuth = Extract<OnedriveOptions['auth'], { kind: 'delegated' }>;
/** App-only sign-in (client credentials) writing a business user's drive. */
export type OnedriveAppAuth = Extract<OnedriveOptions['auth'], { kind: 'app' }>;

/**
 * Knobs for tests and benchmarks, never set from the config. Every field has a production
 * default.
 */
export interface OnedriveInternals {
  /** Files up to this size (bytes) go in one `PUT …/content`; larger ones through an upload session. Default 4 MiB. */
  simpleUploadMax?: number;
  /** Bytes per upload-session fragment: a multiple of 320 KiB, under 60 MiB. Default 10 × 320 KiB. */
  fragmentSize?: number;
  /** A request that sends or receives nothing for this long fails (`network`). Default 2 minutes; 0: never. */
  requestTimeoutMs?: number;
}

/** `file.hashes` of a driveItem: quickXorHash is the one hash both Personal and Business report. */
export interface DriveItemHashes {
  quickXorHash?: string;
  sha1Hash?: string;
  sha256Hash?: string;
}

/** A driveItem (`GET …/root:/a/b`, upload answers, folder creation). */
export interface DriveItemJson {
  id: string;
  name: string;
  size?: number;
  file?: { mimeType?: string; hashes?: DriveItemHashes };
  folder?: { childCount?: number };
  parentReference?: { id?: string; path?: string; driveId?: string };
}

/** A drive (`GET /me/drive`, `/users/{id}/drive`, `/drives/{id}`). */
export interface DriveJson {
  id: string;
  driveType?: string;
  owner?: { user?: { displayName?: string } };
  quota?: { total?: number; used?: number; remaining?: number; state?: string };
}

/** The answer to `createUploadSession`, and to `GET uploadUrl` (the status of a session). */
export interface UploadSessionJson {
  uploadUrl?: string;
  expirationDateTime?: string;
  /** Ranges the service still needs, e.g. `["26214400-"]`; empty once every byte arrived. */
  nextExpectedRanges?: string[];
}

/** Graph's error body: `{error: {code, message, innerError: {code?, date, request-id}}}`. */
export interface GraphErrorBody {
  error: {
    code: string;
    message?: string;
    innerError?: { code?: string; date?: string; 'request-id'?: string; innerError?: { code?: string } };
    innererror?: { code?: string };
  };
}

/**
 * What `req.saveResume` stores for an upload session (JSON). `uploadUrl` is a bearer
 * capability: whoever holds it can write the file until the session expires. It is kept only in
 * the state store (mode 0600) and never logged.
 */
export interface ResumeHandle {
  v: 1;
  uploadUrl: string;
  /** The size the session was created for. */
  size: number;
  /** `<parent id>/<name key>`: the session belongs to this destination only. */
  dest: string;
}

/** Files up to this size go in one simple PUT (Graph: "up to 4 MB"). */
export const SIMPLE_UPLOAD_MAX = 4 * 1024 * 1024;
/** Upload-session fragments are multiples of this (320 KiB). */
export const FRAGMENT_UNIT = 327_680;
/** Fragments must be smaller than 60 MiB. */
export const MAX_FRAGMENT = 60 * 1024 * 1024;
/** Default fragment: 10 × 320 KiB = 3,276,800 bytes (Microsoft's recommended 5–10 MiB range, one in memory per upload). */
export const DEFAULT_FRAGMENT_SIZE = 10 * FRAGMENT_UNIT;
/** The scope an app-only (client credentials) token is asked with. */
export const GRAPH_DEFAULT_SCOPE = 'https://graph.microsoft.com/.default';
/** The identity platform's public base. */
export const LOGIN_BASE_URL = 'https://login.microsoftonline.com';
/** driveItem fields the target reads. */
export const ITEM_SELECT = 'id,name,size,file,folder,parentReference';
