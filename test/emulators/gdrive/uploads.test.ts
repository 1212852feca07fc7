/**
 * Raw HTTP uploads against the Drive emulator: media, multipart, resumable (chunks, 308 + Range,
 * the status probe, a cut mid-chunk and its resume, the 256 KiB rule, gaps and overlaps,
 * expiry), updates by PATCH, and the quota, daily cap and corruption controls.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CHUNK_GRANULARITY, FOLDER_MIME, startGdriveEmulator, type GdriveEmulator } from './index.js';
import { bytes, call, related } from './raw-http.js';

let emu: GdriveEmulator;
let token: string;

beforeEach(async () => {
  emu = await startGdriveEmulator({ seed: 5 });
  token = emu.issueAccessToken();
});
afterEach(async () => {
  vi.useRealTimers();
  await emu.close();
});

const CHUNK = CHUNK_GRANULARITY;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const CHECKSUMS = 'id,name,size,md5Checksum,sha1Checksum,sha256Checksum,parents,mimeType';

async function startSession(size: number | null, metadata: unknown = { name: 'big.bin' }, path = '/upload/drive/v3/files', method = 'POST'): Promise<string> {
  const headers: Record<string, string> = { 'x-upload-content-type': 'application/octet-stream' };
  if (size !== null) headers['x-upload-content-length'] = String(size);
  const res = await call(emu, method, `${path}?uploadType=resumable&fields=${CHECKSUMS}`, { token, json: metadata, headers });
  expect(res.status).toBe(200);
  expect(res.text).toBe('');
  const location = res.headers.get('location');
  expect(location).toMatch(new RegExp(`^${emu.url}/upload/drive/v3/files.*[?&]upload_id=`));
  return location!;
}

const put = (uri: string, body: Buffer, range?: string) =>
  call(emu, 'PUT', uri, { body, headers: range ? { 'content-range': range } : {} });

describe('uploadType=media and multipart', () => {
  it('stores a media upload as Untitled under My Drive with its hashes', async () => {
    const data = bytes(1000);
    const res = await call(emu, 'POST', `/upload/drive/v3/files?uploadType=media&fields=${CHECKSUMS}`, { token, body: data, headers: { 'content-type': 'image/png' } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      id: expect.any(String),
      name: 'Untitled',
      mimeType: 'image/png',
      parents: [emu.rootId],
      size: '1000',
      md5Checksum: md5(data),
      sha1Checksum: createHash('sha1').update(data).digest('hex'),
      sha256Checksum: createHash('sha256').update(data).digest('hex'),
    });
    expect(await emu.read('/Untitled')).toEqual(data);
  });

  it('stores a multipart upload with its metadata, streamed (boundary split across chunks)', async () => {
    const data = bytes(300_000);
    const folder = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'dir', mimeType: FOLDER_MIME } });
    const body = related('b0und4ry', { name: 'photo.jpg', parents: [folder.json.id], mimeType: 'image/jpeg' }, data, 'application/octet-stream');
    // Send it in odd-sized pieces so the closing delimiter straddles writes.
    const res = await new Promise<{ status: number; json: Record<string, string> }>((resolve, reject) => {
      const req = http.request(`${emu.url}/upload/drive/v3/files?uploadType=multipart&fields=name,mimeType,size,md5Checksum`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'multipart/related; boundary=b0und4ry', 'transfer-encoding': 'chunked' },
      }, (r) => {
        let s = '';
        r.on('data', (c) => (s += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, json: JSON.parse(s) }));
      });
      req.on('error', reject);
      for (let i = 0; i < body.length; i += 7777) req.write(body.subarray(i, i + 7777));
      req.end();
    });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ name: 'photo.jpg', mimeType: 'image/jpeg', size: '300000', md5Checksum: md5(data) });
    expect((await emu.tree()).map((t) => [t.path, t.size, t.hash])).toEqual([['/dir/photo.jpg', 300000, md5(data)]]);
  });

  it('refuses a multipart body without its media part, and bad metadata, storing nothing', async () => {
    const noMedia = Buffer.from('--b\r\nContent-Type: application/json\r\n\r\n{"name":"x"}\r\n--b--');
    const r1 = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=multipart', { token, body: noMedia, headers: { 'content-type': 'multipart/related; boundary=b' } });
    expect(r1.status).toBe(400);
    expect(r1.json.error.errors[0].reason).toBe('badRequest');
    const badMeta = related('b', { name: 'x', parents: ['1nope'] }, Buffer.from('data'));
    const r2 = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=multipart', { token, body: badMeta, headers: { 'content-type': 'multipart/related; boundary=b' } });
    expect(r2.status).toBe(404);
    expect(emu.entries()).toEqual([]);
  });

  it('answers 400 (not a reset) to a large multipart body that never closes', async () => {
    const open = Buffer.concat([
      Buffer.from('--q\r\nContent-Type: application/json\r\n\r\n{"name":"x"}\r\n--q\r\nContent-Type: text/plain\r\n\r\n'),
      bytes(1 << 20),
    ]);
    const res = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=multipart', { token, body: open, headers: { 'content-type': 'multipart/related; boundary=q' } });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/closing boundary/);
    expect(emu.entries()).toEqual([]);
  });

  it('asks for an uploadType', async () => {
    const res = await call(emu, 'POST', '/upload/drive/v3/files', { token, body: Buffer.from('x') });
    expect(res.status).toBe(400);
    expect(res.json.error.errors[0].location).toBe('uploadType');
  });

  it('replaces content by PATCH: same id, new revision, new hashes', async () => {
    const first = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=multipart&fields=id,headRevisionId,version', {
      token,
      body: related('x', { name: 'a.txt' }, Buffer.from('one')),
      headers: { 'content-type': 'multipart/related; boundary=x' },
    });
    const second = await call(emu, 'PATCH', `/upload/drive/v3/files/${first.json.id}?uploadType=media&fields=id,name,size,md5Checksum,headRevisionId,version`, {
      token,
      body: Buffer.from('second'),
    });
    expect(second.status).toBe(200);
    expect(second.json).toMatchObject({ id: first.json.id, name: 'a.txt', size: '6', md5Checksum: md5(Buffer.from('second')) });
    expect(second.json.headRevisionId).not.toBe(first.json.headRevisionId);
    expect(Number(second.json.version)).toBeGreaterThan(Number(first.json.version));
    const third = await call(emu, 'PATCH', `/upload/drive/v3/files/${first.json.id}?uploadType=multipart&fields=name,size`, {
      token,
      body: related('y', { name: 'b.txt' }, Buffer.from('3')),
      headers: { 'content-type': 'multipart/related; boundary=y' },
    });
    expect(third.json).toEqual({ name: 'b.txt', size: '1' });
    expect(emu.entries()).toHaveLength(1);
    expect(await emu.read('/b.txt')).toEqual(Buffer.from('3'));
  });
});

describe('uploadType=resumable', () => {

  it('takes chunks with 308 + Range until the last, then 200 with the file', async () => {
    const data = bytes(2 * CHUNK + 1000);
    const uri = await startSession(data.length);
    const r1 = await put(uri, data.subarray(0, CHUNK), `bytes 0-${CHUNK - 1}/${data.length}`);
    expect(r1.status).toBe(308);
    expect(r1.headers.get('range')).toBe(`bytes=0-${CHUNK - 1}`);
    expect(r1.headers.get('location')).toBeNull();
    expect(r1.text).toBe('');
    const r2 = await put(uri, data.subarray(CHUNK, 2 * CHUNK), `bytes ${CHUNK}-${2 * CHUNK - 1}/${data.length}`);
    expect(r2.headers.get('range')).toBe(`bytes=0-${2 * CHUNK - 1}`);
    const r3 = await put(uri, data.subarray(2 * CHUNK), `bytes ${2 * CHUNK}-${data.length - 1}/${data.length}`);
    expect(r3.status).toBe(200);
    expect(r3.json).toMatchObject({ name: 'big.bin', size: String(data.length), md5Checksum: md5(data), parents: [emu.rootId] });
    expect((await emu.read('/big.bin')).equals(data)).toBe(true);
    // The finished session answers again with the same file.
    const again = await put(uri, Buffer.alloc(0), `bytes */${data.length}`);
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(r3.json.id);
  });

  it('gives a session URI on the public host to a client that came by that name', async () => {
    const location = await new Promise<string | undefined>((resolve, reject) => {
      const req = http.request(`${emu.url}/upload/drive/v3/files?uploadType=resumable`, {
        method: 'POST',
        headers: { host: 'www.googleapis.com', authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      }, (res) => {
        res.resume();
        resolve(res.headers.location);
      });
      req.on('error', reject);
      req.end('{"name":"p.bin"}');
    });
    expect(location).toMatch(/^https:\/\/www\.googleapis\.com\/upload\/drive\/v3\/files\?uploadType=resumable&upload_id=/);
  });

  it('answers a status probe with 308 and no Range while nothing is stored', async () => {
    const uri = await startSession(CHUNK * 2);
    const probe = await put(uri, Buffer.alloc(0), `bytes */${CHUNK * 2}`);
    expect(probe.status).toBe(308);
    expect(probe.headers.get('range')).toBeNull();
  });

  it('resumes after a connection cut mid-chunk: probe, then continue from the Range', async () => {
    const data = bytes(3 * CHUNK + 17);
    const uri = await startSession(data.length);
    expect((await put(uri, data.subarray(0, CHUNK), `bytes 0-${CHUNK - 1}/${data.length}`)).status).toBe(308);
    // Second chunk: send half of it and drop the connection.
    await new Promise<void>((resolve) => {
      const req = http.request(uri, { method: 'PUT', headers: { 'content-range': `bytes ${CHUNK}-${2 * CHUNK - 1}/${data.length}`, 'content-length': String(CHUNK) } });
      req.on('error', () => resolve());
      req.write(data.subarray(CHUNK, CHUNK + CHUNK / 2), () => {
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 20);
      });
    });
    const probe = await put(uri, Buffer.alloc(0), `bytes */${data.length}`);
    expect(probe.status).toBe(308);
    expect(probe.headers.get('range')).toBe(`bytes=0-${CHUNK - 1}`);
    const next = Number(/bytes=0-(\d+)/.exec(probe.headers.get('range')!)![1]) + 1;
    expect((await put(uri, data.subarray(next, next + 2 * CHUNK), `bytes ${next}-${next + 2 * CHUNK - 1}/${data.length}`)).status).toBe(308);
    const last = await put(uri, data.subarray(next + 2 * CHUNK), `bytes ${next + 2 * CHUNK}-${data.length - 1}/${data.length}`);
    expect(last.status).toBe(200);
    expect(last.json.md5Checksum).toBe(md5(data));
    expect(emu.server.requests(/upload_id/).some((r) => r.status === 0 || r.bodyBytes < CHUNK)).toBe(true);
  });

  it('refuses a non-final chunk that is not a multiple of 256 KiB', async () => {
    const data = bytes(CHUNK * 2);
    const uri = await startSession(data.length);
    const res = await put(uri, data.subarray(0, 1000), `bytes 0-999/${data.length}`);
    expect(res.status).toBe(400);
    expect(res.json.error.errors[0].reason).toBe('badRequest');
    const probe = await put(uri, Buffer.alloc(0), `bytes */${data.length}`);
    expect(probe.headers.get('range')).toBeNull();
  });

  it('answers a chunk past the stored bytes with 308 and the real Range, storing nothing', async () => {
    const data = bytes(CHUNK * 3);
    const uri = await startSession(data.length);
    await put(uri, data.subarray(0, CHUNK), `bytes 0-${CHUNK - 1}/${data.length}`);
    const gap = await put(uri, data.subarray(2 * CHUNK), `bytes ${2 * CHUNK}-${3 * CHUNK - 1}/${data.length}`);
    expect(gap.status).toBe(308);
    expect(gap.headers.get('range')).toBe(`bytes=0-${CHUNK - 1}`);
    expect(emu.uploadSessions()[0]).toMatchObject({ received: CHUNK, done: false });
  });

  it('accepts a resent chunk that overlaps what is stored, keeping each byte once', async () => {
    const data = bytes(CHUNK * 2 + 5);
    const uri = await startSession(data.length);
    await put(uri, data.subarray(0, CHUNK), `bytes 0-${CHUNK - 1}/${data.length}`);
    const res = await put(uri, data, `bytes 0-${data.length - 1}/${data.length}`);
    expect(res.status).toBe(200);
    expect(res.json.size).toBe(String(data.length));
    expect(res.json.md5Checksum).toBe(md5(data));
  });

  it('may keep fewer bytes than a chunk carried, and says so in the Range', async () => {
    const data = bytes(CHUNK * 4);
    const uri = await startSession(data.length);
    emu.shortenNextChunk(CHUNK + 100);
    const res = await put(uri, data.subarray(0, 3 * CHUNK), `bytes 0-${3 * CHUNK - 1}/${data.length}`);
    expect(res.status).toBe(308);
    expect(res.headers.get('range')).toBe(`bytes=0-${CHUNK - 1}`);
    const rest = await put(uri, data.subarray(CHUNK), `bytes ${CHUNK}-${data.length - 1}/${data.length}`);
    expect(rest.status).toBe(200);
    expect(rest.json.md5Checksum).toBe(md5(data));
  });

  it('takes a total unknown until the last chunk (bytes a-b/*)', async () => {
    const data = bytes(CHUNK + 10);
    const uri = await startSession(null);
    const r1 = await put(uri, data.subarray(0, CHUNK), `bytes 0-${CHUNK - 1}/*`);
    expect(r1.status).toBe(308);
    const probe = await put(uri, Buffer.alloc(0), 'bytes */*');
    expect(probe.headers.get('range')).toBe(`bytes=0-${CHUNK - 1}`);
    const r2 = await put(uri, data.subarray(CHUNK), `bytes ${CHUNK}-${data.length - 1}/${data.length}`);
    expect(r2.status).toBe(200);
    expect(r2.json.md5Checksum).toBe(md5(data));
  });

  it('takes the whole body in one PUT and POST chunks too', async () => {
    const data = bytes(5000);
    const uri = await startSession(data.length);
    const res = await put(uri, data);
    expect(res.status).toBe(200);
    expect(res.json.md5Checksum).toBe(md5(data));
    const uri2 = await startSession(data.length, { name: 'two.bin' });
    const post = await call(emu, 'POST', uri2, { body: data, headers: { 'content-range': `bytes 0-4999/5000` } });
    expect(post.status).toBe(200);
  });

  it('refuses Content-Range totals that disagree and malformed ranges', async () => {
    const uri = await startSession(CHUNK * 2);
    expect((await put(uri, bytes(CHUNK), `bytes 0-${CHUNK - 1}/${CHUNK * 3}`)).status).toBe(400);
    expect((await put(uri, bytes(10), 'bytes 0-9')).status).toBe(400);
    expect((await put(uri, bytes(10), `bytes 0-19/${CHUNK * 2}`)).status).toBe(400);
  });

  it('expires sessions: the URI answers 404 (configurable lifetime)', async () => {
    await emu.close();
    emu = await startGdriveEmulator({ sessionTtlMs: 60_000 });
    token = emu.issueAccessToken(3600 * 24);
    vi.useFakeTimers({ toFake: ['Date'] });
    const uri = await startSession(CHUNK * 2);
    expect((await put(uri, bytes(CHUNK), `bytes 0-${CHUNK - 1}/${CHUNK * 2}`)).status).toBe(308);
    vi.setSystemTime(Date.now() + 61_000);
    const res = await put(uri, Buffer.alloc(0), `bytes */${CHUNK * 2}`);
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe(404);
    expect(emu.uploadSessions()).toEqual([]);
  });

  // developers.google.com/workspace/drive/api/guides/manage-uploads, "Perform a resumable upload":
  // the initiation answers the session URI in Location only; the file exists once the last byte
  // is in, and an unfinished session expires (after a week). Nothing lists open sessions.
  it('an initiated session that receives no byte creates no file and holds nothing until it expires', async () => {
    const uri = await startSession(CHUNK * 2, { name: 'never.bin' });
    expect(await emu.tree()).toEqual([]);
    const probe = await put(uri, Buffer.alloc(0), `bytes */${CHUNK * 2}`);
    expect(probe.status).toBe(308);
    expect(probe.headers.get('range')).toBeNull();
    expect(emu.uploadSessions()).toEqual([expect.objectContaining({ received: 0, done: false })]);
    expect(emu.uploadSessions()[0]!.expiresAt - Date.now()).toBeGreaterThan(6 * 24 * 3600_000);
  });

  it('gives an existing file new content through a PATCH session', async () => {
    const first = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media&fields=id', { token, body: Buffer.from('v1') });
    const data = bytes(CHUNK + 3);
    const uri = await startSession(data.length, { name: 'renamed.bin' }, `/upload/drive/v3/files/${first.json.id}`, 'PATCH');
    expect(uri).toContain(`/upload/drive/v3/files/${first.json.id}?`);
    await put(uri, data.subarray(0, CHUNK), `bytes 0-${CHUNK - 1}/${data.length}`);
    const done = await put(uri, data.subarray(CHUNK), `bytes ${CHUNK}-${data.length - 1}/${data.length}`);
    expect(done.json).toMatchObject({ id: first.json.id, name: 'renamed.bin', md5Checksum: md5(data) });
    expect(emu.entries()).toHaveLength(1);
  });

  it('answers 404 for an unknown session', async () => {
    const res = await put(`${emu.url}/upload/drive/v3/files?uploadType=resumable&upload_id=nope`, Buffer.alloc(0), 'bytes */10');
    expect(res.status).toBe(404);
  });
});

