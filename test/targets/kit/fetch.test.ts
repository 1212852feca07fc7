/**
 * The kit's fetch (src/targets/kit/fetch.ts), which the Drive and Dropbox SDKs send through,
 * against a loopback server: bodies of each kind, answers, inflation, redirects, cancellation,
 * failures and timeouts, as the fetch standard (https://fetch.spec.whatwg.org/) and node-fetch,
 * which it replaced, behave.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { FetchError, FetchHeaders, FetchResponse, fetch } from '../../../src/targets/kit/fetch.js';
import { rejected } from '../../helpers/rejection.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The connection closed before the request's body ended. */
  cut: boolean;
}

interface Server {
  base: string;
  seen: Seen[];
  connections: number;
  close(): Promise<void>;
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A loopback server on a free port; `answer` answers each request once its body is read (or at once with `early`). */
async function serve(answer: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => void, opts: { early?: boolean } = {}): Promise<Server> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const s: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.alloc(0), cut: false };
    seen.push(s);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    // The connection closed before the request's body ended.
    req.socket.once('close', () => (s.cut = !req.complete));
    req.on('end', () => {
      s.body = Buffer.concat(chunks);
      if (!opts.early) answer(req, res, s);
    });
    if (opts.early) answer(req, res, s);
  });
  const state = { connections: 0 };
  server.on('connection', () => state.connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const s: Server = {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  servers.push(s);
  return s;
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': bytes.length, ...headers });
  res.end(bytes);
}

describe('bodies and answers', () => {
  it('sends bytes, text and forms with their length, streams with chunks, and reads the answer every way', async () => {
    const s = await serve((_req, res, seen) => json(res, 201, { got: seen.body.toString() }, { 'X-Thing': 'a', 'Set-Cookie': ['k=1', 'j=2'] }));
    const a = await fetch(`${s.base}/bytes`, { method: 'POST', body: Buffer.from('abc') });
    expect(a.status).toBe(201);
    expect(a.ok).toBe(true);
    expect(a.statusText).toBe('Created');
    expect(a.headers.get('x-thing')).toBe('a');
    expect(a.headers.get('X-THING')).toBe('a');
    expect(a.headers.getSetCookie()).toEqual(['k=1', 'j=2']);
    expect(await a.json()).toEqual({ got: 'abc' });
    expect(a.bodyUsed).toBe(true);
    await expect(a.text()).rejects.toThrow(/body used already/);

    const b = await fetch(`${s.base}/text`, { method: 'PUT', body: 'héllo', headers: { 'Content-Type': 'text/plain' } });
    expect(await b.text()).toBe('{"got":"héllo"}');
    const c = await fetch(new URL(`${s.base}/form`), { method: 'POST', body: new URLSearchParams({ a: '1', b: 'x y' }) });
    expect(Buffer.from(await c.arrayBuffer()).toString()).toBe('{"got":"a=1&b=x+y"}');
    const d = await fetch(`${s.base}/stream`, { method: 'POST', body: Readable.from([Buffer.from('one '), Buffer.from('two')]) });
    expect((await d.buffer()).toString()).toBe('{"got":"one two"}');
    const e = await fetch(`${s.base}/blob`, { method: 'POST', body: new Uint8Array([104, 105]) });
    expect(await (await e.blob()).text()).toBe('{"got":"hi"}');

    expect(s.seen.map((r) => [r.method, r.headers['content-length'], r.headers['transfer-encoding']])).toEqual([
      ['POST', '3', undefined],
      ['PUT', '6', undefined],
      ['POST', '9', undefined],
      ['POST', undefined, 'chunked'],
      ['POST', '2', undefined],
    ]);
    expect(s.seen[1]!.headers['content-type']).toBe('text/plain');
    expect(s.seen[2]!.headers['content-type']).toBe('application/x-www-form-urlencoded;charset=UTF-8');
    // One connection for requests one after another: the agent keeps it alive.
    expect(s.connections).toBe(1);
  });

  it('takes headers as a record, a list of pairs or a Headers, and gives the body as a Node stream', async () => {
    const s = await serve((req, res) => json(res, 200, { a: req.headers.a, b: req.headers.b, c: req.headers.c }));
    const h = new Headers({ c: '3' });
    for (const headers of [{ a: '1' }, [['b', '2']], h]) {
      const res = await fetch(s.base, { headers });
      expect(res.body).toBeInstanceOf(Readable);
      const chunks: Buffer[] = [];
      for await (const c of res.body!) chunks.push(c as Buffer);
      expect(JSON.parse(Buffer.concat(chunks).toString())).toEqual({ ...('a' in headers ? { a: '1' } : {}), ...(Array.isArray(headers) ? { b: '2' } : {}), ...(headers === h ? { c: '3' } : {}) });
    }
  });

  it('a 204 and a HEAD have no body; an error status is an answer, not a failure', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/none') res.writeHead(204).end();
      else if (req.method === 'HEAD') res.writeHead(200, { 'content-length': '10' }).end();
      else json(res, 429, { error: 'slow down' }, { 'Retry-After': '3' });
    });
    const none = await fetch(`${s.base}/none`, { method: 'DELETE' });
    expect([none.status, none.body, await none.text()]).toEqual([204, null, '']);
    const head = await fetch(`${s.base}/x`, { method: 'HEAD' });
    expect([head.status, head.body]).toEqual([200, null]);
    const busy = await fetch(`${s.base}/busy`);
    expect([busy.status, busy.ok, busy.headers.get('retry-after')]).toEqual([429, false, '3']);
    expect(await busy.json()).toEqual({ error: 'slow down' });
  });

  it('inflates a gzip, deflate or br answer it offered to take, and leaves it with compress off', async () => {
    const text = 'x'.repeat(5000);
    const s = await serve((req, res) => {
      const enc = req.url!.slice(1);
      const body = enc === 'gzip' ? zlib.gzipSync(text) : enc === 'deflate' ? zlib.deflateSync(text) : zlib.brotliCompressSync(text);
      res.writeHead(200, { 'content-encoding': enc, 'content-length': body.length }).end(body);
    });
    for (const enc of ['gzip', 'deflate', 'br']) expect(await (await fetch(`${s.base}/${enc}`)).text()).toBe(text);
    expect(s.seen[0]!.headers['accept-encoding']).toBe('gzip, deflate, br');
    const raw = await fetch(`${s.base}/gzip`, { compress: false });
    expect(zlib.gunzipSync(await raw.buffer()).toString()).toBe(text);
    expect(s.seen[3]!.headers['accept-encoding']).toBeUndefined();
  });

  it('refuses a body it cannot send, before sending anything', async () => {
    const s = await serve((_req, res) => res.end());
    await expect(fetch(s.base, { method: 'POST', body: { not: 'a body' } })).rejects.toThrow(TypeError);
    expect(s.seen).toEqual([]);
  });
});

