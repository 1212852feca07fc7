/**
 * What an error from the Dropbox target means. Dropbox answers with a status and, for route and
 * auth errors, a JSON union whose tags say what happened (`path/insufficient_space`,
 * `expired_access_token`, `incorrect_offset`); its `error_summary` is the same chain padded with
 * 0–3 dots, so the rules here match the tags, never the summary string.
 *
 * Errors reach `classify` in one of these shapes: a TargetError the target already classified
 * (the usual case: `put` wraps everything), a `DropboxResponseError` of the SDK (`status`,
 * `headers.get()`, `error`), a network error of the fetch wrapper (DropboxNetworkError), a
 * SourceError (the file being archived could not be read), a ShortReadError, or an AbortError.
 */
import { StagecoachError } from '../../errors.js';
import { parseRetryAfter } from '../../retry/delay.js';
import { classifyCommon, commonRule, describe, type ClassifyRule } from '../kit/classify.js';
import type { Classified } from '../target.js';
import type { DropboxTagged } from './api-types.js';

export type { ClassifyRule } from '../kit/classify.js';

/**
 * A request that got no answer: refused or reset connection, timeout. Made by the fetch
 * wrapper from the fetch's FetchError (../kit/fetch.ts) with any URL query (never a secret there,
 * but kept out on principle) removed from the message; `code` is the errno (ECONNRESET…) or the
 * FetchError's type (`request-timeout`, `body-timeout`).
 */
export class DropboxNetworkError extends StagecoachError {
  readonly errno: string | undefined;
  constructor(message: string, errno: string | undefined, cause?: unknown) {
    super('dropbox.network', message, { cause });
    this.name = 'DropboxNetworkError';
    this.errno = errno;
  }
}

/** The SDK's DropboxResponseError, as far as classify reads it (duck-typed: no SDK import). */
export interface DropboxResponseErrorLike {
  name: string;
  status: number;
  headers?: { get?(name: string): string | null } | Record<string, unknown> | null;
  error: unknown;
}

/** True for the SDK's DropboxResponseError (by shape: it is a plain Error subclass in the SDK). */
export function isDropboxResponseError(err: unknown): err is DropboxResponseErrorLike {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; status?: unknown };
  return e.name === 'DropboxResponseError' && typeof e.status === 'number';
}

function isTagged(v: unknown): v is DropboxTagged {
  return typeof v === 'object' && v !== null && typeof (v as { '.tag'?: unknown })['.tag'] === 'string';
}

/**
 * The tags of a Dropbox union value, outermost first: `{'.tag':'path', path:{'.tag':'conflict',
 * conflict:{'.tag':'folder'}}}` → path, conflict, folder. A member whose value is a struct is
 * flattened into the union object by Dropbox's JSON encoding, so the walk also follows the one
 * struct field that holds a union (`UploadWriteFailed.reason`: `path/insufficient_space`).
 */
export function tagChain(v: unknown): string[] {
  const out: string[] = [];
  let cur: unknown = v;
  for (let depth = 0; isTagged(cur) && depth < 8; depth++) {
    const tag = cur['.tag'];
    out.push(tag);
    const inner: unknown = cur[tag];
    cur = isTagged(inner) ? inner : cur.reason;
  }
  return out;
}

/** The tags of `error_summary` (`path/disallowed_name/..` → path, disallowed_name). */
export function summaryTags(summary: string): string[] {
  return summary.split('/').filter((t) => t !== '' && !/^\.+$/.test(t));
}

/** The tags of a DropboxResponseError's body: from the structured error, else the summary. */
export function errorTags(err: DropboxResponseErrorLike): string[] {
  const body = err.error as { error?: unknown; error_summary?: unknown } | null | undefined;
  if (typeof body !== 'object' || body === null) return [];
  const inner = body.error;
  if (isTagged(inner)) return tagChain(inner);
  // RateLimitError is a struct: its union is `reason`.
  const reason = (inner as { reason?: unknown } | undefined)?.reason;
  if (isTagged(reason)) return tagChain(reason);
  return typeof body.error_summary === 'string' ? summaryTags(body.error_summary) : [];
}

/** The OAuth error code of a token-endpoint answer (`invalid_grant`…), or undefined. */
export function oauthError(err: DropboxResponseErrorLike): string | undefined {
  const body = err.error as { error?: unknown } | null | undefined;
  return typeof body === 'object' && body !== null && typeof body.error === 'string' ? body.error : undefined;
}

function header(err: DropboxResponseErrorLike, name: string): string | null {
  const h = err.headers as { get?: unknown } | Record<string, unknown> | null | undefined;
  if (!h) return null;
  if (typeof (h as { get?: unknown }).get === 'function') return ((h as { get(n: string): string | null }).get(name)) ?? null;
  const v = (h as Record<string, unknown>)[name] ?? (h as Record<string, unknown>)[name.toLowerCase()];
  return typeof v === 'string' ? v : null;
}

