/**
 * The shared harness of the provider emulators: a loopback HTTP server, a blob store on disk,
 * fault injection and a request log. Each provider (test/emulators/<id>/) builds on it and owns
 * its protocol, its error shapes and its hashes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, truncate, unlink, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type { BrowseSource } from './browse.js';
import { serveBrowse } from './browse.js';

export type { BrowseEntry, BrowseSource } from './browse.js';

// ---------------------------------------------------------------------------------------------
// Request log

export interface LoggedRequest {
  seq: number;
  at: number;
  method: string;
  host: string;
  /** Path and query as received. */
  url: string;
  status: number;
  /** Bytes of request body the handler consumed (0 when it read none). */
  bodyBytes: number;
  /** The fault injected on this request, if any. */
  fault: FaultKind | null;
  /** Content-Range header of the request, if any (chunk uploads). */
  contentRange: string | null;
}

// ---------------------------------------------------------------------------------------------
// Faults

export type FaultKind = 'latency' | 'status' | 'reset' | 'hang' | 'down';

export interface FaultConfig {
  /** Added to every request before it is handled. */
  latencyMs: number;
  /** Probability (0..1) that a request gets a fault instead of its answer. */
  rate: number;
  /** Which faults `rate` draws from, with weights. */
  mix: Array<{ kind: 'status'; status: 429 | 500 | 502 | 503; retryAfterS?: number; weight: number }
    | { kind: 'reset'; weight: number } | { kind: 'hang'; weight: number }>;
  /** Every request is refused (connection destroyed) while set. */
  down: boolean;
  /** Only requests whose path matches are eligible for random faults (default: all but tokens). */
  match: RegExp | null;
  /** Deterministic faults: the next N requests matching get this fault, before random ones. */
  queue: Array<{ match: RegExp; fault: { kind: 'status'; status: number; retryAfterS?: number; body?: unknown } | { kind: 'reset' } | { kind: 'hang' } }>;
}

export function defaultFaults(): FaultConfig {
  return { latencyMs: 0, rate: 0, mix: [], down: false, match: null, queue: [] };
}

/** A deterministic random source so fault runs can be replayed (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Blobs on disk

export interface BlobInfo {
  /** File holding the bytes. */
  file: string;
  size: number;
}

/** Blobs up to this size are hashed from one synchronous read. */
const SMALL_BLOB = 1 << 20;

/**
 * Bytes live in a temp folder, so a multi-GB upload costs the emulator no memory. Blobs are
 * immutable once stored; an upload session's bytes grow in a SessionFile until it is sealed
 * into one.
 */

export class BlobStore {
  private constructor(readonly dir: string) {}

  static async create(prefix: string): Promise<BlobStore> {
    return new BlobStore(await mkdtemp(path.join(tmpdir(), `stagecoach-emu-${prefix}-`)));
  }

