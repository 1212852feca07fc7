/**
 * Small raw-HTTP helpers for the Drive emulator tests: node's fetch, no SDK, no project code.
 */
import type { GdriveEmulator } from './index.js';

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body, or undefined when the body is not JSON. */
  json: any;
}

export async function call(
  emu: GdriveEmulator,
  method: string,
  path: string,
  opts: { token?: string | null; body?: string | Buffer | Uint8Array; headers?: Record<string, string>; json?: unknown } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | Uint8Array | undefined = opts.body;
  if (opts.json !== undefined) {
    headers['content-type'] ??= 'application/json; charset=UTF-8';
    body = JSON.stringify(opts.json);
  }
  const url = /^https?:/.test(path) ? path : `${emu.url}${path}`;
  const res = await fetch(url, { method, headers, body, redirect: 'manual' });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A multipart/related body as Drive documents it. */
export function related(boundary: string, metadata: unknown, media: Buffer, mediaType = 'application/octet-stream'): Buffer {
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${JSON.stringify(metadata)}\r\n`),
    Buffer.from(`--${boundary}\r\nContent-Type: ${mediaType}\r\n\r\n`),
    media,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

/** Deterministic bytes of a given size. */
export function bytes(n: number, seed = 7): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
