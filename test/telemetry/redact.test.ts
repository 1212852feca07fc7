import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { collectSecrets, createRedactor, redactString } from '../../src/telemetry/redact.js';

describe('collectSecrets', () => {
  test('finds every auth secret in the resolved config, and nothing else', () => {
    const config = parseConfig(
      [
        'roots: [{ path: /inbox }]',
        'targets:',
        '  - { type: local, path: /archive }',
        '  - { type: gdrive, auth: { kind: oauth, clientId: gd-client-id, clientSecret: "${GD_SECRET}", refreshToken: gd-refresh } }',
        '  - { type: gdrive, id: sa, auth: { kind: serviceAccount, keyFile: /keys/sa.json } }',
        '  - { type: dropbox, auth: { appKey: db-key, appSecret: db-secret, refreshToken: db-refresh } }',
        '  - { type: box, auth: { kind: ccg, clientId: box-id, clientSecret: box-secret, userId: "42" } }',
        '  - { type: onedrive, auth: { kind: app, tenant: t.example, clientId: od-id, clientSecret: gd-refresh, userId: u } }',
      ].join('\n'),
      { env: { GD_SECRET: 'gd-secret-from-env' }, cwd: '/' },
    );
    expect(collectSecrets(config).sort()).toEqual(['box-secret', 'db-refresh', 'db-secret', 'gd-refresh', 'gd-secret-from-env']);
  });
});

describe('redactString', () => {
  test.each([
    ['token abcdef123 in a message', ['abcdef123'], 'token [redacted] in a message'],
    ['twice: abcdef123/abcdef123', ['abcdef123'], 'twice: [redacted]/[redacted]'],
    // URL-encoded, as in a token request's query string.
    ['https://x/?refresh_token=a%2Bb%2Fc%3D%3D', ['a+b/c=='], 'https://x/?refresh_token=[redacted]'],
    ['form: token=a+b%2Fc%3D%3D', ['a b/c=='], 'form: token=[redacted]'],
    ['path: /files/a%20b~c(1)', ['a b~c(1)'], 'path: /files/[redacted]'],
    // Regex characters are literal; the longer secret wins over one it contains.
    ['x(1.2*)y secret-long', ['(1.2*)', 'secret', 'secret-long'], 'x[redacted]y [redacted]'],
    // Too short to scrub by value.
    ['abc def', ['abc'], 'abc def'],
    ['nothing to hide', [], 'nothing to hide'],
  ])('%j with %j', (input, secrets, output) => {
    expect(redactString(input, secrets)).toBe(output);
  });

  test('a redactor can be built once and reused', () => {
    const redact = createRedactor(['s3cr3t-value']);
    expect(redact('a s3cr3t-value b')).toBe('a [redacted] b');
    expect(redact('again s3cr3t-value')).toBe('again [redacted]');
  });
});