/** The wait Dropbox asked for: `Retry-After` (seconds or a date), else the body's `retry_after`. */
export function retryAfterOf(err: DropboxResponseErrorLike, now: number = Date.now()): number | undefined {
  const fromHeader = parseRetryAfter(header(err, 'retry-after'), now);
  if (fromHeader !== undefined) return fromHeader;
  const body = err.error as { error?: { retry_after?: unknown } } | null | undefined;
  const s = typeof body === 'object' && body !== null ? body.error?.retry_after : undefined;
  return typeof s === 'number' && Number.isFinite(s) && s >= 0 ? Math.round(s * 1000) : undefined;
}

/** The correct offset an `incorrect_offset` answer (plain or under `lookup_failed`) names. */
export function correctOffsetOf(err: unknown): number | undefined {
  if (!isDropboxResponseError(err) || err.status !== 409) return undefined;
  let cur: unknown = (err.error as { error?: unknown } | null)?.error;
  for (let depth = 0; isTagged(cur) && depth < 4; depth++) {
    if (cur['.tag'] === 'incorrect_offset') {
      const n = cur.correct_offset;
      return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined;
    }
    cur = cur[cur['.tag']];
  }
  return undefined;
}

/** True when the answer says the upload session is gone: not found, closed, expired. */
export function isSessionGone(err: unknown): boolean {
  if (!isDropboxResponseError(err) || err.status !== 409) return false;
  const tags = errorTags(err);
  const t = tags[0] === 'lookup_failed' ? tags[1] : tags[0];
  return t === 'not_found' || t === 'closed' || t === 'not_closed' || t === 'expired';
}

/** The 409 route-error rules, by tag (the first tag of the chain found here wins). */
const ROUTE_RULES: ReadonlyArray<[string, ClassifyRule]> = [
  ['insufficient_space', { kind: 'fatal', rule: 'storage-full' }],
  ['disallowed_name', { kind: 'fail-item', rule: 'disallowed-name' }],
  ['malformed_path', { kind: 'fail-item', rule: 'malformed-path' }],
  ['conflict', { kind: 'fail-item', rule: 'path-blocked' }],
  ['no_write_permission', { kind: 'fail-item', rule: 'no-write-permission' }],
  ['team_folder', { kind: 'fail-item', rule: 'team-folder' }],
  ['restricted_content', { kind: 'fail-item', rule: 'restricted-content' }],
  ['too_many_write_operations', { kind: 'retry', rule: 'rate-limited' }],
  ['content_hash_mismatch', { kind: 'retry', rule: 'hash-mismatch' }],
  ['incorrect_offset', { kind: 'retry', rule: 'incorrect-offset' }],
  ['payload_too_large', { kind: 'fail-item', rule: 'payload-too-large' }],
  ['too_large', { kind: 'fail-item', rule: 'too-large' }],
];

const AUTH_RULES: Record<string, ClassifyRule> = {
  expired_access_token: { kind: 'retry', rule: 'auth-expired' },
  invalid_access_token: { kind: 'fatal', rule: 'auth-revoked' },
  user_suspended: { kind: 'fatal', rule: 'account-suspended' },
  missing_scope: { kind: 'fatal', rule: 'missing-scope' },
  route_access_denied: { kind: 'fatal', rule: 'access-denied' },
};

const OAUTH_RULES: Record<string, ClassifyRule> = {
  invalid_grant: { kind: 'fatal', rule: 'auth-revoked' },
  invalid_client: { kind: 'fatal', rule: 'auth-client-refused' },
  unauthorized_client: { kind: 'fatal', rule: 'auth-client-refused' },
};

function responseRule(err: DropboxResponseErrorLike): ClassifyRule {
  const status = err.status;
  const tags = errorTags(err);
  if (status === 400) {
    const oauth = oauthError(err);
    if (oauth !== undefined) return OAUTH_RULES[oauth] ?? { kind: 'fatal', rule: 'auth-failed' };
    return { kind: 'fail-item', rule: 'bad-request' };
  }
  if (status === 401) return AUTH_RULES[tags[0] ?? ''] ?? { kind: 'fatal', rule: 'auth-failed' };
  if (status === 403) return { kind: 'fatal', rule: 'access-denied' };
  if (status === 409) {
    for (const [tag, rule] of ROUTE_RULES) if (tags.includes(tag)) return rule;
    if (isSessionGone(err)) return { kind: 'retry', rule: 'session-gone' };
    if (tags[0] === 'other' || tags.length === 0) return { kind: 'retry', rule: 'conflict-other' };
    if (tags.includes('not_found')) return { kind: 'fail-item', rule: 'not-found' };
    return { kind: 'fail-item', rule: 'refused' };
  }
  if (status === 429) {
    const retryAfterMs = retryAfterOf(err);
    return retryAfterMs === undefined ? { kind: 'retry', rule: 'rate-limited' } : { kind: 'retry', rule: 'rate-limited', retryAfterMs };
  }
  if (status >= 500) {
    const retryAfterMs = retryAfterOf(err);
    return retryAfterMs === undefined ? { kind: 'retry', rule: 'server-error' } : { kind: 'retry', rule: 'server-error', retryAfterMs };
  }
  return { kind: 'fail-item', rule: `http-${status}` };
}

