/**
 * What an error from the Box target means. The SDK's errors are converted at the boundary
 * (`toBoxError`) into BoxHttpError / BoxNetworkError: plain copies that keep the status, Box's
 * code, Retry-After and the conflicts, and drop the request (its headers hold the bearer token
 * and a token request's body holds the refresh token and client secret). `classify` reads those,
 * the raw SDK errors (same table), and the errors the target raises itself.
 */
import { StagecoachError } from '../../errors.js';
import { parseRetryAfter } from '../../retry/delay.js';
import { classifyCommon, commonRule, describe, type ClassifyRule } from '../kit/classify.js';
import type { Classified } from '../target.js';
import type { BoxConflictJson, BoxErrorBody } from './api-types.js';

export type { ClassifyRule } from '../kit/classify.js';

/**
 * An HTTP error answer from Box, without the request that caused it. `boxCode` is Box's `code`
 * (`item_name_in_use`, `storage_limit_exceeded`, …) or, from the token endpoint, the OAuth
 * `error` (`invalid_grant`). The message holds no token.
 */
export class BoxHttpError extends StagecoachError {
  readonly status: number;
  readonly boxCode: string | undefined;
  readonly retryAfterMs: number | undefined;
  readonly requestId: string | undefined;
  /** The items a 409 `item_name_in_use` names (Box sends one object or an array). */
  readonly conflicts: BoxConflictJson[];
  constructor(fields: {
    status: number;
    boxCode?: string | undefined;
    message: string;
    retryAfterMs?: number | undefined;
    requestId?: string | undefined;
    conflicts?: BoxConflictJson[];
  }) {
    super('box.http', fields.message);
    this.name = 'BoxHttpError';
    this.status = fields.status;
    this.boxCode = fields.boxCode;
    this.retryAfterMs = fields.retryAfterMs;
    this.requestId = fields.requestId;
    this.conflicts = fields.conflicts ?? [];
  }
}

