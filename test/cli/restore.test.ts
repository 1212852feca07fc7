/**
 * `stagecoach restore` against the five targets of config/demo.yaml (four cloud emulators through
 * the official SDKs, and a local folder): a folder comes back byte for byte with its mtimes; with
 * every first target's copy deleted (Drive files.delete) and every second's replaced (Dropbox),
 * each file comes from the third (Box) and the output says why; an existing file is kept unless
 * --overwrite; `--list` tells per target whether a good copy exists; a cut download resumes
 * (Box from a partial file left in place; Dropbox after the emulator broke its download part way,
 * asking only the rest with a Range header).
 */
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../src/config/index.js';
import { hashFile } from '../../src/archive/hash.js';
import { restoreCommand, type RestoreCliOptions } from '../../src/cli/restore.js';
import { openTarget } from '../../src/cli/targets.js';
import { startPipeline } from '../../src/pipeline/topology.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { deleteRemote } from '../conformance/remote-delete.js';
import { request } from '../conformance/sources.js';
import { closeClouds, cloudsAndConfig } from '../e2e/clouds.js';
import { bytes, tempDir } from '../helpers/fs.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const log = createLogger({ level: 'silent', format: 'json', destination: new PassThrough() });

async function restore(config: Config, args: Partial<RestoreCliOptions>) {
  let out = '';
  let err = '';
  const code = await restoreCommand(
    config,
    log,
    { patterns: [], overwrite: false, list: false, json: false, ...args },
    { out: { write: (s: string) => (out += s) }, err: { write: (s: string) => (err += s) } },
  );
  return { code, out, err };
}

const FILES = ['photos/a.jpg', 'photos/2024/b ü.raw', 'photos/2024/empty.txt', 'docs/other.txt'];
const SIZES = [70_000, 300_001, 0, 10];

async function archived() {
  const t = await tempDir();
  const { clouds, yaml, inbox } = await cloudsAndConfig(t.dir);
  cleanups.push(async () => {
    await closeClouds(clouds);
    await t.cleanup();
  });
  const config = parseConfig(yaml, { cwd: t.dir, env: {} });
  const mtimes = new Map<string, number>();
  for (const [i, f] of FILES.entries()) {
    const p = path.join(inbox, f);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, bytes(SIZES[i]!, i + 3));
    const when = new Date(Date.UTC(2021, 3, 1 + i, 10, 0, 0));
    await utimes(p, when, when);
    mtimes.set(f, when.getTime());
  }
  const p = await startPipeline(config, { log, mode: 'once' });
  try {
    await Promise.race([p.idle(), p.failed]);
  } finally {
    await p.stop();
  }
  return { dir: t.dir, clouds, config, inbox, mtimes };
}

