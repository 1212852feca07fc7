import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BoxEmulator } from './index.js';
import { startBoxEmulator } from './index.js';
import { call, jsonHeaders, multipart, sha1hex, uploadBody } from './raw-http.js';

let emu: BoxEmulator;
let token: string;
beforeAll(async () => {
  emu = await startBoxEmulator();
  token = emu.issueTokens().accessToken;
});
afterAll(() => emu.close());

function upload(attributes: Record<string, unknown>, content: Buffer, opts: { path?: string; headers?: Record<string, string>; host?: string } = {}) {
  const b = uploadBody(attributes, content);
  return call(emu.url, opts.path ?? '/api/2.0/files/content', { method: 'POST', token, body: b.body, headers: { ...b.headers, ...opts.headers }, host: opts.host });
}

const preflight = (body: unknown, path = '/2.0/files/content') =>
  call(emu.url, path, { method: 'OPTIONS', token, headers: jsonHeaders, body: JSON.stringify(body) });

describe('box direct upload (POST /api/2.0/files/content)', () => {
  it('201 with {total_count: 1, entries: [file]} carrying sha1, size, parent and file_version', async () => {
    const content = Buffer.from('hello box\n');
    const r = await upload({ name: 'hello.txt', parent: { id: '0' }, content_modified_at: '2023-05-06T07:08:09-07:00' }, content, {
      headers: { 'content-md5': sha1hex(content) },
    });
    expect(r.status).toBe(201);
    expect(r.json.total_count).toBe(1);
    const f = r.json.entries[0];
    expect(f).toMatchObject({
      type: 'file',
      name: 'hello.txt',
      size: content.length,
      sha1: sha1hex(content),
      etag: '0',
      sequence_id: '0',
      parent: { type: 'folder', id: '0' },
      file_version: { type: 'file_version', sha1: sha1hex(content) },
      content_modified_at: '2023-05-06T14:08:09+00:00',
    });
    expect(await emu.read('/hello.txt')).toEqual(content);
    const meta = await call(emu.url, `/2.0/files/${f.id}?fields=sha1,size,name,parent,file_version`, { token });
    expect(meta.json).toMatchObject({ id: f.id, sha1: sha1hex(content), size: content.length, name: 'hello.txt', parent: { id: '0' } });
  });

  it('a content-md5 (hex SHA-1) that does not match is 400 bad_digest and stores nothing', async () => {
    const r = await upload({ name: 'bad.txt', parent: { id: '0' } }, Buffer.from('abc'), { headers: { 'content-md5': sha1hex(Buffer.from('abd')) } });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ type: 'error', status: 400, code: 'bad_digest' });
    expect((await emu.tree()).some((t) => t.path === '/bad.txt')).toBe(false);
  });

  it('a name in use is 409 item_name_in_use with context_info.conflicts as one object (the existing file)', async () => {
    const first = await upload({ name: 'Same.bin', parent: { id: '0' } }, Buffer.from('1'));
    const r = await upload({ name: 'same.BIN', parent: { id: '0' } }, Buffer.from('2'));
    expect(r.status).toBe(409);
    expect(r.json.code).toBe('item_name_in_use');
    expect(r.json.context_info.conflicts).toEqual({
      type: 'file',
      id: first.json.entries[0].id,
      file_version: { type: 'file_version', id: first.json.entries[0].file_version.id, sha1: sha1hex(Buffer.from('1')) },
      sequence_id: '0',
      etag: '0',
      sha1: sha1hex(Buffer.from('1')),
      name: 'Same.bin',
    });
  });

  it('attributes after the file part is 400 metadata_after_file_contents', async () => {
    const b = multipart([
      { name: 'file', value: Buffer.from('x'), filename: 'x' },
      { name: 'attributes', value: JSON.stringify({ name: 'late.txt', parent: { id: '0' } }) },
    ]);
    const r = await call(emu.url, '/api/2.0/files/content', { method: 'POST', token, body: b.body, headers: b.headers });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('metadata_after_file_contents');
  });

  it('refuses bad names, unknown parents, and stores a 0-byte file', async () => {
    expect((await upload({ name: 'a/b', parent: { id: '0' } }, Buffer.from('x'))).json.code).toBe('item_name_invalid');
    expect((await upload({ name: 'x', parent: { id: '424242' } }, Buffer.from('x'))).status).toBe(404);
    const empty = await upload({ name: 'empty', parent: { id: '0' } }, Buffer.alloc(0));
    expect(empty.status).toBe(201);
    expect(empty.json.entries[0]).toMatchObject({ size: 0, sha1: 'da39a3ee5e6b4b0d3255bfef95601890afd80709' });
  });

  it('stores a body held in memory (1 KiB) and one written to disk (just over 1 MiB) byte for byte, leaving no blob of the body behind', async () => {
    const { readdir } = await import('node:fs/promises');
    const before = (await readdir(emu.blobs.dir)).length;
    for (const [name, size] of [['held.bin', 1024], ['spilled.bin', (1 << 20) + 1024]] as const) {
      const content = Buffer.alloc(size, name);
      const r = await upload({ name, parent: { id: '0' } }, content, { headers: { 'content-md5': sha1hex(content) } });
      expect(r.status).toBe(201);
      expect(r.json.entries[0]).toMatchObject({ name, size, sha1: sha1hex(content) });
      expect(await emu.read(`/${name}`)).toEqual(content);
    }
    // The two stored files' blobs, and nothing else: each body's own blob (if any) was removed.
    expect((await readdir(emu.blobs.dir)).length).toBe(before + 2);
  });

  it('POST /api/2.0/files/:id/content makes a new version: 200, same id, new file_version, etag bumped', async () => {
    const v1 = Buffer.from('version one');
    const v2 = Buffer.from('version two!');
    const first = (await upload({ name: 'versioned.txt', parent: { id: '0' } }, v1)).json.entries[0];
    const r = await upload({ name: 'versioned.txt' }, v2, { path: `/api/2.0/files/${first.id}/content`, headers: { 'if-match': '0' } });
    expect(r.status).toBe(200);
    const f = r.json.entries[0];
    expect(f.id).toBe(first.id);
    expect(f.file_version.id).not.toBe(first.file_version.id);
    expect(f).toMatchObject({ sha1: sha1hex(v2), size: v2.length, etag: '1' });
    expect(await emu.read('/versioned.txt')).toEqual(v2);
    const stale = await upload({ name: 'versioned.txt' }, v1, { path: `/api/2.0/files/${first.id}/content`, headers: { 'if-match': '0' } });
    expect(stale.status).toBe(412);
    expect(stale.json.code).toBe('precondition_failed');
    expect((await upload({}, v1, { path: '/api/2.0/files/777/content' })).status).toBe(404);
  });

  it('is also served on Host upload.box.com (with the /api prefix), but not on api.box.com', async () => {
    const viaHost = await upload({ name: 'via-host.txt', parent: { id: '0' } }, Buffer.from('h'), { host: 'upload.box.com' });
    expect(viaHost.status).toBe(201);
    const wrong = await upload({ name: 'wrong-host.txt', parent: { id: '0' } }, Buffer.from('h'), { host: 'api.box.com' });
    expect(wrong.status).toBe(404);
    // Without the /api prefix a loopback request means api.box.com, where uploads do not exist.
    expect((await upload({ name: 'no-prefix.txt', parent: { id: '0' } }, Buffer.from('h'), { path: '/2.0/files/content' })).status).toBe(405);
  });

  it('needs a valid token', async () => {
    const b = uploadBody({ name: 'anon.txt', parent: { id: '0' } }, Buffer.from('x'));
    const r = await call(emu.url, '/api/2.0/files/content', { method: 'POST', body: b.body, headers: b.headers });
    expect(r.status).toBe(401);
  });
});