describe('FetchHeaders', () => {
  it('is case-insensitive, joins repeated values, and iterates in order', () => {
    const h = new FetchHeaders({ 'Content-Type': 'a', Accept: ['x', 'y'] });
    h.append('accept', 'z');
    h.set('X-New', '1');
    expect(h.get('content-type')).toBe('a');
    expect(h.get('ACCEPT')).toBe('x, y, z');
    expect([...h]).toEqual([
      ['content-type', 'a'],
      ['accept', 'x, y, z'],
      ['x-new', '1'],
    ]);
    h.delete('Accept');
    expect(h.has('accept')).toBe(false);
    const seen: string[] = [];
    h.forEach((v, k) => seen.push(`${k}=${v}`));
    expect(seen).toEqual(['content-type=a', 'x-new=1']);
    expect(h.raw()).toEqual({ 'content-type': ['a'], 'x-new': ['1'] });
  });
});

describe('FetchResponse', () => {
  it('made from bytes and headers of any kind, reads as an answer from the wire does', async () => {
    const r = new FetchResponse('{"error":"busy"}', { status: 409, headers: new Headers({ 'Retry-After': '2' }) });
    expect([r.status, r.ok, r.statusText, r.headers.get('retry-after')]).toEqual([409, false, 'Conflict', '2']);
    expect(r.headers).toBeInstanceOf(FetchHeaders);
    expect(await r.json()).toEqual({ error: 'busy' });
    await expect(r.text()).rejects.toThrow('body used already');
  });
});

