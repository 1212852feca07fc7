import { defineConfig } from 'vitest/config';

/**
 * Four tiers, each a vitest project (`npm run test:<tier>` runs one alone; `npm test` all four,
 * after the type check, the linter and the dead-code check):
 * - unit: pure code, no build, no child processes, no emulator: every test file no other tier
 *   claims, so a new file runs somewhere;
 * - integration: targets against the emulators, the conformance suite, the pipeline in-process;
 * - emulators: the fakes' own protocol tests;
 * - system: daemon processes (the built CLI: only this tier builds dist/), chaos, docker, browser.
 */
const INTEGRATION = [
  'test/targets/**/*.test.ts',
  'test/conformance/**/*.test.ts',
  'test/pipeline/**/*.test.ts',
  'test/e2e/clouds.test.ts',
  'test/e2e/ops.test.ts',
  'test/http/server.test.ts',
  'test/http/activity.test.ts',
  'test/notify/**/*.test.ts',
  'test/cli/progress.test.ts',
  'test/state/disk-full-run.test.ts',
  'test/audit/scrub.test.ts',
  'test/audit/after-archive.test.ts',
  'test/cli/verify.test.ts',
  'test/cli/restore.test.ts',
  // The journal on a real PostgreSQL (test/setup/postgres.ts starts one for the tier).
  'test/state/store-contract-pg.test.ts',
  'test/state/pg-store.test.ts',
  'test/state/pg-fleet.test.ts',
  'test/state/pg-reconnect.test.ts',
  'test/state/journal-config.test.ts',
  'test/state/move-journal.test.ts',
  'test/http/fleet-status.test.ts',
];
const EMULATORS = ['test/emulators/**/*.test.ts'];
const SYSTEM = [
  'test/cli/**/*.test.ts',
  'test/chaos/**/*.test.ts',
  'test/docker/**/*.test.ts',
  'test/e2e/resume.test.ts',
  'test/e2e/collisions.test.ts',
  'test/http/browser.test.ts',
  'test/http/slow-clients.test.ts',
  'test/emulators/browse-browser.test.ts',
  'test/setup/loopback-guard.test.ts',
  'test/state/disk-full.test.ts',
  'test/state/durability.test.ts',
];
/** In test/cli but in-process. */
const INTEGRATION_IN_SYSTEM = ['test/cli/progress.test.ts', 'test/cli/verify.test.ts', 'test/cli/restore.test.ts'];

export default defineConfig({
  test: {
    setupFiles: ['test/setup/loopback-guard.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...INTEGRATION, ...EMULATORS, ...SYSTEM] },
      },
      { extends: true, test: { name: 'integration', include: INTEGRATION, globalSetup: ['test/setup/postgres.ts'] } },
      { extends: true, test: { name: 'emulators', include: EMULATORS, exclude: SYSTEM } },
      { extends: true, test: { name: 'system', include: SYSTEM, exclude: INTEGRATION_IN_SYSTEM, globalSetup: ['test/setup/build.ts', 'test/setup/postgres.ts'] } },
    ],
  },
});
