/**
 * Folder ids of the OneDrive target, resolved and created once and cached.
 *
 * A folder path not in the cache is first looked up whole (`GET …/root:/a/b/c`: one request when
 * it exists). Missing, its parent is resolved the same way (looked up first, so a fresh process
 * never tries to create a folder that exists), then the segment is created with `POST …/children` and
 * `@microsoft.graph.conflictBehavior: fail` (without a behaviour, Graph answers 200 with the
 * existing folder or renames — it is always sent); a 409 `nameAlreadyExists` (another put, or
 * another process, made it meanwhile) is read back by name. OneDrive keeps one item per
 * (case-insensitive) name in a folder, and concurrent resolutions of one path share one
 * promise, so parallel puts into a new folder create it once.
 *
 * Resolutions take no abort signal: one may be shared by several puts, and a cancel of one
 * must not fail the others (folder calls are short).
 *
 * Ids are kept until `reset()` (the target calls it after a 404: a cached folder was deleted).
 * The drive root is the alias `root`.
 */
import { TargetError } from '../../errors.js';
import type { RemoteEntry } from '../target.js';
import type { Listing } from '../kit/listings.js';
import { walkRemoteTree } from '../kit/remote-tree.js';
import type { DriveItemJson } from './api-types.js';
import { ITEM_SELECT } from './api-types.js';
import { OneDriveHttpError } from './classify.js';
import type { GraphApi } from './transport.js';
import { encodePath, nameKey } from './names.js';

/** The id the drive root goes by. */
export const ROOT_ID = 'root';

/** Graph path of an item by id (`root` is the drive root). */
export function itemPath(drive: string, id: string): string {
  return id === ROOT_ID ? `${drive}/root` : `${drive}/items/${encodeURIComponent(id)}`;
}

/**
 * Graph path of the item `name` in folder `parentId`, for a suffix: `…/root:/name:` or
 * `…/items/{id}:/name:`. Without `colon` (plain GET), the trailing `:` is left off.
 */
export function childPath(drive: string, parentId: string, name: string, colon = true): string {
  return `${itemPath(drive, parentId)}:/${encodeURIComponent(name)}${colon ? ':' : ''}`;
}

/**
 * Folder ids by (case-folded) path, resolved or created on demand; see the module comment.
 * Safe to call concurrently: one path is resolved once, whatever the number of callers.
 */
export class FolderCache {
  private readonly ids = new Map<string, Promise<string>>();

  /** `onCreated`: told the id of each folder this cache makes (known empty then). */
  constructor(
    private readonly api: GraphApi,
    private readonly targetId: string,
    private readonly onCreated: (id: string) => void = () => undefined,
  ) {}

  /** Forgets every id: the next resolutions look the folders up again. */
  reset(): void {
    this.ids.clear();
  }

  private blocked(names: readonly string[]): TargetError {
    return new TargetError(this.targetId, 'fail-item', `path-blocked: a file is at ${JSON.stringify(names.join('/'))}, where a folder is needed`, {
      code: 'onedrive.path-blocked',
    });
  }

  private remember(key: string, p: Promise<string>): Promise<string> {
    this.ids.set(key, p);
    // A failed resolution is not cached: the next put tries again.
    p.catch(() => {
      if (this.ids.get(key) === p) this.ids.delete(key);
    });
    return p;
  }

  /**
   * The id of the folder at `names` (mapped names from the drive root; [] is the root),
   * created with its missing parents. Throws TargetError `path-blocked` when a file is in the way.
   */
  resolve(names: readonly string[]): Promise<string> {
    if (names.length === 0) return Promise.resolve(ROOT_ID);
    const key = names.map(nameKey).join('/');
    const known = this.ids.get(key);
    if (known !== undefined) return known;
    return this.remember(
      key,
      (async () => {
        const found = await this.api.getOrNull<DriveItemJson>(`${this.api.drive}/root:/${encodePath(names)}`, { query: { $select: 'id,name,folder,file' } });
        if (found) {
          if (!found.folder) throw this.blocked(names);
          return found.id;
        }
        return this.create(names);
      })(),
    );
  }

