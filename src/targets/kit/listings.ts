/**
 * What is already at a name in a remote folder, answered from one listing of the folder for a
 * run of puts into it, in place of one lookup request per file.
 *
 * Drive, Dropbox and OneDrive each look a file's name up before they upload it (to update the
 * file in place, to skip bytes already there, to refuse a folder at the path). A backfill puts
 * hundreds of files into one folder within seconds: a listing of the folder serves them all, one
 * request where there were hundreds. That is what rclone does (it lists a destination folder,
 * then copies what is missing). The answers are as safe as a lookup's, because a listing is only
 * trusted for what nothing of ours has changed since:
 *
 * - A name is answered from a listing at most once per folder record: the first `find` of a name
 *   marks it touched, and every later `find` of it (the put's own retry, the next version of the
 *   file) asks the server by name. So a put whose answer was lost (the file may be there after
 *   all) never trusts a listing that may predate it.
 * - A record with a put open on it (between `open` and `close`) is never dropped, so a listing
 *   is only ever taken again in a new record after every put into the folder under the old one
 *   has ended: it sees what they made.
 * - A listing is fresh for `ttlMs` (10 s): a file someone else put there meanwhile is seen by the
 *   next listing, as a lookup made then would see it. A folder with more children than
 *   `maxPages` pages hold is not listed (its files are looked up one by one): a trickle of new
 *   files into a huge folder must not cost a full listing each.
 * - The first put into a folder looks up by name; a second one within `ttlMs` lists the folder.
 *   A single new file costs one lookup, as before; a run of them costs one listing. A folder
 *   this process has just made (`created`) is known empty: its first puts ask nothing.
 *
 * Only a file's first put to a target reads a listing (PutRequest.firstPut: the journal knows of
 * no earlier attempt, so no daemon of a shared journal can have put it moments ago); a changed
 * file, a retry, and everything else (stat, download, verification, Drive's folders) ask by name.
 */

/** One listing of a folder: its children's entries, and whether they are all of them. */
export interface Listing<E> {
  entries: readonly E[];
  complete: boolean;
}

export interface FolderListingsOptions<E> {
  /**
   * Lists the folder's children, at most `maxPages` pages; `complete` false when more remain.
   * Thrown errors make the `find` that asked fall back to a lookup by name.
   */
  list(folder: string, maxPages: number, signal?: AbortSignal): Promise<Listing<E>>;
  /** The key an entry's name is compared under (the target's own name rules). */
  keyOf(entry: E): string;
  /** How long a listing answers (default 10 s). */
  ttlMs?: number;
  /** How many pages a listing may take before the folder counts as too big (default 2). */
  maxPages?: number;
  /** Folders remembered with no put open on them (default 64); the least recently used go first. */
  maxFolders?: number;
  now?: () => number;
}

interface FolderRecord<E> {
  /** Puts open on this folder (open → close). */
  open: number;
  /** Finds so far (the second one lists the folder). */
  finds: number;
  /** Keys already answered (or looked up) once: from now on asked by name. */
  touched: Set<string>;
  listing: Map<string, E[]> | null;
  listedAt: number;
  /** A listing in progress, shared by the finds that wait for it. */
  pending: Promise<Map<string, E[]> | null> | null;
  /** Too many children for one listing (until the record is dropped). */
  big: boolean;
  lastUsed: number;
}

/** A put's hold on one folder: `find` what is at a name, then `close` once the put has ended. */
export interface FolderHold<E> {
  /**
   * The entries at `key` in the folder ([] for none) from a listing, or undefined: ask the
   * server by name. Each key is answered from a listing at most once (see the module comment).
   */
  find(key: string, signal?: AbortSignal): Promise<readonly E[] | undefined>;
  /** Ends the hold (idempotent). */
  close(): void;
}

export class FolderListings<E> {
  readonly #records = new Map<string, FolderRecord<E>>();
  readonly #list: FolderListingsOptions<E>['list'];
  readonly #keyOf: (entry: E) => string;
  readonly #ttlMs: number;
  readonly #maxPages: number;
  readonly #maxFolders: number;
  readonly #now: () => number;

