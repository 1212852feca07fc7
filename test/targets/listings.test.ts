/**
 * The lookup before a put, answered from a listing of the folder (src/targets/kit/listings.ts),
 * for the three targets that look a name up before they upload: Drive, Dropbox and OneDrive, each
 * against its emulator through its SDK. What the emulators answer is as documented:
 * - Drive: files.list with `q = '<id>' in parents and trashed = false` lists a folder's children,
 *   `name = '…'` narrows it to a name (https://developers.google.com/drive/api/guides/search-files);
 * - Dropbox: files/list_folder lists a folder, files/get_metadata reads one path
 *   (https://www.dropbox.com/developers/documentation/http/documentation#files-list_folder);
 * - OneDrive: `GET /items/{id}/children` lists a folder, `GET /items/{parent-id}:/{name}` reads one
 *   child (https://learn.microsoft.com/en-us/graph/api/driveitem-list-children,
 *   https://learn.microsoft.com/en-us/graph/api/driveitem-get).
 *
 * A run of puts into one folder asks for one listing, not one lookup each; what the listing
 * answers is as safe as the lookups were: a new process over a folder already holding the files
 * (a lost journal) finds them all and uploads nothing; a name put again, or any put but a file's
 * first (PutRequest.firstPut: another daemon may have put it moments ago), is looked up by name
 * and updated in place.
 *
 * Last, Target.prepare: the folders of files leased ahead are made before their puts ask, on the
 * targets whose puts make their folders (Drive, Box, OneDrive; Dropbox's uploads make their own).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/fs.js';
import type { LoggedRequest } from '../emulators/harness/index.js';
import type { Target } from '../../src/targets/target.js';
import { request, seededBytes } from '../conformance/sources.js';
import { boxHarness } from '../conformance/box-harness.js';
import { dropboxHarness } from '../conformance/dropbox-harness.js';
import { gdriveHarness } from '../conformance/gdrive-harness.js';
import { onedriveHarness } from '../conformance/onedrive-harness.js';

interface Case {
  target: Target;
  /** A new target on the same cloud and account: a daemon started again. */
  reopen(): Promise<Target>;
  requests(): LoggedRequest[];
  /** A request that looks one file's name up. */
  isLookup(r: LoggedRequest): boolean;
  /** A request that lists a folder. */
  isListing(r: LoggedRequest): boolean;
  /** A request that sends a file's bytes. */
  isUpload(r: LoggedRequest): boolean;
  /** Every file path stored under the target's root. */
  listAll(): Promise<string[]>;
  readBack(p: string): Promise<Buffer | null>;
  cleanup(): Promise<void>;
}

const qOf = (r: LoggedRequest): string => new URL(r.url, 'http://x').searchParams.get('q') ?? '';

const cases: Record<string, () => Promise<Case>> = {
  gdrive: async () => {
    const h = await gdriveHarness();
    const extra: Array<{ cleanup(): Promise<void> }> = [];
    return {
      target: h.target,
      reopen: async () => {
        const again = await gdriveHarness({ emu: h.emu });
        extra.push(again);
        return again.target;
      },
      requests: () => h.emu.server.requests(),
      // A file's lookup: `name = '…' and mimeType != folder`; a listing: a folder's children, no name.
      isLookup: (r) => r.method === 'GET' && /^\/drive\/v3\/files\?/.test(r.url) && qOf(r).includes('name =') && qOf(r).includes('mimeType !='),
      isListing: (r) => r.method === 'GET' && /^\/drive\/v3\/files\?/.test(r.url) && qOf(r).includes(' in parents') && !qOf(r).includes('name ='),
      isUpload: (r) => r.url.startsWith('/upload/drive/v3/files'),
      listAll: () => h.listAll(),
      readBack: (p) => h.readBack(p),
      cleanup: async () => {
        for (const e of extra) await e.cleanup();
        await h.cleanup();
      },
    };
  },
  dropbox: async () => {
    const h = await dropboxHarness();
    return {
      target: h.target,
      reopen: async () => h.reopen(),
      requests: () => h.emu.server.requests(),
      isLookup: (r) => r.url.endsWith('/2/files/get_metadata'),
      isListing: (r) => r.url.endsWith('/2/files/list_folder'),
      isUpload: (r) => r.url.endsWith('/2/files/upload'),
      listAll: () => h.listAll(),
      readBack: (p) => h.readBack(p),
      cleanup: () => h.cleanup(),
    };
  },
  onedrive: async () => {
    const h = await onedriveHarness();
    return {
      target: h.target,
      reopen: async () => h.reopen(),
      requests: () => h.emu.server.requests(),
      // A child by name: `/items/{parent}:/{name}` (not `…:/content`, the upload).
      isLookup: (r) => r.method === 'GET' && /\/items\/[^/:]+:\/[^/]+$/.test(r.url.split('?')[0]!),
      isListing: (r) => r.method === 'GET' && /\/items\/[^/:]+\/children$/.test(r.url.split('?')[0]!),
      isUpload: (r) => r.method === 'PUT' && r.url.split('?')[0]!.endsWith(':/content'),
      listAll: () => h.listAll(),
      readBack: (p) => h.readBack(p),
      cleanup: () => h.cleanup(),
    };
  },
};