describe('box upload preflight (OPTIONS /2.0/files/content)', () => {
  it('200 with upload_url on the upload host and an upload_token', async () => {
    const r = await preflight({ name: 'fresh.bin', parent: { id: '0' }, size: 1000 });
    expect(r.status).toBe(200);
    expect(r.json.upload_url).toBe(`${emu.url}/api/2.0/files/content`);
    expect(r.json.upload_token).toEqual(expect.any(String));
    const viaBox = await call(emu.url, '/2.0/files/content', {
      method: 'OPTIONS',
      token,
      host: 'api.box.com',
      headers: jsonHeaders,
      body: JSON.stringify({ name: 'fresh.bin', parent: { id: '0' }, size: 1 }),
    });
    expect(viaBox.json.upload_url).toBe('https://upload.box.com/api/2.0/files/content');
  });

  it('409 item_name_in_use with the existing file (and its sha1) in context_info.conflicts', async () => {
    await emu.putFile('/taken.txt', Buffer.from('taken'));
    const r = await preflight({ name: 'TAKEN.txt', parent: { id: '0' }, size: 3 });
    expect(r.status).toBe(409);
    expect(r.json.context_info.conflicts).toMatchObject({ type: 'file', name: 'taken.txt', sha1: sha1hex(Buffer.from('taken')) });
  });

  it('403 file_size_limit_exceeded and storage_limit_exceeded', async () => {
    const em = await startBoxEmulator({ maxFileSize: 100, storageQuota: 50 });
    try {
      const t = em.issueTokens().accessToken;
      const pf = (size: number) =>
        call(em.url, '/2.0/files/content', { method: 'OPTIONS', token: t, headers: jsonHeaders, body: JSON.stringify({ name: 'q', parent: { id: '0' }, size }) });
      expect((await pf(101)).json).toMatchObject({ status: 403, code: 'file_size_limit_exceeded' });
      expect((await pf(51)).json).toMatchObject({ status: 403, code: 'storage_limit_exceeded' });
      expect((await pf(50)).status).toBe(200);
      em.setQuota(null);
      expect((await pf(51)).status).toBe(200);
    } finally {
      await em.close();
    }
  });

  it('for a new version (OPTIONS /2.0/files/:id/content) the file itself is no conflict', async () => {
    const id = await emu.putFile('/pf-version.txt', Buffer.from('x'));
    const r = await preflight({ name: 'pf-version.txt', size: 10 }, `/2.0/files/${id}/content`);
    expect(r.status).toBe(200);
    expect(r.json.upload_url).toBe(`${emu.url}/api/2.0/files/${id}/content`);
  });
});

