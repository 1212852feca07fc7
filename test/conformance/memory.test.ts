import { createMemoryTarget } from '../../src/targets/memory/index.js';
import { memoryHarness } from './memory-harness.js';
import { targetSuite } from './target-suite.js';

targetSuite('memory', async () => memoryHarness(createMemoryTarget({ id: 'memory' })), { mtime: true });

// The same suite with each provider's hash kind and case rule, as the clouds will declare them.
targetSuite('memory (md5, case-insensitive)', async () =>
  memoryHarness(createMemoryTarget({ id: 'memory-ci', hashKind: 'md5', caseInsensitive: true })), { caseInsensitive: true, largeFileBytes: 1_000_000 });
targetSuite('memory (sha1)', async () =>
  memoryHarness(createMemoryTarget({ id: 'memory-sha1', hashKind: 'sha1' })), { chunkThreshold: 100_000, largeFileBytes: 1_000_000 });
targetSuite('memory (dropbox content hash)', async () =>
  memoryHarness(createMemoryTarget({ id: 'memory-dropbox', hashKind: 'dropbox', caseInsensitive: true })), { largeFileBytes: 9_000_000 });
targetSuite('memory (quickxor)', async () =>
  memoryHarness(createMemoryTarget({ id: 'memory-quickxor', hashKind: 'quickxor', caseInsensitive: true })), { largeFileBytes: 1_000_000 });
