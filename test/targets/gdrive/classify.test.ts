import { describe, expect, it } from 'vitest';
import { ShortReadError, TargetError } from '../../../src/errors.js';
import { DriveHttpError, classify, redact, toTargetError } from '../../../src/targets/gdrive/classify.js';
import { SourceError } from '../../../src/targets/kit/classify.js';

const SECRET_URL = 'https://www.googleapis.com/upload/drive/v3/files?uploadType=resumable&upload_id=ABdjSECRETSESSION&access_token=ya29.SECRETTOKEN';
const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.UTC(2024, 0, 1, 12, 0, 0);

/** A GaxiosError as the SDK throws it: with the request's config (Authorization!) attached. */
function gx(status: number, data: unknown, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(`request to ${SECRET_URL} failed`), {
    status,
    code: status,
    config: { url: SECRET_URL, headers: { Authorization: 'Bearer ya29.SECRETTOKEN' }, data: 'refresh_token=1//SECRETREFRESH&client_secret=SHHH' },
    response: { status, data, headers: new Headers(headers), config: { headers: { Authorization: 'Bearer ya29.SECRETTOKEN' } } },
  });
}

function drive(status: number, reason: string, message: string, headers: Record<string, string> = {}): Error {
  return gx(status, { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } }, headers);
}

function oauth(status: number, error: string, description = 'whatever'): Error {
  return gx(status, { error, error_description: description });
}

function net(code: string, message = `request to ${SECRET_URL} failed, reason: ${code}`): Error {
  return Object.assign(new Error(message), { code, cause: Object.assign(new Error(message), { code, name: 'FetchError' }) });
}

function errno(code: string): Error {
  return Object.assign(new Error(`${code}: injected`), { code });
}

