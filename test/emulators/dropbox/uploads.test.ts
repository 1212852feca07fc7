/** Raw HTTP: files/upload and upload sessions, with their error and resume paths. */
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DropboxContentHasher } from '../../../src/archive/dropbox-hash.js';
import { startDropboxEmulator, type DropboxEmulator } from './index.js';
import { API, CONTENT, content, raw, rpc, type RawResponse } from './raw.js';

const MiB = 1024 * 1024;
let emu: DropboxEmulator;
let t: string;

beforeEach(async (ctx) => {
  emu = await startDropboxEmulator();
  t = emu.accessToken();
  ctx.onTestFinished(() => emu.close());
});

afterEach(() => {
  vi.useRealTimers();
});

const hash = (...bufs: Buffer[]) => {
  const h = new DropboxContentHasher();
  for (const b of bufs) h.update(b);
  return h.digest();
};
const up = (args: Record<string, unknown>, data: string | Buffer | Readable = '') => content(emu.url, t, 'files/upload', args, data);
const start = (args: Record<string, unknown>, data: string | Buffer = '') => content(emu.url, t, 'files/upload_session/start', args, data);
const append = (args: Record<string, unknown>, data: string | Buffer | Readable = '') => content(emu.url, t, 'files/upload_session/append_v2', args, data);
const finish = (args: Record<string, unknown>, data: string | Buffer | Readable = '') => content(emu.url, t, 'files/upload_session/finish', args, data);

function expect409(res: RawResponse, summary: string, error: unknown): void {
  expect(res.status, res.text).toBe(409);
  expect(res.json.error_summary).toMatch(new RegExp(`^${summary.replace(/[/.]/g, '\\$&')}/\\.*$`));
  expect(res.json.error).toEqual(error);
}

