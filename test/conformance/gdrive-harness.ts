/**
 * A conformance harness for the Google Drive target on a fresh Drive emulator: the real SDK
 * pointed at loopback through the config's `endpoints`, everything under `remoteRoot`.
 */
import pino, { type Logger } from 'pino';
import { createGdriveTarget } from '../../src/targets/gdrive/index.js';
import type { GdriveInternals, GdriveOptions } from '../../src/targets/gdrive/api-types.js';
import { startGdriveEmulator, type GdriveEmulator, type GdriveEmulatorOptions } from '../emulators/gdrive/index.js';
import type { SuiteHarness } from './target-suite.js';

export const GDRIVE_ROOT = 'Stagecoach Archive';

export interface GdriveHarness extends SuiteHarness {
  emu: GdriveEmulator;
  options: GdriveOptions;
  /** `/<remoteRoot>/<remotePath>`: the path the emulator stores `remotePath` at. */
  emuPath(remotePath: string): string;
}

export interface GdriveHarnessOptions {
  internals?: GdriveInternals;
  /** Overrides of the target options (auth, sharedDriveId, remoteRoot…). */
  options?: Partial<GdriveOptions>;
  /** Use this emulator instead of starting one (it is not closed by cleanup). */
  emu?: GdriveEmulator;
  emulator?: GdriveEmulatorOptions;
  log?: Logger;
  stateDir?: string;
}

/** The target options that point a Drive target at `emu` with its registered refresh token. */
export function gdriveOptions(emu: GdriveEmulator, extra: Partial<GdriveOptions> = {}): GdriveOptions {
  return {
    type: 'gdrive',
    id: 'gdrive',
    maxDemand: 4,
    minDemand: 2,
    requestsPerSecond: null,
    bytesPerSecond: null,
    remoteRoot: GDRIVE_ROOT,
    auth: { kind: 'oauth', clientId: emu.clientId, clientSecret: emu.clientSecret, refreshToken: emu.refreshToken },
    endpoints: { rootUrl: emu.url, tokenUrl: `${emu.url}/token` },
    ...extra,
  } as GdriveOptions;
}

export async function gdriveHarness(h: GdriveHarnessOptions = {}): Promise<GdriveHarness> {
  const own = h.emu === undefined;
  const emu = h.emu ?? (await startGdriveEmulator({ seed: 7, ...h.emulator }));
  const options = gdriveOptions(emu, h.options);
  const target = createGdriveTarget(options, { log: h.log ?? pino({ level: 'silent' }), stateDir: h.stateDir ?? '/nonexistent-state' }, h.internals);
  const root = options.remoteRoot ?? '';
  const prefix = root === '' ? '/' : `/${root}/`;
  const emuPath = (p: string): string => `${prefix}${p}`;
  return {
    target,
    emu,
    options,
    emuPath,
    readBack: async (p) => {
      try {
        return await emu.read(emuPath(p));
      } catch {
        return null;
      }
    },
    listAll: async () => (await emu.tree()).filter((t) => t.path.startsWith(prefix)).map((t) => t.path.slice(prefix.length)),
    readMtimeMs: async (p) => emu.model.findByPath(emuPath(p))?.modifiedTime ?? null,
    cleanup: async () => {
      await target.close();
      if (own) await emu.close();
    },
  };
}