/** The rule `classify` applies to `error`, without the detail. Pure. */
export function classifyRule(error: unknown): ClassifyRule {
  const common = commonRule(error, 'dropbox');
  if (common) return common;
  if (isDropboxResponseError(error)) return responseRule(error);
  if (error instanceof DropboxNetworkError) {
    return { kind: 'retry', rule: error.errno === 'request-timeout' || error.errno === 'body-timeout' ? 'timeout' : 'network' };
  }
  if (error instanceof Error && error.name === 'FetchError') return { kind: 'retry', rule: 'network' };
  return { kind: 'retry', rule: 'unknown' };
}

/** What a Dropbox answer says, for messages: `409 path/disallowed_name`. Never holds a secret. */
export function describeResponse(err: DropboxResponseErrorLike): string {
  const oauth = oauthError(err);
  if (oauth !== undefined) {
    const desc = (err.error as { error_description?: unknown }).error_description;
    return `token endpoint answered ${err.status} ${oauth}${typeof desc === 'string' ? ` (${desc})` : ''}`;
  }
  const tags = errorTags(err);
  if (tags.length > 0) return `Dropbox answered ${err.status} ${tags.join('/')}`;
  if (typeof err.error === 'string' && err.error.trim() !== '') return `Dropbox answered ${err.status}: ${err.error.trim().slice(0, 300)}`;
  return `Dropbox answered ${err.status}`;
}

/** What to do about a rule, appended to its message (empty when nothing needs doing). */
export function adviceFor(rule: string, targetId: string): string {
  switch (rule) {
    case 'auth-revoked':
    case 'auth-failed':
      return `; the Dropbox sign-in no longer works: run \`stagecoach auth ${targetId}\` and update the refresh token`;
    case 'auth-client-refused':
      return `; check auth.appKey and auth.appSecret of target "${targetId}" (or run \`stagecoach auth ${targetId}\`)`;
    case 'missing-scope':
      return `; give the Dropbox app the files.content.write and files.metadata.read permissions, then run \`stagecoach auth ${targetId}\``;
    case 'account-suspended':
      return '; the Dropbox account is suspended';
    case 'storage-full':
      return '; the Dropbox account is full: free space or upgrade the plan';
    case 'disallowed-name':
      return '; Dropbox never stores desktop.ini, thumbs.db, .ds_store, icon\\r, .dropbox or .dropbox.attr';
    default:
      return '';
  }
}

/**
 * Tells what an error thrown by the Dropbox target means. Pure. In order:
 * - first the rules every target shares (kit/classify.ts `commonRule`: its own TargetErrors,
 *   the source side, aborts);
 * - a DropboxResponseError, by status and the tags of its body:
 *   400 OAuth `invalid_grant` (revoked refresh token) → fatal `auth-revoked`, `invalid_client`
 *   → fatal `auth-client-refused`, other OAuth errors → fatal `auth-failed`; other 400 → fail-item
 *   `bad-request`;
 *   401 `expired_access_token` → retry `auth-expired` (put refreshes once by itself first),
 *   `invalid_access_token` → fatal `auth-revoked`, `user_suspended`, `missing_scope`,
 *   `route_access_denied` and others → fatal; 403 → fatal `access-denied`;
 *   409 `insufficient_space` → fatal `storage-full`; `disallowed_name`, `malformed_path`,
 *   `conflict` (`path-blocked`), `no_write_permission`, `team_folder`, `restricted_content`,
 *   `payload_too_large`, `too_large` → fail-item; `too_many_write_operations`,
 *   `content_hash_mismatch` (`hash-mismatch`), `incorrect_offset`, a session not found or
 *   closed (`session-gone`), `other` → retry; any other 409 → fail-item;
 *   429 → retry `rate-limited` with Retry-After (header, else the body's `retry_after`);
 *   5xx → retry `server-error` (with Retry-After when given); other statuses → fail-item;
 * - network errors (reset, refused, timeout) → retry `network` / `timeout`;
 * - anything unknown → retry.
 * `reason` always starts with the rule's name, then `: ` and what happened.
 */
export function classify(error: unknown): Classified {
  const common = classifyCommon(error, 'dropbox');
  if (common) return common;
  const { kind, rule, retryAfterMs } = classifyRule(error);
  const detail = isDropboxResponseError(error) ? describeResponse(error) : describe(error);
  const reason = `${rule}: ${detail}`;
  return retryAfterMs === undefined ? { kind, reason } : { kind, reason, retryAfterMs };
}
