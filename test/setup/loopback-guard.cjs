/**
 * The loopback guard: in tests, nothing leaves 127.0.0.0/8 or ::1. It throws (or fails the
 * callback, or rejects) before a packet leaves on every path a test, a daemon it starts or an SDK
 * could take:
 *
 * - dns.lookup / lookupService (and dns.promises) of anything but a loopback name or address;
 * - dns.resolve* and reverse, module-level, dns.promises and every dns.Resolver, unless all of the
 *   resolver's servers are loopback (c-ares sends its own UDP, past net.Socket);
 * - a TCP connection (net.Socket#connect: net, http, https, tls, fetch) to any host but a loopback
 *   name or address, a name with a custom `lookup` included (the lookup is never called);
 * - a UDP datagram (dgram.Socket#send / #connect) to a non-loopback address;
 * - child processes: NODE_OPTIONS carries `--require <this file>`, in process.env and in any `env`
 *   given to child_process.spawn/spawnSync/exec/execSync/execFile/execFileSync/fork, so the daemon
 *   a test starts (and whatever it starts) is guarded as well;
 * - worker threads: every Worker gets `--require <this file>` in its execArgv (workers do not read
 *   NODE_OPTIONS' --import, and an explicit execArgv drops inherited flags).
 *
 * Plain CommonJS, so that `node --require` loads it in children and workers without a build.
 * test/setup/loopback-guard.ts installs it in the test process; test/setup/loopback-guard.test.ts
 * proves each path is blocked.
 */
'use strict';

const childProcess = require('node:child_process');
const dgram = require('node:dgram');
const dns = require('node:dns');
const dnsPromises = require('node:dns/promises');
const { syncBuiltinESMExports } = require('node:module');
const net = require('node:net');
const workerThreads = require('node:worker_threads');

const GUARD_FILE = __filename;
const GUARD_FLAG = `--require=${JSON.stringify(GUARD_FILE)}`;

// One class per process, however many times this file is loaded, so instanceof holds.
const LoopbackGuardError = (globalThis.__stagecoachGuardError ??= class LoopbackGuardError extends Error {
  constructor(what) {
    super(`[stagecoach] loopback guard: refused ${what}; tests may reach only 127.0.0.1`);
    this.name = 'LoopbackGuardError';
    this.code = 'ELOOPBACKGUARD';
  }
});

const LOCAL_NAMES = new Set(['localhost', 'localhost.', '127.0.0.1', '::1', '[::1]']);

function isLoopbackAddress(host) {
  const h = String(host).replace(/^\[|\]$/g, '').toLowerCase();
  if (LOCAL_NAMES.has(h)) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./i.test(h);
  return false;
}

/** A DNS server entry ("8.8.8.8", "[::1]:53", "127.0.0.1:5353") is loopback. */
function isLoopbackServer(server) {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(server) ?? /^([^:]+)(?::\d+)?$/.exec(server);
  return isLoopbackAddress(m ? m[1] : server);
}

/** Fails the call the way its API fails: the callback, a rejected promise, or a throw. */
function refuse(args, err, { promise = false } = {}) {
  if (promise) return Promise.reject(err);
  const cb = [...args].reverse().find((a) => typeof a === 'function');
  if (cb) {
    process.nextTick(() => cb(err));
    return undefined;
  }
  throw err;
}

