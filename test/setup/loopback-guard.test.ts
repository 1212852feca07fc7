import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import dns, { resolve4 as namedResolve4 } from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { isLoopbackAddress, LoopbackGuardError } from './loopback-guard.js';

// Nothing here is ever sent to a public host: where a packet would leave if the guard failed, it
// goes to 192.0.2.1 (TEST-NET-1, RFC 5737: documentation only, never routed), and the name asked
// is under .invalid (RFC 6761: never resolves).
const TEST_NET = '192.0.2.1';
const NAME = 'stagecoach-guard.invalid';

/** What a promise or a node-style call fails with (or an Error saying it did not fail). */
async function failure(run: (cb: (e: Error | null) => void) => unknown): Promise<unknown> {
  return new Promise((resolve) => {
    try {
      const r = run((e) => resolve(e ?? new Error('no error')));
      if (r instanceof Promise) r.then(() => resolve(new Error('resolved')), resolve);
    } catch (e) {
      resolve(e);
    }
  });
}

/** Node code that tries a TCP connection, a DNS resolve and a UDP datagram to TEST-NET and prints what stopped each. */
const PROBE = `
const net = require('node:net'), dns = require('node:dns'), dgram = require('node:dgram');
const out = {};
const done = () => { if (Object.keys(out).length === 3) { console.log(JSON.stringify(out)); process.exit(0); } };
const s = net.connect({ host: '${TEST_NET}', port: 9 });
s.on('error', (e) => { out.tcp = e.name; done(); }); s.on('connect', () => { out.tcp = 'connected'; done(); });
const r = new dns.Resolver({ timeout: 300, tries: 1 }); r.setServers(['${TEST_NET}']);
r.resolve4('${NAME}', (e) => { out.dns = e ? e.name : 'answered'; done(); });
dgram.createSocket('udp4').send('x', 9, '${TEST_NET}', (e) => { out.udp = e ? e.name : 'sent'; done(); });
setTimeout(() => { console.log(JSON.stringify(out)); process.exit(0); }, 5000);
`;
const BLOCKED = { tcp: 'LoopbackGuardError', dns: 'LoopbackGuardError', udp: 'LoopbackGuardError' };

