/**
 * Issue 16, items 9 and 10, against the emulator: the OneDrive target keeps the file's
 * modification time (as Drive, Dropbox and Box do), and a fresh process puts into existing
 * folders without trying to create them again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SIMPLE_UPLOAD_MAX } from '../../../src/targets/onedrive/api-types.js';
import { onedriveHarness, type OnedriveHarness } from '../../conformance/onedrive-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { raw } from '../../emulators/onedrive/raw.js';

let h: OnedriveHarness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

async function fsInfo(harness: OnedriveHarness, remotePath: string): Promise<{ lastModifiedDateTime: string; createdDateTime: string }> {
  const token = harness.emu.issueAccessToken();
  const path = harness.drivePath(remotePath).split('/').map(encodeURIComponent).join('/');
  const r = await raw(harness.emu.url, 'GET', `/v1.0/me/drive/root:${path}`, { token });
  expect(r.status).toBe(200);
  return r.json.fileSystemInfo;
}

describe('onedrive target: modification time', () => {
  const mtimeMs = Date.UTC(2019, 6, 8, 9, 10, 11, 250);

  it('a small file (simple upload) keeps its modification time in fileSystemInfo', async () => {
    h = await onedriveHarness();
    await h.target.put(request('times/small.txt', seededBytes(1, 1000), { mtimeMs }));
    expect(new Date((await fsInfo(h, 'times/small.txt')).lastModifiedDateTime).getTime()).toBe(mtimeMs);
  });

  it('a large file (upload session) keeps its modification time in fileSystemInfo', async () => {
    h = await onedriveHarness();
    await h.target.put(request('times/large.bin', seededBytes(2, SIMPLE_UPLOAD_MAX + 1), { mtimeMs }));
    expect(new Date((await fsInfo(h, 'times/large.bin')).lastModifiedDateTime).getTime()).toBe(mtimeMs);
  });

  it('a changed file replaced in place carries the new time', async () => {
    h = await onedriveHarness();
    await h.target.put(request('times/c.txt', seededBytes(3, 10), { mtimeMs }));
    await h.target.put(request('times/c.txt', seededBytes(4, 20), { mtimeMs: mtimeMs + 60_000 }));
    expect(new Date((await fsInfo(h, 'times/c.txt')).lastModifiedDateTime).getTime()).toBe(mtimeMs + 60_000);
  });
});

// learn.microsoft.com/graph/api/resources/filesysteminfo, "Notes": the client that uploads a file
// should write fileSystemInfo with the date it was created on the device; the driveItem's own
// createdDateTime is the upload time.
describe('onedrive target: creation time (fileSystemInfo.createdDateTime)', () => {
  const mtimeMs = Date.UTC(2019, 6, 8, 9, 10, 11, 250);
  const birthtimeMs = Date.UTC(2018, 1, 2, 3, 4, 5, 500);

  it('a small file (simple upload, then PATCH) keeps its creation time', async () => {
    h = await onedriveHarness();
    await h.target.put(request('born/small.txt', seededBytes(7, 1000), { mtimeMs, birthtimeMs }));
    const info = await fsInfo(h, 'born/small.txt');
    expect(new Date(info.createdDateTime).getTime()).toBe(birthtimeMs);
    expect(new Date(info.lastModifiedDateTime).getTime()).toBe(mtimeMs);
  });

  it('a large file (upload session) keeps its creation time', async () => {
    h = await onedriveHarness();
    await h.target.put(request('born/large.bin', seededBytes(8, SIMPLE_UPLOAD_MAX + 1), { mtimeMs, birthtimeMs }));
    const info = await fsInfo(h, 'born/large.bin');
    expect(new Date(info.createdDateTime).getTime()).toBe(birthtimeMs);
    expect(new Date(info.lastModifiedDateTime).getTime()).toBe(mtimeMs);
  });

  it('without a creation time none is sent: the service keeps its own (the upload time)', async () => {
    h = await onedriveHarness();
    const before = Date.now();
    await h.target.put(request('born/none.txt', seededBytes(9, 10), { mtimeMs }));
    expect(new Date((await fsInfo(h, 'born/none.txt')).createdDateTime).getTime()).toBeGreaterThanOrEqual(before - 1000);
  });
});

describe('onedrive target: existing folders in a fresh process', () => {
  it('a new file in a new folder below existing ones creates only the new folder: no 409, no create of an existing parent', async () => {
    h = await onedriveHarness();
    await h.target.put(request('a/b/c/first.txt', seededBytes(5, 10)));
    const fresh = h.reopen();
    const since = h.emu.server.log.length;
    await fresh.put(request('a/b/c/d/second.txt', seededBytes(6, 10)));
    const log = h.emu.server.log.slice(since);
    const creates = log.filter((r) => r.method === 'POST' && /\/children(\?|$)/.test(r.url));
    expect(creates.map((r) => r.status)).toEqual([201]);
    expect(log.filter((r) => r.status === 409)).toEqual([]);
  });

  it('a fresh process putting into an existing folder makes no folder request but the lookup', async () => {
    h = await onedriveHarness();
    await h.target.put(request('x/y/one.txt', seededBytes(7, 10)));
    const fresh = h.reopen();
    const since = h.emu.server.log.length;
    await fresh.put(request('x/y/two.txt', seededBytes(8, 10)));
    const log = h.emu.server.log.slice(since);
    expect(log.filter((r) => r.method === 'POST' && /\/children(\?|$)/.test(r.url))).toEqual([]);
    expect(log.filter((r) => r.status === 409)).toEqual([]);
  });
});
