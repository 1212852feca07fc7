/**
 * Upload sessions over raw HTTP: createUploadSession, fragments to the pre-authenticated URL
 * (202 + nextExpectedRanges, 416 on a repeated or skipped range, the 320 KiB rule, no
 * Authorization), resume by GET, 201/200 at the end, conflicts, cancel, expiry, quota, deferCommit
 * and a fragment cut off mid-body.
 */
import http from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { quickXorHash } from '../../../src/archive/quickxor.js';
import { seededRandom } from '../harness/index.js';
import type { OneDriveEmulator } from './index.js';
import { FRAGMENT_UNIT, startOneDriveEmulator } from './index.js';
import type { RawResponse } from './raw.js';
import { raw } from './raw.js';

let emu: OneDriveEmulator;
let token: string;

beforeAll(async () => {
  emu = await startOneDriveEmulator({ seed: 7 });
  token = emu.issueAccessToken();
});
afterAll(async () => {
  await emu.close();
});
beforeEach(() => {
  emu.setQuota(5 * 1024 ** 3);
});

function bytes(n: number, seed: number): Buffer {
  const rnd = seededRandom(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

async function newSession(path: string, item: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<{ status: number; json: RawResponse['json']; url: string }> {
  const res = await raw(emu.url, 'POST', `/v1.0/me/drive/root:/${path}:/createUploadSession`, {
    token,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item, ...extra }),
  });
  return { status: res.status, json: res.json, url: res.json?.uploadUrl ?? '' };
}

/** PUT one fragment to an upload URL (no Authorization unless asked). */
function putRange(url: string, data: Buffer, start: number, total: number, headers: Record<string, string> = {}) {
  const u = new URL(url);
  return raw(`${u.protocol}//${u.host}`, 'PUT', u.pathname, {
    headers: { 'content-range': `bytes ${start}-${start + data.length - 1}/${total}`, ...headers },
    body: data,
  });
}

const relative = (url: string) => new URL(url).pathname;

describe('createUploadSession and fragments', () => {
  it('runs the documented protocol: 200 session, 202s with nextExpectedRanges, 416 on a repeat, resume by GET, 201 at the end', async () => {
    const file = bytes(3 * FRAGMENT_UNIT + 1234, 1);
    const s = await newSession('Big/file.bin', { '@microsoft.graph.conflictBehavior': 'rename', name: 'file.bin' });
    expect(s.status).toBe(200);
    expect(s.json.uploadUrl).toMatch(new RegExp(`^${emu.url}/upload/[0-9a-f]+$`));
    expect(s.json.nextExpectedRanges).toEqual(['0-']);
    expect(Date.parse(s.json.expirationDateTime)).toBeGreaterThan(Date.now());

    const first = await putRange(s.url, file.subarray(0, FRAGMENT_UNIT), 0, file.length);
    expect(first.status).toBe(202);
    expect(first.json.nextExpectedRanges).toEqual([`${FRAGMENT_UNIT}-`]);
    expect(first.json.expirationDateTime).toBeTypeOf('string');

    const repeat = await putRange(s.url, file.subarray(0, FRAGMENT_UNIT), 0, file.length);
    expect(repeat.status).toBe(416);
    expect(repeat.json.error.code).toBe('invalidRange');
    expect(repeat.json.error.innerError.code).toBe('fragmentOverlap');

    const skip = await putRange(s.url, file.subarray(2 * FRAGMENT_UNIT, 3 * FRAGMENT_UNIT), 2 * FRAGMENT_UNIT, file.length);
    expect(skip.status).toBe(416);
    expect(skip.json.error.innerError.code).toBe('fragmentOutOfOrder');

    const status = await raw(emu.url, 'GET', relative(s.url));
    expect(status.status).toBe(200);
    expect(status.json.nextExpectedRanges).toEqual([`${FRAGMENT_UNIT}-`]);

    const second = await putRange(s.url, file.subarray(FRAGMENT_UNIT, 3 * FRAGMENT_UNIT), FRAGMENT_UNIT, file.length);
    expect(second.status).toBe(202);
    expect(second.json.nextExpectedRanges).toEqual([`${3 * FRAGMENT_UNIT}-`]);

    const last = await putRange(s.url, file.subarray(3 * FRAGMENT_UNIT), 3 * FRAGMENT_UNIT, file.length);
    expect(last.status).toBe(201);
    expect(last.json.name).toBe('file.bin');
    expect(last.json.size).toBe(file.length);
    expect(last.json.file.hashes.quickXorHash).toBe(quickXorHash(file));
    expect((await emu.readFile('Big/file.bin'))!.equals(file)).toBe(true);

    const gone = await raw(emu.url, 'GET', relative(s.url));
    expect(gone.status).toBe(404);
    expect(gone.json.error.code).toBe('itemNotFound');
  });

  it('needs no Authorization on the upload URL and refuses one (401) without touching the session', async () => {
    const s = await newSession('Auth/a.bin');
    const withAuth = await putRange(s.url, Buffer.alloc(10), 0, 10, { authorization: `Bearer ${token}` });
    expect(withAuth.status).toBe(401);
    const status = await raw(emu.url, 'GET', relative(s.url));
    expect(status.json.nextExpectedRanges).toEqual(['0-']);
    const done = await putRange(s.url, Buffer.alloc(10), 0, 10);
    expect(done.status).toBe(201);
  });

  it('refuses a non-final fragment that is not a multiple of 320 KiB, a wrong total and a length mismatch', async () => {
    const s = await newSession('Rules/r.bin');
    const odd = await putRange(s.url, Buffer.alloc(1000), 0, 5000);
    expect(odd.status).toBe(400);
    expect(odd.json.error.code).toBe('invalidRequest');
    const ok = await putRange(s.url, Buffer.alloc(FRAGMENT_UNIT), 0, FRAGMENT_UNIT + 10);
    expect(ok.status).toBe(202);
    const total = await putRange(s.url, Buffer.alloc(10), FRAGMENT_UNIT, FRAGMENT_UNIT + 11);
    expect(total.status).toBe(400);
    expect(total.json.error.innerError.code).toBe('fragmentLengthMismatch');
    const mismatch = await putRange(s.url, Buffer.alloc(10), FRAGMENT_UNIT, FRAGMENT_UNIT + 10, { 'content-range': `bytes ${FRAGMENT_UNIT}-${FRAGMENT_UNIT + 19}/${FRAGMENT_UNIT + 20}` });
    expect(mismatch.status).toBe(400);
    const noRange = await raw(emu.url, 'PUT', relative(s.url), { body: Buffer.alloc(10) });
    expect(noRange.status).toBe(400);
  });

  // learn.microsoft.com/graph/api/driveitem-createuploadsession, "Request body": the item may carry
  // fileSystemInfo; learn.microsoft.com/graph/api/resources/filesysteminfo: createdDateTime and
  // lastModifiedDateTime are the client's own times, read/write, returned on the driveItem.
  it('keeps the fileSystemInfo createdDateTime and lastModifiedDateTime given at session creation', async () => {
    const s = await newSession('Times/born.bin', {
      '@microsoft.graph.conflictBehavior': 'replace',
      fileSystemInfo: { createdDateTime: '2018-02-02T03:04:05.500Z', lastModifiedDateTime: '2019-07-08T09:10:11.250Z' },
    });
    const done = await putRange(s.url, Buffer.from('born'), 0, 4);
    expect(done.status).toBe(201);
    expect(done.json.fileSystemInfo.createdDateTime).toBe('2018-02-02T03:04:05.500Z');
    const again = await raw(emu.url, 'GET', '/v1.0/me/drive/root:/Times/born.bin', { token });
    expect(again.json.fileSystemInfo).toMatchObject({ createdDateTime: '2018-02-02T03:04:05.500Z', lastModifiedDateTime: '2019-07-08T09:10:11.250Z' });
    expect(again.json.createdDateTime).not.toBe('2018-02-02T03:04:05.500Z');
  });

  it('answers 200 (not 201) when the session replaced an existing file', async () => {
    const first = await raw(emu.url, 'PUT', '/v1.0/me/drive/root:/Rep/x.bin:/content', { token, body: 'old' });
    const s = await newSession('Rep/x.bin', { '@microsoft.graph.conflictBehavior': 'replace' });
    const done = await putRange(s.url, Buffer.from('new content'), 0, 11);
    expect(done.status).toBe(200);
    expect(done.json.id).toBe(first.json.id);
    expect((await emu.readFile('Rep/x.bin'))!.toString()).toBe('new content');
  });

  it('fail: 409 nameAlreadyExists at creation, and (by default) at the last fragment if the name was taken meanwhile', async () => {
    await emu.seedFile('Conf/taken.bin', Buffer.from('x'));
    const atCreate = await newSession('Conf/taken.bin', { '@microsoft.graph.conflictBehavior': 'fail' });
    expect(atCreate.status).toBe(409);
    expect(atCreate.json.error.code).toBe('nameAlreadyExists');

    const s = await newSession('Conf/later.bin');
    expect(s.status).toBe(200);
    await emu.seedFile('Conf/later.bin', Buffer.from('someone else'));
    const last = await putRange(s.url, Buffer.from('mine'), 0, 4);
    expect(last.status).toBe(409);
    expect(last.json.error.code).toBe('nameAlreadyExists');
    expect((await emu.readFile('Conf/later.bin'))!.toString()).toBe('someone else');
  });

  it('updates an existing file by id (items/{id}/createUploadSession)', async () => {
    const { id } = await emu.seedFile('ById/f.bin', Buffer.from('v1'));
    const res = await raw(emu.url, 'POST', `/v1.0/me/drive/items/${id}/createUploadSession`, { token, headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(200);
    const done = await putRange(res.json.uploadUrl, Buffer.from('v2!'), 0, 3);
    expect(done.status).toBe(200);
    expect(done.json.id).toBe(id);
  });

  it('cancels by DELETE (204) and the URL then answers 404', async () => {
    const s = await newSession('Cancel/c.bin');
    await putRange(s.url, Buffer.alloc(FRAGMENT_UNIT), 0, 2 * FRAGMENT_UNIT);
    const del = await raw(emu.url, 'DELETE', relative(s.url));
    expect(del.status).toBe(204);
    const after = await putRange(s.url, Buffer.alloc(FRAGMENT_UNIT), FRAGMENT_UNIT, 2 * FRAGMENT_UNIT);
    expect(after.status).toBe(404);
    expect(after.json.error.code).toBe('itemNotFound');
    expect(emu.uploadSessions().find((x) => s.url.endsWith(x.id))).toBeUndefined();
  });

  it('an expired session answers 404 itemNotFound', async () => {
    const s = await newSession('Exp/e.bin');
    emu.expireUploadSessions();
    const res = await putRange(s.url, Buffer.alloc(5), 0, 5);
    expect(res.status).toBe(404);
    expect(res.json.error.code).toBe('itemNotFound');
  });

  it('answers 507 quotaLimitReached for a fileSize past the quota, and at the last fragment', async () => {
    emu.setQuota(0);
    const early = await newSession('Quota/q.bin', { fileSize: 1000 });
    expect(early.status).toBe(507);
    expect(early.json.error.code).toBe('quotaLimitReached');
    const s = await newSession('Quota/q.bin');
    const last = await putRange(s.url, Buffer.alloc(100), 0, 100);
    expect(last.status).toBe(507);
    expect(last.json.error.code).toBe('quotaLimitReached');
    const simple = await raw(emu.url, 'PUT', '/v1.0/me/drive/root:/Quota/s.bin:/content', { token, body: 'x' });
    expect(simple.status).toBe(507);
  });

  it('with deferCommit the last fragment answers 202 with no ranges and an empty POST completes', async () => {
    const s = await newSession('Defer/d.bin', {}, { deferCommit: true });
    const last = await putRange(s.url, Buffer.from('deferred'), 0, 8);
    expect(last.status).toBe(202);
    expect(last.json.nextExpectedRanges).toEqual([]);
    expect(await emu.readFile('Defer/d.bin')).toBeNull();
    const commit = await raw(emu.url, 'POST', relative(s.url), { body: Buffer.alloc(0) });
    expect(commit.status).toBe(201);
    expect((await emu.readFile('Defer/d.bin'))!.toString()).toBe('deferred');
  });

  it('ignores a fragment whose connection dropped mid-body; the upload resumes from the last good range', async () => {
    const file = bytes(2 * FRAGMENT_UNIT, 2);
    const s = await newSession('Drop/x.bin');
    await putRange(s.url, file.subarray(0, FRAGMENT_UNIT), 0, file.length);
    const u = new URL(s.url);
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: u.hostname,
        port: u.port,
        method: 'PUT',
        path: u.pathname,
        agent: false,
        headers: { 'content-range': `bytes ${FRAGMENT_UNIT}-${2 * FRAGMENT_UNIT - 1}/${file.length}`, 'content-length': String(FRAGMENT_UNIT) },
      });
      req.on('error', () => resolve());
      req.write(file.subarray(FRAGMENT_UNIT, FRAGMENT_UNIT + 1000), () => setImmediate(() => req.destroy()));
    });
    const status = await raw(emu.url, 'GET', relative(s.url));
    expect(status.json.nextExpectedRanges).toEqual([`${FRAGMENT_UNIT}-`]);
    const resumed = await putRange(s.url, file.subarray(FRAGMENT_UNIT), FRAGMENT_UNIT, file.length);
    expect(resumed.status).toBe(201);
    expect(resumed.json.file.hashes.quickXorHash).toBe(quickXorHash(file));
  });
});
