// Builds native/fs-native.c (syncfs and copy_file_range for the local target) into
// native/build/fs-native.node with the system's C compiler. Run by `npm ci` (postinstall) and
// `npm run build`.
//
//   node scripts/build-native.mjs [--quiet]
//
// The module is optional: where it cannot be built (not Linux, no C compiler, no Node headers)
// this says why and exits 0, and the local target does without: an fsync per small file, and a
// large file's copy through the process (src/targets/kit/fs-native.ts). The Node headers are
// looked for beside the running node (PREFIX/include/node, as the official tarballs, Docker images
// and distributions install them), or under npm_config_nodedir.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'native', 'fs-native.c');
const out = path.join(root, 'native', 'build', 'fs-native.node');
const quiet = process.argv.includes('--quiet');

function skip(why) {
  process.stdout.write(`native/build/fs-native.node not built (${why}): the local target fsyncs each small file instead of one syncfs per batch, and copies large files through the process\n`);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`syncfs and copy_file_range are Linux's, this is ${process.platform}`);
if (!existsSync(source)) skip(`${source} is missing`);
// Up to date: nothing to do (npm ci and npm run build both call this).
if (existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) process.exit(0);

const candidates = [
  process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include', 'node'),
  path.resolve(path.dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter(Boolean);
const include = candidates.find((dir) => existsSync(path.join(dir, 'node_api.h')));
if (!include) skip(`no node_api.h in ${candidates.join(', ')}`);

const cc = process.env.CC || 'cc';
mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const args = ['-O2', '-std=c11', '-Wall', '-Wextra', '-fPIC', '-shared', `-I${include}`, '-DNAPI_VERSION=8', source, '-o', tmp];
const r = spawnSync(cc, args, { encoding: 'utf8' });
if (r.error || r.status !== 0) {
  rmSync(tmp, { force: true });
  skip(r.error ? `${cc}: ${r.error.message}` : `${cc} exited ${r.status}: ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
}
if (r.stderr.trim()) process.stderr.write(r.stderr);
renameSync(tmp, out);
if (!quiet) process.stdout.write(`built ${path.relative(root, out)} (${cc}, headers ${include})\n`);