describe('box quota on direct uploads', () => {
  it('an upload past the quota is 403 storage_limit_exceeded', async () => {
    const em = await startBoxEmulator({ storageQuota: 10 });
    try {
      const t = em.issueTokens().accessToken;
      const b = uploadBody({ name: 'big', parent: { id: '0' } }, Buffer.alloc(11));
      const r = await call(em.url, '/api/2.0/files/content', { method: 'POST', token: t, body: b.body, headers: b.headers });
      expect(r.status).toBe(403);
      expect(r.json.code).toBe('storage_limit_exceeded');
      expect(await em.tree()).toEqual([]);
    } finally {
      await em.close();
    }
  });
});

describe('box files: metadata, download, delete', () => {
  it('GET /2.0/files/:id/content redirects (302) to dl.boxcloud.com, which serves the bytes and ranges', async () => {
    const content = Buffer.from('0123456789');
    const id = await emu.putFile('/dl/digits.txt', content);
    const r = await call(emu.url, `/2.0/files/${id}/content`, { token });
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.location!);
    expect(loc.pathname).toMatch(/^\/d\/1\/[^/]+\/download$/);
    const dl = await call(emu.url, loc.pathname);
    expect(dl.status).toBe(200);
    expect(dl.body).toEqual(content);
    const part = await call(emu.url, loc.pathname, { headers: { range: 'bytes=2-4' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 2-4/10');
    expect(part.body.toString()).toBe('234');
    const viaBox = await call(emu.url, `/2.0/files/${id}/content`, { token, host: 'api.box.com' });
    expect(viaBox.headers.location).toMatch(/^https:\/\/dl\.boxcloud\.com\/d\/1\//);
    expect((await call(emu.url, new URL(viaBox.headers.location!).pathname, { host: 'dl.boxcloud.com' })).body).toEqual(content);
  });

  it('GET /2.0/files/:id returns the standard file object with path_collection', async () => {
    const id = await emu.putFile('/meta/deep/file.bin', Buffer.from('meta'));
    const r = await call(emu.url, `/2.0/files/${id}`, { token });
    expect(r.status).toBe(200);
    expect(r.json.path_collection.entries.map((e: { name: string }) => e.name)).toEqual(['All Files', 'meta', 'deep']);
    expect(r.json).toMatchObject({ type: 'file', id, size: 4, sha1: sha1hex(Buffer.from('meta')), owned_by: { type: 'user', id: emu.userId } });
    expect((await call(emu.url, '/2.0/files/31337', { token })).json).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('DELETE /2.0/files/:id is 204, then 404', async () => {
    const id = await emu.putFile('/gone.txt', Buffer.from('bye'));
    expect((await call(emu.url, `/2.0/files/${id}`, { method: 'DELETE', token })).status).toBe(204);
    expect((await call(emu.url, `/2.0/files/${id}`, { token })).status).toBe(404);
    expect((await emu.tree()).some((t) => t.path === '/gone.txt')).toBe(false);
  });
});
