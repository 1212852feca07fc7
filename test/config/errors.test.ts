/**
 * Every kind of config problem gives one line: file, line, key path, what is wrong.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stagecoach-config-errors-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;

/** The ConfigError that parsing `text` throws. */
function problem(text: string, opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ConfigError {
  try {
    parseConfig(text, { source: 'c.yaml', env: opts.env ?? {}, cwd: opts.cwd ?? '/srv' });
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, the config was accepted');
}

const ROOTS = ['roots:', '  - path: /srv/inbox'];
const LOCAL = ['targets:', '  - type: local', '    path: /srv/archive'];

describe('config errors', () => {
  test('an unknown key names the key and its line', () => {
    const e = problem(yaml('stableMs: 2s', 'roots: [{ path: /srv/inbox }]', 'unknownKey: 1', ...LOCAL));
    expect(e.message).toBe('c.yaml:3: unknownKey: unknown key "unknownKey"');
    expect(e).toMatchObject({ code: 'config.invalid', path: 'unknownKey', line: 3 });
  });

  test('an unknown nested key suggests the likely one', () => {
    const e = problem(yaml(...ROOTS, ...LOCAL, '    maxDemnd: 8'));
    expect(e.message).toBe('c.yaml:6: targets.0.maxDemnd: unknown key "maxDemnd" (did you mean "maxDemand"?)');
  });

  test('a wrong type names the expected type and the value', () => {
    const e = problem(yaml('stateDir: /srv/state', ...ROOTS, ...LOCAL, '    maxDemand: four'));
    expect(e.message).toBe('c.yaml:7: targets.0.maxDemand: expected a number, got "four"');
    expect(e).toMatchObject({ path: 'targets.0.maxDemand', line: 7 });
  });

  test.each([
    [['watcher:', '  usePolling: yes'], 'c.yaml:2: watcher.usePolling: expected true or false, got "yes"'],
    [['retry:', '  retries: 2.5'], 'c.yaml:2: retry.retries: expected a whole number, got 2.5'],
    [['retry:', '  retries: -1'], 'c.yaml:2: retry.retries: must be at least 0, got -1'],
    [['log: { level: loud }'], 'c.yaml:1: log.level: expected one of "trace", "debug", "info", "warn", "error", "fatal", got "loud"'],
    [['filters:', '  include: "*.pdf"'], 'c.yaml:2: filters.include: expected a list, got "*.pdf"'],
    [['watcher: 5'], 'c.yaml:1: watcher: expected a mapping (key: value), got 5'],
    [['remotePath: "{root}/{file}"'], 'c.yaml:1: remotePath: unknown token {file}; known: {root} {path} {dir} {name} {ext} {yyyy} {mm} {dd} {host}'],
    [['remotePath: "{root}/{yyyy}"'], 'c.yaml:1: remotePath: must contain {path} or {name}, or every file would land on one name, got "{root}/{yyyy}"'],
    [['http: { listen: "0.0.0.0:8080" }'], 'c.yaml:1: http.token: is required when http.listen (0.0.0.0) is reachable from the network: set a token of at least 24 characters (openssl rand -hex 24), or listen on 127.0.0.1'],
    [['http: { listen: "192.168.1.20:8080", token: 0123456789abcdefghijklm }'], 'c.yaml:1: http.token: must be at least 24 characters long (make one with: openssl rand -hex 24)'],
    [['http: { token: 123456789012345678901234567 }'], 'c.yaml:1: http.token: expected a string, got a number (not shown: it is a secret)'],
    [['http: { allowedHosts: ["nas.local:8080"] }'], 'c.yaml:1: http.allowedHosts.0: expected a host name such as "nas.local" or ".home.lan", got "nas.local:8080"'],
  ])('a bad value: %j', (lines, message) => {
    expect(problem(yaml(...lines, ...ROOTS, ...LOCAL)).message).toBe(message);
  });

  test('missing or empty roots and targets', () => {
    expect(problem(yaml(...LOCAL)).message).toBe('c.yaml: roots: at least one root is required');
    expect(problem(yaml('roots: []', ...LOCAL)).message).toBe('c.yaml:1: roots: at least one root is required');
    expect(problem(yaml(...ROOTS)).message).toBe('c.yaml: targets: at least one target is required');
    expect(problem(yaml(...ROOTS, 'targets:')).message).toBe('c.yaml:3: targets: expected a list, got null');
  });

  test('a missing required key points at its entry', () => {
    expect(problem(yaml(...ROOTS, 'targets:', '  - type: local', '    keepVersions: true')).message).toBe(
      'c.yaml:4: targets.0.path: is required',
    );
    expect(problem(yaml(...ROOTS, 'targets:', '  - path: /srv/archive')).message).toBe(
      'c.yaml:4: targets.0.type: is required (one of local, gdrive, dropbox, box, onedrive)',
    );
    expect(problem(yaml(...ROOTS, 'targets:', '  - type: s3')).message).toBe(
      'c.yaml:4: targets.0.type: expected one of local, gdrive, dropbox, box, onedrive, got "s3"',
    );
  });

  test('minDemand must be below maxDemand', () => {
    expect(problem(yaml(...ROOTS, ...LOCAL, '    maxDemand: 4', '    minDemand: 4')).message).toBe(
      'c.yaml:7: targets.0.minDemand: must be less than maxDemand (4), got 4',
    );
    // Against the default maxDemand (local: 512) too.
    expect(problem(yaml(...ROOTS, ...LOCAL, '    minDemand: 600')).message).toBe(
      'c.yaml:6: targets.0.minDemand: must be less than maxDemand (512), got 600',
    );
    expect(problem(yaml('archiver: { maxDemand: 100, minDemand: 250 }', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:1: archiver.minDemand: must be less than maxDemand (100), got 250',
    );
  });

  test('other rules across keys', () => {
    expect(problem(yaml('retry: { minDelayMs: 10m, maxDelayMs: 1m }', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:1: retry.minDelayMs: must not be more than maxDelayMs (60000 ms), got 600000 ms',
    );
    expect(problem(yaml('supervisor: { coolDownMs: 1h, coolDownMaxMs: 1m }', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:1: supervisor.coolDownMs: must not be more than coolDownMaxMs (60000 ms), got 3600000 ms',
    );
    expect(problem(yaml('filters: { minSize: 1MB, maxSize: 1KB }', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:1: filters.minSize: must not be more than maxSize (1000), got 1000000',
    );
    expect(problem(yaml(...ROOTS, '    filters: { minSize: 1MB, maxSize: 1KB }', ...LOCAL)).message).toBe(
      'c.yaml:3: roots.0.filters.minSize: must not be more than maxSize (1000), got 1000000',
    );
  });

  test('duplicate target ids, explicit or defaulted from the type', () => {
    expect(problem(yaml(...ROOTS, ...LOCAL, '  - type: local', '    path: /srv/archive2')).message).toBe(
      'c.yaml:6: targets.1.id: duplicate target id "local" (also targets.0); give each target its own id',
    );
    expect(
      problem(yaml(...ROOTS, ...LOCAL, '    id: copy', '  - type: local', '    id: copy', '    path: /srv/b')).message,
    ).toBe('c.yaml:8: targets.1.id: duplicate target id "copy" (also targets.0); give each target its own id');
  });

  test('duplicate root names, explicit or defaulted from the folder name', () => {
    expect(problem(yaml('roots:', '  - path: /a/inbox', '  - path: /b/inbox/', ...LOCAL)).message).toBe(
      'c.yaml:3: roots.1.name: duplicate root name "inbox" (also roots.0); give each root its own name',
    );
    expect(problem(yaml('roots:', '  - path: /a/My Docs', ...LOCAL)).message).toBe(
      'c.yaml:2: roots.0.name: the folder name "My Docs" cannot be a root name (A-Z a-z 0-9 . _ -): set name',
    );
    expect(problem(yaml('roots:', '  - { path: /a, name: "a/b" }', ...LOCAL)).message).toBe(
      'c.yaml:2: roots.0.name: expected a name made of A-Z a-z 0-9 . _ -, got "a/b"',
    );
    expect(problem(yaml(...ROOTS, 'targets:', '  - { type: local, path: /x, id: Archive }')).message).toBe(
      'c.yaml:4: targets.0.id: expected an id made of a-z 0-9 _ -, got "Archive"',
    );
  });

  test('a bad size string', () => {
    expect(problem(yaml('filters:', '  maxSize: 10 parsecs', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:2: filters.maxSize: expected a size such as 1048576 (bytes), "10 MB" or "4 KiB", got "10 parsecs"',
    );
    expect(problem(yaml(...ROOTS, ...LOCAL, '    bytesPerSecond: 0')).message).toBe(
      'c.yaml:6: targets.0.bytesPerSecond: expected a size such as 1048576 (bytes), "10 MB" or "4 KiB" (at least 1 byte), got 0',
    );
  });

  test('a bad duration', () => {
    expect(problem(yaml('stableMs: soon', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:1: stableMs: expected a duration such as 2000 (ms), "2s", "5m" or "1h", got "soon"',
    );
    expect(problem(yaml('shutdownMs: true', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:1: shutdownMs: expected a duration such as 2000 (ms), "2s", "5m" or "1h", got true',
    );
  });

  test('a missing environment variable names the key and the variable', () => {
    const text = yaml(...ROOTS, 'targets:', '  - type: dropbox', '    auth:', '      appKey: ${DROPBOX_KEY}', '      refreshToken: x');
    expect(problem(text).message).toBe(
      'c.yaml:6: targets.0.auth.appKey: environment variable DROPBOX_KEY is not set (use ${DROPBOX_KEY:-default} for a default)',
    );
    expect(problem(yaml('stateDir: ${', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:1: stateDir: unterminated ${ (write $${ for a literal ${)',
    );
    expect(problem(yaml('stateDir: ${not a name}', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:1: stateDir: bad reference ${not a name}: expected ${NAME}, ${NAME:-default} or ${file:/path} (write $${ for a literal ${)',
    );
  });

  test('a missing secret file names the key and the file', () => {
    const missing = path.join(tmp, 'no-such-secret');
    const text = yaml(
      ...ROOTS,
      'targets:',
      '  - type: gdrive',
      '    auth:',
      '      kind: oauth',
      '      clientId: id',
      `      clientSecret: \${file:${missing}}`,
      '      refreshToken: x',
    );
    expect(problem(text).message).toBe(`c.yaml:8: targets.0.auth.clientSecret: cannot read secret file ${missing} (no such file)`);
    const folder = yaml(...ROOTS, 'targets:', '  - type: dropbox', '    auth:', '      appKey: k', `      refreshToken: \${file:${tmp}}`);
    expect(problem(folder).message).toBe(`c.yaml:7: targets.0.auth.refreshToken: cannot read secret file ${tmp} (it is a folder)`);
  });

  test('YAML syntax errors give the line', () => {
    const e = problem(yaml(...ROOTS, 'targets:', '  - type: local', '    path: "/srv/archive', 'stableMs: 2s'));
    expect(e.message).toBe('c.yaml:5: invalid YAML: a quoted string starts here and is never closed');
    expect(e.line).toBe(5);
    expect(e.path).toBe('');
    expect(problem(yaml(...ROOTS, 'a: b: c', ...LOCAL)).message).toBe(
      'c.yaml:3: invalid YAML: Nested mappings are not allowed in compact mappings',
    );
    expect(problem(yaml('stableMs: 2s', ...ROOTS, 'stableMs: 3s', ...LOCAL)).message).toBe(
      'c.yaml:4: invalid YAML: Map keys must be unique',
    );
    expect(problem(yaml('roots: [', ...LOCAL)).message).toBe(
      'c.yaml:2: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    );
  });

  test('an empty file, or one that is not a mapping', () => {
    expect(problem('# nothing yet\n').message).toBe('c.yaml: the file is empty; it needs at least roots and targets');
    expect(problem('- a\n- b\n').message).toBe('c.yaml:1: expected a mapping (key: value), got a list');
  });

  test('an archive inside a watched root, or containing one', () => {
    expect(problem(yaml(...ROOTS, 'targets:', '  - type: local', '    path: /srv/inbox/archive')).message).toBe(
      'c.yaml:5: targets.0.path: the archive folder /srv/inbox/archive is inside the watched root "inbox" (/srv/inbox): Stagecoach would archive its own archive',
    );
    expect(problem(yaml(...ROOTS, 'targets:', '  - type: local', '    path: /srv')).message).toBe(
      'c.yaml:5: targets.0.path: the archive folder /srv contains the watched root "inbox" (/srv/inbox): Stagecoach would archive its own archive',
    );
    // Relative paths are compared once resolved against the working directory.
    expect(problem(yaml('roots: [{ path: ./inbox }]', 'targets: [{ type: local, path: inbox/../inbox/x }]')).message).toBe(
      'c.yaml:2: targets.0.path: the archive folder /srv/inbox/x is inside the watched root "inbox" (/srv/inbox): Stagecoach would archive its own archive',
    );
    // A sibling whose name starts with the root's is not inside it.
    expect(() =>
      parseConfig(yaml(...ROOTS, 'targets: [{ type: local, path: /srv/inbox-archive }]'), { env: {}, cwd: '/' }),
    ).not.toThrow();
  });

  test('an archive reached through a symlink into the watched root', () => {
    const inbox = path.join(tmp, 'inbox');
    fs.mkdirSync(path.join(inbox, 'sub'), { recursive: true });
    fs.symlinkSync(path.join(inbox, 'sub'), path.join(tmp, 'link'));
    const e = problem(yaml(`roots: [{ path: ${inbox} }]`, `targets: [{ type: local, path: ${path.join(tmp, 'link', 'archive')} }]`));
    expect(e.path).toBe('targets.0.path');
    expect(e.message).toContain('is inside the watched root "inbox"');
  });

  test('state and credential files inside a watched root', () => {
    expect(problem(yaml('stateDir: /srv/inbox/.state', ...ROOTS, ...LOCAL)).message).toBe(
      'c.yaml:1: stateDir: the state folder /srv/inbox/.state is inside the watched root "inbox" (/srv/inbox): its journal would be archived',
    );
    const text = yaml(...ROOTS, 'targets:', '  - type: gdrive', '    auth: { kind: serviceAccount, keyFile: inbox/sa.json }');
    expect(problem(text).message).toBe(
      'c.yaml:5: targets.0.auth.keyFile: the key file /srv/inbox/sa.json is inside the watched root "inbox" (/srv/inbox): your credentials would be archived',
    );
  });

  test('cloud targets: auth variants and their rules', () => {
    const target = (...lines: string[]) => problem(yaml(...ROOTS, 'targets:', ...lines)).message;
    expect(target('  - type: gdrive', '    auth: { kind: token }')).toBe(
      'c.yaml:5: targets.0.auth.kind: expected one of oauth, serviceAccount, got "token"',
    );
    expect(target('  - type: gdrive', '    auth: { kind: oauth, clientId: a }')).toBe(
      'c.yaml:5: targets.0.auth.clientSecret: is required',
    );
    expect(target('  - type: box', '    auth: { kind: ccg, clientId: a, clientSecret: b }')).toBe(
      'c.yaml:5: targets.0.auth: client credentials need exactly one of enterpriseId or userId',
    );
    expect(target('  - type: onedrive', '    auth: { kind: app, tenant: common, clientId: a, clientSecret: b, userId: u }')).toBe(
      'c.yaml:5: targets.0.auth.tenant: app auth needs your tenant id or domain, got "common"',
    );
    expect(target('  - type: dropbox', '    auth: { appKey: a, refreshToken: r }', '    endpoints: { api: "ftp://x", content: "http://127.0.0.1:1" }')).toBe(
      'c.yaml:6: targets.0.endpoints.api: expected an http(s) URL, got "ftp://x"',
    );
    expect(target('  - type: dropbox', '    auth: { appKey: a, refreshToken: r }', '    remoteRoot: a/../b')).toBe(
      'c.yaml:6: targets.0.remoteRoot: must not contain "." or ".." segments, got "a/../b"',
    );
  });

  test('a secret of the wrong type is not shown', () => {
    const e = problem(yaml(...ROOTS, 'targets:', '  - type: dropbox', '    auth: { appKey: a, refreshToken: 98765432 }'));
    expect(e.message).toBe('c.yaml:5: targets.0.auth.refreshToken: expected a string, got a number (not shown: it is a secret)');
    expect(e.message).not.toContain('98765432');
  });

  test('the first problem in file order is the one reported', () => {
    // zod checks keys in schema order (stableMs before targets); the report follows the file.
    const e = problem(yaml(...LOCAL, '    maxDemand: four', 'stableMs: soon', 'roots: []'));
    expect(e.message).toBe('c.yaml:4: targets.0.maxDemand: expected a number, got "four"');
  });

  test('every message is one line', () => {
    const e = problem(yaml('stateDir: "a\\nb"', 'roots: [{ path: /x, name: "line1\\nline2" }]', ...LOCAL));
    expect(e.message.split('\n')).toHaveLength(1);
  });
});
