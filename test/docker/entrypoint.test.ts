import { spawnSync } from 'node:child_process';
import { lstat, readFile, readlink, stat, writeFile, mkdir } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { type Call, DEFAULT_CONFIG, ENTRYPOINT, type FakeRoot, WRAPPER, fakeRoot } from './fake-root.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function container(): Promise<FakeRoot> {
  const f = await fakeRoot();
  cleanups.push(f.cleanup);
  return f;
}

const of = (calls: Call[], cmd: string) => calls.filter((c) => c.cmd === cmd).map((c) => c.args);
const MAIN = '/app/dist/bundle/main.js';

/**
 * The config a first start writes: the default one with a generated 64-hex-character http.token,
 * mode 0600. Returns the token.
 */
async function expectFirstStartConfig(file: string): Promise<string> {
  const written = await readFile(file, 'utf8');
  const token = /^ {2}token: "([0-9a-f]{64})"$/m.exec(written)?.[1];
  expect(token, written).toBeDefined();
  expect(written).toBe((await readFile(DEFAULT_CONFIG, 'utf8')).replace(/^ {2}token: null.*$/m, `  token: "${token}"`));
  expect((await stat(file)).mode & 0o777).toBe(0o600);
  return token!;
}

describe('docker/entrypoint.sh and docker/stagecoach: syntax', () => {
  for (const file of [ENTRYPOINT, WRAPPER]) {
    for (const shell of ['sh', 'bash']) {
      it(`${shell} -n ${file.split('/').slice(-2).join('/')}`, () => {
        const r = spawnSync(shell, ['-n', file], { encoding: 'utf8' });
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
      });
    }
  }
});

