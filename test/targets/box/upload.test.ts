/**
 * The Box target's chunked path against the emulator, with small sessions so it stays fast: the
 * emulator takes sessions from 1,000,000 bytes with 256 KiB parts, and the target sends files
 * above 1,000,000 bytes through them.
 */
import { Readable } from 'node:stream';
import { afterEach, describe, expect, test } from 'vitest';
import { ShortReadError, TargetError } from '../../../src/errors.js';
import { hashBuffer } from '../../../src/archive/hash.js';
import type { PutRequest } from '../../../src/targets/target.js';
import type { BoxInternals } from '../../../src/targets/box/api-types.js';
import { boxHarness, type BoxHarness } from '../../conformance/box-harness.js';
import { InjectedSourceError, request, seededBytes } from '../../conformance/sources.js';

const PART = 256 * 1024;
const MIN_SESSION = 1_000_000;
const SIZE = 12 * PART + 1234; // 13 parts, the last one short

let h: BoxHarness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

async function harness(internals: BoxInternals = {}): Promise<BoxHarness> {
  h = await boxHarness({ emulator: { minChunkedSize: MIN_SESSION, partSize: PART }, internals: { simpleUploadMax: MIN_SESSION, ...internals } });
  return h;
}

/** A request whose resume handle lives in `slot`, as the store keeps it. */
function resumable(path: string, bytes: Buffer, slot: { handle: string | null; saves: Array<string | null> }, open?: PutRequest['open']): PutRequest {
  const req = request(path, bytes, open ? { open } : {});
  req.resume = slot.handle;
  req.saveResume = async (hd) => {
    slot.handle = hd;
    slot.saves.push(hd);
  };
  return req;
}

/** open() yielding `bytes` in 64 KiB chunks, failing once `failAt` bytes have been handed out. */
function cutAt(bytes: Buffer, failAt: number): PutRequest['open'] {
  return (start = 0) =>
    Readable.from(
      (function* () {
        for (let off = start; off < bytes.length; off += 65536) {
          if (off >= failAt) throw new InjectedSourceError();
          yield bytes.subarray(off, Math.min(bytes.length, off + 65536));
        }
      })(),
      { objectMode: false },
    );
}

const partPuts = (hh: BoxHarness, from = 0) =>
  hh.emu.server.log.slice(from).filter((r) => r.method === 'PUT' && /\/upload_sessions\/[0-9a-f]+$/i.test(r.url));

