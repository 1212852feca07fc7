/**
 * The official `dropbox` SDK (10.34), unmocked, against the emulator through the fetch wrapper
 * of client.ts: token refresh, folder create, small upload, and a 20 MB upload through an upload
 * session streamed from disk in 8 MiB chunks, with the returned content_hash checked against the
 * file's own.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DropboxResponseError, type Dropbox } from 'dropbox';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DropboxContentHasher } from '../../../src/archive/dropbox-hash.js';
import { seededRandom } from '../harness/index.js';
import { createDropboxAuth, createDropboxClient, dropboxEmulatorFetch } from './client.js';
import { startDropboxEmulator, type DropboxEmulator } from './index.js';

const MiB = 1024 * 1024;
const CHUNK = 8 * MiB;
const BIG = 20_000_000;

let emu: DropboxEmulator;
let dir: string;
let bigFile: string;

async function hashFile(file: string): Promise<string> {
  const h = new DropboxContentHasher();
  for await (const c of createReadStream(file, { highWaterMark: MiB })) h.update(c as Buffer);
  return h.digest();
}

/** Writes `size` pseudo-random bytes to `file`, 1 MiB at a time. */
async function writeRandomFile(file: string, size: number): Promise<void> {
  const rnd = seededRandom(7);
  const fh = await open(file, 'w');
  try {
    const buf = Buffer.alloc(MiB);
    for (let done = 0; done < size; done += MiB) {
      for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE(Math.floor(rnd() * 2 ** 32), i);
      await fh.write(buf, 0, Math.min(MiB, size - done));
    }
  } finally {
    await fh.close();
  }
}

function client(): Dropbox {
  return createDropboxClient({ url: emu.url, ...emu.credentials });
}

/** Uploads a file through an upload session, each chunk streamed from disk (never the whole file). */
async function sessionUpload(dbx: Dropbox, file: string, remote: string) {
  const size = (await stat(file)).size;
  const chunk = (start: number) => createReadStream(file, { start, end: Math.min(start + CHUNK, size) - 1 });
  const { result } = await dbx.filesUploadSessionStart({ contents: chunk(0) });
  let offset = Math.min(CHUNK, size);
  while (size - offset > CHUNK) {
    await dbx.filesUploadSessionAppendV2({ cursor: { session_id: result.session_id, offset }, contents: chunk(offset) });
    offset += CHUNK;
  }
  return dbx.filesUploadSessionFinish({
    cursor: { session_id: result.session_id, offset },
    commit: { path: remote, mode: { '.tag': 'add' } },
    contents: chunk(offset),
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'stagecoach-dbx-sdk-'));
  bigFile = path.join(dir, 'big.bin');
  await writeRandomFile(bigFile, BIG);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async (t) => {
  emu = await startDropboxEmulator();
  t.onTestFinished(() => emu.close());
});

