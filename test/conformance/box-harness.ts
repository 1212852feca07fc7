/**
 * A conformance harness for the Box target against a fresh Box emulator: the target archives
 * under "Stagecoach" in the emulator's "All Files", signed in with an OAuth refresh token the
 * emulator issued (rotated tokens go to a temp state folder).
 */
import pino, { type Logger } from 'pino';
import { createBoxTarget } from '../../src/targets/box/index.js';
import type { BoxInternals, BoxOptions } from '../../src/targets/box/api-types.js';
import { mapBoxPath } from '../../src/targets/box/names.js';
import type { Target } from '../../src/targets/target.js';
import { startBoxEmulator, type BoxEmulator, type BoxEmulatorOptions } from '../emulators/box/index.js';
import { tempDir } from '../helpers/fs.js';
import type { SuiteHarness } from './target-suite.js';

/** The folder under "All Files" the harness's target archives into. */
export const BOX_REMOTE_ROOT = 'Stagecoach';

export interface BoxHarness extends SuiteHarness {
  emu: BoxEmulator;
  /** The target's state folder (token file). */
  stateDir: string;
  options: BoxOptions;
  /** A second target on the same emulator and state folder (a restarted daemon). */
  reopen(internals?: BoxInternals): Target;
}

export interface BoxHarnessOptions {
  emulator?: BoxEmulatorOptions;
  internals?: BoxInternals;
  /** `ccg`: a Client Credentials Grant for the enterprise instead of OAuth. */
  auth?: 'oauth' | 'ccg';
  remoteRoot?: string;
  log?: Logger;
}

/** The endpoints block pointing a Box target at `emu`. */
export function boxEndpoints(emu: BoxEmulator): NonNullable<BoxOptions['endpoints']> {
  return { baseUrl: emu.url, uploadUrl: `${emu.url}/api`, oauth2Url: `${emu.url}/api/oauth2` };
}

/** Box target options for `emu`, OAuth with a fresh refresh token (or CCG). */
export function boxOptions(emu: BoxEmulator, auth: 'oauth' | 'ccg' = 'oauth', remoteRoot = BOX_REMOTE_ROOT): BoxOptions {
  return {
    id: 'box',
    type: 'box',
    remoteRoot,
    auth:
      auth === 'oauth'
        ? { kind: 'oauth', clientId: emu.clientId, clientSecret: emu.clientSecret, refreshToken: emu.addRefreshToken() }
        : { kind: 'ccg', clientId: emu.clientId, clientSecret: emu.clientSecret, enterpriseId: emu.enterpriseId },
    endpoints: boxEndpoints(emu),
  };
}

export async function boxHarness(opts: BoxHarnessOptions = {}): Promise<BoxHarness> {
  const emu = await startBoxEmulator(opts.emulator);
  const { dir, cleanup } = await tempDir('stagecoach-box-');
  const log = opts.log ?? pino({ level: 'silent' });
  const remoteRoot = opts.remoteRoot ?? BOX_REMOTE_ROOT;
  const options = boxOptions(emu, opts.auth, remoteRoot);
  const make = (internals: BoxInternals = opts.internals ?? {}): Target => createBoxTarget(options, { log, stateDir: dir }, internals);
  const target = make();
  const made: Target[] = [target];
  const prefix = remoteRoot === '' ? '/' : `/${mapBoxPath(remoteRoot).join('/')}/`;
  return {
    target,
    emu,
    stateDir: dir,
    options,
    reopen(internals) {
      const t = make(internals);
      made.push(t);
      return t;
    },
    readBack: async (p) => {
      try {
        return await emu.read(prefix + p);
      } catch {
        return null;
      }
    },
    listAll: async () => (await emu.tree()).filter((f) => f.path.startsWith(prefix)).map((f) => f.path.slice(prefix.length)),
    mapName: (p) => mapBoxPath(p).join('/'),
    readMtimeMs: async (p) => {
      const n = emu.model.resolve(prefix + p);
      return n && n.kind === 'file' ? Date.parse(n.contentModifiedAt) : null;
    },
    cleanup: async () => {
      await Promise.allSettled(made.map((t) => t.close()));
      await emu.close();
      await cleanup();
    },
  };
}
