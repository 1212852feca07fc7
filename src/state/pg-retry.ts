/**
 * Which PostgreSQL failures are a lost connection (the server restarted, the network dropped the
 * socket, an idle connection was killed by the server or a proxy) rather than a statement's own
 * error, and how long to wait before trying again. Used by the PostgreSQL journal (pg-store.ts)
 * to retry a journal call on a fresh connection.
 */

/**
 * SQLSTATEs of a lost or refused connection: class 08 (connection exception), and the server
 * shutting down or starting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
 * cannot_connect_now). See https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const LOST_SQLSTATES = new Set(['57P01', '57P02', '57P03']);

/** Socket errors of a connection that failed or could not be made. */
const LOST_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EAI_AGAIN']);

/** What node-postgres says when the socket closed under a query, or a client that failed is reused. */
const LOST_MESSAGES = [
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'timeout exceeded when trying to connect',
];

/** True when `e` says the connection to PostgreSQL is gone or could not be made. */
export function isConnectionError(e: unknown): boolean {
  if (typeof e !== 'object' || e === null) return false;
  const code = (e as { code?: unknown }).code;
  // 08P01 (protocol_violation) is in class 08 but says the client sent something wrong: not retried.
  if (typeof code === 'string' && (LOST_SQLSTATES.has(code) || (code.startsWith('08') && code !== '08P01') || LOST_ERRNOS.has(code))) return true;
  const message = (e as { message?: unknown }).message;
  return typeof message === 'string' && LOST_MESSAGES.some((m) => message.includes(m));
}

/**
 * SQLSTATEs of a transaction PostgreSQL rolled back to resolve a conflict with another one:
 * 40P01 deadlock_detected and 40001 serialization_failure. Nothing of it was applied, and
 * PostgreSQL's documentation asks the application to run it again
 * (https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html). Several
 * daemons, and one daemon's heartbeat, leases and grouped completions, update the same rows
 * in different orders, so a deadlock is an ordinary event here, not a failure.
 */
const ROLLED_BACK_SQLSTATES = new Set(['40P01', '40001']);

/** True when `e` says PostgreSQL rolled the call's transaction back over a conflict (run it again). */
export function isConflictRollback(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && ROLLED_BACK_SQLSTATES.has(code);
}

/** How many times a call rolled back over a conflict is run again before its error is given up. */
export const CONFLICT_RETRIES = 10;

/** The wait before run `attempt` (1, 2, …) again after a conflict: a few ms, random, growing, so the two sides do not meet again. */
export function conflictDelay(attempt: number): number {
  return Math.round(Math.random() * 10 * Math.min(attempt, 10));
}

/** The wait before attempt `attempt` (1, 2, …) of a call whose connection was lost: 100 ms doubling to 5 s. */
export function reconnectDelay(attempt: number): number {
  return Math.min(5000, 100 * 2 ** Math.max(0, attempt - 1));
}

/** Whether the journal answered its last call, and since when (see PgStore.reachability). */
export interface JournalReachability {
  reachable: boolean;
  /** Epoch ms of the last change (the store's opening, at first). */
  since: number;
  /** While unreachable: the connection error, without the password. */
  error: string | null;
}
