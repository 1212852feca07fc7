/**
 * The official SDK (`@googleapis/drive` + `google-auth-library`), unmocked, pointed at the
 * emulator by client.ts: token refresh, folder create and lookup, a small multipart upload of a
 * Readable, a 20 MB resumable upload streamed from disk, a resumed session, a download, and the
 * SDK's view of Drive errors.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { GaxiosError } from 'gaxios';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDriveClient, querySession, startResumableSession, uploadResumable, type DriveClient } from './client.js';
import { CHUNK_GRANULARITY, FOLDER_MIME, startGdriveEmulator, type GdriveEmulator } from './index.js';
import { bytes, call } from './raw-http.js';

let emu: GdriveEmulator;
let client: DriveClient;
let dir: string;
let bigFile: string;
let bigMd5: string;
const BIG = 20 * 1024 * 1024;

/** Writes `size` deterministic bytes to disk 1 MiB at a time, returning their md5. */
async function writeFile(file: string, size: number): Promise<string> {
  const h = createHash('md5');
  const out = createWriteStream(file);
  for (let off = 0, i = 0; off < size; off += 1 << 20, i++) {
    const piece = bytes(Math.min(1 << 20, size - off), i + 1);
    h.update(piece);
    if (!out.write(piece)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return h.digest('hex');
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'gdrive-sdk-'));
  bigFile = path.join(dir, 'big.bin');
  bigMd5 = await writeFile(bigFile, BIG);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  emu = await startGdriveEmulator({ seed: 21 });
  client = createDriveClient({ url: emu.url, clientId: emu.clientId, clientSecret: emu.clientSecret, refreshToken: emu.refreshToken });
});
afterEach(async () => {
  vi.useRealTimers();
  await emu.close();
});

async function mkdir(name: string, parent?: string): Promise<string> {
  const res = await client.drive.files.create({
    requestBody: { name, mimeType: FOLDER_MIME, ...(parent ? { parents: [parent] } : {}) },
    fields: 'id',
  });
  return res.data.id!;
}

