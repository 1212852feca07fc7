/**
 * Issue 13, item 1, on a running daemon: the daemon runs as root (as on many NAS installs), an
 * unprivileged user (uid 65534) who can write one watched folder plants bait files with the size
 * and mtime of a root-only secret it can stat but not read, waits while Dropbox is down, then
 * swaps one bait for a symlink to the secret and the folder of another for a link to the
 * secret's folder. When Dropbox returns, the secret must be on no target: its deliveries are
 * skipped with the reason, or carry the bait read through a descriptor opened before the swap. Where the tests do not run as root, the writer is the same user.
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashFile } from '../../src/archive/hash.js';
import { listFiles, waitFor } from '../helpers/fs.js';
import { CLOUDS, HASH_OF } from '../e2e/clouds.js';
import { workspace } from './chaos-kit.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const AS_ROOT = process.getuid?.() === 0;
const NOBODY = 65534;

/** Runs a short script as the unprivileged writer (uid 65534 when root, else this user). */
function asWriter(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // The writer (fs calls only, no network) runs without the loopback guard's --require: as
    // another user it may not be able to read the guard file inside a 0700 checkout.
    const child = spawn('/bin/sh', ['-c', 'unset NODE_OPTIONS; exec "$0" -e "$1"', process.execPath, script], { stdio: ['ignore', 'ignore', 'pipe'], ...(AS_ROOT ? { uid: NOBODY, gid: NOBODY } : {}) });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer script failed (${code}): ${err}`))));
  });
}

describe('a symlink swap by an unprivileged writer while a cloud is down', () => {
  it('the file and a folder on its path swapped for links to a root-only secret: skipped with the reason, the secret on no target', async () => {
    const w = await workspace('retry: { retries: 1, minDelayMs: 20, maxDelayMs: 50 }\nsupervisor: { coolDownMs: 300, coolDownMaxMs: 1s }\n');
    cleanups.push(() => w.cleanup());
    // The secret: readable by root only, in a folder anyone may list (as /etc/shadow).
    const secretDir = path.join(w.dir, 'etc');
    await mkdir(secretDir);
    const secret = path.join(secretDir, 'shadow');
    const SECRET = `root:$6$${'s'.repeat(80)}:19000:0:99999:7:::\n`;
    await writeFile(secret, SECRET, { mode: 0o600 });
    const old = new Date(Date.now() - 3_600_000);
    await utimes(secret, old, old);
    // The writer's folder inside the watched root.
    const drop = path.join(w.inbox, 'drop');
    await mkdir(drop);
    if (AS_ROOT) {
      for (const p of [w.dir, w.inbox, secretDir]) await chmod(p, 0o755);
      await chown(drop, NOBODY, NOBODY);
    }
    if (AS_ROOT) await expect(asWriter(`require('fs').readFileSync(${JSON.stringify(secret)})`)).rejects.toThrow(/EACCES/);

    // Bait with the secret's size and mtime, planted by the writer.
    await asWriter(`
      const fs = require('fs');
      const s = fs.statSync(${JSON.stringify(secret)});
      fs.mkdirSync(${JSON.stringify(path.join(drop, 'dir'))});
      for (const f of ['f.txt', 'dir/shadow']) {
        const p = ${JSON.stringify(drop)} + '/' + f;
        fs.writeFileSync(p, 'x'.repeat(s.size));
        fs.utimesSync(p, s.atime, s.mtime);
      }`);

    w.clouds.dropbox.server.setFaults({ down: true });
    const d = w.start();
    const others = ['local', 'gdrive', 'box', 'onedrive'];
    await waitFor('the bait archived on the other targets', () => w.done(others) === others.length * 2 || d.child.exitCode !== null, 60_000, 100);
    expect(d.child.exitCode, d.output()).toBe(null);
    expect(w.done(['dropbox'])).toBe(0);

    // The swap: the file for a link to the secret, the folder for a link to the secret's folder.
    await asWriter(`
      const fs = require('fs');
      const drop = ${JSON.stringify(drop)};
      fs.renameSync(drop + '/f.txt', drop + '/old-f');
      fs.symlinkSync(${JSON.stringify(secret)}, drop + '/f.txt');
      fs.renameSync(drop + '/dir', drop + '/old-dir');
      fs.symlinkSync(${JSON.stringify(secretDir)}, drop + '/dir');`);

    w.clouds.dropbox.server.clearFaults();
    await waitFor(
      'dropbox settled both deliveries',
      () => {
        const rows = w.rows().filter((r) => r.target === 'dropbox' && r.rel_path.startsWith('drop/') && !r.rel_path.startsWith('drop/old-'));
        return (rows.length === 2 && rows.every((r) => r.status === 'skipped' || r.status === 'failed' || r.status === 'done')) || d.child.exitCode !== null;
      },
      60_000,
      100,
    );
    expect(d.child.exitCode, d.output()).toBe(null);
    const rows = w.rows().filter((r) => r.target === 'dropbox' && (r.rel_path === 'drop/f.txt' || r.rel_path === 'drop/dir/shadow'));
    expect(rows).toHaveLength(2);
    // Skipped with the reason — or done when an attempt already held the descriptor before the
    // swap and sent the bait through it once Dropbox was back (the hash check below tells).
    // A delivery the watcher re-queued as a change (a newer generation: pending or leased again) is the
    // other outcome the guarantee allows; seen once under CI load, after it had settled.
    for (const r of rows) {
      if (!['done', 'pending', 'in_flight'].includes(r.status)) expect(r.last_error, JSON.stringify(r)).toMatch(/symbolic link|replaced by another file|vanished/);
    }

    // The secret on no target: no cloud holds its hash, no archived file its bytes.
    for (const c of CLOUDS) {
      const want = (await hashFile(HASH_OF[c], secret)).toLowerCase();
      expect((await w.clouds[c].tree()).filter((f) => f.hash.toLowerCase() === want).map((f) => f.path), c).toEqual([]);
    }
    for (const f of await listFiles(w.archive)) expect(await readFile(path.join(w.archive, f), 'utf8'), f).not.toBe(SECRET);
    expect((await stat(secret)).mode & 0o777).toBe(0o600);
  }, 180_000);
});
