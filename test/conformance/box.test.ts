import { targetSuite } from './target-suite.js';
import { boxHarness } from './box-harness.js';
import { MAX_NAME_CHARS } from '../../src/targets/box/names.js';

// Box counts characters; the suite's over-limit name is ASCII, where characters and bytes agree.
targetSuite('box', () => boxHarness(), {
  chunkThreshold: 20_000_000,
  largeFileBytes: 50 * 1024 * 1024,
  caseInsensitive: true,
  maxNameBytes: MAX_NAME_CHARS,
  mtime: true,
  readSync: true,
});
