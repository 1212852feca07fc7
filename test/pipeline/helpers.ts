import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseConfig, type Config } from '../../src/config/index.js';
import { startPipeline, type AllEvents, type Pipeline } from '../../src/pipeline/topology.js';
import { EventBus } from '../../src/telemetry/bus.js';
import { createLogger } from '../../src/telemetry/logger.js';
import type { Target } from '../../src/targets/target.js';

export interface Harness {
  dir: string;
  inbox: string;
  archive: string;
  config: Config;
  bus: EventBus<AllEvents>;
  /** remote paths of every upload that sent bytes, in order */
  uploads: string[];
  recorded: string[];
  start(opts?: { mode?: 'watch' | 'once'; targets?: Target[] }): Promise<Pipeline>;
}

/** A pipeline on temp folders: root `inbox`, local target `local` in `archive`. */
export async function harness(dir: string, yamlExtra = '', opts: { stableMs?: number; shutdownMs?: number } = {}): Promise<Harness> {
  const inbox = path.join(dir, 'inbox');
  const archive = path.join(dir, 'archive');
  await mkdir(inbox, { recursive: true });
  const yaml = `
stateDir: ./state
stableMs: ${opts.stableMs ?? 300}
shutdownMs: ${opts.shutdownMs ?? 5000}
log: { level: error }
retry: { retries: 2, minDelayMs: 10, maxDelayMs: 50 }
roots:
  - path: ./inbox
targets:
  - type: local
    path: ./archive
    maxDemand: 4
${yamlExtra}`;
  const config = parseConfig(yaml, { cwd: dir, env: {} });
  const bus = new EventBus<AllEvents>();
  const uploads: string[] = [];
  const recorded: string[] = [];
  bus.on('upload.stop', (e) => {
    if (!e.unchanged) uploads.push(`${e.target}:${e.remotePath}`);
  });
  bus.on('item.record', (e) => recorded.push(e.relPath));
  const log = createLogger({ level: 'silent', format: 'json' });
  return {
    dir,
    inbox,
    archive,
    config,
    bus,
    uploads,
    recorded,
    start: (o = {}) => startPipeline(config, { log, mode: o.mode ?? 'watch', bus, targets: o.targets }),
  };
}
