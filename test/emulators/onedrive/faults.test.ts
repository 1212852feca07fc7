/**
 * Fault injection seen through the protocol: throttling and 5xx in Graph's error shape with
 * Retry-After, faults on the token endpoint in the OAuth shape, a connection reset mid-fragment
 * (the session resumes), a target that is down, a hang, and corrupted stored bytes (the reported
 * hash no longer matches the content). Also: the Graph client built by client.ts surfaces a 429
 * as a GraphError after exactly one request (its own retries are off).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { GraphError } from '@microsoft/microsoft-graph-client';
import { quickXorHash } from '../../../src/archive/quickxor.js';
import { createGraphClient } from './client.js';
import type { OneDriveEmulator } from './index.js';
import { FRAGMENT_UNIT, startOneDriveEmulator } from './index.js';
import { form, raw } from './raw.js';

let emu: OneDriveEmulator;
let token: string;

beforeAll(async () => {
  emu = await startOneDriveEmulator({ seed: 5 });
  token = emu.issueAccessToken();
});
afterAll(async () => {
  await emu.close();
});
afterEach(() => {
  emu.server.clearFaults();
});

async function session(name: string): Promise<string> {
  const res = await raw(emu.url, 'POST', `/v1.0/me/drive/root:/${name}:/createUploadSession`, { token, headers: { 'content-type': 'application/json' }, body: '{}' });
  return new URL(res.json.uploadUrl as string).pathname;
}

describe('status faults', () => {
  it('429 comes in Graph shape (activityLimitReached / throttledRequest) with the configured Retry-After', async () => {
    emu.server.setFaults({ queue: [{ match: /^\/v1\.0\/me\/drive$/, fault: { kind: 'status', status: 429, retryAfterS: 7 } }] });
    const res = await raw(emu.url, 'GET', '/v1.0/me/drive', { token });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('7');
    expect(res.json.error.code).toBe('activityLimitReached');
    expect(res.json.error.innerError.code).toBe('throttledRequest');
    expect((await raw(emu.url, 'GET', '/v1.0/me/drive', { token })).status).toBe(200);
  });

  it('503 carries a Retry-After even when the fault sets none; 500 is generalException', async () => {
    emu.server.setFaults({
      queue: [
        { match: /^\/v1\.0\//, fault: { kind: 'status', status: 503 } },
        { match: /^\/v1\.0\//, fault: { kind: 'status', status: 500 } },
      ],
    });
    const a = await raw(emu.url, 'GET', '/v1.0/me/drive/root', { token });
    expect(a.status).toBe(503);
    expect(a.headers['retry-after']).toBe('1');
    expect(a.json.error.code).toBe('serviceNotAvailable');
    const b = await raw(emu.url, 'GET', '/v1.0/me/drive/root', { token });
    expect(b.status).toBe(500);
    expect(b.json.error.code).toBe('generalException');
  });

  it('a fault on the token endpoint answers in the OAuth error shape', async () => {
    emu.server.setFaults({ queue: [{ match: /oauth2\/v2\.0\/token$/, fault: { kind: 'status', status: 503 } }] });
    const res = await form(emu.url, '/common/oauth2/v2.0/token', { client_id: 'c', grant_type: 'refresh_token', refresh_token: 'x' }, { host: 'login.microsoftonline.com' });
    expect(res.status).toBe(503);
    expect(res.json.error).toBe('temporarily_unavailable');
    expect(res.json.error_codes).toBeInstanceOf(Array);
  });

  it('random faults leave token endpoints alone by default and hit Graph', async () => {
    emu.server.setFaults({ rate: 1, mix: [{ kind: 'status', status: 500, weight: 1 }] });
    const tok = await form(emu.url, '/common/oauth2/v2.0/token', { client_id: 'c', grant_type: 'password' });
    expect(tok.json.error).toBe('unsupported_grant_type');
    const graph = await raw(emu.url, 'GET', '/v1.0/me/drive', { token });
    expect(graph.status).toBe(500);
  });

  it('the Graph client surfaces 429 as a GraphError with Retry-After after a single request', async () => {
    const client = createGraphClient({ emulatorUrl: emu.url, getAccessToken: async () => token });
    emu.server.setFaults({ queue: [{ match: /^\/v1\.0\/me\/drive\/root$/, fault: { kind: 'status', status: 429, retryAfterS: 3 } }] });
    const before = emu.server.requests(/^\/v1\.0\/me\/drive\/root$/).length;
    const err = (await client.api('/me/drive/root').get().catch((e: unknown) => e)) as GraphError;
    expect(err.statusCode).toBe(429);
    expect(err.code).toBe('activityLimitReached');
    expect(err.headers?.get('retry-after')).toBe('3');
    expect(emu.server.requests(/^\/v1\.0\/me\/drive\/root$/).length).toBe(before + 1);
  });
});

describe('connection faults', () => {
  it('a reset mid-fragment loses that fragment only; the session resumes', async () => {
    const url = await session('reset.bin');
    const data = Buffer.alloc(2 * FRAGMENT_UNIT, 7);
    const first = await raw(emu.url, 'PUT', url, { headers: { 'content-range': `bytes 0-${FRAGMENT_UNIT - 1}/${data.length}` }, body: data.subarray(0, FRAGMENT_UNIT) });
    expect(first.status).toBe(202);
    emu.server.setFaults({ queue: [{ match: /^\/upload\//, fault: { kind: 'reset' } }] });
    await expect(
      raw(emu.url, 'PUT', url, { headers: { 'content-range': `bytes ${FRAGMENT_UNIT}-${2 * FRAGMENT_UNIT - 1}/${data.length}` }, body: data.subarray(FRAGMENT_UNIT) }),
    ).rejects.toThrow();
    const status = await raw(emu.url, 'GET', url);
    expect(status.json.nextExpectedRanges).toEqual([`${FRAGMENT_UNIT}-`]);
    const last = await raw(emu.url, 'PUT', url, { headers: { 'content-range': `bytes ${FRAGMENT_UNIT}-${2 * FRAGMENT_UNIT - 1}/${data.length}` }, body: data.subarray(FRAGMENT_UNIT) });
    expect(last.status).toBe(201);
    expect(last.json.file.hashes.quickXorHash).toBe(quickXorHash(data));
  });

  it('a target that is down refuses every connection until it is back', async () => {
    emu.server.setFaults({ down: true });
    await expect(raw(emu.url, 'GET', '/v1.0/me/drive', { token })).rejects.toThrow();
    emu.server.setFaults({ down: false });
    expect((await raw(emu.url, 'GET', '/v1.0/me/drive', { token })).status).toBe(200);
  });

  it('a hang never answers: the client gives up on its own deadline', async () => {
    emu.server.setFaults({ queue: [{ match: /^\/v1\.0\/me\/drive$/, fault: { kind: 'hang' } }] });
    await expect(fetch(`${emu.url}/v1.0/me/drive`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(200) })).rejects.toThrow();
  });
});

describe('corrupted bytes', () => {
  it('after corrupt(), the download no longer matches the quickXorHash the drive reports', async () => {
    const data = Buffer.from('precious archive bytes '.repeat(100));
    const up = await raw(emu.url, 'PUT', '/v1.0/me/drive/root:/Vault/p.txt:/content', { token, body: data });
    expect(up.json.file.hashes.quickXorHash).toBe(quickXorHash(data));
    await emu.corrupt('/Vault/p.txt');
    const item = await raw(emu.url, 'GET', '/v1.0/me/drive/root:/Vault/p.txt', { token });
    expect(item.json.file.hashes.quickXorHash).toBe(quickXorHash(data));
    const dl = await raw(emu.url, 'GET', new URL(item.json['@microsoft.graph.downloadUrl'] as string).pathname);
    expect(dl.body.length).toBe(data.length);
    expect(quickXorHash(dl.body)).not.toBe(item.json.file.hashes.quickXorHash);
    const stored = (await emu.tree()).find((f) => f.path === '/Vault/p.txt')!;
    expect(stored.hash).toBe(quickXorHash(data));
  });
});
