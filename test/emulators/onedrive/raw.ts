/**
 * Raw HTTP for the emulator's protocol tests: node:http (not an SDK, not our src), so tests set
 * any header (Host included) and see status, headers and body exactly as sent.
 */
import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Parsed JSON body (undefined when not JSON); `any` so tests can read any field. */
  json: any;
}

export interface RawOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Bearer token for Authorization. */
  token?: string;
  /** Send the body with Transfer-Encoding: chunked (no Content-Length). */
  chunked?: boolean;
}

/** One request to `base` + `path` (path includes the query). */
export function raw(base: string, method: string, path: string, opts: RawOptions = {}): Promise<RawResponse> {
  const url = new URL(path, base);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
  if (body && !opts.chunked && headers['content-length'] === undefined) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          let json: unknown;
          if (String(res.headers['content-type'] ?? '').includes('json')) {
            try {
              json = JSON.parse(b.toString('utf8'));
            } catch {
              json = undefined;
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, json });
        });
      },
    );
    req.on('error', reject);
    if (body && opts.chunked) {
      req.write(body);
      req.end();
    } else req.end(body);
  });
}

/** Form-encoded POST (token endpoints). */
export function form(base: string, path: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<RawResponse> {
  return raw(base, 'POST', path, {
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/** JSON POST/PATCH with a token. */
export function jsonCall(base: string, method: string, path: string, token: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return raw(base, method, path, { token, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** Encodes each segment of a drive path for path addressing. */
export function encPath(p: string): string {
  return p.split('/').map((s) => encodeURIComponent(s)).join('/');
}
