/**
 * The OneDrive target against the emulator: the two upload paths as Graph sees them, resume after
 * a cut, replace-in-place, idempotence, hash verification, throttling and quota, names and
 * folders. Auth (sign-in, expiry, revocation, no secret in any message) is in auth.test.ts.
 */
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ShortReadError, TargetError } from '../../../src/errors.js';
import { quickXorHash } from '../../../src/archive/quickxor.js';
import { FRAGMENT_UNIT, DEFAULT_FRAGMENT_SIZE, SIMPLE_UPLOAD_MAX } from '../../../src/targets/onedrive/api-types.js';
import type { PutResult } from '../../../src/targets/target.js';
import { onedriveHarness, type OnedriveHarness } from '../../conformance/onedrive-harness.js';
import { SOURCE_CHUNK, request, seededBytes, truncatedSource } from '../../conformance/sources.js';
import { tempDir } from '../../helpers/fs.js';
import { raw } from '../../emulators/onedrive/raw.js';
import { ResumeStore, fileRequest, fragmentPuts, rangeStart, seededFile } from './helpers.js';

const FRAG = DEFAULT_FRAGMENT_SIZE;

let h: OnedriveHarness | undefined;
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
  for (const c of cleanups) await c();
  cleanups = [];
});

async function harness(...args: Parameters<typeof onedriveHarness>): Promise<OnedriveHarness> {
  h = await onedriveHarness(...args);
  return h;
}

async function scratch(): Promise<string> {
  const { dir, cleanup } = await tempDir('stagecoach-od-src-');
  cleanups.push(cleanup);
  return dir;
}

async function rejection(p: Promise<unknown>): Promise<TargetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, 'the put rejects').toBeInstanceOf(TargetError);
  return err as TargetError;
}

/**
 * open() for a source that yields `bytes` in 64 KiB chunks, one per read and nothing ahead, and
 * `extra` more bytes only when read again after the last of them: a file that grew exactly at
 * the stated size, which only a check for the end catches before the last fragment commits.
 */
function lateGrowth(bytes: Buffer, extra: number): () => Readable {
  return () => {
    let off = 0;
    let grown = false;
    return new Readable({
      highWaterMark: 1,
      read() {
        if (off < bytes.length) {
          this.push(bytes.subarray(off, off + SOURCE_CHUNK));
          off += SOURCE_CHUNK;
        } else if (!grown) {
          grown = true;
          // Pushed later, not within this read: it must not join the last chunk in one read.
          process.nextTick(() => this.push(seededBytes(99, extra)));
        } else this.push(null);
      },
    });
  };
}

/** A 201 answer with an item whose quickXorHash is not the one of the bytes sent. */
function lyingItem(size: number): { kind: 'status'; status: number; body: unknown } {
  return { kind: 'status', status: 201, body: { id: 'FAKE!1', name: 'x', size, file: { hashes: { quickXorHash: quickXorHash(Buffer.from('something else')) } } } };
}

