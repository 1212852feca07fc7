/**
 * KitNetworkClient (src/targets/box/transport.ts), the Box SDK's network client over the
 * kit's fetch, against a loopback server: the multipart upload as Box documents it (attributes
 * before the file, `content-md5` the file's SHA-1: https://developer.box.com/reference/post-files-content/),
 * the session's retry strategy and redirects, and the errors classify.ts reads. The Box target's
 * own tests (and the conformance suite) run it against the Box emulator.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { FetchOptions } from 'box-node-sdk/lib/networking/fetchOptions';
import { NetworkSession } from 'box-node-sdk/lib/networking/network';
import type { RetryStrategy } from 'box-node-sdk/lib/networking/retries';
import { afterEach, describe, expect, it } from 'vitest';
import { KitNetworkClient } from '../../../src/targets/box/transport.js';
import { rejected } from '../../helpers/rejection.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

async function serve(answer: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen[]) => void): Promise<{ base: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      answer(req, res, seen);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length, ...headers }).end(bytes);
}

const token = { retrieveAuthorizationHeader: async () => 'Bearer t1' } as unknown as NonNullable<FetchOptions['auth']>;

/** Retries nothing (the SDK's default strategy retries a refused connection with back-off). */
const never: RetryStrategy = { shouldRetry: async () => false, retryAfter: () => 0 };

function session(retryStrategy: RetryStrategy = never, more: { timeoutConfig?: { timeoutMs: number } } = {}): NetworkSession {
  return new NetworkSession({ networkClient: new KitNetworkClient(), retryStrategy, ...more });
}

