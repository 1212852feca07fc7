/**
 * Signing the OneDrive target in against the emulator's identity platform: `stagecoach auth`
 * (device code; authorization code for a confidential client), the persisted token cache,
 * refresh after expiry, revocation, app-only client credentials — and no token, secret or
 * upload URL in any error message or log line, faults and all.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { authorize } from '../../../src/targets/onedrive/auth.js';
import { createOnedriveTarget } from '../../../src/targets/onedrive/index.js';
import { TOKEN_CACHE_FILE, codeFromAnswer } from '../../../src/targets/onedrive/auth.js';
import { DEFAULT_FRAGMENT_SIZE as FRAG } from '../../../src/targets/onedrive/api-types.js';
import type { OnedriveOptions } from '../../../src/targets/onedrive/api-types.js';
import type { Target } from '../../../src/targets/target.js';
import {
  ONEDRIVE_CLIENT_SECRET,
  onedriveHarness,
  onedriveOptions,
  signIn,
  type OnedriveHarness,
} from '../../conformance/onedrive-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { startOneDriveEmulator, type OneDriveEmulator } from '../../emulators/onedrive/index.js';
import { raw } from '../../emulators/onedrive/raw.js';
import { tempDir } from '../../helpers/fs.js';
import { ResumeStore, fileRequest, memoryLog, seededFile } from './helpers.js';

const TOKEN_POST = /^\/[^/]+\/oauth2\/v2\.0\/token/;
const silent = pino({ level: 'silent' });

let h: OnedriveHarness | undefined;
let emu: OneDriveEmulator | undefined;
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
  await emu?.close();
  emu = undefined;
  for (const c of cleanups) await c();
  cleanups = [];
});

async function scratch(): Promise<string> {
  const { dir, cleanup } = await tempDir('stagecoach-od-auth-');
  cleanups.push(cleanup);
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<TargetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'the call rejects').toBeInstanceOf(TargetError);
  return err as TargetError;
}

interface CacheJson {
  Account: Record<string, { username: string }>;
  AccessToken: Record<string, { secret: string }>;
  RefreshToken: Record<string, { secret: string }>;
}

async function readCache(stateDir: string): Promise<CacheJson> {
  return JSON.parse(await readFile(path.join(stateDir, TOKEN_CACHE_FILE), 'utf8')) as CacheJson;
}

describe('stagecoach auth (delegated, device code)', () => {
  it('prints the verification URL and the code, polls until approved, and stores the cache with mode 0600', async () => {
    emu = await startOneDriveEmulator({ deviceCodeIntervalS: 0 });
    const stateDir = path.join(await scratch(), 'state');
    const options = onedriveOptions(emu);
    const printed: string[] = [];
    let code = '';
    const line = await authorize(options, { stateDir }, {
      print(l) {
        printed.push(l);
        const m = /Enter the code ([A-Z0-9]+)/.exec(l);
        if (m) {
          code = m[1]!;
          // The user approves in a browser a little later: two polls are answered pending first.
          emu!.approveDeviceCode(code, { afterPolls: 2 });
        }
      },
      prompt: () => Promise.reject(new Error('nothing to ask')),
    });
    expect(printed.join('\n')).toContain('open https://microsoft.com/devicelogin');
    expect(code).toMatch(/^[A-Z0-9]{9}$/);
    expect(emu.deviceCodes().find((d) => d.userCode === code)).toMatchObject({ polls: 2, state: 'redeemed' });
    expect(emu.server.requests(TOKEN_POST).map((r) => r.status)).toEqual([400, 400, 200]);
    expect(line).toBe(`onedrive: signed in to OneDrive as tester@outlook.com; token cache in ${path.join(stateDir, TOKEN_CACHE_FILE)} (mode 0600). Keep that file: it holds the refresh token.`);
    const st = await stat(path.join(stateDir, TOKEN_CACHE_FILE));
    expect(st.mode & 0o777).toBe(0o600);
    expect((await stat(stateDir)).mode & 0o777).toBe(0o700);
    const cache = await readCache(stateDir);
    expect(Object.values(cache.Account).map((a) => a.username)).toEqual(['tester@outlook.com']);
    expect(Object.keys(cache.RefreshToken)).toHaveLength(1);
    // The target signs in from that cache alone.
    const target = createOnedriveTarget(options, { log: silent, stateDir });
    await target.put(request('a.bin', seededBytes(1, 10)));
    expect(await emu.readFile('Stagecoach/a.bin')).not.toBeNull();
    await target.close();
  });

  it('a declined code fails fatal and stores nothing', async () => {
    emu = await startOneDriveEmulator({ deviceCodeIntervalS: 0 });
    const stateDir = await scratch();
    const err = await rejection(
      authorize(onedriveOptions(emu), { stateDir }, {
        print(l) {
          const m = /Enter the code ([A-Z0-9]+)/.exec(l);
          if (m) emu!.declineDeviceCode(m[1]!);
        },
        prompt: () => Promise.reject(new Error('nothing to ask')),
      }),
    );
    expect(err.kind).toBe('fatal');
    expect(err.message).toMatch(/^\[stagecoach\] \[onedrive\] auth-failed: the sign-in did not complete: the identity platform answered .*authorization_declined/);
    await expect(stat(path.join(stateDir, TOKEN_CACHE_FILE))).rejects.toThrow(/ENOENT/);
  });

  it('signing in again keeps one account in the cache', async () => {
    emu = await startOneDriveEmulator({ deviceCodeIntervalS: 0 });
    const stateDir = await scratch();
    await signIn(emu, onedriveOptions(emu), stateDir);
    await signIn(emu, onedriveOptions(emu), stateDir);
    expect(Object.keys((await readCache(stateDir)).Account)).toHaveLength(1);
  });

  it('without a sign-in, the target is fatal and says to run `stagecoach auth <id>`', async () => {
    emu = await startOneDriveEmulator();
    const target = createOnedriveTarget(onedriveOptions(emu), { log: silent, stateDir: await scratch() });
    const err = await rejection(target.put(request('x.bin', seededBytes(2, 10))));
    expect(target.classify(err)).toMatchObject({ kind: 'fatal' });
    expect(err.code).toBe('onedrive.auth-missing');
    expect(err.message).toContain('run `stagecoach auth onedrive`');
    await target.close();
  });

  it('the token cache can live elsewhere (auth.tokenCacheFile)', async () => {
    emu = await startOneDriveEmulator({ deviceCodeIntervalS: 0 });
    const dir = await scratch();
    const file = path.join(dir, 'elsewhere', 'cache.json');
    const base = onedriveOptions(emu);
    const options: OnedriveOptions = { ...base, auth: { kind: 'delegated', clientId: base.auth.clientId, tenant: 'consumers', tokenCacheFile: file } };
    await signIn(emu, options, path.join(dir, 'state'));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const target = createOnedriveTarget(options, { log: silent, stateDir: path.join(dir, 'state') });
    await target.put(request('y.bin', seededBytes(3, 10)));
    await target.close();
  });
});

describe('stagecoach auth (delegated with a client secret: authorization code + PKCE)', () => {
  it('prints the sign-in URL, takes the pasted redirect address, and the target then works', async () => {
    emu = await startOneDriveEmulator({ clientSecret: ONEDRIVE_CLIENT_SECRET });
    const stateDir = await scratch();
    const base = onedriveOptions(emu);
    const options: OnedriveOptions = { ...base, auth: { kind: 'delegated', clientId: base.auth.clientId, tenant: 'consumers', clientSecret: ONEDRIVE_CLIENT_SECRET } };
    const printed: string[] = [];
    await authorize(options, { stateDir }, {
      print: (l) => printed.push(l),
      // The browser's part: open the printed URL, sign in, land on the redirect URI.
      async prompt() {
        const url = new URL(printed.find((l) => l.trim().startsWith('https://'))!.trim());
        expect(url.origin).toBe('https://login.microsoftonline.com');
        const res = await raw(emu!.url, 'GET', url.pathname + url.search, { headers: { host: url.host } });
        expect(res.status).toBe(302);
        return res.headers.location!;
      },
    });
    const target = createOnedriveTarget(options, { log: silent, stateDir });
    emu.tokens.expireAll();
    // The refresh after the 401 goes with the secret (the emulator checks it).
    await target.put(request('c.bin', seededBytes(4, 10)));
    expect(await emu.readFile('Stagecoach/c.bin')).not.toBeNull();
    await target.close();
  });

  it('codeFromAnswer takes a bare code or the redirect URL, and refuses another attempt`s state', () => {
    expect(codeFromAnswer('  M.C5abc ', 's', 'od')).toBe('M.C5abc');
    expect(codeFromAnswer('http://localhost:53682/?code=M.C5xyz&state=s', 's', 'od')).toBe('M.C5xyz');
    expect(() => codeFromAnswer('http://localhost:53682/?code=x&state=other', 's', 'od')).toThrow(/auth-state-mismatch/);
    expect(() => codeFromAnswer('http://localhost:53682/?error=access_denied&error_description=no', 's', 'od')).toThrow(/auth-denied: Microsoft did not grant access \(access_denied: no\)/);
    expect(() => codeFromAnswer('', 's', 'od')).toThrow(/auth-no-code/);
  });
});

describe('tokens at run time', () => {
  it('an expired access token: Graph answers 401, the target refreshes and replays the request once', async () => {
    h = await onedriveHarness();
    await h.target.put(request('r/one.bin', seededBytes(5, 100)));
    const before = await readCache(h.stateDir);
    h.emu.tokens.expireAll();
    const since = h.emu.server.log.length;
    await h.target.put(request('r/two.bin', seededBytes(6, 100)));
    const log = h.emu.server.log.slice(since).map((r) => [r.method, TOKEN_POST.test(r.url) ? 'token' : r.url.split('?')[0]!.replace(/items\/[^/:]+/, 'items/ID'), r.status]);
    expect(log).toEqual([
      ['GET', '/v1.0/me/drive/items/ID:/two.bin', 401],
      ['POST', 'token', 200],
      ['GET', '/v1.0/me/drive/items/ID:/two.bin', 404],
      ['PUT', '/v1.0/me/drive/items/ID:/two.bin:/content', 201],
      // The simple upload carries no metadata: the modification time follows.
      ['PATCH', '/v1.0/me/drive/items/ID', 200],
    ]);
    // The new tokens (a new refresh token too) are in the file.
    const after = await readCache(h.stateDir);
    expect(Object.values(after.AccessToken).map((t) => t.secret)).not.toEqual(Object.values(before.AccessToken).map((t) => t.secret));
    expect(Object.values(after.RefreshToken).map((t) => t.secret)).not.toEqual(Object.values(before.RefreshToken).map((t) => t.secret));
    // …and the next requests use them: no 401, no token request.
    const later = h.emu.server.log.length;
    await h.target.put(request('r/three.bin', seededBytes(7, 100)));
    expect(h.emu.server.log.slice(later).filter((r) => r.status === 401 || TOKEN_POST.test(r.url))).toEqual([]);
    // A restarted daemon reads them from the file.
    const since2 = h.emu.server.log.length;
    await h.reopen().put(request('r/four.bin', seededBytes(8, 100)));
    expect(h.emu.server.log.slice(since2).filter((r) => r.status === 401 || TOKEN_POST.test(r.url))).toEqual([]);
  });

  it('a simple upload answered 401 is sent again with the new token (its body is a Buffer)', async () => {
    h = await onedriveHarness();
    const bytes = seededBytes(7, 50_000);
    h.emu.server.setFaults({ queue: [{ match: /:\/content$/, fault: { kind: 'status', status: 401 } }] });
    const since = h.emu.server.log.length;
    await h.target.put(request('r/replay.bin', bytes));
    const puts = h.emu.server.log.slice(since).filter((r) => r.method === 'PUT');
    expect(puts.map((r) => r.status)).toEqual([401, 201]);
    expect((await h.emu.readFile('Stagecoach/r/replay.bin'))!.equals(bytes)).toBe(true);
  });

  it('parallel requests that all get 401 share one refresh', async () => {
    h = await onedriveHarness();
    await h.target.put(request('p/seed.bin', seededBytes(8, 10)));
    h.emu.tokens.expireAll();
    const since = h.emu.server.log.length;
    await Promise.all(Array.from({ length: 6 }, (_, i) => h!.target.put(request(`p/f${i}.bin`, seededBytes(10 + i, 100)))));
    expect(h.emu.server.log.slice(since).filter((r) => TOKEN_POST.test(r.url)).length).toBe(1);
  });

  it('a 401 that a fresh token does not cure is a retry, not a loop', async () => {
    h = await onedriveHarness();
    h.emu.server.setFaults({ queue: [1, 2, 3].map(() => ({ match: /^\/v1\.0\//, fault: { kind: 'status' as const, status: 401 } })) });
    const since = h.emu.server.log.length;
    const err = await rejection(h.target.put(request('l/x.bin', seededBytes(9, 10))));
    expect(h.target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(err.code).toBe('onedrive.auth-expired');
    expect(h.emu.server.log.slice(since).filter((r) => r.url.startsWith('/v1.0/')).length).toBe(2);
  });

  it('revoked credentials: the target is fatal with a reason that says to sign in again; check() says so too', async () => {
    h = await onedriveHarness();
    await h.target.put(request('v/ok.bin', seededBytes(11, 10)));
    h.emu.tokens.revoke();
    const err = await rejection(h.target.put(request('v/no.bin', seededBytes(12, 10))));
    expect(err.kind).toBe('fatal');
    expect(h.target.classify(err)).toMatchObject({ kind: 'fatal' });
    expect(err.code).toBe('onedrive.auth-revoked');
    expect(err.message).toMatch(/^\[stagecoach\] \[onedrive\] auth-revoked: the identity platform answered invalid_grant: .*AADSTS50173.*; run `stagecoach auth onedrive` to sign in again$/);
    const checked = await rejection(h.target.check());
    expect(checked.code).toBe('onedrive.auth-revoked');
  });

  it('a refresh token expired by inactivity (90 days) is fatal too', async () => {
    h = await onedriveHarness();
    h.emu.expireRefreshTokens();
    h.emu.tokens.expireAll();
    const err = await rejection(h.target.put(request('v/old.bin', seededBytes(13, 10))));
    expect(err.kind).toBe('fatal');
    expect(err.message).toMatch(/AADSTS700082/);
  });

  it('the identity platform down: a retry, not a fatal', async () => {
    h = await onedriveHarness();
    h.emu.tokens.expireAll();
    h.emu.server.setFaults({ queue: [{ match: TOKEN_POST, fault: { kind: 'reset' } }] });
    const err = await rejection(h.target.put(request('d/x.bin', seededBytes(14, 10))));
    expect(h.target.classify(err).kind).toBe('retry');
    expect(err.code).toBe('onedrive.network');
  });
});

describe('app-only (client credentials)', () => {
  it("writes the user's drive at /users/{userId}/drive and gets a new token after a 401", async () => {
    h = await onedriveHarness({ auth: 'app' });
    await h.target.put(request('app/a.bin', seededBytes(15, 100)));
    h.emu.tokens.expireAll();
    const since = h.emu.server.log.length;
    await h.target.put(request('app/b.bin', seededBytes(16, 100)));
    const log = h.emu.server.log.slice(since);
    expect(log.filter((r) => r.url.startsWith('/v1.0/')).every((r) => r.url.startsWith('/v1.0/users/tester%40outlook.com/drive/'))).toBe(true);
    expect(log.filter((r) => TOKEN_POST.test(r.url)).map((r) => [r.url.split('?')[0], r.status])).toEqual([['/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token', 200]]);
    expect(await h.emu.readFile('Stagecoach/app/b.bin')).not.toBeNull();
    expect(await h.target.check()).toMatch(/^signed in to OneDrive as app 0a1b2c3d-0000-4000-8000-123456789abc in tenant 72f988bf-86f1-41af-91ab-2d7cd011db47 \(app-only\)/);
  });

  it('a wrong client secret is fatal (auth-client-refused), and `stagecoach auth` says so', async () => {
    emu = await startOneDriveEmulator({ clientSecret: ONEDRIVE_CLIENT_SECRET });
    const base = onedriveOptions(emu, 'app');
    const options = { ...base, auth: { ...base.auth, clientSecret: 'not-the-secret' } } as OnedriveOptions;
    const target = createOnedriveTarget(options, { log: silent, stateDir: await scratch() });
    const err = await rejection(target.put(request('x.bin', seededBytes(17, 10))));
    expect(err.kind).toBe('fatal');
    expect(err.code).toBe('onedrive.auth-client-refused');
    expect(err.message).not.toContain('not-the-secret');
    await target.close();
    const printed: string[] = [];
    const authErr = await rejection(authorize(options, { stateDir: await scratch() }, { print: (l) => printed.push(l), prompt: async () => '' }));
    expect(authErr.kind).toBe('fatal');
    const ok = await authorize(base, { stateDir: await scratch() }, { print: (l) => printed.push(l), prompt: async () => '' });
    expect(ok).toMatch(/needs no sign-in/);
  });
});

/** Every string reachable from an error: message, stack, own properties, causes (bounded). */
function textsOf(err: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown, depth: number): void => {
    if (depth > 6 || v === null || v === undefined || seen.has(v)) return;
    if (typeof v === 'string') {
      out.push(v);
      return;
    }
    if (typeof v !== 'object') return;
    seen.add(v);
    if (v instanceof Error) {
      out.push(v.message, v.stack ?? '');
      walk(v.cause, depth + 1);
    }
    for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], depth + 1);
  };
  walk(err, 0);
  return out;
}

