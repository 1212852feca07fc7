/**
 * The identity platform over raw HTTP: discovery documents, the device-code flow (pending →
 * approved), refresh tokens that rotate without dying on use, expiry and revocation, the
 * authorization-code grant with PKCE, client credentials, and the access tokens Graph accepts.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OneDriveEmulator } from './index.js';
import { CONSUMERS_TENANT, startOneDriveEmulator } from './index.js';
import { form, raw } from './raw.js';

let emu: OneDriveEmulator;
const CLIENT = '11111111-2222-3333-4444-555555555555';
const TOKEN = '/consumers/oauth2/v2.0/token';
const LOGIN = { host: 'login.microsoftonline.com' };

beforeAll(async () => {
  emu = await startOneDriveEmulator({ seed: 3, clientSecret: 's3cret' });
});
afterAll(async () => {
  await emu.close();
});

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function deviceLogin(): Promise<{ access_token: string; refresh_token: string }> {
  const dc = await form(emu.url, '/consumers/oauth2/v2.0/devicecode', { client_id: CLIENT, scope: 'Files.ReadWrite openid profile offline_access' }, LOGIN);
  emu.approveDeviceCode(dc.json.user_code);
  const tok = await form(emu.url, TOKEN, { client_id: CLIENT, grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: dc.json.device_code }, LOGIN);
  expect(tok.status).toBe(200);
  return tok.json;
}

describe('discovery', () => {
  it('serves the OpenID configuration with https endpoints on login.microsoftonline.com', async () => {
    const res = await raw(emu.url, 'GET', '/common/v2.0/.well-known/openid-configuration', { headers: LOGIN });
    expect(res.status).toBe(200);
    expect(res.json.token_endpoint).toBe('https://login.microsoftonline.com/common/oauth2/v2.0/token');
    expect(res.json.device_authorization_endpoint).toBe('https://login.microsoftonline.com/common/oauth2/v2.0/devicecode');
    expect(res.json.issuer).toBe('https://login.microsoftonline.com/{tenantid}/v2.0');
    const consumers = await raw(emu.url, 'GET', '/consumers/v2.0/.well-known/openid-configuration');
    expect(consumers.json.issuer).toBe(`https://login.microsoftonline.com/${CONSUMERS_TENANT}/v2.0`);
  });

  it('answers instance discovery, and invalid_instance for an unknown host', async () => {
    const ok = await raw(emu.url, 'GET', `/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent('https://login.microsoftonline.com/common/oauth2/v2.0/authorize')}`, { headers: LOGIN });
    expect(ok.status).toBe(200);
    expect(ok.json.metadata[0].aliases).toContain('login.microsoftonline.com');
    expect(ok.json.tenant_discovery_endpoint).toBe('https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration');
    const bad = await raw(emu.url, 'GET', `/common/discovery/instance?api-version=1.1&authorization_endpoint=${encodeURIComponent('https://evil.example/common/oauth2/v2.0/authorize')}`, { headers: LOGIN });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('invalid_instance');
  });
});

describe('device code flow', () => {
  it('answers authorization_pending until approved, then tokens with id_token and client_info; the code is single-use', async () => {
    const dc = await form(emu.url, '/consumers/oauth2/v2.0/devicecode', { client_id: CLIENT, scope: 'Files.ReadWrite openid profile offline_access' }, LOGIN);
    expect(dc.status).toBe(200);
    expect(dc.json.user_code).toMatch(/^[A-Z0-9]{9}$/);
    expect(dc.json.verification_uri).toBe('https://microsoft.com/devicelogin');
    expect(dc.json.interval).toBe(5);
    expect(dc.json.expires_in).toBe(900);
    expect(dc.json.message).toContain(dc.json.user_code);

    const poll = () => form(emu.url, TOKEN, { client_id: CLIENT, grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: dc.json.device_code, client_info: '1' }, LOGIN);
    const pending = await poll();
    expect(pending.status).toBe(400);
    expect(pending.json.error).toBe('authorization_pending');
    expect(pending.json.error_codes).toEqual([70016]);
    expect(pending.json.error_description).toMatch(/^AADSTS70016: /);
    expect(pending.json.trace_id).toBeTypeOf('string');

    emu.approveDeviceCode(dc.json.user_code);
    const ok = await poll();
    expect(ok.status).toBe(200);
    expect(ok.json.token_type).toBe('Bearer');
    expect(ok.json.expires_in).toBe(3600);
    expect(ok.json.scope.split(' ')).toContain('Files.ReadWrite');
    expect(ok.json.refresh_token).toBeTypeOf('string');
    const c = claims(ok.json.id_token);
    expect(c).toMatchObject({ aud: CLIENT, tid: CONSUMERS_TENANT, ver: '2.0', preferred_username: emu.user.userPrincipalName });
    const info = JSON.parse(Buffer.from(ok.json.client_info, 'base64url').toString('utf8'));
    expect(info).toEqual({ uid: c.oid, utid: CONSUMERS_TENANT });

    const drive = await raw(emu.url, 'GET', '/v1.0/me/drive', { token: ok.json.access_token });
    expect(drive.status).toBe(200);

    const again = await poll();
    expect(again.status).toBe(400);
    expect(again.json.error).toBe('invalid_grant');
  });

  it('answers authorization_declined and expired_token', async () => {
    const dc = await form(emu.url, '/common/oauth2/v2.0/devicecode', { client_id: CLIENT, scope: 'Files.ReadWrite' });
    emu.declineDeviceCode(dc.json.user_code);
    const declined = await form(emu.url, '/common/oauth2/v2.0/token', { client_id: CLIENT, grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: dc.json.device_code });
    expect(declined.json.error).toBe('authorization_declined');
    const short = await startOneDriveEmulator({ deviceCodeExpiresInS: 0 });
    try {
      const dc2 = await form(short.url, '/common/oauth2/v2.0/devicecode', { client_id: CLIENT, scope: 'Files.ReadWrite' });
      const expired = await form(short.url, '/common/oauth2/v2.0/token', { client_id: CLIENT, grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: dc2.json.device_code });
      expect(expired.json.error).toBe('expired_token');
    } finally {
      await short.close();
    }
  });
});

describe('refresh tokens', () => {
  it('rotates: each refresh returns a new refresh token and the old one keeps working', async () => {
    const first = await deviceLogin();
    const r1 = await form(emu.url, TOKEN, { client_id: CLIENT, grant_type: 'refresh_token', refresh_token: first.refresh_token, scope: 'Files.ReadWrite offline_access' });
    expect(r1.status).toBe(200);
    expect(r1.json.refresh_token).toBeTypeOf('string');
    expect(r1.json.refresh_token).not.toBe(first.refresh_token);
    expect(r1.json.access_token).not.toBe(first.access_token);
    const r2 = await form(emu.url, TOKEN, { client_id: CLIENT, grant_type: 'refresh_token', refresh_token: first.refresh_token, scope: 'Files.ReadWrite offline_access' });
    expect(r2.status).toBe(200);
    const r3 = await form(emu.url, TOKEN, { client_id: CLIENT, grant_type: 'refresh_token', refresh_token: r1.json.refresh_token });
    expect(r3.status).toBe(200);
    expect((await raw(emu.url, 'GET', '/v1.0/me/drive', { token: r3.json.access_token })).status).toBe(200);
  });

  it('answers invalid_grant for an unknown, an expired (inactive) and a revoked refresh token', async () => {
    const unknown = await form(emu.url, TOKEN, { client_id: CLIENT, grant_type: 'refresh_token', refresh_token: 'nope' });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toBe('invalid_grant');

    const other = await startOneDriveEmulator();
    try {
      other.addRefreshToken('rt-seeded', CLIENT);
      const seeded = await form(other.url, TOKEN, { client_id: CLIENT, grant_type: 'refresh_token', refresh_token: 'rt-seeded' });
      expect(seeded.status).toBe(200);
      other.expireRefreshTokens();
      const expired = await form(other.url, TOKEN, { client_id: CLIENT, grant_type: 'refresh_token', refresh_token: 'rt-seeded' });
      expect(expired.status).toBe(400);
      expect(expired.json.error_codes).toEqual([700082]);
    } finally {
      await other.close();
    }

    const login = await deviceLogin();
    emu.tokens.revoke('user');
    try {
      const revoked = await form(emu.url, TOKEN, { client_id: CLIENT, grant_type: 'refresh_token', refresh_token: login.refresh_token });
      expect(revoked.status).toBe(400);
      expect(revoked.json.error).toBe('invalid_grant');
      expect(revoked.json.error_codes).toEqual([50173]);
      const graph = await raw(emu.url, 'GET', '/v1.0/me/drive', { token: login.access_token });
      expect(graph.status).toBe(401);
    } finally {
      emu.tokens.unrevoke('user');
    }
  });

  it('an expired access token gets 401 from Graph; a refresh gets a working one', async () => {
    const login = await deviceLogin();
    emu.tokens.expireAll();
    const res = await raw(emu.url, 'GET', '/v1.0/me/drive', { token: login.access_token });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('InvalidAuthenticationToken');
    const fresh = await form(emu.url, TOKEN, { client_id: CLIENT, grant_type: 'refresh_token', refresh_token: login.refresh_token });
    expect((await raw(emu.url, 'GET', '/v1.0/me/drive', { token: fresh.json.access_token })).status).toBe(200);
  });
});

describe('authorization code with PKCE', () => {
  it('redirects with a code and state, checks the verifier, and refuses a second redemption', async () => {
    const verifier = 'v'.repeat(50);
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const q = new URLSearchParams({ client_id: CLIENT, response_type: 'code', redirect_uri: 'http://localhost:5000/cb', scope: 'Files.ReadWrite openid offline_access', state: 'st4te', code_challenge: challenge, code_challenge_method: 'S256', nonce: 'n0nce' });
    const auth = await raw(emu.url, 'GET', `/common/oauth2/v2.0/authorize?${q}`, { headers: LOGIN });
    expect(auth.status).toBe(302);
    const back = new URL(auth.headers.location!);
    expect(back.origin + back.pathname).toBe('http://localhost:5000/cb');
    expect(back.searchParams.get('state')).toBe('st4te');
    const code = back.searchParams.get('code')!;
    const redeem = (v: string) => form(emu.url, '/common/oauth2/v2.0/token', { client_id: CLIENT, grant_type: 'authorization_code', code, redirect_uri: 'http://localhost:5000/cb', code_verifier: v, scope: 'Files.ReadWrite openid offline_access' });
    const wrong = await redeem('w'.repeat(50));
    expect(wrong.status).toBe(400);
    expect(wrong.json.error).toBe('invalid_grant');
    const ok = await redeem(verifier);
    expect(ok.status).toBe(200);
    expect(ok.json.refresh_token).toBeTypeOf('string');
    expect(claims(ok.json.id_token).nonce).toBe('n0nce');
    const reuse = await redeem(verifier);
    expect(reuse.status).toBe(400);
    expect(reuse.json.error_codes).toEqual([54005]);
  });
});

describe('client credentials', () => {
  const tenant = '/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token';
  it('needs the secret and a /.default scope, gives no refresh token, and the token cannot use /me', async () => {
    const noSecret = await form(emu.url, tenant, { client_id: CLIENT, grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' });
    expect(noSecret.status).toBe(401);
    expect(noSecret.json.error).toBe('invalid_client');
    const wrongSecret = await form(emu.url, tenant, { client_id: CLIENT, client_secret: 'x', grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' });
    expect(wrongSecret.status).toBe(401);
    const badScope = await form(emu.url, tenant, { client_id: CLIENT, client_secret: 's3cret', grant_type: 'client_credentials', scope: 'Files.ReadWrite' });
    expect(badScope.json.error).toBe('invalid_scope');
    const ok = await form(emu.url, tenant, { client_id: CLIENT, client_secret: 's3cret', grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default' });
    expect(ok.status).toBe(200);
    expect(ok.json.refresh_token).toBeUndefined();
    expect(ok.json.id_token).toBeUndefined();
    const me = await raw(emu.url, 'GET', '/v1.0/me/drive', { token: ok.json.access_token });
    expect(me.status).toBe(400);
    expect(me.json.error.code).toBe('BadRequest');
    const drive = await raw(emu.url, 'GET', `/v1.0/drives/${emu.driveId}/root`, { token: ok.json.access_token });
    expect(drive.status).toBe(200);
  });

  it('refuses unknown grants and missing parameters in the OAuth error shape', async () => {
    const noGrant = await form(emu.url, TOKEN, { client_id: CLIENT });
    expect(noGrant.status).toBe(400);
    expect(noGrant.json.error).toBe('invalid_request');
    const weird = await form(emu.url, TOKEN, { client_id: CLIENT, grant_type: 'password' });
    expect(weird.json.error).toBe('unsupported_grant_type');
  });
});
