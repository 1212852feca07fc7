import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BoxEmulator } from './index.js';
import { startBoxEmulator } from './index.js';
import { call, form, sha1hex, uploadBody } from './raw-http.js';

let emu: BoxEmulator;
let token: string;
beforeAll(async () => {
  emu = await startBoxEmulator({ seed: 5 });
  token = emu.issueTokens().accessToken;
});
afterAll(() => emu.close());
afterEach(() => emu.server.clearFaults());

describe('box fault injection, seen through the protocol', () => {
  it('429 is rate_limit_exceeded in Box error shape with a retry-after header', async () => {
    emu.server.setFaults({ queue: [{ match: /^\/2\.0\/folders/, fault: { kind: 'status', status: 429, retryAfterS: 7 } }] });
    const r = await call(emu.url, '/2.0/folders/0', { token });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('7');
    expect(r.json).toMatchObject({ type: 'error', status: 429, code: 'rate_limit_exceeded', help_url: expect.any(String), request_id: expect.any(String) });
    // Without an explicit delay Box still sends retry-after.
    emu.server.setFaults({ queue: [{ match: /^\/2\.0\/folders/, fault: { kind: 'status', status: 429 } }] });
    expect((await call(emu.url, '/2.0/folders/0', { token })).headers['retry-after']).toBe('1');
    expect((await call(emu.url, '/2.0/folders/0', { token })).status).toBe(200);
  });

  it.each([
    [500, 'internal_server_error'],
    [502, 'bad_gateway'],
    [503, 'unavailable'],
  ] as const)('%i renders as %s', async (status, code) => {
    emu.server.setFaults({ queue: [{ match: /upload_sessions/, fault: { kind: 'status', status } }] });
    const r = await call(emu.url, '/api/2.0/files/upload_sessions', { method: 'POST', token, body: '{}', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(status);
    expect(r.json).toMatchObject({ type: 'error', status, code });
  });

  it('an injected 401 looks like an expired token (empty body, invalid_token challenge)', async () => {
    emu.server.setFaults({ queue: [{ match: /^\/2\.0\//, fault: { kind: 'status', status: 401 } }] });
    const r = await call(emu.url, '/2.0/folders/0', { token });
    expect(r.status).toBe(401);
    expect(r.body.length).toBe(0);
    expect(r.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('a reset mid-body fails the upload and stores nothing', async () => {
    emu.server.setFaults({ queue: [{ match: /files\/content/, fault: { kind: 'reset' } }] });
    const b = uploadBody({ name: 'reset.bin', parent: { id: '0' } }, Buffer.alloc(256 * 1024, 1));
    await expect(call(emu.url, '/api/2.0/files/content', { method: 'POST', token, body: b.body, headers: b.headers })).rejects.toThrow();
    expect((await emu.tree()).some((t) => t.path === '/reset.bin')).toBe(false);
    expect(emu.server.requests(/files\/content/).at(-1)?.fault).toBe('reset');
  });

  it('down refuses every connection until cleared', async () => {
    emu.server.setFaults({ down: true });
    await expect(call(emu.url, '/2.0/folders/0', { token })).rejects.toThrow();
    emu.server.setFaults({ down: false });
    expect((await call(emu.url, '/2.0/folders/0', { token })).status).toBe(200);
  });

  it('random faults at rate 1 hit API calls but never the token endpoint', async () => {
    emu.server.setFaults({ rate: 1, mix: [{ kind: 'status', status: 503, weight: 1 }] });
    expect((await call(emu.url, '/2.0/folders/0', { token })).status).toBe(503);
    const rt = emu.addRefreshToken();
    const f = form({ grant_type: 'refresh_token', refresh_token: rt, client_id: emu.clientId, client_secret: emu.clientSecret });
    expect((await call(emu.url, '/oauth2/token', { method: 'POST', ...f })).status).toBe(200);
  });

  it('corrupt() changes the stored bytes but not the sha1 Box reports, so a hash check catches it', async () => {
    const content = Buffer.from('precious bytes');
    const id = await emu.putFile('/c/precious.txt', content);
    await emu.corrupt('/c/precious.txt');
    const meta = await call(emu.url, `/2.0/files/${id}`, { token });
    expect(meta.json.sha1).toBe(sha1hex(content));
    const loc = (await call(emu.url, `/2.0/files/${id}/content`, { token })).headers.location!;
    const bytes = (await call(emu.url, new URL(loc).pathname)).body;
    expect(bytes.length).toBe(content.length);
    expect(sha1hex(bytes)).not.toBe(meta.json.sha1);
  });

  it('tree() lists every file by path from root with size and sha1; the request log records calls', async () => {
    const em = await startBoxEmulator();
    try {
      await em.putFile('/b/two.txt', Buffer.from('22'));
      await em.putFile('/a.txt', Buffer.from('1'));
      em.mkdirp('/empty/folder');
      const tree = await em.tree();
      expect(tree.map(({ path, size, hash }) => ({ path, size, hash }))).toEqual([
        { path: '/a.txt', size: 1, hash: sha1hex(Buffer.from('1')) },
        { path: '/b/two.txt', size: 2, hash: sha1hex(Buffer.from('22')) },
      ]);
      const t = em.issueTokens().accessToken;
      await call(em.url, '/2.0/folders/0/items', { token: t, host: 'api.box.com' });
      expect(em.server.requests(/items/)).toEqual([expect.objectContaining({ method: 'GET', host: 'api.box.com', status: 200 })]);
      expect(em.usedBytes()).toBe(3);
    } finally {
      await em.close();
    }
  });
});
