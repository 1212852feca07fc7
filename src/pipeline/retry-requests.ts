import { mkdir, readdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/**
 * `stagecoach retry <target>` runs in another process than the daemon (often `docker exec`), with
 * the status server possibly off: it asks through the state folder. A request is an empty file
 * `<stateDir>/retry/<target>`; the daemon looks every second, removes it and tries the target.
 */
const folderOf = (stateDir: string) => path.join(stateDir, 'retry');

/** Asks the daemon using `stateDir` to try `target` now (it must be a configured target id). */
export async function requestRetry(stateDir: string, target: string): Promise<void> {
  await mkdir(folderOf(stateDir), { recursive: true, mode: 0o700 });
  await writeFile(path.join(folderOf(stateDir), target), '', { mode: 0o600 });
}

/**
 * Looks for requests every `everyMs` and calls `onRequest` once per request for a known target
 * (a request for an unknown one is removed and logged). Returns the function that stops looking.
 */
export function watchRetryRequests(
  stateDir: string,
  targets: readonly string[],
  onRequest: (target: string) => void,
  log: Logger,
  everyMs = 1000,
): () => void {
  let busy = false;
  const look = async () => {
    if (busy) return;
    busy = true;
    try {
      let names: string[];
      try {
        names = await readdir(folderOf(stateDir));
      } catch {
        return; // no request was ever made
      }
      for (const name of names) {
        await unlink(path.join(folderOf(stateDir), name)).catch((e: unknown) => log.warn({ err: e, target: name }, 'cannot remove a retry request'));
        if (targets.includes(name)) onRequest(name);
        else log.warn({ target: name }, 'a retry was asked for a target that is not configured');
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void look(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
