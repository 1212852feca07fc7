/**
 * `Target.download` and `stat` of every provider, against its emulator through the official SDK:
 * a put file reads back byte for byte (a nasty name, an empty file, several 64 KiB chunks), from a
 * start past 0 too; a path with nothing (or a folder) gives null; a copy deleted by another
 * client is gone for both `stat` and `download`, and a copy replaced there has the new hash.
 * The emulators serve ranged downloads as each provider documents (cited in the targets'
 * download.ts and in test/conformance/remote-delete.ts).
 */
import { describe, expect, test } from 'vitest';
import { createHasher } from '../../src/archive/hash.js';
import { createMemoryTarget } from '../../src/targets/memory/index.js';
import type { RemoteDownload, Target } from '../../src/targets/target.js';
import { boxHarness } from './box-harness.js';
import { dropboxHarness } from './dropbox-harness.js';
import { gdriveHarness } from './gdrive-harness.js';
import { localHarness } from './local-harness.js';
import { memoryHarness } from './memory-harness.js';
import { onedriveHarness } from './onedrive-harness.js';
import { deleteRemote, type AnyEmulator } from './remote-delete.js';
import { request, seededBytes } from './sources.js';
import type { SuiteHarness } from './target-suite.js';

async function readAll(d: RemoteDownload): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of d.stream) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}

interface Case {
  name: string;
  make(): Promise<SuiteHarness & { emu?: unknown }>;
  kind?: AnyEmulator['kind'];
}

const cases: Case[] = [
  { name: 'local', make: () => localHarness() },
  { name: 'memory', make: async () => memoryHarness(createMemoryTarget({ id: 'memory' })) },
  { name: 'gdrive', make: () => gdriveHarness(), kind: 'gdrive' },
  { name: 'dropbox', make: () => dropboxHarness(), kind: 'dropbox' },
  { name: 'box', make: () => boxHarness(), kind: 'box' },
  { name: 'onedrive', make: () => onedriveHarness(), kind: 'onedrive' },
];

const NAME = 'dl/Café ünï "q" sp ace/fïle #1.bin';

describe.each(cases)('download: $name', (c) => {
  test('reads back what was put, whole and from a start; stat agrees with put', async () => {
    const h = await c.make();
    const t: Target = h.target;
    try {
      expect(typeof t.download, 'the target can download').toBe('function');
      const bytes = seededBytes(17, 300_003);
      const put = await t.put(request(NAME, bytes));
      await t.put(request('dl/empty.bin', Buffer.alloc(0)));

      const st = await t.stat(NAME);
      expect(st).toMatchObject({ size: bytes.length, hash: put.hash });

      const whole = (await t.download!({ remotePath: NAME }))!;
      expect(whole.size).toBe(bytes.length);
      const got = await readAll(whole);
      expect(got.equals(bytes), 'byte for byte').toBe(true);
      const h2 = createHasher(t.features.hashKind);
      h2.update(got);
      expect(h2.digest(), 'its hash is the one put reported').toBe(put.hash);

      const tail = (await t.download!({ remotePath: NAME, start: 200_000 }))!;
      expect(tail.size, 'size is the whole copy').toBe(bytes.length);
      expect((await readAll(tail)).equals(bytes.subarray(200_000))).toBe(true);

      const atEnd = (await t.download!({ remotePath: NAME, start: bytes.length }))!;
      expect((await readAll(atEnd)).length).toBe(0);

      const empty = (await t.download!({ remotePath: 'dl/empty.bin' }))!;
      expect(empty.size).toBe(0);
      expect((await readAll(empty)).length).toBe(0);

      expect(await t.download!({ remotePath: 'dl/nothing-here.bin' }), 'nothing there').toBeNull();
      expect(await t.download!({ remotePath: 'nowhere/at/all.bin' }), 'no folder either').toBeNull();
      expect(await t.download!({ remotePath: 'dl' }), 'a folder is not a file').toBeNull();
    } finally {
      await t.close();
      await h.cleanup();
    }
  });

});

describe.each(cases.filter((c) => c.kind !== undefined))('stat and download after another client: $name', (c) => {
  test('a copy deleted by another client is gone; one replaced there has the new hash', async () => {
    const h = await c.make();
    const t = h.target;
    try {
      const a = seededBytes(21, 5000);
      await t.put(request('gone/a.bin', a));
      await t.put(request('gone/b.bin', seededBytes(22, 5000)));
      await deleteRemote({ kind: c.kind, emu: h.emu } as AnyEmulator, t, 'gone/a.bin');
      expect(await t.stat('gone/a.bin')).toBeNull();
      expect(await t.download!({ remotePath: 'gone/a.bin' })).toBeNull();

      const before = (await t.stat('gone/b.bin'))!;
      const other = seededBytes(23, 5000);
      await t.put(request('gone/b.bin', other));
      const after = (await t.stat('gone/b.bin'))!;
      expect(after.hash).not.toBe(before.hash);
      expect((await readAll((await t.download!({ remotePath: 'gone/b.bin' }))!)).equals(other)).toBe(true);
    } finally {
      await t.close();
      await h.cleanup();
    }
  });
});
