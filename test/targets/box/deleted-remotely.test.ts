/**
 * Issue 16, item 11, against the emulator: the Box target updates a file by the id it knows; when
 * that file was deleted on Box and another took its name meanwhile, the new upload's 409
 * item_name_in_use names the file now there, and the put uploads a new version of it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { boxHarness, type BoxHarness } from '../../conformance/box-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';

let h: BoxHarness | undefined;
afterEach(async () => {
  await h?.cleanup();
  h = undefined;
});

describe('box target: a known file deleted remotely', () => {
  it('update by id answers 404, the new upload 409 item_name_in_use: the put becomes a new version of the file named in the conflict', async () => {
    h = await boxHarness();
    const first = await h.target.put(request('docs/f.txt', seededBytes(1, 100)));
    // On Box: the file is deleted and another file takes its name.
    h.emu.model.remove(first.remoteId);
    const otherId = await h.emu.putFile('/Stagecoach/docs/f.txt', Buffer.from('someone else'));
    expect(otherId).not.toBe(first.remoteId);

    const since = h.emu.server.log.length;
    const v2 = seededBytes(2, 200);
    const res = await h.target.put(request('docs/f.txt', v2));
    expect(res.remoteId).toBe(otherId);
    expect((await h.emu.read('/Stagecoach/docs/f.txt')).equals(v2)).toBe(true);
    const uploads = h.emu.server.log.slice(since).filter((r) => r.method === 'POST' && /\/content(\?|$)/.test(r.url));
    expect(uploads.map((r) => r.status)).toEqual([404, 409, 200]);
  });
});

describe('box target: a known file deleted remotely, large file (upload session)', () => {
  it('the session for a new version answers 404; the put starts over and becomes a new version of the file now at the name', async () => {
    h = await boxHarness({ emulator: { minChunkedSize: 1, partSize: 64 * 1024 }, internals: { simpleUploadMax: 1000 } });
    const first = await h.target.put(request('big/f.bin', seededBytes(3, 100_000)));
    h.emu.model.remove(first.remoteId);
    const otherId = await h.emu.putFile('/Stagecoach/big/f.bin', Buffer.from('someone else'));
    const v2 = seededBytes(4, 150_000);
    const res = await h.target.put(request('big/f.bin', v2));
    expect(res.remoteId).toBe(otherId);
    expect((await h.emu.read('/Stagecoach/big/f.bin')).equals(v2)).toBe(true);
  });
});
