import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BoxEmulator } from './index.js';
import { startBoxEmulator } from './index.js';
import { call, jsonHeaders, sha1hex } from './raw-http.js';

let emu: BoxEmulator;
let token: string;
beforeAll(async () => {
  emu = await startBoxEmulator();
  token = emu.issueTokens().accessToken;
});
afterAll(() => emu.close());

const get = (path: string, host?: string) => call(emu.url, path, { token, host });
const createFolder = (name: unknown, parentId = '0', query = '') =>
  call(emu.url, `/2.0/folders${query}`, { method: 'POST', token, headers: jsonHeaders, body: JSON.stringify({ name, parent: { id: parentId } }) });

describe('box folders', () => {
  it('GET /2.0/folders/0 is the root "All Files" with null etag and no parent', async () => {
    const r = await get('/2.0/folders/0');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ type: 'folder', id: '0', name: 'All Files', etag: null, sequence_id: null, parent: null });
    expect(r.json.path_collection).toEqual({ total_count: 0, entries: [] });
    expect(r.json.item_collection).toMatchObject({ offset: 0, limit: 100 });
  });

  it('POST /2.0/folders creates a folder: 201 with the standard folder object', async () => {
    const r = await createFolder('Reports');
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({
      type: 'folder',
      name: 'Reports',
      sequence_id: '0',
      etag: '0',
      parent: { type: 'folder', id: '0', name: 'All Files' },
      path_collection: { total_count: 1, entries: [{ type: 'folder', id: '0' }] },
      item_status: 'active',
    });
    expect(r.json.id).toMatch(/^\d+$/);
    const sub = await createFolder('2024', r.json.id);
    expect(sub.status).toBe(201);
    expect(sub.json.path_collection.entries.map((e: { name: string }) => e.name)).toEqual(['All Files', 'Reports']);
    expect((await get(`/2.0/folders/${sub.json.id}`)).json.parent.id).toBe(r.json.id);
  });

  it('a same-name sibling (case-insensitive) is 409 item_name_in_use with context_info.conflicts as an array', async () => {
    const first = await createFolder('Invoices');
    const r = await createFolder('INVOICES');
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({
      type: 'error',
      status: 409,
      code: 'item_name_in_use',
      message: 'Item with the same name already exists',
      help_url: expect.stringContaining('developer.box.com'),
      request_id: expect.any(String),
    });
    expect(r.json.context_info.conflicts).toEqual([{ type: 'folder', id: first.json.id, sequence_id: '0', etag: '0', name: 'Invoices' }]);
    expect(r.headers['box-request-id']).toBe(r.json.request_id);
  });

  it.each([
    ['a/b', 'item_name_invalid'],
    ['a\\b', 'item_name_invalid'],
    ['tab\there', 'item_name_invalid'],
    ['del\u007f', 'item_name_invalid'],
    ['trailing ', 'item_name_invalid'],
    ['.', 'item_name_invalid'],
    ['..', 'item_name_invalid'],
    ['', 'item_name_invalid'],
    ['x'.repeat(256), 'item_name_too_long'],
  ])('refuses the name %j with 400 %s', async (name, code) => {
    const r = await createFolder(name);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ type: 'error', status: 400, code });
  });

  it.each([[' leading space'], ['x'.repeat(255)], ['\u00e9t\u00e9 \u2603 ? < > " \' *'], ['.hidden'], ['...']])('accepts the name %j', async (name) => {
    const r = await createFolder(name);
    expect(r.status).toBe(201);
    expect(r.json.name).toBe(name);
  });

  it('an unknown parent is 404 not_found naming the parameter', async () => {
    const r = await createFolder('x', '999');
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ type: 'error', status: 404, code: 'not_found' });
    expect(r.json.context_info.errors[0]).toMatchObject({ reason: 'invalid_parameter', name: 'folder' });
    expect((await get('/2.0/folders/999')).status).toBe(404);
  });

  it('a body without name or parent is 400 bad_request', async () => {
    const r = await call(emu.url, '/2.0/folders', { method: 'POST', token, headers: jsonHeaders, body: '{"name":"x"}' });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('bad_request');
  });

  it('fields selects the mini representation plus the fields asked for', async () => {
    const f = await createFolder('Fielded', '0', '?fields=name,size');
    expect(Object.keys(f.json).sort()).toEqual(['etag', 'id', 'name', 'sequence_id', 'size', 'type']);
    const g = await get(`/2.0/folders/${f.json.id}?fields=modified_at`);
    expect(Object.keys(g.json).sort()).toEqual(['etag', 'id', 'modified_at', 'name', 'sequence_id', 'type']);
  });

  it('DELETE refuses a non-empty folder without recursive=true', async () => {
    const p = await createFolder('ToDelete');
    await createFolder('child', p.json.id);
    const r = await call(emu.url, `/2.0/folders/${p.json.id}`, { method: 'DELETE', token });
    expect(r.status).toBe(400);
    expect(r.json.code).toBe('folder_not_empty');
    const ok = await call(emu.url, `/2.0/folders/${p.json.id}?recursive=true`, { method: 'DELETE', token });
    expect(ok.status).toBe(204);
    expect((await get(`/2.0/folders/${p.json.id}`)).status).toBe(404);
  });

  it('an unknown route is 404 and a wrong method 405, in Box error shape', async () => {
    expect((await get('/2.0/nothing')).json).toMatchObject({ type: 'error', status: 404, code: 'not_found' });
    const r = await call(emu.url, '/2.0/folders/0', { method: 'PATCH', token });
    expect(r.status).toBe(405);
    expect(r.json.code).toBe('method_not_allowed');
  });
});

