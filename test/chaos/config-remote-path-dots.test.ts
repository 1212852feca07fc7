/**
 * A remotePath template whose own text climbs out of a target's root ("..", ".", a backslash)
 * is a config error naming remotePath and its line (exit 2), found before anything runs. (Found
 * by the chaos suite: it used to pass `check` and stop `run` with exit 1.)
 */import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/daemon.js';
import { tempDir } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups) await c();
});

describe('remotePath templates that climb out are config errors', () => {
  it.each(['../{path}', '{root}/../../{path}', '{root}/./{name}', '{root}\\\\{path}'])('%s: check exits 2 naming remotePath at line 1', async (template) => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    mkdirSync(path.join(t.dir, 'inbox'));
    writeFileSync(path.join(t.dir, 'f.yaml'), `remotePath: "${template}"\nroots: [{ path: ./inbox }]\ntargets: [{ type: local, path: ./archive }]\n`);
    const r = runCli(['check', '--config', 'f.yaml'], { cwd: t.dir });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toMatch(/^stagecoach: f\.yaml:1: remotePath: /);
  });
});