describe('the Drive SDK against the emulator', () => {
  it('refreshes its token at the emulator, creates a folder and finds it with q', async () => {
    const res = await client.drive.files.create({ requestBody: { name: "Bob's photos", mimeType: FOLDER_MIME }, fields: 'id,name,mimeType,parents' });
    expect(res.status).toBe(200);
    expect(res.data).toEqual({ id: expect.any(String), name: "Bob's photos", mimeType: FOLDER_MIME, parents: [emu.rootId] });
    expect(emu.server.requests(/^\/token$/)).toHaveLength(1);
    const list = await client.drive.files.list({
      q: `name = 'Bob\\'s photos' and mimeType = '${FOLDER_MIME}' and 'root' in parents and trashed = false`,
      fields: 'files(id,name)',
      supportsAllDrives: true,
      includeItemsFromAllDrives: true,
    });
    expect(list.data.files).toEqual([{ id: res.data.id, name: "Bob's photos" }]);
    expect(emu.server.requests().every((r) => r.host === '127.0.0.1')).toBe(true);
  });

  it('uploads a small Readable by multipart and reports its md5 and size', async () => {
    const folder = await mkdir('small');
    const data = bytes(100_000, 3);
    const res = await client.drive.files.create(
      {
        requestBody: { name: 'note.txt', parents: [folder] },
        media: { mimeType: 'text/plain', body: Readable.from([data]) },
        fields: 'id,name,size,md5Checksum,sha256Checksum,mimeType',
      },
      client.mediaOptions,
    );
    expect(res.data).toMatchObject({ name: 'note.txt', size: '100000', mimeType: 'text/plain', md5Checksum: createHash('md5').update(data).digest('hex') });
    expect(res.data.sha256Checksum).toBe(createHash('sha256').update(data).digest('hex'));
    expect(emu.server.requests(/^\/upload\//)[0]!.url).toContain('uploadType=multipart');
    expect((await emu.tree()).map((t) => t.path)).toEqual(['/small/note.txt']);
  });

  it('uploads 20 MB through the resumable protocol, chunk by chunk from disk; md5 matches', async () => {
    const folder = await mkdir('big');
    const file = await uploadResumable(client, {
      path: bigFile,
      size: BIG,
      metadata: { name: 'big.bin', parents: [folder] },
      mimeType: 'application/octet-stream',
      chunkSize: 8 * 1024 * 1024,
      fields: 'id,name,size,md5Checksum',
    });
    expect(file).toEqual({ id: expect.any(String), name: 'big.bin', size: String(BIG), md5Checksum: bigMd5 });
    const chunks = emu.server.requests(/upload_id=/);
    expect(chunks.map((r) => [r.status, r.contentRange])).toEqual([
      [308, `bytes 0-8388607/${BIG}`],
      [308, `bytes 8388608-16777215/${BIG}`],
      [200, `bytes 16777216-20971519/${BIG}`],
    ]);
    const [stored] = await emu.tree();
    expect(stored).toMatchObject({ path: '/big/big.bin', size: BIG, hash: bigMd5 });
  });

  it('resumes a session cut after its first chunk: probes, then sends only the rest', async () => {
    const size = CHUNK_GRANULARITY * 5 + 123;
    const file = path.join(dir, 'resume.bin');
    const md5 = await writeFile(file, size);
    const uri = await startResumableSession(client, { metadata: { name: 'resume.bin' }, size, fields: 'id,md5Checksum,size' });
    const { readFile } = await import('node:fs/promises');
    const head = (await readFile(file)).subarray(0, CHUNK_GRANULARITY * 2);
    const first = await call(emu, 'PUT', uri, { body: head, headers: { 'content-range': `bytes 0-${head.length - 1}/${size}` } });
    expect(first.status).toBe(308);
    expect(await querySession(client, uri, size)).toEqual({ done: false, received: head.length });
    const done = await uploadResumable(client, { path: file, size, sessionUri: uri, chunkSize: CHUNK_GRANULARITY * 2 });
    expect(done).toEqual({ id: expect.any(String), md5Checksum: md5, size: String(size) });
    const ranges = emu.server.requests(/upload_id=/).map((r) => r.contentRange);
    expect(ranges.filter((r) => r?.startsWith('bytes 0-'))).toHaveLength(1);
  });

  it('continues from the Range the server gives when it kept less than was sent', async () => {
    const size = CHUNK_GRANULARITY * 6;
    const file = path.join(dir, 'short.bin');
    const md5 = await writeFile(file, size);
    emu.shortenNextChunk(CHUNK_GRANULARITY);
    const res = await uploadResumable(client, { path: file, size, metadata: { name: 'short.bin' }, chunkSize: CHUNK_GRANULARITY * 4, fields: 'md5Checksum,size' });
    expect(res).toEqual({ md5Checksum: md5, size: String(size) });
    expect(emu.server.requests(/upload_id=/).map((r) => r.contentRange)).toEqual([
      `bytes 0-${4 * CHUNK_GRANULARITY - 1}/${size}`,
      `bytes ${CHUNK_GRANULARITY}-${5 * CHUNK_GRANULARITY - 1}/${size}`,
      `bytes ${5 * CHUNK_GRANULARITY}-${size - 1}/${size}`,
    ]);
  });

  it('gives an existing file new content by a PATCH resumable session (same id)', async () => {
    const first = await client.drive.files.create(
      { requestBody: { name: 'v.bin' }, media: { body: Readable.from([Buffer.from('v1')]) }, fields: 'id' },
      client.mediaOptions,
    );
    const size = CHUNK_GRANULARITY + 1;
    const file = path.join(dir, 'v2.bin');
    const md5 = await writeFile(file, size);
    const res = await uploadResumable(client, { path: file, size, fileId: first.data.id!, fields: 'id,md5Checksum' });
    expect(res).toEqual({ id: first.data.id, md5Checksum: md5 });
  });

  it('downloads with alt=media through the SDK', async () => {
    const data = bytes(5000, 9);
    const up = await client.drive.files.create({ requestBody: { name: 'd.bin' }, media: { body: Readable.from([data]) }, fields: 'id' }, client.mediaOptions);
    const res = await client.drive.files.get({ fileId: up.data.id!, alt: 'media' }, { ...client.mediaOptions, responseType: 'arraybuffer' });
    expect(Buffer.from(res.data as unknown as ArrayBuffer).equals(data)).toBe(true);
  });

  it('surfaces Drive errors as GaxiosError with the reason, without retrying', async () => {
    await mkdir('warm-up');
    emu.failNext('userRateLimitExceeded');
    const before = emu.server.requests().length;
    const err = await client.drive.files.list({ fields: 'files(id)' }).catch((e: unknown) => e);
    expect((err as Error).constructor.name).toBe('GaxiosError');
    const g = err as GaxiosError<{ error: { errors: Array<{ reason: string }> } }>;
    expect(g.status).toBe(403);
    expect(g.response?.data.error.errors[0]!.reason).toBe('userRateLimitExceeded');
    expect(emu.server.requests().length - before).toBe(1);
    const missing = await client.drive.files.get({ fileId: '1nothere' }).catch((e: unknown) => e as GaxiosError);
    expect((missing as GaxiosError).status).toBe(404);
  });

  it('refreshes again once its token has expired, and fails with invalid_grant once revoked', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    await mkdir('one');
    vi.setSystemTime(Date.now() + 3600 * 1000);
    await mkdir('two');
    expect(emu.server.requests(/^\/token$/)).toHaveLength(2);
    emu.tokens.revoke();
    vi.setSystemTime(Date.now() + 3600 * 1000);
    const err = (await mkdir('three').catch((e: unknown) => e)) as GaxiosError<{ error: string }>;
    expect((err as Error).constructor.name).toBe('GaxiosError');
    expect(err.status).toBe(400);
    expect(err.response?.data.error).toBe('invalid_grant');
  });
});
