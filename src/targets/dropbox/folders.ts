/**
 * Folders on Dropbox. Uploads create their parent folders by themselves, so a put never needs
 * this; `ensureFolder` does (the `Target` contract, an empty folder the user wants). One
 * `create_folder_v2` makes the folder and its missing parents; `path/conflict/folder` (it is
 * there already) is success. Dropbox paths are unique case-insensitively, so concurrent
 * creations cannot make two folders; the cache (by lower-cased path, promises shared) only
 * saves the round trips.
 */
import type { files } from 'dropbox';
import type { RemoteEntry } from '../target.js';
import type { Listing } from '../kit/listings.js';
import type { DropboxFolderMetadata, DropboxMetadata } from './api-types.js';
import type { DropboxSession } from './auth.js';
import { errorTags, isDropboxResponseError } from './classify.js';
import { pathKey } from './names.js';

/** True for `path/conflict/folder`: a folder is already at the path. */
function isFolderThere(err: unknown): boolean {
  if (!isDropboxResponseError(err) || err.status !== 409) return false;
  const tags = errorTags(err);
  return tags[0] === 'path' && tags[1] === 'conflict' && tags[2] === 'folder';
}

/** Pages of one listing read at most: past them the listing fails rather than run on. */
const MAX_LIST_PAGES = 100_000;

/** True for `path/not_found` (also as a listing's `path/not_found`): nothing at the path. */
function isNotFound(err: unknown): boolean {
  if (!isDropboxResponseError(err) || err.status !== 409) return false;
  const tags = errorTags(err);
  return tags[0] === 'path' && tags[1] === 'not_found';
}

/**
 * Every file below `rootPath` (a Dropbox API path; `''` is the top of the Dropbox), for
 * `Target.list`: `files/list_folder` with `recursive: true`, then `files/list_folder/continue`
 * with the cursor while `has_more`, as documented:
 * https://www.dropbox.com/developers/documentation/http/documentation#files-list_folder and
 * https://www.dropbox.com/developers/documentation/http/documentation#files-list_folder-continue.
 * Folders and `deleted` entries are skipped; paths are relative to `rootPath`, from
 * `path_display` (`path_lower` when Dropbox leaves it out). Nothing when the root does not exist
 * yet. A Dropbox target writes no temp file (an upload session is no file), so nothing else is left out.
 */
export async function* listFiles(session: DropboxSession, rootPath: string, signal?: AbortSignal): AsyncGenerator<RemoteEntry> {
  const prefix = pathKey(rootPath) + '/';
  let res: files.ListFolderResult;
  try {
    res = (await session.call((dbx) => dbx.filesListFolder({ path: rootPath, recursive: true }), signal)).result;
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    for (const e of res.entries) {
      if (e['.tag'] !== 'file') continue;
      const full = e.path_display ?? e.path_lower;
      if (full === undefined || !pathKey(full).startsWith(prefix)) continue;
      yield { path: full.slice(prefix.length), size: e.size, hash: e.content_hash ?? null };
    }
    if (!res.has_more) return;
    const cursor: string = res.cursor;
    res = (await session.call((dbx) => dbx.filesListFolderContinue({ cursor }), signal)).result;
  }
  throw new Error(`[stagecoach] [dropbox] the listing of ${JSON.stringify(rootPath)} ran past ${MAX_LIST_PAGES} pages`);
}

/**
 * One folder's children (files and folders, not deleted), at most `maxPages` pages of 2,000
 * (`limit`, its documented maximum: files/list_folder, then files/list_folder/continue while
 * `has_more`), for the lookups of a run of puts into it (kit/listings.ts). `complete` false when
 * more remain. A folder not made yet lists as empty and complete.
 */
export async function listChildren(session: DropboxSession, folder: string, maxPages: number, signal?: AbortSignal): Promise<Listing<DropboxMetadata>> {
  const entries: DropboxMetadata[] = [];
  let res: files.ListFolderResult;
  try {
    res = (await session.call((dbx) => dbx.filesListFolder({ path: folder, limit: 2000 }), signal)).result;
  } catch (err) {
    if (isNotFound(err)) return { entries, complete: true };
    throw err;
  }
  for (let page = 0; page < maxPages; page++) {
    for (const e of res.entries) if (e['.tag'] === 'file' || e['.tag'] === 'folder') entries.push(e as unknown as DropboxMetadata);
    if (!res.has_more) return { entries, complete: true };
    if (page + 1 === maxPages) break;
    const cursor: string = res.cursor;
    res = (await session.call((dbx) => dbx.filesListFolderContinue({ cursor }), signal)).result;
  }
  return { entries, complete: false };
}

/** Folder ids by lower-cased path; at most one creation in flight per folder. */
export class FolderCache {
  readonly #session: DropboxSession;
  readonly #known = new Map<string, Promise<string>>();

  constructor(session: DropboxSession) {
    this.#session = session;
  }

  /**
   * Makes sure a folder is at `path` (a Dropbox API path, `/a/b`; `''` is the account's root) and
   * resolves with its id (`id:…`; `''` for the root). Rejects with the SDK's error when
   * something else is there (`path/conflict/file`) or the call fails; a failure is not cached.
   */
  ensure(path: string, signal?: AbortSignal): Promise<string> {
    if (path === '') return Promise.resolve('');
    const key = pathKey(path);
    const known = this.#known.get(key);
    if (known !== undefined) return known;
    const made = this.#create(path, signal).catch((err: unknown) => {
      this.#known.delete(key);
      throw err;
    });
    this.#known.set(key, made);
    return made;
  }

  /** Forgets every folder (after a 404: something was deleted behind the target's back). */
  reset(): void {
    this.#known.clear();
  }

  async #create(path: string, signal?: AbortSignal): Promise<string> {
    const session = this.#session;
    try {
      const res = await session.call((dbx) => dbx.filesCreateFolderV2({ path, autorename: false }), signal);
      return (res.result.metadata as DropboxFolderMetadata).id;
    } catch (err) {
      if (!isFolderThere(err)) throw err;
    }
    const res = await session.call((dbx) => dbx.filesGetMetadata({ path }), signal);
    const meta = res.result as unknown as DropboxMetadata;
    return meta.id;
  }
}