const g = globalThis;
if (!g.__stagecoachGuard) {
  g.__stagecoachGuard = true;

  // --- lookups
  for (const [target, promise] of [
    [dns, false],
    [dnsPromises, true],
  ]) {
    const lookup = target.lookup;
    target.lookup = function (...args) {
      if (!isLoopbackAddress(args[0])) return refuse(args, new LoopbackGuardError(`DNS lookup of ${args[0]}`), { promise });
      return lookup.apply(this, args);
    };
    const lookupService = target.lookupService;
    target.lookupService = function (...args) {
      if (!isLoopbackAddress(args[0])) return refuse(args, new LoopbackGuardError(`DNS lookupService of ${args[0]}`), { promise });
      return lookupService.apply(this, args);
    };
  }

  // --- resolvers (c-ares): module-level functions are bound copies, so both they and the
  // prototypes are wrapped.
  const RESOLVE = ['resolve', 'resolve4', 'resolve6', 'resolveAny', 'resolveCaa', 'resolveCname', 'resolveMx', 'resolveNaptr', 'resolveNs', 'resolvePtr', 'resolveSoa', 'resolveSrv', 'resolveTxt', 'reverse'];
  const guardResolve = (holder, name, servers, promise) => {
    const original = holder[name];
    if (typeof original !== 'function') return;
    holder[name] = function (...args) {
      const list = servers(this);
      if (list.length === 0 || !list.every(isLoopbackServer)) {
        return refuse(args, new LoopbackGuardError(`DNS ${name} of ${args[0]} through ${list.join(', ') || 'the system resolver'}`), { promise });
      }
      return original.apply(this, args);
    };
  };
  for (const name of RESOLVE) {
    guardResolve(dns, name, () => dns.getServers(), false);
    guardResolve(dnsPromises, name, () => dnsPromises.getServers(), true);
    guardResolve(dns.Resolver.prototype, name, (self) => self.getServers(), false);
    guardResolve(dnsPromises.Resolver.prototype, name, (self) => self.getServers(), true);
  }

  // --- TCP: every host but loopback, by address or by name (a custom lookup could map any name).
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    const first = args[0];
    let host;
    let isPipe = false;
    if (Array.isArray(first)) {
      const o = first[0] ?? {};
      host = o.host;
      isPipe = Boolean(o.path);
    } else if (first && typeof first === 'object') {
      host = first.host;
      isPipe = Boolean(first.path);
    } else if (typeof first === 'string' && !/^\d+$/.test(first)) {
      isPipe = true;
    } else if (typeof args[1] === 'string') {
      host = args[1];
    }
    if (!isPipe && host !== undefined && host !== null && host !== '' && !isLoopbackAddress(host)) {
      const err = new LoopbackGuardError(`connection to ${host}`);
      process.nextTick(() => this.destroy(err));
      return this;
    }
    return connect.apply(this, args);
  };

  // --- UDP
  const send = dgram.Socket.prototype.send;
  dgram.Socket.prototype.send = function (...args) {
    const address = args.slice(1).find((a) => typeof a === 'string');
    if (address !== undefined && !isLoopbackAddress(address)) return refuse(args, new LoopbackGuardError(`UDP datagram to ${address}`));
    return send.apply(this, args);
  };
  const udpConnect = dgram.Socket.prototype.connect;
  dgram.Socket.prototype.connect = function (...args) {
    const address = typeof args[1] === 'string' ? args[1] : undefined;
    if (address !== undefined && !isLoopbackAddress(address)) return refuse(args, new LoopbackGuardError(`UDP connection to ${address}`));
    return udpConnect.apply(this, args);
  };

  // --- child processes
  const withGuard = (nodeOptions) => (String(nodeOptions ?? '').includes(GUARD_FILE) ? nodeOptions : `${nodeOptions ? `${nodeOptions} ` : ''}${GUARD_FLAG}`);
  process.env.NODE_OPTIONS = withGuard(process.env.NODE_OPTIONS);
  const guardEnv = (args) => {
    // The options object is the last plain object among the arguments, if any.
    for (let i = args.length - 1; i >= 1; i--) {
      const a = args[i];
      if (a && typeof a === 'object' && !Array.isArray(a)) {
        if (a.env) args[i] = { ...a, env: { ...a.env, NODE_OPTIONS: withGuard(a.env.NODE_OPTIONS) } };
        return args;
      }
    }
    return args;
  };
  for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
    const original = childProcess[name];
    childProcess[name] = function (...args) {
      return original.apply(this, guardEnv(args));
    };
  }

  // --- worker threads
  const Worker = workerThreads.Worker;
  workerThreads.Worker = class GuardedWorker extends Worker {
    constructor(filename, options = {}) {
      const execArgv = options.execArgv ?? process.execArgv;
      super(filename, { ...options, execArgv: execArgv.some((a) => String(a).includes(GUARD_FILE)) ? execArgv : [...execArgv, '--require', GUARD_FILE] });
    }
  };

  // ESM named imports (`import { lookup } from 'node:dns'`) see the patched functions too.
  syncBuiltinESMExports();
}

module.exports = { LoopbackGuardError, isLoopbackAddress, GUARD_FILE };
