/**
 * Folder and file lookup on Drive, where names are not unique: two siblings may share a name,
 * so a folder is looked up before it is made, and the same folder is never made twice by this
 * process. Folder ids are cached by path; the first lookup-or-create of a path runs alone and
 * every concurrent caller waits for it (a per-path promise), so eight puts into a new folder
 * make one folder.
 *
 * Several daemons on one journal may look a missing folder up at the same moment and each make
 * one: Drive keeps both, and each daemon's files would land in its own. So with the journal's
 * fleet locks (TargetContext.locks):
 * - "look it up again, make it if still missing" runs under a lock named after the parent and
 *   the name, one daemon at a time;
 * - after making a folder, it is looked up once more (for what the lock cannot cover: a search
 *   answering before it shows the folder another daemon just made, a writer outside the fleet):
 *   when same-name folders are there, every daemon takes the same one, the oldest (then the
 *   smallest id), and the one just made is deleted if nothing was put in it yet.
 * A daemon alone on its journal is the only one making folders in its archive: it does neither.
 *
 * Drive's `name = '…'` is case-insensitive (and the emulator's too), while names themselves
 * are case-sensitive: every result is re-checked for the exact (NFC) name.
 */
import type { Logger } from 'pino';
import type { FleetLocks, RemoteEntry } from '../target.js';
import { FolderListings, type FolderHold, type Listing } from '../kit/listings.js';
import { walkRemoteTree } from '../kit/remote-tree.js';
import { FOLDER_MIME, type DriveFileFields, type DriveFileList } from './api-types.js';
import type { DriveApi } from './transport.js';
import { queryLiteral } from './names.js';

/** Pages of a name lookup read at most (100 entries each): same-name siblings beyond are ignored. */
const MAX_LOOKUP_PAGES = 10;
const LOOKUP_FIELDS = 'nextPageToken,files(id,name,mimeType,size,md5Checksum,modifiedTime,createdTime)';
/** Pages of one folder's listing read at most (1000 entries asked each). */
const MAX_WALK_PAGES = 10_000;
const WALK_FIELDS = 'nextPageToken,files(id,name,mimeType,size,md5Checksum)';

function keyOf(segments: readonly string[]): string {
  return segments.join('/');
}

function time(s: string | null | undefined): number {
  const t = s ? Date.parse(s) : Number.NaN;
  return Number.isNaN(t) ? 0 : t;
}

/** Of same-name folders, the one every daemon takes: the oldest, then the smallest id. */
function oldest(found: readonly DriveFileFields[]): DriveFileFields {
  return found.reduce((a, b) => {
    const ta = time(a.createdTime);
    const tb = time(b.createdTime);
    return tb < ta || (tb === ta && b.id! < a.id!) ? b : a;
  });
}

/**
 * Resolves folder paths to ids (creating what is missing when asked) and finds files by name.
 * Paths are arrays of already-mapped names (see names.ts), from the top of My Drive or of the
 * shared drive.
 */
export class DriveFolders {
  readonly #api: DriveApi;
  readonly #log: Logger;
  readonly #ids = new Map<string, string>();
  readonly #pending = new Map<string, Promise<string | null>>();
  #root: Promise<string> | null = null;
  /** A folder's children for a run of puts into it (kit/listings.ts): one files.list, not one per file. */
  readonly #listings: FolderListings<DriveFileFields>;

  readonly #locks: FleetLocks | undefined;

