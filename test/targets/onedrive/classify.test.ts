/**
 * classify.ts as a table: Graph's errors (the SDK's GraphError, built the way its error handler
 * builds them; the plain body a failed fragment throws; the target's own copies), MSAL's errors
 * (real instances), network errors and the target's own errors.
 */
import {
  AuthError,
  ClientAuthError,
  ClientConfigurationError,
  InteractionRequiredAuthError,
  ServerError,
} from '@azure/msal-node';
import { GraphError } from '@microsoft/microsoft-graph-client';
import { describe, expect, it } from 'vitest';
import { ShortReadError, TargetError, type ErrorKind } from '../../../src/errors.js';
import {
  OneDriveHttpError,
  OneDriveNetworkError,
  classify,
  toOneDriveError,
} from '../../../src/targets/onedrive/classify.js';
import { SourceError } from '../../../src/targets/kit/classify.js';

/** A GraphError as the Graph client's GraphErrorHandler.constructErrorFromResponse makes it. */
function graphError(status: number, code: string, opts: { inner?: string; retryAfter?: string; message?: string } = {}): GraphError {
  const body = { code, message: opts.message ?? `${code} happened`, innerError: { ...(opts.inner ? { code: opts.inner } : {}), date: '2024-01-02T03:04:05', 'request-id': 'rid' } };
  const e = new GraphError(status, body.message);
  e.code = code;
  e.requestId = 'rid';
  e.body = JSON.stringify(body);
  e.headers = new Headers({ 'content-type': 'application/json', ...(opts.retryAfter ? { 'retry-after': opts.retryAfter } : {}) });
  return e;
}

/** A GraphError without an answer (the transport threw), as GraphErrorHandler.constructError makes it. */
function graphNetworkError(message: string): GraphError {
  const e = new GraphError(-1, message, new Error(message));
  e.code = 'OneDriveNetworkError';
  return e;
}

function errno(code: string, message = `${code.toLowerCase()} happened`): Error {
  return Object.assign(new Error(message), { code });
}

function abort(): Error {
  const e = new Error('This operation was aborted');
  e.name = 'AbortError';
  return e;
}

type Row = [what: string, error: unknown, kind: ErrorKind, rule: string, retryAfterMs?: number];

