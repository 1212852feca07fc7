/**
 * What an error from the OneDrive target means. Errors come in these shapes, all read here by
 * duck typing (no SDK import, so the table test needs neither SDK):
 *
 * - the Graph client's `GraphError`: `statusCode` (-1 when no answer came), `code` (Graph's
 *   string code), `headers` (the response's, with Retry-After), `body` (the error JSON as text,
 *   with `innerError.code`);
 * - the plain parsed body a failed upload fragment throws in the SDK's upload task:
 *   `{error: {code, message, innerError}}` without any status;
 * - OneDriveHttpError / OneDriveNetworkError: the target's own copies of the above (the answers
 *   of pre-authenticated upload URLs, which the target sends itself, and converted GraphErrors);
 * - MSAL's errors (`AuthError` and its subclasses: `errorCode`, `InteractionRequiredAuthError`);
 * - the errors the target raises itself (TargetError, ShortReadError, AbortError, SourceError:
 *   kit/classify.ts) and Node's network errors (`code: 'ECONNRESET'`, …).
 */
import { StagecoachError, TargetError } from '../../errors.js';
import { parseRetryAfter } from '../../retry/delay.js';
import { SourceError, classifyCommon, commonRule, describe, type ClassifyRule } from '../kit/classify.js';
import type { Classified } from '../target.js';
import type { GraphErrorBody } from './api-types.js';

export type { ClassifyRule } from '../kit/classify.js';

/**
 * An HTTP error answer from Graph or an upload URL, without the request that caused it (whose
 * headers hold the bearer token, or whose URL is a bearer capability). `graphCode` is Graph's
 * `error.code` (`activityLimitReached`, `quotaLimitReached`, …), `innerCode` its
 * `innerError.code` (`nameContainsInvalidCharacters`, `fragmentOverlap`, …). The message holds
 * neither a token nor a URL.
 */
export class OneDriveHttpError extends StagecoachError {
  readonly status: number;
  readonly graphCode: string | undefined;
  readonly innerCode: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly requestId: string | undefined;
  constructor(fields: {
    status: number;
    graphCode?: string | undefined;
    innerCode?: string | undefined;
    message: string;
    retryAfterMs?: number | undefined;
    requestId?: string | undefined;
  }) {
    super('onedrive.http', fields.message);
    this.name = 'OneDriveHttpError';
    this.status = fields.status;
    this.graphCode = fields.graphCode;
    this.innerCode = fields.innerCode;
    this.retryAfterMs = fields.retryAfterMs;
    this.requestId = fields.requestId;
  }
}

/** A request that got no HTTP answer (refused, reset, timed out). `errno` is the cause's code. */
export class OneDriveNetworkError extends StagecoachError {
  readonly errno: string | undefined;
  constructor(message: string, errno?: string) {
    super('onedrive.network', message);
    this.name = 'OneDriveNetworkError';
    this.errno = errno;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The Graph client's GraphError, read by duck typing. */
interface GraphErrorLike {
  statusCode: number;
  code?: unknown;
  message?: string;
  body?: unknown;
  requestId?: unknown;
  headers?: unknown;
}

function isGraphError(e: unknown): e is GraphErrorLike {
  if (typeof e !== 'object' || e === null) return false;
  const g = e as Record<string, unknown>;
  return typeof g.statusCode === 'number' && 'body' in g && 'code' in g && !(e instanceof OneDriveHttpError);
}

/** `{error: {code, …}}` without a status: what the SDK's upload task throws for a failed fragment. */
function isPlainGraphBody(e: unknown): e is GraphErrorBody {
  if (typeof e !== 'object' || e === null || e instanceof Error) return false;
  const inner = (e as { error?: unknown }).error;
  return typeof inner === 'object' && inner !== null && typeof (inner as { code?: unknown }).code === 'string';
}

function headerOf(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const h = headers as { get?: (k: string) => string | null } & Record<string, unknown>;
  if (typeof h.get === 'function') return h.get(name) ?? undefined;
  for (const [k, v] of Object.entries(h)) if (k.toLowerCase() === name) return typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : undefined;
  return undefined;
}

function innerCodeOf(error: GraphErrorBody['error'] | undefined): string | undefined {
  const inner = error?.innerError ?? error?.innererror;
  return str(inner?.code) ?? str((inner as { innerError?: { code?: unknown } } | undefined)?.innerError?.code);
}

function parseBody(body: unknown): GraphErrorBody['error'] | undefined {
  let v: unknown = body;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return undefined;
    }
  }
  if (typeof v !== 'object' || v === null) return undefined;
  // GraphError.body holds the inner object; a raw answer holds `{error: {...}}`.
  const inner = (v as { error?: unknown }).error;
  if (typeof inner === 'object' && inner !== null) return inner as GraphErrorBody['error'];
  return v as GraphErrorBody['error'];
}

