/**
 * Docker cannot run here, so the Dockerfile, docker-compose.yml and the systemd unit are checked
 * by reading: what they copy exists and reaches the build context, and the numbers that must
 * agree (ports, stop timeouts against shutdownMs) do.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig, parseDuration } from '../../src/config/index.js';
import { ROOT } from '../helpers/daemon.js';

const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): { op: string; arg: string }[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op = '', ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), arg: rest.join(' ') };
    });
}

const stages = (() => {
  const out: { op: string; arg: string }[][] = [];
  for (const ins of instructions(read('Dockerfile'))) {
    if (ins.op === 'FROM') out.push([]);
    out.at(-1)?.push(ins);
  }
  return out;
})();
const build = stages[0] ?? [];
const runtime = stages[1] ?? [];

/** The docker default config as the daemon would read it. */
function dockerConfig() {
  const doc = parseYaml(read('docker/stagecoach.yaml')) as Record<string, unknown>;
  return doc;
}

function seconds(v: string): number {
  const m = /^(\d+)(s|m)?$/.exec(v.trim());
  if (!m) throw new Error(`not a duration: ${v}`);
  return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
}

describe('Dockerfile', () => {
  it('has a build stage and a runtime stage, both on node:24-bookworm-slim pinned by one digest', () => {
    expect(stages).toHaveLength(2);
    const pinned = /^node:24-bookworm-slim@(sha256:[0-9a-f]{64})( AS build)?$/;
    const b = pinned.exec(build[0]?.arg ?? '');
    const r = pinned.exec(runtime[0]?.arg ?? '');
    expect(b?.[2]).toBe(' AS build');
    expect(r?.[2]).toBeUndefined();
    expect(r?.[1]).toBe(b?.[1]);
  });

  it('has the base image digest kept current by Dependabot', () => {
    const { updates } = parseYaml(read('.github/dependabot.yml')) as { updates: Record<string, unknown>[] };
    expect(updates).toContainEqual(expect.objectContaining({ 'package-ecosystem': 'docker', directory: '/' }));
  });

  it('compiles only in the build stage, and the runtime gets production dependencies only', () => {
    const runs = (s: typeof build) => s.filter((i) => i.op === 'RUN').map((i) => i.arg).join('\n');
    expect(runs(build)).toMatch(/python3 make g\+\+/);
    expect(runs(build)).toMatch(/npm prune --omit=dev/);
    expect(runs(runtime)).not.toMatch(/g\+\+|npm (ci|install)/);
    expect(runtime.filter((i) => i.op === 'COPY' && i.arg.includes('node_modules')).map((i) => i.arg)).toEqual(['--from=build /app/node_modules ./node_modules']);
  });

  it('builds the native syncfs module in the build stage (npm ci\'s postinstall) and gives the runtime the module, not its build', () => {
    const at = (op: string, arg: string) => build.findIndex((i) => i.op === op && i.arg === arg);
    const ci = at('RUN', 'npm ci');
    expect(ci).toBeGreaterThan(0);
    // postinstall runs scripts/build-native.mjs on native/fs-native.c: both are there before it.
    expect(at('COPY', 'scripts ./scripts')).toBeGreaterThan(0);
    expect(at('COPY', 'scripts ./scripts')).toBeLessThan(ci);
    expect(at('COPY', 'native ./native')).toBeLessThan(ci);
    expect(at('COPY', 'native ./native')).toBeGreaterThan(0);
    expect(JSON.parse(read('package.json')).scripts.postinstall).toBe('node scripts/build-native.mjs');
    expect(runtime.filter((i) => i.op === 'COPY' && i.arg.includes('native')).map((i) => i.arg)).toEqual(['--from=build /app/native/build ./native/build']);
    // A module built on the host (another libc or CPU) never reaches the image's build.
    expect(read('.dockerignore').split('\n').map((l) => l.trim())).toContain('native/build');
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const sources = [...build, ...runtime]
      .filter((i) => i.op === 'COPY' && !i.arg.startsWith('--from'))
      .flatMap((i) => i.arg.split(/\s+/).slice(0, -1));
    expect(sources).toContain('docker/entrypoint.sh');
    for (const src of sources) {
      expect(existsSync(path.join(ROOT, src)), src).toBe(true);
      const top = src.split('/')[0];
      expect(ignored.filter((g) => g === src || g === top), src).toEqual([]);
    }
  });

  it('runs the entrypoint under tini with the config in /config and the volumes /config and /data', () => {
    const one = (op: string) => runtime.filter((i) => i.op === op).map((i) => i.arg);
    expect(one('ENTRYPOINT')).toEqual(['["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]']);
    expect(one('RUN').join('\n')).toMatch(/install .*\btini\b/);
    expect(one('CMD')).toEqual(['["run"]']);
    expect(one('VOLUME')).toEqual(['["/config", "/data"]']);
    expect(one('ENV').join(' ')).toContain('STAGECOACH_CONFIG=/config/stagecoach.yaml');
    expect(one('USER')).toEqual([]); // the entrypoint must start as root to apply PUID/PGID
  });

  it('checks the health on the port the default config listens on', () => {
    const health = runtime.find((i) => i.op === 'HEALTHCHECK')?.arg ?? '';
    const listen = (dockerConfig().http as { listen: string }).listen;
    expect(listen).toBe('0.0.0.0:8080');
    expect(health).toContain(`http://127.0.0.1:${listen.split(':')[1]}/healthz`);
    expect(runtime.find((i) => i.op === 'EXPOSE')?.arg).toBe(listen.split(':')[1]);
  });
});

