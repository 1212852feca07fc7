import { inspect } from 'node:util';
import { BoxApiError, BoxSdkError } from 'box-node-sdk/lib/box/errors';
import { describe, expect, test } from 'vitest';
import { ShortReadError, StagecoachError, TargetError } from '../../../src/errors.js';
import { BoxHttpError, BoxNetworkError, classify, toBoxError } from '../../../src/targets/box/classify.js';
import { SourceError } from '../../../src/targets/kit/classify.js';

const TOKEN = 'box-at-0f1e2d3c-secret-access-token';
const REFRESH = 'box-rt-9a8b7c6d-secret-refresh-token';

/** A BoxApiError as box-node-sdk 10.12 builds it, request headers (with the token) included. */
function apiError(status: number, body?: Record<string, unknown>, headers: Record<string, string> = {}): BoxApiError {
  return new BoxApiError({
    message: `${status} ${String(body?.code ?? body?.error ?? '')}`,
    timestamp: '0',
    requestInfo: {
      method: 'POST',
      url: 'https://api.box.com/oauth2/token',
      queryParams: {},
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: `grant_type=refresh_token&refresh_token=${REFRESH}&client_secret=shh-client-secret`,
    },
    responseInfo: {
      statusCode: status,
      headers: { 'content-type': 'application/json', ...headers },
      body,
      rawBody: JSON.stringify(body ?? ''),
      code: body?.code === undefined ? undefined : JSON.stringify(body.code),
      requestId: 'req-1',
    },
  } as unknown as ConstructorParameters<typeof BoxApiError>[0]);
}

const boxErr = (status: number, code?: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): BoxApiError =>
  apiError(status, code === undefined ? undefined : { type: 'error', status, code, message: `${code} happened`, request_id: 'r1', ...extra }, headers);

const oauthErr = (status: number, error: string): BoxApiError => apiError(status, { error, error_description: `${error} described` });

const networkError = (): BoxSdkError =>
  new BoxSdkError({ message: 'request to https://upload.box.com failed, reason: socket hang up', error: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });

