/**
 * Every cloud target keeps its connections alive: files put one after another go over the
 * connections already open, not a new TCP connection (and its set-up on the daemon's one thread)
 * per request. Counted at the emulator, which accepts every connection the SDK opens.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { boxHarness } from '../conformance/box-harness.js';
import { dropboxHarness } from '../conformance/dropbox-harness.js';
import { gdriveHarness } from '../conformance/gdrive-harness.js';
import { onedriveHarness } from '../conformance/onedrive-harness.js';
import { request, seededBytes } from '../conformance/sources.js';
import type { EmulatorServer } from '../emulators/harness/index.js';
import type { SuiteHarness } from '../conformance/target-suite.js';

const FILES = 12;

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

const clouds: Array<[string, () => Promise<SuiteHarness & { emu: { server: EmulatorServer } }>]> = [
  ['box', () => boxHarness()],
  ['dropbox', () => dropboxHarness()],
  ['gdrive', () => gdriveHarness()],
  ['onedrive', () => onedriveHarness()],
];

describe('keep-alive', () => {
  test.each(clouds)('%s: files put one after another share their connections', async (_name, make) => {
    const h = await make();
    cleanup = () => h.cleanup();
    for (let i = 0; i < FILES; i++) await h.target.put(request(`keep-alive/f${i} é.txt`, seededBytes(i + 1, 1024)));
    const requests = h.emu.server.requests().length;
    expect(requests).toBeGreaterThanOrEqual(FILES);
    // One connection would do for requests in sequence; a few allow for the sign-in, and for
    // one dropped by the server's idle timeout. Without keep-alive this is one per request.
    expect(h.emu.server.connections).toBeLessThanOrEqual(3);
  });
});
