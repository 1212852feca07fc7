/**
 * Drive credentials: the `stagecoach auth` setup flow against the emulator's token endpoint,
 * and a service account (JWT grant) archiving into a shared drive.
 */
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, StagecoachError } from '../../../src/errors.js';
import { authorize, parsePastedCode, type AuthIO } from '../../../src/targets/gdrive/auth.js';
import { writeSecretFile } from '../../../src/targets/secret-file.js';
import { createGdriveTarget } from '../../../src/targets/gdrive/index.js';
import { seededBytes } from '../../conformance/sources.js';
import { FOLDER_MIME, startGdriveEmulator, type GdriveEmulator } from '../../emulators/gdrive/index.js';
import { tempDir } from '../../helpers/fs.js';
import { makeTarget, put, rejected } from './helpers.js';

let emu: GdriveEmulator;
let dir: string;
let cleanupDir: () => Promise<void>;

beforeEach(async () => {
  emu = await startGdriveEmulator({ seed: 9 });
  ({ dir, cleanup: cleanupDir } = await tempDir('stagecoach-gdrive-auth-'));
});
afterEach(async () => {
  await emu.close();
  await cleanupDir();
});

/** A terminal that answers the prompt with `answer(printedLines)`. */
function terminal(answer: (printed: string[]) => string): AuthIO & { printed: string[]; prompts: string[] } {
  const printed: string[] = [];
  const prompts: string[] = [];
  return {
    printed,
    prompts,
    print: (line) => void printed.push(line),
    prompt: async (q) => {
      prompts.push(q);
      return answer(printed);
    },
  };
}

function consentUrl(printed: string[]): URL {
  const line = printed.find((l) => l.trim().startsWith('http'));
  if (!line) throw new Error('no URL printed');
  return new URL(line.trim());
}

const AUTH_URL = 'https://accounts.example.test/o/oauth2/v2/auth';

