import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, describe, expect, test } from 'vitest';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const repo = path.resolve(import.meta.dirname, '../..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stagecoach-load-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const DEFAULT_FILTERS = { include: [], exclude: [], minSize: 0, maxSize: null, ignoreHidden: true, ignoreTemp: true };

describe('the embedded default config', () => {
  test('loads with every default applied and paths resolved against cwd', async () => {
    const config = await loadConfig(path.join(repo, 'config/stagecoach.yaml'), { cwd: '/srv/stagecoach', env: {} });
    expect(config).toEqual({
      stateDir: '/srv/stagecoach/data/state',
      journal: null,
      node: null,
      stableMs: 2000,
      shutdownMs: 10_000,
      onCollision: 'rename',
      remotePath: '{root}/{path}',
      log: { level: 'info', format: 'auto' },
      filters: DEFAULT_FILTERS,
      watcher: { rescanMs: 300_000, usePolling: false, pollIntervalMs: 2000 },
      archiver: { maxDemand: 500, minDemand: 250 },
      retry: { retries: 8, minDelayMs: 1000, maxDelayMs: 300_000 },
      supervisor: { maxRestarts: 3, maxSeconds: 5, coolDownMs: 30_000, coolDownMaxMs: 1_800_000 },
      http: { listen: { host: '127.0.0.1', port: 8080 }, token: null, allowedHosts: [] },
      notify: { webhook: null, topic: null, pingUrl: null, pingIntervalMs: 60_000, minIntervalMs: 300_000, batchMs: 30_000, recoverAfterMs: 60_000 },
      verify: { every: null, sample: 100 },
      roots: [{ path: '/srv/stagecoach/data/inbox', name: 'inbox', polling: false, pollIntervalMs: 2000, createRoot: true, followSymlinks: false, filters: DEFAULT_FILTERS }],
      targets: [
        {
          type: 'local',
          id: 'local',
          path: '/srv/stagecoach/data/archive',
          keepVersions: false,
          preserveOwner: false,
          maxDemand: 512,
          minDemand: 511,
          requestsPerSecond: null,
          bytesPerSecond: null,
        },
      ],
    });
  });

  test('names the schema for editors', () => {
    const text = fs.readFileSync(path.join(repo, 'config/stagecoach.yaml'), 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=./stagecoach.schema.json');
  });

  test('a file that cannot be read is a ConfigError', async () => {
    const error = await loadConfig('nope.yaml', { cwd: tmp }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe('nope.yaml: cannot read the config file (no such file)');
  });

  test('messages name the file as given', async () => {
    fs.writeFileSync(path.join(tmp, 'bad.yaml'), 'stableMs: soon\n');
    await expect(loadConfig('bad.yaml', { cwd: tmp, env: {} })).rejects.toThrow(/^bad\.yaml:1: stableMs: /);
  });
});

describe('the example config', () => {
  const secrets = {
    gdrive_client_secret: 'GOCSPX-gdrive-client-secret',
    gdrive_refresh_token: '1//gdrive-refresh-token',
    dropbox_refresh_token: 'dropbox-refresh-token',
    box_client_secret: 'box-client-secret',
    box_refresh_token: 'box-refresh-token',
  };
  const env = {
    GDRIVE_CLIENT_ID: 'gdrive-id.apps.googleusercontent.com',
    DROPBOX_APP_KEY: 'dropbox-key',
    DROPBOX_APP_SECRET: 'dropbox-app-secret',
    BOX_CLIENT_ID: 'box-id',
    ONEDRIVE_CLIENT_ID: '00000000-0000-0000-0000-000000000000',
  };
  const secretDir = path.join(tmp, 'secrets');
  fs.mkdirSync(secretDir);
  for (const [name, value] of Object.entries(secrets)) fs.writeFileSync(path.join(secretDir, name), `${value}\n`);
  const text = fs.readFileSync(path.join(repo, 'config/stagecoach.example.yaml'), 'utf8');

  test('is valid, with its secrets from the environment and from files', () => {
    expect(text).toContain('${file:/run/secrets/');
    const config = parseConfig(text.replaceAll('${file:/run/secrets/', `\${file:${secretDir}/`), { env, cwd: '/app', source: 'example' });
    expect(config.stableMs).toBe(2000);
    expect(config.watcher.rescanMs).toBe(300_000);
    expect(config.supervisor.coolDownMaxMs).toBe(1_800_000);
    expect(config.roots.map((r) => r.name)).toEqual(['inbox', 'scans']);
    expect(config.roots[1]).toEqual({
      path: '/mnt/nas/scans',
      name: 'scans',
      polling: true,
      pollIntervalMs: 10_000,
      createRoot: false,
      followSymlinks: false,
      filters: { ...config.filters, include: ['**/*.pdf'], maxSize: 2 * 1024 ** 3 },
    });
    expect(config.roots[0]?.filters.exclude).toEqual(['**/node_modules/**', '**/*.log']);
    expect(config.targets.map((t) => [t.id, t.type])).toEqual([
      ['archive', 'local'],
      ['drive', 'gdrive'],
      ['dropbox', 'dropbox'],
      ['box', 'box'],
      ['onedrive', 'onedrive'],
    ]);
    expect(config.targets[1]).toMatchObject({
      remoteRoot: 'Stagecoach',
      bytesPerSecond: 20_000_000,
      minDemand: 3,
      auth: { kind: 'oauth', clientId: env.GDRIVE_CLIENT_ID, clientSecret: secrets.gdrive_client_secret },
    });
    expect(config.targets[2]).toMatchObject({ auth: { appKey: 'dropbox-key', appSecret: 'dropbox-app-secret' } });
    expect(config.targets[3]).toMatchObject({ requestsPerSecond: 3, auth: { kind: 'oauth' } });
    // As docs/clouds.md says: the config names the app; the tokens are the ones `stagecoach auth` saved.
    for (const t of config.targets.slice(1, 4)) expect((t as { auth: { refreshToken?: string } }).auth.refreshToken).toBeUndefined();
    expect(config.targets[4]).toMatchObject({ maxDemand: 2, minDemand: 1, auth: { kind: 'delegated', tenant: 'consumers' } });
  });

  test('shows every option of every settings block', () => {
    const example = parseYaml(text) as Record<string, unknown>;
    const properties = configJsonSchema().properties as Record<string, { properties?: Record<string, unknown> }>;
    for (const [key, schema] of Object.entries(properties)) {
      expect(example, `top-level ${key}`).toHaveProperty([key]);
      if (schema.properties && key !== 'roots' && key !== 'targets') {
        for (const inner of Object.keys(schema.properties)) expect(example, `${key}.${inner}`).toHaveProperty([key, inner]);
      }
    }
  });
});

describe('defaults and derived values', () => {
  const parse = (text: string) => parseConfig(text, { env: {}, cwd: '/srv', source: 'c.yaml' });

  test('per-root overrides merge over the top-level filters and watcher', () => {
    const config = parse(
      [
        'filters: { exclude: ["*.log"], minSize: 1KiB }',
        'watcher: { usePolling: true, pollIntervalMs: 5s }',
        'roots:',
        '  - path: /a',
        '  - path: /b/',
        '    polling: false',
        '    filters: { include: ["**/*.jpg"], minSize: 0, maxSize: 5 MB }',
        'targets: [{ type: local, path: /archive }]',
      ].join('\n'),
    );
    const top = { ...DEFAULT_FILTERS, exclude: ['*.log'], minSize: 1024 };
    expect(config.roots).toEqual([
      { path: '/a', name: 'a', polling: true, pollIntervalMs: 5000, createRoot: false, followSymlinks: false, filters: top },
      { path: '/b', name: 'b', polling: false, pollIntervalMs: 5000, createRoot: false, followSymlinks: false, filters: { ...top, include: ['**/*.jpg'], minSize: 0, maxSize: 5_000_000 } },
    ]);
  });

  test('target ids default to the type; minDemand to maxDemand - 1', () => {
    const config = parse(
      [
        'roots: [{ path: /a }]',
        'targets:',
        '  - { type: local, path: /x, maxDemand: 1 }',
        '  - { type: local, id: second, path: /y, maxDemand: 9 }',
        '  - { type: dropbox, auth: { appKey: k, refreshToken: r }, remoteRoot: /Stagecoach/Backups/ }',
      ].join('\n'),
    );
    expect(config.targets.map((t) => [t.id, t.maxDemand, t.minDemand])).toEqual([
      ['local', 1, 0],
      ['second', 9, 8],
      ['dropbox', 4, 3],
    ]);
    expect(config.targets[2]).toMatchObject({ remoteRoot: 'Stagecoach/Backups' });
  });

  test('auth variants resolve their paths and ids', () => {
    const config = parse(
      [
        'roots: [{ path: /a }]',
        'targets:',
        '  - { type: gdrive, auth: { kind: serviceAccount, keyFile: keys/sa.json }, sharedDriveId: 0AB }',
        '  - { type: box, auth: { kind: ccg, clientId: c, clientSecret: s, enterpriseId: 123456 } }',
        '  - { type: onedrive, auth: { kind: app, tenant: contoso.onmicrosoft.com, clientId: c, clientSecret: s, userId: u@contoso.com } }',
        '  - { type: dropbox, id: dropbox-pkce, auth: { appKey: k, refreshToken: r }, endpoints: { api: "http://127.0.0.1:9/", content: "http://127.0.0.1:9/" } }',
      ].join('\n'),
    );
    expect(config.targets[0]).toMatchObject({ auth: { kind: 'serviceAccount', keyFile: '/srv/keys/sa.json' }, sharedDriveId: '0AB' });
    expect(config.targets[1]).toMatchObject({ auth: { kind: 'ccg', enterpriseId: '123456' } });
    expect(config.targets[2]).toMatchObject({ auth: { kind: 'app', tenant: 'contoso.onmicrosoft.com' } });
    expect(config.targets[3]).toMatchObject({ id: 'dropbox-pkce', endpoints: { api: 'http://127.0.0.1:9/' } });
    expect(config.targets[3]).not.toHaveProperty('auth.appSecret');
  });

  test('~ is the home folder', () => {
    const config = parse(['stateDir: ~/.stagecoach', 'roots: [{ path: ~/inbox }]', 'targets: [{ type: local, path: /x }]'].join('\n'));
    expect(config.stateDir).toBe(path.join(os.homedir(), '.stagecoach'));
    expect(config.roots[0]?.path).toBe(path.join(os.homedir(), 'inbox'));
  });
});
