/**
 * The Box target against the emulator: idempotence, versions, conflicts, folders, names, and how
 * Box's refusals are classified.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { TargetError } from '../../../src/errors.js';
import { hashBuffer } from '../../../src/archive/hash.js';
import { boxError } from '../../emulators/box/errors.js';
import { boxHarness, type BoxHarness, type BoxHarnessOptions } from '../../conformance/box-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';

let h: BoxHarness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

async function harness(opts: BoxHarnessOptions = {}): Promise<BoxHarness> {
  h = await boxHarness(opts);
  return h;
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error('expected the put to fail');
    },
    (e: unknown) => e,
  );
}

const uploads = (hh: BoxHarness, from = 0) => hh.emu.server.log.slice(from).filter((r) => r.method === 'POST' && /\/api\/2\.0\/files\//.test(r.url));

describe('box target', () => {
  test('an identical re-put uploads nothing: Box`s sha1 is confirmed, no upload request is made', async () => {
    const hh = await harness();
    const bytes = seededBytes(1, 5000);
    const first = await hh.target.put(request('idem/a.bin', bytes));
    const mark = hh.emu.server.log.length;
    const again = await hh.target.put(request('idem/a.bin', bytes));
    expect(again).toMatchObject({ unchanged: true, bytesSent: 0, remoteId: first.remoteId, hash: hashBuffer('sha1', bytes) });
    expect(uploads(hh, mark)).toHaveLength(0);
    expect(hh.emu.server.requests(/\/2\.0\/files\/\d+\?/).length, 'the verdict is checked against Box').toBeGreaterThan(0);
  });

  test('same size but changed on Box behind the cache: uploaded again, not "unchanged"', async () => {
    const hh = await harness();
    const bytes = seededBytes(2, 5000);
    await hh.target.put(request('stale/a.bin', bytes));
    await hh.emu.putFile('/Stagecoach/stale/a.bin', seededBytes(3, 5000));
    const res = await hh.target.put(request('stale/a.bin', bytes));
    expect(res.unchanged).toBe(false);
    expect((await hh.readBack('stale/a.bin'))!.equals(bytes)).toBe(true);
  });

  test('a changed file becomes a new version of the same Box file (same id), never a copy', async () => {
    const hh = await harness();
    const r1 = await hh.target.put(request('ver/a.txt', seededBytes(4, 100)));
    const r2 = await hh.target.put(request('ver/a.txt', seededBytes(5, 200)));
    const r3 = await hh.target.put(request('VER/A.TXT', seededBytes(6, 300)));
    expect(r2.remoteId).toBe(r1.remoteId);
    expect(r3.remoteId).toBe(r1.remoteId);
    const node = hh.emu.model.resolve('/Stagecoach/ver/a.txt');
    expect(node?.kind === 'file' ? node.versions.length : 0).toBe(3);
    expect(node?.name, 'the stored name keeps its case').toBe('a.txt');
    expect(hh.emu.server.requests(/\/api\/2\.0\/files\/\d+\/content$/)).toHaveLength(2);
    expect(await hh.listAll()).toEqual(['ver/a.txt']);
  });

  test('a file that appeared under the name meanwhile (409 item_name_in_use) gets a new version', async () => {
    const hh = await harness();
    await hh.target.put(request('race/other.bin', seededBytes(7, 10)));
    const theirs = await hh.emu.putFile('/Stagecoach/race/x.bin', seededBytes(8, 50));
    const bytes = seededBytes(9, 70);
    const res = await hh.target.put(request('race/x.bin', bytes));
    expect(res.remoteId).toBe(theirs);
    expect(hh.emu.server.requests(/\/api\/2\.0\/files\/content$/).map((r) => r.status)).toEqual([201, 409]);
    expect((await hh.readBack('race/x.bin'))!.equals(bytes)).toBe(true);
  });

  test('a file removed on Box behind the cache is uploaded as a new file', async () => {
    const hh = await harness();
    const r1 = await hh.target.put(request('gone/x.bin', seededBytes(10, 10)));
    hh.emu.model.remove(r1.remoteId);
    const bytes = seededBytes(11, 20);
    const r2 = await hh.target.put(request('gone/x.bin', bytes));
    expect(r2.remoteId).not.toBe(r1.remoteId);
    expect((await hh.readBack('gone/x.bin'))!.equals(bytes)).toBe(true);
  });

  test('parallel puts into new folders create each folder once', async () => {
    const hh = await harness();
    const files = Array.from({ length: 6 }, (_, i) => `p/q/r/f${i}.bin`);
    await Promise.all(files.map((f, i) => hh.target.put(request(f, seededBytes(20 + i, 100)))));
    const creates = hh.emu.server.requests(/^\/2\.0\/folders\?/).filter((r) => r.method === 'POST');
    expect(creates.map((r) => r.status)).toEqual([201, 201, 201, 201]); // Stagecoach, p, q, r
    expect((await hh.listAll()).sort()).toEqual(files.sort());
  });

  test('a folder made by someone else meanwhile (409 on create) is used, not duplicated', async () => {
    const hh = await harness();
    await hh.target.put(request('top.bin', seededBytes(30, 10)));
    hh.emu.mkdirp('/Stagecoach/made-elsewhere');
    await hh.target.put(request('made-elsewhere/f.bin', seededBytes(31, 10)));
    const creates = hh.emu.server.requests(/^\/2\.0\/folders\?/).filter((r) => r.method === 'POST').map((r) => r.status);
    expect(creates).toEqual([201, 409]);
    expect(await hh.listAll()).toEqual(['made-elsewhere/f.bin', 'top.bin']);
  });

  test('names Box refuses are mapped to look-alikes; NFD and NFC are one name', async () => {
    const hh = await harness();
    await hh.target.put(request('names/back\\slash.txt', seededBytes(40, 10)));
    await hh.target.put(request('names/tab\there.txt', seededBytes(41, 10)));
    await hh.target.put(request('names/trailing ', seededBytes(42, 10)));
    await hh.target.put(request('names/Cafe\u0301.txt', seededBytes(43, 10)));
    await hh.target.put(request('names/Caf\u00e9.txt', seededBytes(44, 10)));
    expect((await hh.listAll()).sort()).toEqual(
      ['names/back\uFF3Cslash.txt', 'names/tab\u2409here.txt', 'names/trailing\u2420', 'names/Caf\u00e9.txt'].sort(),
    );
  });

  test('a name that cannot be mapped fails the item naming the rule, and nothing is sent', async () => {
    const hh = await harness();
    const mark = hh.emu.server.log.length;
    const err = await rejected(hh.target.put(request(`long/${'x'.repeat(256)}.bin`, seededBytes(50, 10))));
    expect(hh.target.classify(err)).toMatchObject({ kind: 'fail-item' });
    expect(hh.target.classify(err).reason).toMatch(/^name-too-long: .*255/);
    const err2 = await rejected(hh.target.put(request('a/../b.bin', seededBytes(51, 10))));
    expect(hh.target.classify(err2).reason).toMatch(/^dot-segment: /);
    expect(hh.emu.server.log.length).toBe(mark);
  });

  test('a name Box itself refuses fails the item with Box`s rule', async () => {
    const hh = await harness();
    await hh.target.put(request('refused/ok.bin', seededBytes(52, 10)));
    hh.emu.server.faults.queue.push({ match: /\/files\/content$/, fault: { kind: 'status', status: 400, body: boxError(400, 'item_name_invalid') } });
    const err = await rejected(hh.target.put(request('refused/odd.bin', seededBytes(53, 10))));
    expect(err).toBeInstanceOf(TargetError);
    expect(hh.target.classify(err)).toMatchObject({ kind: 'fail-item' });
    expect(hh.target.classify(err).reason).toMatch(/^name-refused: .*trailing space/);
  });

  test('a file where a folder is needed fails the item', async () => {
    const hh = await harness();
    await hh.target.put(request('blocked', seededBytes(54, 10)));
    const err = await rejected(hh.target.put(request('blocked/inner.bin', seededBytes(55, 10))));
    expect(hh.target.classify(err)).toMatchObject({ kind: 'fail-item' });
    expect(hh.target.classify(err).reason).toMatch(/^path-blocked: /);
  });

  test('429 with Retry-After is a retry with that wait; 5xx a retry; neither stores anything', async () => {
    const hh = await harness();
    await hh.target.put(request('busy/warm.bin', seededBytes(60, 10)));
    hh.emu.server.faults.queue.push({ match: /\/files\/content$/, fault: { kind: 'status', status: 429, retryAfterS: 7 } });
    const err = await rejected(hh.target.put(request('busy/a.bin', seededBytes(61, 10))));
    expect(hh.target.classify(err)).toMatchObject({ kind: 'retry', retryAfterMs: 7000 });
    expect(hh.target.classify(err).reason).toMatch(/^rate-limited: /);
    hh.emu.server.faults.queue.push({ match: /\/files\/content$/, fault: { kind: 'status', status: 503 } });
    const err2 = await rejected(hh.target.put(request('busy/a.bin', seededBytes(61, 10))));
    expect(hh.target.classify(err2)).toMatchObject({ kind: 'retry' });
    hh.emu.server.faults.queue.push({ match: /\/files\/content$/, fault: { kind: 'reset' } });
    const err3 = await rejected(hh.target.put(request('busy/a.bin', seededBytes(61, 10))));
    expect(hh.target.classify(err3)).toMatchObject({ kind: 'retry' });
    expect(hh.target.classify(err3).reason).toMatch(/^network: /);
    expect(await hh.listAll()).toEqual(['busy/warm.bin']);
    await hh.target.put(request('busy/a.bin', seededBytes(61, 10)));
  });

  test('an upload answered with another sha1 is a failed attempt (retry)', async () => {
    const hh = await harness();
    await hh.target.put(request('hash/warm.bin', seededBytes(62, 10)));
    const bytes = seededBytes(63, 1000);
    hh.emu.server.faults.queue.push({
      match: /\/files\/content$/,
      fault: { kind: 'status', status: 201, body: { total_count: 1, entries: [{ type: 'file', id: '4242', etag: '0', name: 'x.bin', size: 1000, sha1: 'f'.repeat(40) }] } },
    });
    const err = await rejected(hh.target.put(request('hash/x.bin', bytes)));
    expect(hh.target.classify(err)).toMatchObject({ kind: 'retry' });
    expect(hh.target.classify(err).reason).toMatch(/^hash-mismatch: /);
    const ok = await hh.target.put(request('hash/x.bin', bytes));
    expect(ok.hash).toBe(hashBuffer('sha1', bytes));
  });

  test('storage full is fatal; a file over the plan`s limit fails the item', async () => {
    const hh = await harness();
    await hh.target.put(request('quota/warm.bin', seededBytes(70, 10)));
    hh.emu.setQuota(hh.emu.usedBytes() + 5);
    const err = await rejected(hh.target.put(request('quota/a.bin', seededBytes(71, 100))));
    expect(hh.target.classify(err)).toMatchObject({ kind: 'fatal' });
    expect(hh.target.classify(err).reason).toMatch(/^storage-full: .*out of storage/);
    hh.emu.setQuota(null);
    hh.emu.setMaxFileSize(50);
    const err2 = await rejected(hh.target.put(request('quota/a.bin', seededBytes(72, 100))));
    expect(hh.target.classify(err2)).toMatchObject({ kind: 'fail-item' });
    expect(hh.target.classify(err2).reason).toMatch(/^too-large: /);
  });

  test('stat: size and sha1 from Box, null when missing; ensureFolder returns the folder id', async () => {
    const hh = await harness();
    const bytes = seededBytes(80, 321);
    const res = await hh.target.put(request('stat/x.bin', bytes));
    expect(await hh.target.stat('STAT/X.BIN')).toEqual({ remoteId: res.remoteId, size: 321, hash: hashBuffer('sha1', bytes) });
    expect(await hh.target.stat('stat/none.bin')).toBeNull();
    expect(await hh.target.stat('nothere/none.bin')).toBeNull();
    const id = await hh.target.ensureFolder('stat/sub');
    expect(hh.emu.model.resolve('/Stagecoach/stat/sub')?.id).toBe(id);
    expect(await hh.target.ensureFolder('')).toBe(hh.emu.model.resolve('/Stagecoach')?.id);
  });

  test('check signs in and describes the remote root; close refuses later puts', async () => {
    const hh = await harness();
    expect(await hh.target.check()).toMatch(/signed in to Box \(OAuth.*will be created/);
    await hh.target.put(request('c.bin', seededBytes(90, 1)));
    expect(await hh.target.check()).toMatch(/remote root "Stagecoach" is folder \d+/);
    await hh.target.close();
    await hh.target.close();
    const err = await rejected(hh.target.put(request('d.bin', seededBytes(91, 1))));
    expect(hh.target.classify(err)).toMatchObject({ kind: 'fatal' });
  });
});
