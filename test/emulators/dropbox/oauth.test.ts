/** Raw HTTP: the token endpoint and the 401 shapes of the API. */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startDropboxEmulator, type DropboxEmulator } from './index.js';
import { API, raw, rpc } from './raw.js';

let emu: DropboxEmulator;

beforeEach(async (t) => {
  emu = await startDropboxEmulator();
  t.onTestFinished(() => emu.close());
});

afterEach(() => {
  vi.useRealTimers();
});

function token(query: Record<string, string>, opts: { host?: string; body?: string; type?: string; headers?: Record<string, string> } = {}) {
  return raw(emu.url, {
    path: `/oauth2/token?${new URLSearchParams(query)}`,
    host: opts.host ?? API,
    headers: { ...(opts.type ? { 'content-type': opts.type } : {}), ...opts.headers },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
}

describe('POST /oauth2/token, grant_type=refresh_token', () => {
  it('accepts the grant in the query string (as the JS SDK sends it) and the token works', async () => {
    const { clientId, clientSecret, refreshToken } = emu.credentials;
    const res = await token(
      { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, client_secret: clientSecret },
      { type: 'application/json' },
    );
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json).toEqual({ access_token: expect.stringMatching(/^sl\./), token_type: 'bearer', expires_in: 14_400 });
    const me = await rpc(emu.url, res.json.access_token, 'users/get_current_account');
    expect(me.status).toBe(200);
  });

  it('accepts the grant as a form body, as JSON, with HTTP Basic, and on api.dropbox.com', async () => {
    const { clientId, clientSecret, refreshToken } = emu.credentials;
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, client_secret: clientSecret });
    const viaForm = await raw(emu.url, { path: '/oauth2/token', host: API, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    expect(viaForm.status).toBe(200);
    const viaJson = await raw(emu.url, {
      path: '/oauth2/token',
      host: 'api.dropbox.com',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(Object.fromEntries(form)),
    });
    expect(viaJson.status).toBe(200);
    const viaBasic = await raw(emu.url, {
      path: '/oauth2/token',
      host: API,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
      body: `grant_type=refresh_token&refresh_token=${refreshToken}`,
    });
    expect(viaBasic.status).toBe(200);
    expect(new Set([viaForm.json.access_token, viaJson.json.access_token, viaBasic.json.access_token]).size).toBe(3);
  });

  it('answers 400 with the OAuth error shape for bad grants and bad clients', async () => {
    const { clientId, clientSecret, refreshToken } = emu.credentials;
    const cases: Array<[Record<string, string>, string, string | RegExp]> = [
      [{ grant_type: 'refresh_token', refresh_token: 'nope', client_id: clientId, client_secret: clientSecret }, 'invalid_grant', 'refresh token is invalid or revoked'],
      [{ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, client_secret: 'wrong' }, 'invalid_client', /Invalid client_id or client_secret/],
      [{ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'other-app', client_secret: clientSecret }, 'invalid_client', /Invalid client_id/],
      // A confidential app must send its secret (only PKCE grants may refresh without it).
      [{ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }, 'invalid_request', 'No auth function available for given request'],
      [{ grant_type: 'password', client_id: clientId, client_secret: clientSecret }, 'unsupported_grant_type', /grant_type/],
      [{ client_id: clientId, client_secret: clientSecret }, 'invalid_request', /grant_type/],
    ];
    for (const [query, error, description] of cases) {
      const res = await token(query);
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.json.error, JSON.stringify(query)).toBe(error);
      expect(res.json.error_description).toMatch(description);
    }
  });

  it('lets a PKCE app (no secret) refresh a PKCE grant', async () => {
    emu.oauth.addClient('pkce-app', null);
    emu.oauth.addRefreshToken('rt-pkce', 'pkce-app', { pkce: true });
    const res = await token({ grant_type: 'refresh_token', refresh_token: 'rt-pkce', client_id: 'pkce-app' });
    expect(res.status).toBe(200);
    expect(res.json.token_type).toBe('bearer');
  });

  it('refuses a refresh token presented by another app', async () => {
    emu.oauth.addClient('app-b', 'secret-b');
    const res = await token({ grant_type: 'refresh_token', refresh_token: emu.credentials.refreshToken, client_id: 'app-b', client_secret: 'secret-b' });
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_grant');
  });
});

describe('POST /oauth2/token, grant_type=authorization_code', () => {
  it('exchanges a PKCE code once, checking the verifier', async () => {
    emu.oauth.addClient('pkce-app', null);
    const verifier = 'v'.repeat(64);
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const code = emu.oauth.authorizationCode({ clientId: 'pkce-app', codeChallenge: challenge });
    const bad = await token({ grant_type: 'authorization_code', code, client_id: 'pkce-app', code_verifier: 'w'.repeat(64) });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('invalid_grant');

    const code2 = emu.oauth.authorizationCode({ clientId: 'pkce-app', codeChallenge: challenge });
    const ok = await token({ grant_type: 'authorization_code', code: code2, client_id: 'pkce-app', code_verifier: verifier });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ token_type: 'bearer', expires_in: 14_400, refresh_token: expect.any(String), account_id: expect.stringMatching(/^dbid:/) });
    const again = await token({ grant_type: 'authorization_code', code: code2, client_id: 'pkce-app', code_verifier: verifier });
    expect(again.json.error).toBe('invalid_grant');

    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: ok.json.refresh_token, client_id: 'pkce-app' });
    expect(refreshed.status).toBe(200);
  });
});

describe('API authentication', () => {
  it('answers 401 expired_access_token once a token expires (Date moved past 4 h)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t = emu.accessToken();
    expect((await rpc(emu.url, t, 'users/get_space_usage')).status).toBe(200);
    vi.setSystemTime(Date.now() + 14_400_000 + 1000);
    const res = await rpc(emu.url, t, 'users/get_space_usage');
    expect(res.status).toBe(401);
    expect(res.json.error_summary).toMatch(/^expired_access_token\/\.*$/);
    expect(res.json.error).toEqual({ '.tag': 'expired_access_token' });
  });

  it('expireTokens() makes every issued token answer 401 expired_access_token', async () => {
    const t = emu.accessToken();
    emu.expireTokens();
    const res = await rpc(emu.url, t, 'files/list_folder', { path: '' });
    expect(res.status).toBe(401);
    expect(res.json.error['.tag']).toBe('expired_access_token');
  });

  it('answers 401 invalid_access_token for unknown and revoked tokens; revoke also kills the refresh', async () => {
    const unknown = await rpc(emu.url, 'sl.not-a-token', 'users/get_space_usage');
    expect(unknown.status).toBe(401);
    expect(unknown.json).toEqual({ error_summary: expect.stringMatching(/^invalid_access_token\//), error: { '.tag': 'invalid_access_token' } });

    const t = emu.accessToken();
    emu.revoke();
    expect((await rpc(emu.url, t, 'users/get_space_usage')).json.error['.tag']).toBe('invalid_access_token');
    const { clientId, clientSecret, refreshToken } = emu.credentials;
    const res = await token({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, client_secret: clientSecret });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: 'invalid_grant', error_description: 'refresh token is invalid or revoked' });
  });

  it('answers 400 in plain text when no token is sent, and accepts the `authorization` URL parameter', async () => {
    const res = await raw(emu.url, { path: '/2/users/get_space_usage', host: API });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toContain('Must provide HTTP header "Authorization" or URL parameter "authorization"');
    const viaQuery = await raw(emu.url, { path: `/2/users/get_space_usage?authorization=${encodeURIComponent(`Bearer ${emu.accessToken()}`)}`, host: API });
    expect(viaQuery.status).toBe(200);
  });
});
