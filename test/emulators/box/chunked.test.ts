import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BoxEmulator } from './index.js';
import { startBoxEmulator } from './index.js';
import { call, jsonHeaders, pattern, sha1b64, sha1hex } from './raw-http.js';

const MiB = 1024 * 1024;
const SIZE = 20 * MiB; // ≥ 20,000,000: the smallest size upload sessions accept
const PART = 8 * MiB;
const data = pattern(SIZE, 7);
const ranges = [
  [0, PART - 1],
  [PART, 2 * PART - 1],
  [2 * PART, SIZE - 1],
] as const;

let emu: BoxEmulator;
let token: string;
beforeAll(async () => {
  emu = await startBoxEmulator();
  token = emu.issueTokens().accessToken;
});
afterAll(() => emu.close());

async function createSession(name: string, size = SIZE, folderId = '0') {
  return call(emu.url, '/api/2.0/files/upload_sessions', {
    method: 'POST',
    token,
    headers: jsonHeaders,
    body: JSON.stringify({ folder_id: folderId, file_size: size, file_name: name }),
  });
}

function putPart(url: string, start: number, end: number, opts: { digest?: string; body?: Buffer; total?: number } = {}) {
  const body = opts.body ?? data.subarray(start, end + 1);
  return call(url, new URL(url).pathname, {
    method: 'PUT',
    token,
    body,
    headers: {
      'content-type': 'application/octet-stream',
      digest: `sha=${opts.digest ?? sha1b64(body)}`,
      'content-range': `bytes ${start}-${end}/${opts.total ?? SIZE}`,
    },
  });
}

function commit(url: string, parts: unknown[], digest = sha1b64(data), attributes?: unknown) {
  return call(url, new URL(url).pathname, {
    method: 'POST',
    token,
    headers: { ...jsonHeaders, digest: `sha=${digest}` },
    body: JSON.stringify({ parts, ...(attributes ? { attributes } : {}) }),
  });
}

describe('box upload sessions: create', () => {
  it('201 with a server-set part_size, total_parts and session_endpoints on the emulator', async () => {
    const r = await createSession('session-shape.bin');
    expect(r.status).toBe(201);
    const s = r.json;
    expect(s).toMatchObject({ type: 'upload_session', part_size: PART, total_parts: 3, num_parts_processed: 0 });
    expect(s.id).toMatch(/^[0-9A-F]{32}$/);
    const base = `${emu.url}/api/2.0/files/upload_sessions/${s.id}`;
    expect(s.session_endpoints).toEqual({
      upload_part: base,
      commit: `${base}/commit`,
      abort: base,
      list_parts: `${base}/parts`,
      status: base,
      log_event: `${base}/log`,
    });
    const expires = Date.parse(s.session_expires_at) - Date.now();
    expect(expires).toBeGreaterThan(6.9 * 24 * 3600 * 1000);
    expect(expires).toBeLessThanOrEqual(7 * 24 * 3600 * 1000);
  });

  it('through Host upload.box.com the endpoints point at https://upload.box.com/api/2.0', async () => {
    const r = await call(emu.url, '/api/2.0/files/upload_sessions', {
      method: 'POST',
      token,
      host: 'upload.box.com',
      headers: jsonHeaders,
      body: JSON.stringify({ folder_id: '0', file_size: SIZE, file_name: 'via-host.bin' }),
    });
    expect(r.status).toBe(201);
    expect(r.json.session_endpoints.commit).toBe(`https://upload.box.com/api/2.0/files/upload_sessions/${r.json.id}/commit`);
  });

  it('refuses files under 20,000,000 bytes, missing fields, unknown folders, conflicts', async () => {
    const small = await createSession('small.bin', 19_999_999);
    expect(small.status).toBe(400);
    expect(small.json.code).toBe('file_size_too_small');
    expect((await createSession('exact.bin', 20_000_000)).status).toBe(201);
    const missing = await call(emu.url, '/api/2.0/files/upload_sessions', { method: 'POST', token, headers: jsonHeaders, body: JSON.stringify({ file_size: SIZE, file_name: 'x' }) });
    expect(missing.json.code).toBe('missing_destination');
    expect((await createSession('nowhere.bin', SIZE, '5555')).status).toBe(404);
    await emu.putFile('/occupied.bin', Buffer.from('x'));
    const clash = await createSession('OCCUPIED.bin');
    expect(clash.status).toBe(409);
    expect(clash.json.context_info.conflicts).toMatchObject({ type: 'file', name: 'occupied.bin' });
  });

  it('part_size is configurable', async () => {
    emu.setPartSize(16 * MiB);
    try {
      const r = await createSession('sixteen.bin');
      expect(r.json).toMatchObject({ part_size: 16 * MiB, total_parts: 2 });
    } finally {
      emu.setPartSize(PART);
    }
  });
});

