/**
 * The four cloud emulators in a process of their own, so that a benchmark measuring the daemon's
 * memory measures the daemon alone. Started by bench/upload-rss.ts, never by hand:
 *
 *   node dist/bench/lib/emulator-child.js
 *
 * Listens on free loopback ports, then prints exactly one JSON line on stdout, an
 * `EmulatorReady`: each cloud's target block for a daemon config (endpoints and the emulators'
 * demo credentials, as in config/demo.yaml). Blobs go under `os.tmpdir()`, so the parent sets
 * TMPDIR to a folder it removes afterwards whatever happens. SIGTERM closes the servers, removes
 * the blobs and exits 0. With STAGECOACH_BENCH_LATENCY_MS set, every request waits that long
 * first. A line `requests` on stdin is answered with the request counts (see below).
 */
import { startAll } from '../../test/emulators/run.js';
import type { EmulatorReady } from './emulators.js';

async function main(): Promise<void> {
  const emus = await startAll({ ports: { gdrive: 0, dropbox: 0, box: 0, onedrive: 0 } });
  const { gdrive, dropbox, box, onedrive } = emus;
  // A fixed latency on every request (bench/pipeline-efficiency.ts), from the parent's env.
  const latencyMs = Number(process.env.STAGECOACH_BENCH_LATENCY_MS ?? 0);
  if (latencyMs > 0) for (const e of Object.values(emus)) e.server.setFaults({ latencyMs });
  const d = dropbox.credentials;
  const ready: EmulatorReady = {
    ready: true,
    pid: process.pid,
    targets: {
      gdrive: {
        type: 'gdrive',
        remoteRoot: 'Stagecoach',
        auth: { kind: 'oauth', clientId: 'demo-gdrive-client', clientSecret: 'demo-gdrive-secret', refreshToken: 'demo-gdrive-refresh' },
        endpoints: { rootUrl: `${gdrive.url}/`, tokenUrl: `${gdrive.url}/token` },
      },
      dropbox: {
        type: 'dropbox',
        remoteRoot: 'Stagecoach',
        auth: { appKey: d.clientId, appSecret: d.clientSecret, refreshToken: d.refreshToken },
        endpoints: { api: dropbox.url, content: dropbox.url },
      },
      box: {
        type: 'box',
        remoteRoot: 'Stagecoach',
        auth: { kind: 'oauth', clientId: box.clientId, clientSecret: box.clientSecret, refreshToken: 'demo-box-refresh' },
        endpoints: { baseUrl: box.url, uploadUrl: `${box.url}/api`, oauth2Url: `${box.url}/api/oauth2` },
      },
      onedrive: {
        type: 'onedrive',
        remoteRoot: 'Stagecoach',
        auth: {
          kind: 'app',
          tenant: onedrive.tenantId,
          clientId: 'demo-onedrive-client',
          clientSecret: 'demo-onedrive-secret',
          userId: onedrive.user.userPrincipalName,
        },
        endpoints: { graph: onedrive.url, login: onedrive.url },
      },
    },
    tokens: {
      gdrive: gdrive.issueAccessToken(3600),
      dropbox: dropbox.accessToken(3600),
      box: box.issueTokens().accessToken,
      onedrive: onedrive.issueAccessToken(3600),
    },
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await Promise.allSettled(
      Object.values(emus).map(async (e) => {
        await e.close();
        await e.blobs.destroy();
      }),
    );
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  // The parent's end of stdin closes when it dies: do not outlive it holding blobs.
  process.stdin.on('end', () => void stop());
  // `requests\n` on stdin: one JSON line `{"requests": {cloud: {total, token, connections,
  // servedMs}}}` on stdout, the requests each emulator has logged so far (token: those to its
  // OAuth token endpoint), the TCP connections it accepted, and the mean ms from a request's
  // arrival to the end of its answer (the injected latency included).
  let input = '';
  process.stdin.on('data', (c: Buffer) => {
    input += c.toString();
    for (let nl = input.indexOf('\n'); nl >= 0; nl = input.indexOf('\n')) {
      const cmd = input.slice(0, nl).trim();
      input = input.slice(nl + 1);
      if (cmd !== 'requests') continue;
      const counts = Object.fromEntries(
        Object.entries(emus).map(([name, e]) => {
          const all = e.server.requests();
          // By path only: Drive's list queries ask for `nextPageToken` in their query string,
          // and counting those as token requests hid half of Drive's requests.
          return [name, { total: all.length, token: all.filter((r) => /\/token$/i.test(new URL(r.url, 'http://x').pathname)).length, connections: e.server.connections, servedMs: e.server.served.count > 0 ? e.server.served.ms / e.server.served.count : 0 }];
        }),
      );
      process.stdout.write(`${JSON.stringify({ requests: counts })}\n`);
    }
  });
  process.stdin.resume();
}

void main().catch((err: unknown) => {
  process.stderr.write(`emulator-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
