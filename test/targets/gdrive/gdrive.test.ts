/**
 * The Drive target against the Drive emulator, through the real SDK: upload paths, resume after
 * a cut, verification, folders without duplicates, idempotence and new revisions.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ShortReadError, TargetError } from '../../../src/errors.js';
import { decodeHandle } from '../../../src/targets/gdrive/upload.js';
import { GDRIVE_ROOT } from '../../conformance/gdrive-harness.js';
import { chunkStream, growingSource, pullTriggerSource, seededBytes } from '../../conformance/sources.js';
import { createDriveClient } from '../../emulators/gdrive/client.js';
import { FOLDER_MIME, startGdriveEmulator, type GdriveEmulator } from '../../emulators/gdrive/index.js';
import { CHUNK, KiB, answeredChunks, answeredSource, crossingSource, makeTarget, put, rejected, resumeStore, type TestTarget } from './helpers.js';
import type { FleetLocks } from '../../../src/targets/target.js';

let emu: GdriveEmulator;

beforeEach(async () => {
  emu = await startGdriveEmulator({ seed: 3 });
});
afterEach(async () => {
  await emu.close();
});

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const uploads = (): ReturnType<GdriveEmulator['server']['requests']> => emu.server.requests(/^\/upload\//);
const path = (p: string): string => `/${GDRIVE_ROOT}/${p}`;

describe('upload paths', () => {
  it('a file up to simpleUploadMax goes in one multipart request, with its source mtime', async () => {
    const { target } = makeTarget(emu);
    const bytes = seededBytes(1, CHUNK);
    const res = await target.put(put('small/a.bin', bytes, undefined, { mtimeMs: Date.UTC(2020, 1, 2, 3, 4, 5) }));
    expect(res).toMatchObject({ size: CHUNK, hash: md5(bytes), hashKind: 'md5', unchanged: false, bytesSent: CHUNK });
    expect(uploads().map((r) => new URL(r.url, 'http://x').searchParams.get('uploadType'))).toEqual(['multipart']);
    expect(emu.model.findByPath(path('small/a.bin'))?.modifiedTime).toBe(Date.UTC(2020, 1, 2, 3, 4, 5));
  });

  it('a larger file goes through one resumable session in chunks of chunkSize; the handle is saved, then cleared', async () => {
    const { target } = makeTarget(emu);
    const size = 3 * CHUNK + 5;
    const bytes = seededBytes(2, size);
    const store = resumeStore();
    const res = await target.put(put('big/b.bin', bytes, store));
    expect(res).toMatchObject({ size, hash: md5(bytes), bytesSent: size });
    const reqs = uploads();
    expect(reqs[0]).toMatchObject({ method: 'POST', status: 200 });
    expect(reqs[0]!.url).toContain('uploadType=resumable');
    expect(reqs.slice(1).map((r) => [r.status, r.contentRange])).toEqual([
      [308, `bytes 0-${CHUNK - 1}/${size}`],
      [308, `bytes ${CHUNK}-${2 * CHUNK - 1}/${size}`],
      [308, `bytes ${2 * CHUNK}-${3 * CHUNK - 1}/${size}`],
      [200, `bytes ${3 * CHUNK}-${size - 1}/${size}`],
    ]);
    // The marker of a session being opened, the session URI, then nothing once done.
    expect(store.saved).toHaveLength(3);
    expect(decodeHandle(store.saved[0]!)).toEqual({ v: 1, uri: null, size, fileId: null });
    expect(decodeHandle(store.saved[1]!)).toMatchObject({ v: 1, size, fileId: null, uri: expect.stringMatching(/upload_id=/) });
    expect(store.saved[2]).toBeNull();
    expect((await emu.read(path('big/b.bin'))).equals(bytes)).toBe(true);
  });

  it('the next chunk is read while one is sent: each chunk was read before Drive answered the one before it', async () => {
    const { target } = makeTarget(emu);
    const size = 4 * CHUNK;
    const bytes = seededBytes(5, size);
    // Drive takes 50 ms before it handles each request: time in which the target reads ahead.
    emu.server.setFaults({ latencyMs: 50 });
    // For each 64 KiB piece of the source: how many chunks Drive had answered when it was read.
    const answeredAt = new Map<number, number>();
    const open = () =>
      chunkStream(function* () {
        for (let off = 0; off < size; off += 64 * KiB) {
          answeredAt.set(off, answeredChunks(emu));
          yield bytes.subarray(off, off + 64 * KiB);
        }
      });
    const res = await target.put(put('ahead/a.bin', bytes, undefined, { open }));
    expect(res).toMatchObject({ size, hash: md5(bytes), bytesSent: size });
    expect(answeredChunks(emu)).toBe(4);
    // Chunk k's last piece (not only what the stream buffers of its start) was read while
    // chunk k-1 was in flight: after Drive answered k-1 chunks, before it answered k.
    for (let k = 1; k < 4; k++) expect(answeredAt.get((k + 1) * CHUNK - 64 * KiB), `chunk ${k}'s last piece`).toBe(k - 1);
  });

  it('the default chunk size is 8 MiB and the default simple-upload limit 5 MB', () => {
    const { target } = makeTarget(emu, { chunkSize: undefined, simpleUploadMax: undefined });
    expect(target.features).toMatchObject({ hashKind: 'md5', caseInsensitive: false, resumable: true, chunkSize: 8 * 1024 * 1024, simpleUploadMax: 5_000_000 });
  });
});

describe('idempotence and new versions', () => {
  it('an identical re-put finds the file, hashes the source and sends nothing', async () => {
    const { target } = makeTarget(emu);
    const bytes = seededBytes(3, 3 * CHUNK);
    const first = await target.put(put('idem/x.bin', bytes));
    const before = uploads().length;
    const req = put('idem/x.bin', bytes);
    const again = await target.put(req);
    expect(again).toEqual({ remoteId: first.remoteId, size: bytes.length, hash: md5(bytes), hashKind: 'md5', unchanged: true, bytesSent: 0 });
    expect(uploads().length - before).toBe(0);
    expect(req.opens).toEqual([0]);
  });

  it('a re-put of a file with a different size does not read the source to hash it', async () => {
    const { target } = makeTarget(emu);
    await target.put(put('idem/y.bin', seededBytes(4, 1000)));
    const req = put('idem/y.bin', seededBytes(5, 1001));
    await target.put(req);
    expect(req.opens).toEqual([0]);
  });

  it('a changed file becomes a new revision of the same remote file, small and large', async () => {
    const { target } = makeTarget(emu);
    const v1 = await target.put(put('ver/f.bin', seededBytes(6, 1000)));
    const rev1 = emu.model.findByPath(path('ver/f.bin'))!;
    const head1 = emu.model.resource(rev1) as { headRevisionId?: string; version?: string };
    const v2 = await target.put(put('ver/f.bin', seededBytes(7, 2000)));
    const big = seededBytes(8, 2 * CHUNK + 1);
    const v3 = await target.put(put('ver/f.bin', big));
    expect(v2.remoteId).toBe(v1.remoteId);
    expect(v3.remoteId).toBe(v1.remoteId);
    const files = (await emu.tree()).filter((t) => t.path === path('ver/f.bin'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatchObject({ id: v1.remoteId, size: big.length, hash: md5(big) });
    const head3 = emu.model.resource(emu.model.findByPath(path('ver/f.bin'))!) as { headRevisionId?: string; version?: string };
    expect(head3.headRevisionId).not.toBe(head1.headRevisionId);
    const methods = uploads().map((r) => `${r.method} ${new URL(r.url, 'http://x').pathname}`);
    expect(methods).toContain(`PATCH /upload/drive/v3/files/${v1.remoteId}`);
  });
});

describe('resume', () => {
  // The source is read a chunk ahead of what is sent: the reset is queued at its first read after
  // Drive answered the 3rd chunk, so the 4th chunk's PUT is the one reset.
  it('a resumable upload cut on its 4th chunk resumes, after a restart, from the bytes Drive holds', async () => {
    const size = 8 * CHUNK + 123;
    const bytes = seededBytes(10, size);
    const store = resumeStore();
    const first = makeTarget(emu);
    const cut = () => emu.server.setFaults({ queue: [{ match: /^\/upload\//, fault: { kind: 'reset' } }] });
    const err = await rejected(first.target.put(put('resume/r.bin', bytes, store, { open: answeredSource(bytes, emu, 3, cut) })));
    expect(first.target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(first.target.classify(err).reason).toMatch(/^network: /);
    expect(store.handle).not.toBeNull();
    expect(emu.uploadSessions()).toEqual([expect.objectContaining({ received: 3 * CHUNK, total: size, done: false })]);
    await first.target.close();

    const seqBefore = emu.server.requests().length;
    const second = makeTarget(emu);
    const req = put('resume/r.bin', bytes, store);
    const res = await second.target.put(req);
    expect(res).toMatchObject({ size, hash: md5(bytes), bytesSent: size - 3 * CHUNK, unchanged: false });
    const after = emu.server.requests().slice(seqBefore).filter((r) => r.url.startsWith('/upload/'));
    expect(after.map((r) => r.contentRange)).toEqual([
      `bytes */${size}`,
      ...Array.from({ length: 6 }, (_, i) => `bytes ${(3 + i) * CHUNK}-${Math.min(size, (4 + i) * CHUNK) - 1}/${size}`),
    ]);
    // No new session was opened, and no chunk before the cut went again.
    expect(emu.server.requests(/uploadType=resumable/).filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(emu.server.requests(/upload_id=/).filter((r) => r.contentRange?.startsWith('bytes 0-'))).toHaveLength(1);
    expect(store.handle).toBeNull();
    expect((await emu.read(path('resume/r.bin'))).equals(bytes)).toBe(true);
    // The whole file was read to hash it, once, from the start.
    expect(req.opens).toEqual([0]);
  });

  it('follows the Range Drive answers when it kept less than a chunk', async () => {
    const { target } = makeTarget(emu, { chunkSize: 4 * CHUNK });
    const size = 6 * CHUNK;
    const bytes = seededBytes(11, size);
    emu.shortenNextChunk(CHUNK);
    const res = await target.put(put('short/s.bin', bytes));
    expect(res).toMatchObject({ hash: md5(bytes), size });
    expect(emu.server.requests(/upload_id=/).map((r) => r.contentRange)).toEqual([
      `bytes 0-${4 * CHUNK - 1}/${size}`,
      `bytes ${CHUNK}-${5 * CHUNK - 1}/${size}`,
      `bytes ${5 * CHUNK}-${size - 1}/${size}`,
    ]);
  });

  it('a saved session that expired is replaced by a new one; the upload succeeds', async () => {
    const size = 4 * CHUNK;
    const bytes = seededBytes(12, size);
    const store = resumeStore();
    const { target } = makeTarget(emu);
    const cut = () => emu.server.setFaults({ queue: [{ match: /^\/upload\//, fault: { kind: 'reset' } }] });
    await rejected(target.put(put('exp/e.bin', bytes, store, { open: crossingSource(bytes, CHUNK, cut) })));
    const stale = store.handle;
    expect(stale).not.toBeNull();
    emu.expireSessions();
    const res = await target.put(put('exp/e.bin', bytes, store));
    expect(res).toMatchObject({ hash: md5(bytes), bytesSent: size });
    expect(emu.server.requests(/uploadType=resumable/).filter((r) => r.method === 'POST')).toHaveLength(2);
    expect(store.saved).toContain(null);
    expect(store.handle).toBeNull();
  });

  it('a session that expires mid-upload clears the handle and fails retry session-gone', async () => {
    const size = 4 * CHUNK;
    const bytes = seededBytes(13, size);
    const store = resumeStore();
    const { target } = makeTarget(emu);
    const err = await rejected(target.put(put('exp/g.bin', bytes, store, { open: crossingSource(bytes, 2 * CHUNK, () => emu.expireSessions()) })));
    expect(target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(target.classify(err).reason).toMatch(/^session-gone: /);
    expect(store.handle).toBeNull();
    expect((await target.put(put('exp/g.bin', bytes, store))).hash).toBe(md5(bytes));
  });

  // Issue 14 item 8. Drive returns a session URI only in the initiation's Location header, lists
  // no open sessions and documents no cancel; an unused session expires after a week and creates
  // no file (developers.google.com/workspace/drive/api/guides/manage-uploads, "Perform a
  // resumable upload"). The target journals a marker before the create and the URI before any
  // byte: a kill loses at most the one session being created, and the next start says so.
  it('a kill between creating a session and journaling its URI leaves one empty session; the next start knows and opens exactly one more', async () => {
    const size = 3 * CHUNK;
    const bytes = seededBytes(30, size);
    const store = resumeStore();
    const first = makeTarget(emu);
    const cut = put('kill/k.bin', bytes, store);
    // The process dies at the journal write of the session URI: the create went through, the
    // write never happens.
    cut.saveResume = async (h) => {
      if (h !== null && decodeHandle(h)?.uri) throw new Error('killed before the session URI was journaled');
      store.handle = h;
      store.saved.push(h);
    };
    await rejected(first.target.put(cut));
    expect(decodeHandle(store.handle)).toEqual({ v: 1, uri: null, size, fileId: null });
    expect(emu.uploadSessions()).toEqual([expect.objectContaining({ received: 0, done: false })]);

    const next = makeTarget(emu);
    const res = await next.target.put(put('kill/k.bin', bytes, store));
    expect(res.hash).toBe(md5(bytes));
    expect(store.handle).toBeNull();
    const sessions = emu.uploadSessions();
    expect(sessions).toHaveLength(2);
    expect(sessions.filter((x) => !x.done)).toEqual([expect.objectContaining({ received: 0 })]);
    expect(next.logs.join('')).toMatch(/cut while opening a Drive resumable session/);
  });

  it('a kill after the session URI was journaled: the next start reuses that session, none other is opened', async () => {
    const size = 3 * CHUNK;
    const bytes = seededBytes(31, size);
    const store = resumeStore();
    const ac = new AbortController();
    await rejected(makeTarget(emu).target.put(put('kill/r.bin', bytes, store, { signal: ac.signal, open: crossingSource(bytes, 0, () => ac.abort()) })));
    expect(decodeHandle(store.handle)?.uri).toMatch(/upload_id=/);
    expect(emu.uploadSessions()).toHaveLength(1);
    const next = makeTarget(emu);
    expect((await next.target.put(put('kill/r.bin', bytes, store))).hash).toBe(md5(bytes));
    expect(emu.uploadSessions()).toEqual([expect.objectContaining({ done: true })]);
    expect(next.logs.join('')).not.toMatch(/cut while opening/);
  });

  it('a session that Drive refused to open leaves no marker behind', async () => {
    const store = resumeStore();
    const { target } = makeTarget(emu);
    // The first upload request of a file past simpleUploadMax is the session initiation.
    emu.failNext('storageQuotaExceeded', { match: /^\/upload\// });
    await rejected(target.put(put('kill/f.bin', seededBytes(32, 2 * CHUNK), store)));
    expect(store.handle).toBeNull();
  });

  it('a saved session of another version of the file is abandoned with a log line, and a new upload starts', async () => {
    const bytes = seededBytes(33, 2 * CHUNK);
    const first = makeTarget(emu);
    const store = resumeStore();
    const ac = new AbortController();
    await rejected(first.target.put(put('kill/v.bin', seededBytes(34, 3 * CHUNK), store, { signal: ac.signal, open: crossingSource(seededBytes(34, 3 * CHUNK), 0, () => ac.abort()) })));
    expect(decodeHandle(store.handle)?.uri).toMatch(/upload_id=/);
    const next = makeTarget(emu);
    expect((await next.target.put(put('kill/v.bin', bytes, store))).hash).toBe(md5(bytes));
    expect(next.logs.join('')).toMatch(/belongs to another version of this file; abandoned/);
  });

  it('an aborted resumable upload stores nothing and keeps its handle; the next attempt resumes it', async () => {
    const size = 4 * CHUNK;
    const bytes = seededBytes(14, size);
    const store = resumeStore();
    const { target } = makeTarget(emu);
    const ac = new AbortController();
    // Aborted once Drive holds the first chunk (the source is read a chunk ahead of what is sent).
    const err = await rejected(target.put(put('abort/a.bin', bytes, store, { signal: ac.signal, open: answeredSource(bytes, emu, 1, () => ac.abort()) })));
    expect(target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(target.classify(err).reason).toMatch(/^aborted: /);
    expect(await emu.tree()).toEqual([]);
    expect(store.handle).not.toBeNull();
    const res = await target.put(put('abort/a.bin', bytes, store));
    expect(res.hash).toBe(md5(bytes));
    expect(res.bytesSent).toBeLessThan(size);
  });

  it('a source that grows during a resumable upload fails ShortReadError before the last chunk; the handle is cleared', async () => {
    const size = 3 * CHUNK + 10;
    const bytes = seededBytes(15, size);
    const store = resumeStore();
    const { target } = makeTarget(emu);
    const err = await rejected(target.put(put('grow/g.bin', bytes, store, { open: growingSource(bytes, 500) })));
    expect(err).toBeInstanceOf(ShortReadError);
    expect(target.classify(err).kind).toBe('fail-item');
    expect(store.handle).toBeNull();
    expect(await emu.tree()).toEqual([]);
    // The last chunk was never sent: the session never completed.
    expect(emu.server.requests(/upload_id=/).map((r) => r.contentRange)).not.toContain(`bytes ${3 * CHUNK}-${size - 1}/${size}`);
  });

  it('a source holding more than its size only after the last byte fails before the last chunk is sent', async () => {
    const size = 3 * CHUNK;
    const bytes = seededBytes(17, size);
    const store = resumeStore();
    const { target } = makeTarget(emu);
    // The extra bytes come after a turn of the event loop, so the reader holds exactly `size` bytes first.
    const open = () =>
      chunkStream(async function* () {
        for (let off = 0; off < size; off += 64 * 1024) yield bytes.subarray(off, off + 64 * 1024);
        await new Promise((r) => setImmediate(r));
        yield Buffer.from('appended while uploading');
      });
    const err = await rejected(target.put(put('grow/late.bin', bytes, store, { open })));
    expect(err).toBeInstanceOf(ShortReadError);
    expect(await emu.tree()).toEqual([]);
    expect(emu.server.requests(/upload_id=/).map((r) => r.contentRange)).not.toContain(`bytes ${2 * CHUNK}-${size - 1}/${size}`);
    expect(store.handle).toBeNull();
  });

  it('a handle saved for another size, or that is not ours, is dropped and the upload starts fresh', async () => {
    const bytes = seededBytes(16, 2 * CHUNK);
    const { target } = makeTarget(emu);
    for (const stale of ['not json', JSON.stringify({ v: 1, uri: `${emu.url}/upload/drive/v3/files?upload_id=nope`, size: 5, fileId: null })]) {
      const store = resumeStore(stale);
      const res = await target.put(put(`stale/${stale.length}.bin`, bytes, store));
      expect(res.hash).toBe(md5(bytes));
      expect(store.saved[0]).toBeNull();
    }
  });
});

describe('verification', () => {
  it('Drive storing other bytes than sent is a failed attempt (retry hash-mismatch); the bad new file is deleted', async () => {
    const { target } = makeTarget(emu);
    for (const [name, size] of [['multipart', 1000], ['resumable', 2 * CHUNK + 3]] as const) {
      const bytes = seededBytes(20, size);
      emu.corruptNextUpload();
      const err = await rejected(target.put(put(`corrupt/${name}.bin`, bytes)));
      expect(err).toBeInstanceOf(TargetError);
      const c = target.classify(err);
      expect(c.kind).toBe('retry');
      expect(c.reason).toMatch(/^hash-mismatch: /);
      expect(c.reason).toContain(md5(bytes));
      expect((await emu.tree()).map((t) => t.path)).not.toContain(path(`corrupt/${name}.bin`));
      const ok = await target.put(put(`corrupt/${name}.bin`, bytes));
      expect(ok.hash).toBe(md5(bytes));
      expect((await emu.read(path(`corrupt/${name}.bin`))).equals(bytes)).toBe(true);
    }
  });

  it('a corrupted new revision fails the attempt; the retry replaces it (same file id)', async () => {
    const { target } = makeTarget(emu);
    const first = await target.put(put('corrupt/u.bin', seededBytes(21, 1000)));
    const v2 = seededBytes(22, 1500);
    emu.corruptNextUpload();
    const err = await rejected(target.put(put('corrupt/u.bin', v2)));
    expect(target.classify(err).reason).toMatch(/^hash-mismatch: /);
    const ok = await target.put(put('corrupt/u.bin', v2));
    expect(ok).toMatchObject({ remoteId: first.remoteId, hash: md5(v2), unchanged: false });
  });
});

describe('folders', () => {
  it('8 concurrent puts into a new nested folder make each folder exactly once', async () => {
    const { target } = makeTarget(emu);
    await Promise.all(Array.from({ length: 8 }, (_, i) => target.put(put(`race/new/deeper/f${i}.bin`, seededBytes(30 + i, 100 + i)))));
    const folders = emu.entries().filter((e) => e.folder).map((e) => e.path).sort();
    expect(folders).toEqual([`/${GDRIVE_ROOT}`, path('race'), path('race/new'), path('race/new/deeper')]);
    expect((await emu.tree()).filter((t) => t.path.startsWith(path('race/')))).toHaveLength(8);
    // Each folder was looked up before it was made, and made once; a daemon alone on its journal
    // does not look a folder up again after making it.
    expect(emu.server.requests(/^\/drive\/v3\/files(\?|$)/).filter((r) => r.method === 'POST')).toHaveLength(4);
    const folderLookups = emu.server.requests(/^\/drive\/v3\/files\?/).filter((r) => r.method === 'GET' && decodeURIComponent(r.url).includes(`mimeType = '${FOLDER_MIME}'`));
    expect(folderLookups).toHaveLength(4);
  });

  // Two daemons on one journal, the same new folder at the same moment: both look it up, find
  // nothing, and make it. Drive keeps two folders of one name: a folder is a file known by its id,
  // and files.create makes a new one on each call
  // (https://developers.google.com/workspace/drive/api/guides/folder#create).
  const twinPuts = (a: TestTarget, b: TestTarget) =>
    Promise.all([a.target.put(put('twin/a.bin', seededBytes(50, 10))), b.target.put(put('twin/b.bin', seededBytes(51, 11)))]);
  const folderCreates = () => emu.server.requests(/^\/drive\/v3\/files(\?|$)/).filter((r) => r.method === 'POST');

  /** Fleet locks kept in this process; `keys` lists each key run under them. */
  const inProcessLocks = (keys: string[] = []): FleetLocks => {
    const tails = new Map<string, Promise<unknown>>();
    return {
      run: (key, fn) => {
        keys.push(key);
        const run = (tails.get(key) ?? Promise.resolve()).then(fn);
        tails.set(key, run.catch(() => undefined));
        return run;
      },
    };
  };

  it('two fleets making one new folder at once (locks that do not see each other) end with one folder of the name, both files in it', async () => {
    const a = makeTarget(emu, {}, {}, inProcessLocks());
    const b = makeTarget(emu, {}, {}, inProcessLocks());
    await twinPuts(a, b);
    // No lock held the other back: both made each folder, then took the oldest and dropped their own.
    expect(folderCreates().length).toBeGreaterThan(2);
    // The folders dropped are deleted, not trashed.
    expect(emu.entries().filter((e) => e.folder).map((e) => e.path).sort()).toEqual([`/${GDRIVE_ROOT}`, path('twin')]);
    expect(emu.model.findByPath(path('twin/a.bin'))!.parents).toEqual(emu.model.findByPath(path('twin/b.bin'))!.parents);
    expect([...a.logs, ...b.logs].some((l) => l.includes('made elsewhere at the same time'))).toBe(true);
  });

  it("with the fleet's locks, the second daemon finds the folder the first made: each folder is made once", async () => {
    const keys: string[] = [];
    const locks = inProcessLocks(keys);
    const a = makeTarget(emu, {}, {}, locks);
    const b = makeTarget(emu, {}, {}, locks);
    await twinPuts(a, b);
    expect(folderCreates()).toHaveLength(2);
    expect(emu.entries().filter((e) => e.folder).map((e) => e.path).sort()).toEqual([`/${GDRIVE_ROOT}`, path('twin')]);
    expect(keys.some((k) => k.endsWith('/twin'))).toBe(true);
  });

  it('concurrent ensureFolder calls of one path make it once and agree on its id', async () => {
    const { target } = makeTarget(emu);
    const ids = await Promise.all(Array.from({ length: 6 }, () => target.ensureFolder('x/y')));
    expect(new Set(ids).size).toBe(1);
    expect(emu.entries().filter((e) => e.folder && e.path === path('x/y'))).toHaveLength(1);
  });

  it('reuses a same-name folder made elsewhere (the oldest of duplicates) instead of making another', async () => {
    const client = createDriveClient({ url: emu.url, clientId: emu.clientId, clientSecret: emu.clientSecret, refreshToken: emu.refreshToken });
    const mk = async (name: string, parent?: string) =>
      (await client.drive.files.create({ requestBody: { name, mimeType: FOLDER_MIME, ...(parent ? { parents: [parent] } : {}) }, fields: 'id' })).data.id!;
    const root = await mk(GDRIVE_ROOT);
    const older = await mk('shared', root);
    await mk('shared', root);
    const { target, logs } = makeTarget(emu);
    await target.put(put('shared/f.bin', seededBytes(40, 10)));
    expect(emu.entries().filter((e) => e.folder)).toHaveLength(3);
    expect(emu.model.findByPath(path('shared/f.bin'))!.parents).toEqual([older]);
    expect(logs.some((l) => l.includes('several folders share this name'))).toBe(true);
  });

  it('finds names again exactly: quotes and backslashes survive the query, case is another file', async () => {
    const { target } = makeTarget(emu);
    const name = "O'Brien \\ \"q\".txt";
    const bytes = seededBytes(41, 100);
    await target.put(put(`names/${name}`, bytes));
    expect((await target.put(put(`names/${name}`, bytes))).unchanged).toBe(true);
    await target.put(put('names/Doc.txt', seededBytes(42, 10)));
    await target.put(put('names/doc.txt', seededBytes(43, 11)));
    expect((await emu.tree()).map((t) => t.path).filter((p) => /doc\.txt$/i.test(p)).sort()).toEqual([path('names/Doc.txt'), path('names/doc.txt')]);
  });

  it('several same-name files: the most recently modified is updated, no third one is made', async () => {
    // The files are another client's, made before this target first looks into the folder.
    const { target: other } = makeTarget(emu);
    await other.ensureFolder('dups');
    const client = createDriveClient({ url: emu.url, clientId: emu.clientId, clientSecret: emu.clientSecret, refreshToken: emu.refreshToken });
    const parent = emu.entries().find((e) => e.path === path('dups'))!.id;
    const mkFile = async (mtime: string) =>
      (await client.drive.files.create({ requestBody: { name: 'd.bin', parents: [parent], modifiedTime: mtime }, media: { body: Readable.from([Buffer.from('old')]) }, fields: 'id' }, client.mediaOptions)).data.id!;
    await mkFile('2020-01-01T00:00:00Z');
    const newest = await mkFile('2022-01-01T00:00:00Z');
    await mkFile('2021-01-01T00:00:00Z');
    const { target, logs } = makeTarget(emu);
    const res = await target.put(put('dups/d.bin', seededBytes(44, 50)));
    expect(res.remoteId).toBe(newest);
    expect((await emu.tree()).filter((t) => t.path === path('dups/d.bin'))).toHaveLength(3);
    expect(logs.some((l) => l.includes('several files share this name'))).toBe(true);
  });

  it('a cached folder deleted behind the target fails the next put retry, and the one after recreates it', async () => {
    const { target } = makeTarget(emu);
    await target.put(put('gone/a.bin', seededBytes(45, 10)));
    const client = createDriveClient({ url: emu.url, clientId: emu.clientId, clientSecret: emu.clientSecret, refreshToken: emu.refreshToken });
    await client.drive.files.delete({ fileId: emu.entries().find((e) => e.path === path('gone'))!.id });
    const err = await rejected(target.put(put('gone/b.bin', seededBytes(46, 10))));
    expect(target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(target.classify(err).reason).toMatch(/^not-found: /);
    await target.put(put('gone/b.bin', seededBytes(46, 10)));
    expect((await emu.tree()).map((t) => t.path)).toContain(path('gone/b.bin'));
  });

  it('stat creates nothing and answers null when a folder on the way is missing', async () => {
    const { target } = makeTarget(emu);
    expect(await target.stat('no/such/file.bin')).toBeNull();
    expect(emu.entries()).toEqual([]);
    const bytes = seededBytes(47, 123);
    const r = await target.put(put('st/file.bin', bytes));
    expect(await target.stat('st/file.bin')).toEqual({ remoteId: r.remoteId, size: 123, hash: md5(bytes) });
  });
});

describe('names Drive cannot take', () => {
  it.each([
    ['a/../b.txt', 'dot-segment'],
    ['a//b.txt', 'empty-segment'],
    [`long/${'x'.repeat(1025)}`, 'name-too-long'],
    ['nul/\0.txt', 'nul'],
  ])('%j fails the item with its rule and sends nothing', async (p, rule) => {
    const { target } = makeTarget(emu);
    const err = await rejected(target.put(put(p, seededBytes(50, 10))));
    expect(target.classify(err)).toMatchObject({ kind: 'fail-item' });
    expect(target.classify(err).reason.startsWith(`${rule}: `)).toBe(true);
    expect(emu.server.requests()).toEqual([]);
  });
});

describe('close', () => {
  it('waits for puts in flight, then refuses new ones (fatal closed); idempotent', async () => {
    const { target } = makeTarget(emu);
    const p = target.put(put('c/a.bin', seededBytes(60, 2 * CHUNK)));
    const closed = target.close();
    expect(target.close()).toBe(closed);
    await closed;
    expect((await p).size).toBe(2 * CHUNK);
    const err = await rejected(target.put(put('c/b.bin', seededBytes(61, 1))));
    expect(target.classify(err)).toMatchObject({ kind: 'fatal' });
    expect(target.classify(err).reason).toMatch(/^closed: /);
  });
});

describe('a multipart upload whose source fails', () => {
  it('aborts the request and stores nothing, even past the first piece', async () => {
    const { target } = makeTarget(emu, { simpleUploadMax: 10 * CHUNK });
    const bytes = seededBytes(62, 5 * CHUNK);
    const ac = new AbortController();
    const err = await rejected(target.put(put('mp/abort.bin', bytes, undefined, { signal: ac.signal, open: pullTriggerSource(bytes, () => ac.abort()) })));
    expect(target.classify(err).kind).toBe('retry');
    expect(await emu.tree()).toEqual([]);
  });
});