const ROWS: Row[] = [
  // Graph answers, through the SDK.
  ['429 activityLimitReached with Retry-After', graphError(429, 'activityLimitReached', { inner: 'throttledRequest', retryAfter: '7' }), 'retry', 'rate-limited', 7000],
  ['503 serviceNotAvailable with Retry-After', graphError(503, 'serviceNotAvailable', { retryAfter: '2' }), 'retry', 'server-error', 2000],
  ['429 without Retry-After', graphError(429, 'activityLimitReached'), 'retry', 'rate-limited'],
  ['429 with another code (SharePoint, a proxy)', graphError(429, 'TooManyRequests', { retryAfter: '4' }), 'retry', 'rate-limited', 4000],
  ['507 with another code', graphError(507, 'notEnoughSpace'), 'fatal', 'storage-full'],
  ['500 generalException', graphError(500, 'generalException'), 'retry', 'server-error'],
  ['502 (no Graph code)', graphError(502, 'BadGateway'), 'retry', 'server-error'],
  ['504', graphError(504, 'gatewayTimeout'), 'retry', 'server-error'],
  ['507 insufficientStorage', graphError(507, 'insufficientStorage'), 'fatal', 'storage-full'],
  ['507 quotaLimitReached', graphError(507, 'quotaLimitReached'), 'fatal', 'storage-full'],
  ['401 InvalidAuthenticationToken', graphError(401, 'InvalidAuthenticationToken'), 'retry', 'auth-expired'],
  ['403 accessDenied', graphError(403, 'accessDenied'), 'fatal', 'access-denied'],
  ['404 itemNotFound', graphError(404, 'itemNotFound'), 'retry', 'not-found'],
  ['404 Request_ResourceNotFound (no such user)', graphError(404, 'Request_ResourceNotFound'), 'fatal', 'drive-not-found'],
  ['409 nameAlreadyExists', graphError(409, 'nameAlreadyExists'), 'fail-item', 'path-blocked'],
  ['409 resourceModified', graphError(409, 'resourceModified'), 'retry', 'conflict'],
  ['412 preconditionFailed', graphError(412, 'preconditionFailed'), 'retry', 'conflict'],
  ['413', graphError(413, 'maxFileSizeExceeded'), 'fail-item', 'too-large'],
  ['416 invalidRange', graphError(416, 'invalidRange', { inner: 'fragmentOverlap' }), 'retry', 'range'],
  ['423 resourceLocked', graphError(423, 'resourceLocked'), 'retry', 'locked'],
  ['400 nameContainsInvalidCharacters', graphError(400, 'invalidRequest', { inner: 'nameContainsInvalidCharacters' }), 'fail-item', 'name-refused'],
  ['400 invalidName (reserved)', graphError(400, 'invalidRequest', { inner: 'invalidName' }), 'fail-item', 'name-refused'],
  ['400 pathIsTooLong', graphError(400, 'invalidRequest', { inner: 'pathIsTooLong' }), 'fail-item', 'name-refused'],
  ['400 other', graphError(400, 'invalidRequest'), 'fail-item', 'bad-request'],
  ['no answer (transport threw)', graphNetworkError('no answer from graph.microsoft.com: socket hang up'), 'retry', 'network'],
  // A failed fragment in the SDK's upload task: the parsed body, no status.
  ['fragment body: activityLimitReached', { error: { code: 'activityLimitReached', message: 'throttled', innerError: { code: 'throttledRequest' } } }, 'retry', 'rate-limited'],
  ['fragment body: activityLimitReached, no inner code', { error: { code: 'activityLimitReached', message: 'throttled' } }, 'retry', 'rate-limited'],
  ['fragment body: quotaLimitReached', { error: { code: 'quotaLimitReached', message: 'Insufficient Space Available' } }, 'fatal', 'storage-full'],
  ['fragment body: fragmentOverlap', { error: { code: 'invalidRange', message: 'overlap', innerError: { code: 'fragmentOverlap' } } }, 'retry', 'range'],
  ['fragment body: session not found', { error: { code: 'itemNotFound', message: 'gone', innerError: { code: 'uploadSessionNotFound' } } }, 'retry', 'not-found'],
  ['fragment body: nameAlreadyExists', { error: { code: 'nameAlreadyExists', message: 'exists' } }, 'fail-item', 'path-blocked'],
  ['fragment body: unknown code', { error: { code: 'somethingNew', message: '?' } }, 'retry', 'unknown'],
  // The target's own copies.
  ['OneDriveHttpError 429 (upload URL)', new OneDriveHttpError({ status: 429, graphCode: 'activityLimitReached', message: 'throttled', retryAfterMs: 3000 }), 'retry', 'rate-limited', 3000],
  ['OneDriveHttpError 503 (upload URL)', new OneDriveHttpError({ status: 503, graphCode: 'serviceNotAvailable', message: 'down', retryAfterMs: 1000 }), 'retry', 'server-error', 1000],
  ['OneDriveHttpError 400 with Retry-After: fail-item carries none', new OneDriveHttpError({ status: 400, graphCode: 'invalidRequest', message: 'bad', retryAfterMs: 1000 }), 'fail-item', 'bad-request'],
  ['OneDriveNetworkError', new OneDriveNetworkError('no answer from api.onedrive.com: read ECONNRESET', 'ECONNRESET'), 'retry', 'network'],
  // MSAL.
  ['MSAL invalid_grant (revoked)', new InteractionRequiredAuthError('invalid_grant', 'corr', 'AADSTS50173: The provided grant has expired due to it being revoked.'), 'fatal', 'auth-revoked'],
  ['MSAL interaction_required', new InteractionRequiredAuthError('interaction_required', 'corr', 'AADSTS50076: MFA'), 'fatal', 'auth-revoked'],
  ['MSAL no_tokens_found', new InteractionRequiredAuthError('no_tokens_found', 'corr'), 'fatal', 'auth-revoked'],
  ['MSAL ServerError invalid_grant', new ServerError('invalid_grant', 'corr', 'AADSTS700082: expired'), 'fatal', 'auth-revoked'],
  ['MSAL no_account_found', new ClientAuthError('no_account_found', 'corr'), 'fatal', 'auth-missing'],
  ['MSAL invalid_client (bad secret)', new ServerError('invalid_client', 'corr', 'AADSTS7000215: Invalid client secret provided.'), 'fatal', 'auth-client-refused'],
  ['MSAL unauthorized_client', new ServerError('unauthorized_client', 'corr', 'AADSTS700016: app not found'), 'fatal', 'auth-client-refused'],
  ['MSAL configuration', new ClientConfigurationError('url_parse_error', 'corr'), 'fatal', 'auth-config'],
  ['MSAL network_error', new ClientAuthError('network_error', 'corr'), 'retry', 'network'],
  ['MSAL temporarily_unavailable', new ServerError('temporarily_unavailable', 'corr', 'AADSTS90033: transient', undefined, undefined, 503), 'retry', 'auth-unavailable'],
  ['MSAL other AuthError', new AuthError('unexpected_error', 'corr'), 'retry', 'auth-unavailable'],
  // The target's own errors and the source's.
  ['TargetError keeps its kind', new TargetError('od', 'retry', 'hash-mismatch: x', { code: 'onedrive.hash-mismatch' }), 'retry', 'hash-mismatch'],
  ['TargetError fail-item', new TargetError('od', 'fail-item', 'reserved-name: x', { code: 'onedrive.reserved-name' }), 'fail-item', 'reserved-name'],
  ['TargetError fatal with Retry-After', new TargetError('od', 'fatal', 'storage-full: x', { code: 'onedrive.storage-full', retryAfterMs: 60_000 }), 'fatal', 'storage-full', 60_000],
  ['ShortReadError', new ShortReadError(10, 9), 'fail-item', 'source-changed'],
  ['source ENOENT', new SourceError(errno('ENOENT')), 'fail-item', 'source-gone'],
  ['source EACCES', new SourceError(errno('EACCES')), 'fail-item', 'source-denied'],
  ['source EIO', new SourceError(errno('EIO')), 'retry', 'source-unreadable'],
  ['source ShortReadError', new SourceError(new ShortReadError(10, 11)), 'fail-item', 'source-changed'],
  ['AbortError', abort(), 'retry', 'aborted'],
  ['ECONNRESET', errno('ECONNRESET'), 'retry', 'network'],
  ['ETIMEDOUT', errno('ETIMEDOUT'), 'retry', 'network'],
  ['unknown', new Error('what?'), 'retry', 'unknown'],
  ['a string', 'boom', 'retry', 'unknown'],
  ['null', null, 'retry', 'unknown'],
];

