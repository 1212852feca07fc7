/**
 * Folders on Dropbox. Uploads create their parent folders by themselves, so a put never needs
 * this; `ensureFolder` does (the `Target` contract, an empty folder the user wants). One
 * `create_folder_v2` makes the folder and its missing parents; `path/conflict/folder` (it is
 * there already) is success. Dropbox paths are unique case-insensitively, so concurrent
 * creations cannot make two folders; the cache (by lower-cased path, promises shared) only
 * saves the round trips.
 */
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
