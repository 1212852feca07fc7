import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Pipeline } from '../pipeline/topology.js';

/** The Prometheus side of one HTTP server. */
export interface Metrics {
  /** The exposition text and its content type; refreshes the gauges from the store first. */
  render(): Promise<{ text: string; contentType: string }>;
  /** Unsubscribes from the bus. Idempotent. */
  close(): void;
}

/**
 * Prometheus metrics for a pipeline, in a Registry of their own (never prom-client's global one,
 * so two servers or two tests never share counts). Counters and the duration histogram follow the
 * bus events from the moment this is created; backlog, in flight, failed and parked are read from
 * the store at each scrape, so they are right even for what happened before.
 *
 * Metrics (label `target` on each): stagecoach_files_archived_total, stagecoach_bytes_archived_total,
 * stagecoach_bytes_sent_total, stagecoach_delivery_failures_total (label `status`: failed|skipped),
 * stagecoach_upload_retries_total, stagecoach_backlog, stagecoach_in_flight,
 * stagecoach_failed_deliveries, stagecoach_target_parked (0/1),
 * stagecoach_upload_duration_seconds (histogram); from the daemon's scrub (docs/operations.md):
 * stagecoach_verify_checked_total, stagecoach_verify_problems_total (label `problem`:
 * missing|altered), stagecoach_verify_errors_total, stagecoach_verify_last_round_timestamp_seconds;
 * from afterArchive: stagecoach_bytes_freed_total (label `root`). On a journal shared by several
 * daemons every series also carries the label `node` (the daemon's node name).
 *
 * prom-client is loaded on the first bus event or the first scrape, whichever comes first, not
 * at start: a restart with nothing to send never loads it (issue 19 item 3: it and its
 * dependencies were ~20 ms of main-thread CPU before the walk). Events that come while it loads
 * are kept in order and counted once it is there, so no count differs from an eager registry's.
 */
export function createMetrics(p: Pick<Pipeline, 'bus' | 'store' | 'targets'> & { node?: string | undefined }, log?: Pick<Logger, 'error'>): Metrics {
  const ids = p.targets.map((t) => t.id);
  let instruments: Instruments | null = null;
  let loading: Promise<Instruments> | null = null;
  /** Updates that came before prom-client was there, in order; null once it is (or failed). */
  let waiting: Array<(m: Instruments) => void> | null = [];
  let closed = false;
  const load = (): Promise<Instruments> =>
    (loading ??= import('prom-client').then(
      (prom) => {
        const m = buildInstruments(prom, p, ids);
        for (const update of waiting ?? []) update(m);
        waiting = null;
        instruments = m;
        return m;
      },
      (e: unknown) => {
        // Nothing more is kept for a registry that cannot be made; each scrape rejects with why.
        waiting = null;
        log?.error({ err: e }, 'the Prometheus metrics cannot be made: /metrics fails and nothing is counted');
        throw e;
      },
    ));
  const update = (u: (m: Instruments) => void) => {
    if (closed) return;
    if (instruments) return u(instruments);
    waiting?.push(u);
    void load().catch(() => undefined); // logged once by load; each scrape rejects with it
  };

  const offs = [
    p.bus.on('upload.stop', (e) =>
      update((m) => {
        m.files.inc({ target: e.target });
        m.bytes.inc({ target: e.target }, e.bytes);
        m.sent.inc({ target: e.target }, e.bytesSent);
        m.duration.observe({ target: e.target }, e.durationMs / 1000);
      }),
    ),
    p.bus.on('upload.exception', (e) => update((m) => m.failures.inc({ target: e.target, status: e.status }))),
    p.bus.on('upload.retry', (e) => update((m) => m.retries.inc({ target: e.target }))),
    p.bus.on('target.down', (e) => update((m) => m.parked.set({ target: e.target }, 1))),
    p.bus.on('target.up', (e) => update((m) => m.parked.set({ target: e.target }, 0))),
    p.bus.on('file.remove', (e) => update((m) => m.freed.inc({ root: e.root }, e.bytes))),
    p.bus.on('verify.finding', (e) => update((m) => m.verifyProblems.inc({ target: e.target, problem: e.problem }))),
    p.bus.on('verify.stop', (e) => {
      // The time the round ended, not the time prom-client came.
      const at = Date.now() / 1000;
      update((m) => {
        m.verifyChecked.inc({ target: e.target }, e.checked);
        m.verifyErrors.inc({ target: e.target }, e.errors);
        m.verifyLast.set({ target: e.target }, at);
      });
    }),
  ];

  return {
    async render() {
      const m = await load();
      const [counts, health] = await Promise.all([p.store.counts(), p.store.health()]);
      for (const c of counts) {
        if (!ids.includes(c.target)) continue;
        m.backlog.set({ target: c.target }, c.pending);
        m.inFlight.set({ target: c.target }, c.inFlight);
        m.failedNow.set({ target: c.target }, c.failed);
      }
      for (const h of health) if (ids.includes(h.target)) m.parked.set({ target: h.target }, h.status === 'down' ? 1 : 0);
      return { text: await m.registry.metrics(), contentType: m.registry.contentType };
    },
    close() {
      closed = true;
      waiting = null;
      for (const off of offs.splice(0)) off();
    },
  };
}