describe('box folder items listing', () => {
  let folderId: string;
  const names = ['b-folder', 'a-folder', 'c.txt', 'A.txt', 'b.txt'];
  beforeAll(async () => {
    folderId = (await createFolder('Listing')).json.id;
    await createFolder('b-folder', folderId);
    await createFolder('a-folder', folderId);
    for (const n of ['c.txt', 'A.txt', 'b.txt']) await emu.putFile(`/Listing/${n}`, Buffer.from(n));
  });

  it('offset pagination: folders first, then files, by name; total_count, offset, limit, order', async () => {
    const r = await get(`/2.0/folders/${folderId}/items?limit=2&offset=0`);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ total_count: 5, offset: 0, limit: 2 });
    expect(r.json.order[0]).toEqual({ by: 'type', direction: 'ASC' });
    const all: string[] = [];
    for (let offset = 0; offset < 5; offset += 2) {
      const page = await get(`/2.0/folders/${folderId}/items?limit=2&offset=${offset}`);
      all.push(...page.json.entries.map((e: { name: string }) => e.name));
    }
    expect(all).toEqual(['a-folder', 'b-folder', 'A.txt', 'b.txt', 'c.txt']);
    expect(new Set(all)).toEqual(new Set(names));
  });

  it('entries are minis: files carry sha1 and file_version', async () => {
    const r = await get(`/2.0/folders/${folderId}/items`);
    const file = r.json.entries.find((e: { name: string }) => e.name === 'c.txt');
    expect(Object.keys(file).sort()).toEqual(['etag', 'file_version', 'id', 'name', 'sequence_id', 'sha1', 'type']);
    expect(file.sha1).toBe(sha1hex(Buffer.from('c.txt')));
    expect(file.file_version).toMatchObject({ type: 'file_version', sha1: file.sha1 });
    const folder = r.json.entries.find((e: { name: string }) => e.name === 'a-folder');
    expect(Object.keys(folder).sort()).toEqual(['etag', 'id', 'name', 'sequence_id', 'type']);
  });

  it('marker pagination with usemarker=true walks every item once and ends with next_marker null', async () => {
    const seen: string[] = [];
    let marker: string | null = null;
    for (let i = 0; i < 10; i++) {
      const q: string = `usemarker=true&limit=2${marker ? `&marker=${encodeURIComponent(marker)}` : ''}`;
      const r = await get(`/2.0/folders/${folderId}/items?${q}`);
      expect(r.status).toBe(200);
      expect(r.json.total_count).toBeUndefined();
      expect(r.json.limit).toBe(2);
      seen.push(...r.json.entries.map((e: { name: string }) => e.name));
      marker = r.json.next_marker;
      if (!marker) break;
    }
    expect(marker).toBeNull();
    expect(seen).toEqual(['a-folder', 'b-folder', 'A.txt', 'b.txt', 'c.txt']);
    expect((await get(`/2.0/folders/${folderId}/items?usemarker=true&marker=garbage!`)).status).toBe(400);
  });

  // limit: "The maximum number of items to return per page ... If the value exceeds the maximum,
  // the maximum value will be used" (https://developer.box.com/guides/api-calls/pagination/marker-based/).
  it('setMaxPageSize lowers the maximum a limit is cut to; marker pages still end with next_marker null', async () => {
    emu.setMaxPageSize(2);
    const sizes: number[] = [];
    try {
      let marker: string | null = null;
      for (let i = 0; i < 10; i++) {
        const r = await get(`/2.0/folders/${folderId}/items?usemarker=true&limit=1000${marker ? `&marker=${encodeURIComponent(marker)}` : ''}`);
        expect(r.json.limit).toBe(2);
        sizes.push(r.json.entries.length);
        marker = r.json.next_marker;
        if (!marker) break;
      }
    } finally {
      emu.setMaxPageSize(1000);
    }
    expect(sizes).toEqual([2, 2, 1]);
  });

  it('fields applies to entries; limit caps at 1000; offset above 10000 is 400', async () => {
    const r = await get(`/2.0/folders/${folderId}/items?fields=size,modified_at&limit=5000`);
    expect(r.json.limit).toBe(1000);
    const file = r.json.entries.find((e: { name: string }) => e.name === 'b.txt');
    expect(file.size).toBe(5);
    expect(file.modified_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
    expect((await get(`/2.0/folders/${folderId}/items?offset=10001`)).status).toBe(400);
    expect((await get(`/2.0/folders/${folderId}/items?limit=abc`)).json.code).toBe('invalid_limit');
  });

  it('sort and direction reorder within the type groups', async () => {
    const r = await get(`/2.0/folders/${folderId}/items?sort=name&direction=DESC`);
    expect(r.json.entries.map((e: { name: string }) => e.name)).toEqual(['b-folder', 'a-folder', 'c.txt', 'b.txt', 'A.txt']);
  });
});
