/**
 * vitest setup file: installs the loopback guard (test/setup/loopback-guard.cjs) in the test
 * process, which also puts it into NODE_OPTIONS for every process a test starts and into every
 * worker thread. A forgotten base URL (an SDK's default public host) fails the test instead of
 * reaching a real cloud. test/setup/loopback-guard.test.ts proves that it works.
 */
import { createRequire } from 'node:module';

interface Guard {
  LoopbackGuardError: new (what: string) => Error;
  isLoopbackAddress(host: string): boolean;
  /** The guard's path, as children load it (`--require`). */
  GUARD_FILE: string;
}

// Loaded by Node itself (not through vitest's transform), as children and workers load it.
const guard = createRequire(import.meta.url)('./loopback-guard.cjs') as Guard;

/** What the guard throws (or passes to the callback, or rejects with). */
export const LoopbackGuardError = guard.LoopbackGuardError;
export const isLoopbackAddress = guard.isLoopbackAddress;
export const GUARD_FILE = guard.GUARD_FILE;
