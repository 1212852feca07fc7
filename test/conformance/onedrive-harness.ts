/**
 * A conformance harness for the OneDrive target against a fresh OneDrive emulator: the target
 * archives under "Stagecoach" in the emulator's drive. Delegated (default): the harness signs in
 * the way a user does, with `authorize` (device-code flow; the emulator approves the printed code)
 * into a temp state folder; app: client credentials for the emulator's user.
 */
import pino, { type Logger } from 'pino';
import { authorize } from '../../src/targets/onedrive/auth.js';
import { createOnedriveTarget } from '../../src/targets/onedrive/index.js';
import type { OnedriveInternals, OnedriveOptions } from '../../src/targets/onedrive/api-types.js';
import { mapOneDrivePath, mapRemoteRoot } from '../../src/targets/onedrive/names.js';
import type { Target } from '../../src/targets/target.js';
import { startOneDriveEmulator, type OneDriveEmulator, type OneDriveEmulatorOptions } from '../emulators/onedrive/index.js';
import { tempDir } from '../helpers/fs.js';
import type { SuiteHarness } from './target-suite.js';

/** The folder under the drive root the harness's target archives into. */
export const ONEDRIVE_REMOTE_ROOT = 'Stagecoach';
/** The app registration the harness signs in with. */
export const ONEDRIVE_CLIENT_ID = '0a1b2c3d-0000-4000-8000-123456789abc';
/** The client secret of the app (app-only harnesses; the emulator checks it). */
export const ONEDRIVE_CLIENT_SECRET = 'stagecoach-test-app-secret';
/** A business tenant id for app-only sign-in. */
export const ONEDRIVE_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

export interface OnedriveHarness extends SuiteHarness {
  emu: OneDriveEmulator;
  /** The target's state folder (token cache). */
  stateDir: string;
  options: OnedriveOptions;
  /** Lines `authorize` printed while signing in. */
  printed: string[];
  /** A second target on the same emulator and state folder (a restarted daemon). */
  reopen(internals?: OnedriveInternals, log?: Logger): Target;
  /** The drive path of a remote path as the target stores it (`/Stagecoach/…`). */
  drivePath(remotePath: string): string;
}

export interface OnedriveHarnessOptions {
  emulator?: OneDriveEmulatorOptions;
  internals?: OnedriveInternals;
  auth?: 'delegated' | 'app';
  remoteRoot?: string;
  log?: Logger;
}

/** The endpoints block pointing a OneDrive target at `emu` (one server for every host). */
export function onedriveEndpoints(emu: OneDriveEmulator): NonNullable<OnedriveOptions['endpoints']> {
  return { graph: emu.url, login: emu.url };
}

/** OneDrive target options for `emu`. */
export function onedriveOptions(emu: OneDriveEmulator, auth: 'delegated' | 'app' = 'delegated', remoteRoot = ONEDRIVE_REMOTE_ROOT): OnedriveOptions {
  return {
    id: 'onedrive',
    type: 'onedrive',
    remoteRoot,
    auth:
      auth === 'delegated'
        ? { kind: 'delegated', clientId: ONEDRIVE_CLIENT_ID, tenant: 'consumers' }
        : { kind: 'app', clientId: ONEDRIVE_CLIENT_ID, tenant: ONEDRIVE_TENANT, clientSecret: ONEDRIVE_CLIENT_SECRET, userId: emu.user.userPrincipalName },
    endpoints: onedriveEndpoints(emu),
  };
}

/** Signs `options` in with the device-code flow, approving the code on `emu` as a user would. */
export async function signIn(emu: OneDriveEmulator, options: OnedriveOptions, stateDir: string, printed: string[] = []): Promise<string> {
  return authorize(options, { stateDir }, {
    print(line) {
      printed.push(line);
      const m = /Enter the code ([A-Z0-9]+)/.exec(line);
      if (m) emu.approveDeviceCode(m[1]!);
    },
    prompt: () => Promise.reject(new Error('the device-code flow asks nothing')),
  });
}

export async function onedriveHarness(opts: OnedriveHarnessOptions = {}): Promise<OnedriveHarness> {
  // Interval 0: MSAL polls the token endpoint at once instead of every 5 s.
  const emu = await startOneDriveEmulator({ deviceCodeIntervalS: 0, clientSecret: ONEDRIVE_CLIENT_SECRET, ...opts.emulator });
  const { dir, cleanup } = await tempDir('stagecoach-onedrive-');
  const log = opts.log ?? pino({ level: 'silent' });
  const remoteRoot = opts.remoteRoot ?? ONEDRIVE_REMOTE_ROOT;
  const options = onedriveOptions(emu, opts.auth, remoteRoot);
  const printed: string[] = [];
  if (options.auth.kind === 'delegated') await signIn(emu, options, dir, printed);
  const make = (internals: OnedriveInternals = opts.internals ?? {}, l: Logger = log): Target => createOnedriveTarget(options, { log: l, stateDir: dir }, internals);
  const target = make();
  const made: Target[] = [target];
  const rootSegments = mapRemoteRoot(remoteRoot);
  const mapName = (p: string): string => mapOneDrivePath(p, 'onedrive', rootSegments).join('/');
  const prefix = rootSegments.length === 0 ? '/' : `/${rootSegments.join('/')}/`;
  return {
    target,
    emu,
    stateDir: dir,
    options,
    printed,
    reopen(internals, l) {
      const t = make(internals, l);
      made.push(t);
      return t;
    },
    drivePath: (p) => prefix + mapName(p),
    readBack: (p) => emu.readFile(prefix + p),
    listAll: async () => (await emu.tree()).filter((f) => f.path.startsWith(prefix)).map((f) => f.path.slice(prefix.length)),
    mapName,
    readMtimeMs: async (p) => {
      const info = emu.fileSystemInfo(prefix + p);
      return info ? Date.parse(info.lastModifiedDateTime) : null;
    },
    cleanup: async () => {
      await Promise.allSettled(made.map((t) => t.close()));
      await emu.close();
      await cleanup();
    },
  };
}
