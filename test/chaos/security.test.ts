/**
 * Security (issue 6, item 9): no secret or token in any log line of a faulty run; token and
 * state files readable by the owner only; remote paths can never leave the remote root.
 */
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderRemotePath } from '../../src/archive/remote-path.js';
import { StagecoachError } from '../../src/errors.js';
import { faultMix } from '../emulators/run.js';
import { runCli } from '../helpers/daemon.js';
import { bytes, listFiles, tempDir, waitFor } from '../helpers/fs.js';
import { CLOUDS } from '../e2e/clouds.js';
import { drop, rng, workspace } from './chaos-kit.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Every string of 12+ characters inside a JSON or text file (tokens kept by the targets). */
function tokenLike(text: string): string[] {
  try {
    const out: string[] = [];
    const walk = (v: unknown): void => {
      // Numbers, URLs and timestamps (a token file's "saved at" can share its millisecond with
      // a log line's time) are not secrets.
      if (typeof v === 'string' && v.length >= 12 && !/^\d+$/.test(v) && !v.startsWith('http') && !/^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:?\d\d)$/.test(v)) out.push(v);
      else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
    };
    walk(JSON.parse(text));
    return out;
  } catch {
    const t = text.trim();
    return t.length >= 12 && !t.includes('\n') ? [t] : [];
  }
}

async function walkState(dir: string): Promise<Array<{ path: string; dir: boolean; mode: number }>> {
  const out: Array<{ path: string; dir: boolean; mode: number }> = [];
  const go = async (p: string) => {
    const s = await stat(p);
    out.push({ path: p, dir: s.isDirectory(), mode: s.mode & 0o777 });
    if (s.isDirectory()) for (const e of await readdir(p)) await go(path.join(p, e));
  };
  await go(dir);
  return out;
}

