import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

export interface Daemon {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `stagecoach <args>` as a child process (the built CLI). `permissionsApply`: file
 * permissions bind it even when the tests run as root — it runs without the capabilities that let
 * root read and write any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), through util-linux's
 * setpriv, so a chmod 000 file is unreadable to it as it would be to a normal user.
 */
export function startDaemon(
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; permissionsApply?: boolean },
): Daemon {
  assertNoDefaultPort(args, opts.cwd);
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] =
    opts.permissionsApply && asRoot
      ? ['setpriv', ['--bounding-set=-dac_override,-dac_read_search', '--', process.execPath, CLI, ...args]]
      : [process.execPath, [CLI, ...args]];
  const child = spawn(cmd, argv as string[], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: opts.uid,
    gid: opts.gid,
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => out, exited };
}

/**
 * A test daemon MUST say where its status page listens (`http.listen`: "127.0.0.1:0", or null):
 * the default, 127.0.0.1:8080, may be taken by a daemon running on the machine. Throws otherwise.
 */
function assertNoDefaultPort(args: string[], cwd: string): void {
  const i = args.indexOf('--config');
  if (args[0] !== 'run' || i < 0 || args[i + 1] === undefined) return;
  const file = path.resolve(cwd, args[i + 1]!);
  if (!/^http:/m.test(readFileSync(file, 'utf8'))) {
    throw new Error(`${file} has no http key: a test daemon must set http.listen to "127.0.0.1:0" (or null), never the default port 8080`);
  }
}

/** Runs `stagecoach <args>` to the end (bounded by timeoutMs). */
export function runCli(
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; fdLimit?: number },
): { code: number | null; stdout: string; stderr: string } {
  // `fdLimit`: the limit on open files, soft and hard (Node raises its soft limit to the hard one), set before the CLI starts.
  const [cmd, argv] = opts.fdLimit === undefined ? [process.execPath, [CLI, ...args]] : ['bash', ['-c', `ulimit -n ${opts.fdLimit} && exec "$0" "$@"`, process.execPath, CLI, ...args]];
  const r = spawnSync(cmd, argv, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
