#!/usr/bin/env node
// The long form of the crash loop: `npm run soak -- --files 2000 --kills 20 [--seed 7]`.
// Sets FILES, KILLS and SEED and runs test/chaos/crash-loop.test.ts (the same code as the
// short form in `npm test`); the test prints the figures reached, including bytes uploaded twice.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { files: { type: 'string', default: '2000' }, kills: { type: 'string', default: '20' }, seed: { type: 'string', default: '1' } } });
for (const [k, v] of Object.entries(values)) {
  if (!/^\d+$/.test(v)) {
    process.stderr.write(`soak: expected --${k} to be a whole number, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
const r = spawnSync(process.execPath, [vitest, 'run', 'test/chaos/crash-loop.test.ts'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, FILES: values.files, KILLS: values.kills, SEED: values.seed },
});
process.exit(r.status ?? 1);