describe('box chunked uploads', () => {
  test('a large file goes through an upload session, part by part, and is verified', async () => {
    const hh = await harness();
    const bytes = seededBytes(1, SIZE);
    const res = await hh.target.put(request('big/file.bin', bytes));
    expect(res).toMatchObject({ size: SIZE, hash: hashBuffer('sha1', bytes), hashKind: 'sha1', unchanged: false, bytesSent: SIZE });
    const puts = partPuts(hh);
    expect(puts).toHaveLength(13);
    expect(puts.every((p) => p.status === 200)).toBe(true);
    expect(hh.emu.server.requests(/\/files\/content/)).toHaveLength(0);
    expect((await hh.readBack('big/file.bin'))!.equals(bytes)).toBe(true);
    expect(hh.emu.uploadSessions()).toHaveLength(0);
  });

  test('the source is read one part ahead of the part in flight: never more than two parts ahead of what Box has received', async () => {
    const hh = await harness();
    const bytes = seededBytes(2, SIZE);
    let maxLead = 0;
    const received = (): number => partPuts(hh).reduce((a, r) => a + (r.status === 200 ? r.bodyBytes : 0), 0);
    const open: PutRequest['open'] = (start = 0) =>
      Readable.from(
        (function* () {
          for (let off = start; off < bytes.length; off += 65536) {
            maxLead = Math.max(maxLead, off - received());
            yield bytes.subarray(off, Math.min(bytes.length, off + 65536));
          }
        })(),
        { objectMode: false },
      );
    await hh.target.put(request('bounded/file.bin', bytes, { open }));
    // The part in flight, the part read (and hashed) ahead of it, and the one 64 KiB piece the
    // stream buffers: the next part was read while the one before it was sent.
    expect(maxLead).toBeLessThanOrEqual(2 * PART + 65536);
    expect(maxLead).toBeGreaterThan(PART + 65536);
  });

  test('a cut upload resumes from the saved session: the parts Box holds are not sent again', async () => {
    const hh = await harness();
    const bytes = seededBytes(3, SIZE);
    const slot = { handle: null as string | null, saves: [] as Array<string | null> };
    const cut = 5 * PART + 100;
    const err = await hh.target.put(resumable('resume/file.bin', bytes, slot, cutAt(bytes, cut))).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TargetError);
    expect(hh.target.classify(err).kind).toBe('retry');
    expect(slot.handle, 'the session is saved as the resume handle').not.toBeNull();
    const first = partPuts(hh).filter((r) => r.status === 200).map((r) => r.contentRange);
    expect(first).toHaveLength(5);
    expect(await hh.readBack('resume/file.bin')).toBeNull();

    // A restarted daemon: a new target instance, the handle from the store.
    const again = hh.reopen();
    const mark = hh.emu.server.log.length;
    const res = await again.put(resumable('resume/file.bin', bytes, slot));
    expect(res.hash).toBe(hashBuffer('sha1', bytes));
    expect(res.bytesSent).toBe(SIZE - 5 * PART);
    const second = partPuts(hh, mark).map((r) => r.contentRange);
    expect(second).toHaveLength(8);
    for (const range of first) expect(second, `${range} is not sent again`).not.toContain(range);
    expect(hh.emu.server.requests(/\/parts/).length).toBeGreaterThan(0);
    expect(slot.handle, 'the handle is cleared on success').toBeNull();
    expect((await hh.readBack('resume/file.bin'))!.equals(bytes)).toBe(true);
  });

  test('a saved session that is gone (expired, removed) starts over', async () => {
    const hh = await harness();
    const bytes = seededBytes(4, SIZE);
    const slot = { handle: null as string | null, saves: [] as Array<string | null> };
    await hh.target.put(resumable('gone/file.bin', bytes, slot, cutAt(bytes, 3 * PART))).catch(() => undefined);
    const saved = JSON.parse(slot.handle!) as { sessionId: string; endpoints: Record<string, string> };
    const bogus = 'f'.repeat(saved.sessionId.length);
    slot.handle = JSON.stringify({ ...saved, sessionId: bogus, endpoints: Object.fromEntries(Object.entries(saved.endpoints).map(([k, v]) => [k, v.replace(saved.sessionId, bogus)])) });
    const mark = hh.emu.server.log.length;
    const res = await hh.target.put(resumable('gone/file.bin', bytes, slot));
    expect(res.bytesSent).toBe(SIZE);
    expect(partPuts(hh, mark)).toHaveLength(13);
    expect((await hh.readBack('gone/file.bin'))!.equals(bytes)).toBe(true);
  });

  test('a file changed since the session began is not committed from the old parts', async () => {
    const hh = await harness();
    const bytes = seededBytes(5, SIZE);
    const slot = { handle: null as string | null, saves: [] as Array<string | null> };
    await hh.target.put(resumable('changed/file.bin', bytes, slot, cutAt(bytes, 3 * PART))).catch(() => undefined);
    const changed = Buffer.from(bytes);
    changed[10] = changed[10]! ^ 0xff; // inside part 1, which Box already holds
    const err = await hh.target.put(resumable('changed/file.bin', changed, slot)).then(() => null, (e: unknown) => e);
    expect(hh.target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(hh.target.classify(err).reason).toMatch(/^session-stale: /);
    expect(slot.handle).toBeNull();
    const res = await hh.target.put(resumable('changed/file.bin', changed, slot));
    expect(res.hash).toBe(hashBuffer('sha1', changed));
    expect((await hh.readBack('changed/file.bin'))!.equals(changed)).toBe(true);
  });

  test('a commit answered 202 waits Retry-After and commits the same session again', async () => {
    const waits: number[] = [];
    const hh = await harness({ sleep: async (ms) => void waits.push(ms) });
    hh.emu.commitAccepted(2, 3);
    const bytes = seededBytes(6, SIZE);
    const res = await hh.target.put(request('commit/file.bin', bytes));
    expect(res.hash).toBe(hashBuffer('sha1', bytes));
    expect(waits).toEqual([3000, 3000]);
    const commits = hh.emu.server.requests(/\/commit$/);
    expect(commits.map((c) => c.status)).toEqual([202, 202, 201]);
    expect(new Set(commits.map((c) => c.url)).size, 'one session').toBe(1);
    expect(partPuts(hh)).toHaveLength(13);
  });

  test('commits answered 202 past the bound: retry with Retry-After, the session kept, then committed without re-sending parts', async () => {
    const waits: number[] = [];
    const hh = await harness({ sleep: async (ms) => void waits.push(ms), maxCommitPolls: 2 });
    hh.emu.commitAccepted(3, 5);
    const bytes = seededBytes(7, SIZE);
    const slot = { handle: null as string | null, saves: [] as Array<string | null> };
    const err = await hh.target.put(resumable('pending/file.bin', bytes, slot)).then(() => null, (e: unknown) => e);
    expect(hh.target.classify(err)).toMatchObject({ kind: 'retry', retryAfterMs: 5000 });
    expect(hh.target.classify(err).reason).toMatch(/^commit-pending: /);
    expect(slot.handle).not.toBeNull();
    const mark = hh.emu.server.log.length;
    const res = await hh.target.put(resumable('pending/file.bin', bytes, slot));
    expect(res.bytesSent).toBe(0);
    expect(partPuts(hh, mark)).toHaveLength(0);
    expect((await hh.readBack('pending/file.bin'))!.equals(bytes)).toBe(true);
  });

  test('a changed large file becomes a new version of the same Box file', async () => {
    const hh = await harness();
    const a = seededBytes(8, SIZE);
    const b = seededBytes(9, SIZE + 5);
    const r1 = await hh.target.put(request('ver/big.bin', a));
    const r2 = await hh.target.put(request('ver/big.bin', b));
    expect(r2.remoteId).toBe(r1.remoteId);
    expect(hh.emu.server.requests(/\/files\/\d+\/upload_sessions$/)).toHaveLength(1);
    const node = hh.emu.model.resolve('/Stagecoach/ver/big.bin');
    expect(node?.kind === 'file' ? node.versions.length : 0).toBe(2);
    expect((await hh.readBack('ver/big.bin'))!.equals(b)).toBe(true);
  });

  test('a large file that appeared under the name meanwhile gets a new version (409 on the session)', async () => {
    const hh = await harness();
    await hh.target.put(request('race/other.bin', seededBytes(10, 100)));
    const theirs = await hh.emu.putFile('/Stagecoach/race/big.bin', seededBytes(11, 500));
    const bytes = seededBytes(12, SIZE);
    const res = await hh.target.put(request('race/big.bin', bytes));
    expect(res.remoteId).toBe(theirs);
    expect((await hh.readBack('race/big.bin'))!.equals(bytes)).toBe(true);
    expect((await hh.listAll()).filter((p) => p.startsWith('race/'))).toEqual(['race/big.bin', 'race/other.bin']);
  });

  test('a source shorter than stated fails with ShortReadError, commits nothing and drops the session', async () => {
    const hh = await harness();
    const bytes = seededBytes(13, SIZE);
    const slot = { handle: null as string | null, saves: [] as Array<string | null> };
    const short = bytes.subarray(0, SIZE - 2000);
    const err = await hh.target.put(resumable('short/file.bin', bytes, slot, (s = 0) => Readable.from([short.subarray(s)]))).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ShortReadError);
    expect(hh.target.classify(err).kind).toBe('fail-item');
    expect(slot.handle).toBeNull();
    expect(hh.emu.server.requests(/\/commit$/)).toHaveLength(0);
    expect(hh.emu.uploadSessions()).toHaveLength(0);
  });

  test('a commit answering a wrong sha1 is a failed attempt (retry), and the next attempt stores the right bytes', async () => {
    const hh = await harness();
    const bytes = seededBytes(14, SIZE);
    hh.emu.server.faults.queue.push({
      match: /\/commit$/,
      fault: { kind: 'status', status: 201, body: { total_count: 1, entries: [{ type: 'file', id: '999', name: 'file.bin', size: SIZE, sha1: '0'.repeat(40) }] } },
    });
    const err = await hh.target.put(request('mismatch/file.bin', bytes)).then(() => null, (e: unknown) => e);
    expect(hh.target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(hh.target.classify(err).reason).toMatch(/^hash-mismatch: /);
    const res = await hh.target.put(request('mismatch/file.bin', bytes));
    expect(res.hash).toBe(hashBuffer('sha1', bytes));
    expect((await hh.readBack('mismatch/file.bin'))!.equals(bytes)).toBe(true);
  });

  test('a part refused with 416 restarts the session on the next attempt', async () => {
    const hh = await harness();
    const bytes = seededBytes(15, SIZE);
    const slot = { handle: null as string | null, saves: [] as Array<string | null> };
    hh.emu.server.faults.queue.push({ match: /\/upload_sessions\/[0-9a-f]+$/i, fault: { kind: 'status', status: 416 } });
    const err = await hh.target.put(resumable('range/file.bin', bytes, slot)).then(() => null, (e: unknown) => e);
    expect(hh.target.classify(err).reason).toMatch(/^session-range: /);
    expect(slot.handle).toBeNull();
    const res = await hh.target.put(resumable('range/file.bin', bytes, slot));
    expect(res.bytesSent).toBe(SIZE);
    expect(hh.emu.server.requests(/\/upload_sessions$/)).toHaveLength(2);
  });
});