function abort(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

describe('classify: the table', () => {
  it.each<[string, unknown, string, string, number | undefined]>([
    ['401 authError', drive(401, 'authError', 'Invalid Credentials'), 'retry', 'auth-expired', undefined],
    ['token invalid_grant', oauth(400, 'invalid_grant', 'Token has been expired or revoked.'), 'fatal', 'auth-revoked', undefined],
    ['token invalid_client', oauth(401, 'invalid_client', 'Unauthorized'), 'fatal', 'auth-client-refused', undefined],
    ['token unauthorized_client', oauth(400, 'unauthorized_client'), 'fatal', 'auth-client-refused', undefined],
    ['token invalid_request', oauth(400, 'invalid_request'), 'fatal', 'auth-failed', undefined],
    ['token 503', gx(503, { error: 'temporarily_unavailable' }, { 'retry-after': '4' }), 'retry', 'token-endpoint', 4000],
    ['403 User Rate Limit Exceeded', drive(403, 'userRateLimitExceeded', 'User Rate Limit Exceeded', { 'retry-after': '7' }), 'retry', 'rate-limited', 7000],
    ['403 rateLimitExceeded', drive(403, 'rateLimitExceeded', 'Rate Limit Exceeded'), 'retry', 'rate-limited', undefined],
    ['403 daily upload cap', drive(403, 'userRateLimitExceeded', 'User rate limit exceeded.'), 'fatal', 'daily-upload-cap', DAY],
    ['403 daily upload cap, rateLimitExceeded reason', drive(403, 'rateLimitExceeded', 'User rate limit exceeded.'), 'fatal', 'daily-upload-cap', DAY],
    ['403 daily upload cap with Retry-After', drive(403, 'userRateLimitExceeded', 'User rate limit exceeded.', { 'retry-after': '3600' }), 'fatal', 'daily-upload-cap', 3_600_000],
    ['403 dailyLimitExceeded', drive(403, 'dailyLimitExceeded', 'Daily Limit Exceeded'), 'fatal', 'daily-quota', DAY],
    ['403 storageQuotaExceeded', drive(403, 'storageQuotaExceeded', "The user's Drive storage quota has been exceeded."), 'fatal', 'storage-full', undefined],
    ['403 quotaExceeded', drive(403, 'quotaExceeded', 'Quota exceeded'), 'fatal', 'storage-full', undefined],
    ['403 teamDriveFileLimitExceeded', drive(403, 'teamDriveFileLimitExceeded', 'limit'), 'fatal', 'drive-item-limit', undefined],
    ['403 insufficientFilePermissions', drive(403, 'insufficientFilePermissions', 'no'), 'fatal', 'access-denied', undefined],
    ['403 fieldNotWritable', drive(403, 'fieldNotWritable', 'not writable'), 'fail-item', 'refused', undefined],
    ['429 with Retry-After seconds', drive(429, 'rateLimitExceeded', 'Rate Limit Exceeded', { 'retry-after': '12' }), 'retry', 'rate-limited', 12_000],
    ['429 with Retry-After date', drive(429, 'rateLimitExceeded', 'Rate Limit Exceeded', { 'retry-after': new Date(NOW + 30_000).toUTCString() }), 'retry', 'rate-limited', 30_000],
    ['429 without Retry-After', drive(429, 'rateLimitExceeded', 'Rate Limit Exceeded'), 'retry', 'rate-limited', undefined],
    ['500 backendError', drive(500, 'backendError', 'Backend Error'), 'retry', 'server-error', undefined],
    ['502', gx(502, '<html>bad gateway</html>'), 'retry', 'server-error', undefined],
    ['503 with Retry-After', drive(503, 'backendError', 'Backend Error', { 'retry-after': '2' }), 'retry', 'server-error', 2000],
    ['404 notFound', drive(404, 'notFound', 'File not found: 1abc.'), 'retry', 'not-found', undefined],
    ['408', gx(408, ''), 'retry', 'conflict', undefined],
    ['400 invalid', drive(400, 'invalid', 'Invalid Value'), 'fail-item', 'bad-request', undefined],
    ['400 badRequest', drive(400, 'badRequest', 'Bad Request'), 'fail-item', 'bad-request', undefined],
    ['413', gx(413, 'too big'), 'fail-item', 'too-large', undefined],
    ['ECONNRESET', net('ECONNRESET'), 'retry', 'network', undefined],
    ['ETIMEDOUT', net('ETIMEDOUT'), 'retry', 'network', undefined],
    ['ECONNREFUSED', net('ECONNREFUSED'), 'retry', 'network', undefined],
    ['socket hang up', Object.assign(new Error(`request to ${SECRET_URL} failed, reason: socket hang up`), { type: 'system' }), 'retry', 'network', undefined],
    ['a gaxios timeout', Object.assign(new Error('timed out'), { cause: Object.assign(new Error('timeout'), { name: 'TimeoutError' }) }), 'retry', 'network', undefined],
    ['ShortReadError', new ShortReadError(10, 9), 'fail-item', 'source-changed', undefined],
    ['AbortError', abort(), 'retry', 'aborted', undefined],
    ['SourceError ENOENT', new SourceError(errno('ENOENT')), 'fail-item', 'source-gone', undefined],
    ['SourceError EACCES', new SourceError(errno('EACCES')), 'fail-item', 'source-denied', undefined],
    ['SourceError EIO', new SourceError(errno('EIO')), 'retry', 'source-unreadable', undefined],
    ['SourceError around ShortReadError', new SourceError(new ShortReadError(10, 11)), 'fail-item', 'source-changed', undefined],
    ['TargetError keeps its kind', new TargetError('gd', 'retry', 'hash-mismatch: md5 differs', { code: 'gdrive.hash-mismatch' }), 'retry', 'hash-mismatch', undefined],
    ['TargetError keeps its wait', new TargetError('gd', 'fatal', 'daily-upload-cap: x', { code: 'gdrive.daily-upload-cap', retryAfterMs: 5 }), 'fatal', 'daily-upload-cap', 5],
    ['TargetError of a name rule', new TargetError('gd', 'fail-item', 'name-too-long: x', { code: 'gdrive.name-too-long' }), 'fail-item', 'name-too-long', undefined],
    ['an unknown error', new Error('something odd'), 'retry', 'unknown', undefined],
    ['a thrown string', 'weird', 'retry', 'unknown', undefined],
  ])('%s → %s %s', (_what, error, kind, rule, retryAfterMs) => {
    const c = classify(error, { targetId: 'gd', now: NOW });
    expect(c.kind).toBe(kind);
    expect(c.reason.startsWith(`${rule}: `), c.reason).toBe(true);
    expect(c.retryAfterMs).toBe(retryAfterMs);
    // Whatever the error carried, the reason holds no token, secret or session id.
    expect(c.reason).not.toMatch(/SECRET|SHHH|ya29\.[A-Za-z]|ABdj/);
  });

  it('a revoked refresh token says how to fix it, naming the target', () => {
    const c = classify(oauth(400, 'invalid_grant', 'Token has been expired or revoked.'), { targetId: 'photos' });
    expect(c.reason).toContain('the refresh token was revoked or expired: run `stagecoach auth photos`');
  });

  it('a refused service-account grant points at the key file, not at `stagecoach auth`', () => {
    const c = classify(oauth(400, 'invalid_grant', 'Invalid JWT Signature.'), { authKind: 'serviceAccount' });
    expect(c.kind).toBe('fatal');
    expect(c.reason).toMatch(/^auth-key-refused: .*auth\.keyFile/);
  });

  it('the daily cap park time follows dailyCapParkMs when Drive gives no Retry-After', () => {
    const c = classify(drive(403, 'userRateLimitExceeded', 'User rate limit exceeded.'), { dailyCapParkMs: 60_000 });
    expect(c).toMatchObject({ kind: 'fatal', retryAfterMs: 60_000 });
  });

  it('is pure: the same error gives the same answer', () => {
    const e = drive(429, 'rateLimitExceeded', 'Rate Limit Exceeded', { 'retry-after': '5' });
    expect(classify(e, { now: NOW })).toEqual(classify(e, { now: NOW }));
  });
});

describe('toTargetError: the error the target throws', () => {
  it('carries the kind, the rule as code, the wait, and a sanitised cause', () => {
    const err = toTargetError('gd', drive(429, 'rateLimitExceeded', 'Rate Limit Exceeded', { 'retry-after': '9' }), { now: NOW }) as TargetError;
    expect(err).toBeInstanceOf(TargetError);
    expect(err).toMatchObject({ kind: 'retry', code: 'gdrive.rate-limited', retryAfterMs: 9000, target: 'gd' });
    expect(err.message.startsWith('[stagecoach] [gd] rate-limited: ')).toBe(true);
    expect(err.cause).toBeInstanceOf(DriveHttpError);
    expect(err.cause).toMatchObject({ status: 429, reason: 'rateLimitExceeded', retryAfterMs: 9000 });
    // The SDK error's config (headers, token request body) is not reachable from it.
    expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toMatch(/SECRET|SHHH|ya29\.[A-Za-z]/);
    expect(JSON.stringify(err.cause, Object.getOwnPropertyNames(err.cause))).not.toMatch(/SECRET|SHHH|ya29\.[A-Za-z]|ABdj/);
    expect(classify(err)).toEqual(classify(drive(429, 'rateLimitExceeded', 'Rate Limit Exceeded', { 'retry-after': '9' }), { now: NOW }));
  });

  it('network errors lose the URL (a session URI is a credential)', () => {
    const err = toTargetError('gd', net('ECONNRESET')) as TargetError;
    expect(err.message).not.toContain('ABdj');
    expect(err.message).not.toContain('ya29.');
    expect(String((err.cause as Error).message)).not.toContain('ABdj');
  });

  it('passes ShortReadError, AbortError and TargetError through', () => {
    const s = new ShortReadError(1, 2);
    const a = abort();
    const t = new TargetError('gd', 'retry', 'x: y', { code: 'gdrive.x' });
    expect(toTargetError('gd', s)).toBe(s);
    expect(toTargetError('gd', a)).toBe(a);
    expect(toTargetError('gd', t)).toBe(t);
    expect(toTargetError('gd', new SourceError(s))).toBe(s);
  });

  it('keeps a source error as the cause chain', () => {
    const inner = errno('EIO');
    const err = toTargetError('gd', new SourceError(inner)) as TargetError;
    expect(err.cause).toBeInstanceOf(SourceError);
    expect((err.cause as SourceError).cause).toBe(inner);
  });
});

describe('redact', () => {
  it.each([
    [SECRET_URL, 'https://www.googleapis.com/upload/drive/v3/files'],
    ['Authorization: Bearer ya29.abc.def', 'Authorization: Bearer [redacted]'],
    ['token ya29.a0AfB_byC is bad', 'token ya29.[redacted] is bad'],
    ['refresh 1//0gABCdef-xyz', 'refresh 1//[redacted]'],
    ['form refresh_token=1//x&client_secret=abc', 'form refresh_token=[redacted]&client_secret=[redacted]'],
    ['nothing secret here', 'nothing secret here'],
  ])('%j → %j', (input, out) => {
    expect(redact(input)).toBe(out);
  });
});
