/**
 * Box sign-in: the token file (atomic, 0600, wins over the config), rotation with one refresh in
 * flight under parallel uploads, a revoked sign-in parking the target, the `stagecoach auth`
 * flow, Client Credentials Grant, and no secret in any message or log line.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { inspect } from 'node:util';
import { BoxApiError } from 'box-node-sdk/lib/box/errors';
import pino from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { BoxAuthGate, BoxTokenStorage, RefreshOn401Strategy, RequestAuth, TOKEN_FILE_NAME, authorize, codeFromAnswer, type AuthIO } from '../../../src/targets/box/auth.js';
import { createBoxTarget } from '../../../src/targets/box/index.js';
import type { BoxOptions } from '../../../src/targets/box/api-types.js';
import { startBoxEmulator, type BoxEmulator } from '../../emulators/box/index.js';
import { boxEndpoints, boxHarness, type BoxHarness, type BoxHarnessOptions } from '../../conformance/box-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { tempDir } from '../../helpers/fs.js';

let h: BoxHarness | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
  for (const c of cleanups.splice(0)) await c();
});

async function harness(opts: BoxHarnessOptions = {}): Promise<BoxHarness> {
  h = await boxHarness(opts);
  return h;
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
}

async function tokenFile(hh: BoxHarness): Promise<{ accessToken?: string; refreshToken?: string }> {
  return JSON.parse(await readFile(path.join(hh.stateDir, TOKEN_FILE_NAME), 'utf8')) as { accessToken?: string; refreshToken?: string };
}

const tokenRequests = (emu: BoxEmulator) => emu.server.requests(/^\/oauth2\/token/);

describe('box token file', () => {
  test('the first refresh writes the rotated tokens atomically to the state folder, mode 0600', async () => {
    const hh = await harness();
    const first = hh.options.auth.kind === 'oauth' ? hh.options.auth.refreshToken : undefined;
    await hh.target.put(request('a.bin', seededBytes(1, 10)));
    const file = path.join(hh.stateDir, TOKEN_FILE_NAME);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const saved = await tokenFile(hh);
    expect(saved.refreshToken).toMatch(/^box-rt-/);
    expect(saved.refreshToken).not.toBe(first);
    expect(saved.accessToken).toMatch(/^box-at-/);
    expect((await readdir(hh.stateDir)).filter((n) => n.endsWith('.tmp')), 'no temp file left').toEqual([]);
  });

  test('a token file that exists wins over the config`s (now used) refresh token', async () => {
    const hh = await harness();
    await hh.target.put(request('a.bin', seededBytes(2, 10)));
    hh.emu.expireTokens();
    // A restarted daemon: same config (its refresh token was used up), same state folder.
    const restarted = hh.reopen();
    const grants = hh.emu.oauth.grants.refresh_token;
    await restarted.put(request('b.bin', seededBytes(3, 10)));
    expect(hh.emu.oauth.grants.refresh_token).toBe(grants + 1);
  });

  test('with neither a token file nor a refresh token: fatal, telling to run `stagecoach auth`', async () => {
    const emu = await startBoxEmulator();
    const { dir, cleanup } = await tempDir('stagecoach-box-auth-');
    cleanups.push(async () => {
      await emu.close();
      await cleanup();
    });
    const options: BoxOptions = { id: 'boxy', remoteRoot: 'S', auth: { kind: 'oauth', clientId: emu.clientId, clientSecret: emu.clientSecret }, endpoints: boxEndpoints(emu) };
    const t = createBoxTarget(options, { log: pino({ level: 'silent' }), stateDir: dir });
    const err = await rejected(t.put(request('a.bin', seededBytes(4, 10))));
    expect(t.classify(err)).toMatchObject({ kind: 'fatal' });
    expect(t.classify(err).reason).toMatch(/^not-signed-in: .*stagecoach auth boxy/);
    expect(tokenRequests(emu)).toHaveLength(0);
    await t.close();
  });

  test('a token file rotated by another process is adopted instead of refreshing with a dead token', async () => {
    const hh = await harness();
    await hh.target.put(request('a.bin', seededBytes(5, 10)));
    hh.emu.expireTokens();
    // Another process (`stagecoach check`, a second instance) refreshes: the first target's
    // refresh token is dead from now on.
    await hh.reopen().put(request('b.bin', seededBytes(6, 10)));
    const grants = hh.emu.oauth.grants.refresh_token;
    await hh.target.put(request('c.bin', seededBytes(7, 10)));
    expect(hh.emu.oauth.grants.refresh_token, 'the file`s fresh token is used as is').toBe(grants);
    hh.emu.expireTokens();
    await hh.target.put(request('d.bin', seededBytes(8, 10)));
    expect(hh.emu.oauth.grants.refresh_token, 'then refreshed with the adopted refresh token').toBe(grants + 1);
    expect(tokenRequests(hh.emu).every((r) => r.status === 200), 'no refused refresh').toBe(true);
  });
});

describe('box refresh: one in flight', () => {
  test('an expired token under 8 parallel uploads costs exactly one refresh; the new token is persisted and works', async () => {
    const hh = await harness();
    // The folder and its listing exist already, so the 8 uploads hit Box at once, each with the expired token.
    await hh.target.put(request('par/warm.bin', seededBytes(10, 10)));
    hh.emu.expireTokens();
    const grants = hh.emu.oauth.grants.refresh_token;
    const mark = hh.emu.server.log.length;
    const puts = Array.from({ length: 8 }, (_, i) => hh.target.put(request(`par/f${i}.bin`, seededBytes(20 + i, 5000 + i))));
    const results = await Promise.all(puts);
    expect(results.every((r) => !r.unchanged)).toBe(true);
    expect(hh.emu.server.log.slice(mark).filter((r) => r.status === 401).length, 'the uploads met the expired token in parallel').toBe(8);
    expect(hh.emu.oauth.grants.refresh_token - grants).toBe(1);
    expect(tokenRequests(hh.emu).every((r) => r.status === 200), 'no refresh refused (no reuse of a rotated token)').toBe(true);
    // The persisted refresh token is the live one: a fresh instance refreshes with it.
    const saved = await tokenFile(hh);
    hh.emu.expireTokens();
    await hh.reopen().put(request('after.bin', seededBytes(30, 10)));
    expect(hh.emu.oauth.grants.refresh_token - grants).toBe(2);
    expect((await tokenFile(hh)).refreshToken).not.toBe(saved.refreshToken);
  });

  test('the gate runs one refresh for many callers, and none for a 401 on a token already replaced', async () => {
    const { dir, cleanup } = await tempDir('stagecoach-box-gate-');
    cleanups.push(cleanup);
    const storage = new BoxTokenStorage({ targetId: 'box', file: path.join(dir, 'tokens.json'), initialRefreshToken: 'rt-0' });
    let calls = 0;
    const holds: Array<() => void> = [];
    const release = (): void => holds.splice(0).forEach((r) => r());
    let entered!: () => void;
    let enteredP = new Promise<void>((r) => (entered = r));
    const inner = {
      async refreshToken() {
        calls++;
        const held = new Promise<void>((r) => void holds.push(r));
        entered();
        await held;
        await storage.store({ accessToken: `at-${calls}`, refreshToken: `rt-${calls}`, expiresIn: 3600 });
        return storage.current()!;
      },
    };
    const gate = new BoxAuthGate(inner as never, storage, { targetId: 'box', kind: 'oauth', session: () => undefined as never });
    const waiting = [gate.refresh(0), gate.refresh(0), gate.authorization(), gate.authorization()];
    await enteredP;
    expect(calls).toBe(1);
    expect(gate.refreshing).toBe(true);
    release();
    const [, , a1, a2] = await Promise.all(waiting);
    expect(a1).toEqual({ header: 'Bearer at-1', generation: 1 });
    expect(a2).toEqual({ header: 'Bearer at-1', generation: 1 });
    // A request that sent generation 0 and got its 401 late: no second refresh, it replays.
    const strategy = new RefreshOn401Strategy();
    const stale = new RequestAuth(gate);
    stale.used = 0;
    enteredP = new Promise<void>((r) => (entered = r));
    const replay = await Promise.race([strategy.shouldRetry({ auth: stale } as never, { status: 401, headers: {} }, 1), enteredP.then(() => 'a refresh started')]);
    if (replay !== true) release();
    expect(replay).toBe(true);
    expect(calls).toBe(1);
    // The replay itself got 401: not retried again.
    expect(await strategy.shouldRetry({ auth: stale } as never, { status: 401, headers: {} }, 2)).toBe(false);
    // Not a 401: not retried (the pacer owns retries).
    expect(await strategy.shouldRetry({ auth: stale } as never, { status: 429, headers: { 'retry-after': '1' } }, 1)).toBe(false);
    expect(await strategy.shouldRetry({ auth: stale } as never, { status: 500, headers: {} }, 1)).toBe(false);
    // A 401 on the current token: one new refresh.
    const current = new RequestAuth(gate);
    current.used = 1;
    enteredP = new Promise<void>((r) => (entered = r));
    const p = strategy.shouldRetry({ auth: current } as never, { status: 401, headers: {} }, 1);
    await enteredP;
    release();
    expect(await p).toBe(true);
    expect(calls).toBe(2);
    expect(JSON.parse(await readFile(path.join(dir, 'tokens.json'), 'utf8'))).toMatchObject({ refreshToken: 'rt-2', accessToken: 'at-2' });
  });

  test('after Box refused the refresh token, the gate stops asking until a new sign-in is in the file', async () => {
    const { dir, cleanup } = await tempDir('stagecoach-box-gate-');
    cleanups.push(cleanup);
    const file = path.join(dir, 'tokens.json');
    const storage = new BoxTokenStorage({ targetId: 'box', file, initialRefreshToken: 'rt-dead' });
    let calls = 0;
    const refused = new BoxApiError({
      message: '400',
      timestamp: '0',
      requestInfo: { method: 'POST', url: 'x', queryParams: {}, headers: {} },
      responseInfo: { statusCode: 400, headers: {}, body: { error: 'invalid_grant', error_description: 'Refresh token has expired' }, rawBody: '' },
    } as never);
    const inner = {
      async refreshToken() {
        calls++;
        throw refused;
      },
    };
    const gate = new BoxAuthGate(inner as never, storage, { targetId: 'box', kind: 'oauth', session: () => undefined as never });
    await expect(gate.refresh(0)).rejects.toBe(refused);
    await expect(gate.refresh(0)).rejects.toBe(refused);
    expect(calls).toBe(1);
    await writeFile(file, JSON.stringify({ version: 1, accessToken: 'at-new', refreshToken: 'rt-new', expiresAt: Date.now() + 3_600_000 }));
    expect(await gate.authorization()).toEqual({ header: 'Bearer at-new', generation: 1 });
    expect(calls).toBe(1);
  });
});

describe('box revoked sign-in', () => {
  test('a revoked token is fatal with a clear reason, and the target stops asking Box for tokens', async () => {
    const hh = await harness();
    await hh.target.put(request('a.bin', seededBytes(40, 10)));
    hh.emu.revoke();
    const err = await rejected(hh.target.put(request('b.bin', seededBytes(41, 10))));
    expect(err).toBeInstanceOf(TargetError);
    const c = hh.target.classify(err);
    expect(c.kind).toBe('fatal');
    expect(c.reason).toMatch(/^auth-revoked: .*invalid_grant.*run `stagecoach auth box`/);
    const refreshes = tokenRequests(hh.emu).length;
    const err2 = await rejected(hh.target.put(request('c.bin', seededBytes(42, 10))));
    expect(hh.target.classify(err2).kind).toBe('fatal');
    expect(tokenRequests(hh.emu).length, 'no new refresh with a refused token').toBe(refreshes);
    expect(await hh.listAll()).toEqual(['a.bin']);
  });
});

describe('box Client Credentials Grant', () => {
  test('uploads with an enterprise token, keeps no token file, fetches a new token on expiry', async () => {
    const hh = await harness({ auth: 'ccg' });
    await hh.target.put(request('ccg/a.bin', seededBytes(50, 10)));
    expect(hh.emu.oauth.grants.client_credentials).toBe(1);
    hh.emu.expireTokens();
    await Promise.all([0, 1, 2].map((i) => hh.target.put(request(`ccg/p${i}.bin`, seededBytes(51 + i, 10)))));
    expect(hh.emu.oauth.grants.client_credentials).toBe(2);
    expect(await readdir(hh.stateDir)).toEqual([]);
    expect(await hh.target.check()).toMatch(/Client Credentials Grant/);
  });

  test('wrong client credentials are fatal', async () => {
    const emu = await startBoxEmulator();
    const { dir, cleanup } = await tempDir('stagecoach-box-ccg-');
    cleanups.push(async () => {
      await emu.close();
      await cleanup();
    });
    const t = createBoxTarget(
      { id: 'box', auth: { kind: 'ccg', clientId: emu.clientId, clientSecret: 'wrong-secret', userId: emu.userId }, endpoints: boxEndpoints(emu) },
      { log: pino({ level: 'silent' }), stateDir: dir },
    );
    const err = await rejected(t.put(request('a.bin', seededBytes(55, 1))));
    expect(t.classify(err)).toMatchObject({ kind: 'fatal' });
    expect(t.classify(err).reason).toMatch(/^auth-client-refused: /);
    expect(JSON.stringify(t.classify(err)) + String((err as Error).stack)).not.toContain('wrong-secret');
    await t.close();
  });
});

describe('stagecoach auth <id> (box)', () => {
  async function setup(): Promise<{ emu: BoxEmulator; dir: string; options: BoxOptions }> {
    const emu = await startBoxEmulator();
    const { dir, cleanup } = await tempDir('stagecoach-box-authorize-');
    cleanups.push(async () => {
      await emu.close();
      await cleanup();
    });
    const options: BoxOptions = { id: 'mybox', remoteRoot: 'Arch', auth: { kind: 'oauth', clientId: emu.clientId, clientSecret: emu.clientSecret }, endpoints: boxEndpoints(emu) };
    return { emu, dir, options };
  }

  function io(answer: (printed: string[]) => string): AuthIO & { printed: string[] } {
    const printed: string[] = [];
    return {
      printed,
      print: (l) => void printed.push(l),
      prompt: async () => answer(printed),
    };
  }

  test('prints the authorize URL, takes the redirected URL, stores the tokens (0600); the target then works', async () => {
    const { emu, dir, options } = await setup();
    const code = emu.issueAuthCode();
    const t = io((printed) => {
      const url = new URL(printed.find((l) => l.includes('/authorize?'))!.trim());
      expect(url.origin + url.pathname).toBe(`${emu.url}/api/oauth2/authorize`);
      expect(url.searchParams.get('client_id')).toBe(emu.clientId);
      expect(url.searchParams.get('response_type')).toBe('code');
      return `http://localhost:8080/callback?state=${url.searchParams.get('state')}&code=${code}`;
    });
    const line = await authorize(options, { stateDir: dir }, t);
    expect(line).toMatch(/tokens stored in .*box-tokens\.json \(mode 0600\)/);
    expect(emu.oauth.grants.authorization_code).toBe(1);
    const file = path.join(dir, TOKEN_FILE_NAME);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const stored = await readFile(file, 'utf8');
    expect(t.printed.join('\n')).not.toContain((JSON.parse(stored) as { refreshToken: string }).refreshToken);
    const target = createBoxTarget(options, { log: pino({ level: 'silent' }), stateDir: dir });
    await target.put(request('x.bin', seededBytes(60, 10)));
    await target.close();
    expect((await emu.tree()).map((f) => f.path)).toEqual(['/Arch/x.bin']);
  });

  test('a bare code works too', async () => {
    const { emu, dir, options } = await setup();
    await authorize(options, { stateDir: dir }, io(() => `  ${emu.issueAuthCode()}  `));
    expect(emu.oauth.grants.authorization_code).toBe(1);
  });

  test('a used or expired code, a denied grant and a foreign state fail with clear reasons', async () => {
    const { emu, dir, options } = await setup();
    const code = emu.issueAuthCode();
    await authorize(options, { stateDir: dir }, io(() => code));
    const e1 = await rejected(authorize(options, { stateDir: dir }, io(() => code)));
    expect((e1 as TargetError).message).toMatch(/auth-code-refused: .*invalid_grant.*30 seconds/);
    const e2 = await rejected(authorize(options, { stateDir: dir }, io(() => 'http://localhost/?error=access_denied&error_description=The+user+denied+access')));
    expect((e2 as TargetError).message).toMatch(/auth-denied: .*access_denied/);
    const e3 = await rejected(authorize(options, { stateDir: dir }, io(() => `http://localhost/?state=other&code=${emu.issueAuthCode()}`)));
    expect((e3 as TargetError).message).toMatch(/auth-state-mismatch/);
    expect(() => codeFromAnswer('', 's', 'b')).toThrow(/auth-no-code/);
    expect(codeFromAnswer('?code=abc&state=s', 's', 'b')).toBe('abc');
  });

  test('CCG needs no sign-in; authorize checks the credentials', async () => {
    const { emu, dir } = await setup();
    const options: BoxOptions = { id: 'ent', auth: { kind: 'ccg', clientId: emu.clientId, clientSecret: emu.clientSecret, enterpriseId: emu.enterpriseId }, endpoints: boxEndpoints(emu) };
    const t = io(() => 'unused');
    expect(await authorize(options, { stateDir: dir }, t)).toMatch(/needs no sign-in.*enterprise/);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('no secret in any message or log line', () => {
  test('faults, expiry, a refused refresh: errors, their causes and the logs carry no token or client secret', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) });
    const hh = await harness({ log, emulator: { minChunkedSize: 1_000_000, partSize: 262_144 }, internals: { simpleUploadMax: 1_000_000, sleep: async () => undefined } });
    const errors: unknown[] = [];
    const attempt = async (p: string, size: number): Promise<void> => {
      try {
        await hh.target.put(request(p, seededBytes(size, size)));
      } catch (e) {
        errors.push(e);
      }
    };
    await attempt('ok.bin', 100);
    hh.emu.server.setFaults({ rate: 0.5, mix: [{ kind: 'status', status: 429, retryAfterS: 1, weight: 1 }, { kind: 'status', status: 500, weight: 1 }, { kind: 'status', status: 503, weight: 1 }, { kind: 'reset', weight: 1 }] });
    for (let i = 0; i < 6; i++) await attempt(`f${i}.bin`, 2000 + i);
    await attempt('big.bin', 1_300_000);
    hh.emu.server.clearFaults();
    hh.emu.expireTokens();
    await attempt('after-expiry.bin', 100);
    hh.emu.revoke();
    await attempt('revoked.bin', 100);
    await hh.target.check().catch((e: unknown) => errors.push(e));
    expect(errors.length).toBeGreaterThan(2);
    for (const e of errors) {
      log.error({ err: e, classified: hh.target.classify(e) }, 'put failed');
      // Whoever logs a cause on its own gets its enumerable fields too.
      for (let c = (e as Error).cause, i = 0; c !== undefined && i < 8; c = (c as Error).cause, i++) log.error({ err: c, raw: c }, 'cause');
    }
    const secrets = [hh.emu.clientSecret, hh.options.auth.kind === 'oauth' ? hh.options.auth.refreshToken! : '', ...Object.values(await tokenFile(hh)).filter((v): v is string => typeof v === 'string' && v.startsWith('box-'))];
    const text = [
      ...lines,
      ...errors.map((e) => `${String(e)}\n${(e as Error).stack}\n${inspect(e, { depth: 12 })}\n${JSON.stringify(hh.target.classify(e))}`),
    ].join('\n');
    expect(text).toMatch(/auth-revoked/);
    expect(text.match(/box-(?:at|rt)-[0-9a-f-]{8,}/g), 'no access or refresh token').toBeNull();
    for (const s of secrets) expect(text).not.toContain(s);
  });
});
