import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createLogger, createScrubber, flushLogger, type CreateLoggerOptions } from '../../src/telemetry/logger.js';

const TOKEN = 'sl.u.AbCdEf0123456789-refresh+token/=';

/** A logger writing JSON lines into memory. */
function capture(opts: Partial<CreateLoggerOptions> = {}) {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const log = createLogger({ level: 'trace', format: 'json', secrets: [TOKEN], destination, ...opts });
  const text = () => chunks.join('');
  const lines = () =>
    text()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, any>);
  return { log, text, lines };
}

describe('createLogger redaction', () => {
  test('a token in a nested field', () => {
    const { log, text, lines } = capture();
    log.info({ upload: { response: { body: { note: `refreshed with ${TOKEN}`, list: [TOKEN] } } } }, 'done');
    expect(lines()[0]?.upload).toEqual({ response: { body: { note: 'refreshed with [redacted]', list: ['[redacted]'] } } });
    expect(text()).not.toContain(TOKEN);
  });

  test('a token in an error message, logged as err or as the first argument', () => {
    const { log, text, lines } = capture();
    const error = Object.assign(new Error(`invalid_grant for ${TOKEN}`), { code: 'E_AUTH', status: 400 });
    log.error({ err: error }, 'refresh failed');
    log.error(error);
    const [withMsg, bare] = lines();
    expect(withMsg?.msg).toBe('refresh failed');
    expect(withMsg?.err).toMatchObject({ type: 'Error', message: 'invalid_grant for [redacted]', code: 'E_AUTH', status: 400 });
    expect(withMsg?.err.stack).toMatch(/^Error: invalid_grant for \[redacted\]\n\s+at /);
    expect(bare?.msg).toBe('invalid_grant for [redacted]');
    expect(bare?.err.message).toBe('invalid_grant for [redacted]');
    expect(text()).not.toContain(TOKEN);
  });

  test('a token in the cause of an error', () => {
    const { log, text, lines } = capture();
    log.warn({ err: new Error('upload failed', { cause: new Error(`token ${TOKEN} expired`) }) });
    expect(lines()[0]?.err.message).toBe('upload failed: token [redacted] expired');
    expect(text()).not.toContain(TOKEN);
  });

  test('a token in the msg string and in printf arguments', () => {
    const { log, text, lines } = capture();
    log.info(`got token ${TOKEN}`);
    log.info({ target: 'box' }, 'token %s, body %j, error %s', TOKEN, { t: TOKEN }, new Error(TOKEN));
    expect(lines().map((l) => l.msg)).toEqual([
      'got token [redacted]',
      'token [redacted], body {"t":"[redacted]"}, error Error: [redacted]',
    ]);
    expect(text()).not.toContain(TOKEN);
  });

  test('an Authorization header, whatever its case and depth, even when the token is not a known secret', () => {
    const { log, text, lines } = capture({ secrets: [] });
    log.info({ headers: { authorization: 'Bearer unknown-1' } }, 'a');
    log.info({ req: { headers: { Authorization: 'Bearer unknown-2' } } }, 'b');
    log.info({ err: Object.assign(new Error('401'), { requestInfo: { headers: { Authorization: 'Bearer unknown-3' } } }) }, 'c');
    log.info({ a: { b: { c: { d: { 'Proxy-Authorization': 'Basic unknown-4' } } } } }, 'd');
    const [a, b, c, d] = lines();
    expect(a?.headers.authorization).toBe('[redacted]');
    expect(b?.req.headers.Authorization).toBe('[redacted]');
    expect(c?.err.requestInfo.headers.Authorization).toBe('[redacted]');
    expect(d?.a.b.c.d['Proxy-Authorization']).toBe('[redacted]');
    log.info('printf %j', { call: { req: { authorization: 'Bearer unknown-5' } } });
    expect(lines()[4]?.msg).toBe('printf {"call":{"req":{"authorization":"[redacted]"}}}');
    log.child({ call: { req: { headers: { authorization: 'Bearer unknown-6' } } } }).info('e');
    expect(lines()[5]?.call).toEqual({ req: { headers: { authorization: '[redacted]' } } });
    const grandchild = log.child({ stage: 'uploader' }).child({ ctx: { cookie: 'unknown-7' } });
    grandchild.setBindings({ later: { set_cookie: 'unknown-8' } });
    grandchild.info('f');
    expect(lines()[6]).toMatchObject({ stage: 'uploader', ctx: { cookie: '[redacted]' }, later: { set_cookie: '[redacted]' } });
    expect(text()).not.toMatch(/unknown-\d/);
  });

  test('fields named like credentials, in any spelling', () => {
    const { log, lines } = capture({ secrets: [] });
    log.info({
      accessToken: 'a',
      refresh_token: 'b',
      client_secret: 'c',
      clientSecret: 'd',
      password: 'e',
      token: 'f',
      nested: { 'Refresh-Token': 'g', private_key: 'h', tokenFile: '/state/box.json', tokens: 3 },
    });
    expect(lines()[0]).toMatchObject({
      accessToken: '[redacted]',
      refresh_token: '[redacted]',
      client_secret: '[redacted]',
      clientSecret: '[redacted]',
      password: '[redacted]',
      token: '[redacted]',
      nested: { 'Refresh-Token': '[redacted]', private_key: '[redacted]', tokenFile: '/state/box.json', tokens: 3 },
    });
  });

  test('a token in a URL, URL-encoded, and in child bindings and message prefixes', () => {
    const { log, text, lines } = capture();
    const child = log.child({ target: 'dropbox', note: TOKEN }, { msgPrefix: `[${TOKEN}] ` });
    child.info({ url: new URL(`https://api.example/oauth2/token?refresh_token=${encodeURIComponent(TOKEN)}`) }, 'post');
    const line = lines()[0];
    expect(line?.note).toBe('[redacted]');
    expect(line?.url).toBe('https://api.example/oauth2/token?refresh_token=[redacted]');
    expect(line?.msg).toBe('[[redacted]] post');
    expect(text()).not.toContain(encodeURIComponent(TOKEN));
    expect(text()).not.toContain(TOKEN);
  });

  test('a secret with characters JSON escapes', () => {
    const secret = 'pa"ss\\word\tx';
    const { log, text, lines } = capture({ secrets: [secret] });
    log.info({ field: secret }, `password is ${secret}`);
    expect(lines()[0]).toMatchObject({ field: '[redacted]', msg: 'password is [redacted]' });
    expect(text()).not.toContain(JSON.stringify(secret).slice(1, -1));
  });

  test('the objects logged are not modified', () => {
    const { log } = capture();
    const headers = { authorization: `Bearer ${TOKEN}` };
    const error = new Error(`x ${TOKEN}`);
    log.info({ headers, err: error });
    expect(headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(error.message).toBe(`x ${TOKEN}`);
  });

  test('pretty output is redacted too', () => {
    const { log, text } = capture({ format: 'pretty' });
    log.info({ detail: TOKEN, headers: { authorization: 'Bearer x' } }, `msg ${TOKEN}`);
    expect(text()).toContain('msg [redacted]');
    expect(text()).toContain('detail: "[redacted]"');
    expect(text()).not.toContain(TOKEN);
    expect(text()).not.toContain('Bearer x');
  });
});

describe('createLogger', () => {
  test('auto is JSON when the destination is not a terminal', () => {
    const { log, lines } = capture({ format: 'auto' });
    log.info('hello');
    expect(lines()[0]).toMatchObject({ level: 30, msg: 'hello' });
  });

  test('honours the level', () => {
    const { log, lines } = capture({ level: 'warn' });
    log.info('dropped');
    log.warn('kept');
    expect(lines().map((l) => l.msg)).toEqual(['kept']);
  });

  test('flushLogger resolves for a stream and for a file descriptor destination', async () => {
    const { log } = capture();
    await expect(flushLogger(log)).resolves.toBeUndefined();
    const fd = createLogger({ level: 'info', format: 'json', destination: 1 });
    await expect(flushLogger(fd)).resolves.toBeUndefined();
  });
});

describe('createScrubber', () => {
  const scrub = createScrubber([TOKEN]);

  test('copies, redacts by key and by value, and survives cycles and depth', () => {
    const cyclic: Record<string, unknown> = { name: `n ${TOKEN}` };
    cyclic.self = cyclic;
    let deep: Record<string, unknown> = { leaf: TOKEN };
    for (let i = 0; i < 20; i++) deep = { deeper: deep };
    const out = scrub({ cyclic, deep, when: new Date(0), map: new Map([['k', TOKEN]]), n: 1, nil: null, token: null }) as Record<string, any>;
    expect(out.cyclic).toEqual({ name: 'n [redacted]', self: '[Circular]' });
    expect(JSON.stringify(out.deep)).toContain('"[Object]"');
    expect(out.when).toBe('1970-01-01T00:00:00.000Z');
    expect(out.map).toEqual({ k: '[redacted]' });
    expect(out).toMatchObject({ n: 1, nil: null, token: null });
  });

  test('serializes errors the way pino does, scrubbed', () => {
    const out = scrub({ e: Object.assign(new TypeError(`bad ${TOKEN}`), { code: 'E_BAD' }) }) as Record<string, any>;
    expect(out.e).toMatchObject({ type: 'TypeError', message: 'bad [redacted]', code: 'E_BAD' });
    expect(out.e.stack).toContain('TypeError: bad [redacted]');
  });
});
