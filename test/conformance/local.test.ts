import { targetSuite } from './target-suite.js';
import { localHarness } from './local-harness.js';

targetSuite('local', () => localHarness(), { mtime: true, maxNameBytes: 255, readSync: true });
