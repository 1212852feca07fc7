/**
 * What the status server trusts about a connection before it reads a request: which Host names it
 * answers to, how many connections it keeps, and how many descriptors it leaves to the rest of
 * the daemon (the watcher, the journal, the uploads).
 */
import fs from 'node:fs';
import type http from 'node:http';
import net from 'node:net';

/** True for 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: a bind reachable only from here. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (h === 'localhost') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** The name part of a Host header, lower-case, without brackets, port or trailing dot. */
export function hostName(header: string | undefined): string {
  if (!header) return '';
  const m = /^(\[[^\]]*\]|[^:]*)/.exec(header.trim());
  return (m?.[1] ?? '').replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

/**
 * The Host allowlist, on whatever the bind. A DNS-rebinding page reaches the server under the
 * attacker's own name, so only names the owner chose are answered:
 * - an IP address (a rebinding page cannot send one as its Host): the NAS's address, 127.0.0.1;
 * - `localhost` and names under `.localhost`;
 * - the bind address when it is a name;
 * - each entry of `allowed` (http.allowedHosts): a name, or `.example.lan` for that domain and
 *   every name under it.
 */
export function hostAllowlist(bind: string, allowed: readonly string[]): (header: string | undefined) => boolean {
  const exact = new Set([hostName(bind), 'localhost']);
  const suffixes = ['.localhost'];
  for (const entry of allowed) {
    const e = hostName(entry);
    if (e.startsWith('.')) {
      suffixes.push(e);
      exact.add(e.slice(1));
    } else if (e) {
      exact.add(e);
    }
  }
  return (header) => {
    const name = hostName(header);
    if (!name) return false;
    if (net.isIP(name) !== 0) return true;
    return exact.has(name) || suffixes.some((s) => name.endsWith(s));
  };
}

/** The soft limit on open descriptors (Linux: /proc/self/limits), or null when unknown. */
export function openFileLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * How many connections the server keeps open: an eighth of the descriptor limit (1024 assumed
 * when unknown), between 8 and 512. The other seven eighths stay with the watcher, the journal
 * and the uploads, so no number of clients can starve them (EMFILE).
 */
export function connectionCap(fdLimit: number | null): number {
  return Math.max(8, Math.min(512, Math.floor((fdLimit ?? 1024) / 8)));
}

export interface ConnectionLimit {
  /** Connections open now. */
  readonly open: number;
  /** Connections closed to make room or refused since the start. */
  readonly shed: number;
}

/**
 * Keeps at most `cap` connections open on `server`. A connection that arrives when all are taken
 * closes the oldest one that has no request in progress (still sending its headers, or idle
 * between keep-alive requests), so slow clients cannot hold the page and /healthz away from the
 * others; when every connection is mid-request the newcomer is closed instead. `onShed` is called
 * for each connection closed this way (the caller rate-limits its log line).
 */
export function limitConnections(server: http.Server, cap: number, onShed: () => void): ConnectionLimit {
  const all = new Set<net.Socket>();
  // Insertion order is age: the first is the one to close.
  const waiting = new Set<net.Socket>();
  let shed = 0;
  const drop = (socket: net.Socket) => {
    all.delete(socket);
    waiting.delete(socket);
    socket.destroy();
    shed++;
    onShed();
  };
  server.on('connection', (socket: net.Socket) => {
    if (all.size >= cap) {
      const oldest = waiting.values().next();
      if (oldest.done) return drop(socket);
      drop(oldest.value);
    }
    all.add(socket);
    waiting.add(socket);
    socket.once('close', () => {
      all.delete(socket);
      waiting.delete(socket);
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    waiting.delete(socket);
    res.once('close', () => {
      if (all.has(socket) && !socket.destroyed) waiting.add(socket);
    });
  });
  return {
    get open() {
      return all.size;
    },
    get shed() {
      return shed;
    },
  };
}
