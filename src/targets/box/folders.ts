/**
 * Folders on Box: path → id resolution from folder 0, with a cache of folder listings.
 *
 * Box has no lookup by path, so a folder's children are listed (marker pagination, 1000 a page)
 * once and kept: the same listing answers "which folder is `a`" and "is there a file `x.bin`
 * here, of which size and sha1". The target updates the cache with what it writes itself, so a
 * listing is fetched once per folder per run. What others change on Box meanwhile is caught
 * where it matters: an upload named like a file that appeared is 409 `item_name_in_use` (the put
 * then uploads a new version), an id that disappeared is 404 (the put drops the cache and the
 * pacer retries), and an "unchanged" verdict is confirmed against Box before it is given.
 *
 * Folder creation is single-flight per (parent, name): parallel puts into a new folder make one
 * POST /folders. A 409 `item_name_in_use` from it (another process made the folder first) gives
 * the existing folder's id from `context_info.conflicts`.
 */
import { TargetError } from '../../errors.js';
import type { RemoteEntry } from '../target.js';
import { walkRemoteTree } from '../kit/remote-tree.js';
import type { BoxConflictJson, BoxItemJson, BoxItemsPage } from './api-types.js';
import { BoxHttpError } from './classify.js';
import type { BoxApi } from './transport.js';
import { nameKey } from './names.js';

/** The id of "All Files", the root of every Box account. */
export const ROOT_FOLDER_ID = '0';

/** One child of a folder as the cache keeps it. */
export interface BoxEntry {
  type: 'file' | 'folder' | 'web_link';
  id: string;
  /** The name as Box stores it. */
  name: string;
  size?: number;
  sha1?: string | null;
}

/** Children of one folder by `nameKey`. */
export type Listing = Map<string, BoxEntry>;

/** Folders whose listing stays cached; past it the least recently used is dropped. */
const MAX_CACHED_LISTINGS = 2000;
/** Pages of one listing (1000 items each); past it the folder is too big to scan. */
const MAX_PAGES = 10_000;

/** The conflict of a 409 of type `type`, if any. */
export function conflictOf(err: unknown, type?: string): BoxConflictJson | undefined {
  if (!(err instanceof BoxHttpError) || err.status !== 409 || err.boxCode !== 'item_name_in_use') return undefined;
  return err.conflicts.find((c) => typeof c.id === 'string' && (type === undefined || c.type === type));
}

/** Resolves and creates folders under folder 0, with the listing cache described above. */
export class FolderTree {
  readonly #listings = new Map<string, Promise<Listing>>();
  readonly #creating = new Map<string, Promise<string>>();

  constructor(
    private readonly api: BoxApi,
    private readonly targetId: string,
  ) {}