const abortError = (): Error => Object.assign(new Error('aborted'), { name: 'AbortError' });
const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: simulated`), { code });

describe('classify (box)', () => {
  test.each([
    // Auth.
    ['refresh refused: invalid_grant', oauthErr(400, 'invalid_grant'), 'fatal', 'auth-revoked'],
    ['client refused: invalid_client', oauthErr(400, 'invalid_client'), 'fatal', 'auth-client-refused'],
    ['unauthorized_client', oauthErr(401, 'unauthorized_client'), 'fatal', 'auth-client-refused'],
    ['401 after the replay (empty body)', apiError(401), 'retry', 'auth-expired'],
    // Space and size.
    ['403 storage_limit_exceeded', boxErr(403, 'storage_limit_exceeded'), 'fatal', 'storage-full'],
    ['403 file_size_limit_exceeded', boxErr(403, 'file_size_limit_exceeded'), 'fail-item', 'too-large'],
    ['403 access_denied_item_locked', boxErr(403, 'access_denied_item_locked'), 'fail-item', 'locked'],
    ['403 access_denied_insufficient_permissions', boxErr(403, 'access_denied_insufficient_permissions'), 'fatal', 'access-denied'],
    // Names and conflicts.
    ['400 item_name_invalid', boxErr(400, 'item_name_invalid'), 'fail-item', 'name-refused'],
    ['400 item_name_too_long', boxErr(400, 'item_name_too_long'), 'fail-item', 'name-too-long'],
    ['409 item_name_in_use', boxErr(409, 'item_name_in_use', { context_info: { conflicts: { type: 'file', id: '5' } } }), 'fail-item', 'name-in-use'],
    ['409 range_overlaps_existing_part', boxErr(409, 'range_overlaps_existing_part'), 'retry', 'conflict'],
    ['409 operation_blocked_temporary', boxErr(409, 'operation_blocked_temporary'), 'retry', 'conflict'],
    // Hashes and sessions.
    ['400 bad_digest', boxErr(400, 'bad_digest'), 'retry', 'hash-mismatch'],
    ['400 digest_mismatch', boxErr(400, 'digest_mismatch'), 'retry', 'hash-mismatch'],
    ['400 parts_mismatch', boxErr(400, 'parts_mismatch'), 'retry', 'session-broken'],
    ['412 part digest', boxErr(412, 'precondition_failed'), 'retry', 'precondition-failed'],
    ['416 range', boxErr(416, 'range_not_satisfiable'), 'retry', 'session-range'],
    ['404 not_found', boxErr(404, 'not_found'), 'retry', 'not-found'],
    ['400 bad_request', boxErr(400, 'bad_request'), 'fail-item', 'bad-request'],
    ['405 method_not_allowed', boxErr(405, 'method_not_allowed'), 'fail-item', 'refused'],
    // Throttling and outages.
    ['429', boxErr(429, 'rate_limit_exceeded', {}, { 'retry-after': '7' }), 'retry', 'rate-limited'],
    ['500', boxErr(500, 'internal_server_error'), 'retry', 'server-error'],
    ['502', boxErr(502, 'bad_gateway'), 'retry', 'server-error'],
    ['503', boxErr(503, 'unavailable', {}, { 'retry-after': '2' }), 'retry', 'server-error'],
    ['408', boxErr(408, 'request_timeout'), 'retry', 'timeout'],
    // No answer.
    ['connection reset (BoxSdkError)', networkError(), 'retry', 'network'],
    ['a bare ECONNREFUSED', errno('ECONNREFUSED'), 'retry', 'network'],
    ['converted BoxNetworkError', new BoxNetworkError('no answer from Box: socket hang up', 'ECONNRESET'), 'retry', 'network'],
    // The source and the put.
    ['ShortReadError', new ShortReadError(10, 9), 'fail-item', 'source-changed'],
    ['source ENOENT', new SourceError(errno('ENOENT')), 'fail-item', 'source-gone'],
    ['source EACCES', new SourceError(errno('EACCES')), 'fail-item', 'source-denied'],
    ['source EISDIR', new SourceError(errno('EISDIR')), 'fail-item', 'source-is-folder'],
    ['source EIO', new SourceError(errno('EIO')), 'retry', 'source-unreadable'],
    ['source ShortReadError', new SourceError(new ShortReadError(10, 11)), 'fail-item', 'source-changed'],
    ['AbortError', abortError(), 'retry', 'aborted'],
    ['TargetError keeps its kind', new TargetError('box', 'fail-item', 'path-blocked: a folder', { code: 'box.path-blocked' }), 'fail-item', 'path-blocked'],
    ['TargetError fatal', new TargetError('box', 'fatal', 'not-signed-in: run', { code: 'box.not-signed-in' }), 'fatal', 'not-signed-in'],
    ['an unrelated StagecoachError', new StagecoachError('x.y', 'what'), 'retry', 'unknown'],
    ['a plain Error', new Error('what'), 'retry', 'unknown'],
    ['undefined', undefined, 'retry', 'unknown'],
  ] as Array<[string, unknown, string, string]>)('%s → %s %s', (_what, error, kind, rule) => {
    const c = classify(error);
    expect(c.kind).toBe(kind);
    expect(c.reason.startsWith(`${rule}: `), `reason ${JSON.stringify(c.reason)} starts with ${rule}`).toBe(true);
  });

  test('Retry-After of a 429 / 503 becomes retryAfterMs; fail-item carries none', () => {
    expect(classify(boxErr(429, 'rate_limit_exceeded', {}, { 'retry-after': '7' })).retryAfterMs).toBe(7000);
    expect(classify(boxErr(503, 'unavailable', {}, { 'retry-after': '2' })).retryAfterMs).toBe(2000);
    expect(classify(boxErr(500, 'internal_server_error')).retryAfterMs).toBeUndefined();
    expect(classify(boxErr(403, 'file_size_limit_exceeded', {}, { 'retry-after': '9' })).retryAfterMs).toBeUndefined();
    expect(classify(new TargetError('box', 'retry', 'rate-limited: x', { code: 'box.rate-limited', retryAfterMs: 1234 })).retryAfterMs).toBe(1234);
  });

  test('reasons name the rule the name broke, and what to do about a revoked sign-in', () => {
    expect(classify(boxErr(400, 'item_name_invalid')).reason).toMatch(/trailing space/);
    expect(classify(boxErr(400, 'item_name_too_long')).reason).toMatch(/255 characters/);
    expect(classify(oauthErr(400, 'invalid_grant')).reason).toMatch(/stagecoach auth/);
    expect(classify(boxErr(403, 'storage_limit_exceeded')).reason).toMatch(/out of storage/);
  });

  test('Box`s code is read from the body, not responseInfo.code (which keeps JSON quotes)', () => {
    const e = boxErr(403, 'storage_limit_exceeded');
    expect(e.responseInfo.code).toBe('"storage_limit_exceeded"');
    const converted = toBoxError(e) as BoxHttpError;
    expect(converted.boxCode).toBe('storage_limit_exceeded');
  });

  test('conversion keeps status, code, conflicts and Retry-After, and drops the request (token, form body)', () => {
    const e = boxErr(409, 'item_name_in_use', { context_info: { conflicts: { type: 'file', id: '77', name: 'x', sha1: 'ab' } } }, { 'retry-after': '3' });
    const c = toBoxError(e) as BoxHttpError;
    expect(c).toBeInstanceOf(BoxHttpError);
    expect(c.status).toBe(409);
    expect(c.conflicts).toEqual([{ type: 'file', id: '77', name: 'x', sha1: 'ab' }]);
    expect(c.retryAfterMs).toBe(3000);
    const arr = toBoxError(boxErr(409, 'item_name_in_use', { context_info: { conflicts: [{ type: 'folder', id: '8' }] } })) as BoxHttpError;
    expect(arr.conflicts).toEqual([{ type: 'folder', id: '8' }]);
    for (const err of [toBoxError(oauthErr(400, 'invalid_grant')), toBoxError(networkError()), c]) {
      const text = `${String(err)} ${(err as Error).stack} ${inspect(err, { depth: 10 })} ${JSON.stringify(err)} ${JSON.stringify(classify(err))}`;
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(REFRESH);
      expect(text).not.toContain('shh-client-secret');
    }
    // The raw SDK error does carry them: that is why it never leaves the target.
    expect(JSON.stringify(oauthErr(400, 'invalid_grant').requestInfo)).toContain(TOKEN);
  });

  test('a redactor given to toBoxError scrubs secrets Box might echo', () => {
    const e = boxErr(400, 'bad_request', { message: `refresh_token ${REFRESH} is malformed` });
    const c = toBoxError(e, (s) => s.split(REFRESH).join('[redacted]')) as BoxHttpError;
    expect(c.message).toContain('[redacted]');
    expect(c.message).not.toContain(REFRESH);
  });
});
