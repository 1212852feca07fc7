/**
 * The Dropbox target's options (the config's `type: dropbox` entry), the test knobs, and the
 * shapes of the Dropbox API v2 answers the target reads. Only the fields the target uses are
 * typed; everything else Dropbox sends is ignored.
 */
import type { DropboxConfig } from './provider.js';

/**
 * Options of the Dropbox target: the config's resolved `type: dropbox` target. Only `id`,
 * `remoteRoot`, `auth` and `endpoints` are read; the pipeline's keys (`maxDemand`, …) may be
 * present.
 */
export type DropboxOptions = Pick<DropboxConfig, 'id' | 'auth'> &
  Partial<Pick<DropboxConfig, 'type' | 'remoteRoot' | 'endpoints'>>;

/** The `endpoints` block: base URLs standing in for api.dropboxapi.com and content.dropboxapi.com. */
export type DropboxEndpoints = NonNullable<DropboxConfig['endpoints']>;

/**
 * Knobs for tests and benchmarks, never set from the config. Every field has a production
 * default.
 */
export interface DropboxInternals {
  /**
   * Files up to this size (bytes) go in one `files/upload` request; larger ones through an upload
   * session. Default 8 MiB; Dropbox allows up to 150 MiB per request.
   */
  simpleUploadMax?: number;
  /**
   * Bytes per upload-session request: a positive multiple of 4 MiB (Dropbox's block size), at most
   * 148 MiB. Default 8 MiB. Two chunks are held in memory per upload: the one sent, and the next,
   * read while it is.
   */
  chunkSize?: number;
  /** Most a request may stay silent, in ms (nothing sent or received, the answer's body included). Default 2 minutes; 0 turns it off. */
  requestTimeoutMs?: number;
}

/** `FileMetadata` as `files/upload`, `upload_session/finish` and `get_metadata` return it. */
export interface DropboxFileMetadata {
  /** `file` in `get_metadata` answers (the Metadata union); absent on upload results. */
  '.tag'?: 'file';
  id: string;
  name: string;
  path_lower?: string;
  path_display?: string;
  size: number;
  rev: string;
  client_modified: string;
  server_modified: string;
  /** Hex SHA-256 over the SHA-256 of each 4 MiB block (see src/archive/dropbox-hash.ts). */
  content_hash?: string;
}

/** `FolderMetadata` (`get_metadata`, `create_folder_v2`'s `metadata`). */
export interface DropboxFolderMetadata {
  '.tag'?: 'folder';
  id: string;
  name: string;
  path_lower?: string;
  path_display?: string;
}

/** What `get_metadata` answers: a file or a folder (deleted entries are not asked for). */
export type DropboxMetadata = (DropboxFileMetadata & { '.tag': 'file' }) | (DropboxFolderMetadata & { '.tag': 'folder' });

/** A Dropbox union value as the JSON encoding writes it: `{'.tag': …, <tag>: inner, …}`. */
export interface DropboxTagged {
  '.tag': string;
  [key: string]: unknown;
}

/**
 * What a chunked put saves as its resume handle (JSON). It holds no secret: a session id is
 * useless without the account's access token. `size` and `path` tie it to one upload: a handle
 * saved for another size or path is ignored.
 */
export interface DropboxResumeHandle {
  v: 1;
  provider: 'dropbox';
  sessionId: string;
  /** Bytes the session holds: the next append starts here. */
  offset: number;
  /** The size of the file being uploaded. */
  size: number;
  /** The mapped Dropbox path (lower case) the session will be committed to. */
  path: string;
}