/**
 * A GraphError of the Graph client (or a plain `{error}` body) as a OneDriveHttpError, a GraphError
 * without an answer as a OneDriveNetworkError; anything else unchanged. Only the answer is kept:
 * status, Graph's codes and message, Retry-After, request id.
 */
export function toOneDriveError(err: unknown, now: number = Date.now()): unknown {
  if (err instanceof OneDriveHttpError || err instanceof OneDriveNetworkError) return err;
  if (isGraphError(err)) {
    const message = str(err.message) ?? 'no message';
    if (err.statusCode <= 0) {
      // The transport's own error (already "no answer from <host>: …") or another one.
      return new OneDriveNetworkError(err.code === 'OneDriveNetworkError' ? message : `no answer from Graph: ${message}`, errnoOf(err));
    }
    const body = parseBody(err.body);
    return new OneDriveHttpError({
      status: err.statusCode,
      graphCode: str(err.code) ?? str(body?.code),
      innerCode: innerCodeOf(body),
      message,
      retryAfterMs: parseRetryAfter(headerOf(err.headers, 'retry-after'), now),
      requestId: str(err.requestId),
    });
  }
  if (isPlainGraphBody(err)) {
    return new OneDriveHttpError({
      status: 0,
      graphCode: err.error.code,
      innerCode: innerCodeOf(err.error),
      message: str(err.error.message) ?? err.error.code,
    });
  }
  return err;
}

