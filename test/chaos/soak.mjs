#!/usr/bin/env node
// The long form of the chaos suite: `npm run soak -- --files 2000 --kills 20 [--seed 7] [--down 10000]`.
// Sets FILES, KILLS and SEED and runs test/chaos/crash-loop.test.ts (the same code as the
// short form in `npm test`); the test prints the figures reached, including bytes uploaded twice.
// With --down N it runs test/chaos/cloud-down.test.ts instead, with N files (DOWN_FILES): one
// cloud down while a backlog of N deliveries builds up.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { files: { type: 'string', default: '2000' }, kills: { type: 'string', default: '20' }, seed: { type: 'string', default: '1' }, down: { type: 'string' } } });
for (const [k, v] of Object.entries(values)) {
  if (!/^\d+$/.test(v)) {
    process.stderr.write(`soak: expected --${k} to be a whole number, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
const [file, env] =
  values.down !== undefined
    ? ['test/chaos/cloud-down.test.ts', { DOWN_FILES: values.down }]
    : ['test/chaos/crash-loop.test.ts', { FILES: values.files, KILLS: values.kills, SEED: values.seed }];
const r = spawnSync(process.execPath, [vitest, 'run', file], { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
process.exit(r.status ?? 1);
