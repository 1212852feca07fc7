/** `stagecoach auth <id>` for Dropbox (authorize) against the emulator's token endpoint. */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { authorize, codeFromAnswer, type AuthIO } from '../../../src/targets/dropbox/auth.js';
import { createDropboxTarget } from '../../../src/targets/dropbox/index.js';
import { dropboxEndpoints } from '../../conformance/dropbox-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { startDropboxEmulator, type DropboxEmulator } from '../../emulators/dropbox/index.js';
import { tempDir } from '../../helpers/fs.js';

let emu: DropboxEmulator;
let dir: string;
let cleanupDir: () => Promise<void>;

beforeEach(async () => {
  emu = await startDropboxEmulator();
  ({ dir, cleanup: cleanupDir } = await tempDir('stagecoach-dbx-auth-'));
});
afterEach(async () => {
  await emu.close();
  await cleanupDir();
});

/** A terminal that answers the prompt with what `answer` makes of the printed URL. */
function terminal(answer: (authorizeUrl: URL) => string): AuthIO & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    print: (line) => lines.push(line),
    prompt: async () => {
      const line = lines.find((l) => l.includes('/oauth2/authorize?'));
      if (!line) throw new Error('no authorize URL was printed');
      return answer(new URL(line.trim()));
    },
  };
}

describe('authorize (stagecoach auth <id>)', () => {
  it('PKCE: prints the URL, exchanges the pasted code, writes the refresh token 0600, never prints it', async () => {
    emu.oauth.addClient('pkce-app', null);
    const tokenFile = path.join(dir, 'state', 'dropbox', 'refresh-token');
    const io = terminal((url) => {
      expect(url.origin + url.pathname).toBe('https://www.dropbox.com/oauth2/authorize');
      expect(url.searchParams.get('client_id')).toBe('pkce-app');
      expect(url.searchParams.get('response_type')).toBe('code');
      expect(url.searchParams.get('token_access_type')).toBe('offline');
      expect(url.searchParams.get('code_challenge_method')).toBe('S256');
      return `  ${emu.oauth.authorizationCode({ clientId: 'pkce-app', codeChallenge: url.searchParams.get('code_challenge')! })}  `;
    });
    const res = await authorize({ id: 'dbx', appKey: 'pkce-app', tokenFile, endpoints: dropboxEndpoints(emu) }, io);
    expect(res).toMatchObject({ tokenFile, pkce: true, configLine: `refreshToken: \${file:${tokenFile}}` });
    const token = (await readFile(tokenFile, 'utf8')).trim();
    expect(token).toMatch(/^dbx-rt-/);
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(tokenFile))).mode & 0o777).toBe(0o700);
    expect(io.lines.join('\n')).not.toContain(token);
    expect(io.lines.join('\n')).toContain(res.configLine);
    // The code went in the body: no URL on the token endpoint carries a query.
    expect(emu.server.requests(/oauth2\/token/).map((r) => r.url)).toEqual(['/api/oauth2/token']);

    // The token works for a target without a secret.
    const target = createDropboxTarget(
      { id: 'dbx', remoteRoot: 'A', auth: { appKey: 'pkce-app', refreshToken: token }, endpoints: dropboxEndpoints(emu) },
      { log: pino({ level: 'silent' }), stateDir: dir },
    );
    await target.put(request('x.bin', seededBytes(1, 100)));
    expect((await emu.tree()).map((f) => f.path)).toEqual(['/A/x.bin']);
    await target.close();
  });

  it('with an app secret: no PKCE, the secret goes with the code', async () => {
    const { clientId, clientSecret } = emu.credentials;
    const tokenFile = path.join(dir, 'rt');
    const io = terminal((url) => {
      expect(url.searchParams.get('code_challenge')).toBeNull();
      return emu.oauth.authorizationCode({ clientId });
    });
    const res = await authorize({ id: 'dbx', appKey: clientId, appSecret: clientSecret, tokenFile, endpoints: dropboxEndpoints(emu) }, io);
    expect(res.pkce).toBe(false);
    expect(res.accountId).toMatch(/^dbid:/);
    expect((await readFile(tokenFile, 'utf8')).trim()).toMatch(/^dbx-rt-/);
    expect(io.lines.join('\n')).not.toContain(clientSecret);
  });

  it('a code used twice (or made up) is refused: auth-code-refused, and no token file', async () => {
    const { clientId, clientSecret } = emu.credentials;
    const code = emu.oauth.authorizationCode({ clientId });
    await authorize({ id: 'dbx', appKey: clientId, appSecret: clientSecret, tokenFile: path.join(dir, 'a'), endpoints: dropboxEndpoints(emu) }, terminal(() => code));
    const err = await authorize(
      { id: 'dbx', appKey: clientId, appSecret: clientSecret, tokenFile: path.join(dir, 'b'), endpoints: dropboxEndpoints(emu) },
      terminal(() => code),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect((err as TargetError).code).toBe('dropbox.auth-code-refused');
    expect((err as TargetError).kind).toBe('fatal');
    expect((err as Error).message).toContain('stagecoach auth dbx');
    expect((err as Error).message).not.toContain(code);
    await expect(stat(path.join(dir, 'b'))).rejects.toThrow();
  });

  it('a wrong app secret: auth-failed naming invalid_client, the secret not echoed', async () => {
    const { clientId } = emu.credentials;
    const err = await authorize(
      { id: 'dbx', appKey: clientId, appSecret: 'bad-secret-value', tokenFile: path.join(dir, 'c'), endpoints: dropboxEndpoints(emu) },
      terminal(() => emu.oauth.authorizationCode({ clientId })),
    ).catch((e: unknown) => e);
    expect((err as TargetError).code).toBe('dropbox.auth-failed');
    expect((err as Error).message).toContain('invalid_client');
    expect((err as Error).message).not.toContain('bad-secret-value');
  });
});

describe('codeFromAnswer', () => {
  it.each([
    ['the bare code', 'AbC_123-x', 'AbC_123-x'],
    ['the code with spaces around', '  AbC  ', 'AbC'],
    ['a redirect address', 'http://127.0.0.1:53682/?code=XYZ&state=s', 'XYZ'],
  ])('takes %s', (_what, answer, code) => {
    expect(codeFromAnswer(answer, 'dbx')).toBe(code);
  });

  it.each([
    ['nothing', '   ', 'dropbox.auth-no-code'],
    ['a refusal', 'http://127.0.0.1/?error=access_denied&error_description=no', 'dropbox.auth-denied'],
    ['an address without a code', 'http://127.0.0.1/?state=x&code=', 'dropbox.auth-no-code'],
  ])('refuses %s', (_what, answer, code) => {
    let err: unknown;
    try {
      codeFromAnswer(answer, 'dbx');
    } catch (e) {
      err = e;
    }
    expect((err as TargetError).code).toBe(code);
  });
});
