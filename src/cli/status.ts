import type { Config } from '../config/index.js';
import { openJournal } from '../state/index.js';
import { readRootPresence, waitingReason } from '../pipeline/roots.js';
import { EXIT } from './exit-codes.js';

/**
 * `status`: per target pending, in flight, done, failed, skipped, and parked (or retrying) with the reason,
 * and each root the daemon is waiting for, then the files stored under another name than their
 * template gave (a name collision), read from the state store (SQLite in WAL mode: it works while
 * the daemon runs).
 */
export async function statusCommand(config: Config, opts: { json: boolean }): Promise<number> {
  const store = await openJournal(config);
  try {
    const [counts, health, renamed] = await Promise.all([store.counts(), store.health(), store.renamed(1000)]);
    const configured = config.targets.map((t) => t.id);
    const ids = [...new Set([...configured, ...counts.map((c) => c.target)])];
    const rows = ids.map((id) => {
      const c = counts.find((x) => x.target === id) ?? { pending: 0, inFlight: 0, done: 0, failed: 0, skipped: 0 };
      const h = health.find((x) => x.target === id);
      return {
        target: id,
        state: !configured.includes(id) ? 'not configured' : h?.status === 'down' ? 'parked' : h?.reason ? 'retrying' : 'up',
        pending: c.pending,
        inFlight: c.inFlight,
        done: c.done,
        failed: c.failed,
        skipped: c.skipped,
        reason: h?.reason ?? null,
        retryAt: h?.reason && h.retryAt ? new Date(h.retryAt).toISOString() : null,
      };
    });
    // A shared journal: the daemons on it, with their last heartbeat and the uploads they hold.
    const nodes = store.nodes ? await store.nodes() : null;
    // As the daemon last saw them (it writes each change of a root's presence).
    const seen = await readRootPresence(config.stateDir);
    const roots = config.roots.map((r) => {
      const p = seen.find((x) => x.name === r.name && x.path === r.path);
      const missing = p?.present === false;
      return {
        root: r.name,
        path: r.path,
        state: missing ? 'waiting' : 'watching',
        reason: missing ? (p.reason ?? waitingReason(r.path)) : null,
        skippedLinks: p?.skippedLinks ?? 0,
        polled: p?.polled ?? null,
      };
    });
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(nodes ? { targets: rows, roots, renamed, nodes } : { targets: rows, roots, renamed }, null, 2)}\n`);
      return EXIT.ok;
    }
    const head = ['TARGET', 'STATE', 'PENDING', 'IN FLIGHT', 'DONE', 'FAILED', 'SKIPPED'];
    const table = [head, ...rows.map((r) => [r.target, r.state, r.pending, r.inFlight, r.done, r.failed, r.skipped].map(String))];
    const widths = head.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    for (const row of table) process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
    for (const r of roots) if (r.reason) process.stdout.write(`\nroot ${r.root}: ${r.reason}\n`);
    for (const r of roots) if (r.polled) process.stdout.write(`\nroot ${r.root}: ${r.polled}\n`);
    for (const r of roots) {
      if (r.skippedLinks > 0) process.stdout.write(`\nroot ${r.root}: ${r.skippedLinks} symbolic link(s) not archived (followSymlinks; the log names each)\n`);
    }
    for (const r of rows) {
      if (r.reason && r.state === 'parked') process.stdout.write(`\n${r.target} is parked: ${r.reason}${r.retryAt ? ` (next try ${r.retryAt})` : ''}\n`);
      else if (r.reason) process.stdout.write(`\n${r.target} is ${r.reason}\n`);
    }
    // Two files one target would store under one name: the second went under another name.
    if (renamed.length > 0) process.stdout.write('\nstored under another name (another file owns the name there):\n');
    for (const r of renamed) process.stdout.write(`  ${r.target}: ${r.root}/${r.relPath} → ${r.remotePath} (wanted ${r.wanted})\n`);
    if (nodes) {
      const nhead = ['NODE', 'STATE', 'LAST HEARTBEAT', 'IN FLIGHT', 'READS', 'WATCHES'];
      const ntable = [
        nhead,
        ...nodes.map((n) => [n.name, n.alive ? 'up' : 'silent', new Date(n.lastSeen).toISOString(), String(n.leases), n.roots.join(',') || '-', n.watches.join(',') || '-']),
      ];
      const nw = nhead.map((_, i) => Math.max(...ntable.map((row) => row[i]!.length)));
      process.stdout.write('\n');
      for (const row of ntable) process.stdout.write(`${row.map((cell, i) => cell.padEnd(nw[i]!)).join('  ').trimEnd()}\n`);
    }
    return EXIT.ok;
  } finally {
    await store.close();
  }
}
