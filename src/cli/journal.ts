import type { Config } from '../config/index.js';
import { StagecoachError } from '../errors.js';
import { describePgUrl } from '../state/open.js';
import { EXIT } from './exit-codes.js';

/**
 * `journal migrate [--to postgres://...]`: copies the SQLite journal under stateDir into an
 * empty PostgreSQL journal (the url given, else the config's journal.url), then says what to set
 * in the config. The daemon must be stopped. Prints one line per table copied.
 */
export async function journalCommand(config: Config, sub: string | undefined, opts: { to: string | undefined }): Promise<number> {
  if (sub !== 'migrate') throw new StagecoachError('cli.usage', `journal: expected "journal migrate --to postgres://...", got ${sub === undefined ? 'nothing' : `"${sub}"`}`);
  const url = opts.to ?? config.journal?.url;
  if (url === undefined) throw new StagecoachError('cli.usage', 'journal migrate: say where to with --to postgres://user@host:5432/db (or set journal.url in the config)');
  if (!/^postgres(ql)?:\/\//.test(url)) throw new StagecoachError('cli.usage', 'journal migrate: --to must be a postgres:// or postgresql:// url');
  const where = describePgUrl(url);
  const { moveJournalToPg } = await import('../state/move-journal.js');
  const started = Date.now();
  const report = await moveJournalToPg({ stateDir: config.stateDir, url });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    `moved the journal of ${config.stateDir} to ${where} in ${seconds} s: ` +
      `${report.roots} roots, ${report.files} files, ${report.deliveries} deliveries` +
      `${report.inFlightReset > 0 ? ` (${report.inFlightReset} in flight, now pending)` : ''}, ${report.targetHealth} target health records, ${report.removals} after-archive removals\n` +
      `next: set journal: { url: ... } in the config and start the daemon; the SQLite journal is left as it was\n`,
  );
  return EXIT.ok;
}