/** A put as deliver.ts makes a file's first one to a target (PutRequest.firstPut). */
function first(remotePath: string, bytes: Buffer) {
  return { ...request(remotePath, bytes), firstPut: true };
}

/** First puts of `files`, at most four at once, as an uploader with maxDemand 4 makes them. */
async function putAll(target: Target, files: ReadonlyArray<{ path: string; bytes: Buffer }>): Promise<Array<{ unchanged: boolean; remoteId: string }>> {
  const out: Array<{ unchanged: boolean; remoteId: string }> = new Array(files.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = next++; i < files.length; i = next++) out[i] = await target.put(first(files[i]!.path, files[i]!.bytes));
    }),
  );
  return out;
}

const FILES = Array.from({ length: 24 }, (_, i) => ({ path: `run/f${i}.bin`, bytes: seededBytes(100 + i, 300 + i) }));

for (const [name, make] of Object.entries(cases)) {
  describe(`${name}: lookups before a put`, () => {
    let c: Case | undefined;
    afterEach(async () => {
      await c?.cleanup();
      c = undefined;
    });

    it('a run of new files into one folder asks one listing at most, not a lookup per file', async () => {
      c = await make();
      await putAll(c.target, FILES);
      const asked = c.requests().filter((r) => c!.isLookup(r) || c!.isListing(r));
      // Drive and OneDrive made the folder: known empty, nothing asked. Dropbox makes folders as
      // it uploads: the first put looks its name up, the second lists the (missing) folder.
      expect(asked.length, asked.map((r) => `${r.method} ${r.url}`).join('\n')).toBeLessThanOrEqual(2);
      expect(c.requests().filter((r) => c!.isUpload(r))).toHaveLength(FILES.length);
      for (const f of FILES) expect((await c.readBack(f.path))?.equals(f.bytes), f.path).toBe(true);
    });

    it('a new process over files already stored (a lost journal) finds every one: nothing uploaded, no second copy', async () => {
      c = await make();
      await putAll(c.target, FILES);
      const before = (await c.listAll()).sort();
      const again = await c.reopen();
      const since = c.requests().length;
      const results = await putAll(again, FILES);
      expect(results.every((r) => r.unchanged)).toBe(true);
      const log = c.requests().slice(since);
      expect(log.filter((r) => c!.isUpload(r))).toHaveLength(0);
      expect(log.filter((r) => c!.isLookup(r)).length).toBeLessThanOrEqual(4);
      expect(log.filter((r) => c!.isListing(r)).length).toBeLessThanOrEqual(2);
      expect((await c.listAll()).sort()).toEqual(before);
    });

    it('a name put again by this process is looked up by name and updated in place, never stored twice', async () => {
      c = await make();
      const v1 = seededBytes(1, 500);
      const v2 = seededBytes(2, 500);
      const one = await c.target.put(first('again/x.bin', v1));
      await c.target.put(first('again/y.bin', v1));
      const since = c.requests().length;
      // Even marked a first put (a lost journal row, say): the name was answered once already.
      const two = await c.target.put(first('again/x.bin', v2));
      expect(c.requests().slice(since).filter((r) => c!.isLookup(r))).toHaveLength(1);
      expect(two.unchanged).toBe(false);
      expect(two.remoteId).toBe(one.remoteId);
      expect((await c.readBack('again/x.bin'))?.equals(v2)).toBe(true);
      expect((await c.listAll()).filter((p) => p.toLowerCase().endsWith('again/x.bin'))).toHaveLength(1);
    });

    it('a put that is not a first put asks by name, though a fresh listing says the name is free (another daemon put it)', async () => {
      c = await make();
      // This daemon's fresh listing of `shared/` knows no y.bin.
      await putAll(c.target, [0, 1, 2].map((i) => ({ path: `shared/f${i}.bin`, bytes: seededBytes(300 + i, 100) })));
      // Another daemon on the journal puts y.bin there; then the file changes and this daemon gets its next version.
      const other = await c.reopen();
      const v1 = await other.put(first('shared/y.bin', seededBytes(5, 200)));
      const v2 = seededBytes(6, 200);
      const since = c.requests().length;
      const res = await c.target.put(request('shared/y.bin', v2));
      expect(c.requests().slice(since).filter((r) => c!.isLookup(r))).toHaveLength(1);
      expect(res.remoteId).toBe(v1.remoteId);
      expect((await c.readBack('shared/y.bin'))?.equals(v2)).toBe(true);
      expect((await c.listAll()).filter((p) => p.toLowerCase().endsWith('shared/y.bin'))).toHaveLength(1);
    });
  });
}

