/**
 * What another Dropbox client sends that the emulator must answer as Dropbox does (issue 16,
 * items 4 and 5): a third-party client pointed at the emulator failed on these while it works
 * against the real service daily.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDropboxEmulator, type DropboxEmulator } from './index.js';
import { API, raw, rpc } from './raw.js';

let emu: DropboxEmulator;
let token: string;
beforeAll(async () => {
  emu = await startDropboxEmulator();
  token = emu.accessToken();
});
afterAll(() => emu.close());

describe('dropbox: requests as other clients send them', () => {
  // dropbox.com/developers/documentation/http/documentation#files-list_folder: `path` is a
  // read path. The real service accepts a doubled slash after the root (`//dir`), which a client
  // that joins "/" + "/" + dir sends for every folder below the root.
  it('HTTP docs files-list_folder: a path with a doubled slash (//dir) lists the folder', async () => {
    expect((await rpc(emu.url, token, 'files/create_folder_v2', { path: '/dir/sub' })).status).toBe(200);
    const r = await rpc(emu.url, token, 'files/list_folder', { path: '//dir' });
    expect(r.status).toBe(200);
    expect(r.json.entries.map((e: { name: string }) => e.name)).toEqual(['sub']);
    const deeper = await rpc(emu.url, token, 'files/list_folder', { path: '//dir//sub' });
    expect(deeper.status).toBe(200);
  });

  it('HTTP docs files-list_folder: a trailing slash is still malformed_path', async () => {
    const r = await rpc(emu.url, token, 'files/list_folder', { path: '/dir/' });
    expect(r.status).toBe(409);
    expect(r.json.error).toEqual({ '.tag': 'path', path: { '.tag': 'malformed_path' } });
  });

  // The token endpoint of API v1's OAuth 2 guide, POST https://api.dropboxapi.com/1/oauth2/token
  // (developers-v1 core docs, "/oauth2/token"), still grants tokens; clients use it to refresh.
  it('OAuth v1 docs "/oauth2/token": the token endpoint also answers at api.dropboxapi.com/1/oauth2/token', async () => {
    const { clientId, clientSecret, refreshToken } = emu.credentials;
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, client_secret: clientSecret });
    const r = await raw(emu.url, { path: '/1/oauth2/token', host: API, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    expect(r.status).toBe(200);
    expect((await rpc(emu.url, r.json.access_token, 'users/get_current_account')).status).toBe(200);
  });
});
