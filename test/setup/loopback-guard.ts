/**
 * The loopback guard: in tests, any DNS lookup of a name other than localhost, and any TCP
 * connection to an address outside 127.0.0.0/8 or ::1, throws before a packet leaves. A forgotten
 * base URL (an SDK's default public host) fails the test instead of reaching a real cloud.
 * test/setup/loopback-guard.test.ts proves that it works.
 */
import dns from 'node:dns';
import net from 'node:net';

export class LoopbackGuardError extends Error {
  constructor(what: string) {
    super(`[stagecoach] loopback guard: refused ${what}; tests may reach only 127.0.0.1`);
    this.name = 'LoopbackGuardError';
  }
}

const LOCAL_NAMES = new Set(['localhost', 'localhost.', '127.0.0.1', '::1', '[::1]']);

export function isLoopbackAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (LOCAL_NAMES.has(h)) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./i.test(h);
  return false;
}

type AnyFn = (...args: unknown[]) => unknown;

function guardLookup(original: AnyFn): AnyFn {
  return function (this: unknown, ...args: unknown[]) {
    const host = String(args[0]);
    if (!isLoopbackAddress(host)) {
      const err = new LoopbackGuardError(`DNS lookup of ${host}`);
      const cb = args.find((a) => typeof a === 'function') as AnyFn | undefined;
      if (cb) {
        process.nextTick(() => cb(err));
        return undefined;
      }
      throw err;
    }
    return original.apply(this, args);
  };
}

const g = globalThis as { __stagecoachGuard?: boolean };
if (!g.__stagecoachGuard) {
  g.__stagecoachGuard = true;
  dns.lookup = guardLookup(dns.lookup as unknown as AnyFn) as unknown as typeof dns.lookup;
  const plookup = dns.promises.lookup as unknown as AnyFn;
  dns.promises.lookup = (async (...args: unknown[]) => {
    const host = String(args[0]);
    if (!isLoopbackAddress(host)) throw new LoopbackGuardError(`DNS lookup of ${host}`);
    return plookup(...args);
  }) as unknown as typeof dns.promises.lookup;

  const connect = net.Socket.prototype.connect as unknown as AnyFn;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    const first = args[0];
    let host: string | undefined;
    let isPipe = false;
    if (Array.isArray(first)) {
      const o = first[0] as { host?: string; path?: string };
      host = o?.host;
      isPipe = !!o?.path;
    } else if (first && typeof first === 'object') {
      const o = first as { host?: string; path?: string };
      host = o.host;
      isPipe = !!o.path;
    } else if (typeof first === 'string' && !/^\d+$/.test(first)) {
      isPipe = true;
    } else if (typeof args[1] === 'string') {
      host = args[1];
    }
    if (!isPipe && host !== undefined && !isLoopbackAddress(host) && net.isIP(host.replace(/^\[|\]$/g, '')) !== 0) {
      const err = new LoopbackGuardError(`connection to ${host}`);
      process.nextTick(() => this.destroy(err));
      return this;
    }
    return connect.apply(this, args);
  } as unknown as typeof net.Socket.prototype.connect;
}