describe('no secret in any message', () => {
  it('tokens, refresh tokens, the client secret and upload URLs appear in no error, reason or log line, faults and all', async () => {
    const { stream, lines } = memoryLog();
    const log = pino({ level: 'trace' }, stream);
    h = await onedriveHarness({ log });
    const hh = h;
    const dir = await scratch();
    const secrets = new Set<string>([ONEDRIVE_CLIENT_SECRET]);
    const collect = async (): Promise<void> => {
      const cache = await readCache(hh.stateDir);
      for (const t of [...Object.values(cache.AccessToken), ...Object.values(cache.RefreshToken)]) secrets.add(t.secret);
      for (const r of hh.emu.server.log) {
        const m = /^\/rup\/([^/?]+)/.exec(r.url);
        if (m) secrets.add(m[1]!);
      }
    };
    const errors: unknown[] = [];
    const attempt = async (p: Promise<unknown>): Promise<void> => {
      try {
        await p;
      } catch (err) {
        errors.push(err);
      }
      await collect();
    };
    const target: Target = hh.target;
    const { file } = await seededFile(dir, 'big.bin', 18, 2 * FRAG + 3);
    const store = new ResumeStore();
    await attempt(target.put(request('s/one.bin', seededBytes(19, 100))));
    hh.emu.tokens.expireAll();
    hh.emu.server.setFaults({ queue: [{ match: /^\/v1\.0\//, fault: { kind: 'status', status: 429, retryAfterS: 1 } }] });
    await attempt(target.put(request('s/two.bin', seededBytes(20, 100))));
    hh.emu.server.setFaults({ queue: [{ match: /^\/rup\//, fault: { kind: 'reset' } }] });
    await attempt(target.put(fileRequest('s/big.bin', file, 2 * FRAG + 3, { store })));
    hh.emu.server.setFaults({ queue: [{ match: /^\/rup\//, fault: { kind: 'status', status: 500 } }] });
    await attempt(target.put(fileRequest('s/big.bin', file, 2 * FRAG + 3, { store })));
    hh.emu.expireUploadSessions();
    await attempt(target.put(fileRequest('s/big.bin', file, 2 * FRAG + 3, { store })));
    await attempt(target.put(request('s/CON', seededBytes(21, 10))));
    hh.emu.tokens.revoke();
    hh.emu.tokens.expireAll();
    await attempt(target.put(request('s/three.bin', seededBytes(22, 100))));
    await attempt(target.check());

    expect(errors.length).toBeGreaterThanOrEqual(5);
    expect(secrets.size).toBeGreaterThan(4);
    const texts = [...errors.flatMap(textsOf), ...errors.map((e) => target.classify(e).reason), ...lines];
    expect(lines.length).toBeGreaterThan(0);
    for (const secret of secrets) {
      for (const t of texts) expect(t.includes(secret), `a secret (${secret.slice(0, 6)}…) appears in: ${t.slice(0, 200)}`).toBe(false);
    }
  });
});