describe('loopback guard', () => {
  it('refuses a DNS lookup of a public host', async () => {
    await expect(dns.promises.lookup('www.googleapis.com')).rejects.toBeInstanceOf(LoopbackGuardError);
    await expect(
      new Promise((resolve, reject) => dns.lookup('api.box.com', (e, a) => (e ? reject(e) : resolve(a)))),
    ).rejects.toBeInstanceOf(LoopbackGuardError);
  });

  it('refuses a TCP connection to a non-loopback address', async () => {
    const err = await new Promise<Error>((resolve) => {
      const s = net.connect({ host: '192.0.2.1', port: 443 });
      s.once('error', resolve);
      s.once('connect', () => resolve(new Error('connected')));
    });
    expect(err).toBeInstanceOf(LoopbackGuardError);
  });

  it('fails an HTTP request to a public host through the global fetch and node:http', async () => {
    await expect(fetch('https://graph.microsoft.com/v1.0/me')).rejects.toThrow();
    const err = await new Promise<Error>((resolve) => {
      http.get('http://content.dropboxapi.com/2/files/upload', () => resolve(new Error('answered'))).once('error', resolve);
    });
    expect(err).toBeInstanceOf(LoopbackGuardError);
  });

  it('refuses dns.resolve* through a server that is not loopback, on every resolver path', async () => {
    const resolver = new dns.Resolver({ timeout: 300, tries: 1 });
    resolver.setServers([TEST_NET]);
    expect(await failure((cb) => resolver.resolve4(NAME, cb))).toBeInstanceOf(LoopbackGuardError);
    expect(await failure((cb) => resolver.resolveTxt(NAME, cb))).toBeInstanceOf(LoopbackGuardError);
    expect(await failure((cb) => resolver.reverse(TEST_NET, cb))).toBeInstanceOf(LoopbackGuardError);
    const promises = new dns.promises.Resolver({ timeout: 300, tries: 1 });
    promises.setServers([TEST_NET]);
    expect(await failure(() => promises.resolveAny(NAME))).toBeInstanceOf(LoopbackGuardError);

    const saved = dns.getServers();
    dns.setServers([TEST_NET]);
    try {
      expect(await failure((cb) => dns.resolve4(NAME, cb))).toBeInstanceOf(LoopbackGuardError);
      expect(await failure((cb) => namedResolve4(NAME, cb))).toBeInstanceOf(LoopbackGuardError);
      expect(await failure((cb) => dns.resolve(NAME, 'MX', cb))).toBeInstanceOf(LoopbackGuardError);
      expect(await failure(() => dns.promises.resolve6(NAME))).toBeInstanceOf(LoopbackGuardError);
    } finally {
      dns.setServers(saved);
    }
    expect(await failure((cb) => dns.lookupService(TEST_NET, 22, cb))).toBeInstanceOf(LoopbackGuardError);
  });

  it('lets a resolver whose server is loopback ask it', async () => {
    const server = dgram.createSocket('udp4');
    const asked = new Promise<Buffer>((resolve) => server.once('message', resolve));
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
    const resolver = new dns.Resolver({ timeout: 200, tries: 1 });
    resolver.setServers([`127.0.0.1:${server.address().port}`]);
    const answered = failure((cb) => resolver.resolve4(NAME, cb));
    const query = await asked;
    server.close();
    expect(query.includes(Buffer.from('stagecoach-guard'))).toBe(true);
    expect(await answered).not.toBeInstanceOf(LoopbackGuardError);
  });

  it('refuses a connection by name with a custom lookup, without calling the lookup', async () => {
    let called = false;
    const err = await new Promise<Error>((resolve) => {
      const s = net.connect({
        host: NAME,
        port: 443,
        lookup: ((_h: string, _o: unknown, cb: (e: null, a: string, f: number) => void) => {
          called = true;
          cb(null, TEST_NET, 4);
        }) as unknown as net.LookupFunction,
      });
      s.once('error', resolve);
      s.once('connect', () => resolve(new Error('connected')));
    });
    expect(err).toBeInstanceOf(LoopbackGuardError);
    expect(called).toBe(false);
  });

  it('refuses a UDP datagram to a non-loopback address', async () => {
    const socket = dgram.createSocket('udp4');
    const err = await failure((cb) => socket.send('x', 9, TEST_NET, cb));
    socket.close();
    expect(err).toBeInstanceOf(LoopbackGuardError);
  });

  it('guards a child process, even one given an env of its own, and its children', async () => {
    const run = (args: string[], env: NodeJS.ProcessEnv) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.once('error', reject);
        child.once('exit', () => resolve(out.trim()));
      });
    expect(JSON.parse(await run(['-e', PROBE], process.env))).toEqual(BLOCKED);
    // An env without NODE_OPTIONS (as a test that builds one from scratch would pass).
    expect(JSON.parse(await run(['-e', PROBE], { PATH: process.env.PATH }))).toEqual(BLOCKED);
    // A grandchild, started by that child with an empty env.
    const grandchild = `const r = require('node:child_process').spawnSync(process.execPath, ['-e', ${JSON.stringify(PROBE)}], { env: {}, encoding: 'utf8' }); process.stdout.write(r.stdout);`;
    expect(JSON.parse(await run(['-e', grandchild], { PATH: process.env.PATH }))).toEqual(BLOCKED);
    // The synchronous API, as test/helpers/daemon.ts's runCli uses.
    expect(JSON.parse(execFileSync(process.execPath, ['-e', PROBE], { env: {}, encoding: 'utf8', timeout: 10_000 }))).toEqual(BLOCKED);
  });

  it('guards a worker thread, with inherited flags and with an execArgv of its own', async () => {
    const code = `${PROBE.replace(/console\.log\(JSON\.stringify\(out\)\); process\.exit\(0\);/g, "require('node:worker_threads').parentPort.postMessage(out);")}`;
    for (const execArgv of [undefined, []]) {
      const w = new Worker(code, { eval: true, ...(execArgv ? { execArgv } : {}) });
      const out = await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      await w.terminate();
      expect(out).toEqual(BLOCKED);
    }
  });

  it('lets loopback through', async () => {
    const server = http.createServer((_q, s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
    const viaName = await (await fetch(`http://localhost:${port}/`)).text().catch(() => 'ipv6-only');
    server.close();
    expect(body).toBe('ok');
    expect(['ok', 'ipv6-only']).toContain(viaName);
    expect(isLoopbackAddress('127.0.0.5')).toBe(true);
    expect(isLoopbackAddress('10.0.0.1')).toBe(false);
  });
});
