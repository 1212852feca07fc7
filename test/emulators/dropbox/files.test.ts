/** Raw HTTP: folders, lookups, listings, delete, download, users/*, and how requests are routed. */
import { beforeEach, describe, expect, it } from 'vitest';
import { DropboxContentHasher } from '../../../src/archive/dropbox-hash.js';
import { startDropboxEmulator, type DropboxEmulator } from './index.js';
import { API, CONTENT, content, headerArg, raw, rpc, type RawResponse } from './raw.js';

let emu: DropboxEmulator;
let t: string;

beforeEach(async (ctx) => {
  emu = await startDropboxEmulator();
  t = emu.accessToken();
  ctx.onTestFinished(() => emu.close());
});

const call = (route: string, args?: unknown) => rpc(emu.url, t, route, args);
const put = (path: string, data: string | Buffer, extra: Record<string, unknown> = {}) => content(emu.url, t, 'files/upload', { path, ...extra }, data);

/** Asserts a 409 route error: its summary (tags, then `/` and padding dots) and its body. */
function expect409(res: RawResponse, summary: string, error: unknown): void {
  expect(res.status, res.text).toBe(409);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.json.error_summary).toMatch(new RegExp(`^${summary.replace(/[/.]/g, '\\$&')}/\\.*$`));
  expect(res.json.error).toEqual(error);
}

