/**
 * Raw HTTP for the Dropbox emulator tests: node:http against the emulator, with any Host header
 * (global fetch forbids setting it), so the tests drive the protocol itself, not an SDK.
 */
import http from 'node:http';
import type { Readable } from 'node:stream';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The body parsed as JSON (throws if it is not). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are checked field by field
  json: any;
}

export interface RawRequest {
  method?: string;
  path: string;
  host?: string;
  headers?: Record<string, string>;
  body?: Buffer | string | Readable;
}

export const API = 'api.dropboxapi.com';
export const CONTENT = 'content.dropboxapi.com';

/** One request; resolves with the whole answer, rejects when the connection breaks. */
export function raw(base: string, req: RawRequest): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...req.headers };
    if (req.host) headers.host = req.host;
    if (typeof req.body === 'string' || Buffer.isBuffer(req.body)) headers['content-length'] = String(Buffer.byteLength(req.body));
    const r = http.request(
      { host: u.hostname, port: u.port, method: req.method ?? 'POST', path: req.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text,
            get json() {
              return JSON.parse(text);
            },
          });
        });
      },
    );
    r.on('error', reject);
    if (req.body === undefined) r.end();
    else if (typeof req.body === 'string' || Buffer.isBuffer(req.body)) r.end(req.body);
    else {
      // Headers go out at once, before any body byte (tests hold bodies back to stage races).
      r.flushHeaders();
      req.body.pipe(r);
    }
  });
}

/** The `Dropbox-API-Arg` encoding the docs ask for: JSON with non-ASCII as `\uXXXX`. */
export function headerArg(v: unknown): string {
  return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** An RPC call on api.dropboxapi.com. */
export function rpc(base: string, token: string, route: string, args?: unknown, host = API): Promise<RawResponse> {
  return raw(base, {
    path: `/2/${route}`,
    host,
    headers: { authorization: `Bearer ${token}`, ...(args !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(args !== undefined ? { body: JSON.stringify(args) } : {}),
  });
}

/** A content-upload call on content.dropboxapi.com, args in `Dropbox-API-Arg`. */
export function content(base: string, token: string, route: string, args: unknown, data: Buffer | string | Readable = Buffer.alloc(0), host = CONTENT): Promise<RawResponse> {
  return raw(base, {
    path: `/2/${route}`,
    host,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'dropbox-api-arg': headerArg(args) },
    body: data,
  });
}
