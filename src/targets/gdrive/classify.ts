/**
 * What an error from Google Drive means: retry (with the wait Drive asked for), fail the item,
 * or stop the target (fatal: credentials revoked, storage full, the daily upload cap).
 *
 * Errors reach this module in two forms. The target turns every error it meets into a
 * TargetError through `toTargetError` (kind decided here, a message with no token, URL query
 * or header in it, and a sanitised `cause`); `classify` then reads the kind back. Raw errors
 * (GaxiosError from the SDK, network errors, ShortReadError) are classified by the same table,
 * so a caller holding one gets the same answer.
 */
import { TargetError, type ErrorKind } from '../../errors.js';
import { parseRetryAfter } from '../../retry/delay.js';
import { SourceError, commonDetail, commonRule, describe, passThrough } from '../kit/classify.js';
import type { Classified } from '../target.js';
import { DAY_MS, type DriveErrorBody, type OAuthErrorBody } from './api-types.js';

/**
 * A Drive or token-endpoint answer, reduced to what is safe to keep and log: status, reason,
 * Google's message, Retry-After. It replaces the SDK's GaxiosError as the `cause` of the
 * TargetErrors the target throws, because a GaxiosError carries the request's config
 * (Authorization header, token request body) and a logger would print it.
 */
export class DriveHttpError extends Error {
  readonly status: number | undefined;
  readonly reason: string | undefined;
  /** The network error code (ECONNRESET…) or the OAuth error (`invalid_grant`…). */
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;
  constructor(info: DriveErrorInfo) {
    super(info.summary);
    this.name = 'DriveHttpError';
    this.status = info.status;
    this.reason = info.reason;
    this.code = info.network ?? info.oauthError;
    this.retryAfterMs = info.retryAfterMs;
  }
}

/** What `inspect` reads out of an error of any shape. */
export interface DriveErrorInfo {
  /** HTTP status, when a response came back. */
  status: number | undefined;
  /** Drive's `errors[0].reason` (`userRateLimitExceeded`, `storageQuotaExceeded`…). */
  reason: string | undefined;
  /** Drive's `errors[0].message` (or the top-level message). */
  message: string | undefined;
  /** The token endpoint's `error` (`invalid_grant`, `invalid_client`…). */
  oauthError: string | undefined;
  /** A network failure's code, when no response came back. */
  network: string | undefined;
  retryAfterMs: number | undefined;
  /** One line, token-free, URL queries removed. */
  summary: string;
}

/** A rule of the table: the kind it gives and its name, which starts every `reason`. */
export interface ClassifyRule {
  kind: ErrorKind;
  rule: string;
  retryAfterMs?: number;
  /** What happened, token-free; `reason` is `<rule>: <detail>`. */
  detail: string;
}

export interface ClassifyOptions {
  /** The target's id, named in the `stagecoach auth <id>` hint. */
  targetId?: string;
  /** The target's credentials: a refused service-account grant is not fixed by `stagecoach auth`. */
  authKind?: 'oauth' | 'serviceAccount';
  /** How long to park on the daily upload cap when Drive gives no Retry-After. Default 24 h. */
  dailyCapParkMs?: number;
  now?: number;
}

/** Drive's message for its 750 GB/day upload cap (rclone's `--drive-stop-on-upload-limit` keys on it). */
export const DAILY_CAP_MESSAGE = 'User rate limit exceeded.';

// Codes of a request that got no answer: the connection failed, was cut or timed out.
const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH',
  'EHOSTUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ESOCKETTIMEDOUT', 'TimeoutError', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ERR_STREAM_PREMATURE_CLOSE',
]);

// 403 reasons that stop everything under the target's root, not one item.
const FORBIDDEN_REASONS = new Set([
  'insufficientPermissions', 'insufficientFilePermissions', 'forbidden', 'domainPolicy', 'appNotAuthorizedToFile',
  'appNotAuthorizedToChild', 'accessNotConfigured', 'appAccess',
]);

/**
 * `text` with every URL cut to its origin and path (session URIs carry their capability in the
 * query; token requests their secrets), and anything shaped like a Google token or a Bearer
 * header replaced. Used on every message the target builds from text it did not write.
 */