describe('box upload sessions: parts, list, status, commit', () => {
  it('parts in any order, listed by offset; commit with the whole-file digest makes the file', async () => {
    const s = (await createSession('out-of-order.bin')).json;
    const url = s.session_endpoints.upload_part as string;
    const uploaded: Array<{ part_id: string; offset: number; size: number; sha1: string }> = [];
    for (const i of [2, 0, 1]) {
      const [start, end] = ranges[i]!;
      const r = await putPart(url, start, end);
      expect(r.status).toBe(200);
      expect(r.json.part).toEqual({ part_id: expect.stringMatching(/^[0-9A-F]{8}$/), offset: start, size: end - start + 1, sha1: sha1hex(data.subarray(start, end + 1)) });
      uploaded.push(r.json.part);
    }
    const status = await call(emu.url, new URL(s.session_endpoints.status).pathname, { token });
    expect(status.json).toMatchObject({ id: s.id, num_parts_processed: 3, total_parts: 3 });

    const list = await call(emu.url, new URL(s.session_endpoints.list_parts).pathname, { token });
    expect(list.status).toBe(200);
    expect(list.json).toMatchObject({ total_count: 3, offset: 0 });
    expect(list.json.entries.map((p: { offset: number }) => p.offset)).toEqual([0, PART, 2 * PART]);
    const page = await call(emu.url, `${new URL(s.session_endpoints.list_parts).pathname}?offset=1&limit=1`, { token });
    expect(page.json).toMatchObject({ total_count: 3, offset: 1, limit: 1 });
    expect(page.json.entries).toHaveLength(1);
    expect(page.json.entries[0].offset).toBe(PART);

    const parts = uploaded.map(({ part_id, offset, size }) => ({ part_id, offset, size }));
    const c = await commit(s.session_endpoints.commit, parts, sha1b64(data), { content_modified_at: '2020-01-02T03:04:05Z' });
    expect(c.status).toBe(201);
    expect(c.json.total_count).toBe(1);
    expect(c.json.entries[0]).toMatchObject({ type: 'file', name: 'out-of-order.bin', size: SIZE, sha1: sha1hex(data), content_modified_at: '2020-01-02T03:04:05+00:00' });
    const stored = await emu.read('/out-of-order.bin');
    expect(sha1hex(stored)).toBe(sha1hex(data));
    // The session is gone once committed.
    expect((await call(emu.url, new URL(s.session_endpoints.status).pathname, { token })).status).toBe(404);
  });

  it('a Digest that is not the part\'s SHA-1 is 412 and the part is not kept', async () => {
    const s = (await createSession('bad-digest.bin')).json;
    const [start, end] = ranges[0];
    const r = await putPart(s.session_endpoints.upload_part, start, end, { digest: sha1b64(Buffer.from('something else')) });
    expect(r.status).toBe(412);
    expect(r.json).toMatchObject({ type: 'error', status: 412, code: 'precondition_failed' });
    const list = await call(emu.url, new URL(s.session_endpoints.list_parts).pathname, { token });
    expect(list.json.total_count).toBe(0);
    expect((await putPart(s.session_endpoints.upload_part, start, end)).status).toBe(200);
  });

  it('ranges off the part grid or of the wrong size are 416; a part uploaded twice is 409', async () => {
    const s = (await createSession('ranges.bin')).json;
    const url = s.session_endpoints.upload_part as string;
    const r416 = [
      await putPart(url, 1, PART), // not on a part boundary
      await putPart(url, 0, PART - 2), // short part that is not the last
      await putPart(url, 0, 2 * PART - 1), // longer than part_size
      await putPart(url, 2 * PART, SIZE - 1, { total: SIZE + 1 }), // wrong total
    ];
    for (const r of r416) {
      expect(r.status).toBe(416);
      expect(r.json.code).toBe('range_not_satisfiable');
    }
    expect((await putPart(url, 0, PART - 1)).status).toBe(200);
    const again = await putPart(url, 0, PART - 1);
    expect(again.status).toBe(409);
    expect(again.json.code).toBe('range_overlaps_existing_part');
    const noDigest = await call(emu.url, new URL(url).pathname, { method: 'PUT', token, body: Buffer.from('x'), headers: { 'content-range': `bytes ${PART}-${PART}/${SIZE}` } });
    expect(noDigest.status).toBe(400);
  });

  it('commit answers 202 + Retry-After while processing (test control), then 201', async () => {
    const s = (await createSession('accepted.bin')).json;
    const parts = [];
    for (const [start, end] of ranges) parts.push((await putPart(s.session_endpoints.upload_part, start, end)).json.part);
    emu.commitAccepted(2, 3);
    for (let i = 0; i < 2; i++) {
      const r = await commit(s.session_endpoints.commit, parts);
      expect(r.status).toBe(202);
      expect(r.headers['retry-after']).toBe('3');
      expect(r.body.length).toBe(0);
    }
    const done = await commit(s.session_endpoints.commit, parts);
    expect(done.status).toBe(201);
    expect(done.json.entries[0].sha1).toBe(sha1hex(data));
  });

  it('commit refuses a parts list that differs from the uploaded parts (400 parts_mismatch) and a wrong file digest (400 digest_mismatch)', async () => {
    const s = (await createSession('mismatch.bin')).json;
    const parts = [];
    for (const [start, end] of ranges.slice(0, 2)) parts.push((await putPart(s.session_endpoints.upload_part, start, end)).json.part);
    const incomplete = await commit(s.session_endpoints.commit, parts);
    expect(incomplete.status).toBe(400);
    expect(incomplete.json.code).toBe('parts_mismatch');
    const [start, end] = ranges[2];
    parts.push((await putPart(s.session_endpoints.upload_part, start, end)).json.part);
    const wrongList = await commit(s.session_endpoints.commit, parts.slice(1));
    expect(wrongList.json.code).toBe('parts_mismatch');
    const wrongDigest = await commit(s.session_endpoints.commit, parts, sha1b64(Buffer.from('nope')));
    expect(wrongDigest.status).toBe(400);
    expect(wrongDigest.json.code).toBe('digest_mismatch');
    expect(wrongDigest.json.message).toContain(`Actual: ${sha1b64(data)}`);
    // Nothing was stored, and the session can still be committed correctly.
    expect((await emu.tree()).some((t) => t.path === '/mismatch.bin')).toBe(false);
    expect((await commit(s.session_endpoints.commit, parts)).status).toBe(201);
  });

  it('abort (DELETE) is 204 and the session is gone', async () => {
    const s = (await createSession('aborted.bin')).json;
    await putPart(s.session_endpoints.upload_part, ranges[0][0], ranges[0][1]);
    const r = await call(emu.url, new URL(s.session_endpoints.abort).pathname, { method: 'DELETE', token });
    expect(r.status).toBe(204);
    const after = await putPart(s.session_endpoints.upload_part, ranges[1][0], ranges[1][1]);
    expect(after.status).toBe(404);
    expect(after.json.code).toBe('not_found');
    expect(emu.uploadSessions().some((x) => x.id === s.id)).toBe(false);
  });

  it('POST /api/2.0/files/:id/upload_sessions uploads a new version of an existing file', async () => {
    const id = await emu.putFile('/big-version.bin', Buffer.from('small first version'));
    const r = await call(emu.url, `/api/2.0/files/${id}/upload_sessions`, { method: 'POST', token, headers: jsonHeaders, body: JSON.stringify({ file_size: SIZE }) });
    expect(r.status).toBe(201);
    const parts = [];
    for (const [start, end] of ranges) parts.push((await putPart(r.json.session_endpoints.upload_part, start, end)).json.part);
    const c = await commit(r.json.session_endpoints.commit, parts);
    expect(c.status).toBe(201);
    expect(c.json.entries[0]).toMatchObject({ id, name: 'big-version.bin', size: SIZE, sha1: sha1hex(data), etag: '1' });
  });
});