  constructor(api: DriveApi, log: Logger, locks?: FleetLocks) {
    this.#api = api;
    this.#log = log;
    this.#locks = locks;
    this.#listings = new FolderListings({
      list: (parentId, maxPages, signal) => this.#children(parentId, maxPages, signal),
      keyOf: (f) => (typeof f.name === 'string' ? f.name.normalize('NFC') : ''),
    });
  }

  /** A put's hold on its parent folder, for `findFile` (close it once the put has ended). */
  hold(parentId: string): FolderHold<DriveFileFields> {
    return this.#listings.open(parentId);
  }

  /** The id of the top folder: the shared drive's id, or My Drive's root (asked once). */
  rootId(signal?: AbortSignal): Promise<string> {
    if (this.#api.sharedDriveId) return Promise.resolve(this.#api.sharedDriveId);
    this.#root ??= this.#api
      .authed(() => this.#api.drive.files.get({ fileId: 'root', fields: 'id' }, this.#api.callOptions(signal ? { signal } : {})))
      .then((res) => {
        if (!res.data.id) throw new Error('Drive answered files.get(root) without an id');
        return res.data.id;
      })
      .catch((err: unknown) => {
        this.#root = null;
        throw err;
      });
    return this.#root;
  }

  /** Forgets every cached id (after a 404: a folder was deleted or moved behind our back). */
  forget(): void {
    this.#ids.clear();
    this.#root = null;
    this.#listings.reset();
  }

  /**
   * The id of the folder at `segments`; with `create`, every missing folder on the way is made
   * (each after a lookup, one lookup-or-create per path at a time). Without `create`, null when
   * a folder on the way is missing. Errors are the SDK's (the caller classifies them).
   */
  async resolve(segments: readonly string[], create: boolean, signal?: AbortSignal): Promise<string | null> {
    let parent = await this.rootId(signal);
    for (let i = 1; i <= segments.length; i++) {
      const id = await this.#step(segments.slice(0, i), parent, create, signal);
      if (id === null) return null;
      parent = id;
    }
    return parent;
  }

  async #step(path: readonly string[], parentId: string, create: boolean, signal?: AbortSignal): Promise<string | null> {
    const key = keyOf(path);
    // Each pass waits for another caller's attempt to settle; a failed attempt fails its
    // waiters too (the same server would refuse them). Bounded: past the passes, go ahead.
    for (let pass = 0; pass < 8; pass++) {
      const known = this.#ids.get(key);
      if (known !== undefined) return known;
      const running = this.#pending.get(key);
      if (!running) break;
      const id = await running;
      if (id !== null) return id;
      if (!create) return null;
      // A lookup-only attempt found nothing: start our own create, or join one begun meanwhile.
    }
    const known = this.#ids.get(key);
    if (known !== undefined) return known;
    const attempt = this.#lookupOrCreate(path, parentId, create, signal);
    this.#pending.set(key, attempt);
    try {
      return await attempt;
    } finally {
      if (this.#pending.get(key) === attempt) this.#pending.delete(key);
    }
  }

  async #lookupOrCreate(path: readonly string[], parentId: string, create: boolean, signal?: AbortSignal): Promise<string | null> {
    const name = path[path.length - 1]!;
    // By name, never from a listing: another daemon on a shared journal may have made it a
    // moment ago, and Drive would take a second folder of the name.
    const found = await this.#named(parentId, name, true, signal);
    if (found.length > 0) return this.#take(path, found);
    if (!create) return null;
    // One daemon: nobody else makes folders in its archive.
    if (this.#locks === undefined) return this.#create(path, parentId, false, signal);
    return this.#locks.run(`gdrive-folder:${parentId}/${name}`, async () => {
      // Another daemon may have made it while this one waited for the lock.
      const again = await this.#named(parentId, name, true, signal);
      return again.length > 0 ? this.#take(path, again) : this.#create(path, parentId, true, signal);
    });
  }

  /** Takes the one of same-name folders every daemon takes (see `oldest`) as the folder at `path`. */
  #take(path: readonly string[], found: readonly DriveFileFields[]): string {
    const pick = oldest(found);
    if (found.length > 1) this.#log.debug({ folder: keyOf(path), count: found.length, picked: pick.id }, 'several folders share this name; using the oldest');
    this.#ids.set(keyOf(path), pick.id!);
    return pick.id!;
  }

  /** Makes the folder at `path`; with `converge`, then takes the oldest of its name (see the module comment). */
  async #create(path: readonly string[], parentId: string, converge: boolean, signal?: AbortSignal): Promise<string> {
    const name = path[path.length - 1]!;
    const res = await this.#api.authed(() =>
      this.#api.drive.files.create(
        { requestBody: { name, mimeType: FOLDER_MIME, parents: [parentId] }, fields: 'id', supportsAllDrives: true },
        this.#api.callOptions(signal ? { signal } : {}),
      ),
    );
    const id = res.data.id;
    if (!id) throw new Error('Drive answered a folder creation without an id');
    this.#log.debug({ folder: keyOf(path), id }, 'folder created');
    const same = converge ? await this.#named(parentId, name, true, signal) : [];
    const pick = same.some((f) => f.id !== id) ? oldest(same) : null;
    if (pick === null || pick.id === id) {
      this.#listings.created(id);
      this.#ids.set(keyOf(path), id);
      return id;
    }
    // Someone else made one of this name first: take theirs, as they and everyone else do, and
    // drop ours unless something was put in it meanwhile.
    this.#log.debug({ folder: keyOf(path), made: id, taken: pick.id }, 'a folder of this name was made elsewhere at the same time; using the oldest');
    this.#ids.set(keyOf(path), pick.id!);
    await this.#dropIfEmpty(id, signal).catch((err: unknown) => this.#log.debug({ err, id }, 'an unused duplicate folder could not be deleted'));
    return pick.id!;
  }

  /** Deletes folder `id` if it has no children (a duplicate nobody took). */
  async #dropIfEmpty(id: string, signal?: AbortSignal): Promise<void> {
    const children = await this.#children(id, 1, signal);
    if (children.entries.length > 0) return;
    await this.#api.authed(() => this.#api.drive.files.delete({ fileId: id, supportsAllDrives: true }, this.#api.callOptions(signal ? { signal } : {})));
  }

  /**
   * The file named exactly `name` (NFC) in `parentId`, not a folder, not trashed; null when
   * there is none. When several share the name (made outside Stagecoach, or by a lost answer),
   * the most recently modified one, with a debug log. With a put's `hold` on the folder, the
   * answer may come from a listing of the folder (see kit/listings.ts).
   */
  async findFile(parentId: string, name: string, signal?: AbortSignal, hold?: FolderHold<DriveFileFields>): Promise<DriveFileFields | null> {
    const listed = await hold?.find(name, signal);
    const found = listed === undefined ? await this.#named(parentId, name, false, signal) : listed.filter((f) => f.id && f.mimeType !== FOLDER_MIME);
    if (found.length === 0) return null;
    const pick = found.reduce((a, b) => (time(b.modifiedTime) > time(a.modifiedTime) ? b : a));
    if (found.length > 1) this.#log.debug({ name, count: found.length, picked: pick.id }, 'several files share this name; using the most recent');
    return pick;
  }

  /**
   * Every file below the folder at `segments` (mapped names; [] is the top), for `Target.list`:
   * each folder's children by `files.list` with `q = '<id>' in parents and trashed = false`,
   * page by page with `pageToken` (https://developers.google.com/drive/api/reference/rest/v3/files/list,
   * https://developers.google.com/drive/api/guides/search-files), sub-folders walked depth first.
   * Trashed files are left out; a Drive target writes no temp file (a resumable session is no
   * file), so nothing else is. Nothing when the folder does not exist yet.
   */
  async *files(segments: readonly string[]): AsyncGenerator<RemoteEntry> {
    const top = await this.resolve(segments, false);
    if (top === null) return;
    const api = this.#api;
    yield* walkRemoteTree(top, async function* (id) {
      const q = `${queryLiteral(id)} in parents and trashed = false`;
      let pageToken: string | undefined;
      for (let page = 0; ; page++) {
        if (page >= MAX_WALK_PAGES) throw new Error(`[stagecoach] [gdrive] the listing of folder ${id} ran past ${MAX_WALK_PAGES} pages`);
        const params = { q, fields: WALK_FIELDS, pageSize: 1000, spaces: 'drive', ...api.listParams(), ...(pageToken ? { pageToken } : {}) };
        const res = await api.authed(() => api.drive.files.list(params, api.callOptions()));
        const data = res.data as DriveFileList;
        for (const f of data.files ?? []) {
          if (!f.id || typeof f.name !== 'string') continue;
          if (f.mimeType === FOLDER_MIME) yield { name: f.name, folderId: f.id };
          else yield { name: f.name, size: Number(f.size ?? 0), hash: f.md5Checksum ?? null };
        }
        if (!data.nextPageToken) break;
        pageToken = data.nextPageToken;
      }
    });
  }

  /** The folder's children (files and folders, not trashed), at most `maxPages` pages of 1000. */
  #children(parentId: string, maxPages: number, signal?: AbortSignal): Promise<Listing<DriveFileFields>> {
    return this.#query(`${queryLiteral(parentId)} in parents and trashed = false`, 1000, maxPages, () => true, signal);
  }

  async #named(parentId: string, name: string, folder: boolean, signal?: AbortSignal): Promise<readonly DriveFileFields[]> {
    const q = `${queryLiteral(parentId)} in parents and name = ${queryLiteral(name)} and mimeType ${folder ? '=' : '!='} '${FOLDER_MIME}' and trashed = false`;
    return (await this.#query(q, 100, MAX_LOOKUP_PAGES, (f) => f.name!.normalize('NFC') === name, signal)).entries;
  }

  /** The files `q` finds (with an id and a name, and `keep`), page by page, at most `maxPages` pages; `complete` false when more remain. */
  async #query(q: string, pageSize: number, maxPages: number, keep: (f: DriveFileFields) => boolean, signal?: AbortSignal): Promise<Listing<DriveFileFields>> {
    const entries: DriveFileFields[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      const params = { q, fields: LOOKUP_FIELDS, pageSize, spaces: 'drive', ...this.#api.listParams(), ...(pageToken ? { pageToken } : {}) };
      const res = await this.#api.authed(() => this.#api.drive.files.list(params, this.#api.callOptions(signal ? { signal } : {})));
      const data = res.data as DriveFileList;
      for (const f of data.files ?? []) if (f.id && typeof f.name === 'string' && keep(f)) entries.push(f);
      if (!data.nextPageToken) return { entries, complete: true };
      pageToken = data.nextPageToken;
    }
    return { entries, complete: false };
  }
}
