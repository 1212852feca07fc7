import type { Pipeline } from '../pipeline/topology.js';

/** One reason the daemon is not healthy. `target` is set when a target is the cause. */
export interface HealthReason {
  check: 'pipeline' | 'store' | 'target' | 'root';
  target?: string;
  /** Set when a watched root is the cause (missing: `waiting for <path> to appear`). */
  root?: string;
  reason: string;
}

export interface HealthReport {
  ok: boolean;
  reasons: HealthReason[];
}

/** The part of the pipeline a health check reads. */
export type HealthSource = Pick<Pipeline, 'store' | 'supervisor' | 'targets'> & {
  watcher?: { source: { roots(): Array<{ name: string; present: boolean; reason?: string }> } };
};

/**
 * Checks that the pipeline runs, that the store answers within `storeTimeoutMs`, and that no
 * target is parked or retrying. Guarantees: never throws; `ok` is true exactly when `reasons` is
 * empty; a parked target gives one reason naming it, with the parking reason; a target whose
 * uploads are being retried gives `target <id> is retrying: <why> (attempt n, next in s)`; a
 * missing root one naming the root (`waiting for <path> to appear`).
 */
export async function checkHealth(p: HealthSource, opts: { storeTimeoutMs?: number } = {}): Promise<HealthReport> {
  const reasons: HealthReason[] = [];
  const status = p.supervisor.status();
  const children = Object.values(status);
  if (children.length > 0 && children.every((c) => c.state === 'stopped')) {
    reasons.push({ check: 'pipeline', reason: 'the pipeline is stopped' });
  }
  const ids = new Set(p.targets.map((t) => t.id));
  const parked = new Map<string, string>();
  const retrying = new Map<string, string>();
  for (const [id, s] of Object.entries(status)) {
    if (s.state === 'parked' && ids.has(id)) parked.set(id, s.reason ?? 'parked');
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const health = await Promise.race([
      p.store.health(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${opts.storeTimeoutMs ?? 2000} ms`)), opts.storeTimeoutMs ?? 2000);
      }),
    ]);
    // The store is the record that survives restarts; the supervisor knows the parks of this run.
    for (const h of health) {
      if (h.status === 'down' && ids.has(h.target) && !parked.has(h.target)) parked.set(h.target, h.reason ?? 'down');
      if (h.status === 'up' && h.reason && ids.has(h.target)) retrying.set(h.target, h.reason);
    }
  } catch (e) {
    reasons.push({ check: 'store', reason: `the state store does not answer: ${e instanceof Error ? e.message : String(e)}` });
  } finally {
    clearTimeout(timer);
  }
  for (const r of p.watcher?.source.roots() ?? []) {
    if (!r.present) reasons.push({ check: 'root', root: r.name, reason: `root ${r.name}: ${r.reason ?? 'missing'}` });
  }
  for (const [target, reason] of parked) {
    const at = status[target]?.retryAt;
    reasons.push({ check: 'target', target, reason: `target ${target} is parked: ${reason}${at ? `; tried again at ${new Date(at).toISOString()}` : ''}` });
  }
  // Degraded before it is parked: its uploads fail and are being retried.
  for (const [target, reason] of retrying) if (!parked.has(target)) reasons.push({ check: 'target', target, reason: `target ${target} is ${reason}` });
  return { ok: reasons.length === 0, reasons };
}
