/**
 * The Dropbox target's uploads against the emulator: the chunked path, resume after a cut,
 * `incorrect_offset`, sessions gone, hash verification, idempotence and new versions. The target
 * uses 4 MiB chunks here so a 12 MiB file is four requests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { hashBuffer } from '../../../src/archive/hash.js';
import { ShortReadError } from '../../../src/errors.js';
import type { DropboxHarness } from '../../conformance/dropbox-harness.js';
import { bufferSource, failingSource, request, seededBytes, truncatedSource } from '../../conformance/sources.js';
import { CHUNK, acceptedBytes, messages, put, rejectionOf, resumeStore, smallChunkHarness, uploads } from './helpers.js';

const SIZE = 3 * CHUNK + 123;

let h: DropboxHarness;
afterEach(async () => {
  await h?.cleanup();
});

function count(re: RegExp): number {
  return h.emu.server.requests(re).length;
}

async function stored(path: string): Promise<Buffer | null> {
  return h.readBack(h.mapName!(path));
}

describe('dropbox uploads', () => {
  it('a large file goes through an upload session in chunks, each request carrying one chunk', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(1, SIZE);
    const res = await h.target.put(request('big/file.bin', bytes));
    expect(res).toMatchObject({ size: SIZE, hash: hashBuffer('dropbox', bytes), unchanged: false, bytesSent: SIZE });
    const ups = uploads(h);
    expect(ups.map((r) => r.url.replace(/^.*\/2\/files\//, ''))).toEqual([
      'upload_session/start',
      'upload_session/append_v2',
      'upload_session/append_v2',
      'upload_session/finish',
    ]);
    expect(ups.map((r) => r.bodyBytes)).toEqual([CHUNK, CHUNK, CHUNK, SIZE - 3 * CHUNK]);
    expect((await stored('big/file.bin'))?.equals(bytes)).toBe(true);
    // Every API call went to its own host's endpoint (the emulator refuses the wrong one).
    expect(ups.every((r) => r.url.startsWith('/content/'))).toBe(true);
    expect(h.emu.server.requests(/get_metadata/).every((r) => r.url.startsWith('/api/'))).toBe(true);
  });

  it('resumes after a cut: the saved session continues, earlier chunks are not sent again', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(2, SIZE);
    const store = resumeStore();
    // The "daemon" dies on the second append: the connection is reset mid-request.
    const first = put('cut/file.bin', bytes, store, {
      onSave: (_h, n) => {
        if (n === 2) h.emu.server.faults.queue.push({ match: /append_v2$/, fault: { kind: 'reset' } });
      },
    });
    const err = await rejectionOf(h.target, first);
    expect(h.target.classify(err).kind).toBe('retry');
    const handle = JSON.parse(store.handle!) as { sessionId: string; offset: number };
    expect(handle.offset).toBe(2 * CHUNK);
    expect(await stored('cut/file.bin')).toBeNull();

    // A restarted daemon: a new target, the handle from the store.
    const target = h.reopen();
    const second = put('cut/file.bin', bytes, store);
    const res = await target.put(second);
    expect(res.bytesSent).toBe(SIZE - 2 * CHUNK);
    expect(res.hash).toBe(hashBuffer('dropbox', bytes));
    expect((await stored('cut/file.bin'))?.equals(bytes)).toBe(true);
    expect(count(/upload_session\/start$/)).toBe(1);
    // Each byte reached Dropbox once: the two chunks sent before the cut were not re-sent.
    expect(acceptedBytes(h)).toBe(SIZE);
    expect(second.opens).toEqual([0]);
    expect(store.handle).toBeNull();
  });

  it('an append whose answer was lost: the next put learns the offset from Dropbox and skips that chunk', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(3, SIZE);
    const store = resumeStore();
    h.emu.loseResponses(/append_v2$/, 1);
    const err = await rejectionOf(h.target, put('lost/file.bin', bytes, store));
    expect(h.target.classify(err).kind).toBe('retry');
    // The handle still says 4 MiB; Dropbox holds 8 MiB.
    expect(JSON.parse(store.handle!).offset).toBe(CHUNK);
    expect(h.emu.sessions()[0]!.size).toBe(2 * CHUNK);

    const res = await h.target.put(put('lost/file.bin', bytes, store));
    expect(res.bytesSent).toBe(SIZE - 2 * CHUNK);
    expect((await stored('lost/file.bin'))?.equals(bytes)).toBe(true);
    // The lost chunk was never sent again: each byte of the file went out once (the lost answer's
    // request included), and the only refused request (the probe) carried nothing.
    const all = uploads(h);
    expect(all.filter((r) => r.status === 409).map((r) => r.bodyBytes)).toEqual([0]);
    expect(all.reduce((n, r) => n + r.bodyBytes, 0)).toBe(SIZE);
  });

  it('incorrect_offset in the middle of a put moves to Dropbox\'s offset, forward or back (re-reading the source)', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(31, SIZE);
    // A made-up answer claims Dropbox holds one more chunk than it does; the next append's real
    // answer then sends the put back to where Dropbox really is.
    const fake = { error_summary: 'incorrect_offset/', error: { '.tag': 'incorrect_offset', correct_offset: 2 * CHUNK } };
    const req = put('offset/file.bin', bytes, resumeStore(), {
      onSave: (_h, n) => {
        if (n === 1) h.emu.server.faults.queue.push({ match: /append_v2$/, fault: { kind: 'status', status: 409, body: fake } });
      },
    });
    const res = await h.target.put(req);
    expect(res.hash).toBe(hashBuffer('dropbox', bytes));
    expect((await stored('offset/file.bin'))?.equals(bytes)).toBe(true);
    expect(uploads(h).filter((r) => r.status === 409)).toHaveLength(2);
    // Going back behind what was read means hashing from the start again.
    expect(req.opens).toEqual([0, 0]);
  });

  it('a saved session that is gone starts over with a new one', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(4, SIZE);
    const stale = JSON.stringify({ v: 1, provider: 'dropbox', sessionId: 'pid_upload_session:gone', offset: CHUNK, size: SIZE, path: '/stagecoach/gone/file.bin' });
    const store = resumeStore(stale);
    const res = await h.target.put(put('gone/file.bin', bytes, store));
    expect(res.bytesSent).toBe(SIZE);
    expect((await stored('gone/file.bin'))?.equals(bytes)).toBe(true);
    expect(count(/upload_session\/start$/)).toBe(1);
    expect(store.saved[0]).toBeNull();
    expect(store.handle).toBeNull();
  });

  it('a handle saved for another size or path is ignored', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(5, SIZE);
    const other = JSON.stringify({ v: 1, provider: 'dropbox', sessionId: 'pid_upload_session:x', offset: CHUNK, size: SIZE + 1, path: '/stagecoach/other/file.bin' });
    const res = await h.target.put(put('other/file.bin', bytes, resumeStore(other)));
    expect(res.bytesSent).toBe(SIZE);
    // No probe of the foreign session: the first upload request starts a new one.
    expect(uploads(h)[0]!.url).toMatch(/upload_session\/start$/);
  });

  it('a stored copy that does not hash as the bytes sent fails the attempt as retry; the next put repairs it', async () => {
    h = await smallChunkHarness();
    for (const [path, size] of [['corrupt/small.bin', 100_000], ['corrupt/big.bin', SIZE]] as const) {
      const bytes = seededBytes(6, size);
      h.emu.corruptNextCommits(1);
      const store = resumeStore();
      const err = await rejectionOf(h.target, put(path, bytes, store));
      const c = h.target.classify(err);
      expect(c.kind, path).toBe('retry');
      expect(c.reason, path).toMatch(/^hash-mismatch: /);
      expect(store.handle, path).toBeNull();
      const res = await h.target.put(put(path, bytes, store));
      expect(res.unchanged).toBe(false);
      expect((await stored(path))?.equals(bytes), path).toBe(true);
    }
  });

  it('re-putting an identical file sends nothing; the check costs one metadata call', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(7, SIZE);
    const first = await h.target.put(request('idem/file.bin', bytes));
    const before = uploads(h).length;
    const again = await h.target.put(request('idem/file.bin', bytes));
    expect(again).toMatchObject({ unchanged: true, bytesSent: 0, remoteId: first.remoteId, hash: first.hash });
    expect(uploads(h).length).toBe(before);
  });

  it('a changed file becomes a new version of the same Dropbox file (same id, no renamed copy)', async () => {
    h = await smallChunkHarness();
    const a = seededBytes(8, 5000);
    const b = seededBytes(9, 5000);
    const c = seededBytes(10, SIZE);
    const r1 = await h.target.put(request('ver/doc.bin', a));
    const r2 = await h.target.put(request('ver/doc.bin', b));
    const r3 = await h.target.put(request('VER/Doc.bin', c));
    expect(r2.remoteId).toBe(r1.remoteId);
    expect(r3.remoteId).toBe(r1.remoteId);
    expect((await stored('ver/doc.bin'))?.equals(c)).toBe(true);
    expect(await h.listAll()).toEqual(['ver/doc.bin']);
  });

  it('a source shorter than stated fails with ShortReadError and commits nothing, on both paths', async () => {
    h = await smallChunkHarness();
    for (const [path, size] of [['short/small.bin', 300_000], ['short/big.bin', SIZE]] as const) {
      const bytes = seededBytes(11, size);
      const err = await rejectionOf(h.target, request(path, bytes, { open: truncatedSource(bytes, size - 10) }));
      expect(err).toBeInstanceOf(ShortReadError);
      expect(h.target.classify(err).kind).toBe('fail-item');
      expect(await stored(path)).toBeNull();
    }
  });

  it('a source failing in the middle of a session leaves nothing committed', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(12, SIZE);
    const store = resumeStore();
    const err = await rejectionOf(h.target, put('fail/big.bin', bytes, store, { open: failingSource(bytes, 2 * CHUNK + 5) }));
    expect(h.target.classify(err).reason).toMatch(/^source-unreadable: .*injected/);
    expect(await stored('fail/big.bin')).toBeNull();
    expect(count(/upload_session\/finish$/)).toBe(0);
  });

  it('an abort in the middle of a session stops it at once; the handle lets the next put go on', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(13, SIZE);
    const store = resumeStore();
    const ac = new AbortController();
    const err = await rejectionOf(h.target, put('abort/big.bin', bytes, store, { signal: ac.signal, onSave: (_h, n) => n === 1 && ac.abort() }));
    expect((err as Error).name).toBe('AbortError');
    expect(h.target.classify(err).kind).toBe('retry');
    expect(count(/append_v2$/)).toBe(0);
    expect(await stored('abort/big.bin')).toBeNull();
    const res = await h.target.put(put('abort/big.bin', bytes, store));
    expect(res.bytesSent).toBe(SIZE - CHUNK);
  });
});

describe('dropbox simple upload: the streamed body is checked on its own', () => {
  // Above IN_MEMORY_MAX (1 MiB), up to simpleUploadMax (4 MiB here): hashed by a first read, streamed by a second.
  it('a file that shrinks between the hashing read and the sending read: ShortReadError, nothing committed', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(14, 2_000_000);
    let opens = 0;
    const full = bufferSource(bytes);
    const short = truncatedSource(bytes, bytes.length - 1);
    const err = await rejectionOf(h.target, request('shrink/a.bin', bytes, { open: (start) => (++opens === 1 ? full(start) : short()) }));
    expect(opens).toBe(2);
    expect(err).toBeInstanceOf(ShortReadError);
    expect(await stored('shrink/a.bin')).toBeNull();
  });

  it('a file that fails while it is sent (after hashing fine): the source error, nothing committed', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(15, 3_000_000);
    let opens = 0;
    const full = bufferSource(bytes);
    const failing = failingSource(bytes, 1_500_000);
    const err = await rejectionOf(h.target, request('fails/a.bin', bytes, { open: (start) => (++opens === 1 ? full(start) : failing()) }));
    expect(opens).toBe(2);
    expect(h.target.classify(err).reason).toMatch(/^source-unreadable: source: injected/);
    expect(messages(err)).toContain('InjectedSourceError');
    expect(await stored('fails/a.bin')).toBeNull();
  });
});

describe('dropbox small upload: one read, sent from memory', () => {
  it('a file up to 1 MiB is read once and stored with its content hash', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(16, 1024 * 1024);
    let opens = 0;
    const full = bufferSource(bytes);
    const res = await h.target.put(request('small/a.bin', bytes, { open: (start) => (++opens, full(start)) }));
    expect(opens).toBe(1);
    expect(res).toMatchObject({ size: bytes.length, hash: hashBuffer('dropbox', bytes), unchanged: false, bytesSent: bytes.length });
    expect((await stored('small/a.bin'))!.equals(bytes)).toBe(true);
    // Again: the one read finds it already there.
    const again = await h.target.put(request('small/a.bin', bytes, { open: (start) => (++opens, full(start)) }));
    expect(opens).toBe(2);
    expect(again).toMatchObject({ unchanged: true, bytesSent: 0 });
  });

  it('a small file shorter than stated: ShortReadError, nothing committed', async () => {
    h = await smallChunkHarness();
    const bytes = seededBytes(17, 100_000);
    const err = await rejectionOf(h.target, request('small/short.bin', bytes, { open: () => truncatedSource(bytes, bytes.length - 1)() }));
    expect(err).toBeInstanceOf(ShortReadError);
    expect(await stored('small/short.bin')).toBeNull();
  });
});
