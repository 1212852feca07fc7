/**
 * Bad config corpus (issue 6, item 8): each malformed config goes through the real CLI
 * (`stagecoach check --config f`) and must give exit 2 and exactly one stderr line naming the
 * file, the line and the key path of the problem.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/daemon.js';
import { tempDir } from '../helpers/fs.js';

const ROOTS = ['roots:', '  - path: ./inbox'];
const LOCAL = ['targets:', '  - type: local', '    path: ./archive'];
const GDRIVE = [
  '  - type: gdrive',
  '    auth: { kind: oauth, clientId: c, clientSecret: s, refreshToken: r }',
];
const y = (...lines: string[]) => `${lines.join('\n')}\n`;

/** [name, config text, expected single stderr line (a regex on `stagecoach: f.yaml:LINE: key.path: ...`)] */
const CORPUS: Array<[string, string, RegExp]> = [
  ['yaml: unclosed quote', y('stateDir: "./state', ...ROOTS, ...LOCAL), /f\.yaml:1: invalid YAML: a quoted string starts here and is never closed$/],
  ['yaml: bad indentation', y(...ROOTS, 'targets:', '  - type: local', '     path: ./archive', '   x: [1'), /f\.yaml:\d+: invalid YAML: /],
  ['yaml: tab indentation', y(...ROOTS, 'targets:', '\t- type: local'), /f\.yaml:\d+: invalid YAML: /],
  ['empty file', '', /f\.yaml: the file is empty; it needs at least roots and targets$/],
  ['unknown top-level key', y('stableMS: 2s', ...ROOTS, ...LOCAL), /f\.yaml:1: stableMS: unknown key "stableMS" \(did you mean "stableMs"\?\)$/],
  ['unknown key in log', y('log: { level: info, colour: red }', ...ROOTS, ...LOCAL), /f\.yaml:1: log\.colour: unknown key "colour"/],
  ['unknown key in a root', y(...ROOTS, '    recursive: true', ...LOCAL), /f\.yaml:3: roots\.0\.recursive: unknown key "recursive"/],
  ['unknown key in a root filter', y(...ROOTS, '    filters: { exclde: ["*.x"] }', ...LOCAL), /f\.yaml:3: roots\.0\.filters\.exclde: unknown key "exclde" \(did you mean "exclude"\?\)$/],
  ['unknown key in a target', y(...ROOTS, ...LOCAL, '    maxDemnd: 8'), /f\.yaml:6: targets\.0\.maxDemnd: unknown key "maxDemnd" \(did you mean "maxDemand"\?\)$/],
  ['unknown key in target auth', y(...ROOTS, ...LOCAL, ...GDRIVE, '    endpoints: { rootUrl: "http://127.0.0.1:1/", tokenUrl: "http://127.0.0.1:1/t", extra: 1 }'), /f\.yaml:8: targets\.1\.endpoints\.extra: unknown key "extra"$/],
  ['unknown target type', y(...ROOTS, 'targets:', '  - type: s3', '    path: ./x'), /f\.yaml:4: targets\.0\.type: .*"s3"/],
  ['wrong type: number as string', y(...ROOTS, ...LOCAL, '    maxDemand: four'), /f\.yaml:6: targets\.0\.maxDemand: expected a number, got "four"$/],
  ['wrong type: roots is a mapping', y('roots: { path: ./inbox }', ...LOCAL), /f\.yaml:1: roots: expected a list/],
  ['wrong type: boolean', y('watcher: { usePolling: yes }', ...ROOTS, ...LOCAL), /f\.yaml:1: watcher\.usePolling: expected true or false, got "yes"$/],
  ['bad duration', y('stableMs: 2 fortnights', ...ROOTS, ...LOCAL), /f\.yaml:1: stableMs: expected a duration such as 2000 \(ms\), "2s", "5m" or "1h", got "2 fortnights"$/],
  ['negative duration', y('shutdownMs: -5', ...ROOTS, ...LOCAL), /f\.yaml:1: shutdownMs: expected a duration .*got -5$/],
  ['bad size', y('filters: { maxSize: 10 parsecs }', ...ROOTS, ...LOCAL), /f\.yaml:1: filters\.maxSize: expected a size such as .*got "10 parsecs"$/],
  ['zero bytesPerSecond', y(...ROOTS, ...LOCAL, '    bytesPerSecond: 0'), /f\.yaml:6: targets\.0\.bytesPerSecond: expected a size .*\(at least 1 byte\), got 0$/],
  ['negative retries', y('retry: { retries: -1 }', ...ROOTS, ...LOCAL), /f\.yaml:1: retry\.retries: must be at least 0, got -1$/],
  ['fractional maxDemand', y(...ROOTS, ...LOCAL, '    maxDemand: 2.5'), /f\.yaml:6: targets\.0\.maxDemand: expected a whole number, got 2\.5$/],
  ['negative requestsPerSecond', y(...ROOTS, ...LOCAL, '    requestsPerSecond: -3'), /f\.yaml:6: targets\.0\.requestsPerSecond: .*-3/],
  ['missing roots', y(...LOCAL), /f\.yaml(:\d+)?: roots: at least one root is required$/],
  ['empty targets', y(...ROOTS, 'targets: []'), /f\.yaml:3: targets: at least one target is required$/],
  ['missing local path', y(...ROOTS, 'targets:', '  - type: local'), /f\.yaml:4: targets\.0\.path: /],
  ['missing gdrive clientSecret', y(...ROOTS, 'targets:', '  - type: gdrive', '    auth: { kind: oauth, clientId: c }'), /f\.yaml:5: targets\.0\.auth\.clientSecret: /],
  ['duplicate target ids', y(...ROOTS, ...LOCAL, '  - type: local', '    path: ./archive2'), /f\.yaml:6: targets\.1\.id: duplicate target id "local" \(also targets\.0\); give each target its own id$/],
  ['duplicate root names', y(...ROOTS, '  - path: ./other/inbox', ...LOCAL), /f\.yaml:3: roots\.1\.name: duplicate root name "inbox" \(also roots\.0\); give each root its own name$/],
  ['minDemand = maxDemand on a target', y(...ROOTS, ...LOCAL, '    maxDemand: 4', '    minDemand: 4'), /f\.yaml:\d: targets\.0\.minDemand: must be less than maxDemand \(4\), got 4$/],
  ['minDemand > maxDemand on the archiver', y('archiver: { maxDemand: 10, minDemand: 20 }', ...ROOTS, ...LOCAL), /f\.yaml:1: archiver\.minDemand: must be less than maxDemand \(10\), got 20$/],
  ['retry minDelay > maxDelay', y('retry: { minDelayMs: 10s, maxDelayMs: 1s }', ...ROOTS, ...LOCAL), /f\.yaml:1: retry\.minDelayMs: must not be more than maxDelayMs \(1000 ms\), got 10000 ms$/],
  ['minSize > maxSize', y('filters: { minSize: 10 MB, maxSize: 1 MB }', ...ROOTS, ...LOCAL), /f\.yaml:1: filters\.minSize: must not be more than maxSize/],
  ['archive inside a watched root', y(...ROOTS, 'targets:', '  - type: local', '    path: ./inbox/archive'), /f\.yaml:5: targets\.0\.path: the archive folder .* is inside the watched root "inbox"/],
  ['archive contains a watched root', y('roots:', '  - path: ./archive/inbox', ...LOCAL), /f\.yaml:5: targets\.0\.path: the archive folder .* contains the watched root "inbox"/],
  ['state folder inside a watched root', y('stateDir: ./inbox/.state', ...ROOTS, ...LOCAL), /f\.yaml:1: stateDir: the state folder .* is inside the watched root "inbox"/],
  ['unknown remotePath token', y('remotePath: "{root}/{file}"', ...ROOTS, ...LOCAL), /f\.yaml:1: remotePath: unknown token \{file\}; known: /],
  ['remotePath without path or name', y('remotePath: "{root}/{yyyy}"', ...ROOTS, ...LOCAL), /f\.yaml:1: remotePath: must contain \{path\} or \{name\}/],
  ['remoteRoot with ..', y(...ROOTS, 'targets:', ...GDRIVE, '    remoteRoot: "a/../../etc"'), /f\.yaml:6: targets\.0\.remoteRoot: must not contain "\." or "\.\." segments/],
  ['missing env var', y(...ROOTS, 'targets:', '  - type: gdrive', '    auth: { kind: oauth, clientId: c, clientSecret: "${STAGECOACH_CHAOS_UNSET_VAR}" }'), /f\.yaml:5: targets\.0\.auth\.clientSecret: .*STAGECOACH_CHAOS_UNSET_VAR/],
  ['missing secret file', y(...ROOTS, 'targets:', '  - type: gdrive', '    auth: { kind: oauth, clientId: c, clientSecret: "${file:./no-such-secret}" }'), /f\.yaml:5: targets\.0\.auth\.clientSecret: cannot read secret file .*no-such-secret \(no such file\)$/],
  ['endpoints half given', y(...ROOTS, 'targets:', ...GDRIVE, '    endpoints: { rootUrl: "http://127.0.0.1:1/" }'), /f\.yaml:6: targets\.0\.endpoints\.tokenUrl: /],
  ['bad URL', y(...ROOTS, 'targets:', ...GDRIVE, '    endpoints: { rootUrl: "not a url", tokenUrl: "http://127.0.0.1:1/t" }'), /f\.yaml:6: targets\.0\.endpoints\.rootUrl: /],
  ['non-http URL', y(...ROOTS, 'targets:', ...GDRIVE, '    endpoints: { rootUrl: "file:///etc/passwd", tokenUrl: "http://127.0.0.1:1/t" }'), /f\.yaml:6: targets\.0\.endpoints\.rootUrl: /],
  ['bad target id', y(...ROOTS, ...LOCAL, '    id: My Archive'), /f\.yaml:6: targets\.0\.id: expected an id made of a-z 0-9 _ -, got "My Archive"$/],
  ['root name only dots', y('roots:', '  - path: ./inbox', '    name: ".."', ...LOCAL), /f\.yaml:3: roots\.0\.name: /],
  ['box ccg without enterpriseId or userId', y(...ROOTS, 'targets:', '  - type: box', '    auth: { kind: ccg, clientId: c, clientSecret: s }'), /f\.yaml:5: targets\.0\.auth: client credentials need exactly one of enterpriseId or userId$/],
  ['onedrive app with tenant common', y(...ROOTS, 'targets:', '  - type: onedrive', '    auth: { kind: app, tenant: common, clientId: c, clientSecret: s, userId: u }'), /f\.yaml:5: targets\.0\.auth\.tenant: app auth needs your tenant id or domain, got "common"$/],
  ['bad log level', y('log: { level: loud }', ...ROOTS, ...LOCAL), /f\.yaml:1: log\.level: expected one of .*got "loud"$/],
];

let dir = '';
let cleanup: () => Promise<void> = async () => undefined;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('stagecoach-chaos-config-'));
  mkdirSync(path.join(dir, 'inbox'));
});
afterAll(() => cleanup());

describe('bad config corpus through the CLI', () => {
  test('the corpus is large enough', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(25);
  });

  test.each(CORPUS)('%s', (name, text, expected) => {
    const sub = path.join(dir, name.replace(/[^a-z0-9]+/gi, '-'));
    mkdirSync(path.join(sub, 'inbox'), { recursive: true });
    writeFileSync(path.join(sub, 'f.yaml'), text);
    const r = runCli(['check', '--config', 'f.yaml'], { cwd: sub, env: { STAGECOACH_CHAOS_UNSET_VAR: undefined } });
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect({ code: r.code, lines, stdout: r.stdout }).toMatchObject({ code: 2, stdout: '' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^stagecoach: /);
    expect(lines[0]).toMatch(expected);
  });
});
