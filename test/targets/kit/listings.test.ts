/**
 * FolderListings (src/targets/kit/listings.ts): when a listing may answer a put's lookup, and
 * when the put must ask the server by name. The listing function here is a plain in-memory
 * folder; the providers' listings against their emulators are in test/targets/listings.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FolderListings, type Listing } from '../../../src/targets/kit/listings.js';

interface Entry {
  name: string;
  id: string;
}

/** A folder store the listings read, counting each listing and letting a test hold one open. */
function folders(opts: { pages?: number; ttlMs?: number; maxFolders?: number } = {}) {
  const content = new Map<string, Entry[]>();
  const calls: string[] = [];
  let clock = 1_000;
  let gate: Promise<void> | null = null;
  let fail = false;
  const listings = new FolderListings<Entry>({
    list: async (folder, maxPages): Promise<Listing<Entry>> => {
      calls.push(folder);
      if (gate !== null) await gate;
      if (fail) throw new Error('listing refused');
      const all = content.get(folder) ?? [];
      // Two entries a page.
      return { entries: all.slice(0, maxPages * 2), complete: all.length <= maxPages * 2 };
    },
    keyOf: (e) => e.name.toLowerCase(),
    ...(opts.ttlMs !== undefined ? { ttlMs: opts.ttlMs } : {}),
    ...(opts.maxFolders !== undefined ? { maxFolders: opts.maxFolders } : {}),
    maxPages: opts.pages ?? 2,
    now: () => clock,
  });
  return {
    listings,
    content,
    calls,
    advance: (ms: number) => (clock += ms),
    hold: (): (() => void) => {
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      return () => {
        gate = null;
        open();
      };
    },
    failListings: (on: boolean) => (fail = on),
  };
}

describe('FolderListings', () => {
  it('the first put into a folder asks by name; the second lists it, and the listing answers the rest', async () => {
    const f = folders();
    f.content.set('F', [{ name: 'A.bin', id: '1' }]);
    const one = f.listings.open('F');
    expect(await one.find('x')).toBeUndefined();
    one.close();
    expect(f.calls).toEqual([]);
    const two = f.listings.open('F');
    expect(await two.find('a.bin')).toEqual([{ name: 'A.bin', id: '1' }]);
    two.close();
    const three = f.listings.open('F');
    expect(await three.find('b.bin')).toEqual([]);
    three.close();
    expect(f.calls).toEqual(['F']);
  });

  it('puts that ask while a listing is under way wait for it: one listing for all', async () => {
    const f = folders();
    f.content.set('F', [{ name: 'c', id: '3' }]);
    const first = f.listings.open('F');
    await first.find('a');
    const release = f.hold();
    const holds = ['b', 'c', 'd'].map(() => f.listings.open('F'));
    const answers = Promise.all(holds.map((h, i) => h.find(['b', 'c', 'd'][i]!)));
    release();
    expect(await answers).toEqual([[], [{ name: 'c', id: '3' }], []]);
    expect(f.calls).toEqual(['F']);
  });

  it('a name answered once (or looked up once) is asked by name ever after: a lost answer never trusts an older listing', async () => {
    const f = folders();
    const h = f.listings.open('F');
    await h.find('a'); // by name
    expect(await h.find('b')).toEqual([]); // listing
    expect(await h.find('b')).toBeUndefined();
    expect(await h.find('a')).toBeUndefined();
    expect(await h.find('c')).toEqual([]);
    h.close();
  });

  it('a folder too big for maxPages pages is not listed again: its puts ask by name', async () => {
    const f = folders({ pages: 1 });
    f.content.set('F', [{ name: 'a', id: '1' }, { name: 'b', id: '2' }, { name: 'c', id: '3' }]);
    const h = f.listings.open('F');
    await h.find('x');
    expect(await h.find('y')).toBeUndefined();
    expect(await h.find('z')).toBeUndefined();
    h.close();
    expect(f.calls).toEqual(['F']);
  });

  it('a listing answers for ttlMs; after that the folder is listed again and sees what others put there', async () => {
    const f = folders({ ttlMs: 10_000 });
    const h = f.listings.open('F');
    await h.find('a');
    expect(await h.find('b')).toEqual([]);
    f.content.set('F', [{ name: 'late', id: '9' }]);
    f.advance(5_000);
    expect(await h.find('late')).toEqual([]);
    f.content.set('F', [{ name: 'late', id: '9' }, { name: 'later', id: '10' }]);
    f.advance(5_000);
    expect(await h.find('later')).toEqual([{ name: 'later', id: '10' }]);
    expect(f.calls).toEqual(['F', 'F']);
    h.close();
  });

  it('a folder this process made is known empty: its first puts ask nothing', async () => {
    const f = folders();
    f.listings.created('NEW');
    const h = f.listings.open('NEW');
    expect(await h.find('a')).toEqual([]);
    expect(await h.find('b')).toEqual([]);
    h.close();
    expect(f.calls).toEqual([]);
  });

  it('a listing that fails answers nothing: each put asks by name', async () => {
    const f = folders();
    f.failListings(true);
    const h = f.listings.open('F');
    await h.find('a');
    expect(await h.find('b')).toBeUndefined();
    h.close();
  });

  it('a folder with a put open is never forgotten, so what it touched is never answered from a newer listing', async () => {
    const f = folders({ maxFolders: 1 });
    const held = f.listings.open('F');
    await held.find('a');
    expect(await held.find('b')).toEqual([]);
    // Many other folders come and go while the put into F is open.
    for (const other of ['G', 'H', 'I']) {
      const h = f.listings.open(other);
      await h.find('x');
      h.close();
    }
    f.content.set('F', [{ name: 'b', id: '2' }]);
    f.advance(60_000);
    const later = f.listings.open('J');
    later.close();
    const next = f.listings.open('F');
    await next.find('z');
    // b was answered (and put) under the open hold: it is asked by name, not from a listing taken now.
    expect(await next.find('b')).toBeUndefined();
    next.close();
    held.close();
  });

  it('reset forgets idle folders and stops the open ones answering from listings', async () => {
    const f = folders();
    f.listings.created('F');
    const h = f.listings.open('F');
    f.listings.reset();
    expect(await h.find('a')).toBeUndefined();
    h.close();
  });
});
