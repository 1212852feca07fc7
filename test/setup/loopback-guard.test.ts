import dns from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { isLoopbackAddress, LoopbackGuardError } from './loopback-guard.js';

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
