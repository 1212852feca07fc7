/** The fetch wrapper the SDK is given: endpoint rewrite, token parameters out of the URL, scopes. */
import { Readable } from 'node:stream';
import { Response, type RequestInit } from 'node-fetch';
import { describe, expect, it } from 'vitest';
import { DropboxNetworkError } from '../../../src/targets/dropbox/classify.js';
import { createDropboxFetch, resolveUrl } from '../../../src/targets/dropbox/transport.js';

const ENDPOINTS = { api: 'http://127.0.0.1:1/api/', content: 'http://127.0.0.1:1/content' };

describe('resolveUrl', () => {
  it.each([
    ['https://api.dropboxapi.com/2/files/get_metadata', 'http://127.0.0.1:1/api/2/files/get_metadata'],
    ['https://content.dropboxapi.com/2/files/upload', 'http://127.0.0.1:1/content/2/files/upload'],
    ['https://api.dropbox.com/oauth2/token', 'http://127.0.0.1:1/api/oauth2/token'],
  ])('sends %s to the endpoint', (from, to) => {
    expect(resolveUrl(from, ENDPOINTS).href).toBe(to);
  });

  it('leaves the real hosts alone without an endpoints block', () => {
    expect(resolveUrl('https://content.dropboxapi.com/2/files/upload', undefined).href).toBe('https://content.dropboxapi.com/2/files/upload');
  });

  it('refuses any other host when endpoints are set', () => {
    expect(() => resolveUrl('https://notify.dropboxapi.com/2/files/list_folder/longpoll', ENDPOINTS)).toThrow(DropboxNetworkError);
    expect(() => resolveUrl('http://api.dropboxapi.com/2/x', ENDPOINTS)).toThrow(/not a Dropbox API host/);
  });
});

/** A fetch that records what it was asked and answers `status`. */
function recorder(status = 200) {
  const seen: Array<{ url: string; init: RequestInit }> = [];
  const fetch = (async (url: string, init: RequestInit) => {
    seen.push({ url, init });
    return new Response(status === 200 ? '{}' : '{"error":"x"}', { status });
  }) as unknown as NonNullable<Parameters<typeof createDropboxFetch>[0]['fetch']>;
  return { seen, fetch };
}

describe('createDropboxFetch', () => {
  it('moves the token request\'s parameters from the query to a form body', async () => {
    const r = recorder();
    const f = createDropboxFetch({ endpoints: ENDPOINTS, timeoutMs: 0, fetch: r.fetch });
    await f('https://api.dropboxapi.com/oauth2/token?grant_type=refresh_token&refresh_token=RT-secret&client_id=k&client_secret=S-secret', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
    });
    const { url, init } = r.seen[0]!;
    expect(url).toBe('http://127.0.0.1:1/api/oauth2/token');
    expect(Object.fromEntries(new URLSearchParams(String(init.body)))).toEqual({
      grant_type: 'refresh_token',
      refresh_token: 'RT-secret',
      client_id: 'k',
      client_secret: 'S-secret',
    });
    expect(init.headers).toEqual({ 'Content-Type': 'application/x-www-form-urlencoded' });
  });

  it('without endpoints, requests go to Dropbox\'s own hosts', async () => {
    const r = recorder();
    const f = createDropboxFetch({ timeoutMs: 0, fetch: r.fetch });
    await f('https://content.dropboxapi.com/2/files/upload', { method: 'POST', body: Buffer.from('x') });
    expect(r.seen[0]!.url).toBe('https://content.dropboxapi.com/2/files/upload');
  });

  it('records the bearer token of the call in its scope', async () => {
    const r = recorder();
    const f = createDropboxFetch({ endpoints: ENDPOINTS, timeoutMs: 0, fetch: r.fetch });
    const scope: { token?: string } = {};
    await f('https://api.dropboxapi.com/2/files/get_metadata', { method: 'POST', headers: { Authorization: 'Bearer T1' } }, scope);
    expect(scope.token).toBe('T1');
  });

  it('a call already cancelled sends nothing', async () => {
    const r = recorder();
    const f = createDropboxFetch({ endpoints: ENDPOINTS, timeoutMs: 0, fetch: r.fetch });
    const ac = new AbortController();
    ac.abort();
    const err = await f('https://api.dropboxapi.com/2/files/get_metadata', { method: 'POST' }, { signal: ac.signal }).catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
    expect(r.seen).toHaveLength(0);
  });

  it('an error answer is read whole and handed back with its status', async () => {
    const r = recorder(409);
    const f = createDropboxFetch({ endpoints: ENDPOINTS, timeoutMs: 0, fetch: r.fetch });
    const res = await f('https://content.dropboxapi.com/2/files/upload', { method: 'POST', body: Readable.from([Buffer.from('abc')]) });
    expect(res.status).toBe(409);
    expect(await res.text()).toBe('{"error":"x"}');
  });
});
