import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { BoxEmulator } from './index.js';
import { startBoxEmulator } from './index.js';
import { call, form } from './raw-http.js';

let emu: BoxEmulator;
beforeAll(async () => {
  emu = await startBoxEmulator({ tokenTtlS: 3600 });
});
afterAll(() => emu.close());
afterEach(() => {
  vi.useRealTimers();
});

function token(fields: Record<string, string>, host?: string) {
  const f = form({ client_id: emu.clientId, client_secret: emu.clientSecret, ...fields });
  return call(emu.url, '/oauth2/token', { method: 'POST', ...f, host });
}

describe('box oauth: refresh tokens rotate and are single use', () => {
  it('a refresh returns a new access token and a new refresh token, and the old refresh token is dead', async () => {
    const rt1 = emu.addRefreshToken();
    const a = await token({ grant_type: 'refresh_token', refresh_token: rt1 });
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ token_type: 'bearer', expires_in: 3600, restricted_to: [] });
    expect(typeof a.json.access_token).toBe('string');
    expect(typeof a.json.refresh_token).toBe('string');
    expect(a.json.refresh_token).not.toBe(rt1);

    const reuse = await token({ grant_type: 'refresh_token', refresh_token: rt1 });
    expect(reuse.status).toBe(400);
    expect(reuse.json).toEqual({ error: 'invalid_grant', error_description: 'Refresh token has expired' });

    const b = await token({ grant_type: 'refresh_token', refresh_token: a.json.refresh_token });
    expect(b.status).toBe(200);
    expect(b.json.refresh_token).not.toBe(a.json.refresh_token);
    // Both access tokens work until they expire: rotation retires refresh tokens only.
    for (const t of [a.json.access_token, b.json.access_token]) {
      expect((await call(emu.url, '/2.0/folders/0', { token: t })).status).toBe(200);
    }
  });

  it('an unknown refresh token is invalid_grant "Invalid refresh token"', async () => {
    const r = await token({ grant_type: 'refresh_token', refresh_token: 'never-issued' });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'invalid_grant', error_description: 'Invalid refresh token' });
  });

  it('wrong client credentials are invalid_client; a missing grant_type is invalid_request', async () => {
    const rt = emu.addRefreshToken();
    const bad = await call(emu.url, '/oauth2/token', {
      method: 'POST',
      ...form({ grant_type: 'refresh_token', refresh_token: rt, client_id: emu.clientId, client_secret: 'nope' }),
    });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ error: 'invalid_client', error_description: 'The client credentials are invalid' });
    const none = await token({});
    expect(none.status).toBe(400);
    expect(none.json.error).toBe('invalid_request');
    // The failed attempt did not burn the refresh token.
    expect((await token({ grant_type: 'refresh_token', refresh_token: rt })).status).toBe(200);
  });

  it('the token endpoint is served on Host api.box.com too, and not on upload.box.com', async () => {
    const rt = emu.addRefreshToken();
    expect((await token({ grant_type: 'refresh_token', refresh_token: rt }, 'api.box.com')).status).toBe(200);
    const wrongHost = await token({ grant_type: 'refresh_token', refresh_token: emu.addRefreshToken() }, 'upload.box.com');
    expect(wrongHost.status).toBe(404);
    expect(wrongHost.json).toMatchObject({ type: 'error', status: 404, code: 'not_found' });
  });
});

describe('box oauth: authorization code (setup flow)', () => {
  it('exchanges a code once for tokens with a refresh token', async () => {
    const code = emu.issueAuthCode();
    const r = await token({ grant_type: 'authorization_code', code });
    expect(r.status).toBe(200);
    expect(r.json.refresh_token).toEqual(expect.any(String));
    const again = await token({ grant_type: 'authorization_code', code });
    expect(again.status).toBe(400);
    expect(again.json.error).toBe('invalid_grant');
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: r.json.refresh_token });
    expect(refreshed.status).toBe(200);
  });

  it('a code older than 30 s is refused', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const code = emu.issueAuthCode();
    vi.setSystemTime(Date.now() + 31_000);
    const r = await token({ grant_type: 'authorization_code', code });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'invalid_grant', error_description: 'The authorization code has expired' });
  });
});

describe('box oauth: client credentials grant', () => {
  it('issues a token for the enterprise (service account) and for the user, without refresh token', async () => {
    for (const [type, id] of [
      ['enterprise', emu.enterpriseId],
      ['user', emu.userId],
    ] as const) {
      const r = await token({ grant_type: 'client_credentials', box_subject_type: type, box_subject_id: id });
      expect(r.status).toBe(200);
      expect(r.json.refresh_token).toBeUndefined();
      expect((await call(emu.url, '/2.0/folders/0', { token: r.json.access_token })).status).toBe(200);
    }
  });

  it('refuses an unknown subject', async () => {
    const r = await token({ grant_type: 'client_credentials', box_subject_type: 'enterprise', box_subject_id: '42' });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({ error: 'invalid_grant', error_description: 'Grant credentials are invalid' });
  });
});

describe('box oauth: access tokens expire and can be revoked', () => {
  it('an expired access token gets 401, an empty body and an invalid_token challenge', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t = emu.issueTokens();
    expect((await call(emu.url, '/2.0/folders/0', { token: t.accessToken })).status).toBe(200);
    vi.setSystemTime(Date.now() + 3601_000);
    const r = await call(emu.url, '/2.0/folders/0', { token: t.accessToken });
    expect(r.status).toBe(401);
    expect(r.body.length).toBe(0);
    expect(r.headers['www-authenticate']).toBe(
      'Bearer realm="Service", error="invalid_token", error_description="The access token provided is invalid."',
    );
    // The refresh token still works after the access token expired.
    expect((await token({ grant_type: 'refresh_token', refresh_token: t.refreshToken })).status).toBe(200);
  });

  it('a request without a token gets the bare realm challenge', async () => {
    const r = await call(emu.url, '/2.0/folders/0');
    expect(r.status).toBe(401);
    expect(r.headers['www-authenticate']).toBe('Bearer realm="Service"');
  });

  it('expireTokens() expires every access token at once', async () => {
    const t = emu.issueTokens();
    emu.expireTokens();
    expect((await call(emu.url, '/2.0/folders/0', { token: t.accessToken })).status).toBe(401);
  });

  it('revoke() kills the access token and makes the refresh fail', async () => {
    const em = await startBoxEmulator();
    try {
      const t = em.issueTokens();
      em.revoke();
      expect((await call(em.url, '/2.0/folders/0', { token: t.accessToken })).status).toBe(401);
      const r = await call(em.url, '/oauth2/token', {
        method: 'POST',
        ...form({ grant_type: 'refresh_token', refresh_token: t.refreshToken, client_id: em.clientId, client_secret: em.clientSecret }),
      });
      expect(r.status).toBe(400);
      expect(r.json.error).toBe('invalid_grant');
    } finally {
      await em.close();
    }
  });
});