describe('authorize (stagecoach auth <id>)', () => {
  const base = () => ({
    id: 'drive-home',
    clientId: emu.clientId,
    clientSecret: emu.clientSecret,
    tokenFile: path.join(dir, 'state', 'drive-home', 'refresh-token'),
    endpoints: { authUrl: AUTH_URL, tokenUrl: `${emu.url}/token` },
  });

  it('prints a consent URL, takes the pasted redirect address, stores the refresh token 0600 and prints the config line', async () => {
    emu.addAuthCode('4/0AbCdEf');
    const io = terminal((printed) => {
      const u = consentUrl(printed);
      return `http://127.0.0.1:53682/?state=${u.searchParams.get('state')}&code=4/0AbCdEf&scope=https://www.googleapis.com/auth/drive.file`;
    });
    const result = await authorize(base(), io);

    const u = consentUrl(io.printed);
    expect(`${u.origin}${u.pathname}`).toBe(AUTH_URL);
    expect(Object.fromEntries(u.searchParams)).toMatchObject({
      client_id: emu.clientId,
      redirect_uri: 'http://127.0.0.1:53682/',
      response_type: 'code',
      access_type: 'offline',
      prompt: 'consent',
      // Least privilege: only the files and folders the app made (issue 18).
      scope: 'https://www.googleapis.com/auth/drive.file',
      code_challenge_method: 'S256',
    });
    expect(u.searchParams.get('state')).toMatch(/^[\w-]{16,}$/);
    expect(u.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(u.searchParams.has('client_secret')).toBe(false);

    const token = (await readFile(result.tokenFile, 'utf8')).trim();
    expect(token).toBe(`1//emu-${Buffer.from('4/0AbCdEf').toString('base64url')}`);
    expect((await stat(result.tokenFile)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(result.tokenFile))).mode & 0o777).toBe(0o700);
    expect(result.configLine).toBe(`refreshToken: \${file:${result.tokenFile}}`);
    expect(io.printed.join('\n')).toContain(result.configLine);
    // The refresh token itself is never printed.
    expect(io.printed.join('\n')).not.toContain(token);
    expect(io.prompts).toHaveLength(1);

    // And it works: a target with it archives.
    const { target } = makeTarget(emu, {}, { auth: { kind: 'oauth', clientId: emu.clientId, clientSecret: emu.clientSecret, refreshToken: token } });
    expect((await target.put(put('after-auth.bin', seededBytes(1, 10)))).size).toBe(10);
  });

  it('takes the bare code too', async () => {
    emu.addAuthCode('bare-code');
    const result = await authorize(base(), terminal(() => '  bare-code \n'));
    expect((await readFile(result.tokenFile, 'utf8')).trim()).toBe(`1//emu-${Buffer.from('bare-code').toString('base64url')}`);
  });

  it('sends the PKCE verifier whose S256 digest was in the consent URL', async () => {
    emu.addAuthCode('c1');
    let challenge = '';
    const tokenBodies: string[] = [];
    const proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        tokenBodies.push(body);
        const fwd = http.request(`${emu.url}/token`, { method: 'POST', headers: { 'content-type': String(req.headers['content-type']) } }, (r) => {
          res.writeHead(r.statusCode ?? 500, { 'content-type': 'application/json' });
          r.pipe(res);
        });
        fwd.end(body);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const tokenUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/token`;
      await authorize({ ...base(), endpoints: { authUrl: AUTH_URL, tokenUrl } }, terminal((printed) => {
        challenge = consentUrl(printed).searchParams.get('code_challenge')!;
        return 'c1';
      }));
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
    const form = new URLSearchParams(tokenBodies[0]);
    expect(form.get('grant_type')).toBe('authorization_code');
    expect(form.get('redirect_uri')).toBe('http://127.0.0.1:53682/');
    expect(createHash('sha256').update(form.get('code_verifier')!).digest('base64url')).toBe(challenge);
  });

  it.each([
    ['another attempt\'s address', () => 'http://127.0.0.1:53682/?state=other&code=c', 'gdrive.auth-state-mismatch'],
    ['a refusal', () => 'http://127.0.0.1:53682/?error=access_denied', 'gdrive.auth-denied'],
    ['nothing', () => '   ', 'gdrive.auth-no-code'],
    ['an unknown code', () => 'never-issued', 'gdrive.auth-exchange-failed'],
  ])('refuses %s, writing nothing', async (_what, answer, code) => {
    const err = await rejected(authorize(base(), terminal(answer)));
    expect(err).toBeInstanceOf(StagecoachError);
    expect((err as StagecoachError).code).toBe(code);
    expect((err as Error).message).not.toContain(emu.clientSecret);
    await expect(stat(base().tokenFile)).rejects.toThrow();
  });
});

describe('parsePastedCode', () => {
  it.each([
    ['4/0Abc', '4/0Abc'],
    ['http://127.0.0.1:53682/?state=S&code=4/0Abc&scope=x', '4/0Abc'],
    ['http://127.0.0.1:53682/?code=4%2F0Abc&state=S', '4/0Abc'],
    ['?state=S&code=xyz', 'xyz'],
    ['state=S&code=xyz', 'xyz'],
    ['http://127.0.0.1:53682/?code=nostate', 'nostate'],
  ])('%j → %j', (pasted, code) => {
    expect(parsePastedCode(pasted, 'S')).toBe(code);
  });
});

describe('writeSecretFile', () => {
  it('replaces a file atomically with mode 0600', async () => {
    const f = path.join(dir, 'a', 'b', 'secret');
    await writeSecretFile(f, 'one');
    await writeSecretFile(f, 'two');
    expect(await readFile(f, 'utf8')).toBe('two');
    expect((await stat(f)).mode & 0o777).toBe(0o600);
  });
});

describe('service account', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = 'archiver@project.iam.gserviceaccount.com';

  /** A token endpoint for the JWT-bearer grant (the emulator has none): checks the signature, hands out emulator tokens. */
  async function jwtTokenServer(): Promise<{ url: string; grants: Array<Record<string, unknown>>; close(): Promise<void> }> {
    const grants: Array<Record<string, unknown>> = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const [h, p, s] = (form.get('assertion') ?? '').split('.');
        const ok =
          form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer' &&
          h !== undefined && p !== undefined && s !== undefined &&
          verify('RSA-SHA256', Buffer.from(`${h}.${p}`), publicKey, Buffer.from(s, 'base64url'));
        res.setHeader('content-type', 'application/json');
        if (!ok) {
          res.statusCode = 400;
          res.end(JSON.stringify({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }));
          return;
        }
        grants.push(JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>);
        res.end(JSON.stringify({ access_token: emu.issueAccessToken(), expires_in: 3599, token_type: 'Bearer' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
      grants,
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
  }

  async function keyFile(): Promise<string> {
    const f = path.join(dir, 'sa.json');
    await writeFile(f, JSON.stringify({ type: 'service_account', client_email: email, private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }), private_key_id: 'k1' }));
    return f;
  }

  it('archives into the shared drive with the JWT grant, asking Drive with the shared-drive corpora', async () => {
    const tokens = await jwtTokenServer();
    try {
      // The emulator has no shared drives: a folder stands in for one (a shared drive's id is its root folder's id).
      const driveId = emu.model.create({ name: 'Team Drive', mimeType: FOLDER_MIME, parents: [emu.rootId] }).id;
      const options = {
        type: 'gdrive',
        id: 'team',
        maxDemand: 2,
        minDemand: 1,
        requestsPerSecond: null,
        bytesPerSecond: null,
        remoteRoot: 'Archive',
        auth: { kind: 'serviceAccount', keyFile: await keyFile() },
        sharedDriveId: driveId,
        endpoints: { rootUrl: emu.url, tokenUrl: tokens.url },
      } as const;
      const pino = (await import('pino')).default;
      const target = createGdriveTarget(options, { log: pino({ level: 'silent' }), stateDir: dir });
      const res = await target.put(put('a/b.bin', seededBytes(3, 1000)));
      expect(res.size).toBe(1000);
      expect((await emu.tree()).map((t) => t.path)).toEqual(['/Team Drive/Archive/a/b.bin']);
      expect(tokens.grants).toHaveLength(1);
      expect(tokens.grants[0]).toMatchObject({ iss: email, scope: 'https://www.googleapis.com/auth/drive', aud: 'https://oauth2.googleapis.com/token' });
      const lists = emu.server.requests(/^\/drive\/v3\/files\?/).filter((r) => r.method === 'GET');
      expect(lists.length).toBeGreaterThan(0);
      for (const r of lists) {
        const q = new URL(r.url, 'http://x').searchParams;
        expect([q.get('corpora'), q.get('driveId'), q.get('supportsAllDrives'), q.get('includeItemsFromAllDrives')]).toEqual(['drive', driveId, 'true', 'true']);
      }
      expect(await target.check()).toContain('shared drive "Team Drive"');
    } finally {
      await tokens.close();
    }
  });

  it('check warns that a service account without a shared drive has no storage of its own', async () => {
    const tokens = await jwtTokenServer();
    try {
      const { target } = makeTarget(emu, {}, { auth: { kind: 'serviceAccount', keyFile: await keyFile() }, endpoints: { rootUrl: emu.url, tokenUrl: tokens.url } });
      const report = await target.check();
      expect(report).toMatch(/WARNING: service account archiver@project\.iam\.gserviceaccount\.com has no storage quota of its own/);
      expect(report).toContain('sharedDriveId');
    } finally {
      await tokens.close();
    }
  });

  it('a missing or malformed key file is a ConfigError at auth.keyFile that never quotes the key', async () => {
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, '{"private_key": "-----BEGIN PRIVATE KEY-----SECRET');
    for (const keyFile of [path.join(dir, 'missing.json'), bad]) {
      let err: unknown;
      try {
        makeTarget(emu, {}, { auth: { kind: 'serviceAccount', keyFile } });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).path).toBe('auth.keyFile');
      expect((err as Error).message).not.toContain('SECRET');
    }
  });

  it('a key the token endpoint refuses is fatal', async () => {
    const tokens = await jwtTokenServer();
    try {
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const f = path.join(dir, 'other.json');
      await writeFile(f, JSON.stringify({ client_email: email, private_key: other.export({ type: 'pkcs8', format: 'pem' }) }));
      const { target } = makeTarget(emu, {}, { auth: { kind: 'serviceAccount', keyFile: f }, endpoints: { rootUrl: emu.url, tokenUrl: tokens.url } });
      const err = await rejected(target.put(put('x.bin', seededBytes(4, 10))));
      expect(target.classify(err).kind).toBe('fatal');
      expect(target.classify(err).reason).toMatch(/^auth-key-refused: /);
    } finally {
      await tokens.close();
    }
  });
});

describe('check with OAuth', () => {
  it('says who the target writes as, the quota, and whether remoteRoot exists', async () => {
    emu.setStorageQuota(15 * 2 ** 30);
    const { target } = makeTarget(emu);
    const before = await target.check();
    expect(before).toMatch(/^Google Drive reachable as .+@.+; 0\.0 GiB used of 15\.0 GiB/);
    expect(before).toContain('does not exist yet');
    expect(emu.entries()).toEqual([]);
    await target.ensureFolder('');
    expect(await target.check()).toContain('remoteRoot "Stagecoach Archive" exists');
  });

  it('a token request that hangs fails as a network timeout after requestTimeoutMs, and the next one gets through', async () => {
    emu.server.setFaults({ queue: [{ match: /\/token$/, fault: { kind: 'hang' } }] });
    const { target } = makeTarget(emu, { requestTimeoutMs: 300 });
    const err = await rejected(target.put(put('a.bin', seededBytes(1, 100))));
    expect(target.classify(err)).toMatchObject({ kind: 'retry', reason: expect.stringMatching(/^network: .*TimeoutError/) });
    expect(emu.server.requests().map((r) => `${r.url} ${r.fault}`)).toEqual(['/token hang']);
    const ok = await target.put(put('a.bin', seededBytes(1, 100)));
    expect(ok.size).toBe(100);
  });

  it('a hung Drive request still times out when garbage collection runs while it waits (the put has a signal)', async () => {
    // gaxios given a timeout and a signal combines them with AbortSignal.any and drops its own
    // reference to the timeout signal: on Node 20 a GC then loses the timer and the request
    // hangs for ever. Collect garbage every 20 ms while the request hangs.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const { target } = makeTarget(emu, { requestTimeoutMs: 400 });
    await target.ensureFolder('g');
    emu.server.setFaults({ queue: [{ match: /^\/upload\/drive\/v3\/files$/, fault: { kind: 'hang' } }] });
    const ac = new AbortController();
    const collecting = setInterval(gc, 20);
    try {
      const err = await rejected(target.put({ ...put('g/a.bin', seededBytes(2, 100)), signal: ac.signal }));
      expect(target.classify(err)).toMatchObject({ kind: 'retry', reason: expect.stringMatching(/^network: .*TimeoutError/) });
    } finally {
      clearInterval(collecting);
    }
  }, 15_000);

  it('fails fatal when the refresh token is revoked', async () => {
    emu.tokens.revoke();
    const { target } = makeTarget(emu);
    const err = await rejected(target.check());
    expect(target.classify(err).kind).toBe('fatal');
  });
});
