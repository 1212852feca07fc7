/**
 * The Box target's options (the config's `type: box` entry) and the shapes of the Box API 2.0
 * responses it reads. Only the fields the target uses are typed; everything else Box sends is
 * ignored.
 */
import type { BoxConfig } from './provider.js';

/**
 * Options of the Box target: the config's resolved `type: box` target. Only `id`, `remoteRoot`,
 * `auth` and `endpoints` are read; the pipeline's keys (`maxDemand`, …) may be present.
 */
export type BoxOptions = Pick<BoxConfig, 'id' | 'auth'> &
  Partial<Pick<BoxConfig, 'type' | 'remoteRoot' | 'endpoints'>>;

/**
 * Knobs for tests and benchmarks, never set from the config. Every field has a production
 * default.
 */
export interface BoxInternals {
  /**
   * Files up to this size (bytes) go in one multipart request; larger ones through an upload
   * session. Default 20,000,000 (Box's smallest upload session). Box refuses sessions for smaller
   * files, so a test that lowers it must lower the emulator's `minChunkedSize` too.
   */
  simpleUploadMax?: number;
  /** Waits between commits answered 202 (default: a timer honouring `signal`). */
  sleep?(ms: number, signal?: AbortSignal): Promise<void>;
  /** The clock (token expiry, session expiry). Default Date.now. */
  now?(): number;
  /** Most a request may stay silent, in ms (nothing sent or received, the answer's body included). Default 2 minutes; 0 turns it off. */
  requestTimeoutMs?: number;
  /** Most commit attempts answered 202 within one put before giving up with `retry`. Default 20. */
  maxCommitPolls?: number;
}

/** An item in a folder listing (`GET /folders/:id/items?fields=type,id,name,size,sha1`). */
export interface BoxItemJson {
  type: 'file' | 'folder' | 'web_link';
  id: string;
  name: string;
  size?: number;
  sha1?: string | null;
}

/** A page of a marker-paginated folder listing. */
export interface BoxItemsPage {
  entries: BoxItemJson[];
  next_marker?: string | null;
}

/** The file object returned by uploads and `GET /files/:id` (fields the target reads). */
export interface BoxFileJson {
  type: 'file';
  id: string;
  name: string;
  size: number;
  sha1: string;
}

/** `{ total_count, entries: [file] }`: what an upload or a commit answers. */
export interface BoxFilesJson {
  total_count?: number;
  entries?: BoxFileJson[];
}

/** An upload session (`POST /files/upload_sessions`). */
export interface BoxUploadSessionJson {
  id: string;
  type: 'upload_session';
  part_size: number;
  total_parts: number;
  num_parts_processed?: number;
  session_expires_at?: string;
  session_endpoints: {
    upload_part: string;
    list_parts: string;
    commit: string;
    abort: string;
    status?: string;
    log_event?: string;
  };
}

/** A part Box holds for a session (upload answer `{part}` and list entries). */
export interface BoxPartJson {
  part_id: string;
  offset: number;
  size: number;
  /** Hex SHA-1 of the part. */
  sha1: string;
}

/** `GET <list_parts>`: offset-paginated. */
export interface BoxPartsPage {
  entries: BoxPartJson[];
  total_count?: number;
  offset?: number;
  limit?: number;
}

/** Box's error body (`type: 'error'`); token errors use the OAuth shape (`error`). */
export interface BoxErrorBody {
  type?: string;
  status?: number;
  code?: string;
  message?: string;
  request_id?: string;
  context_info?: { conflicts?: BoxConflictJson | BoxConflictJson[] } & Record<string, unknown>;
  error?: string;
  error_description?: string;
}

/** The item a 409 `item_name_in_use` names. */
export interface BoxConflictJson {
  type?: string;
  id?: string;
  name?: string;
  sha1?: string;
}

/**
 * What a put saves as its resume handle (JSON): the upload session and who it was made for. It
 * holds no secret: the session endpoints need the bearer token to be used.
 */
export interface BoxResumeHandle {
  v: 1;
  provider: 'box';
  sessionId: string;
  fileSize: number;
  partSize: number;
  totalParts: number;
  /** ISO date; past it the session is gone. */
  expiresAt: string | null;
  endpoints: { uploadPart: string; listParts: string; commit: string; abort: string };
  /** A new version of this file, or… */
  fileId: string | null;
  /** …a new file named `fileName` in `folderId`. */
  folderId: string | null;
  fileName: string | null;
}