describe('files/upload', () => {
  it('stores the bytes and returns FileMetadata (untagged) with the content hash', async () => {
    const data = Buffer.from('some bytes\n');
    const res = await up({ path: '/Docs/Note.txt', mode: 'add', client_modified: '2020-01-02T03:04:05Z', mute: true }, data);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      name: 'Note.txt',
      path_lower: '/docs/note.txt',
      path_display: '/Docs/Note.txt',
      id: expect.stringMatching(/^id:/),
      client_modified: '2020-01-02T03:04:05Z',
      server_modified: expect.stringMatching(/Z$/),
      rev: expect.stringMatching(/^[0-9a-f]{9,}$/),
      size: data.length,
      is_downloadable: true,
      content_hash: hash(data),
    });
    const [stored] = await emu.tree();
    expect(stored).toMatchObject({ path: '/Docs/Note.txt', size: data.length, hash: hash(data) });
    expect((await emu.blobs.bytes(stored!.blob)).equals(data)).toBe(true);
  });

  it('takes args from the `arg` query parameter, and non-ASCII only as \\u escapes in the header', async () => {
    const viaQuery = await raw(emu.url, {
      path: `/2/files/upload?arg=${encodeURIComponent(JSON.stringify({ path: '/Ünï.txt' }))}`,
      host: CONTENT,
      headers: { authorization: `Bearer ${t}`, 'content-type': 'application/octet-stream' },
      body: 'q',
    });
    expect(viaQuery.json.path_display).toBe('/Ünï.txt');
    const rawUtf8 = await raw(emu.url, {
      path: '/2/files/upload',
      host: CONTENT,
      headers: { authorization: `Bearer ${t}`, 'content-type': 'application/octet-stream', 'dropbox-api-arg': Buffer.from(JSON.stringify({ path: '/é.txt' })).toString('latin1') },
      body: 'x',
    });
    expect(rawUtf8.status).toBe(400);
    expect(rawUtf8.text).toBe('Error in call to API function "files/upload": HTTP header "Dropbox-API-Arg": could not decode input as JSON');
  });

  it('answers 400 for a wrong Content-Type, a bad client_modified, or a missing path', async () => {
    const json = await raw(emu.url, { path: '/2/files/upload', host: CONTENT, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', 'dropbox-api-arg': '{"path":"/a"}' }, body: 'x' });
    expect(json.status).toBe(400);
    expect(json.text).toContain('Bad HTTP "Content-Type" header: "application/json"');
    expect((await up({ path: '/a', client_modified: '2020-01-02 03:04:05' }, 'x')).status).toBe(400);
    expect((await up({}, 'x')).status).toBe(400);
    expect(await emu.tree()).toEqual([]);
  });

  it('checks content_hash against the bytes received: 409 content_hash_mismatch, nothing stored', async () => {
    const data = Buffer.from('payload');
    expect409(await up({ path: '/h.txt', content_hash: hash(Buffer.from('other')) }, data), 'content_hash_mismatch', { '.tag': 'content_hash_mismatch' });
    expect(await emu.tree()).toEqual([]);
    expect((await up({ path: '/h.txt', content_hash: hash(data) }, data)).status).toBe(200);
  });

  it('mode add: conflict/file with an upload_session_id the commit can be retried with', async () => {
    await up({ path: '/c.txt' }, 'one');
    const two = Buffer.from('two');
    const res = await up({ path: '/C.txt' }, two);
    expect(res.status).toBe(409);
    expect(res.json.error_summary).toMatch(/^path\/conflict\/file\/\.*$/);
    expect(res.json.error).toEqual({
      '.tag': 'path',
      reason: { '.tag': 'conflict', conflict: { '.tag': 'file' } },
      upload_session_id: expect.stringMatching(/^pid_upload_session:/),
    });
    const retry = await finish({ cursor: { session_id: res.json.error.upload_session_id, offset: two.length }, commit: { path: '/c.txt', mode: 'overwrite' } });
    expect(retry.status).toBe(200);
    expect(retry.json.content_hash).toBe(hash(two));
  });

  it('identical content at the target writes nothing and is no conflict', async () => {
    const first = (await up({ path: '/same.txt' }, 'same')).json;
    const again = await up({ path: '/same.txt', mode: 'add' }, 'same');
    expect(again.status).toBe(200);
    expect(again.json.rev).toBe(first.rev);
  });

  it('autorename in add mode: "name (1).ext"', async () => {
    await up({ path: '/r/photo.jpg' }, 'a');
    const res = await up({ path: '/r/photo.jpg', autorename: true }, 'b');
    expect(res.json.path_display).toBe('/r/photo (1).jpg');
  });

  it('overwrite keeps the id and gives a new rev; a folder in the way is conflict/folder', async () => {
    const first = (await up({ path: '/o.txt' }, 'one')).json;
    const second = (await up({ path: '/o.txt', mode: { '.tag': 'overwrite' } }, 'two')).json;
    expect(second).toMatchObject({ id: first.id, size: 3, content_hash: hash(Buffer.from('two')) });
    expect(second.rev).not.toBe(first.rev);
    expect((await emu.tree()).map((f) => f.path)).toEqual(['/o.txt']);
    await rpc(emu.url, t, 'files/create_folder_v2', { path: '/dir' });
    const onFolder = await up({ path: '/dir', mode: 'overwrite' }, 'x');
    expect(onFolder.json.error.reason).toEqual({ '.tag': 'conflict', conflict: { '.tag': 'folder' } });
  });

  it('update mode: the rev must match; autorename gives a conflicted copy; strict_conflict on a missing file', async () => {
    const first = (await up({ path: '/u.txt' }, 'v1')).json;
    const ok = await up({ path: '/u.txt', mode: { '.tag': 'update', update: first.rev } }, 'v2');
    expect(ok.status).toBe(200);
    const stale = await up({ path: '/u.txt', mode: { '.tag': 'update', update: first.rev } }, 'v3');
    expect(stale.json.error.reason).toEqual({ '.tag': 'conflict', conflict: { '.tag': 'file' } });
    const copy = await up({ path: '/u.txt', mode: { '.tag': 'update', update: first.rev }, autorename: true }, 'v3');
    expect(copy.json.path_display).toBe('/u (conflicted copy).txt');
    expect((await up({ path: '/gone.txt', mode: { '.tag': 'update', update: first.rev } }, 'x')).status).toBe(200);
    const strict = await up({ path: '/gone2.txt', mode: { '.tag': 'update', update: first.rev }, strict_conflict: true }, 'x');
    expect(strict.json.error.reason).toEqual({ '.tag': 'conflict', conflict: { '.tag': 'file' } });
  });

  it('refuses disallowed names and writes past the quota (path/insufficient_space)', async () => {
    const bad = await up({ path: '/a/Thumbs.db' }, 'x');
    expect(bad.json.error_summary).toMatch(/^path\/disallowed_name\//);
    emu.setQuota(10);
    await up({ path: '/fits.bin' }, Buffer.alloc(8));
    const over = await up({ path: '/over.bin' }, Buffer.alloc(3));
    expect(over.status).toBe(409);
    expect(over.json.error_summary).toMatch(/^path\/insufficient_space\/\.*$/);
    expect(over.json.error).toMatchObject({ '.tag': 'path', reason: { '.tag': 'insufficient_space' } });
    // Overwriting frees the old version's bytes first.
    expect((await up({ path: '/fits.bin', mode: 'overwrite' }, Buffer.alloc(10, 1))).status).toBe(200);
  });

  it('answers 409 payload_too_large past the per-request limit', async () => {
    const small = await startDropboxEmulator({ maxRequestBytes: 1000 });
    try {
      // Streamed (chunked, no Content-Length): the limit holds without a declared size.
      const res = await content(small.url, small.accessToken(), 'files/upload', { path: '/big' }, Readable.from([Buffer.alloc(600), Buffer.alloc(600)]));
      expect409(res, 'payload_too_large', { '.tag': 'payload_too_large' });
      expect(await small.tree()).toEqual([]);
    } finally {
      await small.close();
    }
  });
});

describe('upload sessions (sequential)', () => {
  it('start (with data) → append_v2 → finish (with data) commits the whole content', async () => {
    const parts = [Buffer.alloc(1000, 'a'), Buffer.alloc(2000, 'b'), Buffer.alloc(500, 'c')];
    const s = await start({}, parts[0]!);
    expect(s.json).toEqual({ session_id: expect.stringMatching(/^pid_upload_session:/) });
    const id = s.json.session_id;
    const a = await append({ cursor: { session_id: id, offset: 1000 } }, parts[1]!);
    expect(a.status).toBe(200);
    expect(a.text).toBe('null');
    const f = await finish({ cursor: { session_id: id, offset: 3000 }, commit: { path: '/S/joined.bin' } }, parts[2]!);
    expect(f.json).toMatchObject({ path_display: '/S/joined.bin', size: 3500, content_hash: hash(...parts) });
    expect(emu.sessions()).toEqual([{ id, type: 'sequential', size: 3500, closed: true, committed: true }]);
  });

  it('append_v2 at a wrong offset: 409 incorrect_offset with correct_offset; the client resumes there', async () => {
    const id = (await start({}, Buffer.alloc(100, 1))).json.session_id;
    const wrong = await append({ cursor: { session_id: id, offset: 50 } }, Buffer.alloc(100, 2));
    expect409(wrong, 'incorrect_offset', { '.tag': 'incorrect_offset', correct_offset: 100 });
    const ahead = await append({ cursor: { session_id: id, offset: 400 } }, Buffer.alloc(100, 2));
    expect(ahead.json.error.correct_offset).toBe(100);
    // Nothing of the refused bodies was kept: resume at correct_offset.
    expect((await append({ cursor: { session_id: id, offset: wrong.json.error.correct_offset } }, Buffer.alloc(100, 2))).status).toBe(200);
    const f = await finish({ cursor: { session_id: id, offset: 200 }, commit: { path: '/resumed' } });
    expect(f.json.content_hash).toBe(hash(Buffer.alloc(100, 1), Buffer.alloc(100, 2)));
  });

  it('a lost answer: the append was kept, the retry learns correct_offset and goes on', async () => {
    const id = (await start({}, Buffer.alloc(10, 1))).json.session_id;
    emu.loseResponses(/append_v2/);
    await expect(append({ cursor: { session_id: id, offset: 10 } }, Buffer.alloc(10, 2))).rejects.toThrow();
    const retry = await append({ cursor: { session_id: id, offset: 10 } }, Buffer.alloc(10, 2));
    expect(retry.json.error).toEqual({ '.tag': 'incorrect_offset', correct_offset: 20 });
    const f = await finish({ cursor: { session_id: id, offset: 20 }, commit: { path: '/lost' } }, Buffer.alloc(5, 3));
    expect(f.json).toMatchObject({ size: 25, content_hash: hash(Buffer.alloc(10, 1), Buffer.alloc(10, 2), Buffer.alloc(5, 3)) });
  });

  it('two appends racing at one offset: one is kept, the other gets incorrect_offset', async () => {
    const id = (await start({}, Buffer.alloc(10, 1))).json.session_id;
    const [b1, b2] = [new PassThrough(), new PassThrough()];
    const p1 = append({ cursor: { session_id: id, offset: 10 } }, b1);
    const p2 = append({ cursor: { session_id: id, offset: 10 } }, b2);
    // Both are in flight (past their headers) before either body ends.
    await vi.waitFor(() => expect(emu.server.requests(/append_v2/)).toHaveLength(2), { timeout: 5000, interval: 5 });
    b1.end(Buffer.alloc(10, 2));
    expect((await p1).status).toBe(200);
    b2.end(Buffer.alloc(10, 3));
    expect((await p2).json.error).toEqual({ '.tag': 'incorrect_offset', correct_offset: 20 });
    const f = await finish({ cursor: { session_id: id, offset: 20 }, commit: { path: '/race' } });
    expect(f.json.content_hash).toBe(hash(Buffer.alloc(10, 1), Buffer.alloc(10, 2)));
  });

  it('two finishes racing: one commits, the other is lookup_failed/closed', async () => {
    const id = (await start({}, 'abc')).json.session_id;
    const [b1, b2] = [new PassThrough(), new PassThrough()];
    const p1 = finish({ cursor: { session_id: id, offset: 3 }, commit: { path: '/one' } }, b1);
    const p2 = finish({ cursor: { session_id: id, offset: 3 }, commit: { path: '/two' } }, b2);
    await vi.waitFor(() => expect(emu.server.requests(/upload_session\/finish/)).toHaveLength(2), { timeout: 5000, interval: 5 });
    b1.end();
    b2.end();
    const [r1, r2] = await Promise.all([p1, p2]);
    expect([r1.status, r2.status].sort()).toEqual([200, 409]);
    expect((r1.status === 409 ? r1 : r2).json.error).toEqual({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'closed' } });
    expect((await emu.tree()).map((f) => f.path)).toHaveLength(1);
  });

  it('finish at a wrong offset: lookup_failed/incorrect_offset, nested', async () => {
    const id = (await start({}, 'abc')).json.session_id;
    expect409(await finish({ cursor: { session_id: id, offset: 1 }, commit: { path: '/x' } }), 'lookup_failed/incorrect_offset', {
      '.tag': 'lookup_failed',
      lookup_failed: { '.tag': 'incorrect_offset', correct_offset: 3 },
    });
  });

  it('a closed session refuses appends (closed); an unknown one is not_found; finish after commit is closed', async () => {
    const id = (await start({ close: true }, 'abc')).json.session_id;
    expect409(await append({ cursor: { session_id: id, offset: 3 } }, 'd'), 'closed', { '.tag': 'closed' });
    expect409(await append({ cursor: { session_id: 'pid_upload_session:nope', offset: 0 } }, 'd'), 'not_found', { '.tag': 'not_found' });
    expect((await finish({ cursor: { session_id: id, offset: 3 }, commit: { path: '/closed' } })).status).toBe(200);
    expect409(await finish({ cursor: { session_id: id, offset: 3 }, commit: { path: '/closed2' } }), 'lookup_failed/closed', {
      '.tag': 'lookup_failed',
      lookup_failed: { '.tag': 'closed' },
    });
  });

  it('sessions expire after 7 days (not_found)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const id = (await start({}, 'abc')).json.session_id;
    vi.setSystemTime(Date.now() + 7 * 24 * 3600 * 1000 + 1000);
    t = emu.accessToken();
    expect409(await append({ cursor: { session_id: id, offset: 3 } }, 'd'), 'not_found', { '.tag': 'not_found' });
  });

  it('checks content_hash per call: a mismatching append is dropped', async () => {
    const id = (await start({ content_hash: hash(Buffer.from('abc')) }, 'abc')).json.session_id;
    expect409(await append({ cursor: { session_id: id, offset: 3 }, content_hash: hash(Buffer.from('zzz')) }, 'def'), 'content_hash_mismatch', { '.tag': 'content_hash_mismatch' });
    expect((await append({ cursor: { session_id: id, offset: 3 }, content_hash: hash(Buffer.from('def')) }, 'def')).status).toBe(200);
    expect409(
      await finish({ cursor: { session_id: id, offset: 6 }, commit: { path: '/h' }, content_hash: hash(Buffer.from('nope')) }, 'ghi'),
      'content_hash_mismatch',
      { '.tag': 'content_hash_mismatch' },
    );
    const f = await finish({ cursor: { session_id: id, offset: 6 }, commit: { path: '/h' }, content_hash: hash(Buffer.from('ghi')) }, 'ghi');
    expect(f.json.content_hash).toBe(hash(Buffer.from('abcdefghi')));
  });

  it('a commit that fails keeps the data: retry finish with an empty body and the new offset', async () => {
    await up({ path: '/taken' }, 'old');
    const id = (await start({}, 'new ')).json.session_id;
    const fail = await finish({ cursor: { session_id: id, offset: 4 }, commit: { path: '/taken' } }, 'data');
    expect409(fail, 'path/conflict/file', { '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'file' } } });
    const retry = await finish({ cursor: { session_id: id, offset: 8 }, commit: { path: '/taken', mode: 'overwrite' } });
    expect(retry.json.content_hash).toBe(hash(Buffer.from('new data')));
  });
});

describe('upload sessions (concurrent)', () => {
  const B = 4 * MiB;

  it('takes 4 MiB-aligned pieces in any order and commits them in offset order', async () => {
    const pieces = [Buffer.alloc(B, 1), Buffer.alloc(B, 2), Buffer.alloc(1234, 3)];
    const id = (await start({ session_type: 'concurrent' })).json.session_id;
    expect((await append({ cursor: { session_id: id, offset: 2 * B }, close: true }, pieces[2]!)).status).toBe(200);
    expect((await append({ cursor: { session_id: id, offset: B } }, pieces[1]!)).status).toBe(200);
    expect409(await finish({ cursor: { session_id: id, offset: 2 * B + 1234 }, commit: { path: '/c' } }), 'concurrent_session_missing_data', { '.tag': 'concurrent_session_missing_data' });
    expect((await append({ cursor: { session_id: id, offset: 0 } }, pieces[0]!)).status).toBe(200);
    const f = await finish({ cursor: { session_id: id, offset: 2 * B + 1234 }, commit: { path: '/c' } });
    expect(f.json).toMatchObject({ size: 2 * B + 1234, content_hash: hash(...pieces) });
  });

  it('enforces the concurrent rules', async () => {
    expect409(await start({ session_type: { '.tag': 'concurrent' } }, 'data'), 'concurrent_session_data_not_allowed', { '.tag': 'concurrent_session_data_not_allowed' });
    expect409(await start({ session_type: 'concurrent', close: true }), 'concurrent_session_close_not_allowed', { '.tag': 'concurrent_session_close_not_allowed' });
    const id = (await start({ session_type: 'concurrent' })).json.session_id;
    expect409(await append({ cursor: { session_id: id, offset: 100 } }, Buffer.alloc(B)), 'concurrent_session_invalid_offset', { '.tag': 'concurrent_session_invalid_offset' });
    expect409(await append({ cursor: { session_id: id, offset: 0 } }, Buffer.alloc(100)), 'concurrent_session_invalid_data_size', { '.tag': 'concurrent_session_invalid_data_size' });
    expect((await append({ cursor: { session_id: id, offset: 0 } }, Buffer.alloc(B))).status).toBe(200);
    expect409(await finish({ cursor: { session_id: id, offset: B }, commit: { path: '/n' } }), 'concurrent_session_not_closed', { '.tag': 'concurrent_session_not_closed' });
    expect((await append({ cursor: { session_id: id, offset: B }, close: true }, Buffer.alloc(0))).status).toBe(200);
    expect409(await finish({ cursor: { session_id: id, offset: B }, commit: { path: '/n' } }, 'x'), 'concurrent_session_data_not_allowed', { '.tag': 'concurrent_session_data_not_allowed' });
    expect((await finish({ cursor: { session_id: id, offset: B }, commit: { path: '/n' } })).status).toBe(200);
  });
});

describe('files/upload_session/finish_batch_v2', () => {
  it('commits closed sessions synchronously, one result per entry in order', async () => {
    const a = (await start({ close: true }, 'aaa')).json.session_id;
    const b = (await start({}, 'bbbb')).json.session_id;
    expect((await append({ cursor: { session_id: b, offset: 4 }, close: true }, 'b')).status).toBe(200);
    const open = (await start({}, 'ccc')).json.session_id;
    const res = await rpc(emu.url, t, 'files/upload_session/finish_batch_v2', {
      entries: [
        { cursor: { session_id: a, offset: 3 }, commit: { path: '/batch/a.txt' } },
        { cursor: { session_id: b, offset: 5 }, commit: { path: '/batch/b.txt' } },
        { cursor: { session_id: open, offset: 3 }, commit: { path: '/batch/c.txt' } },
        { cursor: { session_id: a, offset: 3 }, commit: { path: '/batch/a2.txt' } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.json.entries).toEqual([
      expect.objectContaining({ '.tag': 'success', path_display: '/batch/a.txt', content_hash: hash(Buffer.from('aaa')) }),
      expect.objectContaining({ '.tag': 'success', path_display: '/batch/b.txt', size: 5 }),
      { '.tag': 'failure', failure: { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_closed' } } },
      { '.tag': 'failure', failure: { '.tag': 'lookup_failed', lookup_failed: { '.tag': 'closed' } } },
    ]);
    // An RPC route: not served on the content host.
    expect((await rpc(emu.url, t, 'files/upload_session/finish_batch_v2', { entries: [] }, CONTENT)).status).toBe(400);
    expect((await rpc(emu.url, t, 'files/upload_session/finish_batch_v2', { entries: [] }, API)).json).toEqual({ entries: [] });
  });
});
