/**
 * Graph v1.0 drive endpoints over raw HTTP: authentication errors, the drive, folder creation
 * with every conflict behaviour, path and id addressing on every drive prefix, paging, simple
 * upload, names OneDrive refuses, download, delete, and the URLs handed to public-host clients.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quickXorHash } from '../../../src/archive/quickxor.js';
import type { OneDriveEmulator } from './index.js';
import { startOneDriveEmulator } from './index.js';
import { encPath, jsonCall, raw } from './raw.js';

let emu: OneDriveEmulator;
let token: string;

beforeAll(async () => {
  emu = await startOneDriveEmulator({ seed: 42 });
  token = emu.issueAccessToken();
});
afterAll(async () => {
  await emu.close();
});

const get = (path: string, t = token, headers: Record<string, string> = {}) => raw(emu.url, 'GET', path, { token: t, headers });
const put = (path: string, body: Buffer | string, t = token) => raw(emu.url, 'PUT', path, { token: t, body });

describe('authentication', () => {
  it('answers 401 InvalidAuthenticationToken with a challenge and request ids when the token is missing', async () => {
    const res = await raw(emu.url, 'GET', '/v1.0/me/drive', { headers: { 'client-request-id': 'abc-123' } });
    expect(res.status).toBe(401);
    expect(res.json.error.code).toBe('InvalidAuthenticationToken');
    expect(res.json.error.message).toBe('Access token is empty.');
    expect(res.json.error.innerError['client-request-id']).toBe('abc-123');
    expect(res.json.error.innerError.date).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    expect(res.headers['request-id']).toBe(res.json.error.innerError['request-id']);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm=""/);
  });

  it('refuses an unknown token and an expired one, each with its message', async () => {
    const bad = await get('/v1.0/me/drive', 'not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.json.error.code).toBe('InvalidAuthenticationToken');
    const short = emu.issueAccessToken(-1);
    const expired = await get('/v1.0/me/drive', short);
    expect(expired.status).toBe(401);
    expect(expired.json.error.message).toMatch(/expired/);
  });
});

describe('drive and folders', () => {
  it('GET /me/drive returns the drive with its quota', async () => {
    const res = await get('/v1.0/me/drive');
    expect(res.status).toBe(200);
    expect(res.json.id).toBe(emu.driveId);
    expect(res.json.driveType).toBe('personal');
    expect(res.json.quota.total).toBe(5 * 1024 ** 3);
    expect(res.json.quota.state).toBe('normal');
    expect(res.json.owner.user.id).toBe(emu.user.id);
  });

  it('creates a folder (201) and applies fail, rename, replace and the default to a taken name', async () => {
    const create = (name: string, behaviour?: string) =>
      jsonCall(emu.url, 'POST', '/v1.0/me/drive/root/children', token, { name, folder: {}, ...(behaviour ? { '@microsoft.graph.conflictBehavior': behaviour } : {}) });
    const first = await create('Photos', 'fail');
    expect(first.status).toBe(201);
    expect(first.json.folder).toEqual({ childCount: 0 });
    expect(first.json.parentReference.path).toBe('/drive/root:');
    expect(first.json.size).toBe(0);

    const failed = await create('photos', 'fail');
    expect(failed.status).toBe(409);
    expect(failed.json.error.code).toBe('nameAlreadyExists');

    const renamed = await create('Photos', 'rename');
    expect(renamed.status).toBe(201);
    expect(renamed.json.name).toBe('Photos 1');

    const replaced = await create('PHOTOS', 'replace');
    expect(replaced.status).toBe(200);
    expect(replaced.json.id).toBe(first.json.id);

    const defaulted = await create('Photos');
    expect(defaulted.status).toBe(200);
    expect(defaulted.json.id).toBe(first.json.id);

    const nested = await jsonCall(emu.url, 'POST', `/v1.0/me/drive/items/${first.json.id}/children`, token, { name: 'Inner', folder: {} });
    expect(nested.status).toBe(201);
    expect(nested.json.parentReference).toMatchObject({ id: first.json.id, path: '/drive/root:/Photos', driveId: emu.driveId });
  });

  it('refuses a create without a facet, a bad conflict behaviour and bad JSON', async () => {
    const noFacet = await jsonCall(emu.url, 'POST', '/v1.0/me/drive/root/children', token, { name: 'x' });
    expect(noFacet.status).toBe(400);
    expect(noFacet.json.error.code).toBe('invalidRequest');
    const badBehaviour = await jsonCall(emu.url, 'POST', '/v1.0/me/drive/root/children', token, { name: 'x', folder: {}, '@microsoft.graph.conflictBehavior': 'merge' });
    expect(badBehaviour.status).toBe(400);
    const badJson = await raw(emu.url, 'POST', '/v1.0/me/drive/root/children', { token, body: '{', headers: { 'content-type': 'application/json' } });
    expect(badJson.status).toBe(400);
  });
});

describe('addressing', () => {
  let folderId: string;
  beforeAll(async () => {
    folderId = emu.seedFolder('Addr/Sub Folder').id;
    await emu.seedFile('Addr/Sub Folder/x #1.txt', Buffer.from('hello'));
  });

  it('resolves root:/a/b: paths, with or without the closing colon, case-insensitively', async () => {
    const a = await get(`/v1.0/me/drive/root:/${encPath('Addr/Sub Folder')}:`);
    expect(a.status).toBe(200);
    expect(a.json.id).toBe(folderId);
    expect(a.json.folder.childCount).toBe(1);
    expect(a.json.size).toBe(5);
    const b = await get(`/v1.0/me/drive/root:/${encPath('addr/sub folder/X #1.TXT')}`);
    expect(b.status).toBe(200);
    expect(b.json.name).toBe('x #1.txt');
    expect(b.json.file.hashes.quickXorHash).toBe(quickXorHash(Buffer.from('hello')));
    expect(b.json.parentReference.path).toBe('/drive/root:/Addr/Sub Folder');
  });

  it('resolves items/{id}:/name: and items/{id}/children', async () => {
    const byName = await get(`/v1.0/me/drive/items/${folderId}:/${encodeURIComponent('x #1.txt')}:`);
    expect(byName.status).toBe(200);
    const kids = await get(`/v1.0/me/drive/items/${folderId}/children`);
    expect(kids.status).toBe(200);
    expect(kids.json.value.map((i: { name: string }) => i.name)).toEqual(['x #1.txt']);
    const pathKids = await get(`/v1.0/me/drive/root:/Addr:/children`);
    expect(pathKids.json.value[0].id).toBe(folderId);
  });

  it('serves the same items under /drives/{id}, /users/{id}/drive and /drive', async () => {
    const d = await get(`/v1.0/drives/${emu.driveId}/root:/Addr/Sub%20Folder`);
    expect(d.status).toBe(200);
    expect(d.json.parentReference.path).toBe(`/drives/${emu.driveId}/root:/Addr`);
    const u = await get(`/v1.0/users/${emu.user.id}/drive/items/${folderId}`);
    expect(u.status).toBe(200);
    const upn = await get(`/v1.0/users/${encodeURIComponent(emu.user.userPrincipalName)}/drive/root`);
    expect(upn.status).toBe(200);
    expect(upn.json.root).toEqual({});
    const legacy = await get(`/v1.0/drive/items/${folderId}`);
    expect(legacy.status).toBe(200);
  });

  it('answers 404 itemNotFound for a missing path or id, and for another drive', async () => {
    for (const p of ['/v1.0/me/drive/root:/Addr/nope', '/v1.0/me/drive/items/DEADBEEF!1', '/v1.0/drives/0123456789abcdef/root']) {
      const res = await get(p);
      expect(res.status, p).toBe(404);
      expect(res.json.error.code, p).toBe('itemNotFound');
    }
    const noUser = await get('/v1.0/users/someone-else/drive/root');
    expect(noUser.status).toBe(404);
  });

  it('answers 400 for an unknown version or segment', async () => {
    expect((await get('/beta/me/drive')).status).toBe(400);
    const seg = await get('/v1.0/me/drive/things');
    expect(seg.status).toBe(400);
    expect(seg.json.error.code).toBe('BadRequest');
  });
});

describe('children paging', () => {
  it('pages with $top and @odata.nextLink until every child was listed once', async () => {
    const names = ['e.txt', 'a.txt', 'D.txt', 'c.txt', 'b.txt'];
    for (const n of names) await emu.seedFile(`Paged/${n}`, Buffer.from(n));
    const seen: string[] = [];
    let next: string | undefined = '/v1.0/me/drive/root:/Paged:/children?$top=2';
    let pages = 0;
    while (next && pages < 10) {
      const res = await get(next);
      expect(res.status).toBe(200);
      expect(res.json.value.length).toBeLessThanOrEqual(2);
      seen.push(...res.json.value.map((i: { name: string }) => i.name));
      const link: string | undefined = res.json['@odata.nextLink'];
      if (link) expect(link.startsWith(`${emu.url}/v1.0/`)).toBe(true);
      next = link ? link.slice(emu.url.length) : undefined;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(['a.txt', 'b.txt', 'c.txt', 'D.txt', 'e.txt']);
  });

  // Server-driven paging: "the server ... returns a subset of the results with an @odata.nextLink"
  // whatever the client asked (https://learn.microsoft.com/en-us/graph/paging).
  it('setPageSize: without $top the server pages by itself', async () => {
    for (const n of ['a', 'b', 'c']) await emu.seedFile(`Server/${n}.txt`, Buffer.from(n));
    emu.setPageSize(2);
    try {
      const first = await get('/v1.0/me/drive/root:/Server:/children');
      expect(first.json.value).toHaveLength(2);
      const link: string = first.json['@odata.nextLink'];
      const second = await get(link.slice(emu.url.length));
      expect(second.json.value.map((i: { name: string }) => i.name)).toEqual(['c.txt']);
      expect(second.json['@odata.nextLink']).toBeUndefined();
    } finally {
      emu.setPageSize(200);
    }
  });

  it('applies $select', async () => {
    const res = await get('/v1.0/me/drive/root:/Paged:/children?$select=id,name');
    expect(Object.keys(res.json.value[0]).sort()).toEqual(['id', 'name']);
  });
});

describe('simple upload', () => {
  it('PUT root:/path:/content creates missing folders and answers 201 with the quickXorHash', async () => {
    const body = Buffer.from('The contents of the file goes here.');
    const res = await put(`/v1.0/me/drive/root:/${encPath('Docs/2024/FileB.txt')}:/content`, body);
    expect(res.status).toBe(201);
    expect(res.json.name).toBe('FileB.txt');
    expect(res.json.size).toBe(body.length);
    expect(res.json.file.mimeType).toBe('text/plain');
    expect(res.json.file.hashes.quickXorHash).toBe(quickXorHash(body));
    expect(res.json.parentReference.path).toBe('/drive/root:/Docs/2024');
    expect(await emu.readFile('Docs/2024/FileB.txt')).toEqual(body);
  });

  it('replaces by default (200, same id), and honours fail and rename in the query', async () => {
    const p = `/v1.0/me/drive/root:/${encPath('Docs/same.bin')}:/content`;
    const first = await put(p, 'one');
    expect(first.status).toBe(201);
    const again = await put(p, 'two!');
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(first.json.id);
    expect(again.json.size).toBe(4);
    expect(again.json.eTag).not.toBe(first.json.eTag);
    const failed = await put(`${p}?@microsoft.graph.conflictBehavior=fail`, 'three');
    expect(failed.status).toBe(409);
    expect(failed.json.error.code).toBe('nameAlreadyExists');
    const renamed = await put(`${p}?@microsoft.graph.conflictBehavior=rename`, 'four');
    expect(renamed.status).toBe(201);
    expect(renamed.json.name).toBe('same 1.bin');
    expect((await emu.readFile('Docs/same.bin'))!.toString()).toBe('two!');
  });

  it('PUT items/{id}/content replaces that file; items/{parent}:/name:/content creates in that folder', async () => {
    const made = await put(`/v1.0/me/drive/root:/Docs/byid.txt:/content`, 'v1');
    const byId = await put(`/v1.0/me/drive/items/${made.json.id}/content`, 'version 2');
    expect(byId.status).toBe(200);
    expect(byId.json.size).toBe(9);
    const folder = await get('/v1.0/me/drive/root:/Docs');
    const inFolder = await put(`/v1.0/me/drive/items/${folder.json.id}:/child.txt:/content`, 'c');
    expect(inFolder.status).toBe(201);
    expect(inFolder.json.parentReference.id).toBe(folder.json.id);
  });

  it('requires a Content-Length (411)', async () => {
    const res = await raw(emu.url, 'PUT', '/v1.0/me/drive/root:/Docs/chunked.txt:/content', { token, body: 'abc', chunked: true });
    expect(res.status).toBe(411);
  });

  it('refuses names OneDrive forbids with 400 invalidRequest', async () => {
    const bad = ['a:b.txt', 'a"b', 'q?.txt', 'pipe|x', 'star*', 'lt<', 'gt>', 'back\\slash', ' lead.txt', 'trail.txt ', 'CON', 'con', 'LPT1', 'COM0', '.lock', 'desktop.ini', '~$temp.docx', 'x_vti_y'];
    for (const name of bad) {
      const res = await put(`/v1.0/me/drive/root:/${encodeURIComponent(name)}:/content`, 'x');
      expect(res.status, name).toBe(400);
      expect(res.json.error.code, name).toBe('invalidRequest');
      expect(res.json.error.innerError.code, name).toMatch(/^(nameContainsInvalidCharacters|invalidName)$/);
    }
    const folderDot = await jsonCall(emu.url, 'POST', '/v1.0/me/drive/root/children', token, { name: 'ends.', folder: {} });
    expect(folderDot.status).toBe(400);
    const ok = await put(`/v1.0/me/drive/root:/${encodeURIComponent("Ünïcødé & (1) #hash 'q'.txt")}:/content`, 'fine');
    expect(ok.status).toBe(201);
    const long = await put(`/v1.0/me/drive/root:/${'a'.repeat(200)}/${'b'.repeat(200)}.txt:/content`, 'x');
    expect(long.status).toBe(400);
    expect(long.json.error.innerError.code).toBe('pathIsTooLong');
  });
});

describe('download and delete', () => {
  it('GET content redirects (302) to a pre-authenticated URL that serves the bytes and ranges', async () => {
    const body = Buffer.from('0123456789');
    await put('/v1.0/me/drive/root:/dl.txt:/content', body);
    const res = await get('/v1.0/me/drive/root:/dl.txt:/content');
    expect(res.status).toBe(302);
    const location = res.headers.location!;
    expect(location.startsWith(`${emu.url}/download/`)).toBe(true);
    const whole = await raw(emu.url, 'GET', location.slice(emu.url.length));
    expect(whole.status).toBe(200);
    expect(whole.body).toEqual(body);
    const part = await raw(emu.url, 'GET', location.slice(emu.url.length), { headers: { range: 'bytes=2-4' } });
    expect(part.status).toBe(206);
    expect(part.body.toString()).toBe('234');
    expect(part.headers['content-range']).toBe('bytes 2-4/10');
    const item = await get('/v1.0/me/drive/root:/dl.txt');
    expect(item.json['@microsoft.graph.downloadUrl']).toBe(location);
  });

  it('DELETE answers 204 and the item is gone', async () => {
    await put('/v1.0/me/drive/root:/Trash/del.txt:/content', 'x');
    const folder = await get('/v1.0/me/drive/root:/Trash');
    const del = await raw(emu.url, 'DELETE', `/v1.0/me/drive/items/${folder.json.id}`, { token });
    expect(del.status).toBe(204);
    expect((await get('/v1.0/me/drive/root:/Trash/del.txt')).status).toBe(404);
    expect(await emu.readFile('Trash/del.txt')).toBeNull();
  });
});

describe('public hosts', () => {
  it('hands out https Graph, upload and download URLs to a client that came in on graph.microsoft.com', async () => {
    for (const n of ['p1', 'p2', 'p3']) await emu.seedFile(`Public/${n}`, Buffer.from(n));
    const host = { host: 'graph.microsoft.com' };
    const list = await get('/v1.0/me/drive/root:/Public:/children?$top=1', token, host);
    expect(list.json['@odata.nextLink']).toMatch(/^https:\/\/graph\.microsoft\.com\/v1\.0\/me\/drive\/root:\/Public:\/children\?/);
    expect(list.json.value[0]['@microsoft.graph.downloadUrl']).toMatch(/^https:\/\/[a-z.]+\.1drv\.com\/download\//);
    const session = await raw(emu.url, 'POST', '/v1.0/me/drive/root:/Public/up.bin:/createUploadSession', {
      token,
      headers: { ...host, 'content-type': 'application/json' },
      body: JSON.stringify({ item: { '@microsoft.graph.conflictBehavior': 'replace' } }),
    });
    expect(session.status).toBe(200);
    const uploadUrl = new URL(session.json.uploadUrl as string);
    expect(uploadUrl.protocol).toBe('https:');
    expect(uploadUrl.host).toBe('api.onedrive.com');
    // The same emulator port serves that host, told apart by Host header.
    const done = await raw(emu.url, 'PUT', uploadUrl.pathname, { headers: { host: uploadUrl.host, 'content-range': 'bytes 0-2/3' }, body: 'abc' });
    expect(done.status).toBe(201);
    expect(done.json.name).toBe('up.bin');
  });
});