  /** Streams a request (or any readable) to a new blob. Resolves when all bytes are on disk. */
  async write(source: Readable | Buffer, limit?: number): Promise<BlobInfo> {
    const file = path.join(this.dir, randomUUID());
    if (Buffer.isBuffer(source)) {
      await writeFile(file, source);
      return { file, size: source.length };
    }
    let size = 0;
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(file);
      source.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (limit !== undefined && size > limit) {
          source.destroy(new Error('body too large'));
          return;
        }
        if (!out.write(chunk)) {
          source.pause();
          out.once('drain', () => source.resume());
        }
      });
      source.once('end', () => out.end());
      source.once('error', (e) => {
        out.destroy();
        reject(e);
      });
      source.once('aborted', () => {
        out.destroy();
        reject(new Error('request aborted'));
      });
      out.once('finish', resolve);
      out.once('error', reject);
    });
    return { file, size };
  }

  /**
   * Reads a request body (or any readable) into memory while it is at most `max` bytes; a longer
   * one is written to a new blob instead, its bytes held so far first. For a small upload's body
   * that is parsed and dropped: no file to create, read back and remove.
   */
  async hold(source: Readable, max: number): Promise<Buffer | BlobInfo> {
    const chunks: Buffer[] = [];
    let size = 0;
    const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    for (;;) {
      const r = await it.next();
      if (r.done) return Buffer.concat(chunks, size);
      chunks.push(r.value);
      size += r.value.length;
      if (size > max) break;
    }
    const rest = async function* (): AsyncGenerator<Buffer> {
      yield* chunks;
      for (let r = await it.next(); !r.done; r = await it.next()) {
        size += r.value.length;
        yield r.value;
      }
    };
    const file = path.join(this.dir, randomUUID());
    await pipeline(rest, createWriteStream(file));
    return { file, size };
  }

  read(blob: BlobInfo): Readable {
    return createReadStream(blob.file);
  }

  async bytes(blob: BlobInfo): Promise<Buffer> {
    return readFile(blob.file);
  }

  /** Streams a blob through hash functions: one pass, any number of hashes. */
  async hash<T extends Record<string, () => Hasher>>(blob: BlobInfo, hashers: T): Promise<{ [K in keyof T]: string }> {
    const hs = Object.fromEntries(Object.entries(hashers).map(([k, f]) => [k, f()])) as Record<string, Hasher>;
    if (blob.size <= SMALL_BLOB) {
      // A small blob in one synchronous read: a stream's open, reads and close on the thread
      // pool were most of the emulator's own time per small upload.
      const bytes = readFileSync(blob.file);
      for (const h of Object.values(hs)) h.update(bytes);
      return Object.fromEntries(Object.entries(hs).map(([k, h]) => [k, h.digest()])) as { [K in keyof T]: string };
    }
    await new Promise<void>((resolve, reject) => {
      const r = createReadStream(blob.file, { highWaterMark: 1 << 20 });
      r.on('data', (c) => {
        for (const h of Object.values(hs)) h.update(c as Buffer);
      });
      r.once('end', resolve);
      r.once('error', reject);
    });
    return Object.fromEntries(Object.entries(hs).map(([k, h]) => [k, h.digest()])) as { [K in keyof T]: string };
  }

  /** Flips one byte in place: stored content no longer matches what was sent (hash-check tests). */
  async corrupt(blob: BlobInfo): Promise<void> {
    const buf = await readFile(blob.file);
    if (buf.length === 0) return;
    buf[Math.floor(buf.length / 2)]! ^= 0xff;
    await writeFile(blob.file, buf);
  }

  async remove(blob: BlobInfo): Promise<void> {
    await unlink(blob.file).catch(() => undefined);
  }

  async size(blob: BlobInfo): Promise<number> {
    return (await stat(blob.file)).size;
  }

  async destroy(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * An upload session's bytes, kept as a provider keeps them: one file, each part written at its
 * offset (`writeAt`), so committing the session moves no bytes (no part files to concatenate)
 * and the file becomes the stored blob (`seal`). The hashes the provider reports for the whole
 * file are computed as the bytes arrive, while parts come in order: a part written at the end of
 * what is hashed, with no other write in flight, feeds the hashers as it is written, so the
 * commit hashes nothing. Anything else is still exact, only slower: a part beyond a gap is hashed
 * at the seal from the file; a part written over hashed bytes (a chunk resent after the server
 * refused or cut it, a part replaced) or a write that failed after it fed the hashers makes the
 * seal hash the whole file again. Bytes the server did not keep need no call: the next part is
 * written over them, and the seal cuts the file to the size kept.
 */
export class SessionFile<T extends Record<string, () => Hasher>> {
  #hs: Record<string, Hasher>;
  /** Bytes [0, hashed) went through #hs in order. */
  #hashed = 0;
  /** #hs saw bytes that are no longer the file's: hash it all again at the seal. */
  #stale = false;
  #inFlight = 0;
  #idle: Array<() => void> = [];
  /** While a write feeds the hashers: the offsets of writes that started meanwhile. */
  #hashing: number[] | null = null;
  /** The last seal asked for, settled or not. */
  #sealed: Promise<unknown> = Promise.resolve();
  /** Blobs being copied in (`copyIn`), one after the other; why one failed, if one did. */
  #copies: Promise<void> = Promise.resolve();
  #lost: unknown = undefined;

  private constructor(
    readonly file: string,
    private readonly store: BlobStore,
    private readonly hashers: T,
  ) {
    this.#hs = SessionFile.#start(hashers);
  }

  static async create<T extends Record<string, () => Hasher>>(store: BlobStore, hashers: T): Promise<SessionFile<T>> {
    const file = path.join(store.dir, randomUUID());
    await writeFile(file, Buffer.alloc(0));
    return new SessionFile(file, store, hashers);
  }

  /** A session whose bytes are already a blob (a failed one-request upload kept for a retry). */
  static adopt<T extends Record<string, () => Hasher>>(store: BlobStore, blob: BlobInfo, hashers: T): SessionFile<T> {
    return new SessionFile(blob.file, store, hashers);
  }

  static #start(hashers: Record<string, () => Hasher>): Record<string, Hasher> {
    return Object.fromEntries(Object.entries(hashers).map(([k, f]) => [k, f()]));
  }

  /** Bytes of the file hashed so far, in order from 0 (for tests). */
  get hashedBytes(): number {
    return this.#stale ? 0 : this.#hashed;
  }

  /**
   * Streams `source` into the file at `offset`, its first `skip` bytes dropped and at most `keep`
   * bytes written (the rest read and dropped: a body longer than its range must not reach the
   * next part's bytes); `onChunk` sees each byte written (a part's own digest). Fails past
   * `limit` bytes read. Resolves with the bytes read (skipped and dropped ones included) and
   * written; on a failure the bytes written stay in the file until a later part is written over
   * them or the seal cuts them off.
   */
  async writeAt(
    source: Readable,
    offset: number,
    opts: { skip?: number; keep?: number; limit?: number; onChunk?: (c: Buffer) => void } = {},
  ): Promise<{ read: number; written: number }> {
    const skip = opts.skip ?? 0;
    const keep = opts.keep ?? Number.POSITIVE_INFINITY;
    const inOrder = !this.#stale && this.#inFlight === 0 && offset === this.#hashed;
    if (!inOrder && offset < this.#hashed) this.#stale = true;
    // A write that starts while the hashing one streams may land inside what it hashes.
    if (!inOrder) this.#hashing?.push(offset);
    if (inOrder) this.#hashing = [];
    this.#inFlight += 1;
    let read = 0;
    let written = 0;
    const hs = inOrder ? Object.values(this.#hs) : null;
    async function* kept(): AsyncGenerator<Buffer> {
      for await (const raw of source) {
        const c = raw as Buffer;
        const from = Math.max(0, Math.min(c.length, skip - read));
        read += c.length;
        if (opts.limit !== undefined && read > opts.limit) throw new Error('body too large');
        const to = Math.min(c.length, from + keep - written);
        if (from >= to) continue;
        const out = from === 0 && to === c.length ? c : c.subarray(from, to);
        if (hs) for (const h of hs) h.update(out);
        opts.onChunk?.(out);
        written += out.length;
        yield out;
      }
    }
    try {
      await pipeline(kept, createWriteStream(this.file, { flags: 'r+', start: offset }));
      if (inOrder) {
        this.#hashed = offset + written;
        if (this.#hashing!.some((o) => o < this.#hashed)) this.#stale = true;
      }
      return { read, written };
    } catch (e) {
      if (inOrder && written > 0) this.#stale = true;
      throw e;
    } finally {
      if (inOrder) this.#hashing = null;
      this.#inFlight -= 1;
      if (this.#inFlight === 0) for (const wake of this.#idle.splice(0)) wake();
    }
  }

  /**
   * Writes a part received apart (a blob, which is then removed) at `offset`, after the writes in
   * flight: one streaming at that offset was refused, since this one was accepted, so the bytes
   * accepted are the ones that stay. Copies run one after another; one that fails makes the seal
   * fail (the session can no longer be committed).
   */
  copyIn(blob: BlobInfo, offset: number): void {
    this.#copies = this.#copies
      .then(async () => {
        await this.#writesDone();
        await this.writeAt(this.store.read(blob), offset);
        await this.store.remove(blob);
      })
      .catch((e: unknown) => {
        this.#lost ??= e;
      });
  }

  /** Resolves once no write or copy is in flight (a commit waits for the parts still coming in). */
  async idle(): Promise<void> {
    for (;;) {
      const copies = this.#copies;
      await copies;
      await this.#writesDone();
      if (copies === this.#copies && this.#inFlight === 0) return;
    }
  }

  async #writesDone(): Promise<void> {
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /**
   * The session's file cut to `size` bytes, as a blob, with the hashes of exactly those bytes.
   * The blob is the session's file: once the content is placed the caller owns it (and drops the
   * SessionFile without `remove`); if placing fails, the session keeps its bytes and may be
   * sealed again.
   */
  seal(size: number): Promise<{ blob: BlobInfo; hashes: { [K in keyof T]: string } }> {
    // Two commits of one session at once seal one after the other, each over the hashers alone.
    const run = this.#sealed.then(() => this.#seal(size));
    this.#sealed = run.catch(() => undefined);
    return run;
  }

  async #seal(size: number): Promise<{ blob: BlobInfo; hashes: { [K in keyof T]: string } }> {
    if (this.#lost !== undefined) throw this.#lost;
    const { size: onDisk } = await stat(this.file);
    if (onDisk !== size) await truncate(this.file, size);
    if (this.#stale || this.#hashed > size) {
      this.#hs = SessionFile.#start(this.hashers);
      this.#hashed = 0;
    }
    if (this.#hashed < size) {
      await pipeline(createReadStream(this.file, { start: this.#hashed, highWaterMark: 1 << 20 }), async (chunks: AsyncIterable<Buffer>) => {
        for await (const c of chunks) for (const h of Object.values(this.#hs)) h.update(c);
      });
    }
    const hashes = Object.fromEntries(Object.entries(this.#hs).map(([k, h]) => [k, h.digest()])) as { [K in keyof T]: string };
    // A digest ends a node:crypto hash: a second seal starts over.
    this.#stale = true;
    return { blob: { file: this.file, size }, hashes };
  }

  /** Drops the session's bytes (an abandoned or expired session). */
  async remove(): Promise<void> {
    await this.store.remove({ file: this.file, size: 0 });
  }
}

/** The shape every hash in the emulators and in src/archive follows. */
export interface Hasher {
  update(data: Buffer): unknown;
  digest(): string;
}

export const hex = (alg: 'md5' | 'sha1' | 'sha256') => (): Hasher => {
  const h = createHash(alg);
  return { update: (d: Buffer) => h.update(d), digest: () => h.digest('hex') };
};

// ---------------------------------------------------------------------------------------------
// The server

export interface EmulatorRequest {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  method: string;
  /** Host header without the port, lower-case (e.g. `content.dropboxapi.com` or `127.0.0.1`). */
  host: string;
  url: URL;
  /** Marks how many body bytes were consumed, for the request log. */
  countBody(n: number): void;
}

export type EmulatorHandler = (r: EmulatorRequest) => Promise<void> | void;

/** What `faultBody` may know of the request an injected status fault answers. */
export interface FaultContext {
  /** Host header without the port, lower-case. */
  host: string;
  /** URL path, without the query. */
  path: string;
  /** The Retry-After (seconds) the fault was configured with, if any. */
  retryAfterS?: number;
}

export interface ServerOptions {
  name: string;
  port?: number;
  handler: EmulatorHandler;
  /**
   * Renders an injected status fault in the provider's own error shape. `ctx` (optional to
   * implement) tells which request it hit and the Retry-After the fault carries, if any.
   */
  faultBody(status: number, ctx?: FaultContext): { headers?: Record<string, string>; body: unknown };
  /** Paths that random faults never hit (token endpoints by default stay reliable). */
  faultExempt?: RegExp;
  /** The read-only browse page served at `GET /` (browse.ts); never faulted. */
  browse?: BrowseSource;
}

/**
 * A loopback HTTP server with fault injection and a request log. Listens on 127.0.0.1 only.
 */
export class EmulatorServer {
  readonly faults: FaultConfig = defaultFaults();
  readonly log: LoggedRequest[] = [];
  random: () => number = seededRandom(1);
  private server: http.Server | null = null;
  private readonly sockets = new Set<Socket>();
  private seq = 0;
  port = 0;
  /** TCP connections accepted since start (a client that keeps its connections alive opens few). */
  connections = 0;
  /** Requests answered, and the ms from arrival to the answer's end summed over them (latency faults included). */
  readonly served = { count: 0, ms: 0 };

  constructor(private readonly opts: ServerOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const server = http.createServer((req, res) => void this.onRequest(req, res));
    server.keepAliveTimeout = 5_000;
    server.on('connection', (s) => {
      this.connections++;
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** Sets fault injection; unspecified fields keep their values. */
  setFaults(f: Partial<FaultConfig>): void {
    Object.assign(this.faults, f);
  }

  clearFaults(): void {
    Object.assign(this.faults, defaultFaults());
  }

  /** Requests logged whose path matches. */
  requests(match?: RegExp): LoggedRequest[] {
    return match ? this.log.filter((r) => match.test(r.url)) : [...this.log];
  }

  private pickFault(pathname: string): FaultConfig['queue'][number]['fault'] | null {
    const q = this.faults.queue.findIndex((f) => f.match.test(pathname));
    if (q >= 0) return this.faults.queue.splice(q, 1)[0]!.fault;
    if (this.faults.rate <= 0 || this.faults.mix.length === 0) return null;
    if (this.opts.faultExempt?.test(pathname)) return null;
    if (this.faults.match && !this.faults.match.test(pathname)) return null;
    if (this.random() >= this.faults.rate) return null;
    const total = this.faults.mix.reduce((a, m) => a + m.weight, 0);
    let x = this.random() * total;
    for (const m of this.faults.mix) {
      x -= m.weight;
      if (x <= 0) {
        if (m.kind === 'status') return { kind: 'status', status: m.status, retryAfterS: m.retryAfterS };
        return { kind: m.kind };
      }
    }
    return null;
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const entry: LoggedRequest = {
      seq: ++this.seq,
      at: Date.now(),
      method: req.method ?? 'GET',
      host: (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase(),
      url: req.url ?? '/',
      status: 0,
      bodyBytes: 0,
      fault: null,
      contentRange: (req.headers['content-range'] as string | undefined) ?? null,
    };
    this.log.push(entry);
    const arrived = performance.now();
    res.once('finish', () => {
      entry.status = res.statusCode;
      this.served.count++;
      this.served.ms += performance.now() - arrived;
    });
    if (this.faults.down) {
      entry.fault = 'down';
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    const browse = this.opts.browse;
    if (browse && url.pathname === '/' && (entry.method === 'GET' || entry.method === 'HEAD')) {
      try {
        await serveBrowse({ req, res, method: entry.method, host: entry.host, url, countBody: () => undefined }, browse);
      } catch {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      }
      return;
    }
    if (this.faults.latencyMs > 0) await new Promise((r) => setTimeout(r, this.faults.latencyMs));
    const fault = this.pickFault(url.pathname);
    if (fault) {
      entry.fault = fault.kind;
      if (fault.kind === 'reset') {
        // Read a little of the body first, as a connection dropped mid-body would.
        req.once('data', () => req.socket.destroy());
        req.once('end', () => req.socket.destroy());
        setTimeout(() => req.socket.destroy(), 5).unref();
        return;
      }
      if (fault.kind === 'hang') {
        req.resume(); // never answered; the client's timeout or the server's close ends it
        return;
      }
      const rendered =
        'body' in fault && fault.body !== undefined
          ? { body: fault.body }
          : this.opts.faultBody(fault.status, { host: entry.host, path: url.pathname, ...(fault.retryAfterS !== undefined ? { retryAfterS: fault.retryAfterS } : {}) });
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(rendered as { headers?: Record<string, string> }).headers };
      if (fault.retryAfterS !== undefined) headers['retry-after'] = String(fault.retryAfterS);
      req.resume();
      res.writeHead(fault.status, headers);
      res.end(typeof rendered.body === 'string' ? rendered.body : JSON.stringify(rendered.body));
      return;
    }
    try {
      await this.opts.handler({
        req,
        res,
        method: entry.method,
        host: entry.host,
        url,
        countBody: (n) => {
          entry.bodyBytes += n;
        },
      });
    } catch (e) {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'emulator_bug', message: (e as Error).message }));
      } else res.destroy();
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = null;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers for handlers

export async function readBody(r: EmulatorRequest, limit = 64 << 20): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of r.req) {
    n += (c as Buffer).length;
    if (n > limit) throw new Error('body too large');
    chunks.push(c as Buffer);
  }
  r.countBody(n);
  return Buffer.concat(chunks);
}


export function sendJson(r: EmulatorRequest, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  r.res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(data.length), ...headers });
  r.res.end(data);
}

export function sendEmpty(r: EmulatorRequest, status: number, headers: Record<string, string> = {}): void {
  r.res.writeHead(status, { 'content-length': '0', ...headers });
  r.res.end();
}

/** `Authorization: Bearer X` → X, or null. */
export function bearer(r: EmulatorRequest): string | null {
  const h = r.req.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(.+)$/i.exec(h);
  return m ? m[1]!.trim() : null;
}

/** Parses `bytes a-b/total` or `bytes * /total` (no space) or `bytes a-b/*`. */
export function parseContentRange(h: string | undefined): { start: number | null; end: number | null; total: number | null } | null {
  if (!h) return null;
  const m = /^bytes (?:(\d+)-(\d+)|\*)\/(\d+|\*)$/.exec(h.trim());
  if (!m) return null;
  return {
    start: m[1] !== undefined ? Number(m[1]) : null,
    end: m[2] !== undefined ? Number(m[2]) : null,
    total: m[3] === '*' ? null : Number(m[3]),
  };
}

// ---------------------------------------------------------------------------------------------
// Tokens

export interface IssuedToken {
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
}

/**
 * OAuth token bookkeeping every provider shares: access tokens with expiry, refresh tokens that
 * may rotate (single use), and test controls to expire or revoke.
 */
export class TokenBook {
  private readonly access = new Map<string, { expiresAt: number; subject: string }>();
  private readonly refresh = new Map<string, { subject: string; used: boolean }>();
  private readonly revoked = new Set<string>();

  constructor(
    private readonly opts: { ttlS: number; rotateRefresh: boolean; prefix: string },
  ) {}

  /** Registers a refresh token a test hands to the client. */
  addRefreshToken(token: string, subject = 'user'): void {
    this.refresh.set(token, { subject, used: false });
  }

  /** Issues an access token for a subject, and a new refresh token when rotating. */
  issue(subject: string, ttlS = this.opts.ttlS): IssuedToken {
    const accessToken = `${this.opts.prefix}at-${randomUUID()}`;
    const expiresAt = Date.now() + ttlS * 1000;
    this.access.set(accessToken, { expiresAt, subject });
    let refreshToken = '';
    if (this.opts.rotateRefresh) {
      refreshToken = `${this.opts.prefix}rt-${randomUUID()}`;
      this.refresh.set(refreshToken, { subject, used: false });
    }
    return { accessToken, refreshToken, expiresAt };
  }

  /** A refresh grant: the new tokens, or the OAuth error code. */
  redeem(refreshToken: string, ttlS = this.opts.ttlS): IssuedToken | { error: 'invalid_grant' } {
    const r = this.refresh.get(refreshToken);
    if (!r || r.used || this.revoked.has(r.subject)) return { error: 'invalid_grant' };
    if (this.opts.rotateRefresh) r.used = true;
    const t = this.issue(r.subject, ttlS);
    if (!this.opts.rotateRefresh) t.refreshToken = refreshToken;
    return t;
  }

  /** 'ok', 'expired' or 'invalid' for an access token. */
  check(accessToken: string | null): 'ok' | 'expired' | 'invalid' {
    if (!accessToken) return 'invalid';
    const a = this.access.get(accessToken);
    if (!a || this.revoked.has(a.subject)) return 'invalid';
    return a.expiresAt <= Date.now() ? 'expired' : 'ok';
  }

  /** Test control: every access token issued so far expires now. */
  expireAll(): void {
    for (const a of this.access.values()) a.expiresAt = 0;
  }

  /** Test control: the subject's tokens (access and refresh) stop working. */
  revoke(subject = 'user'): void {
    this.revoked.add(subject);
  }

  unrevoke(subject = 'user'): void {
    this.revoked.delete(subject);
  }

  /** How many refresh grants succeeded (rotation tests). */
  get refreshTokens(): number {
    return this.refresh.size;
  }
}

/** The interface every provider emulator exposes to tests and to `npm run emulators`. */
export interface Emulator {
  readonly name: 'gdrive' | 'dropbox' | 'box' | 'onedrive';
  readonly server: EmulatorServer;
  readonly blobs: BlobStore;
  /** Base URL on loopback, e.g. http://127.0.0.1:PORT */
  readonly url: string;
  readonly tokens: TokenBook;
  /** The stored tree: every file with its remote path, size, provider hash and blob. */
  tree(): Promise<Array<{ path: string; id: string; size: number; hash: string; blob: BlobInfo }>>;
  /** Flips a byte of the stored file at `path` (hash-check tests). */
  corrupt(path: string): Promise<void>;
  close(): Promise<void>;
}
