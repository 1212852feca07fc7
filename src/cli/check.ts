import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { createTarget } from '../targets/registry.js';
import path from 'node:path';
import { rootIdentity } from '../pipeline/roots.js';
import { EXIT } from './exit-codes.js';

/**
 * `check`: the config is valid (it loaded); every root is there (a missing one is named); now
 * make and try every target, and say per target. Exit 3 when a root is missing or a target fails.
 */
export async function checkCommand(config: Config, log: Logger): Promise<number> {
  let bad = 0;
  process.stdout.write(`config ok: ${config.roots.length} root(s), ${config.targets.length} target(s)\n`);
  for (const r of config.roots) {
    if ((await rootIdentity(r.path)) !== null) continue;
    // `run` would wait for it (or make it, with createRoot: true); either way the user should know.
    if (!r.createRoot) bad++;
    process.stdout.write(
      r.createRoot
        ? `root ${r.name}: ${r.path} is not there; run creates it (createRoot: true)\n`
        : `root ${r.name}: MISSING — ${r.path} is not there (a typo, or an unmounted share?); run waits for it to appear and never creates it (set createRoot: true to have it made)\n`,
    );
  }
  for (const tc of config.targets) {
    try {
      const target = await createTarget(tc, {
        log: log.child({ target: tc.id }),
        stateDir: path.join(config.stateDir, 'targets', tc.id),
      });
      try {
        const what = await target.check();
        process.stdout.write(`${tc.id} (${tc.type}): ok — ${what}\n`);
      } finally {
        await target.close();
      }
    } catch (e) {
      bad++;
      process.stdout.write(`${tc.id} (${tc.type}): FAILED — ${(e as Error).message}\n`);
    }
  }
  return bad > 0 ? EXIT.check : EXIT.ok;
}