function errnoOf(err: unknown): string | undefined {
  for (let e = err, i = 0; e && i < 5; i++) {
    // Node's fs errors carry the name in `code` ('EACCES') and a number in `errno` (-13).
    for (const code of [(e as { code?: unknown }).code, (e as { errno?: unknown }).errno]) {
      if (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code)) return code;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** MSAL's AuthError family, by duck typing: `errorCode` (string) and an MSAL class name. */
interface MsalErrorLike {
  name: string;
  errorCode: string;
  subError?: string;
  status?: number;
}

const MSAL_NAMES = new Set(['AuthError', 'ClientAuthError', 'ClientConfigurationError', 'InteractionRequiredAuthError', 'ServerError', 'NodeAuthError', 'NetworkError']);

function isMsalError(e: unknown): e is MsalErrorLike {
  return e instanceof Error && typeof (e as { errorCode?: unknown }).errorCode === 'string' && MSAL_NAMES.has(e.name);
}

// The saved sign-in no longer works: only a new sign-in (`stagecoach auth <id>`) helps.
const MSAL_REVOKED = new Set([
  'invalid_grant',
  'interaction_required',
  'consent_required',
  'login_required',
  'bad_token',
  'no_tokens_found',
  'refresh_token_expired',
  'native_account_unavailable',
  'user_password_expired',
]);
const MSAL_NO_ACCOUNT = new Set(['no_account_found', 'no_account_in_silent_request']);
// The app registration or the request is wrong: the config needs fixing.
const MSAL_CLIENT = new Set(['invalid_client', 'unauthorized_client', 'invalid_scope', 'invalid_resource', 'unsupported_grant_type', 'invalid_request']);
const MSAL_NETWORK = new Set(['network_error', 'no_network_connectivity', 'endpoints_resolution_error', 'openid_config_error', 'token_refresh_required']);

function msalRule(e: MsalErrorLike): ClassifyRule {
  const code = e.errorCode;
  if (e.name === 'InteractionRequiredAuthError' || MSAL_REVOKED.has(code)) return { kind: 'fatal', rule: 'auth-revoked' };
  if (MSAL_NO_ACCOUNT.has(code)) return { kind: 'fatal', rule: 'auth-missing' };
  if (MSAL_CLIENT.has(code)) return { kind: 'fatal', rule: 'auth-client-refused' };
  if (e.name === 'ClientConfigurationError') return { kind: 'fatal', rule: 'auth-config' };
  if (MSAL_NETWORK.has(code)) return { kind: 'retry', rule: 'network' };
  // temporarily_unavailable, a 5xx or 429 from the token endpoint, MSAL's own throttling.
  return { kind: 'retry', rule: 'auth-unavailable' };
}

// Graph's codes that mean the same whatever the status (some come without one).
const CODE_RULES: Record<string, ClassifyRule> = {
  quotaLimitReached: { kind: 'fatal', rule: 'storage-full' },
  insufficientStorage: { kind: 'fatal', rule: 'storage-full' },
  activityLimitReached: { kind: 'retry', rule: 'rate-limited' },
  InvalidAuthenticationToken: { kind: 'retry', rule: 'auth-expired' },
  unauthenticated: { kind: 'retry', rule: 'auth-expired' },
  nameAlreadyExists: { kind: 'fail-item', rule: 'path-blocked' },
  accessDenied: { kind: 'fatal', rule: 'access-denied' },
  Request_ResourceNotFound: { kind: 'fatal', rule: 'drive-not-found' },
  itemNotFound: { kind: 'retry', rule: 'not-found' },
  resourceModified: { kind: 'retry', rule: 'conflict' },
  invalidRange: { kind: 'retry', rule: 'range' },
  serviceNotAvailable: { kind: 'retry', rule: 'server-error' },
  generalException: { kind: 'retry', rule: 'server-error' },
  maxFileSizeExceeded: { kind: 'fail-item', rule: 'too-large' },
};

// `innerError.code`s of a 400 that say the name is refused.
const NAME_CODES = new Set(['nameContainsInvalidCharacters', 'invalidName', 'pathIsTooLong', 'nameTooLong', 'fileNameTooLong', 'invalidPath']);

// `innerError.code`s of an upload session that say where the session stands.
const INNER_RULES: Record<string, ClassifyRule> = {
  fragmentOverlap: { kind: 'retry', rule: 'range' },
  fragmentOutOfOrder: { kind: 'retry', rule: 'range' },
  invalidRange: { kind: 'retry', rule: 'range' },
  uploadSessionNotFound: { kind: 'retry', rule: 'not-found' },
  uploadSessionFailed: { kind: 'retry', rule: 'not-found' },
  throttledRequest: { kind: 'retry', rule: 'rate-limited' },
};

/** The rule for an HTTP answer: by the inner code, the status, then Graph's code. */
export function httpRule(status: number, graphCode: string | undefined, innerCode: string | undefined): ClassifyRule {
  if (innerCode && NAME_CODES.has(innerCode)) return { kind: 'fail-item', rule: 'name-refused' };
  const byInner = innerCode ? INNER_RULES[innerCode] : undefined;
  if (byInner) return byInner;
  if (status === 507) return { kind: 'fatal', rule: 'storage-full' };
  const byCode = graphCode ? CODE_RULES[graphCode] : undefined;
  if (byCode) return byCode;
  if (status === 401) return { kind: 'retry', rule: 'auth-expired' };
  if (status === 403) return { kind: 'fatal', rule: 'access-denied' };
  if (status === 404 || status === 410) return { kind: 'retry', rule: 'not-found' };
  if (status === 408) return { kind: 'retry', rule: 'network' };
  if (status === 409 || status === 412) return { kind: 'retry', rule: 'conflict' };
  if (status === 413) return { kind: 'fail-item', rule: 'too-large' };
  if (status === 416) return { kind: 'retry', rule: 'range' };
  if (status === 423) return { kind: 'retry', rule: 'locked' };
  if (status === 429) return { kind: 'retry', rule: 'rate-limited' };
  if (status >= 500) return { kind: 'retry', rule: 'server-error' };
  if (status >= 400) return { kind: 'fail-item', rule: 'bad-request' };
  // A fragment error without a status and with a code we do not know.
  return { kind: 'retry', rule: 'unknown' };
}

/** The rule `classify` applies to `error`, without the detail. Pure. */
export function classifyRule(error: unknown): ClassifyRule {
  const common = commonRule(error, 'onedrive');
  if (common) return common;
  if (isMsalError(error)) return msalRule(error);
  const e = toOneDriveError(error);
  if (e instanceof OneDriveHttpError) return httpRule(e.status, e.graphCode, e.innerCode);
  if (e instanceof OneDriveNetworkError) return { kind: 'retry', rule: 'network' };
  if (errnoOf(e)) return { kind: 'retry', rule: 'network' };
  return { kind: 'retry', rule: 'unknown' };
}

/** The Retry-After an error carries, in ms, if any (never for `fail-item`). */
export function retryAfterOf(error: unknown, now: number = Date.now()): number | undefined {
  if (error instanceof TargetError) return error.retryAfterMs;
  const e = toOneDriveError(error, now);
  return e instanceof OneDriveHttpError ? e.retryAfterMs : undefined;
}

/** A short description of `error` for a reason: Graph's status and codes, or the message. */
export function detailOf(error: unknown): string {
  if (error instanceof TargetError) return error.message.replace(/^\[stagecoach\] \[[^\]]*\] /, '');
  if (isMsalError(error)) {
    const m = error as MsalErrorLike & { errorMessage?: string };
    // MSAL's messages carry timestamps, trace and correlation ids over several lines: keep the
    // server's description (`AADSTS50173: …`), or else the first line.
    const msg = str(m.errorMessage) ?? '';
    const text = (/Description: ([^\r\n]*)/.exec(msg)?.[1] ?? msg.split(/\r?\n/)[0]!).replace(/ - (Timestamp|Correlation ID|Trace ID):.*$/, '').trim();
    return `the identity platform answered ${m.errorCode}${text ? `: ${text}` : ''}`;
  }
  if (error instanceof SourceError) return `source: ${describe(error.cause)}`;
  const e = toOneDriveError(error);
  if (e instanceof OneDriveHttpError) {
    const codes = [e.graphCode, e.innerCode].filter((c) => c !== undefined).join('/');
    const status = e.status > 0 ? `${e.status} ` : '';
    return `OneDrive answered ${status}${codes}${e.message && e.message !== e.graphCode ? `: ${e.message}` : ''}`;
  }
  return describe(e);
}

/** What the person running Stagecoach can do about a fatal rule, appended to its reason. */
export function adviceFor(rule: string, targetId: string): string {
  switch (rule) {
    case 'auth-revoked':
    case 'auth-missing':
      return `; run \`stagecoach auth ${targetId}\` to sign in again`;
    case 'auth-client-refused':
    case 'auth-config':
      return '; check the app registration (client id, tenant, secret, permissions) in the config';
    case 'storage-full':
      return '; free space on the OneDrive or raise its quota';
    case 'access-denied':
      return '; the signed-in account (or app) may not write there';
    case 'drive-not-found':
      return '; check `auth.userId` / `driveId` in the config';
    default:
      return '';
  }
}

/**
 * Tells what an error thrown by the OneDrive target means. Pure. In order:
 * - first the rules every target shares (kit/classify.ts `commonRule`: its own TargetErrors,
 *   the source side, aborts);
 * - MSAL: InteractionRequiredAuthError, `invalid_grant`, `interaction_required`,
 *   `no_tokens_found`, … → fatal `auth-revoked`; no account in the cache → fatal `auth-missing`;
 *   `invalid_client`/`unauthorized_client`/`invalid_scope` → fatal `auth-client-refused`; a
 *   ClientConfigurationError → fatal `auth-config`; `network_error` → retry `network`; anything
 *   else (temporarily_unavailable, 5xx) → retry `auth-unavailable`;
 * - Graph / upload answers: a 400 whose inner code refuses the name
 *   (`nameContainsInvalidCharacters`, `invalidName`, `pathIsTooLong`) → fail-item `name-refused`;
 *   507 or `quotaLimitReached`/`insufficientStorage` → fatal `storage-full`;
 *   `activityLimitReached` or 429 → retry `rate-limited`; 401 `InvalidAuthenticationToken` → retry
 *   `auth-expired` (the target already refreshed and replayed once); 403 `accessDenied` → fatal;
 *   `Request_ResourceNotFound` → fatal `drive-not-found`; 404 → retry `not-found`; 409
 *   `nameAlreadyExists` → fail-item `path-blocked`; other 409/412 → retry `conflict`; 413 →
 *   fail-item `too-large`; 416 → retry `range`; 423 → retry `locked`; 5xx → retry
 *   `server-error`; other 4xx → fail-item `bad-request`. Retry-After is passed on as
 *   `retryAfterMs` (not for fail-item);
 * - a GraphError without an answer, OneDriveNetworkError or an errno → retry `network`;
 * - anything unknown → retry `unknown`.
 * `reason` always starts with the rule's name, then `: ` and the detail.
 */
export function classify(error: unknown): Classified {
  const common = classifyCommon(error, 'onedrive');
  if (common) return common;
  const { kind, rule } = classifyRule(error);
  const detail = detailOf(error);
  const reason = detail.startsWith(`${rule}: `) ? detail : `${rule}: ${detail}`;
  const retryAfterMs = kind === 'fail-item' ? undefined : retryAfterOf(error);
  return retryAfterMs !== undefined ? { kind, reason, retryAfterMs } : { kind, reason };
}