/** A request that got no HTTP answer (refused, reset, timed out). `errno` is the cause's code. */
export class BoxNetworkError extends StagecoachError {
  readonly errno: string | undefined;
  constructor(message: string, errno?: string) {
    super('box.network', message);
    this.name = 'BoxNetworkError';
    this.errno = errno;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The shape of box-node-sdk's BoxApiError, read by duck typing (no SDK import here). */
interface SdkApiErrorLike {
  message?: string;
  responseInfo: { statusCode: number; headers?: Record<string, string>; body?: unknown; requestId?: unknown };
}

function isSdkApiError(e: unknown): e is SdkApiErrorLike {
  const ri = (e as { responseInfo?: { statusCode?: unknown } } | null)?.responseInfo;
  return typeof ri === 'object' && ri !== null && typeof ri.statusCode === 'number';
}

/** box-node-sdk's BoxSdkError without an HTTP answer: `error` is what fetch threw. */
function isSdkNetworkError(e: unknown): e is Error & { error?: unknown } {
  return e instanceof Error && e.name === 'BoxSdkError' && !isSdkApiError(e);
}

function errnoOf(err: unknown): string | undefined {
  for (let e = err, i = 0; e && i < 5; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code)) return code;
    e = (e as { cause?: unknown; error?: unknown }).error ?? (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function conflictsOf(body: BoxErrorBody | undefined): BoxConflictJson[] {
  const c = body?.context_info?.conflicts;
  if (Array.isArray(c)) return c.filter((x) => typeof x === 'object' && x !== null);
  return typeof c === 'object' && c !== null ? [c] : [];
}

/**
 * A BoxApiError or BoxSdkError of box-node-sdk as a BoxHttpError or BoxNetworkError; anything
 * else unchanged. `redact` scrubs the message (the caller knows the secrets). Only the response
 * is kept: status, Box's code and message, Retry-After, request id, conflicts.
 */
export function toBoxError(err: unknown, redact: (s: string) => string = (s) => s, now: number = Date.now()): unknown {
  if (err instanceof BoxHttpError || err instanceof BoxNetworkError) return err;
  if (isSdkApiError(err)) {
    const ri = err.responseInfo;
    const body = (typeof ri.body === 'object' && ri.body !== null ? ri.body : undefined) as BoxErrorBody | undefined;
    const boxCode = str(body?.code) ?? str(body?.error);
    const text = str(body?.message) ?? str(body?.error_description);
    const requestId = str(body?.request_id) ?? str(ri.requestId);
    const retryAfterMs = parseRetryAfter(ri.headers?.['retry-after'], now);
    const parts = [`HTTP ${ri.statusCode}`, boxCode, text && `"${text}"`, requestId && `(request ${requestId})`].filter(Boolean);
    return new BoxHttpError({ status: ri.statusCode, boxCode, message: redact(parts.join(' ')), retryAfterMs, requestId, conflicts: conflictsOf(body) });
  }
  if (isSdkNetworkError(err)) {
    const inner = err.error;
    const errno = errnoOf(inner) ?? errnoOf(err);
    const what = inner instanceof Error ? inner.message : err.message;
    return new BoxNetworkError(redact(`no answer from Box: ${what}`), errno);
  }
  return err;
}

const NAME_RULES = 'Box refuses / and \\, control characters, a trailing space, "." and ".."';

const OAUTH: Record<string, ClassifyRule> = {
  invalid_grant: { kind: 'fatal', rule: 'auth-revoked' },
  invalid_client: { kind: 'fatal', rule: 'auth-client-refused' },
  unauthorized_client: { kind: 'fatal', rule: 'auth-client-refused' },
  invalid_request: { kind: 'fatal', rule: 'auth-failed' },
};

/** The rule for an HTTP answer. Pure. */
export function httpRule(status: number, boxCode: string | undefined): ClassifyRule {
  const oauth = boxCode ? OAUTH[boxCode] : undefined;
  if (oauth && (status === 400 || status === 401)) return oauth;
  if (status === 401) return { kind: 'retry', rule: 'auth-expired' };
  if (status === 403) {
    if (boxCode === 'storage_limit_exceeded') return { kind: 'fatal', rule: 'storage-full' };
    if (boxCode === 'file_size_limit_exceeded') return { kind: 'fail-item', rule: 'too-large' };
    if (boxCode === 'access_denied_item_locked') return { kind: 'fail-item', rule: 'locked' };
    return { kind: 'fatal', rule: 'access-denied' };
  }
  if (status === 404) return { kind: 'retry', rule: 'not-found' };
  if (status === 409) {
    if (boxCode === 'item_name_in_use') return { kind: 'fail-item', rule: 'name-in-use' };
    return { kind: 'retry', rule: 'conflict' };
  }
  if (status === 400) {
    if (boxCode === 'item_name_invalid') return { kind: 'fail-item', rule: 'name-refused' };
    if (boxCode === 'item_name_too_long') return { kind: 'fail-item', rule: 'name-too-long' };
    if (boxCode === 'bad_digest' || boxCode === 'digest_mismatch') return { kind: 'retry', rule: 'hash-mismatch' };
    if (boxCode === 'parts_mismatch') return { kind: 'retry', rule: 'session-broken' };
    return { kind: 'fail-item', rule: 'bad-request' };
  }
  if (status === 408) return { kind: 'retry', rule: 'timeout' };
  if (status === 412) return { kind: 'retry', rule: 'precondition-failed' };
  if (status === 416) return { kind: 'retry', rule: 'session-range' };
  if (status === 429) return { kind: 'retry', rule: 'rate-limited' };
  if (status >= 500) return { kind: 'retry', rule: 'server-error' };
  if (status >= 400) return { kind: 'fail-item', rule: 'refused' };
  return { kind: 'retry', rule: 'unexpected-status' };
}

/** The rule `classify` applies to `error`, without the detail. Pure. */
export function classifyRule(error: unknown): ClassifyRule {
  const common = commonRule(error, 'box');
  if (common) return common;
  const e = toBoxError(error);
  if (e instanceof BoxHttpError) return httpRule(e.status, e.boxCode);
  if (e instanceof BoxNetworkError) return { kind: 'retry', rule: 'network' };
  if (errnoOf(error)) return { kind: 'retry', rule: 'network' };
  return { kind: 'retry', rule: 'unknown' };
}

/** Words added to the reason of some rules, so that `status` tells the user what to do. */
function advice(rule: string, targetId = '<target>'): string {
  switch (rule) {
    case 'auth-revoked':
      return `: Box no longer accepts this sign-in; run \`stagecoach auth ${targetId}\` to sign in again`;
    case 'auth-client-refused':
      return ': Box refuses the app credentials (clientId / clientSecret)';
    case 'storage-full':
      return ': the Box account is out of storage';
    case 'name-refused':
      return `: ${NAME_RULES}`;
    case 'name-too-long':
      return ': Box allows 255 characters per name';
    default:
      return '';
  }
}

/**
 * Tells what an error thrown by the Box target means. Pure. In order:
 * - first the rules every target shares (kit/classify.ts `commonRule`: its own TargetErrors,
 *   the source side, aborts);
 * - an HTTP answer (BoxHttpError or the SDK's BoxApiError): OAuth `invalid_grant` → fatal
 *   `auth-revoked`, `invalid_client` → fatal; 401 → retry; 403 `storage_limit_exceeded` → fatal,
 *   `file_size_limit_exceeded` / `access_denied_item_locked` → fail-item, other 403 → fatal;
 *   404 → retry (stale ids: the target drops its caches); 409 `item_name_in_use` → fail-item
 *   (put handles it first), other 409 → retry; 400 `item_name_invalid`/`item_name_too_long` →
 *   fail-item naming the rule, `bad_digest`/`digest_mismatch`/`parts_mismatch` → retry, other
 *   400 → fail-item; 408, 412, 416, 429, 5xx → retry with the Retry-After Box sent;
 * - no answer at all (reset, refused, timeout) → retry `network`; anything unknown → retry.
 * `reason` always starts with the rule's name, then `: ` and the detail.
 */
export function classify(error: unknown): Classified {
  const common = classifyCommon(error, 'box');
  if (common) return common;
  const { kind, rule } = classifyRule(error);
  const e = toBoxError(error);
  const detail = describe(e);
  const reason = `${rule}: ${detail}${advice(rule)}`;
  const retryAfterMs = e instanceof BoxHttpError ? e.retryAfterMs : undefined;
  return retryAfterMs !== undefined && kind !== 'fail-item' ? { kind, reason, retryAfterMs } : { kind, reason };
}

/** `classify`'s advice for `rule`, for the target's own messages (naming the target). */
export function adviceFor(rule: string, targetId: string): string {
  return advice(rule, targetId);
}