describe('upload paths', () => {
  it('a small file is one PUT …:/name:/content with conflictBehavior=replace', async () => {
    const { target, emu } = await harness();
    const since = emu.server.log.length;
    const bytes = seededBytes(1, 100_000);
    const res = await target.put(request('docs/a.bin', bytes));
    const puts = emu.server.log.slice(since).filter((r) => r.method === 'PUT');
    expect(puts.map((r) => [r.host, r.url.split('?')[0], new URL(r.url, 'http://x').searchParams.get('@microsoft.graph.conflictBehavior'), r.status])).toEqual([
      ['graph.microsoft.com', `/v1.0/me/drive/items/${puts[0]!.url.split('/')[5]!.split(':')[0]}:/a.bin:/content`, 'replace', 201],
    ]);
    expect(emu.server.log.slice(since).some((r) => r.url.includes('createUploadSession'))).toBe(false);
    expect(res).toMatchObject({ size: bytes.length, hash: quickXorHash(bytes), hashKind: 'quickxor', unchanged: false, bytesSent: bytes.length });
    expect((await emu.readFile('Stagecoach/docs/a.bin'))!.equals(bytes)).toBe(true);
  });

  it('a large file goes through an upload session: 10 × 320 KiB fragments from disk to the upload host, without Authorization', async () => {
    const { target, emu } = await harness();
    const dir = await scratch();
    const size = 2 * FRAG + 12_345;
    const { file, bytes } = await seededFile(dir, 'big.bin', 3, size);
    const store = new ResumeStore();
    const since = emu.server.log.length;
    const res = await target.put(fileRequest('big/big.bin', file, size, { store }));
    expect(FRAG).toBe(10 * FRAGMENT_UNIT);
    const log = emu.server.log.slice(since);
    const session = log.filter((r) => r.url.includes('createUploadSession'));
    expect(session.map((r) => [r.method, r.host, r.status])).toEqual([['POST', 'graph.microsoft.com', 200]]);
    const puts = fragmentPuts(log);
    // The emulator answers 401 to an upload URL that carries Authorization: these went without.
    expect(puts.map((r) => [r.host, r.contentRange, r.bodyBytes, r.status])).toEqual([
      ['api.onedrive.com', `bytes 0-${FRAG - 1}/${size}`, FRAG, 202],
      ['api.onedrive.com', `bytes ${FRAG}-${2 * FRAG - 1}/${size}`, FRAG, 202],
      ['api.onedrive.com', `bytes ${2 * FRAG}-${size - 1}/${size}`, 12_345, 201],
    ]);
    expect(res).toMatchObject({ size, hash: quickXorHash(bytes), unchanged: false, bytesSent: size });
    // The handle was saved when the session existed, and cleared when the file was in place.
    expect(store.history).toHaveLength(2);
    expect(JSON.parse(store.history[0]!)).toMatchObject({ v: 1, size, uploadUrl: expect.stringMatching(/^https:\/\/api\.onedrive\.com\/rup\//) });
    expect(store.history[1]).toBeNull();
    expect((await emu.readFile('Stagecoach/big/big.bin'))!.equals(bytes)).toBe(true);
  });

  it('4 MiB exactly is one simple PUT; one byte more takes an upload session', async () => {
    const { target, emu } = await harness();
    const since = emu.server.log.length;
    await target.put(request('t/at.bin', seededBytes(9, SIMPLE_UPLOAD_MAX)));
    const mid = emu.server.log.length;
    await target.put(request('t/over.bin', seededBytes(10, SIMPLE_UPLOAD_MAX + 1)));
    const kinds = (from: number, to?: number): string[] =>
      emu.server.log.slice(from, to).filter((r) => r.method !== 'GET').map((r) => (r.url.includes('createUploadSession') ? 'session' : r.url.includes(':/content') ? 'simple' : /^\/rup\//.test(r.url) ? 'fragment' : 'other'));
    expect(kinds(since, mid).filter((k) => k !== 'other')).toEqual(['simple']);
    expect(kinds(mid)).toEqual(['session', 'fragment', 'fragment']);
  });

  it('a changed file replaces the same item (same id), small and large, whatever the size', async () => {
    const { target, emu } = await harness();
    const dir = await scratch();
    const ids: string[] = [];
    for (const [seed, size] of [
      [1, 1000],
      [2, 1000],
      [3, 5000],
    ] as const) {
      ids.push((await target.put(request('v/small.bin', seededBytes(seed, size)))).remoteId);
    }
    for (const [seed, size] of [
      [4, 2 * FRAG + 10],
      [5, 2 * FRAG + 10],
      [6, 3 * FRAG + 99],
    ] as const) {
      const { file } = await seededFile(dir, `l${seed}`, seed, size);
      ids.push((await target.put(fileRequest('v/large.bin', file, size))).remoteId);
    }
    expect(new Set(ids.slice(0, 3)).size).toBe(1);
    expect(new Set(ids.slice(3)).size).toBe(1);
    const files = (await emu.tree()).filter((f) => f.path.startsWith('/Stagecoach/v/')).map((f) => [f.path, f.size]);
    expect(files.sort()).toEqual([
      ['/Stagecoach/v/large.bin', 3 * FRAG + 99],
      ['/Stagecoach/v/small.bin', 5000],
    ]);
    expect((await emu.readFile('Stagecoach/v/large.bin'))!.equals(seededBytes(6, 3 * FRAG + 99))).toBe(true);
    expect(emu.server.log.filter((r) => r.url.includes('createUploadSession')).length).toBe(3);
  });

  it('an identical re-put sends nothing: no PUT, no session (small and large)', async () => {
    const { target, emu } = await harness();
    const dir = await scratch();
    const small = seededBytes(7, 3000);
    const { file, bytes } = await seededFile(dir, 'same.bin', 8, 2 * FRAG + 1);
    const first = [await target.put(request('same/s.bin', small)), await target.put(fileRequest('same/l.bin', file, bytes.length))];
    const since = emu.server.log.length;
    const store = new ResumeStore();
    store.handle = 'a handle left over by a cut attempt';
    const again = [await target.put(request('same/s.bin', small)), await target.put(fileRequest('same/l.bin', file, bytes.length, { store }))];
    const log = emu.server.log.slice(since);
    expect(log.filter((r) => r.method !== 'GET')).toEqual([]);
    for (let i = 0; i < 2; i++) expect(again[i]).toMatchObject({ unchanged: true, bytesSent: 0, hash: first[i]!.hash, remoteId: first[i]!.remoteId });
    expect(store.handle).toBeNull();
  });
});

describe('resume', () => {
  async function cutUpload(hh: OnedriveHarness, size: number, cutAfterFragments: number): Promise<{ file: string; bytes: Buffer; store: ResumeStore; err: unknown }> {
    const dir = await scratch();
    const { file, bytes } = await seededFile(dir, 'cut.bin', 21, size);
    const store = new ResumeStore();
    const ac = new AbortController();
    // The daemon dies once OneDrive answered `cutAfterFragments` fragments, at the next pull from
    // the source: the target reads a fragment ahead of what it sends, so a byte count is no point
    // in the upload, but that pull comes before the next fragment is sent.
    const answered = (): number => fragmentPuts(hh.emu.server.log).filter((r) => r.status !== 0).length;
    const cutAfter = { when: () => answered() >= cutAfterFragments, cut: () => ac.abort() };
    const req = fileRequest('resume/cut.bin', file, size, { store, signal: ac.signal, cutAfter });
    const err = await hh.target.put(req).then(
      () => null,
      (e: unknown) => e,
    );
    return { file, bytes, store, err };
  }

  it('a cut upload resumes after a restart from the saved session: earlier fragments are not sent again', async () => {
    const hh = await harness();
    const size = 6 * FRAG + 4321;
    const { file, bytes, store, err } = await cutUpload(hh, size, 3);
    expect(hh.target.classify(err).kind).toBe('retry');
    expect(store.handle).not.toBeNull();
    const [session] = hh.emu.uploadSessions();
    expect(session!.received).toBe(3 * FRAG);
    expect(await hh.emu.readFile('Stagecoach/resume/cut.bin')).toBeNull();

    // A restarted daemon: a new target on the same state, the handle from the store.
    const restarted = hh.reopen();
    const since = hh.emu.server.log.length;
    const pulled = { bytes: 0, opens: [] as number[] };
    const res: PutResult = await restarted.put(fileRequest('resume/cut.bin', file, size, { store, pulled }));
    const log = hh.emu.server.log.slice(since);
    expect(log.some((r) => r.url.includes('createUploadSession')), 'no new session').toBe(false);
    expect(log.some((r) => r.method === 'GET' && /^\/rup\//.test(r.url)), 'the session status was asked').toBe(true);
    const puts = fragmentPuts(log);
    expect(puts.map(rangeStart)).toEqual([3 * FRAG, 4 * FRAG, 5 * FRAG, 6 * FRAG]);
    expect(res.bytesSent).toBe(size - 3 * FRAG);
    // The whole file was read (the prefix hashed, not sent): the hash covers every byte.
    expect(pulled.bytes).toBe(size);
    expect(res.hash).toBe(quickXorHash(bytes));
    expect((await hh.emu.readFile('Stagecoach/resume/cut.bin'))!.equals(bytes)).toBe(true);
    expect(store.handle).toBeNull();
    expect(hh.emu.uploadSessions()).toEqual([]);
  });

  it('a saved session that expired meanwhile starts over', async () => {
    const hh = await harness();
    const size = 3 * FRAG + 1;
    const { file, bytes, store } = await cutUpload(hh, size, 1);
    expect(store.handle).not.toBeNull();
    hh.emu.expireUploadSessions();
    const since = hh.emu.server.log.length;
    const res = await hh.reopen().put(fileRequest('resume/cut.bin', file, size, { store }));
    const log = hh.emu.server.log.slice(since);
    expect(log.filter((r) => r.url.includes('createUploadSession')).length).toBe(1);
    expect(fragmentPuts(log).map(rangeStart)).toEqual([0, FRAG, 2 * FRAG, 3 * FRAG]);
    expect(res.bytesSent).toBe(size);
    expect((await hh.emu.readFile('Stagecoach/resume/cut.bin'))!.equals(bytes)).toBe(true);
  });

  it('a saved session made for another size is cancelled and the upload starts over', async () => {
    const hh = await harness();
    const size = 3 * FRAG + 1;
    const { store } = await cutUpload(hh, size, 1);
    const old = JSON.parse(store.handle!) as { uploadUrl: string };
    const dir = await scratch();
    const grown = await seededFile(dir, 'grown.bin', 22, size + 100);
    const since = hh.emu.server.log.length;
    await hh.reopen().put(fileRequest('resume/cut.bin', grown.file, size + 100, { store }));
    const log = hh.emu.server.log.slice(since);
    expect(log.filter((r) => r.method === 'DELETE').map((r) => r.url)).toEqual([new URL(old.uploadUrl).pathname]);
    expect(fragmentPuts(log).map(rangeStart)[0]).toBe(0);
    expect((await hh.emu.readFile('Stagecoach/resume/cut.bin'))!.equals(grown.bytes)).toBe(true);
  });

  it('a fragment cut by a connection reset fails the attempt (retry) and keeps the session; the next attempt continues it', async () => {
    const hh = await harness();
    const dir = await scratch();
    const size = 2 * FRAG + 5;
    const { file, bytes } = await seededFile(dir, 'reset.bin', 23, size);
    const store = new ResumeStore();
    hh.emu.server.setFaults({ queue: [{ match: /^\/rup\//, fault: { kind: 'reset' } }] });
    const err = await rejection(hh.target.put(fileRequest('r/reset.bin', file, size, { store })));
    expect(hh.target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(hh.target.classify(err).reason).toMatch(/^network: /);
    expect(store.handle).not.toBeNull();
    const since = hh.emu.server.log.length;
    const res = await hh.target.put(fileRequest('r/reset.bin', file, size, { store }));
    const log = hh.emu.server.log.slice(since);
    expect(log.some((r) => r.url.includes('createUploadSession'))).toBe(false);
    expect(fragmentPuts(log).map(rangeStart)).toEqual([0, FRAG, 2 * FRAG]);
    expect(res.hash).toBe(quickXorHash(bytes));
  });

  it('a 416 on a fragment (a range the service already has): the status is asked and the upload goes on', async () => {
    const hh = await harness();
    const dir = await scratch();
    const size = 2 * FRAG + 5;
    const { file, bytes } = await seededFile(dir, 'r416.bin', 24, size);
    hh.emu.server.setFaults({
      queue: [{ match: /^\/rup\//, fault: { kind: 'status', status: 416, body: { error: { code: 'invalidRange', message: 'Uploaded fragment overlaps with existing data.', innerError: { code: 'fragmentOverlap' } } } } }],
    });
    const since = hh.emu.server.log.length;
    const res = await hh.target.put(fileRequest('r/r416.bin', file, size));
    const log = hh.emu.server.log.slice(since).filter((r) => /^\/rup\//.test(r.url));
    expect(log.map((r) => [r.method, r.status])).toEqual([
      ['PUT', 416],
      ['GET', 200],
      ['PUT', 202],
      ['PUT', 202],
      ['PUT', 201],
    ]);
    expect(res.hash).toBe(quickXorHash(bytes));
  });
});

describe('verification', () => {
  it('simple upload: a stored hash that differs from the bytes sent fails the attempt as retry; the next one passes', async () => {
    const { target, emu } = await harness();
    const bytes = seededBytes(30, 2000);
    emu.server.setFaults({ queue: [{ match: /:\/content$/, fault: lyingItem(bytes.length) }] });
    const err = await rejection(target.put(request('h/x.bin', bytes)));
    expect(err.code).toBe('onedrive.hash-mismatch');
    expect(target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(target.classify(err).reason).toMatch(/^hash-mismatch: OneDrive's quickXorHash of "h\/x.bin" is /);
    const res = await target.put(request('h/x.bin', bytes));
    expect(res.hash).toBe(quickXorHash(bytes));
  });

  it('upload session: a hash mismatch at the last fragment is a retry and clears the session', async () => {
    const dir = await scratch();
    // One fragment holds the whole file, so the first fragment PUT is the one that commits.
    const hh = await harness({ internals: { fragmentSize: 15 * FRAGMENT_UNIT } });
    const size = 15 * FRAGMENT_UNIT - 1;
    const { file, bytes } = await seededFile(dir, 'h.bin', 31, size);
    hh.emu.server.setFaults({ queue: [{ match: /^\/rup\//, fault: lyingItem(size) }] });
    const store = new ResumeStore();
    const err = await rejection(hh.target.put(fileRequest('h/big.bin', file, size, { store })));
    expect(err.code).toBe('onedrive.hash-mismatch');
    expect(hh.target.classify(err).kind).toBe('retry');
    expect(store.history.at(-1)).toBeNull();
    const res = await hh.target.put(fileRequest('h/big.bin', file, size, { store }));
    expect(res.hash).toBe(quickXorHash(bytes));
  });

  it('a large source that grows or shrinks while read fails with ShortReadError; nothing is committed, the session is dropped', async () => {
    const hh = await harness();
    // A whole number of the source's 64 KiB chunks: the extra bytes come in a chunk of their own,
    // after the last fragment's bytes, so only a check for the end catches them in time.
    const size = 2 * FRAG + 65_536;
    expect(size % SOURCE_CHUNK).toBe(0);
    for (const [name, actual] of [
      ['grew.bin', size + 5000],
      ['shrank.bin', size - 5000],
    ] as const) {
      const bytes = seededBytes(33, Math.min(size, actual));
      const open = actual > size ? lateGrowth(bytes, actual - size) : truncatedSource(seededBytes(33, size), actual);
      const store = new ResumeStore();
      const req = { ...request(`g/${name}`, bytes, { size, open }), resume: store.handle, saveResume: store.save };
      const since = hh.emu.server.log.length;
      const err = await hh.target.put(req).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ShortReadError);
      expect(hh.target.classify(err).kind).toBe('fail-item');
      expect(await hh.emu.readFile(`Stagecoach/g/${name}`)).toBeNull();
      // No fragment reached the end of the file, and the session was cancelled.
      expect(fragmentPuts(hh.emu.server.log, since).every((r) => r.status === 202)).toBe(true);
      expect(hh.emu.server.log.slice(since).some((r) => r.method === 'DELETE')).toBe(true);
      expect(store.handle).toBeNull();
    }
    expect(hh.emu.uploadSessions()).toEqual([]);
  });

  it('a stored size that differs is a retry too', async () => {
    const { target, emu } = await harness();
    const bytes = seededBytes(32, 2000);
    emu.server.setFaults({ queue: [{ match: /:\/content$/, fault: { kind: 'status', status: 201, body: { id: 'F!1', name: 'x', size: 1999, file: { hashes: { quickXorHash: quickXorHash(bytes) } } } } }] });
    const err = await rejection(target.put(request('h/y.bin', bytes)));
    expect(err.code).toBe('onedrive.size-mismatch');
    expect(err.kind).toBe('retry');
  });
});

describe('errors', () => {
  it('429 with Retry-After on a Graph call: retry with that wait', async () => {
    const { target, emu } = await harness();
    emu.server.setFaults({ queue: [{ match: /^\/v1\.0\//, fault: { kind: 'status', status: 429, retryAfterS: 7 } }] });
    const err = await rejection(target.put(request('t/a.bin', seededBytes(40, 100))));
    expect(err.kind).toBe('retry');
    expect(err.retryAfterMs).toBe(7000);
    expect(target.classify(err)).toMatchObject({ kind: 'retry', retryAfterMs: 7000 });
    expect(target.classify(err).reason).toMatch(/^rate-limited: OneDrive answered 429 activityLimitReached/);
  });

  it('503 with Retry-After on an upload fragment: retry with that wait', async () => {
    const hh = await harness();
    const dir = await scratch();
    const { file } = await seededFile(dir, 'f.bin', 41, 2 * FRAG + 1);
    hh.emu.server.setFaults({ queue: [{ match: /^\/rup\//, fault: { kind: 'status', status: 503, retryAfterS: 3 } }] });
    const err = await rejection(hh.target.put(fileRequest('t/f.bin', file, 2 * FRAG + 1)));
    expect(hh.target.classify(err)).toMatchObject({ kind: 'retry', retryAfterMs: 3000 });
  });

  it('a full drive (507 quotaLimitReached) is fatal', async () => {
    const { target, emu } = await harness();
    await target.put(request('q/first.bin', seededBytes(42, 100)));
    emu.setQuota(1000);
    const err = await rejection(target.put(request('q/second.bin', seededBytes(43, 5000))));
    expect(target.classify(err).kind).toBe('fatal');
    expect(err.code).toBe('onedrive.storage-full');
    expect(err.message).toMatch(/free space on the OneDrive/);
  });

  it('a 500 is a retry', async () => {
    const { target, emu } = await harness();
    emu.server.setFaults({ queue: [{ match: /^\/v1\.0\//, fault: { kind: 'status', status: 500 } }] });
    const err = await rejection(target.put(request('t/b.bin', seededBytes(44, 100))));
    expect(target.classify(err).kind).toBe('retry');
    expect(err.code).toBe('onedrive.server-error');
  });

  it('a folder deleted behind the cache: the put fails retry, the next one makes the folder again', async () => {
    const { target, emu } = await harness();
    await target.put(request('gone/a.bin', seededBytes(45, 100)));
    const del = await raw(emu.url, 'DELETE', '/v1.0/me/drive/root:/Stagecoach/gone', { token: emu.issueAccessToken() });
    expect(del.status).toBe(204);
    const err = await rejection(target.put(request('gone/b.bin', seededBytes(46, 100))));
    expect(target.classify(err).kind).toBe('retry');
    await target.put(request('gone/b.bin', seededBytes(46, 100)));
    expect(await emu.readFile('Stagecoach/gone/b.bin')).not.toBeNull();
  });
});

describe('names and folders', () => {
  it('forbidden characters are stored as look-alikes; reserved names fail the item naming the rule, storing nothing', async () => {
    const { target, emu } = await harness();
    await target.put(request('n/a:b?.txt', seededBytes(50, 10)));
    expect(await emu.readFile('Stagecoach/n/a\uFF1Ab\uFF1F.txt')).not.toBeNull();
    for (const [path, rule] of [
      ['n/CON', 'reserved-name'],
      ['n/desktop.ini', 'reserved-name'],
      ['n/my_vti_x', 'reserved-vti'],
      [`n/${'d'.repeat(200)}/${'e'.repeat(200)}`, 'path-too-long'],
    ] as const) {
      const err = await rejection(target.put(request(path, seededBytes(51, 10))));
      expect(err.kind).toBe('fail-item');
      expect(target.classify(err).reason).toMatch(new RegExp(`^${rule}: `));
    }
    expect((await emu.tree()).filter((f) => f.path.startsWith('/Stagecoach/n/')).map((f) => f.path)).toEqual(['/Stagecoach/n/a\uFF1Ab\uFF1F.txt']);
  });

  it('a folder where the file goes, or a file where a folder is needed: fail-item path-blocked', async () => {
    const { target, emu } = await harness();
    emu.seedFolder('Stagecoach/p/f.bin');
    await emu.seedFile('Stagecoach/q', Buffer.from('a file'));
    for (const path of ['p/f.bin', 'q/x.bin']) {
      const err = await rejection(target.put(request(path, seededBytes(52, 10))));
      expect(err.kind).toBe('fail-item');
      expect(err.code).toBe('onedrive.path-blocked');
    }
  });

  it('each new folder is created once with conflictBehavior fail, however many puts go into it at once', async () => {
    const { target, emu } = await harness();
    await Promise.all(Array.from({ length: 6 }, (_, i) => target.put(request(`f1/f2/x${i}.bin`, seededBytes(60 + i, 100)))));
    const posts = emu.server.log.filter((r) => r.method === 'POST' && r.url.endsWith('/children'));
    expect(posts.map((r) => r.status)).toEqual([201, 201, 201]);
    // A second target (a restart) finds the folder with one GET by path, creating nothing.
    const since = emu.server.log.length;
    await h!.reopen().put(request('f1/f2/y.bin', seededBytes(70, 100)));
    expect(emu.server.log.slice(since).filter((r) => r.method === 'POST')).toEqual([]);
  });

  it('a folder made meanwhile by someone else (409 on create) is used, not duplicated', async () => {
    const { target, emu } = await harness();
    // The folder appears after the target looked it up and before it creates it.
    emu.server.setFaults({ queue: [{ match: /\/root:\/Stagecoach\/race$/, fault: { kind: 'status', status: 404, body: { error: { code: 'itemNotFound', message: 'not found' } } } }] });
    emu.seedFolder('Stagecoach/race');
    await target.put(request('race/x.bin', seededBytes(71, 10)));
    // The remote root exists (seeded) and is found by its lookup; "race" appeared after its
    // lookup: its create answers 409 and is read back.
    const posts = emu.server.log.filter((r) => r.method === 'POST' && r.url.endsWith('/children'));
    expect(posts.map((r) => r.status)).toEqual([409]);
    expect((await emu.tree()).map((f) => f.path)).toEqual(['/Stagecoach/race/x.bin']);
  });

  it('stat: a file gives size and quickXorHash, a folder or nothing gives null', async () => {
    const { target } = await harness();
    const bytes = seededBytes(72, 777);
    const put = await target.put(request('s/Datei:1.bin', bytes));
    expect(await target.stat('s/datei:1.BIN')).toEqual({ remoteId: put.remoteId, size: 777, hash: quickXorHash(bytes) });
    expect(await target.stat('s')).toBeNull();
    expect(await target.stat('s/none.bin')).toBeNull();
  });

  it('ensureFolder gives the folder id; the remote root itself with ""', async () => {
    const { target, emu } = await harness();
    const id = await target.ensureFolder('e/f');
    const tree = await raw(emu.url, 'GET', '/v1.0/me/drive/root:/Stagecoach/e/f', { token: emu.issueAccessToken() });
    expect(tree.json.id).toBe(id);
    expect(await target.ensureFolder('')).toBe((await raw(emu.url, 'GET', '/v1.0/me/drive/root:/Stagecoach', { token: emu.issueAccessToken() })).json.id);
  });

  it('check: signed in, the drive and its free space, where the root is', async () => {
    const { target } = await harness();
    expect(await target.check()).toMatch(/^signed in to OneDrive as tester@outlook\.com \(delegated, token cache .*msal-token-cache\.json\); personal [0-9a-f]+, 5\.0 GiB free; remote root "Stagecoach" will be created on the first upload$/);
  });

  it('close: waits for puts in flight, then refuses', async () => {
    const { target } = await harness();
    const p = target.put(request('c/a.bin', seededBytes(73, 100)));
    await target.close();
    await expect(p).resolves.toMatchObject({ unchanged: false });
    const err = await rejection(target.put(request('c/b.bin', seededBytes(74, 100))));
    expect(err.code).toBe('onedrive.closed');
  });
});