describe('classify', () => {
  it.each(ROWS)('%s → %s %s', (_what, error, kind, rule, retryAfterMs) => {
    const c = classify(error);
    expect(c.kind).toBe(kind);
    expect(c.reason.startsWith(`${rule}: `), `reason "${c.reason}" starts with "${rule}: "`).toBe(true);
    expect(c.retryAfterMs).toBe(retryAfterMs);
  });

  it('an HTTP-date Retry-After becomes ms from now', () => {
    const when = new Date(Date.now() + 120_000).toUTCString();
    const c = classify(graphError(429, 'activityLimitReached', { retryAfter: when }));
    expect(c.retryAfterMs).toBeGreaterThan(100_000);
    expect(c.retryAfterMs).toBeLessThanOrEqual(120_000);
  });

  it("reasons carry Graph's codes and message, or the identity platform's first line", () => {
    expect(classify(graphError(400, 'invalidRequest', { inner: 'nameContainsInvalidCharacters', message: 'A name cannot contain…' })).reason).toBe(
      'name-refused: OneDrive answered 400 invalidRequest/nameContainsInvalidCharacters: A name cannot contain…',
    );
    const msal = new InteractionRequiredAuthError(
      'invalid_grant',
      'corr',
      'AADSTS50173: The provided grant has expired due to it being revoked.\r\nTrace ID: t\r\nCorrelation ID: c',
    );
    expect(classify(msal).reason).toBe('auth-revoked: the identity platform answered invalid_grant: AADSTS50173: The provided grant has expired due to it being revoked.');
  });
});

describe('toOneDriveError', () => {
  it("keeps the answer of a GraphError and nothing of the request", () => {
    const e = toOneDriveError(graphError(429, 'activityLimitReached', { inner: 'throttledRequest', retryAfter: '5' }));
    expect(e).toBeInstanceOf(OneDriveHttpError);
    const h = e as OneDriveHttpError;
    expect([h.status, h.graphCode, h.innerCode, h.retryAfterMs, h.requestId]).toEqual([429, 'activityLimitReached', 'throttledRequest', 5000, 'rid']);
    expect(Object.keys(h)).not.toContain('headers');
  });

  it('a GraphError without an answer becomes a OneDriveNetworkError', () => {
    expect(toOneDriveError(graphNetworkError('socket hang up'))).toBeInstanceOf(OneDriveNetworkError);
  });

  it('leaves other errors alone', () => {
    const e = new Error('x');
    expect(toOneDriveError(e)).toBe(e);
  });
});