describe('files/create_folder_v2', () => {
  it('creates a folder and returns FolderMetadata in `metadata`', async () => {
    const res = await call('files/create_folder_v2', { path: '/Photos' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ metadata: { name: 'Photos', path_lower: '/photos', path_display: '/Photos', id: expect.stringMatching(/^id:[A-Za-z0-9_-]{22}$/) } });
    expect(emu.folders()).toEqual(['/Photos']);
  });

  it('answers 409 path/conflict/folder for an existing folder, whatever the case', async () => {
    await call('files/create_folder_v2', { path: '/Photos' });
    expect409(await call('files/create_folder_v2', { path: '/photos' }), 'path/conflict/folder', {
      '.tag': 'path',
      path: { '.tag': 'conflict', conflict: { '.tag': 'folder' } },
    });
  });

  it('autorenames on conflict: "name (1)", then "name (2)"', async () => {
    await call('files/create_folder_v2', { path: '/a/Docs' });
    const one = await call('files/create_folder_v2', { path: '/a/Docs', autorename: true });
    const two = await call('files/create_folder_v2', { path: '/a/docs', autorename: true });
    expect(one.json.metadata.path_display).toBe('/a/Docs (1)');
    expect(two.json.metadata.path_display).toBe('/a/docs (2)');
  });

  it('creates missing parents, keeping the casing of existing ones', async () => {
    await call('files/create_folder_v2', { path: '/Top' });
    const res = await call('files/create_folder_v2', { path: '/top/Mid/Leaf' });
    expect(res.json.metadata).toMatchObject({ path_display: '/Top/Mid/Leaf', path_lower: '/top/mid/leaf' });
    expect(emu.folders()).toEqual(['/Top', '/Top/Mid', '/Top/Mid/Leaf']);
  });

  it('answers conflict/file over a file and conflict/file_ancestor under one', async () => {
    await put('/f.txt', 'x');
    expect409(await call('files/create_folder_v2', { path: '/F.txt' }), 'path/conflict/file', { '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'file' } } });
    expect409(await call('files/create_folder_v2', { path: '/F.TXT/sub' }), 'path/conflict/file_ancestor', {
      '.tag': 'path',
      path: { '.tag': 'conflict', conflict: { '.tag': 'file_ancestor' } },
    });
  });

  it('refuses Dropbox\'s ignored names with path/disallowed_name', async () => {
    for (const name of ['desktop.ini', 'Thumbs.db', '.DS_Store', 'Icon\r', '.dropbox', '.dropbox.attr']) {
      expect409(await call('files/create_folder_v2', { path: `/x/${name}` }), 'path/disallowed_name', { '.tag': 'path', path: { '.tag': 'disallowed_name' } });
    }
    expect(emu.folders()).toEqual([]);
  });

  it('refuses malformed paths with path/malformed_path; trailing dots are fine', async () => {
    for (const p of ['/trailing space ', '/back\\slash', '/a//b', '/a/./b', '/a/../b', '/slash/', '/tab\t', '/nul\u0000x', '/lone\ud800']) {
      expect409(await call('files/create_folder_v2', { path: p }), 'path/malformed_path', { '.tag': 'path', path: { '.tag': 'malformed_path' } });
    }
    expect((await call('files/create_folder_v2', { path: '/ends with dot.' })).status).toBe(200);
  });

  it('answers 400 in plain text when the path does not match the pattern', async () => {
    const res = await call('files/create_folder_v2', { path: 'no-slash' });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/^Error in call to API function "files\/create_folder_v2": request body: path: 'no-slash' did not match pattern/);
  });
});

describe('files/get_metadata', () => {
  it('returns tagged metadata for files and folders, by path (any case) or by id', async () => {
    const f = (await put('/Dir/File.TXT', 'hello')).json;
    const byPath = await call('files/get_metadata', { path: '/dir/file.txt' });
    expect(byPath.json).toEqual({
      '.tag': 'file',
      name: 'File.TXT',
      path_lower: '/dir/file.txt',
      path_display: '/Dir/File.TXT',
      id: f.id,
      client_modified: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      server_modified: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      rev: expect.stringMatching(/^[0-9a-f]{9,}$/),
      size: 5,
      is_downloadable: true,
      content_hash: new DropboxContentHasher().update(Buffer.from('hello')).digest(),
    });
    expect((await call('files/get_metadata', { path: f.id })).json.path_display).toBe('/Dir/File.TXT');
    expect((await call('files/get_metadata', { path: '/DIR' })).json).toMatchObject({ '.tag': 'folder', name: 'Dir', path_display: '/Dir' });
  });

  it('answers 409 path/not_found and path/malformed_path', async () => {
    expect409(await call('files/get_metadata', { path: '/nothing' }), 'path/not_found', { '.tag': 'path', path: { '.tag': 'not_found' } });
    expect409(await call('files/get_metadata', { path: 'id:doesnotexist' }), 'path/not_found', { '.tag': 'path', path: { '.tag': 'not_found' } });
    expect409(await call('files/get_metadata', { path: '/a/' }), 'path/malformed_path', { '.tag': 'path', path: { '.tag': 'malformed_path' } });
  });

  it('answers 400 for the root (unsupported) and for a body that is not JSON', async () => {
    expect((await call('files/get_metadata', { path: '' })).status).toBe(400);
    const notJson = await raw(emu.url, { path: '/2/files/get_metadata', host: API, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: '{path:' });
    expect(notJson.status).toBe(400);
    expect(notJson.text).toContain('could not decode input as JSON');
    const badType = await raw(emu.url, { path: '/2/files/get_metadata', host: API, headers: { authorization: `Bearer ${t}`, 'content-type': 'text/plain' }, body: '{"path":"/a"}' });
    expect(badType.status).toBe(400);
    expect(badType.text).toContain('Bad HTTP "Content-Type" header: "text/plain"');
  });
});

describe('files/list_folder and list_folder/continue', () => {
  beforeEach(async () => {
    for (const p of ['/L/a.txt', '/L/b.txt', '/L/c.txt', '/L/sub/d.txt', '/other.txt']) await put(p, p);
  });

  it('lists the root with path "" and refuses "/"', async () => {
    const res = await call('files/list_folder', { path: '' });
    expect(res.json.entries.map((e: { path_display: string }) => e.path_display)).toEqual(['/L', '/other.txt']);
    expect(res.json).toMatchObject({ has_more: false, cursor: expect.any(String) });
    const slash = await call('files/list_folder', { path: '/' });
    expect(slash.status).toBe(400);
    expect(slash.text).toContain('Specify the root folder as an empty string rather than as "/".');
  });

  it('pages with `limit` and continues with the cursor until has_more is false', async () => {
    const first = await call('files/list_folder', { path: '/l', limit: 2 });
    expect(first.json.entries.map((e: { name: string }) => e.name)).toEqual(['a.txt', 'b.txt']);
    expect(first.json.has_more).toBe(true);
    emu.setPageSize(1);
    const second = await call('files/list_folder/continue', { cursor: first.json.cursor });
    expect(second.json).toMatchObject({ has_more: true, entries: [{ '.tag': 'file', name: 'c.txt' }] });
    const third = await call('files/list_folder/continue', { cursor: second.json.cursor });
    expect(third.json).toMatchObject({ has_more: false, entries: [{ '.tag': 'folder', name: 'sub' }] });
  });

  it('lists recursively, the folder itself first', async () => {
    const res = await call('files/list_folder', { path: '/L', recursive: true });
    expect(res.json.entries.map((e: { path_lower: string }) => e.path_lower)).toEqual(['/l', '/l/a.txt', '/l/b.txt', '/l/c.txt', '/l/sub', '/l/sub/d.txt']);
  });

  it('reports later changes through continue, deletions as `deleted` entries', async () => {
    const listed = await call('files/list_folder', { path: '/L' });
    await put('/L/new.txt', 'n');
    await call('files/delete_v2', { path: '/L/a.txt' });
    await put('/elsewhere.txt', 'e');
    const changes = await call('files/list_folder/continue', { cursor: listed.json.cursor });
    expect(changes.json.entries).toEqual([
      expect.objectContaining({ '.tag': 'file', path_display: '/L/new.txt' }),
      { '.tag': 'deleted', name: 'a.txt', path_lower: '/l/a.txt', path_display: '/L/a.txt' },
    ]);
    const none = await call('files/list_folder/continue', { cursor: changes.json.cursor });
    expect(none.json).toMatchObject({ entries: [], has_more: false });
  });

  it('answers path/not_found, path/not_folder, and 400 for an unknown cursor', async () => {
    expect409(await call('files/list_folder', { path: '/nope' }), 'path/not_found', { '.tag': 'path', path: { '.tag': 'not_found' } });
    expect409(await call('files/list_folder', { path: '/other.txt' }), 'path/not_folder', { '.tag': 'path', path: { '.tag': 'not_folder' } });
    expect((await call('files/list_folder/continue', { cursor: 'AAHbogus' })).status).toBe(400);
  });
});

describe('files/delete_v2', () => {
  it('deletes a folder with its contents and returns its metadata', async () => {
    await put('/D/x.txt', 'x');
    const res = await call('files/delete_v2', { path: '/d' });
    expect(res.json).toEqual({ metadata: expect.objectContaining({ '.tag': 'folder', path_display: '/D' }) });
    expect(await emu.tree()).toEqual([]);
    expect409(await call('files/delete_v2', { path: '/d' }), 'path_lookup/not_found', { '.tag': 'path_lookup', path_lookup: { '.tag': 'not_found' } });
  });
});

describe('files/download', () => {
  it('returns the bytes, and FileMetadata in an HTTP-header-safe Dropbox-API-Result', async () => {
    const data = Buffer.from('contents of a file with a nasty name');
    const up = (await put('/Ünï 日本.txt', data)).json;
    const res = await raw(emu.url, { path: '/2/files/download', host: CONTENT, headers: { authorization: `Bearer ${t}`, 'dropbox-api-arg': headerArg({ path: '/ünï 日本.txt' }) } });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    expect(res.body.equals(data)).toBe(true);
    const header = res.headers['dropbox-api-result'] as string;
    expect(header).toMatch(/^[\x20-\x7e]+$/);
    expect(header).toContain('\\u00dc');
    expect(JSON.parse(header)).toMatchObject({ id: up.id, name: 'Ünï 日本.txt', size: data.length, content_hash: up.content_hash, rev: up.rev });
  });

  it('takes the arg in the query string with GET, and serves ranges', async () => {
    await put('/r.bin', '0123456789');
    const res = await raw(emu.url, {
      method: 'GET',
      path: `/2/files/download?arg=${encodeURIComponent(JSON.stringify({ path: '/r.bin' }))}`,
      host: CONTENT,
      headers: { authorization: `Bearer ${t}`, range: 'bytes=2-5' },
    });
    expect(res.status).toBe(206);
    expect(res.text).toBe('2345');
    expect(res.headers['content-range']).toBe('bytes 2-5/10');
  });

  // Content-download endpoints "also support HTTP GET along with ETag-based caching
  // (If-None-Match) and HTTP range requests":
  // https://www.dropbox.com/developers/documentation/http/documentation#formats
  it('serves an open-ended range with POST: 206, Content-Range, the whole file in Dropbox-API-Result; 416 from the end on', async () => {
    await put('/r.bin', '0123456789');
    const get = (range: string) =>
      raw(emu.url, { path: '/2/files/download', host: CONTENT, headers: { authorization: `Bearer ${t}`, 'dropbox-api-arg': headerArg({ path: '/r.bin' }), range } });
    const res = await get('bytes=4-');
    expect(res.status).toBe(206);
    expect(res.text).toBe('456789');
    expect(res.headers['content-range']).toBe('bytes 4-9/10');
    expect(JSON.parse(res.headers['dropbox-api-result'] as string)).toMatchObject({ size: 10 });
    const past = await get('bytes=10-');
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe('bytes */10');
    expect(emu.downloads()).toEqual([{ path: '/r.bin', range: 'bytes=4-', status: 206, bytes: 6 }]);
  });

  it('cutDownloads: the next download sends that many bytes and closes the connection; the one after is whole', async () => {
    const data = Buffer.alloc(300_000, 7);
    await put('/big.bin', data);
    emu.cutDownloads(100_000);
    const get = () => fetch(`${emu.url}/2/files/download`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'dropbox-api-arg': headerArg({ path: '/big.bin' }) } });
    const cut = await get();
    expect(cut.headers.get('content-length')).toBe('300000');
    let got = 0;
    await expect(
      (async () => {
        for await (const c of cut.body!) got += (c as Uint8Array).length;
      })(),
    ).rejects.toThrow();
    expect(got).toBe(100_000);
    const whole = await get();
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    expect(emu.downloads().map((d) => d.bytes)).toEqual([100_000, 300_000]);
  });

  it('answers path/not_found and path/not_file', async () => {
    await call('files/create_folder_v2', { path: '/folder' });
    const get = (p: string) => raw(emu.url, { path: '/2/files/download', host: CONTENT, headers: { authorization: `Bearer ${t}`, 'dropbox-api-arg': headerArg({ path: p }) } });
    expect409(await get('/missing'), 'path/not_found', { '.tag': 'path', path: { '.tag': 'not_found' } });
    expect409(await get('/folder'), 'path/not_file', { '.tag': 'path', path: { '.tag': 'not_file' } });
  });
});

