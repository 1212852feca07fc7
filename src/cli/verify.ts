import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { allOk, verifyTarget, type VerifySummary } from '../audit/verify.js';
import { StagecoachError } from '../errors.js';
import { openJournal } from '../state/index.js';
import { EXIT } from './exit-codes.js';
import { openTarget, pickTargets } from './targets.js';

export interface VerifyCliOptions {
  target?: string | undefined;
  root?: string | undefined;
  sample?: string | undefined;
  reportOnly: boolean;
  json: boolean;
}

/** Where the command writes: stdout for the report, stderr for the progress bar (a terminal only). */
export interface CliOut {
  out: { write(s: string): unknown };
  err: { write(s: string): unknown; isTTY?: boolean };
}

const STD: CliOut = { out: process.stdout, err: process.stderr };

/** `--sample 10%` / `--sample 10` as a percentage in (0, 100]. */
export function parsePercent(s: string | undefined): number {
  if (s === undefined) return 100;
  const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(s);
  const n = m ? Number(m[1]) : Number.NaN;
  if (!(n > 0 && n <= 100)) throw new StagecoachError('cli.usage', `--sample: expected a percentage above 0 and up to 100, such as 10%, got ${JSON.stringify(s)}`);
  return n;
}

/**
 * `verify`: every configured target (or `--target` ones) has its done deliveries' remote copies
 * looked up and compared with the journal (src/audit/verify.ts). Prints per target checked, ok,
 * missing, altered, extra (or JSON); a missing or altered copy's delivery goes back to pending
 * unless `--report-only`. Exit 0 only when every copy checked is intact and no lookup failed.
 */
export async function verifyCommand(config: Config, log: Logger, o: VerifyCliOptions, io: CliOut = STD): Promise<number> {
  const percent = parsePercent(o.sample);
  if (o.root !== undefined && !config.roots.some((r) => r.name === o.root)) {
    throw new StagecoachError('cli.usage', `--root: no root named "${o.root}" in the config (roots: ${config.roots.map((r) => r.name).join(', ')})`);
  }
  const picked = pickTargets(config, o.target, '--target');
  const store = await openJournal(config);
  const audit = store.audit;
  const bar = io.err.isTTY && !o.json ? new Bar(io.err) : null;
  try {
    const summaries = await Promise.all(
      picked.map(async (tc): Promise<VerifySummary> => {
        let target;
        try {
          target = await openTarget(config, tc, log);
        } catch (e) {
          return { target: tc.id, checked: 0, ok: 0, missing: 0, altered: 0, extra: null, errors: 1, error: (e as Error).message, findings: [] };
        }
        try {
          return await verifyTarget(target, audit, {
            root: o.root,
            samplePercent: percent,
            reportOnly: o.reportOnly,
            concurrency: tc.maxDemand,
            requestsPerSecond: tc.requestsPerSecond,
            onTotal: (n) => bar?.add(n),
            onCopy: () => bar?.tick(),
          });
        } finally {
          await target.close();
        }
      }),
    );
    bar?.stop();
    if (o.json) {
      io.out.write(`${JSON.stringify({ ok: allOk(summaries), reportOnly: o.reportOnly, targets: summaries }, null, 2)}\n`);
    } else {
      printSummaries(io.out, summaries, o.reportOnly);
    }
    return allOk(summaries) ? EXIT.ok : EXIT.verify;
  } finally {
    bar?.stop();
    await store.close();
  }
}

function printSummaries(out: CliOut['out'], summaries: readonly VerifySummary[], reportOnly: boolean): void {
  const head = ['TARGET', 'CHECKED', 'OK', 'MISSING', 'ALTERED', 'EXTRA', 'ERRORS'];
  const rows = summaries.map((s) => [s.target, s.checked, s.ok, s.missing, s.altered, s.extra ?? '-', s.errors].map(String));
  const table = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  for (const r of table) out.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
  for (const s of summaries) {
    for (const f of s.findings) {
      const then = f.requeued ? 're-archived on the next run' : reportOnly ? 'left as is (--report-only)' : 'the file changed since: already on its way';
      out.write(`${f.problem.toUpperCase()} ${s.target}: ${f.root}/${f.relPath} — ${f.detail}; ${then}\n`);
    }
    if (s.errors > 0) out.write(`${s.target}: ${s.errors} lookup(s) failed, those copies were not judged: ${s.error}\n`);
  }
  if (summaries.some((s) => s.extra === null)) out.write('(EXTRA "-": not counted: only a full run (no --sample, no --root) whose listing succeeded counts them)\n');
}

/** A one-line bar on a terminal: copies judged of copies to check. */
class Bar {
  private total = 0;
  private done = 0;
  private timer: NodeJS.Timeout | null;
  constructor(private readonly err: CliOut['err']) {
    this.timer = setInterval(() => this.render(), 250);
  }
  add(n: number): void {
    this.total += n;
  }
  tick(): void {
    this.done++;
  }
  private render(): void {
    const width = 30;
    const fill = this.total === 0 ? 0 : Math.round((width * this.done) / this.total);
    this.err.write(`\r[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${this.done}/${this.total} copies checked   `);
  }
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
    this.render();
    this.err.write('\n');
  }
}