describe('redirects', () => {
  it('follows them; a 303 to a POST becomes a GET without the body', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/a') res.writeHead(302, { location: '/b' }).end();
      else if (req.url === '/b') res.writeHead(303, { location: `${s.base}/c?x=1` }).end();
      else json(res, 200, { method: req.method, url: req.url });
    });
    const res = await fetch(`${s.base}/a`, { method: 'PUT', body: 'data' });
    expect(await res.json()).toEqual({ method: 'GET', url: '/c?x=1' });
    expect(res.redirected).toBe(true);
    expect(res.url).toBe(`${s.base}/c?x=1`);
    expect(s.seen.map((r) => [r.method, r.url, r.body.toString()])).toEqual([
      ['PUT', '/a', 'data'],
      ['PUT', '/b', 'data'],
      ['GET', '/c?x=1', ''],
    ]);
  });

  it('does not carry Authorization to another host', async () => {
    const other = await serve((req, res) => json(res, 200, { auth: req.headers.authorization ?? null }));
    const s = await serve((req, res) => {
      if (req.url === '/same') res.writeHead(307, { location: '/there' }).end();
      else if (req.url === '/there') json(res, 200, { auth: req.headers.authorization ?? null });
      else res.writeHead(307, { location: `${other.base}/x` }).end();
    });
    const headers = { Authorization: 'Bearer secret' };
    expect(await (await fetch(`${s.base}/same`, { headers })).json()).toEqual({ auth: 'Bearer secret' });
    expect(await (await fetch(`${s.base}/away`, { headers })).json()).toEqual({ auth: null });
  });

  it('stops at the limit, hands a 3xx back when asked, fails in error mode, and cannot resend a stream', async () => {
    const s = await serve((req, res) => res.writeHead(req.url === '/keep' ? 307 : 301, { location: req.url === '/keep' ? '/keep2' : '/loop' }).end());
    const loop = (await rejected(fetch(`${s.base}/loop`, { follow: 3 }))) as FetchError;
    expect([loop.name, loop.type]).toEqual(['FetchError', 'max-redirect']);
    expect(s.seen.length).toBe(4);
    const manual = await fetch(`${s.base}/loop`, { redirect: 'manual' });
    expect([manual.status, manual.headers.get('location')]).toEqual([301, '/loop']);
    expect(((await rejected(fetch(`${s.base}/loop`, { redirect: 'error' }))) as FetchError).type).toBe('no-redirect');
    // A body that never ends on its own, answered before it ends: the refused redirect must end it.
    const early = await serve((_req, res) => res.writeHead(307, { location: '/again' }).end(), { early: true });
    const body = new Readable({ read() {} });
    body.push(Buffer.from('x'));
    const stream = (await rejected(fetch(`${early.base}/keep`, { method: 'POST', body }))) as FetchError;
    expect(stream.type).toBe('unsupported-redirect');
    expect(body.destroyed).toBe(true);
  });
});

describe('cancellation', () => {
  it('a signal aborted before the call sends nothing', async () => {
    const s = await serve((_req, res) => res.end());
    const err = (await rejected(fetch(s.base, { signal: AbortSignal.abort() }))) as Error;
    expect([err.name, err.message]).toEqual(['AbortError', 'The operation was aborted.']);
    expect(s.seen).toEqual([]);
  });

  it('cuts a request waiting for its answer, and an answer whose body is flowing', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/hang') return;
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(10));
    });
    const ac = new AbortController();
    const waiting = fetch(`${s.base}/hang`, { signal: ac.signal });
    await until(() => s.seen.length === 1);
    ac.abort();
    expect(((await rejected(waiting)) as Error).name).toBe('AbortError');

    const ac2 = new AbortController();
    const res = await fetch(`${s.base}/flow`, { signal: ac2.signal });
    const reading = res.text();
    ac2.abort();
    expect(((await rejected(reading)) as Error).name).toBe('AbortError');
  });

  it('after an early error answer, the signal still cuts the request body being sent', async () => {
    const s = await serve((_req, res) => json(res, 413, { error: 'too big' }), { early: true });
    const ac = new AbortController();
    // A body that never ends on its own.
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(1024));
    const res = await fetch(`${s.base}/up`, { method: 'POST', body, signal: ac.signal });
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: 'too big' });
    ac.abort();
    await until(() => s.seen[0]!.cut);
    expect(body.destroyed).toBe(true);
  });

  it("a body stream's error fails the request with that error", async () => {
    const s = await serve((_req, res) => res.end());
    const body = new Readable({
      read() {
        this.destroy(new Error('disk gone'));
      },
    });
    const err = (await rejected(fetch(s.base, { method: 'POST', body }))) as Error;
    expect(err.message).toBe('disk gone');
  });
});

describe('failures and timeouts', () => {
  it('no server: a FetchError with the system code, naming the URL without its query', async () => {
    const s = await serve((_req, res) => res.end());
    const url = `${s.base}/path?token=secret`;
    await s.close();
    const err = (await rejected(fetch(url))) as FetchError;
    expect(err).toBeInstanceOf(FetchError);
    expect([err.type, err.code, err.errno]).toEqual(['system', 'ECONNREFUSED', 'ECONNREFUSED']);
    expect(err.message).toContain(`${s.base}/path`);
    expect(err.message).not.toContain('secret');
  });

  it('a silent server times out before the answer (request-timeout) and while the body is read (body-timeout)', async () => {
    const s = await serve((req, res) => {
      if (req.url === '/silent') return;
      res.writeHead(200, { 'content-length': '100' });
      res.write('x');
    });
    const before = (await rejected(fetch(`${s.base}/silent`, { timeout: 100 }))) as FetchError;
    expect([before.name, before.type]).toEqual(['FetchError', 'request-timeout']);
    const res = await fetch(`${s.base}/stall`, { timeout: 100 });
    const during = (await rejected(res.text())) as FetchError;
    expect(during.type).toBe('body-timeout');
  });

  it('an answer cut short of its Content-Length fails its body', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(10), () => res.socket?.destroy());
    });
    const res = await fetch(s.base);
    await expect(res.text()).rejects.toThrow(/aborted/);
  });
});

/** Waits (at most 5 s) for `cond`. */
async function until(cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
