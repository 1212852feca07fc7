import { spawn } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startGdriveEmulator } from '../emulators/gdrive/index.js';
import { CLI } from '../helpers/daemon.js';
import { listFiles, tempDir, waitFor } from '../helpers/fs.js';
import { startDaemon } from '../helpers/daemon.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Runs the CLI asynchronously (the emulator lives in this process), answering its prompt. */
function runWithInput(args: string[], cwd: string, input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('Paste') && !child.stdin.writableEnded) child.stdin.end(input);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('stagecoach auth and a target that is not signed in', () => {
  it('a Drive target with no token parks with "run stagecoach auth"; after auth it archives', async () => {
    const emu = await startGdriveEmulator();
    const t = await tempDir();
    cleanups.push(async () => {
      await emu.close();
      await emu.blobs.destroy();
      await t.cleanup();
    });
    await mkdir(path.join(t.dir, 'inbox'));
    await writeFile(path.join(t.dir, 'inbox', 'photo.jpg'), 'not really a photo');
    const cfg = path.join(t.dir, 'c.yaml');
    await writeFile(
      cfg,
      `stateDir: ./state
stableMs: 100
log: { level: warn, format: json }
http: { listen: "127.0.0.1:0" }
supervisor: { coolDownMs: 300, coolDownMaxMs: 600 }
roots: [{ path: ./inbox }]
targets:
  - type: local
    path: ./archive
  - type: gdrive
    remoteRoot: Stagecoach
    auth: { kind: oauth, clientId: ${emu.clientId}, clientSecret: ${emu.clientSecret} }
    endpoints: { rootUrl: "${emu.url}/", tokenUrl: "${emu.url}/token" }
`,
    );
    const status = async () => {
      const r = await runWithInput(['status', '--json', '--config', cfg], t.dir, '');
      return JSON.parse(r.stdout) as { targets: Array<{ target: string; state: string; done: number; reason: string | null }> };
    };
    const d1 = startDaemon(['run', '--config', cfg], { cwd: t.dir });
    cleanups.push(async () => {
      if (d1.child.exitCode === null) d1.child.kill('SIGKILL');
      await d1.exited;
    });
    const parked = await waitFor('gdrive parked', async () => (await status()).targets.find((x) => x.target === 'gdrive' && x.state === 'parked'), 20_000, 100);
    expect(parked!.reason).toMatch(/not signed in.*stagecoach auth gdrive/);
    expect((await status()).targets.find((x) => x.target === 'local')!.done).toBe(1);
    d1.child.kill('SIGTERM');
    expect((await d1.exited).code).toBe(0);

    emu.addAuthCode('code-from-the-browser');
    const auth = await runWithInput(['auth', 'gdrive', '--config', cfg], t.dir, 'code-from-the-browser\n');
    expect(auth.stderr).toBe('');
    expect(auth.code).toBe(0);
    expect(auth.stdout).toMatch(/Open this address/);
    const tokenFile = path.join(t.dir, 'state', 'targets', 'gdrive', 'refresh-token');
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    const token = (await readFile(tokenFile, 'utf8')).trim();
    expect(token.length).toBeGreaterThan(0);
    expect(auth.stdout).not.toContain(token);

    const d2 = startDaemon(['run', '--config', cfg], { cwd: t.dir });
    cleanups.push(async () => {
      if (d2.child.exitCode === null) d2.child.kill('SIGKILL');
      await d2.exited;
    });
    await waitFor('gdrive archived', async () => (await emu.tree()).some((f) => f.path.endsWith('Stagecoach/inbox/photo.jpg')), 20_000, 100);
    d2.child.kill('SIGTERM');
    expect((await d2.exited).code).toBe(0);
    expect(await listFiles(path.join(t.dir, 'archive'))).toEqual(['inbox/photo.jpg']);
    expect(d2.output()).not.toContain(token);
  });
});

describe('stagecoach auth without a terminal', () => {
  async function driveConfig(): Promise<{ dir: string; cfg: string }> {
    const t = await tempDir();
    cleanups.push(() => t.cleanup());
    await mkdir(path.join(t.dir, 'inbox'));
    const cfg = path.join(t.dir, 'c.yaml');
    // Nothing is sent anywhere: the command stops before or at its question.
    await writeFile(
      cfg,
      `stateDir: ./state
roots: [{ path: ./inbox }]
targets:
  - type: gdrive
    auth: { kind: oauth, clientId: id.apps.example, clientSecret: s3cret }
    endpoints: { rootUrl: "http://127.0.0.1:9/", tokenUrl: "http://127.0.0.1:9/token" }
`,
    );
    return { dir: t.dir, cfg };
  }

  function run(args: string[], cwd: string, stdin: 'ignore' | 'pipe'): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: [stdin, 'pipe', 'pipe'] });
      if (stdin === 'pipe') child.stdin!.end();
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  it('stdin is /dev/null (docker exec without -it): exit 2 with one line naming -it, before printing any address', async () => {
    const { dir, cfg } = await driveConfig();
    const r = await run(['auth', 'gdrive', '--config', cfg], dir, 'ignore');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^stagecoach: auth needs a terminal.*docker exec -it stagecoach stagecoach auth gdrive/);
  });

  it('input that ends before the answer: exit 2 with the same one line, no "readline was closed" stack', async () => {
    const { dir, cfg } = await driveConfig();
    const r = await run(['auth', 'gdrive', '--config', cfg], dir, 'pipe');
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/Open this address/);
    expect(r.stderr).not.toMatch(/readline|at .*\.js/);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^stagecoach: auth needs a terminal.*-it/);
  });
});
