/**
 * The official SDKs, unmocked, against the emulator as client.ts points them: MSAL signs in with
 * the device-code flow and refreshes; the Graph client creates a folder, uploads a small file, and
 * uploads a 20 MB file through createUploadSession with LargeFileUploadTask streaming it from
 * disk. The quickXorHash each upload returns equals the file's, computed here independently.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AccountInfo } from '@azure/msal-node';
import { CryptoProvider } from '@azure/msal-node';
import type { Client, GraphError, UploadResult } from '@microsoft/microsoft-graph-client';
import { OneDriveLargeFileUploadTask, StreamUpload } from '@microsoft/microsoft-graph-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QuickXorHasher, quickXorHash } from '../../../src/archive/quickxor.js';
import { seededRandom } from '../harness/index.js';
import { createGraphClient, createMsalApp, createMsalConfidentialApp } from './client.js';
import type { OneDriveEmulator } from './index.js';
import { FRAGMENT_UNIT, startOneDriveEmulator } from './index.js';
import { raw } from './raw.js';

interface DriveItem {
  id: string;
  name: string;
  size: number;
  file?: { hashes: { quickXorHash: string } };
  folder?: { childCount: number };
  parentReference?: { path: string };
}

const CLIENT = '0a1b2c3d-0000-4000-8000-123456789abc';
const SCOPES = ['Files.ReadWrite'];
const TOKEN_PATH = /^\/consumers\/oauth2\/v2\.0\/token/;

let emu: OneDriveEmulator;
let dir: string;
let account: AccountInfo;
let graph: Client;
const msal = () => createMsalApp({ clientId: CLIENT, emulatorUrl: emu.url });
let pca: ReturnType<typeof msal>;

beforeAll(async () => {
  // interval 0: MSAL polls again at once instead of sleeping 5 s between polls.
  emu = await startOneDriveEmulator({ seed: 11, deviceCodeIntervalS: 0, clientSecret: 'app-secret' });
  dir = await mkdtemp(path.join(tmpdir(), 'stagecoach-onedrive-sdk-'));
  pca = msal();
  graph = createGraphClient({
    emulatorUrl: emu.url,
    getAccessToken: async () => (await pca.acquireTokenSilent({ account, scopes: SCOPES })).accessToken,
  });
});
afterAll(async () => {
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('MSAL against the identity endpoints', () => {
  it('signs in with the device-code flow: pending polls, then approval; the account is cached', async () => {
    let userCode = '';
    const result = await pca.acquireTokenByDeviceCode({
      scopes: SCOPES,
      deviceCodeCallback: (r) => {
        userCode = r.userCode;
        emu.approveDeviceCode(r.userCode, { afterPolls: 2 });
      },
    });
    expect(result).not.toBeNull();
    expect(result!.accessToken).toMatch(/^EwB/);
    account = result!.account!;
    expect(account.username).toBe(emu.user.userPrincipalName);
    expect(account.homeAccountId).toMatch(/^00000000-0000-0000-[0-9a-f-]+\.9188040d-6c67-4c5b-b112-36a304b66dad$/);
    expect(emu.deviceCodes().find((d) => d.userCode === userCode)).toMatchObject({ polls: 2, state: 'redeemed' });
    const tokenPosts = emu.server.requests(TOKEN_PATH);
    expect(tokenPosts.map((r) => r.status)).toEqual([400, 400, 200]);
    // MSAL knows login.microsoftonline.com's metadata: it asked for nothing but these two.
    const loginPaths = new Set(emu.server.log.filter((r) => r.host === 'login.microsoftonline.com').map((r) => r.url.split('?')[0]));
    expect([...loginPaths].sort()).toEqual(['/consumers/oauth2/v2.0/devicecode', '/consumers/oauth2/v2.0/token']);
    expect((await pca.getTokenCache().getAllAccounts()).length).toBe(1);
  });

  it('serves acquireTokenSilent from its cache, and refreshes with the refresh token when forced', async () => {
    const before = emu.server.requests(TOKEN_PATH).length;
    const cached = await pca.acquireTokenSilent({ account, scopes: SCOPES });
    expect(emu.server.requests(TOKEN_PATH).length).toBe(before);
    const refreshed = await pca.acquireTokenSilent({ account, scopes: SCOPES, forceRefresh: true });
    expect(refreshed.accessToken).not.toBe(cached.accessToken);
    const posts = emu.server.requests(TOKEN_PATH);
    expect(posts.length).toBe(before + 1);
    expect(posts[posts.length - 1]!.status).toBe(200);
  });

  it('the Graph client gets 401 InvalidAuthenticationToken once tokens expire; a forced refresh recovers', async () => {
    emu.tokens.expireAll();
    const err = (await graph.api('/me/drive').get().catch((e: unknown) => e)) as GraphError;
    expect(err.statusCode).toBe(401);
    expect(err.code).toBe('InvalidAuthenticationToken');
    await pca.acquireTokenSilent({ account, scopes: SCOPES, forceRefresh: true });
    const drive = (await graph.api('/me/drive').get()) as { id: string };
    expect(drive.id).toBe(emu.driveId);
  });

  it('signs in with the authorization-code flow and PKCE (the stub authorize page redirects at once)', async () => {
    const app = msal();
    const pkce = await new CryptoProvider().generatePkceCodes();
    const redirectUri = 'http://localhost:53682/';
    const authUrl = new URL(await app.getAuthCodeUrl({ scopes: SCOPES, redirectUri, codeChallenge: pkce.challenge, codeChallengeMethod: 'S256', state: 'xyz' }));
    expect(authUrl.origin).toBe('https://login.microsoftonline.com');
    // The browser's part: the emulator answers the authorize URL with the redirect to the app.
    const res = await raw(emu.url, 'GET', authUrl.pathname + authUrl.search, { headers: { host: authUrl.host } });
    expect(res.status).toBe(302);
    const back = new URL(res.headers.location!);
    expect(back.searchParams.get('state')).toBe('xyz');
    const result = await app.acquireTokenByCode({ code: back.searchParams.get('code')!, scopes: SCOPES, redirectUri, codeVerifier: pkce.verifier });
    expect(result.account?.username).toBe(emu.user.userPrincipalName);
    const drive = (await createGraphClient({ emulatorUrl: emu.url, getAccessToken: async () => result.accessToken }).api('/me/drive').get()) as { id: string };
    expect(drive.id).toBe(emu.driveId);
  });

  it('a confidential client gets an app token by client credentials; it reads /drives/{id} but not /me', async () => {
    const cca = createMsalConfidentialApp({ clientId: CLIENT, clientSecret: 'app-secret', authority: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47', emulatorUrl: emu.url });
    const res = await cca.acquireTokenByClientCredential({ scopes: ['https://graph.microsoft.com/.default'] });
    const app = createGraphClient({ emulatorUrl: emu.url, getAccessToken: async () => res!.accessToken });
    const root = (await app.api(`/drives/${emu.driveId}/root`).get()) as DriveItem;
    expect(root.id).toBeTypeOf('string');
    const err = (await app.api('/me/drive').get().catch((e: unknown) => e)) as GraphError;
    expect(err.statusCode).toBe(400);
  });
});

describe('Graph client against the drive', () => {
  it('creates a folder; a second create with fail is a GraphError 409 nameAlreadyExists', async () => {
    const folder = (await graph.api('/me/drive/root/children').post({ name: 'Archive', folder: {}, '@microsoft.graph.conflictBehavior': 'fail' })) as DriveItem;
    expect(folder.folder).toEqual({ childCount: 0 });
    const err = (await graph
      .api('/me/drive/root/children')
      .post({ name: 'archive', folder: {}, '@microsoft.graph.conflictBehavior': 'fail' })
      .catch((e: unknown) => e)) as GraphError;
    expect(err.statusCode).toBe(409);
    expect(err.code).toBe('nameAlreadyExists');
  });

  it('uploads a small Buffer with PUT …/content and gets back its quickXorHash', async () => {
    const rnd = seededRandom(5);
    const data = Buffer.alloc(1024 * 1024 + 17);
    for (let i = 0; i < data.length; i++) data[i] = Math.floor(rnd() * 256);
    const name = "Ünï cødé #1 (draft) 'x'.bin";
    const item = (await graph
      .api(`/me/drive/root:/Archive/${encodeURIComponent(name)}:/content`)
      .query({ '@microsoft.graph.conflictBehavior': 'replace' })
      .put(data)) as DriveItem;
    expect(item.name).toBe(name);
    expect(item.size).toBe(data.length);
    expect(item.file!.hashes.quickXorHash).toBe(quickXorHash(data));
    expect((await emu.readFile(`Archive/${name}`))!.equals(data)).toBe(true);
  });

  it('streams a simple upload (putStream with Content-Length) through the node:http transport', async () => {
    const data = Buffer.from('streamed through NodeHttpHandler\n'.repeat(1000));
    const item = (await graph
      .api('/me/drive/root:/Archive/streamed.txt:/content')
      .header('Content-Length', String(data.length))
      .putStream(Readable.from([data.subarray(0, 1000), data.subarray(1000)]))) as DriveItem;
    expect(item.size).toBe(data.length);
    expect(item.file!.hashes.quickXorHash).toBe(quickXorHash(data));
  });

  it('uploads 20 MB through createUploadSession with LargeFileUploadTask streaming the file; the hash matches', async () => {
    const file = path.join(dir, 'big.bin');
    const size = 20_000_000;
    const rnd = seededRandom(20);
    await pipeline(
      Readable.from(
        (function* () {
          for (let left = size; left > 0; left -= 1 << 20) {
            const b = Buffer.alloc(Math.min(left, 1 << 20));
            for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(rnd() * 2 ** 32), i);
            yield b;
          }
        })(),
      ),
      createWriteStream(file),
    );
    const expected = new QuickXorHasher();
    for await (const chunk of createReadStream(file)) expected.update(chunk as Buffer);
    const want = expected.digest();
    expect((await stat(file)).size).toBe(size);

    const seqBefore = emu.server.log.length;
    const task = await OneDriveLargeFileUploadTask.createTaskWithFileObject(graph, new StreamUpload(createReadStream(file), 'big.bin', size), {
      fileName: 'big.bin',
      path: '/Archive',
      rangeSize: 10 * FRAGMENT_UNIT,
      conflictBehavior: 'replace',
    });
    const result: UploadResult = await task.upload();
    const item = result.responseBody as DriveItem;
    expect(item.name).toBe('big.bin');
    expect(item.size).toBe(size);
    expect(item.file!.hashes.quickXorHash).toBe(want);
    expect(item.parentReference!.path).toBe('/drive/root:/Archive');

    // The fragments went to the pre-authenticated upload host (the emulator refuses them with
    // Authorization), 10 × 320 KiB each, 202 until the last one's 201.
    const puts = emu.server.log.slice(seqBefore).filter((r) => r.method === 'PUT');
    expect(new Set(puts.map((r) => r.host))).toEqual(new Set(['api.onedrive.com']));
    expect(puts.length).toBe(Math.ceil(size / (10 * FRAGMENT_UNIT)));
    expect(puts.map((r) => r.status)).toEqual([...Array(puts.length - 1).fill(202), 201]);
    expect(puts[0]!.contentRange).toBe(`bytes 0-${10 * FRAGMENT_UNIT - 1}/${size}`);
    const stored = (await emu.tree()).find((f) => f.path === '/Archive/big.bin')!;
    expect(stored.size).toBe(size);
  });

  it('follows @odata.nextLink with client.api(nextLink): the emulator hands https links to a rewritten client', async () => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) await emu.seedFile(`Listing/${n}.txt`, Buffer.from(n));
    const names: string[] = [];
    let page = (await graph.api('/me/drive/root:/Listing:/children').top(2).get()) as { value: DriveItem[]; '@odata.nextLink'?: string };
    for (let i = 0; i < 5; i++) {
      names.push(...page.value.map((v) => v.name));
      const next = page['@odata.nextLink'];
      if (!next) break;
      expect(next.startsWith('https://graph.microsoft.com/v1.0/')).toBe(true);
      page = (await graph.api(next).get()) as typeof page;
    }
    expect(names).toEqual(['a.txt', 'b.txt', 'c.txt', 'd.txt', 'e.txt']);
  });
});