describe('security', () => {
  it('a run with 20% faults and every token expiring mid-run: no secret or token in any log line; state and token files are 0600 in 0700 folders', async () => {
    const w = await workspace('retry: { retries: 12, minDelayMs: 20, maxDelayMs: 200 }\nsupervisor: { coolDownMs: 500, coolDownMaxMs: 2s }\n');
    cleanups.push(() => w.cleanup());
    // Every log line, at debug.
    await writeFile(w.cfg, w.yaml.replace('level: warn', 'level: debug'));
    // Every token the emulators hand out.
    const issued: string[] = [];
    for (const c of CLOUDS) {
      const book = w.clouds[c].tokens;
      const issue = book.issue.bind(book);
      book.issue = (...a: Parameters<typeof issue>) => {
        const t = issue(...a);
        issued.push(t.accessToken, t.refreshToken);
        return t;
      };
    }
    const mix = faultMix(0.2);
    mix.mix = mix.mix!.filter((m) => m.kind !== 'hang'); // hangs cost timeouts; crash-loop covers them
    for (const c of CLOUDS) w.clouds[c].server.setFaults(mix);
    const files = Array.from({ length: 20 }, (_, i) => `s/f${i}.bin`);
    for (const [i, f] of files.entries()) await drop(w.inbox, f, bytes(300 + i * 11, i + 7));
    const d = w.start();
    await waitFor('a third done everywhere', () => w.rows().filter((r) => r.status === 'done').length >= 40, 60_000, 50);
    for (const c of CLOUDS) w.clouds[c].tokens.expireAll();
    for (const [i, f] of files.entries()) await drop(w.inbox, `t/${f}`, bytes(200 + i, i + 99));
    await waitFor('all done', () => w.rows().filter((r) => r.status === 'done').length === 2 * files.length * 5, 60_000, 100).catch((e: Error) => {
      const by: Record<string, number> = {};
      for (const r of w.rows()) by[`${r.target}:${r.status}`] = (by[`${r.target}:${r.status}`] ?? 0) + 1;
      throw new Error(`${e.message}: ${JSON.stringify(by)} ${JSON.stringify(w.rows().filter((r) => r.status !== 'done').slice(0, 5))}\n${d.output().split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-8).join('\n').slice(0, 4000)}`);
    });
    for (const c of CLOUDS) w.clouds[c].server.clearFaults();
    d.child.kill('SIGTERM');
    expect((await d.exited).code).toBe(0);

    const faulted = CLOUDS.reduce((a, c) => a + w.clouds[c].server.requests().filter((r) => r.fault).length, 0);
    expect(faulted).toBeGreaterThan(20);
    const stateDir = path.join(w.dir, 'state');
    const entries = await walkState(stateDir);
    const kept: string[] = [];
    // What the targets keep (their tokens) is under state/targets/; roots.json names folders, not secrets.
    const tokenFiles = entries.filter((e) => !e.dir && e.path.startsWith(path.join(stateDir, 'targets') + path.sep));
    for (const e of tokenFiles) kept.push(...tokenLike(await readFile(e.path, 'utf8')));
    const secrets = [
      ...new Set([
        'demo-gdrive-secret',
        'demo-gdrive-refresh',
        w.clouds.dropbox.credentials.clientSecret,
        w.clouds.dropbox.credentials.refreshToken,
        'box-client-secret',
        'demo-box-refresh',
        'demo-onedrive-secret',
        ...issued,
        ...kept,
      ]),
    ].filter((x): x is string => typeof x === 'string' && x.length >= 8);
    expect(kept.length).toBeGreaterThan(0); // the targets keep tokens in the state folder
    expect(entries.some((e) => e.path.endsWith('stagecoach.db'))).toBe(true);
    expect(issued.length).toBeGreaterThan(4); // tokens were issued, and again after the expiry
    const lines = d.output().split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(10); // a faulty run at debug says a lot
    const leaks = lines.flatMap((l) => secrets.filter((s) => l.includes(s)).map((s) => `${s.slice(0, 6)}… in ${l.slice(0, 200)}`));
    expect(leaks).toEqual([]);

    const loose = entries.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${path.relative(w.dir, e.path)} ${e.mode.toString(8)}`);
    expect(loose).toEqual([]);
  }, 180_000);

  it('remote paths never leave the remote root: templates and names with "..", absolute paths, NUL and separators are refused or kept inside', () => {
    const templates = ['{root}/{path}', '{path}', '/{root}/{dir}/{name}', '{dir}/{yyyy}/{name}', '{root}/../{path}', '../{path}', '/{path}', '{root}/./{name}', '{root}\\{path}', '{root}//{path}'];
    const names = ['a.txt', 'd/e.txt', '../x', '../../etc/passwd', '/etc/passwd', 'a/../../b', './a', 'a\u0000b', 'a\\..\\b', '..', '.', 'a/./b', '...', '..a', 'a..'];
    const next = rng(6);
    const alphabet = ['a', '.', '..', '/', '\\', '\u0000', ' ', 'é', '~'];
    for (let i = 0; i < 300; i++) names.push(Array.from({ length: 1 + Math.floor(next() * 8) }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''));
    const escapes: string[] = [];
    let refused = 0;
    for (const t of templates) {
      for (const n of names) {
        let out: string;
        try {
          out = renderRemotePath(t, { root: 'inbox', relPath: n, mtimeMs: 0, host: 'h' });
        } catch (e) {
          expect(e).toBeInstanceOf(StagecoachError);
          expect((e as StagecoachError).code).toBe('remote-path.unsafe');
          refused++;
          continue;
        }
        const segs = out.split('/');
        const bad = out.startsWith('/') || out.includes('\u0000') || out.includes('\\') || segs.some((s) => s === '' || s === '.' || s === '..');
        if (bad || path.posix.normalize(`/root/${out}`).indexOf('/root/') !== 0) escapes.push(`${t} + ${JSON.stringify(n)} → ${JSON.stringify(out)}`);
      }
    }
    expect(escapes).toEqual([]);
    expect(refused).toBeGreaterThan(100);
  });

  it('a remotePath template that climbs out ("../{path}") stops the daemon before anything is written', async () => {
    const t = await tempDir();
    cleanups.push(t.cleanup);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(t.dir, 'box', 'inbox'), { recursive: true });
    await writeFile(path.join(t.dir, 'box', 'inbox', 'x.txt'), 'x');
    await writeFile(path.join(t.dir, 'c.yaml'), 'remotePath: "../../{path}"\nstateDir: ./box/state\nroots: [{ path: ./box/inbox }]\ntargets: [{ type: local, path: ./box/archive }]\n');
    const r = runCli(['run', '--config', 'c.yaml'], { cwd: t.dir, timeoutMs: 20_000 });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBe(null); // it stopped by itself
    expect(`${r.stdout}${r.stderr}`).toMatch(/unsafe|remotePath/);
    // Nothing beside or above the archive folder.
    expect((await listFiles(t.dir)).filter((f) => !f.startsWith('box/state/'))).toEqual(['box/inbox/x.txt', 'c.yaml']);
  });
});