describe('docker/entrypoint.sh as root', () => {
  it('first start: creates the user with PUID/PGID, sets TZ, copies the default config, chowns /config only, then execs node as that user with the arguments', async () => {
    const c = await container();
    const r = await c.run(ENTRYPOINT, ['run', '--config', '/config/x y.yaml'], { PUID: '1234', PGID: '2345', TZ: 'Europe/Berlin', FAKE_NODE_EXIT: '7' });

    expect(r.stderr).toContain('first start');
    await expectFirstStartConfig(c.at('config/stagecoach.yaml'));
    expect(r.stderr).toContain('the status page asks for a token: it is http.token in /config/stagecoach.yaml');

    expect(of(r.calls, 'groupadd')).toEqual([['-g', '2345', 'stagecoach']]);
    expect(of(r.calls, 'useradd')).toEqual([['-o', '-u', '1234', '-g', '2345', '-d', '/config', '-M', '-s', '/usr/sbin/nologin', 'stagecoach']]);
    expect(await readFile(c.at('etc/passwd'), 'utf8')).toContain('stagecoach:x:1234:2345::/config:/usr/sbin/nologin\n');

    expect(await readlink(c.at('etc/localtime'))).toBe('/usr/share/zoneinfo/Europe/Berlin');
    expect(await readFile(c.at('etc/timezone'), 'utf8')).toBe('Europe/Berlin\n');

    // /config recursively, /data never: a NAS share may be huge and is not ours
    expect(of(r.calls, 'chown')).toEqual([['-R', '1234:2345', c.at('config')]]);

    const privDrops = of(r.calls, 'setpriv');
    expect(privDrops.at(-1)?.slice(0, 6)).toEqual(['--reuid=1234', '--regid=2345', '--clear-groups', '--no-new-privs', '--', 'env']);
    expect(of(r.calls, 'node')).toEqual([[MAIN, 'run', '--config', '/config/x y.yaml']]);
    expect(r.node).toMatchObject({ HOME: '/config', USER: 'stagecoach', STAGECOACH_CONFIG: '/config/stagecoach.yaml', TZ: 'Europe/Berlin' });
    // exec all the way down: node has the shell's pid (so it gets the signals) and its exit code
    expect(Number(r.node?.pid)).toBe(r.pid);
    expect(r.code).toBe(7);
  });

  it('each first start generates its own token, and the config it writes is valid and never shows it in the log', async () => {
    const tokens = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const c = await container();
      const r = await c.run(ENTRYPOINT, ['run']);
      const token = await expectFirstStartConfig(c.at('config/stagecoach.yaml'));
      expect(r.stderr).not.toContain(token);
      const config = parseConfig(await readFile(c.at('config/stagecoach.yaml'), 'utf8'), { cwd: '/app', env: {} });
      expect(config.http).toMatchObject({ listen: { host: '0.0.0.0', port: 8080 }, token });
      tokens.add(token);
    }
    expect(tokens.size).toBe(2);
  });

  it.each([
    [{ PUID: '0' }, 'PUID=0 PGID=1000'],
    [{ PGID: '0' }, 'PUID=1000 PGID=0'],
    [{ PUID: '000', PGID: '0' }, 'PUID=000 PGID=0'],
  ])('refuses to run the daemon as root (%j) before anything is changed', async (env, shown) => {
    const c = await container();
    const r = await c.run(ENTRYPOINT, ['run'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${shown} would run the daemon as root`);
    expect(r.stderr).toContain('STAGECOACH_ALLOW_ROOT=1');
    for (const cmd of ['groupadd', 'useradd', 'usermod', 'chown', 'setpriv', 'node']) expect(of(r.calls, cmd), cmd).toEqual([]);
    await expect(lstat(c.at('config/stagecoach.yaml'))).rejects.toThrow(/ENOENT/);
  });

  it('runs as root when STAGECOACH_ALLOW_ROOT=1 says so', async () => {
    const c = await container();
    const r = await c.run(ENTRYPOINT, ['run'], { PUID: '0', PGID: '0', STAGECOACH_ALLOW_ROOT: '1' });
    expect(r.code).toBe(0);
    expect(of(r.calls, 'setpriv').at(-1)?.slice(0, 2)).toEqual(['--reuid=0', '--regid=0']);
    expect(of(r.calls, 'node')).toEqual([[MAIN, 'run']]);
  });

  it('a later start keeps an edited config and, with the same ids, changes no user', async () => {
    const c = await container();
    const env = { PUID: '1234', PGID: '2345' };
    await c.run(ENTRYPOINT, ['run'], env);
    await writeFile(c.at('config/stagecoach.yaml'), 'roots: [{ path: /data/mine }]\n');

    const r = await c.run(ENTRYPOINT, ['run'], env);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('first start');
    expect(await readFile(c.at('config/stagecoach.yaml'), 'utf8')).toBe('roots: [{ path: /data/mine }]\n');
    for (const cmd of ['groupadd', 'groupmod', 'useradd', 'usermod']) expect(of(r.calls, cmd), cmd).toEqual([]);
    expect(of(r.calls, 'node')).toEqual([[MAIN, 'run']]);
  });

  it('a later start with other PUID/PGID moves the user and the group to them', async () => {
    const c = await container();
    await c.run(ENTRYPOINT, ['run'], { PUID: '1234', PGID: '2345' });
    const r = await c.run(ENTRYPOINT, ['run'], { PUID: '1500', PGID: '1600' });
    expect(of(r.calls, 'groupmod')).toEqual([['-g', '1600', 'stagecoach']]);
    expect(of(r.calls, 'usermod')).toEqual([['-o', '-u', '1500', '-g', '1600', 'stagecoach']]);
    expect(await readFile(c.at('etc/passwd'), 'utf8')).toContain('stagecoach:x:1500:1600:');
    expect(of(r.calls, 'chown')).toEqual([['-R', '1500:1600', c.at('config')]]);
    expect(of(r.calls, 'setpriv').at(-1)?.slice(0, 2)).toEqual(['--reuid=1500', '--regid=1600']);
  });

  it('a PGID that a group already has (Unraid: 100, users) is used as it is', async () => {
    const c = await container();
    const r = await c.run(ENTRYPOINT, ['run'], { PUID: '99', PGID: '100' });
    expect(of(r.calls, 'groupadd')).toEqual([]);
    expect(of(r.calls, 'groupmod')).toEqual([]);
    expect(await readFile(c.at('etc/passwd'), 'utf8')).toContain('stagecoach:x:99:100:');
    expect(of(r.calls, 'setpriv').at(-1)?.slice(0, 2)).toEqual(['--reuid=99', '--regid=100']);
    expect(r.code).toBe(0);
  });

  it('defaults to 1000:1000 and /config/stagecoach.yaml', async () => {
    const c = await container();
    const r = await c.run(ENTRYPOINT, ['status']);
    expect(of(r.calls, 'setpriv').at(-1)?.slice(0, 2)).toEqual(['--reuid=1000', '--regid=1000']);
    expect(r.node?.STAGECOACH_CONFIG).toBe('/config/stagecoach.yaml');
    await expectFirstStartConfig(c.at('config/stagecoach.yaml'));
  });

  it('STAGECOACH_CONFIG elsewhere: the default config is copied there', async () => {
    const c = await container();
    const r = await c.run(ENTRYPOINT, ['run'], { STAGECOACH_CONFIG: '/config/sub/other.yaml' });
    await expectFirstStartConfig(c.at('config/sub/other.yaml'));
    await expect(lstat(c.at('config/stagecoach.yaml'))).rejects.toThrow(/ENOENT/);
    expect(r.node?.STAGECOACH_CONFIG).toBe('/config/sub/other.yaml');
  });

  it('an unknown or escaping TZ is warned about and leaves /etc/localtime alone', async () => {
    for (const tz of ['Mars/Olympus', '../../../etc/passwd']) {
      const c = await container();
      const r = await c.run(ENTRYPOINT, ['run'], { TZ: tz });
      expect(r.stderr).toContain(`unknown time zone TZ="${tz}"`);
      await expect(lstat(c.at('etc/localtime'))).rejects.toThrow(/ENOENT/);
      expect(r.code).toBe(0);
      expect(of(r.calls, 'node')).toHaveLength(1);
    }
  });

  it('a /data the user cannot read is warned about, never chowned, and the daemon still starts', async () => {
    const c = await container();
    const r = await c.run(ENTRYPOINT, ['run'], { PUID: '1234', PGID: '2345', FAKE_UNREADABLE: '1' });
    expect(r.stderr).toContain('/data is not readable by 1234:2345');
    expect(of(r.calls, 'chown').flat().some((a) => a.includes('/data'))).toBe(false);
    expect(of(r.calls, 'node')).toEqual([[MAIN, 'run']]);

    const ok = await c.run(ENTRYPOINT, ['run'], { PUID: '1234', PGID: '2345' });
    expect(ok.stderr).not.toContain('not readable');
  });

  it('a PUID or PGID that is not a number stops before anything is changed', async () => {
    for (const env of [{ PUID: 'admin' }, { PGID: '10 0' }, { PUID: '-1' }] as Record<string, string>[]) {
      const c = await container();
      const r = await c.run(ENTRYPOINT, ['run'], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/P[UG]ID must be a number/);
      expect(r.calls.map((x) => x.cmd).filter((x) => x !== 'getent')).toEqual([]);
      await expect(lstat(c.at('config'))).rejects.toThrow(/ENOENT/);
    }
  });
});

describe('docker/entrypoint.sh as another user (docker run --user)', () => {
  it('changes no user and no owner, still copies the config, and execs node directly', async () => {
    const c = await container();
    await mkdir(c.at('config'));
    const r = await c.run(ENTRYPOINT, ['backfill', '--once'], { FAKE_UID: '1000', FAKE_GID: '1000', FAKE_NODE_EXIT: '3' });
    expect(r.stderr).toContain('not root');
    for (const cmd of ['groupadd', 'groupmod', 'useradd', 'usermod', 'chown', 'setpriv']) expect(of(r.calls, cmd), cmd).toEqual([]);
    await expectFirstStartConfig(c.at('config/stagecoach.yaml'));
    expect(of(r.calls, 'node')).toEqual([[MAIN, 'backfill', '--once']]);
    expect(Number(r.node?.pid)).toBe(r.pid);
    expect(r.code).toBe(3);
    expect((await lstat(c.at('config/stagecoach.yaml'))).isFile()).toBe(true);
  });
});

describe('docker/stagecoach (the CLI for docker exec)', () => {
  it('as root, runs the CLI as PUID:PGID so the tokens `auth` saves stay readable by the daemon', async () => {
    const c = await container();
    const r = await c.run(WRAPPER, ['auth', 'gdrive'], { PUID: '1234', PGID: '2345' });
    expect(of(r.calls, 'setpriv')).toEqual([['--reuid=1234', '--regid=2345', '--clear-groups', '--no-new-privs', '--', 'env', 'HOME=/config', 'USER=stagecoach', 'node', MAIN, 'auth', 'gdrive']]);
    expect(of(r.calls, 'node')).toEqual([[MAIN, 'auth', 'gdrive']]);
    expect(Number(r.node?.pid)).toBe(r.pid);
  });

  it('as another user, runs the CLI directly', async () => {
    const c = await container();
    const r = await c.run(WRAPPER, ['status', '--json'], { FAKE_UID: '1000', FAKE_NODE_EXIT: '1' });
    expect(of(r.calls, 'setpriv')).toEqual([]);
    expect(of(r.calls, 'node')).toEqual([[MAIN, 'status', '--json']]);
    expect(r.code).toBe(1);
  });
});
