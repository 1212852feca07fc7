/**
 * `stagecoach verify` against the five targets of config/demo.yaml (the four cloud emulators
 * through the official SDKs, and a local folder): a copy deleted in Drive (files.delete, as the
 * web page does), one replaced in Dropbox and one deleted from the local archive are all found;
 * `--report-only` leaves the journal alone; without it their deliveries go back to pending and
 * the next run archives them again, after which verify finds everything intact. The same holds
 * on a PostgreSQL journal (journal.url), where restore reads it too.
 */
import { readFile, rm, utimes, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { parseConfig, type Config } from '../../src/config/index.js';
import { restoreCommand } from '../../src/cli/restore.js';
import { verifyCommand } from '../../src/cli/verify.js';
import { openTarget } from '../../src/cli/targets.js';
import { startPipeline } from '../../src/pipeline/topology.js';
import { openJournal, openSqliteStore } from '../../src/state/index.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { deleteRemote } from '../conformance/remote-delete.js';
import { request } from '../conformance/sources.js';
import { CLOUDS, closeClouds, cloudsAndConfig, verifyClouds, type Clouds } from '../e2e/clouds.js';
import { content } from '../emulators/dropbox/raw.js';
import { FOLDER_MIME } from '../emulators/gdrive/index.js';
import { call as driveCall, related } from '../emulators/gdrive/raw-http.js';
import { bytes, tempDir } from '../helpers/fs.js';
import { createTestDatabase } from '../helpers/postgres.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const log = createLogger({ level: 'silent', format: 'json', destination: new PassThrough() });

async function backfill(config: Config): Promise<void> {
  const p = await startPipeline(config, { log, mode: 'once' });
  try {
    await Promise.race([p.idle(), p.failed]);
  } finally {
    await p.stop();
  }
}

async function verify(config: Config, args: Partial<Parameters<typeof verifyCommand>[2]> = {}) {
  let out = '';
  const code = await verifyCommand(config, log, { reportOnly: false, json: true, ...args }, { out: { write: (s: string) => (out += s) }, err: { write: () => true } });
  return { code, report: JSON.parse(out) as { ok: boolean; targets: Array<{ target: string; checked: number; ok: number; missing: number; altered: number; errors: number; extra: number | null; findings: Array<{ relPath: string; problem: string; requeued: boolean }> }> } };
}

async function counts(config: Config) {
  const store = await openSqliteStore({ dir: config.stateDir });
  try {
    return Object.fromEntries((await store.counts()).map((c) => [c.target, c]));
  } finally {
    await store.close();
  }
}

/**
 * Puts a file at `path` (from the top of the cloud) straight into an emulator, behind
 * Stagecoach's back: Box and OneDrive through the emulators' own seeding, Dropbox and Drive as
 * another client would, through the documented upload calls (Dropbox `files/upload`,
 * https://www.dropbox.com/developers/documentation/http/documentation#files-upload; Drive's
 * multipart `files.create`, https://developers.google.com/drive/api/guides/manage-uploads#multipart).
 */
async function placeRemote(clouds: Clouds, cloud: (typeof CLOUDS)[number], path: string, data: Buffer): Promise<void> {
  switch (cloud) {
    case 'box':
      await clouds.box.putFile(path, data);
      return;
    case 'onedrive':
      await clouds.onedrive.seedFile(path, data);
      return;
    case 'dropbox': {
      const res = await content(clouds.dropbox.url, clouds.dropbox.accessToken(), 'files/upload', { path: `/${path}`, mode: 'add' }, data);
      if (res.status !== 200) throw new Error(`files/upload answered ${res.status}`);
      return;
    }
    case 'gdrive': {
      const token = clouds.gdrive.issueAccessToken();
      const parts = path.split('/');
      const name = parts.pop()!;
      let parent = 'root';
      for (let i = 1; i <= parts.length; i++) {
        const at = parts.slice(0, i).join('/');
        const there = clouds.gdrive.entries().find((e) => e.folder && !e.trashed && e.path === `/${at}`);
        if (there) {
          parent = there.id;
          continue;
        }
        const made = await driveCall(clouds.gdrive, 'POST', '/drive/v3/files', { token, json: { name: parts[i - 1], mimeType: FOLDER_MIME, parents: [parent] } });
        if (made.status !== 200) throw new Error(`folder create answered ${made.status}: ${made.text}`);
        parent = made.json.id;
      }
      const res = await driveCall(clouds.gdrive, 'POST', '/upload/drive/v3/files?uploadType=multipart', {
        token,
        headers: { 'content-type': 'multipart/related; boundary=zz' },
        body: related('zz', { name, parents: [parent] }, data),
      });
      if (res.status !== 200) throw new Error(`files.create answered ${res.status}: ${res.text}`);
      return;
    }
  }
}

describe('stagecoach verify', () => {
  it('counts extra on every cloud target: files placed straight into each emulator, found over several listing pages', async () => {
    const t = await tempDir();
    const { clouds, yaml, inbox } = await cloudsAndConfig(t.dir);
    cleanups.push(async () => {
      await closeClouds(clouds);
      await t.cleanup();
    });
    const config = parseConfig(yaml, { cwd: t.dir, env: {} });
    // `what?.bin` is stored under a look-alike name on OneDrive: its listed name must still match the journal's.
    const files = ['a.bin', 'what?.bin', 'sub/b ü.bin', 'sub/deeper/c.bin', 'empty.bin'];
    const old = new Date(Date.now() - 3_600_000);
    for (const [i, f] of files.entries()) {
      await mkdir(path.dirname(path.join(inbox, f)), { recursive: true });
      await writeFile(path.join(inbox, f), bytes(f === 'empty.bin' ? 0 : 1000 + i, i + 1));
      await utimes(path.join(inbox, f), old, old);
    }
    await backfill(config);
    // Pages of two entries: every folder and Dropbox's recursive listing take several.
    clouds.dropbox.setPageSize(2);
    clouds.gdrive.setMaxPageSize(2);
    clouds.box.setMaxPageSize(2);
    clouds.onedrive.setPageSize(2);
    const clean = await verify(config);
    expect(clean.code).toBe(0);
    expect(clean.report.targets.map((s) => [s.target, s.ok, s.extra])).toEqual(config.targets.map((tc) => [tc.id, 5, 0]));
    // Each cloud's listing gives path, size and the provider hash, as `stat` does.
    for (const c of CLOUDS) {
      const target = await openTarget(config, config.targets.find((x) => x.id === c)!, log);
      try {
        const listed = new Map<string, { size: number | null; hash: string | null }>();
        for await (const e of target.list!()) listed.set(target.nameKey!(e.path), e);
        expect(listed.size, c).toBe(files.length);
        for (const f of files) {
          const st = (await target.stat(`inbox/${f}`))!;
          expect(listed.get(target.nameKey!(`inbox/${f}`)), `${c} ${f}`).toEqual({ path: expect.any(String), size: st.size, hash: st.hash });
        }
      } finally {
        await target.close();
      }
    }

    const strays = ['Stagecoach/inbox/zz stray.txt', 'Stagecoach/inbox/sub/stray 2.txt', 'Stagecoach/inbox/sub/deeper/new/stray 3.txt'];
    for (const c of CLOUDS) for (const [i, p] of strays.entries()) await placeRemote(clouds, c, p, bytes(10 + i, 70 + i));
    // Outside the target's folder: not the target's business.
    for (const c of CLOUDS) await placeRemote(clouds, c, 'elsewhere.txt', bytes(5, 1));
    const found = await verify(config);
    expect(found.code, 'extras alone do not fail verify').toBe(0);
    expect(found.report.targets.map((s) => [s.target, s.ok, s.extra])).toEqual(config.targets.map((tc) => [tc.id, 5, tc.type === 'local' ? 0 : 3]));
    expect((await verify(config, { sample: '50%' })).report.targets.every((s) => s.extra === null), 'a sample counts no extras').toBe(true);
  });

  it('finds a copy deleted in Drive, one altered in Dropbox and one deleted locally; re-archives them on the next run', async () => {
    const t = await tempDir();
    const { clouds, yaml, inbox, archive } = await cloudsAndConfig(t.dir);
    cleanups.push(async () => {
      await closeClouds(clouds);
      await t.cleanup();
    });
    const config = parseConfig(yaml, { cwd: t.dir, env: {} });
    const files = ['a.bin', 'sub/b ü.bin', 'sub/c.bin', 'empty.bin'];
    const old = new Date(Date.now() - 3_600_000);
    for (const [i, f] of files.entries()) {
      await mkdir(path.dirname(path.join(inbox, f)), { recursive: true });
      await writeFile(path.join(inbox, f), bytes(f === 'empty.bin' ? 0 : 40_000 + i, i + 1));
      await utimes(path.join(inbox, f), old, old);
    }
    await backfill(config);
    const first = await verify(config);
    expect(first.code).toBe(0);
    expect(first.report.targets.map((s) => [s.target, s.checked, s.ok])).toEqual(config.targets.map((tc) => [tc.id, 4, 4]));

    // Behind Stagecoach's back: delete in Drive, replace in Dropbox, delete from the local archive.
    const gdrive = await openTarget(config, config.targets.find((x) => x.id === 'gdrive')!, log);
    await deleteRemote({ kind: 'gdrive', emu: clouds.gdrive }, gdrive, 'inbox/a.bin');
    await gdrive.close();
    const dropbox = await openTarget(config, config.targets.find((x) => x.id === 'dropbox')!, log);
    await dropbox.put(request('inbox/sub/b ü.bin', bytes(40_001, 99)));
    await dropbox.close();
    await rm(path.join(archive, 'inbox', 'sub', 'c.bin'));

    const reported = await verify(config, { reportOnly: true });
    expect(reported.code).toBe(4);
    const found = (id: string) => reported.report.targets.find((s) => s.target === id)!;
    expect(found('gdrive')).toMatchObject({ checked: 4, ok: 3, missing: 1, altered: 0 });
    expect(found('gdrive').findings).toMatchObject([{ relPath: 'a.bin', problem: 'missing', requeued: false }]);
    expect(found('dropbox')).toMatchObject({ checked: 4, ok: 3, missing: 0, altered: 1 });
    expect(found('dropbox').findings).toMatchObject([{ relPath: 'sub/b ü.bin', problem: 'altered', requeued: false }]);
    expect(found('local')).toMatchObject({ missing: 1 });
    for (const id of ['box', 'onedrive']) expect(found(id)).toMatchObject({ checked: 4, ok: 4 });
    expect((await counts(config)).gdrive!.pending, '--report-only leaves the journal alone').toBe(0);

    const requeued = await verify(config, { target: 'gdrive,dropbox,local' });
    expect(requeued.code).toBe(4);
    expect(requeued.report.targets.flatMap((s) => s.findings.map((f) => f.requeued))).toEqual([true, true, true]);
    const c = await counts(config);
    expect([c.gdrive!.pending, c.dropbox!.pending, c.local!.pending, c.box!.pending]).toEqual([1, 1, 1, 0]);

    await backfill(config);
    const after = await verify(config);
    expect(after.code).toBe(0);
    expect(after.report.targets.every((s) => s.ok === 4)).toBe(true);
    expect(await verifyClouds(clouds, inbox, files)).toEqual([]);
  });

  it('--sample checks the least recently verified share; bad flags are usage errors', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const inbox = path.join(t.dir, 'inbox');
    await mkdir(inbox);
    const config = parseConfig(`stateDir: ./state\nroots: [{ path: ./inbox }]\ntargets: [{ type: local, path: ./archive }]\nlog: { level: warn, format: json }\n`, { cwd: t.dir, env: {} });
    const old = new Date(Date.now() - 3_600_000);
    for (let i = 0; i < 10; i++) {
      await writeFile(path.join(inbox, `f${i}`), bytes(100, i + 1));
      await utimes(path.join(inbox, `f${i}`), old, old);
    }
    await backfill(config);
    const a = await verify(config, { sample: '30%' });
    const b = await verify(config, { sample: '30' });
    expect([a.report.targets[0]!.checked, b.report.targets[0]!.checked]).toEqual([3, 3]);
    const store = await openSqliteStore({ dir: config.stateDir });
    const verified = (await store.audit.doneCopies('local')).filter((d) => d.verifiedAt !== null).length;
    await store.close();
    expect(verified, 'two samples of 30% covered 6 different copies').toBe(6);
    await expect(verify(config, { sample: '0' })).rejects.toThrow(/--sample/);
    await expect(verify(config, { target: 'nope' })).rejects.toThrow(/--target: no target "nope"/);
    await expect(verify(config, { root: 'nope' })).rejects.toThrow(/--root: no root named "nope"/);
  });

  it('on a PostgreSQL journal: finds a deleted copy, requeues it, records verified copies, and restore reads the journal', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const db = await createTestDatabase(inject('pgUrl'));
    cleanups.push(db.drop);
    const inbox = path.join(t.dir, 'inbox');
    await mkdir(path.join(inbox, 'sub'), { recursive: true });
    const config = parseConfig(
      `stateDir: ./state\njournal: { url: "${db.url}" }\nroots: [{ path: ./inbox }]\ntargets: [{ type: local, path: ./archive }]\nlog: { level: warn, format: json }\n`,
      { cwd: t.dir, env: {} },
    );
    const old = new Date(Date.now() - 3_600_000);
    const files = ['a.bin', 'sub/b.bin', 'sub/c.bin'];
    for (const [i, f] of files.entries()) {
      await writeFile(path.join(inbox, f), bytes(1000 + i, i + 1));
      await utimes(path.join(inbox, f), old, old);
    }
    await backfill(config);
    expect((await verify(config)).report.targets[0]).toMatchObject({ checked: 3, ok: 3, extra: 0 });
    // The local target lists its folder: a stray file counts as extra; a put's temp leftover and
    // a kept version beside its file do not. A sample does not count extras.
    await writeFile(path.join(t.dir, 'archive', 'inbox', 'sub', 'stray.txt'), 'x');
    await writeFile(path.join(t.dir, 'archive', 'inbox', '.a.bin.stagecoach-00ff.tmp'), 'x');
    await writeFile(path.join(t.dir, 'archive', 'inbox', 'a.20240102-030405.bin'), 'x');
    expect((await verify(config)).report.targets[0]).toMatchObject({ ok: 3, extra: 1 });
    expect((await verify(config, { sample: '50%' })).report.targets[0]!.extra).toBeNull();
    await rm(path.join(t.dir, 'archive', 'inbox', 'sub', 'c.bin'));
    const found = await verify(config);
    expect(found.code).toBe(4);
    expect(found.report.targets[0]!.findings).toMatchObject([{ relPath: 'sub/c.bin', problem: 'missing', requeued: true }]);
    const store = await openJournal(config);
    try {
      expect((await store.counts())[0]).toMatchObject({ pending: 1, done: 2 });
      expect((await store.audit.doneCopies('local')).every((d) => d.verifiedAt !== null)).toBe(true);
    } finally {
      await store.close();
    }
    await backfill(config);
    expect((await verify(config)).code).toBe(0);

    const to = path.join(t.dir, 'restored');
    let out = '';
    const code = await restoreCommand(config, log, { patterns: ['inbox/sub'], to, overwrite: false, list: false, json: false }, { out: { write: (s: string) => (out += s) }, err: { write: () => true } });
    expect(code, out).toBe(0);
    for (const f of ['sub/b.bin', 'sub/c.bin']) expect(await readFile(path.join(to, 'inbox', f))).toEqual(await readFile(path.join(inbox, f)));
  });
});
