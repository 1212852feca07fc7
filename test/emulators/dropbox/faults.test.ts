/** Raw HTTP: injected faults as a Dropbox client sees them, and the corruption controls. */
import { Readable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { DropboxContentHasher } from '../../../src/archive/dropbox-hash.js';
import { startDropboxEmulator, type DropboxEmulator } from './index.js';
import { API, CONTENT, content, headerArg, raw, rpc } from './raw.js';

let emu: DropboxEmulator;
let t: string;

beforeEach(async (ctx) => {
  emu = await startDropboxEmulator();
  t = emu.accessToken();
  ctx.onTestFinished(() => emu.close());
});

const hash = (b: Buffer) => new DropboxContentHasher().update(b).digest();
const up = (p: string, data: Buffer | string | Readable) => content(emu.url, t, 'files/upload', { path: p }, data);

describe('429', () => {
  it('throttle(): too_many_write_operations on a write, with Retry-After, nothing stored', async () => {
    emu.throttle(1, { retryAfterS: 3 });
    const res = await up('/w.txt', 'x');
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('3');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json).toEqual({
      error_summary: expect.stringMatching(/^too_many_write_operations\/\.*$/),
      error: { reason: { '.tag': 'too_many_write_operations' }, retry_after: 3 },
    });
    expect(await emu.tree()).toEqual([]);
    // Reads are not writes: the queued default only matches write routes.
    emu.throttle(1);
    expect((await rpc(emu.url, t, 'files/list_folder', { path: '' })).status).toBe(200);
    expect((await up('/w.txt', 'x')).status).toBe(429);
    expect((await up('/w.txt', 'x')).status).toBe(200);
  });

  it('an injected 429 on a read renders too_many_requests with the configured Retry-After', async () => {
    emu.server.faults.queue.push({ match: /list_folder/, fault: { kind: 'status', status: 429, retryAfterS: 7 } });
    const res = await rpc(emu.url, t, 'files/list_folder', { path: '' });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.json).toEqual({ error_summary: expect.stringMatching(/^too_many_requests\//), error: { reason: { '.tag': 'too_many_requests' }, retry_after: 7 } });
  });

  it('random 429s on writes say too_many_write_operations and always carry Retry-After', async () => {
    emu.server.setFaults({ rate: 1, mix: [{ kind: 'status', status: 429, weight: 1 }] });
    const res = await up('/r.txt', 'x');
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json.error.reason['.tag']).toBe('too_many_write_operations');
  });
});

describe('5xx, 401, resets, down', () => {
  it('renders 500 and 503 as plain text', async () => {
    emu.server.faults.queue.push(
      { match: /get_metadata/, fault: { kind: 'status', status: 500 } },
      { match: /get_metadata/, fault: { kind: 'status', status: 503, retryAfterS: 2 } },
    );
    const a = await rpc(emu.url, t, 'files/get_metadata', { path: '/x' });
    expect(a.status).toBe(500);
    expect(a.headers['content-type']).toMatch(/^text\/plain/);
    const b = await rpc(emu.url, t, 'files/get_metadata', { path: '/x' });
    expect(b.status).toBe(503);
    expect(b.headers['retry-after']).toBe('2');
    expect((await rpc(emu.url, t, 'files/get_metadata', { path: '/x' })).status).toBe(409);
  });

  it('an injected 401 is an expired_access_token AuthError', async () => {
    emu.server.faults.queue.push({ match: /./, fault: { kind: 'status', status: 401 } });
    const res = await rpc(emu.url, t, 'users/get_space_usage');
    expect(res.status).toBe(401);
    expect(res.json.error).toEqual({ '.tag': 'expired_access_token' });
  });

  it('a connection reset mid-body stores nothing', async () => {
    emu.server.faults.queue.push({ match: /\/2\/files\/upload$/, fault: { kind: 'reset' } });
    const body = Readable.from((function* () {
      for (let i = 0; i < 64; i++) yield Buffer.alloc(64 * 1024, i);
    })());
    await expect(up('/reset.bin', body)).rejects.toThrow();
    expect(await emu.tree()).toEqual([]);
    expect(emu.server.requests(/upload$/)[0]!.fault).toBe('reset');
  });

  it('a target that is down refuses connections until it is back', async () => {
    emu.server.setFaults({ down: true });
    await expect(rpc(emu.url, t, 'users/get_space_usage')).rejects.toThrow();
    emu.server.setFaults({ down: false });
    expect((await rpc(emu.url, t, 'users/get_space_usage')).status).toBe(200);
  });

  it('random faults spare the token endpoint', async () => {
    emu.server.setFaults({ rate: 1, mix: [{ kind: 'status', status: 500, weight: 1 }] });
    const { clientId, clientSecret, refreshToken } = emu.credentials;
    const q = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, client_secret: clientSecret });
    expect((await raw(emu.url, { path: `/oauth2/token?${q}`, host: API })).status).toBe(200);
    expect((await rpc(emu.url, t, 'users/get_space_usage')).status).toBe(500);
  });
});

describe('corruption', () => {
  it('corruptNextCommits(): the commit reports the hash of what it stored, not of what was sent', async () => {
    const data = Buffer.from('precious bytes');
    emu.corruptNextCommits();
    const bad = await up('/bad.txt', data);
    expect(bad.json.size).toBe(data.length);
    expect(bad.json.content_hash).not.toBe(hash(data));
    const back = await raw(emu.url, { path: '/2/files/download', host: CONTENT, headers: { authorization: `Bearer ${t}`, 'dropbox-api-arg': headerArg({ path: '/bad.txt' }) } });
    expect(back.body.equals(data)).toBe(false);
    expect(hash(back.body)).toBe(bad.json.content_hash);
    expect((await up('/good.txt', data)).json.content_hash).toBe(hash(data));
  });

  it('corrupt(path) flips a stored byte; metadata and download show it', async () => {
    const data = Buffer.from('stored then rotted');
    const before = (await up('/Rot.txt', data)).json;
    await emu.corrupt('/rot.txt');
    const meta = await rpc(emu.url, t, 'files/get_metadata', { path: '/rot.txt' });
    expect(meta.json.size).toBe(data.length);
    expect(meta.json.content_hash).not.toBe(before.content_hash);
    const [stored] = await emu.tree();
    expect(stored!.hash).toBe(meta.json.content_hash);
    expect(hash(await emu.blobs.bytes(stored!.blob))).toBe(meta.json.content_hash);
  });
});