  /** Creates `names` (its parent first, through the cache), known to be missing a moment ago. */
  private create(names: readonly string[]): Promise<string> {
    const parentNames = names.slice(0, -1);
    const name = names[names.length - 1]!;
    const parentKey = parentNames.map(nameKey).join('/');
    // The parent is looked up before it is created: in a fresh process the parents of a new
    // folder usually exist, and a create of each would cost a 409 and a lookup.
    const parent = parentNames.length === 0 ? Promise.resolve(ROOT_ID) : (this.ids.get(parentKey) ?? this.resolve(parentNames));
    return (async () => {
      const parentId = await parent;
      try {
        const made = await this.api.post<DriveItemJson>(
          `${itemPath(this.api.drive, parentId)}/children`,
          { name, folder: {}, '@microsoft.graph.conflictBehavior': 'fail' },
        );
        this.onCreated(made.id);
        return made.id;
      } catch (err) {
        if (!(err instanceof OneDriveHttpError) || err.status !== 409) throw err;
      }
      const there = await this.api.getOrNull<DriveItemJson>(childPath(this.api.drive, parentId, name, false), { query: { $select: 'id,name,folder,file' } });
      if (!there) {
        throw new TargetError(this.targetId, 'retry', `conflict: the folder ${JSON.stringify(names.join('/'))} was reported existing, then not found`, {
          code: 'onedrive.conflict',
        });
      }
      if (!there.folder) throw this.blocked(names);
      return there.id;
    })();
  }
}

/** Pages of one folder's children read at most. */
const MAX_LIST_PAGES = 100_000;

/**
 * Every file below the folder at `names` (mapped names from the drive root; [] is the root), for
 * `Target.list`: each folder's children (`GET …/children`, https://learn.microsoft.com/en-us/graph/api/driveitem-list-children),
 * page by page while the answer carries `@odata.nextLink` (https://learn.microsoft.com/en-us/graph/paging),
 * sub-folders walked depth first. Only the next link's query (its `$skiptoken`) is taken: the
 * request goes to the same children path through the SDK, so a link naming another host gets no
 * token. Items that are neither file nor folder (OneNote packages) are skipped; a OneDrive target
 * writes no temp file (an upload session is no item), so nothing else is left out. Nothing when
 * the folder does not exist yet.
 */
/**
 * One folder's children (files and folders), at most `maxPages` pages of 999 (`$top`, Graph's largest page; Graph
 * pages with `@odata.nextLink`, https://learn.microsoft.com/en-us/graph/paging), for the lookups
 * of a run of puts into it (kit/listings.ts); `complete` false when more pages remain.
 */
export async function listChildren(api: GraphApi, parentId: string, maxPages: number, signal?: AbortSignal): Promise<Listing<DriveItemJson>> {
  const entries: DriveItemJson[] = [];
  let query: Record<string, string> = { $select: ITEM_SELECT, $top: '999' };
  for (let page = 0; page < maxPages; page++) {
    const res = await api.get<{ value?: DriveItemJson[]; '@odata.nextLink'?: string }>(`${itemPath(api.drive, parentId)}/children`, { query, signal });
    for (const item of res.value ?? []) if (typeof item.name === 'string') entries.push(item);
    const next = res['@odata.nextLink'];
    if (typeof next !== 'string') return { entries, complete: true };
    query = Object.fromEntries(new URL(next).searchParams);
  }
  return { entries, complete: false };
}

export async function* listFiles(api: GraphApi, names: readonly string[]): AsyncGenerator<RemoteEntry> {
  let top = ROOT_ID;
  if (names.length > 0) {
    const found = await api.getOrNull<DriveItemJson>(`${api.drive}/root:/${encodePath(names)}`, { query: { $select: 'id,name,folder,file' } });
    if (!found?.folder) return;
    top = found.id;
  }
  yield* walkRemoteTree(top, async function* (id) {
    let query: Record<string, string> = { $select: 'id,name,size,file,folder' };
    for (let page = 0; ; page++) {
      if (page >= MAX_LIST_PAGES) throw new Error(`[stagecoach] [onedrive] the listing of folder ${id} ran past ${MAX_LIST_PAGES} pages`);
      const res = await api.get<{ value?: DriveItemJson[]; '@odata.nextLink'?: string }>(`${itemPath(api.drive, id)}/children`, { query });
      for (const item of res.value ?? []) {
        if (item.folder) yield { name: item.name, folderId: item.id };
        else if (item.file) yield { name: item.name, size: item.size ?? 0, hash: item.file.hashes?.quickXorHash || null };
      }
      const next = res['@odata.nextLink'];
      if (typeof next !== 'string') break;
      query = Object.fromEntries(new URL(next).searchParams);
    }
  });
}
