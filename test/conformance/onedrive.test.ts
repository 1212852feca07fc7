import { MAX_NAME_CHARS } from '../../src/targets/onedrive/names.js';
import { SIMPLE_UPLOAD_MAX } from '../../src/targets/onedrive/api-types.js';
import { onedriveHarness } from './onedrive-harness.js';
import { targetSuite } from './target-suite.js';

// OneDrive counts characters; the suite's over-limit name is ASCII, where characters and bytes agree.
targetSuite('onedrive', () => onedriveHarness(), {
  chunkThreshold: SIMPLE_UPLOAD_MAX,
  largeFileBytes: 50 * 1024 * 1024,
  caseInsensitive: true,
  maxNameBytes: MAX_NAME_CHARS,
  mtime: true,
  readSync: true,
});
