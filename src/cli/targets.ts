import path from 'node:path';
import type { Logger } from 'pino';
import type { Config, TargetConfig } from '../config/index.js';
import { StagecoachError } from '../errors.js';
import { createTarget } from '../targets/registry.js';
import type { Target } from '../targets/target.js';

/** `--target a,b` (or `--from`) as configured targets in the order given; all, in config order, without it. */
export function pickTargets(config: Config, list: string | undefined, flag: string): TargetConfig[] {
  if (list === undefined) return [...config.targets];
  const ids = list.split(',').map((s) => s.trim()).filter(Boolean);
  const out: TargetConfig[] = [];
  for (const id of ids) {
    const tc = config.targets.find((t) => t.id === id);
    if (!tc) throw new StagecoachError('cli.usage', `${flag}: no target "${id}" in the config (targets: ${config.targets.map((t) => t.id).join(', ')})`);
    out.push(tc);
  }
  return out;
}

/** Makes a configured target as the daemon does (its own state folder for tokens). The caller closes it. */
export function openTarget(config: Config, tc: TargetConfig, log: Logger): Promise<Target> {
  return createTarget(tc, {
    log: log.child({ target: tc.id }),
    stateDir: path.join(config.stateDir, 'targets', tc.id),
  });
}
