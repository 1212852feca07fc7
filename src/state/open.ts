import type { AuditStore } from './audit.js';
import type { NodeOptions } from './pg-store.js';
import type { JournalReachability } from './pg-retry.js';
import type { Store } from './store.js';

/** `url` with any password replaced, so that it can appear in logs and errors. */
export function describePgUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    u.search = '';
    return u.toString();
  } catch {
    return 'postgres://(unparseable url)';
  }
}

/** Where the journal lives, as the config says it. */
export interface JournalConfig {
  stateDir: string;
  /** A PostgreSQL journal shared by several daemons; null: SQLite under stateDir. */
  journal?: { url: string; leaseMs?: number } | null;
}

/** An open journal, a description of where it is (never with a password), and its audit view (both journals keep one). */
export type OpenJournal = Store & { readonly kind: 'sqlite' | 'postgres'; readonly where: string; readonly audit: AuditStore };

/**
 * Opens the configured journal: PostgreSQL when `journal.url` is set (node-postgres is loaded only
 * then), else the embedded SQLite file under `stateDir`. Errors as openSqliteStore / openPgStore.
 * `onError` hears errors of idle pooled PostgreSQL connections (the pool replaces them) and of
 * heartbeats; `onReachability` hears the PostgreSQL journal become unreachable (its calls wait and
 * retry) and reachable again. `node`: the daemon joins the PostgreSQL journal's fleet under that name (ignored by
 * SQLite, which one daemon owns); without it the store acts for the whole journal (the CLI).
 */
export async function openJournal(
  config: JournalConfig,
  opts: { onError?: (err: Error) => void; onReachability?: (r: JournalReachability) => void; node?: Omit<NodeOptions, 'leaseMs'> } = {},
): Promise<OpenJournal> {
  if (config.journal) {
    const { openPgStore } = await import('./pg-store.js');
    const node = opts.node ? { ...opts.node, ...(config.journal.leaseMs !== undefined ? { leaseMs: config.journal.leaseMs } : {}) } : undefined;
    const store = await openPgStore({
      url: config.journal.url,
      ...(opts.onError ? { onError: opts.onError } : {}),
      ...(opts.onReachability ? { onReachability: opts.onReachability } : {}),
      ...(node ? { node } : {}),
    });
    return Object.assign(store, { kind: 'postgres' as const });
  }
  const { openSqliteStore } = await import('./sqlite-store.js');
  const store = await openSqliteStore({ dir: config.stateDir });
  return Object.assign(store, { kind: 'sqlite' as const, where: store.path });
}
