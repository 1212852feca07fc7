import { expect, test } from 'vitest';
import { MAX_NAME_BYTES } from '../../src/targets/gdrive/names.js';
import type { PutRequest } from '../../src/targets/target.js';
import { GDRIVE_ROOT, gdriveHarness, type GdriveHarness } from './gdrive-harness.js';
import { chunkStream, request, seededBytes } from './sources.js';
import { targetSuite } from './target-suite.js';

const MiB = 1024 * 1024;

/** Runs `fn` on a fresh Drive harness with the production defaults (5 MB simple, 8 MiB chunks). */
async function withDrive(fn: (h: GdriveHarness) => Promise<void>): Promise<void> {
  const h = await gdriveHarness();
  try {
    await fn(h);
  } finally {
    await h.cleanup();
  }
}

/** A request whose resume handle is kept in `box`, as the journal keeps it. */
function withResume(req: PutRequest, box: { handle: string | null }): PutRequest {
  return { ...req, resume: box.handle, saveResume: async (h) => void (box.handle = h) };
}

targetSuite(
  'gdrive',
  () => gdriveHarness(),
  {
    chunkThreshold: 5_000_000,
    largeFileBytes: 50 * MiB,
    caseInsensitive: false,
    maxNameBytes: MAX_NAME_BYTES,
    mtime: true,
    readSync: true,
  },
  () => {
    test('gdrive: a 20 MiB upload cut on its 2nd chunk resumes from the saved session; the 1st chunk is not sent again', () =>
      withDrive(async ({ target, emu, emuPath }) => {
        const bytes = seededBytes(70, 20 * MiB + 3);
        const box = { handle: null as string | null };
        let cut = false;
        // The source is read a chunk ahead of what is sent: arm the reset at its first read after
        // Drive answered the 1st chunk, which comes before the 2nd chunk is sent.
        const answered = (): number => emu.server.requests(/upload_id=/).filter((r) => r.method === 'PUT' && r.status !== 0).length;
        const open = (start = 0) =>
          chunkStream(function* () {
            for (let off = start; off < bytes.length; off += 64 * 1024) {
              if (!cut && answered() >= 1) {
                cut = true;
                emu.server.setFaults({ queue: [{ match: /^\/upload\//, fault: { kind: 'reset' } }] });
              }
              yield bytes.subarray(off, Math.min(bytes.length, off + 64 * 1024));
            }
          });
        const first = await target.put(withResume(request('resume/big.bin', bytes, { open }), box)).catch((e: unknown) => e);
        expect(target.classify(first).kind, 'a cut upload is a retry').toBe('retry');
        expect(box.handle, 'the session handle was saved').not.toBeNull();
        const res = await target.put(withResume(request('resume/big.bin', bytes), box));
        expect(res.bytesSent, 'only what Drive did not hold is sent').toBe(bytes.length - 8 * MiB);
        expect(emu.server.requests(/upload_id=/).filter((r) => r.contentRange?.startsWith('bytes 0-')), 'the first chunk went once').toHaveLength(1);
        expect((await emu.read(emuPath('resume/big.bin'))).equals(bytes)).toBe(true);
        expect(box.handle, 'the handle is cleared on success').toBeNull();
      }));

    test('gdrive: the daily upload cap parks the target (fatal) with retryAfterMs', () =>
      withDrive(async ({ target, emu }) => {
        await target.put(request('cap/a.bin', seededBytes(71, 1000)));
        emu.setDailyCap(1000);
        const err = await target.put(request('cap/b.bin', seededBytes(72, 1000))).catch((e: unknown) => e);
        const c = target.classify(err);
        expect(c.kind).toBe('fatal');
        expect(c.retryAfterMs).toBe(24 * 60 * 60 * 1000);
      }));

    test('gdrive: 8 concurrent puts into a new folder make one folder (the emulator tree shows one)', () =>
      withDrive(async ({ target, emu }) => {
        await Promise.all(Array.from({ length: 8 }, (_, i) => target.put(request(`fresh/f${i}.bin`, seededBytes(80 + i, 500)))));
        const folders = emu.entries().filter((e) => e.folder).map((e) => e.path);
        expect(folders.sort()).toEqual([`/${GDRIVE_ROOT}`, `/${GDRIVE_ROOT}/fresh`]);
      }));

    test('gdrive: an access token expiring mid-run is refreshed; the run goes on', () =>
      withDrive(async ({ target, emu }) => {
        await target.put(request('tok/a.bin', seededBytes(90, 1000)));
        emu.tokens.expireAll();
        await target.put(request('tok/b.bin', seededBytes(91, 6_000_000)));
        emu.tokens.expireAll();
        await target.put(request('tok/c.bin', seededBytes(92, 1000)));
        expect(emu.server.requests(/^\/token$/)).toHaveLength(3);
        expect((await emu.tree()).map((t) => t.path)).toHaveLength(3);
      }));
  },
);
