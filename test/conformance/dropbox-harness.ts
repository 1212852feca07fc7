/**
 * A conformance harness for the Dropbox target against a fresh Dropbox emulator: the target
 * archives under "/Stagecoach" of the emulated account, signed in with the emulator's app key,
 * secret and refresh token. The `endpoints` block gives the two hosts separate path prefixes
 * (`/api`, `/content`), so the emulator refuses any call the target sends to the wrong host.
 */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { createDropboxTarget } from '../../src/targets/dropbox/index.js';
import type { DropboxInternals, DropboxOptions } from '../../src/targets/dropbox/api-types.js';
import { mapDropboxPath } from '../../src/targets/dropbox/names.js';
import type { Target } from '../../src/targets/target.js';
import { createDropboxClient } from '../emulators/dropbox/client.js';
import { startDropboxEmulator, type DropboxEmulator, type DropboxEmulatorOptions } from '../emulators/dropbox/index.js';
import type { SuiteHarness } from './target-suite.js';

/** The folder at the top of the emulated Dropbox the harness's target archives into. */
export const DROPBOX_REMOTE_ROOT = 'Stagecoach';

export interface DropboxHarness extends SuiteHarness {
  emu: DropboxEmulator;
  options: DropboxOptions;
  /** Every log line the harness's targets wrote (JSON, debug level and up). */
  logs: string[];
  /** Another target on the same emulator and options (a restarted daemon). */
  reopen(internals?: DropboxInternals): Target;
}

export interface DropboxHarnessOptions {
  emulator?: DropboxEmulatorOptions;
  internals?: DropboxInternals;
  remoteRoot?: string;
  /** Sign in as a PKCE app (no secret) with a refresh token issued for it. */
  pkce?: boolean;
  log?: Logger;
}

/** The endpoints block pointing a Dropbox target at `emu`, one path prefix per host. */
export function dropboxEndpoints(emu: DropboxEmulator): NonNullable<DropboxOptions['endpoints']> {
  return { api: `${emu.url}/api`, content: `${emu.url}/content` };
}

/** Dropbox target options for `emu`: its confidential app, or a PKCE app registered for the test. */
export function dropboxOptions(emu: DropboxEmulator, opts: { remoteRoot?: string; pkce?: boolean } = {}): DropboxOptions {
  const remoteRoot = opts.remoteRoot ?? DROPBOX_REMOTE_ROOT;
  if (opts.pkce) {
    const appKey = 'stagecoach-pkce-app';
    const refreshToken = 'dbx-rt-pkce-harness';
    emu.oauth.addClient(appKey, null);
    emu.oauth.addRefreshToken(refreshToken, appKey, { pkce: true });
    return { id: 'dropbox', type: 'dropbox', remoteRoot, auth: { appKey, refreshToken }, endpoints: dropboxEndpoints(emu) };
  }
  const { clientId, clientSecret, refreshToken } = emu.credentials;
  return {
    id: 'dropbox',
    type: 'dropbox',
    remoteRoot,
    auth: { appKey: clientId, appSecret: clientSecret, refreshToken },
    endpoints: dropboxEndpoints(emu),
  };
}

/** A logger writing JSON lines into `lines`. */
export function captureLogger(lines: string[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return pino({ level: 'debug' }, sink);
}

export async function dropboxHarness(opts: DropboxHarnessOptions = {}): Promise<DropboxHarness> {
  const emu = await startDropboxEmulator(opts.emulator);
  const remoteRoot = opts.remoteRoot ?? DROPBOX_REMOTE_ROOT;
  const options = dropboxOptions(emu, { remoteRoot, ...(opts.pkce ? { pkce: true } : {}) });
  const logs: string[] = [];
  const log = opts.log ?? captureLogger(logs);
  const made: Target[] = [];
  const make = (internals: DropboxInternals = opts.internals ?? {}): Target => {
    const t = createDropboxTarget(options, { log, stateDir: '/nonexistent-state' }, internals);
    made.push(t);
    return t;
  };
  const target = make();
  const prefix = remoteRoot === '' ? '/' : `/${mapDropboxPath(remoteRoot).join('/')}/`;
  // The harness looks behind the target with its own client (the emulator's, not the product's).
  const inspector = createDropboxClient({ url: emu.url, ...emu.credentials });
  const find = async (p: string) => {
    const want = (prefix + p).toLowerCase();
    return (await emu.tree()).find((f) => f.path.toLowerCase() === want) ?? null;
  };
  return {
    target,
    emu,
    options,
    logs,
    reopen: (internals) => make(internals),
    readBack: async (p) => {
      const f = await find(p);
      return f ? emu.blobs.bytes(f.blob) : null;
    },
    listAll: async () => (await emu.tree()).filter((f) => f.path.startsWith(prefix)).map((f) => f.path.slice(prefix.length)),
    // NFC on top of the target's own mapping: a mapper that stored other forms would not match.
    mapName: (p) => mapDropboxPath(p).join('/').normalize('NFC'),
    readMtimeMs: async (p) => {
      try {
        const meta = (await inspector.filesGetMetadata({ path: prefix + p })).result as { client_modified?: string };
        return meta.client_modified ? Date.parse(meta.client_modified) : null;
      } catch {
        return null;
      }
    },
    cleanup: async () => {
      await Promise.allSettled(made.map((t) => t.close()));
      await emu.close();
    },
  };
}