  /** The children of `folderId` (fetched once, then served and updated from the cache). */
  listing(folderId: string): Promise<Listing> {
    const cached = this.#listings.get(folderId);
    if (cached !== undefined) {
      this.#listings.delete(folderId);
      this.#listings.set(folderId, cached);
      return cached;
    }
    // Not tied to one caller's signal: other puts may wait on the same listing.
    const p = this.#fetchListing(folderId).catch((err: unknown) => {
      if (this.#listings.get(folderId) === p) this.#listings.delete(folderId);
      throw err;
    });
    this.#remember(folderId, p);
    return p;
  }

  #remember(folderId: string, p: Promise<Listing>): void {
    this.#listings.set(folderId, p);
    while (this.#listings.size > MAX_CACHED_LISTINGS) {
      const oldest = this.#listings.keys().next().value as string;
      this.#listings.delete(oldest);
    }
  }

  async #fetchListing(folderId: string): Promise<Listing> {
    const out: Listing = new Map();
    let marker: string | null = null;
    for (let page = 0; page < MAX_PAGES; page++) {
      const params: Record<string, string> = { fields: 'type,id,name,size,sha1', usemarker: 'true', limit: '1000' };
      if (marker) params.marker = marker;
      const res = await this.api.call<BoxItemsPage>({ method: 'GET', url: `${this.api.baseUrl}/2.0/folders/${folderId}/items`, params });
      for (const e of res.data.entries ?? []) out.set(nameKey(e.name), entryOf(e));
      marker = res.data.next_marker ?? null;
      if (!marker) return out;
    }
    throw new TargetError(this.targetId, 'fail-item', `folder-too-big: folder ${folderId} has more than ${MAX_PAGES * 1000} items`, {
      code: 'box.folder-too-big',
    });
  }

  /**
   * Every file below the folder at `segments` (Box names; [] is folder 0), for `Target.list`:
   * each folder's items read afresh, page by page (marker pagination, as `listing` does:
   * https://developer.box.com/reference/get-folders-id-items/ and
   * https://developer.box.com/guides/api-calls/pagination/marker-based/), sub-folders walked
   * depth first; the cache is neither read nor filled. Web links are no files and are skipped; a
   * Box target writes no temp file (an upload session is no item), so nothing else is left out.
   * Nothing when the folder does not exist yet.
   */
  async *files(segments: readonly string[]): AsyncGenerator<RemoteEntry> {
    const top = await this.resolve(segments, false);
    if (top === null) return;
    const fetchListing = (id: string) => this.#fetchListing(id);
    yield* walkRemoteTree(top, async function* (id) {
      for (const e of (await fetchListing(id)).values()) {
        if (e.type === 'folder') yield { name: e.name, folderId: e.id };
        else if (e.type === 'file') yield { name: e.name, size: e.size ?? 0, hash: e.sha1 ?? null };
      }
    });
  }

  /** Records `entry` in the cached listing of `folderId` (if cached). */
  async note(folderId: string, entry: BoxEntry): Promise<void> {
    const p = this.#listings.get(folderId);
    if (!p) return;
    const l = await p.catch(() => null);
    l?.set(nameKey(entry.name), entry);
  }

  /** Forgets `name` in the cached listing of `folderId`. */
  async forget(folderId: string, name: string): Promise<void> {
    const l = await this.#listings.get(folderId)?.catch(() => null);
    l?.delete(nameKey(name));
  }

  /** Drops the cached listing of `folderId`: the next look lists it again. */
  invalidate(folderId: string): void {
    this.#listings.delete(folderId);
  }

  /** Drops every cached listing (after a 404: some id we hold is stale). */
  reset(): void {
    this.#listings.clear();
  }

  /**
   * The id of the folder at `segments` (Box names, already mapped) under folder 0. With
   * `create`, missing folders are made; without, a missing one gives null. A file where a folder
   * is needed fails the item (`path-blocked`).
   */
  async resolve(segments: readonly string[], create: boolean): Promise<string | null> {
    let id = ROOT_FOLDER_ID;
    for (const name of segments) {
      const found = (await this.listing(id)).get(nameKey(name));
      if (found?.type === 'folder') {
        id = found.id;
        continue;
      }
      if (found) {
        throw new TargetError(this.targetId, 'fail-item', `path-blocked: a ${found.type} named ${JSON.stringify(found.name)} is where a folder is needed`, {
          code: 'box.path-blocked',
        });
      }
      if (!create) return null;
      id = await this.#create(id, name);
    }
    return id;
  }

  #create(parentId: string, name: string): Promise<string> {
    const key = `${parentId}/${nameKey(name)}`;
    let p = this.#creating.get(key);
    if (!p) {
      p = this.#doCreate(parentId, name).finally(() => this.#creating.delete(key));
      this.#creating.set(key, p);
    }
    return p;
  }

  async #doCreate(parentId: string, name: string): Promise<string> {
    try {
      const res = await this.api.call<BoxItemJson>({
        method: 'POST',
        url: `${this.api.baseUrl}/2.0/folders`,
        params: { fields: 'type,id,name' },
        json: { name, parent: { id: parentId } },
      });
      const made = res.data;
      await this.note(parentId, { type: 'folder', id: made.id, name: made.name ?? name });
      // A folder just made is empty: no need to list it.
      this.#remember(made.id, Promise.resolve(new Map()));
      return made.id;
    } catch (err) {
      const clash = conflictOf(err);
      if (clash?.type === 'folder') {
        await this.note(parentId, { type: 'folder', id: clash.id!, name: clash.name ?? name });
        return clash.id!;
      }
      if (clash) {
        throw new TargetError(this.targetId, 'fail-item', `path-blocked: a ${clash.type ?? 'item'} named ${JSON.stringify(clash.name ?? name)} is where a folder is needed`, {
          code: 'box.path-blocked',
          cause: err,
        });
      }
      throw err;
    }
  }
}

function entryOf(e: BoxItemJson): BoxEntry {
  const out: BoxEntry = { type: e.type, id: String(e.id), name: e.name };
  if (typeof e.size === 'number') out.size = e.size;
  if (e.sha1 !== undefined) out.sha1 = e.sha1;
  return out;
}