interface PrepareCase {
  target: Target;
  requests(): LoggedRequest[];
  /** A request that makes a folder. */
  isFolderMade(r: LoggedRequest): boolean;
  cleanup(): Promise<void>;
}

const preparing: Record<string, () => Promise<PrepareCase>> = {
  gdrive: async () => {
    const h = await gdriveHarness();
    // files.create without media: a folder (https://developers.google.com/drive/api/guides/folder).
    return { target: h.target, requests: () => h.emu.server.requests(), isFolderMade: (r) => r.method === 'POST' && r.url.startsWith('/drive/v3/files'), cleanup: () => h.cleanup() };
  },
  box: async () => {
    const h = await boxHarness();
    // POST /2.0/folders (https://developer.box.com/reference/post-folders/).
    return { target: h.target, requests: () => h.emu.server.requests(), isFolderMade: (r) => r.method === 'POST' && /\/2\.0\/folders(\?|$)/.test(r.url), cleanup: () => h.cleanup() };
  },
  onedrive: async () => {
    const h = await onedriveHarness();
    // POST /items/{parent-id}/children (https://learn.microsoft.com/en-us/graph/api/driveitem-post-children).
    return { target: h.target, requests: () => h.emu.server.requests(), isFolderMade: (r) => r.method === 'POST' && /\/children$/.test(r.url.split('?')[0]!), cleanup: () => h.cleanup() };
  },
};

for (const [name, make] of Object.entries(preparing)) {
  describe(`${name}: folders of files leased ahead`, () => {
    let c: PrepareCase | undefined;
    afterEach(async () => {
      await c?.cleanup();
      c = undefined;
    });

    it('prepare makes the folder before any put; the puts then make none, and never a second one', async () => {
      c = await make();
      const files = ['ahead/deep/a.bin', 'ahead/deep/b.bin', 'ahead/deep/c.bin'].map((p, i) => ({ path: p, bytes: seededBytes(200 + i, 100) }));
      c.target.prepare!(files.map((f) => f.path));
      // The remote root, ahead and ahead/deep.
      await waitFor('the folders made', () => c!.requests().filter((r) => c!.isFolderMade(r)).length >= 2, 5000);
      await waitFor('nothing more asked', async () => {
        const n = c!.requests().length;
        await new Promise((r) => setTimeout(r, 100));
        return c!.requests().length === n;
      }, 5000);
      const made = c.requests().filter((r) => c!.isFolderMade(r)).length;
      await putAll(c.target, files);
      expect(c.requests().filter((r) => c!.isFolderMade(r))).toHaveLength(made);
      // Told again (a later lease): nothing asked.
      const before = c.requests().length;
      c.target.prepare!(files.map((f) => f.path));
      await new Promise((r) => setTimeout(r, 100));
      expect(c.requests()).toHaveLength(before);
    });
  });
}