describe('docker/stagecoach.yaml', () => {
  it('is a valid config with the journal in /config and the folders in /data, once the first start has put a token in', () => {
    const doc = dockerConfig();
    // Without one, 0.0.0.0 is refused (test/docker/entrypoint.test.ts writes the real one).
    expect(() => parseConfig(JSON.stringify(doc), { cwd: '/app', env: {} })).toThrow(/http\.token: is required/);
    (doc.http as { token: string }).token = 'f'.repeat(64);
    const config = parseConfig(JSON.stringify(doc), { cwd: '/app', env: {} });
    expect(config.stateDir).toBe('/config/state');
    expect(config.roots.map((r) => r.path)).toEqual(['/data/inbox']);
    expect(config.targets.map((t) => (t.type === 'local' ? t.path : t.type))).toEqual(['/data/archive']);
    expect(config.log.format).toBe('json');
    expect(config.http.listen).toEqual({ host: '0.0.0.0', port: 8080 });
  });
});

describe('docker-compose.yml', () => {
  const compose = parseYaml(read('docker-compose.yml')) as {
    services: Record<string, { environment: Record<string, string>; volumes: string[]; ports: string[]; restart: string; stop_grace_period: string }>;
  };
  const svc = compose.services.stagecoach!;

  it('sets PUID/PGID/TZ, mounts /config and /data, and publishes the port on the LAN (the page wants http.token)', () => {
    expect(Object.keys(svc.environment)).toEqual(expect.arrayContaining(['PUID', 'PGID', 'TZ']));
    expect(svc.volumes.map((v) => v.split(':')[1])).toEqual(['/config', '/data']);
    expect(svc.ports).toEqual(['8080:8080']);
    expect(svc.restart).toBe('unless-stopped');
  });

  it('gives docker stop more time than shutdownMs', () => {
    const shutdownMs = parseDuration(String(dockerConfig().shutdownMs)) ?? Number.NaN;
    expect(seconds(svc.stop_grace_period) * 1000).toBeGreaterThan(shutdownMs);
  });
});

describe('config/stagecoach.service', () => {
  const unit = read('config/stagecoach.service');
  const keys = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  const key = (k: string) => keys.get(k) ?? [];

  it('runs the daemon as its own user with the config, restarts it on failure, stops it with SIGTERM', () => {
    expect(key('User')).toEqual(['stagecoach']);
    expect(key('DynamicUser')).toEqual([]);
    expect(key('ExecStart')[0]).toMatch(/\bnode \S+\/dist\/bundle\/main\.js run --config \/etc\/stagecoach\/stagecoach\.yaml$/);
    expect(key('Restart')).toEqual(['on-failure']);
    expect(key('KillSignal')).toEqual(['SIGTERM']);
    expect(key('WorkingDirectory')).toHaveLength(1);
  });

  it('waits longer than the default shutdownMs before SIGKILL', () => {
    const defaults = parseConfig('roots: [{ path: /srv/in }]\ntargets: [{ type: local, path: /srv/archive }]\n', { env: {} });
    expect(seconds(key('TimeoutStopSec')[0] ?? '0') * 1000).toBeGreaterThan(defaults.shutdownMs);
  });

  it('is hardened, with the state and archive folders writable', () => {
    for (const [k, v] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'read-only'],
      ['PrivateTmp', 'yes'],
    ]) expect(key(k!), k).toEqual([v]);
    expect(key('StateDirectory')).toEqual(['stagecoach']);
    expect(key('ReadWritePaths')).toHaveLength(1);
    expect(key('MemoryDenyWriteExecute')).toEqual([]); // V8's JIT
  });
});
