/**
 * What another OneDrive client sends that the emulator must answer as OneDrive does (issue 16,
 * items 3, 6 and 7): a third-party client pointed at the emulator failed on these while it works
 * against the real service daily.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OneDriveEmulator } from './index.js';
import { startOneDriveEmulator } from './index.js';
import { raw } from './raw.js';

let emu: OneDriveEmulator;
let token: string;
const CLIENT = '11111111-2222-3333-4444-555555555555';

beforeAll(async () => {
  emu = await startOneDriveEmulator({ seed: 5, clientSecret: 's3cret' });
  token = emu.issueAccessToken();
});
afterAll(async () => {
  await emu.close();
});

function session(path: string, item: Record<string, unknown> = {}) {
  return raw(emu.url, 'POST', `/v1.0/me/drive/root:/${path}:/createUploadSession`, {
    token,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item }),
  });
}

function putAll(uploadUrl: string, data: Buffer, headers: Record<string, string> = {}) {
  const u = new URL(uploadUrl);
  return raw(`${u.protocol}//${u.host}`, 'PUT', u.pathname, { headers: { 'content-range': `bytes 0-${data.length - 1}/${data.length}`, ...headers }, body: data });
}

describe('onedrive: requests as other clients send them', () => {
  // learn.microsoft.com/graph/api/driveitem-createuploadsession, "Create an upload session":
  // "To update an existing file, specify the ID or path of the file to update." `fail` applies
  // only when the request's conflictBehavior says so.
  it('driveitem-createuploadsession "Create an upload session": the path of an existing file updates that file', async () => {
    const { id } = await emu.seedFile('Upd/existing.bin', Buffer.from('old'));
    const s = await session('Upd/existing.bin');
    expect(s.status).toBe(200);
    const done = await putAll(s.json.uploadUrl, Buffer.from('new bytes'));
    expect(done.status).toBe(200);
    expect(done.json.id).toBe(id);
    expect((await emu.readFile('Upd/existing.bin'))!.toString()).toBe('new bytes');
  });

  it('driveitem-createuploadsession: conflictBehavior fail on an existing path is 409 nameAlreadyExists', async () => {
    await emu.seedFile('Upd/kept.bin', Buffer.from('keep'));
    const s = await session('Upd/kept.bin', { '@microsoft.graph.conflictBehavior': 'fail' });
    expect(s.status).toBe(409);
    expect(s.json.error.code).toBe('nameAlreadyExists');
  });

  // RFC 6749 §2.3.1 and the emulator's own OpenID configuration
  // (`token_endpoint_auth_methods_supported` lists `client_secret_basic`): a confidential client
  // may authenticate with HTTP Basic (client_id:client_secret, form-url-encoded) instead of body
  // parameters.
  it('OpenID configuration token_endpoint_auth_methods_supported: client_secret_basic is accepted', async () => {
    const tokenPath = '/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token';
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
    const body = new URLSearchParams({ grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' }).toString();
    const headers = { host: 'login.microsoftonline.com', 'content-type': 'application/x-www-form-urlencoded' };
    const ok = await raw(emu.url, 'POST', tokenPath, { headers: { ...headers, authorization: basic(CLIENT, 's3cret') }, body });
    expect(ok.status).toBe(200);
    expect(typeof ok.json.access_token).toBe('string');
    const wrong = await raw(emu.url, 'POST', tokenPath, { headers: { ...headers, authorization: basic(CLIENT, 'nope') }, body });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toBe('invalid_client');
  });

  // driveitem-createuploadsession, "Upload bytes to the upload session" (remarks): including the
  // Authorization header on the pre-authenticated URL "may result in an HTTP 401". driveitem-get-
  // content: the download URL is pre-authenticated likewise. One switch governs both.
  it('driveitem-get-content: a pre-authenticated download URL refuses Authorization as the upload URL does', async () => {
    await emu.seedFile('Dl/file.txt', Buffer.from('download me'));
    const redirect = await raw(emu.url, 'GET', '/v1.0/me/drive/root:/Dl/file.txt:/content', { token });
    expect(redirect.status).toBe(302);
    const u = new URL(redirect.headers.location as string);
    const bare = await raw(emu.url, 'GET', u.pathname, { headers: { host: u.host } });
    expect(bare.status).toBe(200);
    expect(bare.body.toString()).toBe('download me');
    const withAuth = await raw(emu.url, 'GET', u.pathname, { headers: { host: u.host }, token });
    expect(withAuth.status).toBe(401);
  });

  it('with the switch off, both pre-authenticated URLs accept Authorization', async () => {
    const lax = await startOneDriveEmulator({ seed: 6, rejectAuthorizationOnPreauthenticatedUrls: false });
    try {
      const t = lax.issueAccessToken();
      await lax.seedFile('L/f.txt', Buffer.from('x'));
      const redirect = await raw(lax.url, 'GET', '/v1.0/me/drive/root:/L/f.txt:/content', { token: t });
      const u = new URL(redirect.headers.location as string);
      expect((await raw(lax.url, 'GET', u.pathname, { headers: { host: u.host }, token: t })).status).toBe(200);
      const s = await raw(lax.url, 'POST', '/v1.0/me/drive/root:/L/g.bin:/createUploadSession', { token: t, headers: { 'content-type': 'application/json' }, body: '{}' });
      const up = new URL(s.json.uploadUrl);
      const done = await raw(lax.url, 'PUT', up.pathname, { headers: { host: up.host, 'content-range': 'bytes 0-1/2' }, token: t, body: Buffer.from('ok') });
      expect(done.status).toBe(201);
    } finally {
      await lax.close();
    }
  });
});

describe('onedrive: driveItem update of fileSystemInfo', () => {
  // learn.microsoft.com/graph/api/driveitem-update, "Request body": fileSystemInfo is among the
  // writable properties; the answer is 200 with the updated driveItem.
  it('driveitem-update "Request body": PATCH fileSystemInfo sets the client times and answers the item', async () => {
    const { id } = await emu.seedFile('Times/a.txt', Buffer.from('a'));
    const when = '2021-03-04T05:06:07Z';
    const r = await raw(emu.url, 'PATCH', `/v1.0/me/drive/items/${id}`, {
      token,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ fileSystemInfo: { lastModifiedDateTime: when, createdDateTime: '2020-01-02T03:04:05Z' } }),
    });
    expect(r.status).toBe(200);
    expect(r.json.fileSystemInfo).toEqual({ lastModifiedDateTime: '2021-03-04T05:06:07.000Z', createdDateTime: '2020-01-02T03:04:05.000Z' });
    const again = await raw(emu.url, 'GET', `/v1.0/me/drive/items/${id}`, { token });
    expect(again.json.fileSystemInfo.lastModifiedDateTime).toBe('2021-03-04T05:06:07.000Z');
    const bad = await raw(emu.url, 'PATCH', `/v1.0/me/drive/items/${id}`, { token, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fileSystemInfo: { lastModifiedDateTime: 'yesterday' } }) });
    expect(bad.status).toBe(400);
  });
});
