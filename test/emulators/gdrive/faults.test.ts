/**
 * Fault injection seen through Drive's protocol (raw HTTP): injected 429/5xx in Drive's error
 * shape with Retry-After, the 403 rate-limit reasons, a connection reset mid-upload, a target
 * that is down, token expiry and revocation.
 */
import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHUNK_GRANULARITY, startGdriveEmulator, type GdriveEmulator } from './index.js';
import { bytes, call } from './raw-http.js';

let emu: GdriveEmulator;
let token: string;

beforeEach(async () => {
  emu = await startGdriveEmulator({ seed: 11 });
  token = emu.issueAccessToken();
});
afterEach(async () => {
  await emu.close();
});

const refresh = () =>
  call(emu, 'POST', '/token', {
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: emu.refreshToken, client_id: emu.clientId, client_secret: emu.clientSecret }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });

describe('injected status faults', () => {
  it('renders a random 429 in Drive shape with Retry-After, and spares the token endpoint', async () => {
    emu.server.setFaults({ rate: 1, mix: [{ kind: 'status', status: 429, retryAfterS: 7, weight: 1 }] });
    const res = await call(emu, 'GET', '/drive/v3/files', { token });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.json).toEqual({
      error: {
        code: 429,
        message: 'Rate Limit Exceeded',
        errors: [{ message: 'Rate Limit Exceeded', domain: 'usageLimits', reason: 'rateLimitExceeded' }],
        status: 'RESOURCE_EXHAUSTED',
      },
    });
    expect((await refresh()).status).toBe(200);
    emu.server.clearFaults();
    expect((await call(emu, 'GET', '/drive/v3/files', { token })).status).toBe(200);
  });

  it('renders 500 and 503 as backendError', async () => {
    emu.server.setFaults({ queue: [{ match: /files/, fault: { kind: 'status', status: 500 } }, { match: /files/, fault: { kind: 'status', status: 503, retryAfterS: 2 } }] });
    const a = await call(emu, 'GET', '/drive/v3/files', { token });
    expect(a.status).toBe(500);
    expect(a.json.error).toMatchObject({ code: 500, errors: [{ reason: 'backendError', domain: 'global' }] });
    const b = await call(emu, 'GET', '/drive/v3/files', { token });
    expect(b.status).toBe(503);
    expect(b.headers.get('retry-after')).toBe('2');
    expect(b.json.error.errors[0].reason).toBe('backendError');
  });

  it.each([
    ['userRateLimitExceeded', 403, 'userRateLimitExceeded', 'User Rate Limit Exceeded'],
    ['rateLimitExceeded', 403, 'rateLimitExceeded', 'Rate Limit Exceeded'],
    ['tooManyRequests', 429, 'rateLimitExceeded', 'Rate Limit Exceeded'],
    ['dailyUploadCap', 403, 'userRateLimitExceeded', 'User rate limit exceeded.'],
    ['storageQuotaExceeded', 403, 'storageQuotaExceeded', "The user's Drive storage quota has been exceeded."],
    ['backendError', 500, 'backendError', 'Backend Error'],
  ] as const)('failNext(%s) answers %i %s once', async (name, status, reason, message) => {
    emu.failNext(name, { retryAfterS: 3 });
    const res = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'x' } });
    expect(res.status).toBe(status);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(res.json.error).toMatchObject({ code: status, message, errors: [{ reason, message }] });
    expect(emu.entries()).toEqual([]);
    expect((await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'x' } })).status).toBe(200);
  });
});

describe('connection faults', () => {
  it('a reset mid-chunk stores nothing of that chunk; the session resumes', async () => {
    const size = CHUNK_GRANULARITY * 2;
    const data = bytes(size);
    const start = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=resumable', { token, json: { name: 'r.bin' }, headers: { 'x-upload-content-length': String(size) } });
    const uri = start.headers.get('location')!;
    emu.server.setFaults({ queue: [{ match: /^\/upload\//, fault: { kind: 'reset' } }] });
    await expect(call(emu, 'PUT', uri, { body: data.subarray(0, CHUNK_GRANULARITY), headers: { 'content-range': `bytes 0-${CHUNK_GRANULARITY - 1}/${size}` } })).rejects.toThrow();
    expect(emu.server.requests(/upload_id/)[0]!.fault).toBe('reset');
    const probe = await call(emu, 'PUT', uri, { body: Buffer.alloc(0), headers: { 'content-range': `bytes */${size}` } });
    expect(probe.status).toBe(308);
    expect(probe.headers.get('range')).toBeNull();
    const done = await call(emu, 'PUT', uri, { body: data, headers: { 'content-range': `bytes 0-${size - 1}/${size}` } });
    expect(done.status).toBe(200);
  });

  it('a target that is down refuses connections until it is back', async () => {
    emu.server.setFaults({ down: true });
    await expect(call(emu, 'GET', '/drive/v3/files', { token })).rejects.toThrow();
    emu.server.setFaults({ down: false });
    expect((await call(emu, 'GET', '/drive/v3/files', { token })).status).toBe(200);
  });

  it('a hang answers nothing until the client gives up', async () => {
    emu.server.setFaults({ queue: [{ match: /files/, fault: { kind: 'hang' } }] });
    const outcome = await new Promise<string>((resolve) => {
      const req = http.request(`${emu.url}/drive/v3/files`, { headers: { authorization: `Bearer ${token}` } }, () => resolve('answered'));
      req.setTimeout(200, () => {
        req.destroy();
        resolve('timed out');
      });
      req.on('error', () => undefined);
      req.end();
    });
    expect(outcome).toBe('timed out');
  });
});

describe('tokens', () => {
  it('an expired token gets 401 authError; a refresh gives a working one', async () => {
    const first = (await refresh()).json.access_token as string;
    emu.tokens.expireAll();
    const res = await call(emu, 'GET', '/drive/v3/files', { token: first });
    expect(res.status).toBe(401);
    expect(res.json.error.errors[0].reason).toBe('authError');
    const second = (await refresh()).json.access_token as string;
    expect((await call(emu, 'GET', '/drive/v3/files', { token: second })).status).toBe(200);
  });

  it('revoking kills the access token and makes the refresh fail with invalid_grant', async () => {
    emu.tokens.revoke();
    expect((await call(emu, 'GET', '/drive/v3/files', { token })).status).toBe(401);
    const res = await refresh();
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_grant');
    emu.tokens.unrevoke();
    expect((await refresh()).status).toBe(200);
  });
});
