/**
 * Box's rotating refresh tokens on a fleet (issue 20): two daemons with one Box sign-in, each with
 * its own state folder, keep the token in the shared PostgreSQL journal and refresh under its row
 * lock, so they never spend the same refresh token. The emulator rotates refresh tokens as Box
 * does ("each refresh token is valid for one use":
 * https://developer.box.com/guides/authentication/tokens/refresh/).
 */
import pino from 'pino';
import { afterEach, describe, expect, inject, test } from 'vitest';
import { openPgStore, type PgStore } from '../../../src/state/pg-store.js';
import { createBoxTarget } from '../../../src/targets/box/index.js';
import type { Target } from '../../../src/targets/target.js';
import { startBoxEmulator, type BoxEmulator } from '../../emulators/box/index.js';
import { boxOptions } from '../../conformance/box-harness.js';
import { request, seededBytes } from '../../conformance/sources.js';
import { tempDir } from '../../helpers/fs.js';
import { createTestDatabase } from '../../helpers/postgres.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const log = pino({ level: 'silent' });
const refused = (emu: BoxEmulator) => emu.server.requests(/^\/oauth2\/token/).filter((r) => r.status !== 200).length;

/**
 * Two "daemons": one Box config (one first refresh token), each its own state folder and journal
 * connection. `brokenFileForA`: a's token file cannot be written.
 */
async function twoNodes(shared: boolean, brokenFileForA = false): Promise<{ emu: BoxEmulator; a: Target; b: Target }> {
  const emu = await startBoxEmulator();
  cleanups.push(() => emu.close());
  const options = boxOptions(emu);
  const db = shared ? await createTestDatabase(inject('pgUrl')) : null;
  if (db) cleanups.push(() => db.drop());
  const make = async (broken = false): Promise<Target> => {
    const dir = await tempDir('stagecoach-box-fleet-');
    cleanups.push(() => dir.cleanup());
    let store: PgStore | undefined;
    if (db) {
      store = await openPgStore({ url: db.url });
      const s = store;
      cleanups.push(() => s.close());
    }
    // /proc/self takes no new file, even from root: reading the token file finds none, writing it fails.
    const opts = broken && options.auth.kind === 'oauth' ? { ...options, auth: { ...options.auth, tokenFile: '/proc/self/box-tokens.json' } } : options;
    const target = createBoxTarget(opts, { log, stateDir: dir.dir, ...(store ? { shared: store.sharedSecrets } : {}) });
    cleanups.push(() => target.close());
    return target;
  };
  return { emu, a: await make(brokenFileForA), b: await make() };
}

describe('Box refresh tokens shared through the journal', () => {
  test('two nodes refreshing at once, twice, never spend the same refresh token', async () => {
    const { emu, a, b } = await twoNodes(true);
    const puts = (round: number) =>
      Promise.all([a, b].flatMap((t, n) => Array.from({ length: 4 }, (_, i) => t.put(request(`r${round}/n${n}-f${i}.bin`, seededBytes(round * 100 + n * 10 + i, 2000 + i))))));
    await puts(1);
    expect(emu.oauth.grants.refresh_token, 'one refresh for both nodes').toBe(1);
    emu.expireTokens();
    await puts(2);
    expect(emu.oauth.grants.refresh_token).toBe(2);
    expect(refused(emu), 'no refresh refused: no token was spent twice').toBe(0);
  });

  test("the rotated token reaches the journal before the node's own token file: a node that cannot write its file costs the fleet nothing", async () => {
    const { emu, a, b } = await twoNodes(true, true);
    // a refreshes (Box rotates the token), then fails on its token file...
    await expect(a.put(request('a.bin', seededBytes(1, 10)))).rejects.toMatchObject({ kind: 'fatal', message: expect.stringContaining('token-not-saved') });
    // ...but the journal already holds the new token: b takes it instead of spending a dead one.
    await b.put(request('b.bin', seededBytes(2, 10)));
    expect(emu.oauth.grants.refresh_token).toBe(1);
    expect(refused(emu), 'no refresh refused').toBe(0);
  });

  test('without the journal the second node spends a dead token (why it is shared)', async () => {
    const { emu, a, b } = await twoNodes(false);
    await a.put(request('a.bin', seededBytes(1, 10)));
    await expect(b.put(request('b.bin', seededBytes(2, 10)))).rejects.toMatchObject({ kind: 'fatal' });
    expect(refused(emu)).toBe(1);
  });
});