describe('dropbox SDK against the emulator', () => {
  it('refreshes its token through the wrapper, on api.dropboxapi.com', async () => {
    const dbx = client();
    const { result } = await dbx.usersGetCurrentAccount();
    expect(result.account_id).toMatch(/^dbid:/);
    const tokenCalls = emu.server.requests(/^\/oauth2\/token/);
    expect(tokenCalls).toHaveLength(1);
    expect(tokenCalls[0]).toMatchObject({ method: 'POST', host: 'api.dropboxapi.com', status: 200 });
    // The SDK puts grant and credentials in the query string.
    expect(tokenCalls[0]!.url).toContain('grant_type=refresh_token');
    expect(emu.server.requests(/get_current_account/)[0]).toMatchObject({ host: 'api.dropboxapi.com', status: 200 });
  });

  it('creates a folder and uploads a small file; the content_hash is the file\'s', async () => {
    const dbx = client();
    const folder = await dbx.filesCreateFolderV2({ path: '/Archive 日本' });
    expect(folder.result.metadata).toMatchObject({ name: 'Archive 日本', path_lower: '/archive 日本', path_display: '/Archive 日本' });
    expect(folder.result.metadata.id).toMatch(/^id:/);

    const bytes = Buffer.from('hello, stagecoach\n');
    const up = await dbx.filesUpload({ path: '/Archive 日本/Hello É.txt', contents: bytes, mode: { '.tag': 'overwrite' } });
    expect(up.result).toMatchObject({ name: 'Hello É.txt', path_display: '/Archive 日本/Hello É.txt', size: bytes.length });
    expect(up.result.content_hash).toBe(new DropboxContentHasher().update(bytes).digest());
    expect(emu.server.requests(/\/2\/files\/upload$/)[0]).toMatchObject({ host: 'content.dropboxapi.com', status: 200 });

    const meta = await dbx.filesGetMetadata({ path: '/archive 日本/hello é.txt' });
    expect(meta.result).toMatchObject({ '.tag': 'file', id: up.result.id, rev: up.result.rev });
    const down = await dbx.filesDownload({ path: up.result.id });
    expect((down.result as unknown as { fileBinary: Buffer }).fileBinary.equals(bytes)).toBe(true);
    expect(down.result.content_hash).toBe(up.result.content_hash);
  });

  it('uploads 20 MB through an upload session in 8 MiB chunks streamed from disk', async () => {
    const dbx = client();
    await dbx.filesCreateFolderV2({ path: '/big' });
    const done = await sessionUpload(dbx, bigFile, '/big/big.bin');
    const want = await hashFile(bigFile);
    expect(done.result).toMatchObject({ path_display: '/big/big.bin', size: BIG });
    expect(done.result.content_hash).toBe(want);

    const appends = emu.server.requests(/upload_session\/append_v2/);
    expect(appends).toHaveLength(1); // 8 MiB start, 8 MiB append, 3.2 MB finish
    expect(appends[0]!.bodyBytes).toBe(CHUNK);
    expect(emu.server.requests(/upload_session\/finish/)[0]!.bodyBytes).toBe(BIG - 2 * CHUNK);
    const [stored] = await emu.tree();
    expect(stored).toMatchObject({ path: '/big/big.bin', size: BIG, hash: want });
  });

  it('reports a lost append through incorrect_offset, and the upload resumes from correct_offset', async () => {
    const dbx = client();
    const first = Buffer.alloc(5 * MiB, 1);
    const second = Buffer.alloc(3 * MiB, 2);
    const { result } = await dbx.filesUploadSessionStart({ contents: first });
    // The append is stored but its answer never arrives; the client retries the same offset.
    emu.loseResponses(/append_v2/);
    const cursor = { session_id: result.session_id, offset: first.length };
    await expect(dbx.filesUploadSessionAppendV2({ cursor, contents: second })).rejects.toThrow();
    const err = await dbx.filesUploadSessionAppendV2({ cursor, contents: second }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DropboxResponseError);
    const e = err as DropboxResponseError<{ error_summary: string; error: { '.tag': string; correct_offset: number } }>;
    expect(e.status).toBe(409);
    expect(e.error.error).toEqual({ '.tag': 'incorrect_offset', correct_offset: first.length + second.length });
    const done = await dbx.filesUploadSessionFinish({
      cursor: { session_id: result.session_id, offset: e.error.error.correct_offset },
      commit: { path: '/resumed.bin' },
    });
    expect(done.result.content_hash).toBe(new DropboxContentHasher().update(first).update(second).digest());
  });

  it('surfaces 409 route errors as DropboxResponseError with the documented body', async () => {
    const dbx = client();
    await dbx.filesCreateFolderV2({ path: '/dup' });
    const err = (await dbx.filesCreateFolderV2({ path: '/DUP' }).catch((e: unknown) => e)) as DropboxResponseError<{ error_summary: string; error: unknown }>;
    expect(err.status).toBe(409);
    expect(err.error.error_summary).toMatch(/^path\/conflict\/folder\/\.*$/);
    expect(err.error.error).toEqual({ '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } });
  });

  it('does not refresh on 401: an expired token fails until the SDK is told', async () => {
    const auth = createDropboxAuth({ url: emu.url, ...emu.credentials });
    const dbx = createDropboxClient({ auth });
    await dbx.usersGetSpaceUsage();
    emu.expireTokens();
    const err = (await dbx.usersGetSpaceUsage().catch((e: unknown) => e)) as DropboxResponseError<{ error: { '.tag': string } }>;
    expect(err.status).toBe(401);
    expect(err.error.error['.tag']).toBe('expired_access_token');
    expect(emu.server.requests(/^\/oauth2\/token/)).toHaveLength(1);
    await auth.refreshAccessToken();
    await expect(dbx.usersGetSpaceUsage()).resolves.toMatchObject({ status: 200 });
    expect(emu.server.requests(/^\/oauth2\/token/)).toHaveLength(2);
  });

  it('fails the refresh with 400 invalid_grant once the app is unlinked', async () => {
    emu.revoke();
    const err = (await client().usersGetCurrentAccount().catch((e: unknown) => e)) as DropboxResponseError<{ error: string }>;
    expect(err.status).toBe(400);
    expect(err.error).toMatchObject({ error: 'invalid_grant', error_description: 'refresh token is invalid or revoked' });
  });

  it('the wrapper refuses any host that is not Dropbox\'s', async () => {
    const f = dropboxEmulatorFetch(emu.url);
    await expect(f('https://example.com/2/files/upload')).rejects.toThrow(/refusing https:\/\/example.com/);
    await expect(f('http://api.dropboxapi.com/2/files/upload')).rejects.toThrow(/refusing/);
  });
});
