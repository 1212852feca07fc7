/**
 * `npm run emulators`: starts the four provider emulators on fixed loopback ports, with demo
 * credentials, and prints how to point a config at them. Runs until Ctrl-C.
 *
 *   npm run emulators -- [--latency MS] [--fault-rate 0.2] [--seed N]
 *
 * --fault-rate mixes 429 (with Retry-After), 500, 503, connection resets and hangs, as the
 * chaos tests do; token endpoints are spared.
 */
import { parseArgs } from 'node:util';
import { startBoxEmulator } from './box/index.js';
import { startDropboxEmulator } from './dropbox/index.js';
import { startGdriveEmulator } from './gdrive/index.js';
import type { Emulator, FaultConfig } from './harness/index.js';
import { startOneDriveEmulator } from './onedrive/index.js';

export const PORTS = { gdrive: 8701, dropbox: 8702, box: 8703, onedrive: 8704 } as const;
export const DEMO = {
  gdrive: { clientId: 'demo-gdrive-client', clientSecret: 'demo-gdrive-secret', refreshToken: 'demo-gdrive-refresh' },
  box: { refreshToken: 'demo-box-refresh' },
  onedrive: { refreshToken: 'demo-onedrive-refresh', clientId: 'demo-onedrive-client', clientSecret: 'demo-onedrive-secret' },
};

/** The fault mix of `--fault-rate`: throttling with Retry-After, server errors, resets, hangs. */
export function faultMix(rate: number): Partial<FaultConfig> {
  return {
    rate,
    mix: [
      { kind: 'status', status: 429, retryAfterS: 1, weight: 3 },
      { kind: 'status', status: 500, weight: 2 },
      { kind: 'status', status: 503, retryAfterS: 1, weight: 2 },
      { kind: 'reset', weight: 2 },
      { kind: 'hang', weight: 1 },
    ],
  };
}

export async function startAll(opts: { seed?: number; ports?: Partial<Record<keyof typeof PORTS, number>> } = {}) {
  const ports = { ...PORTS, ...opts.ports };
  const gdrive = await startGdriveEmulator({ port: ports.gdrive, seed: opts.seed, ...DEMO.gdrive });
  const dropbox = await startDropboxEmulator({ port: ports.dropbox, seed: opts.seed });
  const box = await startBoxEmulator({ port: ports.box, seed: opts.seed });
  box.addRefreshToken(DEMO.box.refreshToken);
  const onedrive = await startOneDriveEmulator({ port: ports.onedrive, seed: opts.seed, clientSecret: DEMO.onedrive.clientSecret });
  onedrive.addRefreshToken(DEMO.onedrive.refreshToken, DEMO.onedrive.clientId);
  return { gdrive, dropbox, box, onedrive };
}

/** What each emulated cloud holds, one browse page each: `  Drive     http://127.0.0.1:8701/`. */
export function browseLines(emus: Record<keyof typeof PORTS, Emulator>): string {
  const names: Record<keyof typeof PORTS, string> = { gdrive: 'Google Drive', dropbox: 'Dropbox', box: 'Box', onedrive: 'OneDrive' };
  return (Object.keys(names) as Array<keyof typeof PORTS>).map((k) => `  ${names[k].padEnd(13)} ${emus[k].url}/`).join('\n') + '\n';
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { latency: { type: 'string' }, 'fault-rate': { type: 'string' }, seed: { type: 'string' } },
  });
  const emus = await startAll({ seed: values.seed ? Number(values.seed) : undefined });
  const all: Emulator[] = Object.values(emus);
  for (const e of all) {
    if (values.latency) e.server.setFaults({ latencyMs: Number(values.latency) });
    if (values['fault-rate']) e.server.setFaults(faultMix(Number(values['fault-rate'])));
  }
  const d = emus.dropbox.credentials;
  process.stdout.write(`Emulators on loopback (bytes stored under each one's temp folder):
  gdrive    ${emus.gdrive.url}    client ${DEMO.gdrive.clientId} / ${DEMO.gdrive.clientSecret}, refresh token ${DEMO.gdrive.refreshToken}
  dropbox   ${emus.dropbox.url}    app key ${d.clientId} / ${d.clientSecret}, refresh token ${d.refreshToken}
  box       ${emus.box.url}    client ${emus.box.clientId} / ${emus.box.clientSecret}, refresh token ${DEMO.box.refreshToken}
  onedrive  ${emus.onedrive.url}    client ${DEMO.onedrive.clientId}, tenant ${emus.onedrive.tenantId}, refresh token ${DEMO.onedrive.refreshToken}

Point a target at one with its \`endpoints\` block, e.g.:
  - type: gdrive
    endpoints: { rootUrl: "${emus.gdrive.url}/", tokenUrl: "${emus.gdrive.url}/token" }
  - type: dropbox
    endpoints: { api: "${emus.dropbox.url}", content: "${emus.dropbox.url}" }
  - type: box
    endpoints: { baseUrl: "${emus.box.url}", uploadUrl: "${emus.box.url}/api", oauth2Url: "${emus.box.url}/api/oauth2" }
  - type: onedrive
    endpoints: { graph: "${emus.onedrive.url}", login: "${emus.onedrive.url}" }

What each cloud holds (read-only browse pages):
${browseLines(emus)}Ctrl-C stops them.
`);
  const stop = async () => {
    await Promise.all(all.map(async (e) => {
      await e.close();
      await e.blobs.destroy();
    }));
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) void main();

