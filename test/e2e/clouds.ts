import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { hashFile } from '../../src/archive/hash.js';
import type { HashKind } from '../../src/targets/target.js';
import { ROOT } from '../helpers/daemon.js';
import { startAll } from '../emulators/run.js';

export type Clouds = Awaited<ReturnType<typeof startAll>>;
export const CLOUDS = ['gdrive', 'dropbox', 'box', 'onedrive'] as const;
export const HASH_OF: Record<(typeof CLOUDS)[number], HashKind> = { gdrive: 'md5', dropbox: 'dropbox', box: 'sha1', onedrive: 'quickxor' };
const PORT_OF = { gdrive: 8701, dropbox: 8702, box: 8703, onedrive: 8704 } as const;

/** The four emulators on free loopback ports, and config/demo.yaml pointed at them and at `dir`. */
export async function cloudsAndConfig(dir: string, extra = ''): Promise<{ clouds: Clouds; yaml: string; inbox: string; archive: string }> {
  const clouds = await startAll({ ports: { gdrive: 0, dropbox: 0, box: 0, onedrive: 0 } });
  let yaml = readFileSync(path.join(ROOT, 'config', 'demo.yaml'), 'utf8');
  for (const c of CLOUDS) yaml = yaml.replaceAll(`127.0.0.1:${PORT_OF[c]}`, `127.0.0.1:${clouds[c].server.port}`);
  yaml = yaml
    .replace('stateDir: ./data/demo-state', 'stateDir: ./state')
    .replace('path: ./data/inbox', 'path: ./inbox')
    .replace('path: ./data/demo-archive', 'path: ./archive')
    .replace('stableMs: 1s', 'stableMs: 100ms')
    .replace('log: { level: info, format: auto }', 'log: { level: warn, format: json }');
  // The status page on a free port, unless the test says otherwise (never the default 8080).
  if (!/^http:/m.test(extra)) yaml += 'http: { listen: "127.0.0.1:0" }\n';
  yaml += extra;
  const inbox = path.join(dir, 'inbox');
  await mkdir(inbox, { recursive: true });
  return { clouds, yaml, inbox, archive: path.join(dir, 'archive') };
}

export async function closeClouds(clouds: Clouds): Promise<void> {
  for (const e of Object.values(clouds)) {
    await e.close();
    await e.blobs.destroy();
  }
}

/**
 * Checks that every file (relative to inbox) is on every cloud exactly once, under
 * Stagecoach/inbox/, with the provider's hash of the local bytes. Returns the problems found.
 */
export async function verifyClouds(clouds: Clouds, inbox: string, files: string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const c of CLOUDS) {
    const tree = await clouds[c].tree();
    const byPath = new Map<string, Array<{ size: number; hash: string }>>();
    for (const f of tree) {
      const key = f.path.replace(/^\/+/, '').toLowerCase();
      byPath.set(key, [...(byPath.get(key) ?? []), f]);
    }
    for (const rel of files) {
      const key = `stagecoach/inbox/${rel}`.toLowerCase();
      const found = byPath.get(key) ?? [];
      if (found.length !== 1) {
        problems.push(`${c}: ${rel} stored ${found.length} times`);
        continue;
      }
      const want = await hashFile(HASH_OF[c], path.join(inbox, rel));
      if (found[0]!.hash.toLowerCase() !== want.toLowerCase()) problems.push(`${c}: ${rel} hash ${found[0]!.hash} ≠ ${want}`);
    }
    if (tree.length !== files.length) problems.push(`${c}: holds ${tree.length} files, expected ${files.length}`);
  }
  return problems;
}
