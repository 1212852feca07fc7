/**
 * What another Box client sends that the emulator must answer as Box does (issue 16, items 1, 2
 * and 5): a third-party client pointed at the emulator failed on each of these while it works
 * against the real service daily.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BoxEmulator } from './index.js';
import { startBoxEmulator } from './index.js';
import { call, form, jsonHeaders, multipart } from './raw-http.js';

let emu: BoxEmulator;
let token: string;
beforeAll(async () => {
  emu = await startBoxEmulator();
  token = emu.issueTokens().accessToken;
});
afterAll(() => emu.close());

describe('box: requests as other clients send them', () => {
  // developer.box.com/reference/options-files-content ("Preflight check before upload"): the
  // preflight is `OPTIONS /files/content`; Box's router ignores a trailing slash, so a client
  // that builds `/files/content/` gets the same answer.
  it('reference options-files-content: OPTIONS /2.0/files/content/ (trailing slash) is the preflight', async () => {
    const r = await call(emu.url, '/2.0/files/content/', {
      method: 'OPTIONS',
      token,
      headers: jsonHeaders,
      body: JSON.stringify({ name: 'slash.txt', parent: { id: '0' }, size: 3 }),
    });
    expect(r.status).toBe(200);
    expect(r.json.upload_url).toBe(`${emu.url}/api/2.0/files/content`);
  });

  // developer.box.com/guides/uploads/direct/file, "Request Format": two multipart parts, first
  // `attributes` (JSON), then the file's content. The guide's example names the content part
  // `file`, but Box takes the part after `attributes` that carries a filename, whatever its name.
  it('guide uploads/direct/file "Request Format": the content part may have any name when it carries a filename', async () => {
    const b = multipart([
      { name: 'attributes', value: JSON.stringify({ name: 'contents.txt', parent: { id: '0' } }) },
      { name: 'contents', value: Buffer.from('named otherwise'), filename: 'contents.txt' },
    ]);
    const r = await call(emu.url, '/api/2.0/files/content', { method: 'POST', token, body: b.body, headers: b.headers });
    expect(r.status).toBe(201);
    expect(r.json.entries[0]).toMatchObject({ name: 'contents.txt', size: 15 });
    expect((await emu.read('/contents.txt')).toString()).toBe('named otherwise');
  });

  it('guide uploads/direct/file: a body with no part carrying a filename is still 400', async () => {
    const b = multipart([
      { name: 'attributes', value: JSON.stringify({ name: 'nofile.txt', parent: { id: '0' } }) },
      { name: 'contents', value: Buffer.from('no filename') },
    ]);
    const r = await call(emu.url, '/api/2.0/files/content', { method: 'POST', token, body: b.body, headers: b.headers });
    expect(r.status).toBe(400);
  });

  // Box's OAuth 2 token endpoint is documented at https://api.box.com/oauth2/token (reference
  // post-oauth2-token) and, in the older OAuth guides that clients still use, at
  // https://app.box.com/api/oauth2/token. Both grant tokens.
  it('reference post-oauth2-token: the token endpoint also answers at app.box.com/api/oauth2/token', async () => {
    const rt = emu.addRefreshToken();
    const f = form({ grant_type: 'refresh_token', refresh_token: rt, client_id: emu.clientId, client_secret: emu.clientSecret });
    const viaApp = await call(emu.url, '/api/oauth2/token', { method: 'POST', ...f, host: 'app.box.com' });
    expect(viaApp.status).toBe(200);
    expect(typeof viaApp.json.access_token).toBe('string');
    const f2 = form({ grant_type: 'refresh_token', refresh_token: viaApp.json.refresh_token, client_id: emu.clientId, client_secret: emu.clientSecret });
    const viaLoopback = await call(emu.url, '/api/oauth2/token', { method: 'POST', ...f2 });
    expect(viaLoopback.status).toBe(200);
  });
});
