import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { InterpolationError, interpolate } from '../../src/config/interpolate.js';
import { parseConfig } from '../../src/config/load.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stagecoach-interpolate-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
fs.writeFileSync(path.join(tmp, 'secret'), '  s3cr3t-from-file\n\n');
fs.writeFileSync(path.join(tmp, 'tricky'), 'has ${HOME} inside\n');

const ctx = { env: { A: 'alpha', EMPTY: '', N: '8', T: 'TRUE' }, cwd: tmp };

describe('interpolate', () => {
  test.each([
    ['plain', 'plain'],
    ['${A}', 'alpha'],
    ['x-${A}-${A}-y', 'x-alpha-alpha-y'],
    ['${EMPTY}', ''],
    ['${MISSING:-fallback}', 'fallback'],
    ['${EMPTY:-fallback}', 'fallback'],
    ['${A:-fallback}', 'alpha'],
    ['${MISSING:-}', ''],
    ['${MISSING:-a:b/c d}', 'a:b/c d'],
    ['$${A}', '${A}'],
    // Left to right: a lone $, then the escape.
    ['$$${A}', '$${A}'],
    ['cost: $5 and $$', 'cost: $5 and $$'],
    ['${file:secret}', 's3cr3t-from-file'],
    ['Bearer ${file:./secret}', 'Bearer s3cr3t-from-file'],
    // A result is not scanned again.
    ['${file:tricky}', 'has ${HOME} inside'],
  ])('%j → %j', (input, output) => {
    expect(interpolate(input, ctx)).toBe(output);
  });

  test.each([
    ['${MISSING}', 'environment variable MISSING is not set (use ${MISSING:-default} for a default)'],
    ['${A', 'unterminated ${ (write $${ for a literal ${)'],
    ['${}', 'bad reference ${}: expected ${NAME}, ${NAME:-default} or ${file:/path} (write $${ for a literal ${)'],
    ['${1A}', 'bad reference ${1A}: expected ${NAME}, ${NAME:-default} or ${file:/path} (write $${ for a literal ${)'],
    ['${file:}', '${file:} needs a path, as in ${file:/run/secrets/token}'],
    ['${file:nope}', `cannot read secret file ${path.join(tmp, 'nope')} (no such file)`],
  ])('%j fails: %s', (input, message) => {
    expect(() => interpolate(input, ctx)).toThrow(new InterpolationError(message));
  });
});

describe('interpolation in a config file', () => {
  const parse = (text: string, env: NodeJS.ProcessEnv = ctx.env) => parseConfig(text, { env, cwd: tmp, source: 'c.yaml' });

  test('values are interpolated, keys and comments are not', () => {
    const config = parse(
      [
        '# ${NOT_A_VARIABLE}',
        'stateDir: ${STATE:-./state}',
        'roots: [{ path: "/data/${A}", name: "${A}" }]',
        'targets:',
        '  - type: dropbox',
        '    auth: { appKey: "${A}", refreshToken: "${file:secret}" }',
        '    remoteRoot: "$${literal}"',
      ].join('\n'),
    );
    expect(config.stateDir).toBe(path.join(tmp, 'state'));
    expect(config.roots[0]).toMatchObject({ path: '/data/alpha', name: 'alpha' });
    expect(config.targets[0]).toMatchObject({ remoteRoot: '${literal}', auth: { appKey: 'alpha', refreshToken: 's3cr3t-from-file' } });
  });

  test('where a number or boolean is expected, an interpolated value is read as one', () => {
    const config = parse(
      [
        'watcher: { usePolling: "${T}" }',
        'retry:',
        '  retries: ${N}',
        'roots: [{ path: /data }]',
        'targets: [{ type: local, path: /archive, maxDemand: "${N}", requestsPerSecond: "${RPS:-2.5}" }]',
      ].join('\n'),
    );
    expect(config.watcher.usePolling).toBe(true);
    expect(config.retry.retries).toBe(8);
    expect(config.targets[0]).toMatchObject({ maxDemand: 8, minDemand: 7, requestsPerSecond: 2.5 });
  });

  test('a string field keeps a numeric-looking value as a string', () => {
    const config = parse(
      ['roots: [{ path: /data }]', 'targets:', '  - { type: dropbox, auth: { appKey: "${N}", refreshToken: "${N}0000000" } }'].join('\n'),
    );
    expect(config.targets[0]).toMatchObject({ auth: { appKey: '8', refreshToken: '80000000' } });
  });

  test('a value that does not read as the expected type is still an error', () => {
    expect(() => parse(['retry: { retries: "${A}" }', 'roots: [{ path: /data }]', 'targets: [{ type: local, path: /x }]'].join('\n'))).toThrow(
      'c.yaml:1: retry.retries: expected a number, got ${A}',
    );
  });
});

describe('a config error never shows a value read through ${...}, whatever the key', () => {
  // What /etc/shadow or /proc/self/environ would give: the start of it must never be printed.
  const shadow = path.join(tmp, 'shadow');
  fs.writeFileSync(shadow, 'root:$6$Zq9sEcReThAsH.abcdefghijklmnopqrstuvwxyz0123456789:19000:0:99999:7:::\n');
  const env = { ...ctx.env, ENVIRON: 'AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', STATE: '/data/state-wJalrXUtnFEMI' };
  const problem = (text: string): string => {
    try {
      parseConfig(text, { env, cwd: tmp, source: 'c.yaml' });
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('the config was accepted');
  };
  const base = ['roots: [{ path: /data }]', 'targets: [{ type: local, path: /x }]'];

  test.each([
    [[`log: { level: "\${file:${shadow}}" }`], `c.yaml:1: log.level: expected one of "trace", "debug", "info", "warn", "error", "fatal", got \${file:${shadow}}`],
    [['http: { listen: "${ENVIRON}" }'], 'c.yaml:1: http.listen: expected host:port such as "127.0.0.1:8080", got ${ENVIRON}'],
    [['stableMs: "${ENVIRON}"'], 'c.yaml:1: stableMs: expected a duration such as 2000 (ms), "2s", "5m" or "1h", got ${ENVIRON}'],
    [['remotePath: "pre-${ENVIRON}"'], 'c.yaml:1: remotePath: must contain {path} or {name}, or every file would land on one name, got pre-${ENVIRON}'],
    [['retry: { retries: "${N}" }', 'supervisor: { maxRestarts: "-${N}" }'], 'c.yaml:2: supervisor.maxRestarts: must be at least 0, got -${N}'],
  ])('%j', (lines, message) => {
    const text = [...lines, ...base].join('\n');
    const shown = problem(text);
    expect(shown).toBe(message);
    expect(shown).not.toMatch(/Zq9s|root:\$6|wJalr|AWS_SECRET/);
  });

  test('a cross-key message (duplicate target id) shows the reference too', () => {
    const shown = problem(['roots: [{ path: /data }]', 'targets:', '  - { type: local, path: /x, id: "${ENVIRON}" }', '  - { type: local, path: /y, id: "${ENVIRON}" }'].join('\n'));
    expect(shown).not.toContain('wJalr');
    expect(shown).toContain('${ENVIRON}');
  });

  test('a message built without describeValue (a folder inside a watched root) hides the value as well', () => {
    const shown = problem(['roots: [{ path: /data }]', 'stateDir: "${STATE}"', 'targets: [{ type: local, path: /x }]'].join('\n'));
    expect(shown).toBe('c.yaml:2: stateDir: the state folder ${STATE} is inside the watched root "data" (/data): its journal would be archived');
  });
});
