/**
 * box-node-sdk 10.12, unmocked, pointed at the emulator exactly as client.ts does it (the way
 * the product's Box target will): folder create, small upload, a 20 MiB chunked upload streamed
 * from disk, token rotation through TokenStorage, and the failure paths the target must handle.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BoxApiError } from 'box-node-sdk/lib/box/errors';
import type { TokenStorage } from 'box-node-sdk/lib/box/tokenStorage';
import type { AccessToken } from 'box-node-sdk/lib/schemas/accessToken';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBoxCcgClient, createBoxOAuthClient } from './client.js';
import type { BoxEmulator } from './index.js';
import { startBoxEmulator } from './index.js';
import { call, form, pattern } from './raw-http.js';

/** Keeps what the SDK stores, as the product must (the rotated refresh token arrives only here). */
class CapturingTokenStorage implements TokenStorage {
  readonly stored: AccessToken[] = [];
  constructor(private token: AccessToken | undefined) {}
  async store(token: AccessToken): Promise<undefined> {
    this.stored.push(token);
    this.token = token;
    return undefined;
  }
  async get(): Promise<AccessToken | undefined> {
    return this.token;
  }
  async clear(): Promise<undefined> {
    this.token = undefined;
    return undefined;
  }
}

const MiB = 1024 * 1024;
let emu: BoxEmulator;
let dir: string;
let bigPath: string;
let bigSha1: string;
const BIG = 20 * MiB;

async function sha1OfFile(p: string): Promise<string> {
  const h = createHash('sha1');
  for await (const c of createReadStream(p)) h.update(c as Buffer);
  return h.digest('hex');
}

function oauthClient() {
  const t = emu.issueTokens();
  const storage = new CapturingTokenStorage({ accessToken: t.accessToken, refreshToken: t.refreshToken, tokenType: 'bearer' });
  return { ...createBoxOAuthClient({ url: emu.url, clientId: emu.clientId, clientSecret: emu.clientSecret, tokenStorage: storage }), storage, issued: t };
}

beforeAll(async () => {
  emu = await startBoxEmulator();
  dir = await mkdtemp(path.join(tmpdir(), 'stagecoach-box-sdk-'));
  bigPath = path.join(dir, 'big.bin');
  await writeFile(bigPath, pattern(BIG, 11));
  bigSha1 = await sha1OfFile(bigPath);
});
afterAll(async () => {
  await emu.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  emu.server.clearFaults();
  emu.commitAccepted(0);
});

