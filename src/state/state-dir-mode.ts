/**
 * The state folder holds the journal and the cloud tokens: a folder every user may write to lets
 * any of them replace the journal, plant a link where a token is saved, or delete both.
 */
import fs from 'node:fs';
import { ConfigError } from '../errors.js';

/**
 * Throws ConfigError (path `stateDir`) when `dir` exists and is writable by every user (o+w,
 * sticky bit or not), with the chmod that fixes it. A folder that does not exist yet is fine: it
 * is created without that bit. Checked before the journal is opened or a token is saved.
 */
export function refuseWorldWritableStateDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!st.isDirectory() || (st.mode & 0o002) === 0) return;
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  throw new ConfigError(
    'stateDir',
    `the state folder ${dir} is writable by every user (mode ${mode}): anyone on this machine could replace the journal or the saved tokens; fix it with: chmod o-w ${JSON.stringify(dir)} (or chmod 700)`,
  );
}
