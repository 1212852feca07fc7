/** http.ts: where the config's `endpoints` send each Microsoft host, and the MSAL network client's answers. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from '@microsoft/microsoft-graph-client';
import { afterEach, describe, expect, it } from 'vitest';
import { OneDriveNetworkError } from '../../../src/targets/onedrive/classify.js';
import { NodeHttpHandler, NodeNetworkClient, endpointRewrite, sendHttp } from '../../../src/targets/onedrive/transport.js';

const ENDPOINTS = { graph: 'http://127.0.0.1:8701', login: 'http://127.0.0.1:8702/prefix/' };

describe('endpointRewrite', () => {
  const rewrite = endpointRewrite(ENDPOINTS)!;
  it.each([
    ['https://graph.microsoft.com/v1.0/me/drive?$select=id', 'http://127.0.0.1:8701/v1.0/me/drive?$select=id'],
    ['https://api.onedrive.com/rup/abc', 'http://127.0.0.1:8701/rup/abc'],
    ['https://public.dm.files.1drv.com/download/x', 'http://127.0.0.1:8701/download/x'],
    ['https://contoso-my.sharepoint.com/personal/u/_api/v2.0/up/x', 'http://127.0.0.1:8701/personal/u/_api/v2.0/up/x'],
    ['https://login.microsoftonline.com/consumers/oauth2/v2.0/token', 'http://127.0.0.1:8702/prefix/consumers/oauth2/v2.0/token'],
    ['https://login.windows.net/common/discovery/instance', 'http://127.0.0.1:8702/prefix/common/discovery/instance'],
  ])('%s → %s', (from, to) => {
    expect(rewrite(new URL(from))?.toString()).toBe(to);
  });

  it('leaves other hosts alone, and nothing is rewritten without endpoints', () => {
    expect(rewrite(new URL('https://example.com/x'))).toBeNull();
    expect(endpointRewrite(undefined)).toBeUndefined();
  });
});

describe('sendHttp and NodeNetworkClient', () => {
  let server: http.Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function serve(handler: http.RequestListener): Promise<string> {
    server = http.createServer(handler);
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('keeps the original Host when it rewrites', async () => {
    let host = '';
    const base = await serve((req, res) => {
      host = req.headers.host ?? '';
      res.end('{}');
    });
    const res = await sendHttp(new URL('https://graph.microsoft.com/v1.0/me'), { method: 'GET', headers: {}, body: null, rewrite: endpointRewrite({ graph: base, login: base }) });
    res.resume();
    expect(host).toBe('graph.microsoft.com');
  });

  it('a silent server fails with OneDriveNetworkError ETIMEDOUT, naming the host but not the path', async () => {
    const base = await serve(() => undefined);
    const err = await sendHttp(new URL(`${base}/rup/SECRET-SESSION`), { method: 'GET', headers: {}, body: null, timeoutMs: 50 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OneDriveNetworkError);
    expect((err as OneDriveNetworkError).errno).toBe('ETIMEDOUT');
    expect((err as Error).message).not.toContain('SECRET-SESSION');
  });

  it("gives MSAL an OAuth error body when the identity platform's answer is not JSON", async () => {
    const base = await serve((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>Bad gateway</html>');
    });
    const r = await new NodeNetworkClient().sendPostRequestAsync<{ error: string }>(`${base}/consumers/oauth2/v2.0/token`, { body: 'a=b' });
    expect(r.status).toBe(502);
    expect(r.body.error).toBe('temporarily_unavailable');
  });

  // A small answer is read whole and handed to the Graph client as a Response over its bytes
  // (transport.ts, readFromBytes): it must read as a fetch Response does.
  it("hands the Graph client a small answer that reads as a fetch Response: once, cloned before, or as a stream", async () => {
    const json = '{"name":"é.txt","size":3}';
    const base = await serve((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json), 'x-extra': 'a' });
      res.end(json);
    });
    const answer = async (): Promise<Response> => {
      const context = { request: `${base}/v1.0/me/drive/root:/x:/content`, options: { method: 'GET' } } as Context;
      await new NodeHttpHandler().execute(context);
      return context.response!;
    };
    const r = await answer();
    expect([r.status, r.ok, r.headers.get('x-extra'), r.url]).toEqual([201, true, 'a', `${base}/v1.0/me/drive/root:/x:/content`]);
    const copy = r.clone();
    expect(await r.json()).toEqual({ name: 'é.txt', size: 3 });
    expect(r.bodyUsed).toBe(true);
    await expect(r.text()).rejects.toThrow(TypeError);
    expect(Buffer.from(await copy.arrayBuffer()).toString('utf8')).toBe(json);
    const streamed = await answer();
    expect(await new Response(streamed.body).text()).toBe(json);
    expect(await (await (await answer()).blob()).text()).toBe(json);
  });
});