describe('stagecoach restore', () => {
  it('brings a folder back byte for byte with its mtimes; keeps existing files unless --overwrite', async () => {
    const s = await archived();
    const to = path.join(s.dir, 'back');
    const r = await restore(s.config, { patterns: ['inbox/photos'], to });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/3 restored, 0 skipped/);
    for (const [i, f] of FILES.entries()) {
      const back = path.join(to, 'inbox', f);
      if (!f.startsWith('photos/')) {
        await expect(stat(back)).rejects.toThrow();
        continue;
      }
      expect((await readFile(back)).equals(bytes(SIZES[i]!, i + 3)), f).toBe(true);
      expect((await stat(back)).mtimeMs).toBe(s.mtimes.get(f));
    }
    expect(r.out, 'the local target is tried first').toMatch(/restored inbox\/photos\/a\.jpg → .* from local\n/);

    await writeFile(path.join(to, 'inbox', 'photos', 'a.jpg'), 'mine');
    const again = await restore(s.config, { patterns: ['inbox/photos/*.jpg'], to });
    expect(again.code).toBe(4);
    expect(again.out).toMatch(/SKIPPED inbox\/photos\/a\.jpg/);
    expect(await readFile(path.join(to, 'inbox', 'photos', 'a.jpg'), 'utf8')).toBe('mine');
    const forced = await restore(s.config, { patterns: ['inbox/photos/*.jpg'], to, overwrite: true, from: 'onedrive' });
    expect(forced.code, forced.out).toBe(0);
    expect((await readFile(path.join(to, 'inbox', 'photos', 'a.jpg'))).equals(bytes(SIZES[0]!, 3))).toBe(true);

    const none = restore(s.config, { patterns: ['inbox/nothing'] });
    await expect(none).rejects.toThrow(/nothing in the journal matches/);
  });

  it('with the first target copy deleted and the second altered, each file comes from the third, saying why', async () => {
    const s = await archived();
    const gdrive = await openTarget(s.config, s.config.targets.find((x) => x.id === 'gdrive')!, log);
    const dropbox = await openTarget(s.config, s.config.targets.find((x) => x.id === 'dropbox')!, log);
    for (const [i, f] of FILES.entries()) {
      await deleteRemote({ kind: 'gdrive', emu: s.clouds.gdrive }, gdrive, `inbox/${f}`);
      await dropbox.put(request(`inbox/${f}`, bytes(SIZES[i]! + 1, 50 + i)));
    }
    await gdrive.close();
    await dropbox.close();

    const listed = await restore(s.config, { patterns: ['inbox/photos/a.jpg'], list: true, from: 'gdrive,dropbox,box' });
    expect(listed.out).toMatch(/gdrive\s+missing/);
    expect(listed.out).toMatch(/dropbox\s+altered/);
    expect(listed.out).toMatch(/box\s+ok/);

    const to = path.join(s.dir, 'back');
    const r = await restore(s.config, { patterns: ['inbox'], to, from: 'gdrive,dropbox,box' });
    expect(r.code, r.out).toBe(0);
    for (const [i, f] of FILES.entries()) {
      expect((await readFile(path.join(to, 'inbox', f))).equals(bytes(SIZES[i]!, i + 3)), f).toBe(true);
      const esc = `inbox/${f}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      expect(r.out).toMatch(new RegExp(`restored ${esc} → .* from box \\(no copy on gdrive; the copy on dropbox was altered`));
    }
  });

  it('a download cut short resumes from the partial file on a target with ranged downloads', async () => {
    const s = await archived();
    const to = path.join(s.dir, 'back');
    const f = 'photos/2024/b ü.raw';
    const full = bytes(SIZES[1]!, 4);
    // What a cut download leaves: the first 100,000 bytes under the temp name.
    const box = await openTarget(s.config, s.config.targets.find((x) => x.id === 'box')!, log);
    const hash = (await box.stat(`inbox/${f}`))!.hash!;
    await box.close();
    const dir = path.join(to, 'inbox', 'photos', '2024');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `.b ü.raw.box.${hash.slice(0, 16)}.stagecoach-part`), full.subarray(0, 100_000));
    const r = await restore(s.config, { patterns: [`inbox/${f}`], to, from: 'box' });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/resumed at byte 100000/);
    expect((await readFile(path.join(dir, 'b ü.raw'))).equals(full)).toBe(true);
  });

  it('a Dropbox download broken part way resumes from the partial file: the emulator serves only the rest', async () => {
    const s = await archived();
    const to = path.join(s.dir, 'back');
    const f = 'photos/2024/b ü.raw';
    const full = bytes(SIZES[1]!, 4);
    const dir = path.join(to, 'inbox', 'photos', '2024');
    s.clouds.dropbox.cutDownloads(120_000);
    const first = await restore(s.config, { patterns: [`inbox/${f}`], to, from: 'dropbox' });
    expect(first.code, first.out).not.toBe(0);
    const part = (await readdir(dir)).find((n) => n.endsWith('.stagecoach-part'));
    expect(part, 'the broken download left its partial file').toBeDefined();
    const have = (await stat(path.join(dir, part!))).size;
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThanOrEqual(120_000);

    const second = await restore(s.config, { patterns: [`inbox/${f}`], to, from: 'dropbox' });
    expect(second.code, second.out).toBe(0);
    expect(second.out).toMatch(new RegExp(`from dropbox \\(resumed at byte ${have}\\)`));
    const back = path.join(dir, 'b ü.raw');
    expect((await readFile(back)).equals(full)).toBe(true);
    const dropbox = await openTarget(s.config, s.config.targets.find((x) => x.id === 'dropbox')!, log);
    expect(await hashFile('dropbox', back)).toBe((await dropbox.stat(`inbox/${f}`))!.hash);
    await dropbox.close();
    const served = s.clouds.dropbox.downloads();
    expect(served).toHaveLength(2);
    expect(served[0]).toMatchObject({ range: null, status: 200, bytes: 120_000 });
    expect(served[1], 'only the bytes after the partial file').toMatchObject({ range: `bytes=${have}-`, status: 206, bytes: full.length - have });
  });
});
