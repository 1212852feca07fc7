/**
 * Raw HTTP against the Drive emulator: the token endpoint, folders and lookups, fields, paging,
 * get/patch/delete, downloads, about, and the error bodies of each.
 */
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FOLDER_MIME, startGdriveEmulator, type GdriveEmulator } from './index.js';
import { call } from './raw-http.js';

let emu: GdriveEmulator;
let token: string;

beforeEach(async () => {
  emu = await startGdriveEmulator({ seed: 3 });
  token = emu.issueAccessToken();
});
afterEach(async () => {
  await emu.close();
});

const form = (o: Record<string, string>) => ({
  body: new URLSearchParams(o).toString(),
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
});

async function mkdir(name: string, parent?: string): Promise<string> {
  const res = await call(emu, 'POST', '/drive/v3/files', {
    token,
    json: { name, mimeType: FOLDER_MIME, ...(parent ? { parents: [parent] } : {}) },
  });
  expect(res.status).toBe(200);
  return res.json.id as string;
}

describe('token endpoint', () => {
  it('answers a refresh grant with a token that opens the API', async () => {
    const res = await call(emu, 'POST', '/token', form({
      grant_type: 'refresh_token',
      refresh_token: emu.refreshToken,
      client_id: emu.clientId,
      client_secret: emu.clientSecret,
    }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.json).toEqual({ access_token: expect.stringMatching(/^ya29\./), expires_in: 3599, scope: 'https://www.googleapis.com/auth/drive', token_type: 'Bearer' });
    expect(res.json.refresh_token).toBeUndefined();
    const list = await call(emu, 'GET', '/drive/v3/files', { token: res.json.access_token });
    expect(list.status).toBe(200);
  });

  it('is served on the oauth2.googleapis.com host and refuses other paths there', async () => {
    const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: emu.refreshToken, client_id: emu.clientId, client_secret: emu.clientSecret }).toString();
    const { request } = await import('node:http');
    const ask = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${emu.url}${path}`, { method: 'POST', headers: { host: 'oauth2.googleapis.com', 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
          let s = '';
          res.on('data', (c) => (s += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: s }));
        });
        req.on('error', reject);
        req.end(body);
      });
    const ok = await ask('/token');
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).access_token).toMatch(/^ya29\./);
    expect((await ask('/drive/v3/files')).status).toBe(404);
  });

  it('accepts HTTP Basic client authentication', async () => {
    const res = await call(emu, 'POST', '/token', {
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: emu.refreshToken }).toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${emu.clientId}:${emu.clientSecret}`).toString('base64')}`,
      },
    });
    expect(res.status).toBe(200);
  });

  it('answers invalid_grant (400) for an unknown or revoked refresh token', async () => {
    const bad = await call(emu, 'POST', '/token', form({ grant_type: 'refresh_token', refresh_token: 'nope', client_id: emu.clientId, client_secret: emu.clientSecret }));
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
    emu.tokens.revoke();
    const revoked = await call(emu, 'POST', '/token', form({ grant_type: 'refresh_token', refresh_token: emu.refreshToken, client_id: emu.clientId, client_secret: emu.clientSecret }));
    expect(revoked.status).toBe(400);
    expect(revoked.json.error).toBe('invalid_grant');
  });

  it('refuses a wrong client (401 invalid_client) and an unknown grant type', async () => {
    const wrong = await call(emu, 'POST', '/token', form({ grant_type: 'refresh_token', refresh_token: emu.refreshToken, client_id: emu.clientId, client_secret: 'x' }));
    expect(wrong.status).toBe(401);
    expect(wrong.json.error).toBe('invalid_client');
    const grant = await call(emu, 'POST', '/token', form({ grant_type: 'password', client_id: emu.clientId, client_secret: emu.clientSecret }));
    expect(grant.status).toBe(400);
    expect(grant.json.error).toBe('unsupported_grant_type');
  });

  it('exchanges a single-use authorization code for tokens including a refresh token', async () => {
    emu.addAuthCode('4/code-1');
    const ok = await call(emu, 'POST', '/token', form({ grant_type: 'authorization_code', code: '4/code-1', redirect_uri: 'urn:ietf:wg:oauth:2.0:oob', client_id: emu.clientId, client_secret: emu.clientSecret }));
    expect(ok.status).toBe(200);
    expect(ok.json.refresh_token).toEqual(expect.any(String));
    const again = await call(emu, 'POST', '/token', form({ grant_type: 'authorization_code', code: '4/code-1', client_id: emu.clientId, client_secret: emu.clientSecret }));
    expect(again.status).toBe(400);
    expect(again.json.error).toBe('invalid_grant');
    const refreshed = await call(emu, 'POST', '/token', form({ grant_type: 'refresh_token', refresh_token: ok.json.refresh_token, client_id: emu.clientId, client_secret: emu.clientSecret }));
    expect(refreshed.status).toBe(200);
  });
});

describe('authorization on the API', () => {
  it('answers 401 authError with WWW-Authenticate for an expired token', async () => {
    emu.tokens.expireAll();
    const res = await call(emu, 'GET', '/drive/v3/files', { token });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="https://accounts.google.com/", error="invalid_token"');
    expect(res.json.error).toMatchObject({
      code: 401,
      status: 'UNAUTHENTICATED',
      errors: [{ domain: 'global', reason: 'authError', message: 'Invalid Credentials', location: 'Authorization', locationType: 'header' }],
    });
  });

  it('answers 401 for a missing or unknown token', async () => {
    expect((await call(emu, 'GET', '/drive/v3/files')).json.error.errors[0].reason).toBe('required');
    const unknown = await call(emu, 'GET', '/drive/v3/files', { token: 'ya29.nope' });
    expect(unknown.status).toBe(401);
    expect(unknown.json.error.errors[0].reason).toBe('authError');
  });
});

describe('folders and lookups', () => {
  it('creates a folder under My Drive and answers the default fields only', async () => {
    const res = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'Backups', mimeType: FOLDER_MIME } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ kind: 'drive#file', id: expect.stringMatching(/^1[A-Za-z0-9_-]{32}$/), name: 'Backups', mimeType: FOLDER_MIME });
    const got = await call(emu, 'GET', `/drive/v3/files/${res.json.id}?fields=id,parents,size,md5Checksum`, { token });
    expect(got.json).toEqual({ id: res.json.id, parents: [emu.rootId] });
  });

  it("resolves 'root' in get and in 'root' in parents", async () => {
    const root = await call(emu, 'GET', '/drive/v3/files/root?fields=id,name,mimeType', { token });
    expect(root.json).toEqual({ id: emu.rootId, name: 'My Drive', mimeType: FOLDER_MIME });
    const a = await mkdir('a');
    await mkdir('b', a);
    const q = encodeURIComponent("'root' in parents and trashed = false");
    const list = await call(emu, 'GET', `/drive/v3/files?q=${q}&fields=files(id,name)`, { token });
    expect(list.json).toEqual({ files: [{ id: a, name: 'a' }] });
  });

  it('allows same-name siblings, as Drive does', async () => {
    const one = await mkdir('dup');
    const two = await mkdir('dup');
    expect(one).not.toBe(two);
    const q = encodeURIComponent("name = 'dup' and 'root' in parents");
    const list = await call(emu, 'GET', `/drive/v3/files?q=${q}`, { token });
    expect(list.json.files.map((f: { id: string }) => f.id).sort()).toEqual([one, two].sort());
  });

  it('evaluates a real q: escapes, mimeType, not, or, parentheses, trashed', async () => {
    const parent = await mkdir('p');
    const quoted = await mkdir("it's a \\ test", parent);
    await mkdir('other', parent);
    const file = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: "it's a \\ test", parents: [parent], mimeType: 'text/plain' } });
    const q1 = `'${parent}' in parents and name = 'it\\'s a \\\\ test' and mimeType = '${FOLDER_MIME}'`;
    const r1 = await call(emu, 'GET', `/drive/v3/files?q=${encodeURIComponent(q1)}&fields=files(id)`, { token });
    expect(r1.json.files).toEqual([{ id: quoted }]);
    const q2 = `'${parent}' in parents and not mimeType = '${FOLDER_MIME}'`;
    const r2 = await call(emu, 'GET', `/drive/v3/files?q=${encodeURIComponent(q2)}&fields=files(id)`, { token });
    expect(r2.json.files).toEqual([{ id: file.json.id }]);
    await call(emu, 'PATCH', `/drive/v3/files/${quoted}`, { token, json: { trashed: true } });
    const q3 = `'${parent}' in parents and (name contains 'other' or name contains 'it') and trashed = false`;
    const r3 = await call(emu, 'GET', `/drive/v3/files?q=${encodeURIComponent(q3)}&fields=files(name)`, { token });
    expect(r3.json.files.map((f: { name: string }) => f.name).sort()).toEqual(["it's a \\ test", 'other']);
    const r4 = await call(emu, 'GET', `/drive/v3/files?q=${encodeURIComponent(`'${parent}' in parents and trashed = true`)}&fields=files(id,trashed,explicitlyTrashed)`, { token });
    expect(r4.json.files).toEqual([{ id: quoted, trashed: true, explicitlyTrashed: true }]);
  });

  it('answers 400 invalid on q for a malformed query', async () => {
    const res = await call(emu, 'GET', `/drive/v3/files?q=${encodeURIComponent("name = unquoted")}`, { token });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ code: 400, message: 'Invalid Value', errors: [{ reason: 'invalid', location: 'q', locationType: 'parameter' }] });
  });

  it('pages with pageSize and nextPageToken, and refuses a token from another query', async () => {
    const parent = await mkdir('many');
    for (let i = 0; i < 5; i++) await mkdir(`f${i}`, parent);
    const q = encodeURIComponent(`'${parent}' in parents`);
    const seen: string[] = [];
    let pageToken: string | undefined;
    for (let guard = 0; guard < 10; guard++) {
      const res = await call(emu, 'GET', `/drive/v3/files?q=${q}&pageSize=2&orderBy=name&fields=nextPageToken,files(name)${pageToken ? `&pageToken=${pageToken}` : ''}`, { token });
      expect(res.status).toBe(200);
      seen.push(...res.json.files.map((f: { name: string }) => f.name));
      pageToken = res.json.nextPageToken;
      if (!pageToken) break;
      const other = await call(emu, 'GET', `/drive/v3/files?pageToken=${pageToken}`, { token });
      expect(other.status).toBe(400);
    }
    expect(seen).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
    const big = await call(emu, 'GET', '/drive/v3/files?pageSize=1001', { token });
    expect(big.json.error.errors[0].location).toBe('pageSize');
  });

  // "Partial or empty result pages are possible even before the end of the files list has been
  // reached" (https://developers.google.com/drive/api/reference/rest/v3/files/list, pageSize).
  it('setMaxPageSize: pages shorter than pageSize asks, each with a nextPageToken until the end', async () => {
    const parent = await mkdir('short');
    for (let i = 0; i < 5; i++) await mkdir(`s${i}`, parent);
    emu.setMaxPageSize(2);
    const q = encodeURIComponent(`'${parent}' in parents and trashed = false`);
    const sizes: number[] = [];
    let pageToken: string | undefined;
    for (let guard = 0; guard < 10; guard++) {
      const res = await call(emu, 'GET', `/drive/v3/files?q=${q}&pageSize=1000&fields=nextPageToken,files(name)${pageToken ? `&pageToken=${pageToken}` : ''}`, { token });
      sizes.push(res.json.files.length);
      pageToken = res.json.nextPageToken;
      if (!pageToken) break;
    }
    expect(sizes).toEqual([2, 2, 1]);
  });

  it('answers the default list shape and accepts the all-drives flags', async () => {
    await mkdir('x');
    const res = await call(emu, 'GET', '/drive/v3/files?supportsAllDrives=true&includeItemsFromAllDrives=true', { token });
    expect(res.json).toEqual({ kind: 'drive#fileList', incompleteSearch: false, files: [{ kind: 'drive#file', id: expect.any(String), name: 'x', mimeType: FOLDER_MIME }] });
  });

  it('refuses an unknown field selection with 400', async () => {
    const res = await call(emu, 'GET', '/drive/v3/files?fields=files(id,bogus)', { token });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toBe('Invalid field selection files/bogus');
    const sub = await call(emu, 'GET', '/drive/v3/files/root?fields=name/x', { token });
    expect(sub.status).toBe(400);
  });

  it('answers 404 notFound for a missing file and a missing parent', async () => {
    const res = await call(emu, 'GET', '/drive/v3/files/1missing', { token });
    expect(res.status).toBe(404);
    expect(res.json.error).toMatchObject({ code: 404, message: 'File not found: 1missing.', errors: [{ reason: 'notFound', domain: 'global', location: 'fileId' }] });
    const orphan = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'x', parents: ['1missing'] } });
    expect(orphan.status).toBe(404);
    expect(orphan.json.error.errors[0].reason).toBe('notFound');
  });

  it('refuses two parents, and a file as a parent', async () => {
    const a = await mkdir('a');
    const b = await mkdir('b');
    const two = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'x', parents: [a, b] } });
    expect(two.status).toBe(403);
    expect(two.json.error.errors[0].reason).toBe('cannotAddParent');
    const f = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'f.txt', parents: [a] } });
    const under = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'x', parents: [f.json.id] } });
    expect(under.status).toBe(400);
  });
});

