import { timingSafeEqual, createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { StagecoachError } from '../errors.js';
import type { Pipeline } from '../pipeline/topology.js';
import type { DeliveryRecord, NodeInfo, RenamedRemote, TargetCounts, TargetHealth } from '../state/store.js';
import { Throughput, type ThroughputSample } from './activity.js';
import { VerifyState, type VerifyStatus } from './verify-state.js';
import type { AuditStore } from '../state/audit.js';
import type { RootStatus } from '../pipeline/watch-source.js';
import { checkHealth, type HealthReport } from './health.js';
import { connectionCap, hostAllowlist, isLoopbackHost, limitConnections, openFileLimit } from './connections.js';
import { createMetrics } from './metrics.js';
import { createSignInSessions, type SignInHandler } from './sign-in.js';
import { STATUS_PAGE, STATUS_SCRIPT, STATUS_STYLE } from './page.js';

export interface HttpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port (tests). */
  port: number;
  /**
   * When set, every route but `/healthz` and the page's files wants `Authorization: Bearer
   * <token>`. At least {@link MIN_TOKEN_LENGTH} characters; required unless `host` is loopback.
   */
  token?: string | null;
  /** Host names answered besides IP addresses, localhost and the bind address (http.allowedHosts). */
  allowedHosts?: readonly string[];
  /** Connections kept open at most. Default: derived from the descriptor limit (connectionCap). */
  maxConnections?: number;
  /** Time a client has to send its request headers. Default 10 s. */
  headersTimeoutMs?: number;
  /** Time a client has to send its whole request. Default 30 s. */
  requestTimeoutMs?: number;
  /** How long a request with a wrong token waits for its 401. Default 1 s. */
  failedAuthDelayMs?: number;
  log: Logger;
  /** How many recent failures and archived files /api/status lists. Default 20. */
  recentLimit?: number;
  /** Signs cloud targets in from the page ("Connect"); without it the page has no Connect. */
  signIn?: SignInHandler;
}

export interface HttpServer {
  /** `http://host:port/`, with the port actually bound. */
  readonly url: string;
  /** Stops listening, ends keep-alive connections, unsubscribes from the bus. Idempotent. */
  close(): Promise<void>;
}

/** The body of `GET /api/status`. */
export interface StatusBody {
  at: number;
  health: HealthReport;
  targets: Array<{
    id: string;
    type: string;
    /** The supervisor's state of its uploader: running, restarting, parked… */
    state: string;
    counts: Omit<TargetCounts, 'target'>;
    health: Omit<TargetHealth, 'target'>;
    /** Files archived per minute, last hour, oldest first. */
    throughput: ThroughputSample[];
    /** Whether the page can sign it in ("Connect"). */
    signIn: boolean;
  }>;
  /** Each watched root: present, or missing with `waiting for <path> to appear`. */
  roots: RootStatus[];
  failures: DeliveryRecord[];
  lastFiles: DeliveryRecord[];
  /** Files stored under another name than their template gave: another file owns that name there. */
  renamed: RenamedRemote[];
  /** The daemon's scrub since start (`verify.every`); empty when it is off. */
  verify: VerifyStatus;
  /** Bytes of local files the after-archive policy deleted or moved away, ever (from the journal). */
  freedBytes: number;
  /** On a journal shared by several daemons: this daemon's node name and every node. */
  node?: string;
  nodes?: NodeInfo[];
  /** On a PostgreSQL journal: whether it answers (`reachable: false` while its calls wait and retry). */
  journal?: { reachable: boolean; since: number; error: string | null };
}

/**
 * Sent with every answer. The page loads only its own script, style and API (nothing inline,
 * see page.ts), cannot be framed (clickjacking), and leaks no address in a Referer.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** The body of `GET /api/search?q=…`: the files whose path contains q, each with its copy on every target. */
export interface SearchBody {
  query: string;
  files: Array<{
    root: string;
    relPath: string;
    size: number;
    deliveries: Array<{
      target: string;
      /** pending, in_flight, done, failed or skipped. */
      status: string;
      remotePath: string;
      /** The provider's hash of the copy, when verified. */
      hash: string | null;
      /** When the copy was verified (epoch ms); null unless done. */
      verifiedAt: number | null;
      /** Why it failed or was skipped (or the last error of one still being retried). */
      reason: string | null;
      attempts: number;
    }>;
  }>;
}

/** At most this many files per search. */
const SEARCH_LIMIT = 50;

/** The shortest http.token accepted: a guessable token is no guard on a network. */
export const MIN_TOKEN_LENGTH = 24;

/** At most one log line per this long about wrong tokens, and one about shed connections. */
const LOG_EVERY_MS = 60_000;

/** No Origin (curl, scripts) is fine; a browser's Origin must be this very server. */
function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  try {
    return new URL(origin).host.toLowerCase() === (host ?? '').toLowerCase();
  } catch {
    return false;
  }
}

