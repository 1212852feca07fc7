/**
 * A bare client for each cloud's chunked upload, for bench/large-files.ts: the emulator's own
 * ceiling on this machine. It speaks the upload protocol the daemon's target uses (Drive's
 * resumable session, Dropbox's upload session, Box's chunked session, OneDrive's upload session),
 * in the chunk size the daemon uses, straight over node:http with one keep-alive connection,
 * and does nothing else: no SDK, no hash (Box's protocol needs each part's SHA-1 and the file's:
 * they are taken before the clock starts), no check of the stored file, the next chunk read
 * into a second buffer while one is sent. What the emulator spends on a byte (its provider's
 * hashes, its writes) is all there is, so the daemon's rate ÷ this one says how much of the
 * emulator's ceiling the daemon reaches on the same two cores.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import http from 'node:http';
import { DEFAULT_CHUNK_SIZE as DROPBOX_CHUNK } from '../../src/targets/dropbox/upload.js';
import { DEFAULT_CHUNK_SIZE as DRIVE_CHUNK } from '../../src/targets/gdrive/api-types.js';
import { DEFAULT_FRAGMENT_SIZE } from '../../src/targets/onedrive/api-types.js';
import type { Cloud } from './emulators.js';

/** The daemon's chunk sizes: Drive's and Dropbox's default chunk, OneDrive's default fragment (Box's part size is the session's). */
const CHUNK: Record<Exclude<Cloud, 'box'>, number> = { gdrive: DRIVE_CHUNK, dropbox: DROPBOX_CHUNK, onedrive: DEFAULT_FRAGMENT_SIZE };

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(agent: http.Agent, url: string, method: string, headers: Record<string, string>, body?: Buffer | string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function ok(a: Answer, what: string, ...statuses: number[]): Answer {
  if (!statuses.includes(a.status)) throw new Error(`bare upload: ${what} answered ${a.status}: ${a.body.slice(0, 300)}`);
  return a;
}

/** Reads the file in `chunk`-sized pieces, in order, into two buffers taken in turn. */
class Chunks {
  readonly #fd: number;
  readonly #bufs: [Buffer, Buffer];
  #turn = 0;
  #pos = 0;

  constructor(
    file: string,
    readonly size: number,
    readonly chunk: number,
  ) {
    this.#fd = openSync(file, 'r');
    this.#bufs = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
  }

  /** The next chunk (its offset and bytes), or null at the end. */
  next(): { offset: number; bytes: Buffer } | null {
    if (this.#pos >= this.size) return null;
    const buf = this.#bufs[this.#turn]!;
    this.#turn ^= 1;
    const len = Math.min(this.chunk, this.size - this.#pos);
    let got = 0;
    while (got < len) got += readSync(this.#fd, buf, got, len - got, this.#pos + got);
    const out = { offset: this.#pos, bytes: buf.subarray(0, len) };
    this.#pos += len;
    return out;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** Sends each chunk, the next read while one is in flight. */
async function sendAll(chunks: Chunks, send: (c: { offset: number; bytes: Buffer }, last: boolean) => Promise<void>): Promise<void> {
  let c = chunks.next();
  while (c !== null) {
    const last = c.offset + c.bytes.length >= chunks.size;
    const sent = send(c, last);
    const next = last ? null : chunks.next();
    await sent;
    c = next;
  }
}

/** Base URL of an endpoint without a trailing slash. */
const base = (u: unknown): string => String(u).replace(/\/+$/, '');

/**
 * Uploads `file` (`size` bytes) to the emulator described by a target block of the emulator
 * child's ready line and its access token; resolves with the seconds from the first request to
 * the last answer (the Box digests are taken before).
 */
export async function bareUpload(cloud: Cloud, target: Record<string, unknown>, token: string, file: string, size: number, name: string): Promise<number> {
  const endpoints = target.endpoints as Record<string, string>;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const bearer = { authorization: `Bearer ${token}` };
  try {
    if (cloud === 'box') return await box(agent, base(endpoints.uploadUrl), bearer, file, size, name);
    const chunks = new Chunks(file, size, CHUNK[cloud]);
    try {
      const t0 = performance.now();
      if (cloud === 'gdrive') {
        const root = base(endpoints.rootUrl);
        const start = ok(
          await request(
            agent,
            `${root}/upload/drive/v3/files?uploadType=resumable`,
            'POST',
            { ...bearer, 'content-type': 'application/json; charset=UTF-8', 'x-upload-content-length': String(size) },
            JSON.stringify({ name }),
          ),
          'Drive session',
          200,
        );
        const session = String(start.headers.location);
        await sendAll(chunks, async ({ offset, bytes }, last) => {
          const range = `bytes ${offset}-${offset + bytes.length - 1}/${size}`;
          ok(await request(agent, session, 'PUT', { 'content-range': range, 'content-length': String(bytes.length) }, bytes), 'Drive chunk', last ? 200 : 308, 200, 201);
        });
      } else if (cloud === 'dropbox') {
        const content = base(endpoints.content);
        const call = (route: string, arg: unknown, bytes: Buffer): Promise<Answer> =>
          request(agent, `${content}/2/files/${route}`, 'POST', { ...bearer, 'content-type': 'application/octet-stream', 'dropbox-api-arg': JSON.stringify(arg), 'content-length': String(bytes.length) }, bytes);
        let sessionId = '';
        await sendAll(chunks, async ({ offset, bytes }, last) => {
          if (offset === 0 && !last) {
            sessionId = (JSON.parse(ok(await call('upload_session/start', { close: false }, bytes), 'Dropbox start', 200).body) as { session_id: string }).session_id;
          } else if (!last) {
            ok(await call('upload_session/append_v2', { cursor: { session_id: sessionId, offset }, close: false }, bytes), 'Dropbox append', 200);
          } else {
            ok(await call('upload_session/finish', { cursor: { session_id: sessionId, offset }, commit: { path: `/${name}`, mode: 'add' } }, bytes), 'Dropbox finish', 200);
          }
        });
      } else {
        const graph = base(endpoints.graph);
        const created = ok(
          await request(agent, `${graph}/v1.0/me/drive/root:/${encodeURIComponent(name)}:/createUploadSession`, 'POST', { ...bearer, 'content-type': 'application/json' }, JSON.stringify({ item: { '@microsoft.graph.conflictBehavior': 'replace' } })),
          'OneDrive session',
          200,
        );
        const uploadUrl = (JSON.parse(created.body) as { uploadUrl: string }).uploadUrl;
        await sendAll(chunks, async ({ offset, bytes }, last) => {
          const range = `bytes ${offset}-${offset + bytes.length - 1}/${size}`;
          ok(await request(agent, uploadUrl, 'PUT', { 'content-range': range, 'content-length': String(bytes.length) }, bytes), 'OneDrive fragment', last ? 201 : 202, 200);
        });
      }
      return (performance.now() - t0) / 1000;
    } finally {
      chunks.close();
    }
  } finally {
    agent.destroy();
  }
}

/** Box: the session, its parts with their Digest, the commit with the file's. */
async function box(agent: http.Agent, upload: string, bearer: Record<string, string>, file: string, size: number, name: string): Promise<number> {
  const created = ok(
    await request(agent, `${upload}/2.0/files/upload_sessions`, 'POST', { ...bearer, 'content-type': 'application/json' }, JSON.stringify({ folder_id: '0', file_size: size, file_name: name })),
    'Box session',
    201,
  );
  const session = JSON.parse(created.body) as { id: string; part_size: number };
  // The digests the protocol needs, before the clock starts: the bare client hashes nothing while it sends.
  const chunks = new Chunks(file, size, session.part_size);
  const partDigests: string[] = [];
  const whole = createHash('sha1');
  for (let c = chunks.next(); c !== null; c = chunks.next()) {
    partDigests.push(createHash('sha1').update(c.bytes).digest('base64'));
    whole.update(c.bytes);
  }
  chunks.close();
  const fileDigest = whole.digest('base64');
  const send = new Chunks(file, size, session.part_size);
  const parts: unknown[] = [];
  try {
    const t0 = performance.now();
    await sendAll(send, async ({ offset, bytes }) => {
      const range = `bytes ${offset}-${offset + bytes.length - 1}/${size}`;
      const digest = partDigests[offset / session.part_size]!;
      const a = ok(
        await request(agent, `${upload}/2.0/files/upload_sessions/${session.id}`, 'PUT', { ...bearer, digest: `sha=${digest}`, 'content-range': range, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) }, bytes),
        'Box part',
        200,
      );
      parts.push((JSON.parse(a.body) as { part: unknown }).part);
    });
    ok(
      await request(agent, `${upload}/2.0/files/upload_sessions/${session.id}/commit`, 'POST', { ...bearer, digest: `sha=${fileDigest}`, 'content-type': 'application/json' }, JSON.stringify({ parts })),
      'Box commit',
      201,
    );
    return (performance.now() - t0) / 1000;
  } finally {
    send.close();
  }
}
