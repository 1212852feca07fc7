/**
 * Verify: are a target's remote copies still what the journal says was archived? Each done
 * delivery's copy is looked up by path (`Target.stat`, one metadata request each, a few at a
 * time) and its size and provider hash compared with the journal. A copy that is gone or differs
 * is a finding; unless `reportOnly`, its delivery goes back to pending so the next run archives
 * the file again. A copy found intact gets its `verified_at` stamped.
 *
 * Guarantees: the journal is changed only for copies actually looked up (a lookup that fails
 * changes nothing: it is counted under `errors`); a delivery whose file changed meanwhile (a new
 * generation) is not touched. Copies are checked least recently verified first, so repeated
 * partial runs (`samplePercent` < 100) cover everything in turn.
 */
import { TokenBucket } from '../retry/rate-limit.js';
import type { AuditStore, DoneCopy } from '../state/audit.js';
import type { Target } from '../targets/target.js';

export type Problem = 'missing' | 'altered';

export interface VerifyFinding {
  target: string;
  root: string;
  relPath: string;
  remotePath: string;
  problem: Problem;
  /** Plain words: what was expected and what was found. */
  detail: string;
  /** The delivery went back to pending (false with reportOnly, or when the file changed meanwhile). */
  requeued: boolean;
}

export interface VerifySummary {
  target: string;
  /** Copies looked up (errors excluded). */
  checked: number;
  ok: number;
  missing: number;
  altered: number;
  /**
   * Remote files under the target's root the journal does not know; null when not counted: the
   * target cannot list (Target.list), or the run was not a full one (a sample, a limit or a root).
   */
  extra: number | null;
  /** Lookups that failed (network, auth): those copies are not judged. */
  errors: number;
  /** The first lookup error, for the report. */
  error: string | null;
  findings: VerifyFinding[];
}

export interface VerifyOptions {
  root?: string | undefined;
  /** Share of the target's done deliveries to check, least recently verified first. Default 100. */
  samplePercent?: number;
  /** Check exactly this many (least recently verified first) instead of a share. */
  limit?: number;
  reportOnly?: boolean;
  /** Lookups at once (the target's maxDemand). Default 4. */
  concurrency?: number;
  /** Lookups started per second at most (the target's requestsPerSecond); null: no cap. */
  requestsPerSecond?: number | null;
  /** Told each finding as it is made. */
  onFinding?: (f: VerifyFinding) => void;
  /** Called after each copy is judged (progress). */
  onCopy?: (c: DoneCopy, outcome: 'ok' | Problem | 'error') => void;
  /** Told the number of copies to check, once it is known. */
  onTotal?: (n: number) => void;
  signal?: AbortSignal;
  now?: () => number;
}

const MARK_BATCH = 200;
/** Consecutive fatal lookups after which a target's run stops (the rest would fail the same). */
const FATAL_STOP = 3;

/** How many of `total` copies a sample of `percent` checks (at least one when there are any). */
export function sampleSize(total: number, percent: number): number {
  if (total === 0 || percent <= 0) return 0;
  return Math.min(total, Math.max(1, Math.ceil((total * percent) / 100)));
}

/** Verifies one target's copies; see the module comment. */
export async function verifyTarget(target: Target, audit: AuditStore, o: VerifyOptions = {}): Promise<VerifySummary> {
  const now = o.now ?? Date.now;
  const summary: VerifySummary = { target: target.id, checked: 0, ok: 0, missing: 0, altered: 0, extra: null, errors: 0, error: null, findings: [] };
  const total = await audit.countDone(target.id, o.root);
  const n = o.limit !== undefined ? Math.min(total, o.limit) : sampleSize(total, o.samplePercent ?? 100);
  o.onTotal?.(n);
  if (n === 0) {
    await addExtra(summary, target, audit, o);
    return summary;
  }
  const copies = await audit.doneCopies(target.id, { ...(o.root !== undefined ? { root: o.root } : {}), limit: n });
  const bucket = o.requestsPerSecond ? new TokenBucket(o.requestsPerSecond) : null;
  let verified: number[] = [];
  let next = 0;
  let fatalRun = 0;
  let stopped = false;

  const flush = async (): Promise<void> => {
    const ids = verified;
    verified = [];
    await audit.markVerified(ids, now());
  };

  const judge = async (c: DoneCopy): Promise<void> => {
    let st;
    try {
      if (bucket) await bucket.take(1, o.signal);
      st = await target.stat(c.remotePath);
    } catch (err) {
      if (o.signal?.aborted) throw err;
      summary.errors++;
      const kind = target.classify(err).kind;
      summary.error ??= err instanceof Error ? err.message : String(err);
      fatalRun = kind === 'fatal' ? fatalRun + 1 : 0;
      if (fatalRun >= FATAL_STOP) stopped = true;
      o.onCopy?.(c, 'error');
      return;
    }
    fatalRun = 0;
    summary.checked++;
    let problem: Problem | null = null;
    let detail = '';
    if (st === null) {
      problem = 'missing';
      detail = `no file at ${JSON.stringify(c.remotePath)} on ${target.id}`;
    } else if (st.size !== c.size) {
      problem = 'altered';
      detail = `${st.size} bytes on ${target.id}, ${c.size} archived`;
    } else if (c.remoteHash !== null && st.hash !== null && st.hash.toLowerCase() !== c.remoteHash.toLowerCase()) {
      problem = 'altered';
      detail = `${target.features.hashKind} ${st.hash} on ${target.id}, ${c.remoteHash} archived`;
    }
    if (problem === null) {
      summary.ok++;
      verified.push(c.id);
      if (verified.length >= MARK_BATCH) await flush();
      o.onCopy?.(c, 'ok');
      return;
    }
    summary[problem]++;
    const requeued = o.reportOnly ? false : await audit.requeue(c.id, c.generation, `verify: ${problem}: ${detail}`);
    const finding: VerifyFinding = { target: target.id, root: c.root, relPath: c.relPath, remotePath: c.remotePath, problem, detail, requeued };
    summary.findings.push(finding);
    o.onFinding?.(finding);
    o.onCopy?.(c, problem);
  };

  const worker = async (): Promise<void> => {
    while (!stopped && next < copies.length) {
      if (o.signal?.aborted) return;
      await judge(copies[next++]!);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 4, copies.length)) }, worker));
  } finally {
    await flush();
  }
  await addExtra(summary, target, audit, o);
  return summary;
}

/** On a full run of a target that can list: the files it lists whose name key no delivery of the target (any status) holds. */
async function addExtra(summary: VerifySummary, target: Target, audit: AuditStore, o: VerifyOptions): Promise<void> {
  if (!target.list || o.root !== undefined || o.limit !== undefined || (o.samplePercent ?? 100) < 100 || o.signal?.aborted) return;
  const key = target.nameKey ?? ((p: string) => p.normalize('NFC'));
  const known = new Set<string>();
  for (const f of await audit.files()) for (const c of f.copies) if (c.target === target.id) known.add(key(c.remotePath));
  let extra = 0;
  try {
    for await (const e of target.list()) if (!known.has(key(e.path))) extra++;
  } catch (err) {
    // A listing that fails is a failed lookup: counted and reported, extras left uncounted.
    summary.errors++;
    summary.error ??= `listing: ${err instanceof Error ? err.message : String(err)}`;
    return;
  }
  summary.extra = extra;
}

/** True when every summary found every copy intact and no lookup failed. */
export function allOk(summaries: readonly VerifySummary[]): boolean {
  return summaries.every((s) => s.missing === 0 && s.altered === 0 && s.errors === 0);
}
