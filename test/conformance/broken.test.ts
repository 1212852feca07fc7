/**
 * The suite must catch a broken target: each broken memory variant fails the check for the rule
 * it breaks (with that check's own message), yet passes a check it does not touch.
 */
import { describe, expect, test } from 'vitest';
import { createMemoryTarget, type MemoryBrokenMode } from '../../src/targets/memory/index.js';
import { memoryHarness } from './memory-harness.js';
import { runCheck, type CheckName, type SuiteCaps } from './target-suite.js';

const caps: SuiteCaps = { mtime: true, largeFileBytes: 1_000_000 };

const CASES: Record<MemoryBrokenMode, Array<[CheckName, RegExp]>> = {
  truncate: [
    ['small file: stored byte-identical, hash and size reported, stat agrees', /read-back of small\/file\.bin has the size put/],
    ['large file (multi-MB)', /read-back of large\/big\.bin has the size put/],
  ],
  'no-verify': [
    ['a source that ends early fails with ShortReadError and leaves nothing', /put of a source ending early must reject/],
    ['a source longer than stated fails with ShortReadError and leaves nothing', /put of a source longer than stated must reject/],
  ],
  'half-write': [
    ['a source that errors mid-stream leaves nothing half-written', /after a source failing mid-stream: nothing stored/],
    ['a source that ends early fails with ShortReadError and leaves nothing', /nothing stored|previous content .* is intact/],
  ],
  'not-idempotent': [['idempotent re-put: unchanged, nothing sent, content kept', /re-put of identical content is unchanged/]],
  'leak-temp': [
    ['a source that errors mid-stream leaves nothing half-written', /no temp or partial files are left/],
    ['an aborted put leaves nothing', /no temp or partial files are left/],
  ],
  'no-nfc': [['NFC and NFD spellings of a name are one file, stored as NFC', /one file, under its NFC name/]],
  'wrong-hash': [['small file: stored byte-identical, hash and size reported, stat agrees', /result hash equals the sha256/]],
  'ignore-abort': [['an aborted put leaves nothing', /put of an aborted put must reject/]],
  'drops-mtime': [['the stored mtime is the source mtime', /stored mtime 0 is/]],
  'racy-folders': [['concurrent puts into one new folder all land', /concurrent put of .* landed intact/]],
  'long-names': [['a name over the byte limit fails the item and stores nothing', /put of an over-long name must reject/]],
};

// A check the variant does not break: a failure above is the variant's, not a broken harness.
// Variants that corrupt every stored file pass only checks where nothing is stored.
const CONTROL: CheckName = 'nested folders are created, ensureFolder is idempotent';
const CONTROL_NO_WRITE: CheckName = 'a name over the byte limit fails the item and stores nothing';
const controlFor = (mode: MemoryBrokenMode): CheckName =>
  mode === 'truncate' || mode === 'wrong-hash' ? CONTROL_NO_WRITE : CONTROL;

describe('the conformance suite catches broken targets', () => {
  for (const [mode, expectations] of Object.entries(CASES) as Array<[MemoryBrokenMode, Array<[CheckName, RegExp]>]>) {
    const factory = async () => memoryHarness(createMemoryTarget({ id: `broken-${mode}`, broken: mode }));
    for (const [check, message] of expectations) {
      test(`${mode} fails "${check}"`, async () => {
        await expect(runCheck(check, factory, caps)).rejects.toThrow(message);
      });
    }
    test(`${mode} still passes the control check`, async () => {
      await expect(runCheck(controlFor(mode), factory, caps)).resolves.toBeUndefined();
    });
  }

  test('the good memory target passes every check named above', async () => {
    const factory = async () => memoryHarness(createMemoryTarget({ id: 'good' }));
    const names = new Set(Object.values(CASES).flatMap((list) => list.map(([c]) => c)));
    for (const check of names) await runCheck(check, factory, caps);
  });
});
