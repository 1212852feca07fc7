/** A conformance harness over a memory target. */
import type { MemoryTarget } from '../../src/targets/memory/index.js';
import type { SuiteHarness } from './target-suite.js';

export function memoryHarness(target: MemoryTarget): SuiteHarness {
  return {
    target,
    readBack: async (p) => target.readBack(p),
    listAll: async () => target.listAll(),
    readMtimeMs: async (p) => target.mtimeOf(p),
    cleanup: () => target.close(),
  };
}
