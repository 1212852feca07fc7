/**
 * Issue 16, item 12: every cloud target honours HTTPS_PROXY / HTTP_PROXY and NO_PROXY, as a NAS
 * behind a corporate proxy needs. A small proxy on 127.0.0.1 (port 0) answers both ways a client
 * may use it — CONNECT tunnels (what https URLs take, and gaxios for any URL) and absolute-URI
 * forwarding (http URLs) — and records where each request was going. The emulators are http, so
 * both variables point at the proxy, as a corporate environment sets them.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SuiteHarness } from '../conformance/target-suite.js';
import { boxHarness } from '../conformance/box-harness.js';
import { dropboxHarness } from '../conformance/dropbox-harness.js';
import { gdriveHarness } from '../conformance/gdrive-harness.js';
import { onedriveHarness } from '../conformance/onedrive-harness.js';
import { request, seededBytes } from '../conformance/sources.js';

interface Seen {
  kind: 'connect' | 'forward';
  /** host:port the client asked the proxy to reach. */
  to: string;
}

interface TestProxy {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

async function startProxy(): Promise<TestProxy> {
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute URI expected');
      return;
    }
    seen.push({ kind: 'forward', to: target.host });
    const out = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: target.pathname + target.search, headers: req.headers, agent: false },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const to = req.url ?? '';
    seen.push({ kind: 'connect', to });
    const [host, port] = [to.slice(0, to.lastIndexOf(':')), Number(to.slice(to.lastIndexOf(':') + 1))];
    const upstream = net.connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const VARS = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy'];
const saved = Object.fromEntries(VARS.map((k) => [k, process.env[k]]));
function clearProxyEnv(): void {
  for (const k of VARS) delete process.env[k];
}

let proxy: TestProxy;
let h: SuiteHarness | undefined;
beforeAll(async () => {
  proxy = await startProxy();
});
afterEach(async () => {
  clearProxyEnv();
  await h?.cleanup();
  h = undefined;
});
afterAll(async () => {
  await proxy.close();
  clearProxyEnv();
  for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
});

const targets: Array<[string, () => Promise<SuiteHarness & { emu: { url: string } }>]> = [
  ['gdrive', () => gdriveHarness()],
  ['dropbox', () => dropboxHarness()],
  ['box', () => boxHarness()],
  ['onedrive', () => onedriveHarness()],
];

describe('HTTPS_PROXY / NO_PROXY in every cloud target', () => {
  for (const [name, make] of targets) {
    it(`${name}: requests go through the proxy; with the emulator's host in NO_PROXY they go direct`, async () => {
      clearProxyEnv();
      const harness = await make();
      h = harness;
      const emuHost = new URL(harness.emu.url).host;
      const before = proxy.seen.length;

      process.env.HTTPS_PROXY = proxy.url;
      process.env.HTTP_PROXY = proxy.url;
      const one = seededBytes(1, 1000);
      await harness.target.put(request('proxied/one.txt', one));
      const through = proxy.seen.slice(before);
      expect(through.length, `${name} sent nothing through the proxy`).toBeGreaterThan(0);
      expect(through.every((s) => s.to === emuHost)).toBe(true);
      expect((await harness.readBack('proxied/one.txt'))?.equals(one)).toBe(true);

      process.env.NO_PROXY = '127.0.0.1';
      const after = proxy.seen.length;
      const two = seededBytes(2, 2000);
      await harness.target.put(request('direct/two.txt', two));
      expect(proxy.seen.slice(after)).toEqual([]);
      expect((await harness.readBack('direct/two.txt'))?.equals(two)).toBe(true);
    });
  }
});
