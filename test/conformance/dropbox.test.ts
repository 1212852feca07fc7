import { targetSuite } from './target-suite.js';
import { dropboxHarness } from './dropbox-harness.js';
import { MAX_NAME_CHARS } from '../../src/targets/dropbox/names.js';

// Dropbox counts characters; the suite's over-limit name is ASCII, where characters and bytes agree.
targetSuite('dropbox', () => dropboxHarness(), {
  chunkThreshold: 8 * 1024 * 1024,
  largeFileBytes: 50 * 1024 * 1024,
  caseInsensitive: true,
  maxNameBytes: MAX_NAME_CHARS,
  mtime: true,
  readSync: true,
});