describe('KitNetworkClient', () => {
  it('sends a multipart upload with the attributes first and the file SHA-1 in content-md5, and reads the JSON answer', async () => {
    const s = await serve((_req, res) => json(res, 201, { entries: [{ id: '9', type: 'file' }] }));
    const file = Buffer.from('the bytes of the file');
    const ns = session();
    const res = await ns.networkClient.fetch(
      new FetchOptions({
        url: `${s.base}/api/2.0/files/content`,
        method: 'POST',
        params: { fields: 'id,sha1' },
        multipartData: [
          { partName: 'attributes', data: { name: 'a.txt', parent: { id: '0' } } },
          { partName: 'file', fileStream: Readable.from([file]) },
        ],
        contentType: 'multipart/form-data',
        responseFormat: 'json',
        auth: token,
        networkSession: ns,
      }),
    );
    expect(res.status).toBe(201);
    expect(res.data).toEqual({ entries: [{ id: '9', type: 'file' }] });
    const r = s.seen[0]!;
    expect(r.url).toBe('/api/2.0/files/content?fields=id%2Csha1');
    expect(r.headers.authorization).toBe('Bearer t1');
    expect(r.headers['content-md5']).toBe(createHash('sha1').update(file).digest('hex'));
    expect(r.headers['user-agent']).toMatch(/^Box JavaScript generated SDK/);
    const boundary = /boundary=(.+)$/.exec(r.headers['content-type']!)![1]!;
    const parts = r.body.toString('latin1').split(`--${boundary}`);
    expect(parts[1]).toContain('name="attributes"');
    expect(parts[1]).toContain('{"name":"a.txt","parent":{"id":"0"}}');
    expect(parts[2]).toContain('name="file"; filename="file"');
    expect(parts[2]).toContain('Content-Type: application/octet-stream\r\n\r\nthe bytes of the file\r\n');
    expect(parts[3]).toBe('--\r\n');
  });

  it('runs the session retry strategy with the same body again, and follows a redirect without Authorization to another origin', async () => {
    const other = await serve((req, res) => json(res, 200, { auth: req.headers.authorization ?? null }));
    const otherClose = close;
    const s = await serve((req, res, seen) => {
      if (req.url === '/moved') res.writeHead(302, { location: `${other.base}/there` }).end();
      else if (seen.length === 1) json(res, 401, { type: 'error', code: 'unauthorized' });
      else json(res, 200, { ok: true });
    });
    const again: RetryStrategy = {
      shouldRetry: async (_o, r, attempt) => r.status === 401 && attempt === 1,
      retryAfter: () => 0,
    };
    const ns = session(again);
    const put = (url: string) =>
      ns.networkClient.fetch(
        new FetchOptions({ url, method: 'PUT', fileStream: Readable.from([Buffer.from('part')]), contentType: 'application/octet-stream', responseFormat: 'json', auth: token, networkSession: ns }),
      );
    expect((await put(`${s.base}/part`)).data).toEqual({ ok: true });
    expect(s.seen.map((r) => [r.method, r.body.toString()])).toEqual([
      ['PUT', 'part'],
      ['PUT', 'part'],
    ]);
    expect((await put(`${s.base}/moved`)).data).toEqual({ auth: null });
    await otherClose?.();
  });

  it('an error answer is a BoxApiError with the status, headers and body; no answer is a BoxSdkError with the cause', async () => {
    const s = await serve((_req, res) => json(res, 409, { type: 'error', code: 'item_name_in_use', message: 'taken', request_id: 'r1' }, { 'retry-after': '3' }));
    const ns = session();
    const get = (url: string) => ns.networkClient.fetch(new FetchOptions({ url, method: 'GET', responseFormat: 'json', networkSession: ns }));
    const err = (await rejected(get(`${s.base}/x`))) as Error & { responseInfo: { statusCode: number; headers: Record<string, string>; body: unknown; requestId: unknown } };
    expect(err.name).toBe('BoxApiError');
    expect(err.responseInfo.statusCode).toBe(409);
    expect(err.responseInfo.headers['retry-after']).toBe('3');
    expect(err.responseInfo.body).toMatchObject({ code: 'item_name_in_use', request_id: 'r1' });
    expect(err.message).toContain('409');
    await close?.();
    close = undefined;
    const none = (await rejected(get(`${s.base}/x`))) as Error & { error?: { code?: string } };
    expect(none.name).toBe('BoxSdkError');
    // Refused, or reset when the pool's kept-alive socket was the one closed.
    expect(['ECONNREFUSED', 'ECONNRESET']).toContain(none.error?.code);
  });

  it('a download follows its redirect to the bytes, and an error answer to one is read for its code', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/files/1/content') res.writeHead(302, { location: '/dl/1' }).end('moved');
      else if (req.url === '/dl/1') res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('the bytes');
      else json(res, 404, { type: 'error', code: 'not_found', request_id: 'r2' });
    });
    const ns = session();
    const download = (path: string) => ns.networkClient.fetch(new FetchOptions({ url: `${s.base}${path}`, method: 'GET', responseFormat: 'binary', networkSession: ns }));
    const ok = await download('/files/1/content');
    const chunks: Buffer[] = [];
    for await (const c of ok.content as Readable) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('the bytes');
    const err = (await rejected(download('/files/2/content'))) as Error & { responseInfo: { statusCode: number; body: unknown } };
    expect(err.responseInfo.statusCode).toBe(404);
    expect(err.responseInfo.body).toMatchObject({ code: 'not_found', request_id: 'r2' });
  });

  it('timeoutConfig is the most the connection may stay silent: a slow answer that keeps coming is read, a silent one fails', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/silent') return;
      res.writeHead(200, { 'content-type': 'application/json' });
      const bits = ['{"a":', '1', '}'];
      const tick = setInterval(() => {
        const b = bits.shift();
        if (b === undefined) {
          clearInterval(tick);
          res.end();
        } else res.write(b);
      }, 80);
    });
    const ns = session(never, { timeoutConfig: { timeoutMs: 150 } });
    const get = (url: string) => ns.networkClient.fetch(new FetchOptions({ url, method: 'GET', responseFormat: 'json', networkSession: ns }));
    // ~320 ms in all, never 150 ms without a byte.
    expect((await get(`${s.base}/slow`)).data).toEqual({ a: 1 });
    const err = (await rejected(get(`${s.base}/silent`))) as Error;
    expect(err.name).toBe('BoxSdkError');
    expect(err.message).toMatch(/timeout/);
  });
});
