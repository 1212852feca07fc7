import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { keyOf, listCopies, restoreFiles, selectFiles, type RestoreResult } from '../audit/restore.js';
import { StagecoachError } from '../errors.js';
import { openJournal } from '../state/index.js';
import type { Target } from '../targets/target.js';
import { EXIT } from './exit-codes.js';
import { openTarget, pickTargets } from './targets.js';
import type { CliOut } from './verify.js';

export interface RestoreCliOptions {
  patterns: string[];
  to?: string | undefined;
  from?: string | undefined;
  overwrite: boolean;
  list: boolean;
  json: boolean;
}

const STD: CliOut = { out: process.stdout, err: process.stderr };

/**
 * `restore PATH|GLOB... [--to DIR] [--from ID,...] [--overwrite]` and `restore --list PATH`
 * (src/audit/restore.ts). Targets are tried in `--from` order, by default the config's order
 * with local targets first. Exit 0 when every file came back (or was listed), 4 when one could
 * not, 2 when nothing in the journal matches.
 */
export async function restoreCommand(config: Config, log: Logger, o: RestoreCliOptions, io: CliOut = STD): Promise<number> {
  if (o.patterns.length === 0) throw new StagecoachError('cli.usage', 'restore: name what to restore, as status shows it: <root name>/<path inside the root>, a folder, a root name, or a glob');
  if (o.list && (o.to !== undefined || o.overwrite)) throw new StagecoachError('cli.usage', 'restore --list only lists: --to and --overwrite do not go with it');
  const picked = pickTargets(config, o.from, '--from');
  if (o.from === undefined) picked.sort((a, b) => Number(b.type === 'local') - Number(a.type === 'local'));
  const store = await openJournal(config);
  const audit = store.audit;
  const targets: Target[] = [];
  try {
    const files = selectFiles(await audit.files(), o.patterns);
    if (files.length === 0) throw new StagecoachError('cli.usage', `restore: nothing in the journal matches ${o.patterns.map((p) => JSON.stringify(p)).join(', ')} (paths are <root name>/<path inside the root>)`);
    for (const tc of picked) {
      try {
        targets.push(await openTarget(config, tc, log));
      } catch (e) {
        io.err.write(`stagecoach: ${tc.id} cannot be used, skipped: ${(e as Error).message}\n`);
      }
    }
    if (o.list) {
      const listed = [];
      for (const f of files) listed.push({ path: keyOf(f), size: f.size, copies: await listCopies(f, targets) });
      if (o.json) io.out.write(`${JSON.stringify({ files: listed }, null, 2)}\n`);
      else {
        for (const l of listed) {
          io.out.write(`${l.path} (${l.size} bytes)\n`);
          for (const c of l.copies) io.out.write(`  ${c.target.padEnd(12)} ${c.state.padEnd(12)} ${c.detail}\n`);
        }
      }
      return EXIT.ok;
    }
    const to = o.to === undefined ? undefined : path.resolve(o.to);
    const results = await restoreFiles(files, {
      targets,
      to,
      overwrite: o.overwrite,
      onResult: (r) => {
        if (!o.json) io.out.write(`${line(r)}\n`);
      },
    });
    const failed = results.filter((r) => r.from === null && !r.skipped).length;
    const skipped = results.filter((r) => r.skipped).length;
    if (o.json) io.out.write(`${JSON.stringify({ restored: results.length - failed - skipped, skipped, failed, files: results }, null, 2)}\n`);
    else io.out.write(`${results.length - failed - skipped} restored, ${skipped} skipped (already there; --overwrite replaces), ${failed} not restored\n`);
    return failed > 0 || skipped > 0 ? EXIT.verify : EXIT.ok;
  } finally {
    await Promise.allSettled(targets.map((t) => t.close()));
    await store.close();
  }
}

function line(r: RestoreResult): string {
  if (r.skipped) return `SKIPPED ${r.key}: ${r.dest} exists (--overwrite replaces it)`;
  const why = r.attempts.filter((a) => a.outcome !== 'restored').map((a) => a.detail);
  const tail = why.length > 0 ? ` (${why.join('; ')})` : '';
  if (r.from === null) return `FAILED ${r.key}: no target has a good copy${tail}`;
  const how = r.attempts.find((a) => a.outcome === 'restored')?.detail ?? `from ${r.from}`;
  return `restored ${r.key} → ${r.dest} ${how}${tail}`;
}