/** The request body as text, at most `max` bytes (more is refused with an error). */
function readBody(req: http.IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.destroy();
        reject(new StagecoachError('http.body-too-large', `[stagecoach] [http] request body over ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

function sameSecret(a: string, b: string): boolean {
  // Hash first: timingSafeEqual wants equal lengths, and lengths must not leak either.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/**
 * Starts the operations HTTP server on node:http, bound to `host` (127.0.0.1 by default).
 *
 * Routes:
 * - `GET /healthz`: 200 `{ok:true,reasons:[]}` while the pipeline runs, the store answers and no
 *   target is parked; else 503 with the reasons (a parked target is named). Open without the
 *   token, so Docker HEALTHCHECK and NAS monitors can call it; without a valid token the reasons'
 *   text is reduced to the target names.
 * - `GET /metrics`: Prometheus text (see createMetrics).
 * - `GET /api/status`: {@link StatusBody}.
 * - `GET /api/search?q=…`: {@link SearchBody}, the files (at most 50) whose path contains `q`.
 * - With `signIn`: `POST /api/targets/:id/connect` starts the target's sign-in (as `stagecoach
 *   auth`) and answers with what to do (SignInState: the lines, the question); `POST
 *   …/connect/answer` `{"answer": "…"}` gives the pasted address or code; `GET …/connect` is the
 *   state (device code: done once approved). Same-origin POSTs only, token as for /api.
 * - `POST /api/targets/:id/retry-failed`: failed deliveries of the target back to pending, then
 *   the archiver is poked so they are leased; `{requeued: n}`; 404 for an unknown target.
 * - `POST /api/targets/:id/retry`: a parked target is tried at once; `{retried}` (false when it
 *   was not parked); 404 for an unknown target.
 * - `GET /`, `/app.js`, `/app.css`: the status page, its script and style (static; its data comes
 *   from /api/status, so they are open).
 *
 * Guards, whatever the bind: a Host header outside the allowlist (see hostAllowlist) gets 403
 * (DNS rebinding); a POST whose Origin is not this server gets 403 (cross-site requests); with a
 * token, other routes answer 401 without `Authorization: Bearer <token>`, and a wrong token waits
 * `failedAuthDelayMs` for it and is logged (one line a minute at most, with the count). Every
 * answer carries {@link SECURITY_HEADERS}; a URL that cannot be decoded gets 400. Connections are
 * capped (limitConnections) and must send their headers within `headersTimeoutMs`.
 *
 * Throws StagecoachError `http.token` before listening when the token is shorter than
 * {@link MIN_TOKEN_LENGTH}, or missing while `host` is not loopback.
 * Resolves once listening; callers must `close()` it before stopping the pipeline.
 */
export async function startHttpServer(pipeline: Pipeline, opts: HttpServerOptions): Promise<HttpServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? null;
  const limit = opts.recentLimit ?? 20;
  const log = opts.log.child({ stage: 'http' });
  if (token !== null && token.length < MIN_TOKEN_LENGTH) {
    throw new StagecoachError('http.token', `[stagecoach] [http] http.token is ${token.length} characters long; it must have at least ${MIN_TOKEN_LENGTH} (make one with: openssl rand -hex 24)`);
  }
  if (!isLoopbackHost(host) && token === null) {
    throw new StagecoachError('http.token', `[stagecoach] [http] http.listen is ${host}, reachable from the network, and http.token is not set: set a token of at least ${MIN_TOKEN_LENGTH} characters, or listen on 127.0.0.1`);
  }
  const metrics = createMetrics(pipeline, log);
  const throughput = new Throughput(pipeline.bus);
  const verifyState = new VerifyState(pipeline.bus);
  const hostAllowed = hostAllowlist(host, opts.allowedHosts ?? []);
  const failedAuthDelayMs = opts.failedAuthDelayMs ?? 1000;
  let wrongTokens = 0;
  let wrongTokenLoggedAt = -Infinity;
  const wrongToken = async (req: http.IncomingMessage, pathname: string) => {
    wrongTokens++;
    if (Date.now() - wrongTokenLoggedAt >= LOG_EVERY_MS) {
      log.warn({ failures: wrongTokens, from: req.socket.remoteAddress, path: pathname }, 'requests with a wrong http token refused');
      wrongTokens = 0;
      wrongTokenLoggedAt = Date.now();
    }
    await new Promise((r) => setTimeout(r, failedAuthDelayMs));
  };
  const signIns = opts.signIn ? createSignInSessions(opts.signIn, log) : null;
  const typeOf = new Map(pipeline.targets.map((t) => [t.id, t.type]));

  const send = (res: http.ServerResponse, status: number, body: string, type: string) => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => send(res, status, JSON.stringify(body), 'application/json; charset=utf-8');

  const status = async (): Promise<StatusBody> => {
    // An unreachable journal's reads would wait for it: the page says so at once instead.
    const reach = pipeline.store.reachability?.();
    const down = reach?.reachable === false;
    const [health, counts, healthRows, failures, lastFiles, renamed] = await Promise.all([
      checkHealth(pipeline),
      down ? [] : pipeline.store.counts(),
      down ? [] : pipeline.store.health(),
      down ? [] : pipeline.store.recent({ status: 'failed', limit }),
      down ? [] : pipeline.store.recent({ status: 'done', limit }),
      down ? [] : pipeline.store.renamed(limit),
    ]);
    const sup = pipeline.supervisor.status();
    const ids = new Set(typeOf.keys());
    return {
      at: Date.now(),
      health,
      targets: [...typeOf].map(([id, type]) => {
        const c = counts.find((x) => x.target === id);
        const h = healthRows.find((x) => x.target === id);
        return {
          id,
          type,
          state: sup[id]?.state ?? 'stopped',
          counts: { pending: c?.pending ?? 0, inFlight: c?.inFlight ?? 0, done: c?.done ?? 0, failed: c?.failed ?? 0, skipped: c?.skipped ?? 0 },
          health: { status: h?.status ?? 'up', reason: h?.reason ?? null, since: h?.since ?? 0, retryAt: h?.retryAt ?? null },
          throughput: throughput.samples(id),
          signIn: opts.signIn?.can(id) ?? false,
        };
      }),
      roots: pipeline.watcher.source.roots(),
      failures: failures.filter((d) => ids.has(d.target)),
      lastFiles: lastFiles.filter((d) => ids.has(d.target)),
      renamed: renamed.filter((r) => ids.has(r.target)),
      verify: verifyState.status(),
      freedBytes: down ? 0 : ((await (pipeline.store as { audit?: AuditStore }).audit?.freedBytes()) ?? 0),
      ...(pipeline.store.nodes && !down ? { node: pipeline.node, nodes: await pipeline.store.nodes() } : {}),
      ...(reach ? { journal: reach } : {}),
    };
  };

  const search = async (query: string): Promise<SearchBody> => {
    const q = query.trim().slice(0, 500);
    if (q === '' || !pipeline.store.search) return { query: q, files: [] };
    const rows = await pipeline.store.search({ query: q, limit: SEARCH_LIMIT });
    const files = new Map<string, SearchBody['files'][number]>();
    for (const d of rows) {
      if (!typeOf.has(d.target)) continue;
      const key = `${d.root}\u0000${d.relPath}`;
      let f = files.get(key);
      if (!f) files.set(key, (f = { root: d.root, relPath: d.relPath, size: d.size, deliveries: [] }));
      f.deliveries.push({
        target: d.target,
        status: d.status,
        remotePath: d.remotePath,
        hash: d.remoteHash,
        verifiedAt: d.status === 'done' ? d.updatedAt : null,
        reason: d.status === 'done' ? null : d.lastError,
        attempts: d.attempts,
      });
    }
    return { query: q, files: [...files.values()] };
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const method = req.method ?? 'GET';
    if (!hostAllowed(req.headers.host)) return json(res, 403, { error: 'this Host is not allowed: add its name to http.allowedHosts' });
    let url: URL;
    try {
      // The path only: a request-target such as //evil.example must not become a host.
      url = new URL(`http://localhost${(req.url ?? '/').startsWith('/') ? req.url : `/${req.url}`}`);
      decodeURIComponent(url.pathname);
    } catch {
      return json(res, 400, { error: 'bad URL' });
    }
    const auth = req.headers.authorization ?? '';
    const authed = token === null || (auth.startsWith('Bearer ') && sameSecret(auth.slice(7).trim(), token));
    if (!authed && auth !== '') await wrongToken(req, url.pathname);

    if (url.pathname === '/healthz' && (method === 'GET' || method === 'HEAD')) {
      const h = await checkHealth(pipeline);
      const body = authed
        ? h
        : {
            ok: h.ok,
            reasons: h.reasons.map((r) => ({
              check: r.check,
              ...(r.target ? { target: r.target } : {}),
              ...(r.root ? { root: r.root } : {}),
              reason: r.target ? `target ${r.target} is ${/ is parked: /.test(r.reason) ? 'parked' : 'retrying'}` : r.root ? `root ${r.root} is missing` : r.check,
            })),
          };
      return json(res, h.ok ? 200 : 503, body);
    }
    if (method === 'GET' || method === 'HEAD') {
      if (url.pathname === '/') return send(res, 200, STATUS_PAGE, 'text/html; charset=utf-8');
      if (url.pathname === '/app.js') return send(res, 200, STATUS_SCRIPT, 'text/javascript; charset=utf-8');
      if (url.pathname === '/app.css') return send(res, 200, STATUS_STYLE, 'text/css; charset=utf-8');
    }
    if (!authed) {
      res.setHeader('www-authenticate', 'Bearer realm="stagecoach"');
      return json(res, 401, { error: 'a bearer token is required' });
    }
    if (url.pathname === '/metrics' && method === 'GET') {
      const { text, contentType } = await metrics.render();
      return send(res, 200, text, contentType);
    }
    if (url.pathname === '/api/status' && method === 'GET') return json(res, 200, await status());
    if (url.pathname === '/api/search' && method === 'GET') return json(res, 200, await search(url.searchParams.get('q') ?? ''));
    const retry = /^\/api\/targets\/([^/]+)\/retry-failed$/.exec(url.pathname);
    if (retry && method === 'POST') {
      if (!sameOrigin(req.headers.origin, req.headers.host)) return json(res, 403, { error: 'cross-origin request refused' });
      const id = decodeURIComponent(retry[1]!);
      if (!typeOf.has(id)) return json(res, 404, { error: `no target ${id}` });
      const requeued = await pipeline.store.retryFailed(id);
      pipeline.archiver.poke(id);
      log.info({ target: id, requeued }, 'failed deliveries requeued from the status page');
      return json(res, 200, { target: id, requeued });
    }
    const tryNow = /^\/api\/targets\/([^/]+)\/retry$/.exec(url.pathname);
    if (tryNow && method === 'POST') {
      if (!sameOrigin(req.headers.origin, req.headers.host)) return json(res, 403, { error: 'cross-origin request refused' });
      const id = decodeURIComponent(tryNow[1]!);
      if (!typeOf.has(id)) return json(res, 404, { error: `no target ${id}` });
      const retried = pipeline.supervisor.retryNow(id);
      log.info({ target: id, retried }, retried ? 'trying the parked target now, from the status page' : 'a retry was asked, but the target is not parked');
      return json(res, 200, { target: id, retried });
    }
    const connect = /^\/api\/targets\/([^/]+)\/connect(\/answer)?$/.exec(url.pathname);
    if (connect && signIns) {
      const id = decodeURIComponent(connect[1]!);
      if (!typeOf.has(id)) return json(res, 404, { error: `no target ${id}` });
      if (!opts.signIn!.can(id)) return json(res, 400, { error: `target ${id} needs no sign-in` });
      if (method === 'GET' && !connect[2]) {
        const s = signIns.get(id);
        return s ? json(res, 200, s) : json(res, 404, { error: 'no sign-in under way' });
      }
      if (method !== 'POST') return json(res, 405, { error: 'method not allowed' });
      if (!sameOrigin(req.headers.origin, req.headers.host)) return json(res, 403, { error: 'cross-origin request refused' });
      if (!connect[2]) return json(res, 200, await signIns.start(id));
      const body = await readBody(req, 16 * 1024);
      let answer: unknown;
      try {
        answer = (JSON.parse(body) as { answer?: unknown }).answer;
      } catch {
        answer = undefined;
      }
      if (typeof answer !== 'string') return json(res, 400, { error: 'expected {"answer": "<the address or code>"}' });
      const s = await signIns.answer(id, answer);
      return s ? json(res, 200, s) : json(res, 409, { error: 'the sign-in asks nothing now: start it again' });
    }
    return json(res, 404, { error: 'not found' });
  };

  const headersTimeoutMs = opts.headersTimeoutMs ?? 10_000;
  const server = http.createServer({ headersTimeout: headersTimeoutMs, requestTimeout: opts.requestTimeoutMs ?? 30_000, connectionsCheckingInterval: 1000 }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.error({ err: e, url: req.url }, 'http request failed');
      if (!res.headersSent) json(res, 500, { error: e instanceof Error ? e.message : String(e) });
      else res.end();
    });
  });
  server.keepAliveTimeout = 5000;
  // headersTimeout starts with the first byte: a connection that sends none is closed when idle as long.
  server.timeout = headersTimeoutMs;
  const cap = opts.maxConnections ?? connectionCap(openFileLimit());
  let shedLoggedAt = -Infinity;
  const connections = limitConnections(server, cap, () => {
    if (Date.now() - shedLoggedAt < LOG_EVERY_MS) return;
    shedLoggedAt = Date.now();
    log.warn({ cap, shed: connections.shed }, 'http connections at the cap: the oldest idle ones are closed');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new StagecoachError('http.listen', `[stagecoach] [http] cannot listen on ${host}:${opts.port}: ${e.message}`, { cause: e })));
    server.listen(opts.port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${shown}:${addr.port}/`;
  // Not `token:`: a field of that name is always redacted, which read as if a token were set.
  log.info({ url, tokenRequired: token !== null, maxConnections: cap }, 'http server listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        signIns?.close();
        metrics.close();
        throughput.close();
        verifyState.close();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
