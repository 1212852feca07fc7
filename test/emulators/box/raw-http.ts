/**
 * Raw HTTP helpers for the Box emulator's protocol tests: no SDK, no product code. `call` goes
 * through node:http so a test can set the Host header (fetch cannot), which is how the tests
 * prove host-based dispatch.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';

/** A whole response as the tests inspect it. */
export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON, or undefined when empty or not JSON. */
  json: any;
}

/** Options of `call`. */
export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Overrides the Host header (e.g. `upload.box.com`). */
  host?: string;
  token?: string;
}

/** One request to `base + path`; resolves with status, headers and the whole body. */
export function call(base: string, path: string, opts: CallOptions = {}): Promise<RawResponse> {
  const u = new URL(path, base);
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.host) headers.host = opts.host;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? 'GET', headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          let json: unknown;
          try {
            json = buf.length ? JSON.parse(buf.toString('utf8')) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: buf, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Content type of JSON bodies. */
export const jsonHeaders = { 'content-type': 'application/json' };

/** A token request body (form-encoded). */
export function form(fields: Record<string, string>): { body: string; headers: Record<string, string> } {
  return { body: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
}

/** A multipart/form-data body with the given parts in order (as Box's upload expects). */
export function multipart(parts: Array<{ name: string; value: Buffer | string; filename?: string }>): { body: Buffer; headers: Record<string, string> } {
  const boundary = `----stagecoach${createHash('md5').update(String(parts.length) + String(Math.random())).digest('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    const type = p.filename !== undefined ? '\r\nContent-Type: application/octet-stream' : '';
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}${type}\r\n\r\n`));
    chunks.push(typeof p.value === 'string' ? Buffer.from(p.value) : p.value);
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** The direct-upload body: `attributes` JSON, then `file`. */
export function uploadBody(attributes: Record<string, unknown>, content: Buffer): { body: Buffer; headers: Record<string, string> } {
  return multipart([
    { name: 'attributes', value: JSON.stringify(attributes) },
    { name: 'file', value: content, filename: 'unused-name' },
  ]);
}

/** Hex SHA-1 (Box's `sha1` field). */
export const sha1hex = (b: Buffer): string => createHash('sha1').update(b).digest('hex');
/** Base64 SHA-1 (the value of Box's `Digest: sha=` header). */
export const sha1b64 = (b: Buffer): string => createHash('sha1').update(b).digest('base64');

/** Deterministic bytes (xorshift32), so big test files cost no entropy and replay. */
export function pattern(size: number, seed = 1): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, size);
}