export function redact(text: string): string {
  return text
    .replace(/\bhttps?:\/\/[^\s"'<>]+/g, (url) => {
      try {
        const u = new URL(url);
        return `${u.origin}${u.pathname}`;
      } catch {
        return '[url]';
      }
    })
    .replace(/\bBearer\s+[^\s"',]+/gi, 'Bearer [redacted]')
    .replace(/\bya29\.[\w.-]+/g, 'ya29.[redacted]')
    .replace(/\b1\/\/[\w.-]+/g, '1//[redacted]')
    .replace(/\b(access_token|refresh_token|client_secret|upload_id|code|assertion)=[^&\s"']+/g, '$1=[redacted]');
}

function headerOf(headers: unknown, name: string): string | undefined {
  if (headers === null || typeof headers !== 'object') return undefined;
  const h = headers as { get?: (n: string) => unknown } & Record<string, unknown>;
  if (typeof h.get === 'function') {
    const v = h.get(name);
    return typeof v === 'string' ? v : undefined;
  }
  const v = h[name] ?? h[name.toLowerCase()];
  return typeof v === 'string' ? v : undefined;
}

function networkCode(err: unknown): string | undefined {
  for (let e = err, i = 0; e !== null && typeof e === 'object' && i < 5; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    const name = (e as { name?: unknown }).name;
    if (name === 'TimeoutError') return 'TimeoutError';
    const msg = (e as { message?: unknown }).message;
    if (typeof msg === 'string' && /socket hang up/i.test(msg)) return 'ECONNRESET';
    // gaxios's words when the request's timeout signal fired (a shutdown's abort never gets
    // here: the uploader checks its own signal before classifying).
    if (typeof msg === 'string' && i === 0 && /^The operation was aborted\.?$/.test(msg) && (e as { config?: unknown }).config !== undefined) return 'TimeoutError';
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Reads status, Drive reason, OAuth error, network code and Retry-After out of a GaxiosError
 * (or anything shaped like one), or returns null when `err` is none of those. Pure.
 */
export function inspect(err: unknown, now: number = Date.now()): DriveErrorInfo | null {
  if (err === null || typeof err !== 'object') return null;
  if (err instanceof DriveHttpError) {
    return {
      status: err.status,
      reason: err.reason,
      message: err.message,
      oauthError: err.status !== undefined ? err.code : undefined,
      network: err.status === undefined ? err.code : undefined,
      retryAfterMs: err.retryAfterMs,
      summary: err.message,
    };
  }
  const e = err as { status?: unknown; response?: { status?: unknown; headers?: unknown; data?: unknown } };
  const statusRaw = e.response?.status ?? e.status;
  const status = typeof statusRaw === 'number' && statusRaw >= 100 && statusRaw < 600 ? statusRaw : undefined;
  if (status === undefined) {
    const network = networkCode(err);
    if (network === undefined) return null;
    return {
      status: undefined,
      reason: undefined,
      message: undefined,
      oauthError: undefined,
      network,
      retryAfterMs: undefined,
      summary: `no answer from Drive: ${network}`,
    };
  }
  const data = e.response?.data;
  let reason: string | undefined;
  let message: string | undefined;
  let oauthError: string | undefined;
  if (data !== null && typeof data === 'object') {
    const raw = (data as { error?: unknown }).error;
    if (typeof raw === 'string') {
      const body = data as OAuthErrorBody;
      oauthError = raw;
      message = typeof body.error_description === 'string' ? body.error_description : undefined;
    } else if (raw !== null && typeof raw === 'object') {
      const body = (data as DriveErrorBody).error!;
      const first = body.errors?.[0];
      reason = typeof first?.reason === 'string' ? first.reason : undefined;
      message = typeof first?.message === 'string' ? first.message : typeof body.message === 'string' ? body.message : undefined;
    }
  }
  const retryAfterMs = parseRetryAfter(headerOf(e.response?.headers, 'retry-after'), now);
  const what = oauthError !== undefined ? `the token endpoint answered ${status} ${oauthError}` : `Drive answered ${status}${reason ? ` ${reason}` : ''}`;
  const summary = redact(message ? `${what}: ${message}` : what);
  return { status, reason, message, oauthError, network: undefined, retryAfterMs, summary };
}

function authHint(targetId: string | undefined): string {
  return targetId ? `run \`stagecoach auth ${targetId}\`` : 'run `stagecoach auth <target id>`';
}

function fromInfo(info: DriveErrorInfo, opts: ClassifyOptions): ClassifyRule {
  const { status, reason, retryAfterMs, summary } = info;
  const withWait = (r: ClassifyRule): ClassifyRule => (retryAfterMs !== undefined ? { ...r, retryAfterMs } : r);
  if (info.network !== undefined) return { kind: 'retry', rule: 'network', detail: summary };
  if (status === undefined) return { kind: 'retry', rule: 'unknown', detail: summary };
  if (info.oauthError !== undefined) {
    if (info.oauthError === 'invalid_grant' && opts.authKind === 'serviceAccount') {
      return { kind: 'fatal', rule: 'auth-key-refused', detail: `the service account key was refused (deleted, disabled, or the account lacks access): check auth.keyFile (${summary})` };
    }
    if (info.oauthError === 'invalid_grant') {
      return { kind: 'fatal', rule: 'auth-revoked', detail: `the refresh token was revoked or expired: ${authHint(opts.targetId)} (${summary})` };
    }
    if (info.oauthError === 'invalid_client' || info.oauthError === 'unauthorized_client') {
      return { kind: 'fatal', rule: 'auth-client-refused', detail: `the OAuth client id or secret is not accepted: check the config (${summary})` };
    }
    if (status >= 500) return withWait({ kind: 'retry', rule: 'token-endpoint', detail: summary });
    return { kind: 'fatal', rule: 'auth-failed', detail: `the token endpoint refused to issue a token (${summary})` };
  }
  if (status === 401) return { kind: 'retry', rule: 'auth-expired', detail: `the access token was refused; it is refreshed before the next attempt (${summary})` };
  if (status === 429) return withWait({ kind: 'retry', rule: 'rate-limited', detail: summary });
  if (status === 403) {
    if (reason === 'userRateLimitExceeded' || reason === 'rateLimitExceeded') {
      if (info.message === DAILY_CAP_MESSAGE) {
        const park = retryAfterMs ?? opts.dailyCapParkMs ?? DAY_MS;
        return {
          kind: 'fatal',
          rule: 'daily-upload-cap',
          retryAfterMs: park,
          detail: `Drive's daily upload cap (750 GB per user per rolling 24 h) is reached; uploads resume in ${Math.round(park / 60_000)} min (${summary})`,
        };
      }
      return withWait({ kind: 'retry', rule: 'rate-limited', detail: summary });
    }
    if (reason === 'dailyLimitExceeded') {
      return { kind: 'fatal', rule: 'daily-quota', retryAfterMs: retryAfterMs ?? opts.dailyCapParkMs ?? DAY_MS, detail: `the API project's daily request quota is used up (${summary})` };
    }
    if (reason === 'storageQuotaExceeded' || reason === 'quotaExceeded') {
      return { kind: 'fatal', rule: 'storage-full', detail: `the Drive storage quota is exceeded (${summary})` };
    }
    if (reason === 'teamDriveFileLimitExceeded' || reason === 'numChildrenInNonRootLimitExceeded') {
      return { kind: 'fatal', rule: 'drive-item-limit', detail: `the shared drive or folder holds as many items as Drive allows (${summary})` };
    }
    if (reason !== undefined && FORBIDDEN_REASONS.has(reason)) {
      return { kind: 'fatal', rule: 'access-denied', detail: `the credentials may not write here (${summary})` };
    }
    return { kind: 'fail-item', rule: 'refused', detail: summary };
  }
  if (status === 404) return { kind: 'retry', rule: 'not-found', detail: `${summary} (a cached folder may have been deleted; the cache is dropped)` };
  if (status === 408 || status === 409 || status === 423) return withWait({ kind: 'retry', rule: 'conflict', detail: summary });
  if (status >= 500) return withWait({ kind: 'retry', rule: 'server-error', detail: summary });
  if (status === 413) return { kind: 'fail-item', rule: 'too-large', detail: summary };
  return { kind: 'fail-item', rule: 'bad-request', detail: summary };
}

/** The rule `classify` applies to `error`. Pure (given `opts.now`). */
export function classifyRule(error: unknown, opts: ClassifyOptions = {}): ClassifyRule {
  const common = commonRule(error, 'gdrive');
  if (common) {
    const detail = commonDetail(error, common.rule);
    return { ...common, detail: error instanceof TargetError ? detail : redact(detail) };
  }
  const info = inspect(error, opts.now);
  if (info) return fromInfo(info, opts);
  return { kind: 'retry', rule: 'unknown', detail: redact(describe(error)) };
}

/**
 * Tells what an error thrown by (or met inside) the Drive target means. Pure. In order:
 * - first the rules every target shares (kit/classify.ts `commonRule`: its own TargetErrors,
 *   the source side, aborts);
 * - no answer (ECONNRESET, ETIMEDOUT, socket hang up, timeouts…) → retry `network`;
 * - the token endpoint: `invalid_grant` → fatal `auth-revoked` ("the refresh token was revoked
 *   or expired: run `stagecoach auth <id>`"), or `auth-key-refused` for a service account; `invalid_client` → fatal `auth-client-refused`; 5xx →
 *   retry `token-endpoint`; other refusals → fatal `auth-failed`;
 * - 401 → retry `auth-expired` (the target has already dropped the access token);
 * - 403 `userRateLimitExceeded`/`rateLimitExceeded` with the message "User rate limit
 *   exceeded." → fatal `daily-upload-cap`, retryAfterMs = Retry-After or 24 h; with any other
 *   message ("User Rate Limit Exceeded") → retry `rate-limited` with Retry-After;
 *   `dailyLimitExceeded` → fatal `daily-quota` (24 h); `storageQuotaExceeded` → fatal
 *   `storage-full`; `teamDriveFileLimitExceeded` → fatal `drive-item-limit`; permission
 *   reasons → fatal `access-denied`; other 403 → fail-item `refused`;
 * - 429 → retry `rate-limited`, 5xx → retry `server-error`, 408/409/423 → retry `conflict`,
 *   each with Retry-After when given; 404 → retry `not-found`;
 * - 413 → fail-item `too-large`; other 4xx → fail-item `bad-request`; anything else → retry.
 * `reason` is `<rule>: <detail>`, free of tokens and URL queries.
 */
export function classify(error: unknown, opts: ClassifyOptions = {}): Classified {
  const r = classifyRule(error, opts);
  const out: Classified = { kind: r.kind, reason: `${r.rule}: ${r.detail}` };
  if (r.retryAfterMs !== undefined) out.retryAfterMs = r.retryAfterMs;
  return out;
}

/**
 * The TargetError the target throws for `error`: kind, rule and wait from the table above, a
 * token-free message, and as `cause` a DriveHttpError in place of an SDK error (which carries
 * request headers). TargetErrors, ShortReadErrors and AbortErrors pass through unchanged.
 */
export function toTargetError(targetId: string, error: unknown, opts: ClassifyOptions = {}): unknown {
  const known = passThrough(error, targetId);
  if (known !== undefined) return known;
  const r = classifyRule(error, { ...opts, targetId });
  const info = error instanceof SourceError ? null : inspect(error, opts.now);
  // An error that carries a request (config, response) is replaced; a plain one (a bug's
  // TypeError, a source error) is kept whole for its stack.
  const carriesRequest = error !== null && typeof error === 'object' && ('config' in error || 'response' in error);
  const cause = info ? new DriveHttpError(info) : carriesRequest ? new Error(redact(describe(error))) : error;
  const options: { cause: unknown; code: string; retryAfterMs?: number } = { cause, code: `gdrive.${r.rule}` };
  if (r.retryAfterMs !== undefined) options.retryAfterMs = r.retryAfterMs;
  return new TargetError(targetId, r.kind, `${r.rule}: ${r.detail}`, options);
}