describe('users/*', () => {
  it('get_current_account returns a FullAccount', async () => {
    const res = await call('users/get_current_account');
    expect(res.json).toMatchObject({ account_id: expect.stringMatching(/^dbid:/), email: expect.any(String), account_type: { '.tag': 'basic' }, name: { display_name: expect.any(String) } });
  });

  it('get_space_usage reports bytes stored and the allocation set by the test', async () => {
    await put('/a', Buffer.alloc(1000));
    await put('/b', Buffer.alloc(234));
    emu.setQuota(5000);
    expect((await call('users/get_space_usage')).json).toEqual({ used: 1234, allocation: { '.tag': 'individual', allocated: 5000 } });
  });

  it('a Void route takes no body or `null`, nothing else', async () => {
    const withNull = await raw(emu.url, { path: '/2/users/get_space_usage', host: API, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: 'null' });
    expect(withNull.status).toBe(200);
    expect((await call('users/get_space_usage', {})).status).toBe(400);
  });
});

describe('routing by Host and path', () => {
  it('serves api routes for Host api.dropboxapi.com, content routes for content.dropboxapi.com', async () => {
    expect((await rpc(emu.url, t, 'files/list_folder', { path: '' }, API)).status).toBe(200);
    expect((await content(emu.url, t, 'files/upload', { path: '/h.txt' }, 'h', CONTENT)).status).toBe(200);
  });

  it('answers 400 for a route sent to the other host', async () => {
    const upOnApi = await content(emu.url, t, 'files/upload', { path: '/h.txt' }, 'h', API);
    expect(upOnApi.status).toBe(400);
    expect(upOnApi.text).toContain('content.dropboxapi.com');
    const listOnContent = await rpc(emu.url, t, 'files/list_folder', { path: '' }, CONTENT);
    expect(listOnContent.status).toBe(400);
    expect(await emu.tree()).toEqual([]);
  });

  it('routes by path when the Host is the loopback address, and by /api or /content prefixes', async () => {
    const host = new URL(emu.url).host;
    expect((await content(emu.url, t, 'files/upload', { path: '/p.txt' }, 'p', host)).status).toBe(200);
    expect((await rpc(emu.url, t, 'files/get_metadata', { path: '/p.txt' }, host)).status).toBe(200);
    const prefixed = await raw(emu.url, {
      path: '/content/2/files/upload',
      host,
      headers: { authorization: `Bearer ${t}`, 'content-type': 'application/octet-stream', 'dropbox-api-arg': headerArg({ path: '/q.txt' }) },
      body: 'q',
    });
    expect(prefixed.status).toBe(200);
    const wrongPrefix = await raw(emu.url, { path: '/content/2/files/list_folder', host, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: '{"path":""}' });
    expect(wrongPrefix.status).toBe(400);
    const token = await raw(emu.url, { path: '/api/oauth2/token?grant_type=refresh_token', host });
    expect(token.json.error).toBe('invalid_client');
  });

  it('answers 404 for an unknown function', async () => {
    const res = await call('files/no_such_route', {});
    expect(res.status).toBe(404);
    expect(res.text).toContain('Unknown API function: "files/no_such_route"');
  });
});