describe('box-node-sdk against the emulator', () => {
  it('creates a folder, uploads a small file, and chunk-uploads a 20 MiB file from disk; sha1s match', async () => {
    const { client } = oauthClient();
    const folder = await client.folders.createFolder({ name: 'sdk', parent: { id: '0' } });
    expect(folder.id).toMatch(/^\d+$/);
    expect(folder.name).toBe('sdk');

    const smallPath = path.join(dir, 'small.txt');
    const small = Buffer.from('a small file, uploaded in one multipart request\n');
    await writeFile(smallPath, small);
    const up = await client.uploads.uploadFile({ attributes: { name: 'small.txt', parent: { id: folder.id } }, file: createReadStream(smallPath) });
    expect(up.totalCount).toBe(1);
    const smallFile = up.entries![0]!;
    expect(smallFile.sha1).toBe(createHash('sha1').update(small).digest('hex'));
    expect(smallFile.size).toBe(small.length);

    const before = emu.server.log.length;
    const big = await client.chunkedUploads.uploadBigFile(createReadStream(bigPath), 'big.bin', BIG, folder.id);
    expect(big.sha1).toBe(bigSha1);
    expect(big.size).toBe(BIG);
    expect(big.parent?.id).toBe(folder.id);

    const calls = emu.server.log.slice(before).map((l) => `${l.method} ${l.url.replace(/[0-9A-F]{32}/, 'SID')} ${l.status}`);
    expect(calls).toEqual([
      'POST /api/2.0/files/upload_sessions 201',
      'PUT /api/2.0/files/upload_sessions/SID 200',
      'PUT /api/2.0/files/upload_sessions/SID 200',
      'PUT /api/2.0/files/upload_sessions/SID 200',
      'GET /api/2.0/files/upload_sessions/SID/parts 200',
      'POST /api/2.0/files/upload_sessions/SID/commit 201',
    ]);
    const tree = await emu.tree();
    expect(tree.find((t) => t.path === '/sdk/big.bin')).toMatchObject({ size: BIG, hash: bigSha1 });
    expect(tree.find((t) => t.path === '/sdk/small.txt')?.hash).toBe(smallFile.sha1);
  });

  it('on 401 the SDK refreshes once, replays, and the rotated refresh token reaches TokenStorage.store()', async () => {
    const { client, storage, issued } = oauthClient();
    emu.expireTokens();
    const grantsBefore = emu.oauth.grants.refresh_token;
    const root = await client.folders.getFolderById('0');
    expect(root.id).toBe('0');
    expect(emu.oauth.grants.refresh_token).toBe(grantsBefore + 1);
    expect(storage.stored).toHaveLength(1);
    const rotated = storage.stored[0]!;
    expect(rotated.refreshToken).toEqual(expect.any(String));
    expect(rotated.refreshToken).not.toBe(issued.refreshToken);
    expect(rotated.accessToken).not.toBe(issued.accessToken);
    const tail = emu.server.log.slice(-3).map((l) => `${l.method} ${l.url} ${l.status}`);
    expect(tail).toEqual(['GET /2.0/folders/0 401', 'POST /oauth2/token 200', 'GET /2.0/folders/0 200']);
    // The old refresh token is now dead; the stored one works.
    const refresh = (rt: string) =>
      call(emu.url, '/oauth2/token', { method: 'POST', ...form({ grant_type: 'refresh_token', refresh_token: rt, client_id: emu.clientId, client_secret: emu.clientSecret }) });
    expect((await refresh(issued.refreshToken)).json.error).toBe('invalid_grant');
    expect((await refresh(rotated.refreshToken!)).status).toBe(200);
  });

  it('parallel 401s share one refresh (a second refresh with the same single-use token would fail)', async () => {
    const { client, storage } = oauthClient();
    emu.expireTokens();
    const grantsBefore = emu.oauth.grants.refresh_token;
    const results = await Promise.all([0, 1, 2].map(() => client.folders.getFolderById('0')));
    expect(results.map((r) => r.id)).toEqual(['0', '0', '0']);
    expect(emu.oauth.grants.refresh_token).toBe(grantsBefore + 1);
    expect(storage.stored).toHaveLength(1);
  });

  it('a revoked grant surfaces the token endpoint\'s invalid_grant', async () => {
    const em = await startBoxEmulator();
    try {
      const t = em.issueTokens();
      const storage = new CapturingTokenStorage({ accessToken: t.accessToken, refreshToken: t.refreshToken });
      const { client } = createBoxOAuthClient({ url: em.url, clientId: em.clientId, clientSecret: em.clientSecret, tokenStorage: storage });
      em.revoke();
      const err = await client.folders.getFolderById('0').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BoxApiError);
      const api = err as BoxApiError;
      expect(api.responseInfo.statusCode).toBe(400);
      expect(api.responseInfo.body).toMatchObject({ error: 'invalid_grant' });
      expect(storage.stored).toHaveLength(0);
    } finally {
      await em.close();
    }
  });

  it('does not retry a 429: one request, and the error carries retry-after and Box\'s code', async () => {
    const { client } = oauthClient();
    emu.server.setFaults({ queue: [{ match: /^\/2\.0\/folders$/, fault: { kind: 'status', status: 429, retryAfterS: 30 } }] });
    const before = emu.server.requests(/^\/2\.0\/folders$/).length;
    const err = await client.folders.createFolder({ name: 'throttled', parent: { id: '0' } }).then(
      () => null,
      (e: unknown) => e as BoxApiError,
    );
    expect(err).toBeInstanceOf(BoxApiError);
    expect(err!.responseInfo.statusCode).toBe(429);
    expect(err!.responseInfo.headers['retry-after']).toBe('30');
    expect(err!.responseInfo.body).toMatchObject({ code: 'rate_limit_exceeded' });
    expect(emu.server.requests(/^\/2\.0\/folders$/).length - before).toBe(1);
  });

  it('a folder name in use is a BoxApiError whose body names the existing folder', async () => {
    const { client } = oauthClient();
    const first = await client.folders.createFolder({ name: 'Twice', parent: { id: '0' } });
    const err = await client.folders.createFolder({ name: 'twice', parent: { id: '0' } }).then(
      () => null,
      (e: unknown) => e as BoxApiError,
    );
    expect(err!.responseInfo.statusCode).toBe(409);
    const body = err!.responseInfo.body as { code: string; context_info: { conflicts: Array<{ id: string }> } };
    expect(body.code).toBe('item_name_in_use');
    expect(body.context_info.conflicts[0]!.id).toBe(first.id);
  });

  it('commit 202 breaks uploadBigFile (SDK bug); committing by URL again completes the same session', async () => {
    const { client } = oauthClient();
    emu.commitAccepted(2, 1);
    await expect(client.chunkedUploads.uploadBigFile(createReadStream(bigPath), 'accepted.bin', BIG, '0')).rejects.toThrow(TypeError);
    const [session] = emu.uploadSessions();
    expect(session?.parts.size).toBe(3);
    const base = `${emu.url}/api/2.0/files/upload_sessions/${session!.id}`;
    const parts = await client.chunkedUploads.getFileUploadSessionPartsByUrl(`${base}/parts`);
    const digest = `sha=${Buffer.from(bigSha1, 'hex').toString('base64')}`;
    const body = { parts: parts.entries!.map((p) => ({ partId: p.partId, offset: p.offset, size: p.size })) };
    const first = await client.chunkedUploads.createFileUploadSessionCommitByUrl(`${base}/commit`, body, { digest });
    expect(first).toBeUndefined(); // 202: "not yet"
    const done = await client.chunkedUploads.createFileUploadSessionCommitByUrl(`${base}/commit`, body, { digest });
    expect(done?.entries?.[0]?.sha1).toBe(bigSha1);
  });

  it('a CCG client (enterprise service account) authenticates on first use', async () => {
    const { client } = createBoxCcgClient({ url: emu.url, clientId: emu.clientId, clientSecret: emu.clientSecret, enterpriseId: emu.enterpriseId });
    const items = await client.folders.getFolderItems('0', { queryParams: { usemarker: true, limit: 1 } });
    expect(items.entries).toHaveLength(1);
    expect(items.nextMarker).toEqual(expect.any(String));
    expect(emu.oauth.grants.client_credentials).toBe(1);
  });
});
