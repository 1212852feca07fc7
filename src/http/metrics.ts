import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Pipeline } from '../pipeline/topology.js';

/** The Prometheus side of one HTTP server. */
export interface Metrics {
  readonly registry: Registry;
  /** The exposition text; refreshes the gauges from the store first. */
  render(): Promise<string>;
  readonly contentType: string;
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
 */
export function createMetrics(p: Pick<Pipeline, 'bus' | 'store' | 'targets'> & { node?: string | undefined }): Metrics {
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

  const ids = p.targets.map((t) => t.id);
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

  const offs = [
    p.bus.on('upload.stop', (e) => {
      files.inc({ target: e.target });
      bytes.inc({ target: e.target }, e.bytes);
      sent.inc({ target: e.target }, e.bytesSent);
      duration.observe({ target: e.target }, e.durationMs / 1000);
    }),
    p.bus.on('upload.exception', (e) => failures.inc({ target: e.target, status: e.status })),
    p.bus.on('upload.retry', (e) => retries.inc({ target: e.target })),
    p.bus.on('target.down', (e) => parked.set({ target: e.target }, 1)),
    p.bus.on('target.up', (e) => parked.set({ target: e.target }, 0)),
    p.bus.on('file.remove', (e) => freed.inc({ root: e.root }, e.bytes)),
    p.bus.on('verify.finding', (e) => verifyProblems.inc({ target: e.target, problem: e.problem })),
    p.bus.on('verify.stop', (e) => {
      verifyChecked.inc({ target: e.target }, e.checked);
      verifyErrors.inc({ target: e.target }, e.errors);
      verifyLast.set({ target: e.target }, Date.now() / 1000);
    }),
  ];

  return {
    registry,
    contentType: registry.contentType,
    async render() {
      const [counts, health] = await Promise.all([p.store.counts(), p.store.health()]);
      for (const c of counts) {
        if (!ids.includes(c.target)) continue;
        backlog.set({ target: c.target }, c.pending);
        inFlight.set({ target: c.target }, c.inFlight);
        failedNow.set({ target: c.target }, c.failed);
      }
      for (const h of health) if (ids.includes(h.target)) parked.set({ target: h.target }, h.status === 'down' ? 1 : 0);
      return registry.metrics();
    },
    close() {
      for (const off of offs.splice(0)) off();
    },
  };
}