describe('get, patch, delete, download, about', () => {
  it('renames and moves with addParents/removeParents; parents in the body is not writable', async () => {
    const a = await mkdir('a');
    const b = await mkdir('b');
    const f = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'old.txt', parents: [a] } });
    const moved = await call(emu, 'PATCH', `/drive/v3/files/${f.json.id}?addParents=${b}&removeParents=${a}&fields=name,parents`, { token, json: { name: 'new.txt' } });
    expect(moved.json).toEqual({ name: 'new.txt', parents: [b] });
    const bad = await call(emu, 'PATCH', `/drive/v3/files/${f.json.id}`, { token, json: { parents: [a] } });
    expect(bad.status).toBe(403);
    expect(bad.json.error.errors[0].reason).toBe('fieldNotWritable');
    const ro = await call(emu, 'PATCH', `/drive/v3/files/${f.json.id}`, { token, json: { md5Checksum: 'x' } });
    expect(ro.status).toBe(403);
    const cycle = await call(emu, 'PATCH', `/drive/v3/files/${a}?addParents=${a}&removeParents=${emu.rootId}`, { token, json: {} });
    expect(cycle.status).toBe(400);
    expect((await emu.tree()).map((t) => t.path)).toEqual(['/b/new.txt']);
  });

  it('deletes a folder with everything under it (204, then 404)', async () => {
    const a = await mkdir('a');
    const f = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'f', parents: [a] } });
    const del = await call(emu, 'DELETE', `/drive/v3/files/${a}`, { token });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    expect((await call(emu, 'GET', `/drive/v3/files/${f.json.id}`, { token })).status).toBe(404);
    expect(emu.entries()).toEqual([]);
  });

  it('reports size as a string and checksums only when asked', async () => {
    const f = await call(emu, 'POST', '/drive/v3/files', { token, json: { name: 'empty.bin' } });
    const def = await call(emu, 'GET', `/drive/v3/files/${f.json.id}`, { token });
    expect(Object.keys(def.json).sort()).toEqual(['id', 'kind', 'mimeType', 'name']);
    const all = await call(emu, 'GET', `/drive/v3/files/${f.json.id}?fields=size,md5Checksum,sha1Checksum,sha256Checksum`, { token });
    expect(all.json).toEqual({
      size: '0',
      md5Checksum: createHash('md5').update('').digest('hex'),
      sha1Checksum: createHash('sha1').update('').digest('hex'),
      sha256Checksum: createHash('sha256').update('').digest('hex'),
    });
    const star = await call(emu, 'GET', `/drive/v3/files/${f.json.id}?fields=*`, { token });
    expect(star.json).toMatchObject({ kind: 'drive#file', size: '0', version: '1', ownedByMe: true });
  });

  it('downloads with alt=media, honours Range, and refuses folders', async () => {
    const up = await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media', { token, body: Buffer.from('0123456789'), headers: { 'content-type': 'text/plain' } });
    const all = await call(emu, 'GET', `/drive/v3/files/${up.json.id}?alt=media`, { token });
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toBe('text/plain');
    expect(all.text).toBe('0123456789');
    const part = await call(emu, 'GET', `/drive/v3/files/${up.json.id}?alt=media`, { token, headers: { range: 'bytes=2-4' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 2-4/10');
    expect(part.text).toBe('234');
    const folder = await mkdir('d');
    const refused = await call(emu, 'GET', `/drive/v3/files/${folder}?alt=media`, { token });
    expect(refused.status).toBe(403);
    expect(refused.json.error.errors[0].reason).toBe('fileNotDownloadable');
  });

  it('answers about.storageQuota, and requires fields there', async () => {
    emu.setStorageQuota(1000);
    await call(emu, 'POST', '/upload/drive/v3/files?uploadType=media', { token, body: Buffer.alloc(10) });
    const res = await call(emu, 'GET', '/drive/v3/about?fields=storageQuota,user(emailAddress)', { token });
    expect(res.json).toEqual({ storageQuota: { limit: '1000', usage: '10', usageInDrive: '10', usageInDriveTrash: '0' }, user: { emailAddress: 'user@example.com' } });
    const none = await call(emu, 'GET', '/drive/v3/about', { token });
    expect(none.status).toBe(400);
    expect(none.json.error.errors[0].reason).toBe('required');
  });

  it('answers a plain 404 for an unknown path', async () => {
    const res = await call(emu, 'GET', '/drive/v2/nothing', { token });
    expect(res.status).toBe(404);
  });
});