  constructor(opts: FolderListingsOptions<E>) {
    this.#list = opts.list;
    this.#keyOf = opts.keyOf;
    this.#ttlMs = opts.ttlMs ?? 10_000;
    this.#maxPages = opts.maxPages ?? 2;
    this.#maxFolders = opts.maxFolders ?? 64;
    this.#now = opts.now ?? Date.now;
  }

  /** Opens a put's hold on `folder` (the folder's id or path, as the target names it). */
  open(folder: string): FolderHold<E> {
    const rec = this.#recordOf(folder);
    // Most recently used last: the map's order is the eviction order.
    this.#records.delete(folder);
    this.#records.set(folder, rec);
    rec.open++;
    rec.lastUsed = this.#now();
    const record = rec;
    let closed = false;
    return {
      find: (key, signal) => this.#find(folder, record, key, signal),
      close: () => {
        if (closed) return;
        closed = true;
        record.open--;
        this.#trim();
      },
    };
  }

  /**
   * A folder this process has just made: empty, as a listing taken now would say, for `ttlMs`.
   * The first puts into a new folder then ask nothing before they upload.
   */
  created(folder: string): void {
    const rec = this.#recordOf(folder);
    rec.listing = new Map();
    rec.listedAt = rec.lastUsed = this.#now();
    rec.big = false;
  }

  #recordOf(folder: string): FolderRecord<E> {
    let rec = this.#records.get(folder);
    if (rec === undefined) {
      rec = { open: 0, finds: 0, touched: new Set(), listing: null, listedAt: 0, pending: null, big: false, lastUsed: 0 };
      this.#records.set(folder, rec);
    }
    return rec;
  }

  /** Forgets every folder without a put open (a folder id no longer valid, say); the open ones stop answering from listings. */
  reset(): void {
    for (const [folder, rec] of this.#records) {
      if (rec.open === 0) this.#records.delete(folder);
      else {
        rec.listing = null;
        rec.big = true;
      }
    }
  }

  async #find(folder: string, rec: FolderRecord<E>, key: string, signal?: AbortSignal): Promise<readonly E[] | undefined> {
    if (rec.touched.has(key) || rec.big) {
      rec.touched.add(key);
      return undefined;
    }
    rec.touched.add(key);
    rec.finds++;
    const fresh = rec.listing !== null && this.#now() - rec.listedAt < this.#ttlMs;
    let listing = fresh ? rec.listing : null;
    if (listing === null) {
      if (rec.pending === null) {
        // The first put into a folder looks its name up; a second one lists the folder.
        if (rec.finds < 2) return undefined;
        rec.pending = this.#take(folder, rec, signal);
      }
      listing = await rec.pending;
      if (listing === null) return undefined;
    }
    return listing.get(key) ?? [];
  }

  async #take(folder: string, rec: FolderRecord<E>, signal?: AbortSignal): Promise<Map<string, E[]> | null> {
    try {
      const { entries, complete } = await this.#list(folder, this.#maxPages, signal);
      if (!complete) {
        rec.big = true;
        return null;
      }
      const map = new Map<string, E[]>();
      for (const e of entries) {
        const k = this.#keyOf(e);
        const same = map.get(k);
        if (same === undefined) map.set(k, [e]);
        else same.push(e);
      }
      rec.listing = map;
      rec.listedAt = this.#now();
      return map;
    } catch {
      // A listing that failed (or was cancelled) answers nothing: each put asks by name.
      return null;
    } finally {
      rec.pending = null;
    }
  }

  /** Drops the least recently used folders without a put open, beyond `maxFolders`, and any idle past `ttlMs`. */
  #trim(): void {
    const now = this.#now();
    let idle = 0;
    for (const rec of this.#records.values()) if (rec.open === 0) idle++;
    for (const [folder, rec] of this.#records) {
      if (rec.open > 0) continue;
      if (idle > this.#maxFolders || now - rec.lastUsed >= this.#ttlMs) {
        this.#records.delete(folder);
        idle--;
      }
    }
  }
}