describe('quotas, daily cap and corruption', () => {
  it('refuses uploads past the storage quota with 403 storageQuotaExceeded', async () => {
    emu.setStorageQuota(1000);
    const ok = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media', { token, body: bytes(600) });
    expect(ok.status).toBe(200);
    const over = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media', { token, body: bytes(600) });
    expect(over.status).toBe(403);
    expect(over.json.error).toMatchObject({ code: 403, message: "The user's Drive storage quota has been exceeded.", errors: [{ domain: 'usageLimits', reason: 'storageQuotaExceeded' }] });
    const session = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=resumable', { token, json: { name: 'x' }, headers: { 'x-upload-content-length': '500' } });
    expect(session.status).toBe(403);
    // Multipart declares no size: the check falls on the real size once the bytes are in.
    const multi = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=multipart', {
      token,
      body: related('m', { name: 'm.bin' }, bytes(600)),
      headers: { 'content-type': 'multipart/related; boundary=m' },
    });
    expect(multi.status).toBe(403);
    expect(multi.json.error.errors[0].reason).toBe('storageQuotaExceeded');
    expect(emu.entries()).toHaveLength(1);
  });

  it('refuses new uploads once the daily cap is reached, with the cap reason Drive uses', async () => {
    emu.setDailyCap(1000);
    const data = bytes(CHUNK + 10);
    const uri = await startSession(data.length);
    // An upload under way when the cap is crossed is let finish.
    expect((await put(uri, data.subarray(0, CHUNK), `bytes 0-${CHUNK - 1}/${data.length}`)).status).toBe(308);
    expect((await put(uri, data.subarray(CHUNK), `bytes ${CHUNK}-${data.length - 1}/${data.length}`)).status).toBe(200);
    expect(emu.dailyUsage()).toBe(data.length);
    const refused = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media', { token, body: bytes(10) });
    expect(refused.status).toBe(403);
    expect(refused.json.error).toMatchObject({ code: 403, message: 'User rate limit exceeded.', errors: [{ domain: 'usageLimits', reason: 'userRateLimitExceeded', message: 'User rate limit exceeded.' }] });
    const start = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=resumable', { token, json: {} });
    expect(start.status).toBe(403);
    emu.resetDailyUsage();
    expect((await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media', { token, body: bytes(10) })).status).toBe(200);
  });

  it('lets the daily cap roll over after 24 hours', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    emu.setDailyCap(100);
    await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media', { token: emu.issueAccessToken(3 * 86400), body: bytes(100) });
    const t = emu.issueAccessToken(3 * 86400);
    expect((await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media', { token: t, body: bytes(1) })).status).toBe(403);
    vi.setSystemTime(Date.now() + 24 * 3600 * 1000 + 1);
    expect((await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media', { token: t, body: bytes(1) })).status).toBe(200);
  });

  it('corrupts the next upload: the reported md5 is not the md5 of the bytes sent', async () => {
    emu.corruptNextUpload();
    const data = bytes(100);
    const bad = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media&fields=md5Checksum,size', { token, body: data });
    expect(bad.json.size).toBe('100');
    expect(bad.json.md5Checksum).not.toBe(md5(data));
    const good = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media&fields=md5Checksum', { token, body: data });
    expect(good.json.md5Checksum).toBe(md5(data));
  });

  it('corrupts a stored file by path, with checksums recomputed or kept', async () => {
    const data = bytes(100);
    const up = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=multipart&fields=id', {
      token,
      body: related('z', { name: 'c.bin' }, data),
      headers: { 'content-type': 'multipart/related; boundary=z' },
    });
    await emu.corrupt('/c.bin');
    const stored = await emu.read('/c.bin');
    expect(stored).not.toEqual(data);
    const meta = await call(emu, 'GET', `/drive/v3/files/${up.json.id}?fields=md5Checksum`, { token });
    expect(meta.json.md5Checksum).toBe(md5(stored));
    await emu.corrupt('/c.bin', { keepChecksums: true });
    expect(md5(await emu.read('/c.bin'))).not.toBe((await emu.tree())[0]!.hash);
  });
});
