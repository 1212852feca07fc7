import { timingSafeEqual, createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { StagecoachError } from '../errors.js';
import type { Pipeline } from '../pipeline/topology.js';
import type { DeliveryRecord, RenamedRemote, TargetCounts, TargetHealth } from '../state/store.js';
import { Throughput, type ThroughputSample } from './activity.js';
import { checkHealth, type HealthReport } from './health.js';
import { createMetrics } from './metrics.js';
import { STATUS_PAGE } from './page.js';

export interface HttpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** When set, every route but `/healthz` and `/` wants `Authorization: Bearer <token>`. */
  token?: string | null;
  log: Logger;
  /** How many recent failures and archived files /api/status lists. Default 20. */
  recentLimit?: number;
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
  }>;
  failures: DeliveryRecord[];
  lastFiles: DeliveryRecord[];
  /** Files stored under another name than their template gave: another file owns that name there. */
  renamed: RenamedRemote[];
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

function hostOf(header: string | undefined): string {
  if (!header) return '';
  const m = /^(\[[^\]]*\]|[^:]*)/.exec(header);
  return (m?.[1] ?? '').toLowerCase();
}

/** No Origin (curl, scripts) is fine; a browser's Origin must be this very server. */
function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  try {
    return new URL(origin).host.toLowerCase() === (host ?? '').toLowerCase();
  } catch {
    return false;
  }
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
 * - `POST /api/targets/:id/retry-failed`: failed deliveries of the target back to pending, then
 *   the archiver is poked so they are leased; `{requeued: n}`; 404 for an unknown target.
 * - `GET /`: the status page (static; its data comes from /api/status, so it is open).
 *
 * Guards: with a token, other routes answer 401 without `Authorization: Bearer <token>`. When
 * bound to loopback, a Host header that is not a loopback name gets 403 (DNS rebinding), and a
 * POST whose Origin is not this server gets 403 (cross-site requests), token or not.
 * Resolves once listening; callers must `close()` it before stopping the pipeline.
 */
export async function startHttpServer(pipeline: Pipeline, opts: HttpServerOptions): Promise<HttpServer> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? null;
  const limit = opts.recentLimit ?? 20;
  const log = opts.log.child({ stage: 'http' });
  const metrics = createMetrics(pipeline);
  const throughput = new Throughput(pipeline.bus);
  const loopbackOnly = LOOPBACK_HOSTS.has(host.toLowerCase());
  const typeOf = new Map(pipeline.targets.map((t) => [t.id, t.type]));

  const send = (res: http.ServerResponse, status: number, body: string, type: string) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(body);
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => send(res, status, JSON.stringify(body), 'application/json; charset=utf-8');

  const status = async (): Promise<StatusBody> => {
    const [health, counts, healthRows, failures, lastFiles, renamed] = await Promise.all([
      checkHealth(pipeline),
      pipeline.store.counts(),
      pipeline.store.health(),
      pipeline.store.recent({ status: 'failed', limit }),
      pipeline.store.recent({ status: 'done', limit }),
      pipeline.store.renamed(limit),
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
        };
      }),
      failures: failures.filter((d) => ids.has(d.target)),
      lastFiles: lastFiles.filter((d) => ids.has(d.target)),
      renamed: renamed.filter((r) => ids.has(r.target)),
    };
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    if (loopbackOnly && !LOOPBACK_HOSTS.has(hostOf(req.headers.host))) return json(res, 403, { error: 'Host is not a loopback name' });
    const auth = req.headers.authorization ?? '';
    const authed = token === null || (auth.startsWith('Bearer ') && sameSecret(auth.slice(7).trim(), token));

    if (url.pathname === '/healthz' && (method === 'GET' || method === 'HEAD')) {
      const h = await checkHealth(pipeline);
      const body = authed ? h : { ok: h.ok, reasons: h.reasons.map((r) => ({ check: r.check, ...(r.target ? { target: r.target } : {}), reason: r.target ? `target ${r.target} is parked` : r.check })) };
      return json(res, h.ok ? 200 : 503, body);
    }
    if (url.pathname === '/' && (method === 'GET' || method === 'HEAD')) return send(res, 200, STATUS_PAGE, 'text/html; charset=utf-8');
    if (!authed) {
      res.setHeader('www-authenticate', 'Bearer realm="stagecoach"');
      return json(res, 401, { error: 'a bearer token is required' });
    }
    if (url.pathname === '/metrics' && method === 'GET') return send(res, 200, await metrics.render(), metrics.contentType);
    if (url.pathname === '/api/status' && method === 'GET') return json(res, 200, await status());
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
    return json(res, 404, { error: 'not found' });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      log.error({ err: e, url: req.url }, 'http request failed');
      if (!res.headersSent) json(res, 500, { error: e instanceof Error ? e.message : String(e) });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new StagecoachError('http.listen', `[stagecoach] [http] cannot listen on ${host}:${opts.port}: ${e.message}`, { cause: e })));
    server.listen(opts.port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${shown}:${addr.port}/`;
  log.info({ url, token: token !== null }, 'http server listening');
  if (!loopbackOnly && token === null) log.warn({ url }, 'the http server is reachable from the network without a token: set http.token');

  let closing: Promise<void> | undefined;
  return {
    url,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        metrics.close();
        throughput.close();
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
