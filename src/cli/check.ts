import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { createTarget } from '../targets/registry.js';
import path from 'node:path';
import { EXIT } from './exit-codes.js';

/** `check`: the config is valid (it loaded); now make and try every target, and say per target. */
export async function checkCommand(config: Config, log: Logger): Promise<number> {
  let bad = 0;
  process.stdout.write(`config ok: ${config.roots.length} root(s), ${config.targets.length} target(s)\n`);
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
