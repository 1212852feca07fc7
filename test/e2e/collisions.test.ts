/**
 * Issue 13, item 2: no silent collisions. Pairs of files that one target would store under one
 * name — case-only on the case-insensitive clouds, NFC and NFD spellings everywhere, OneDrive's
 * look-alike substitution, a `{name}` template over two folders — are each stored under distinct
 * names on every target (the emulators and the local folder), both copies with their own bytes,
 * and `status` lists the renamed ones. With `onCollision: fail` the second fails naming both.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashFile } from '../../src/archive/hash.js';
import { runCli, startDaemon } from '../helpers/daemon.js';
import { listFiles, tempDir } from '../helpers/fs.js';
import { CLOUDS, HASH_OF, closeClouds, cloudsAndConfig, type Clouds } from './clouds.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function workspace(extra: string) {
  const t = await tempDir('stagecoach-collide-');
  const made = await cloudsAndConfig(t.dir, extra);
  cleanups.push(async () => {
    await closeClouds(made.clouds);
    await t.cleanup();
  });
  const cfg = path.join(t.dir, 'c.yaml');
  await writeFile(cfg, made.yaml.replace('level: warn', 'level: info'));
  return { dir: t.dir, cfg, ...made };
}

/** `backfill --once` as a child process, awaited without blocking this process (the emulators run here). */
async function backfill(dir: string, cfg: string): Promise<{ code: number | null; output: string }> {
  const d = startDaemon(['backfill', '--once', '--config', cfg], { cwd: dir });
  const timer = setTimeout(() => d.child.kill('SIGKILL'), 60_000);
  const { code } = await d.exited;
  clearTimeout(timer);
  return { code, output: d.output() };
}

async function put(inbox: string, rel: string, body: string) {
  await mkdir(path.dirname(path.join(inbox, rel)), { recursive: true });
  await writeFile(path.join(inbox, rel), body);
}

/** For each source file: the remote paths holding its bytes, per target. */
async function whereStored(clouds: Clouds, archive: string, inbox: string, files: string[]) {
  const out: Record<string, Record<string, string[]>> = {};
  for (const c of CLOUDS) {
    const tree = await clouds[c].tree();
    out[c] = {};
    for (const rel of files) {
      const want = (await hashFile(HASH_OF[c], path.join(inbox, rel))).toLowerCase();
      out[c]![rel] = tree.filter((f) => f.hash.toLowerCase() === want).map((f) => f.path);
    }
  }
  const stored = await listFiles(archive);
  out.local = {};
  for (const rel of files) {
    const body = await readFile(path.join(inbox, rel), 'utf8');
    const hits: string[] = [];
    for (const f of stored) if ((await readFile(path.join(archive, f), 'utf8')) === body) hits.push(f);
    out.local[rel] = hits;
  }
  return out;
}

describe('remote-name collisions', () => {
  it('case-only, NFC/NFD and OneDrive look-alike pairs: both files stored under distinct names on every target; status lists the renames', async () => {
    const w = await workspace('');
    const files = ['Case.txt', 'case.txt', 'caf\u00e9.txt', 'cafe\u0301.txt', 'a:b.txt', 'a\uff1ab.txt'];
    for (const [i, f] of files.entries()) await put(w.inbox, f, `content of file ${i}: ${f}`);

    const r = await backfill(w.dir, w.cfg);
    if (r.code !== 0) console.log(runCli(['status', '--config', w.cfg], { cwd: w.dir }).stdout, r.output.slice(-3000));
    expect(r.code, r.output).toBe(0);

    const where = await whereStored(w.clouds, w.archive, w.inbox, files);
    for (const [target, byFile] of Object.entries(where)) {
      const all: string[] = [];
      for (const rel of files) {
        // Each file's own bytes are on the target, exactly once.
        expect(byFile[rel], `${target}: ${rel}`).toHaveLength(1);
        all.push(byFile[rel]![0]!);
      }
      expect(new Set(all).size, `${target}: distinct names`).toBe(files.length);
    }

    const status = runCli(['status', '--json', '--config', w.cfg], { cwd: w.dir });
    expect(status.code).toBe(0);
    const renamed = (JSON.parse(status.stdout) as { renamed: Array<{ target: string; relPath: string; wanted: string; remotePath: string }> }).renamed;
    const pairs = (target: string) => renamed.filter((x) => x.target === target).length;
    // One of each colliding pair is renamed: case-only on the case-insensitive ones, NFC/NFD
    // everywhere, the look-alike on OneDrive only.
    expect(pairs('local')).toBe(1);
    expect(pairs('gdrive')).toBe(1);
    expect(pairs('dropbox')).toBe(2);
    expect(pairs('box')).toBe(2);
    expect(pairs('onedrive')).toBe(3);
    for (const x of renamed) expect(x.remotePath).toMatch(/~[0-9a-f]{6}\.txt$/);
    const text = runCli(['status', '--config', w.cfg], { cwd: w.dir });
    expect(text.stdout).toContain('stored under another name');
  }, 120_000);

  it('a {name} template over two folders: both files kept under distinct names; onCollision: fail fails the second naming both', async () => {
    const w = await workspace('remotePath: "{name}"\n');
    const files = ['x/same.txt', 'y/same.txt'];
    await put(w.inbox, files[0]!, 'the one in x');
    await put(w.inbox, files[1]!, 'the one in y, longer');
    const r = await backfill(w.dir, w.cfg);
    expect(r.code, r.output).toBe(0);
    const where = await whereStored(w.clouds, w.archive, w.inbox, files);
    for (const [target, byFile] of Object.entries(where)) {
      expect(byFile[files[0]!], target).toHaveLength(1);
      expect(byFile[files[1]!], target).toHaveLength(1);
      expect(byFile[files[0]!]![0]).not.toBe(byFile[files[1]!]![0]);
    }

    const f = await workspace('remotePath: "{name}"\nonCollision: fail\n');
    await put(f.inbox, files[0]!, 'the one in x');
    await put(f.inbox, files[1]!, 'the one in y, longer');
    const failed = await backfill(f.dir, f.cfg);
    expect(failed.code).toBe(1);
    // The first keeps the name; the second fails with a reason naming both, on every target.
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(path.join(f.dir, 'state', 'stagecoach.db'), { readonly: true });
    try {
      const rows = db.prepare(`SELECT d.target, d.last_error FROM deliveries d WHERE d.status = 'failed'`).all() as Array<{ target: string; last_error: string }>;
      expect(rows.map((x) => x.target).sort()).toEqual(['box', 'dropbox', 'gdrive', 'local', 'onedrive']);
      for (const x of rows) expect(x.last_error).toMatch(/inbox\/x\/same\.txt/);
      for (const x of rows) expect(x.last_error).toMatch(/inbox\/y\/same\.txt/);
    } finally {
      db.close();
    }
  }, 180_000);
});