type Prom = typeof import('prom-client');

/** The registry and every series of createMetrics. */
interface Instruments {
  registry: Registry;
  files: Counter<'target'>;
  bytes: Counter<'target'>;
  sent: Counter<'target'>;
  failures: Counter<'target' | 'status'>;
  retries: Counter<'target'>;
  duration: Histogram<'target'>;
  backlog: Gauge<'target'>;
  inFlight: Gauge<'target'>;
  failedNow: Gauge<'target'>;
  parked: Gauge<'target'>;
  verifyChecked: Counter<'target'>;
  verifyProblems: Counter<'target' | 'problem'>;
  verifyErrors: Counter<'target'>;
  verifyLast: Gauge<'target'>;
  freed: Counter<'root'>;
}

function buildInstruments({ Counter, Gauge, Histogram, Registry }: Prom, p: Pick<Pipeline, 'store'> & { node?: string | undefined }, ids: readonly string[]): Instruments {
  const registry = new Registry();
  // Several daemons on one journal are scraped apart: each series says which daemon it is from.
  if (p.store.nodes && p.node !== undefined) registry.setDefaultLabels({ node: p.node });
  const registers = [registry];
  const labelNames = ['target'] as const;
  const files = new Counter({ name: 'stagecoach_files_archived_total', help: 'Files archived (uploaded or found already there).', labelNames, registers });
  const bytes = new Counter({ name: 'stagecoach_bytes_archived_total', help: 'Size of the files archived, in bytes.', labelNames, registers });
  const sent = new Counter({ name: 'stagecoach_bytes_sent_total', help: 'Bytes actually sent to the target.', labelNames, registers });
  const failures = new Counter({
    name: 'stagecoach_delivery_failures_total',
    help: 'Deliveries that ended without success.',
    labelNames: ['target', 'status'] as const,
    registers,
  });
  const retries = new Counter({ name: 'stagecoach_upload_retries_total', help: 'Upload attempts that failed and were retried.', labelNames, registers });
  const duration = new Histogram({
    name: 'stagecoach_upload_duration_seconds',
    help: 'Duration of successful uploads.',
    labelNames,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    registers,
  });
  const backlog = new Gauge({ name: 'stagecoach_backlog', help: 'Deliveries pending.', labelNames, registers });
  const inFlight = new Gauge({ name: 'stagecoach_in_flight', help: 'Deliveries in flight.', labelNames, registers });
  const failedNow = new Gauge({ name: 'stagecoach_failed_deliveries', help: 'Deliveries failed and not retried yet.', labelNames, registers });
  const parked = new Gauge({ name: 'stagecoach_target_parked', help: '1 while the target is parked.', labelNames, registers });

  const verifyChecked = new Counter({ name: 'stagecoach_verify_checked_total', help: 'Archived copies looked up again by the scrub.', labelNames, registers });
  const verifyProblems = new Counter({
    name: 'stagecoach_verify_problems_total',
    help: 'Archived copies the scrub found missing or altered (each is archived again).',
    labelNames: ['target', 'problem'] as const,
    registers,
  });
  const verifyErrors = new Counter({ name: 'stagecoach_verify_errors_total', help: 'Scrub lookups that failed.', labelNames, registers });
  const verifyLast = new Gauge({ name: 'stagecoach_verify_last_round_timestamp_seconds', help: 'When the last scrub round of the target ended.', labelNames, registers });

  const freed = new Counter({ name: 'stagecoach_bytes_freed_total', help: 'Bytes of local files deleted or moved away by afterArchive.', labelNames: ['root'] as const, registers });

  for (const target of ids) {
    // Series exist from the start, so rate() and alerts see a 0 before the first event.
    files.inc({ target }, 0);
    bytes.inc({ target }, 0);
    sent.inc({ target }, 0);
    retries.inc({ target }, 0);
    failures.inc({ target, status: 'failed' }, 0);
    failures.inc({ target, status: 'skipped' }, 0);
    parked.set({ target }, 0);
    backlog.set({ target }, 0);
    inFlight.set({ target }, 0);
    failedNow.set({ target }, 0);
    verifyChecked.inc({ target }, 0);
    verifyErrors.inc({ target }, 0);
    verifyProblems.inc({ target, problem: 'missing' }, 0);
    verifyProblems.inc({ target, problem: 'altered' }, 0);
  }

  return { registry, files, bytes, sent, failures, retries, duration, backlog, inFlight, failedNow, parked, verifyChecked, verifyProblems, verifyErrors, verifyLast, freed };
}
