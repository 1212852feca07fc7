/**
 * Options of the Google Drive target and the shapes of the Drive v3 answers it reads.
 */
import type { GdriveConfig } from './provider.js';

/**
 * Options of the Drive target: the config's resolved `type: gdrive` target. Only `id`, `auth`,
 * `remoteRoot`, `sharedDriveId` and `endpoints` are read; the pipeline's keys (`maxDemand`, …)
 * may be present.
 */
export type GdriveOptions = Pick<GdriveConfig, 'id' | 'auth'> &
  Partial<Pick<GdriveConfig, 'type' | 'remoteRoot' | 'sharedDriveId' | 'endpoints'>>;

/**
 * Knobs for tests and benchmarks; of them the config sets only `requestTimeoutMs`. Every field
 * has a production default.
 */
export interface GdriveInternals {
  /**
   * Files up to this size go in one multipart request; larger ones use a resumable session.
   * Default 5 MB (5,000,000 bytes), Google's advice for simple uploads.
   */
  simpleUploadMax?: number;
  /** Bytes per resumable chunk: a positive multiple of 256 KiB. Default 8 MiB. */
  chunkSize?: number;
  /**
   * How long the target is parked once Drive's daily upload cap (750 GB per user per rolling
   * 24 h) is hit, when Drive gives no Retry-After. Default 24 h: the window is rolling and
   * Google tells nothing of when room frees up, so a full day is the bound that surely clears.
   */
  dailyCapParkMs?: number;
  /** Timeout of a metadata request (list, create folder, session start), ms. Default 120 s. */
  requestTimeoutMs?: number;
  /**
   * Slowest upload rate tolerated before an upload request times out, bytes per second: a
   * request carrying n bytes may take `requestTimeoutMs + n / minUploadRate` seconds.
   * Default 16 KiB/s.
   */
  minUploadRate?: number;
}

/** The fields of a Drive file resource the target asks for and reads. */
export interface DriveFileFields {
  id?: string | null;
  name?: string | null;
  mimeType?: string | null;
  /** Decimal string; absent on folders and Google Docs. */
  size?: string | null;
  md5Checksum?: string | null;
  modifiedTime?: string | null;
  createdTime?: string | null;
  headRevisionId?: string | null;
  trashed?: boolean | null;
}

/** A Drive file list page, as far as the target reads it. */
export interface DriveFileList {
  files?: DriveFileFields[] | null;
  nextPageToken?: string | null;
}

/** Drive's error body: `{error: {code, message, errors: [{reason, message, domain}], status}}`. */
export interface DriveErrorBody {
  error?: {
    code?: number;
    message?: string;
    status?: string;
    errors?: Array<{ reason?: string; message?: string; domain?: string }>;
  };
}

/** Google's OAuth token endpoint error body: `{error: 'invalid_grant', error_description}`. */
export interface OAuthErrorBody {
  error?: string;
  error_description?: string;
}

/** The service-account key file fields the target reads. */
export interface ServiceAccountKey {
  type?: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

/** What a resumable upload's resume handle holds (JSON). The session URI is a bearer capability. */
export interface ResumeHandle {
  v: 1;
  /**
   * The session URI: whoever holds it can write the upload. Never log it. Null in the marker
   * journaled just before a session is opened: a handle still null at the next attempt means the
   * process was killed while the session was being created (see upload.ts, `resumableUpload`).
   */
  uri: string | null;
  /** The size the session was opened for. */
  size: number;
  /** The file the session gives new content to; null when it creates a file. */
  fileId: string | null;
}

export const FOLDER_MIME = 'application/vnd.google-apps.folder';
/**
 * What a signed-in user grants (`stagecoach auth`): the files and folders this app made, which is
 * all an archiver touches (it finds and updates only what it made in earlier runs). A
 * non-sensitive scope: an app "In production" needs no verification for it, and its refresh
 * tokens do not expire after 7 days as a "Testing" app's do (docs/clouds.md).
 */
export const DRIVE_FILE_SCOPE = 'https://www.googleapis.com/auth/drive.file';
/**
 * A service account's scope: it is its own identity and sees only what is shared with it (the
 * shared drive it is a member of), so full Drive access there reaches nothing else; it lets the
 * account work in folders of the shared drive that it did not make.
 */
export const DRIVE_SCOPE = 'https://www.googleapis.com/auth/drive';
export const DEFAULT_ROOT_URL = 'https://www.googleapis.com/';
export const DEFAULT_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const DEFAULT_AUTH_URL = 'https://accounts.google.com/o/oauth2/v2/auth';
/** The `fields` of every file the target reads: md5Checksum is only sent when asked for. */
export const FILE_FIELDS = 'id,name,mimeType,size,md5Checksum,modifiedTime,headRevisionId';
/** Google's rule for every resumable chunk but the last. */
export const CHUNK_GRANULARITY = 256 * 1024;
export const DEFAULT_SIMPLE_UPLOAD_MAX = 5_000_000;
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
/** `requestTimeoutMs` when the config sets none: API and token requests alike. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
export const DAY_MS = 24 * 60 * 60 * 1000;
