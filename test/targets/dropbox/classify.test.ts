import { DropboxResponseError } from 'dropbox';
import { Headers } from 'node-fetch';
import { describe, expect, it } from 'vitest';
import { ShortReadError, TargetError } from '../../../src/errors.js';
import {
  DropboxNetworkError,
  classify,
  correctOffsetOf,
  isSessionGone,
  summaryTags,
  tagChain,
} from '../../../src/targets/dropbox/classify.js';
import { SourceError } from '../../../src/targets/kit/classify.js';

/** A DropboxResponseError as the SDK builds it from an answer. */
function answer(status: number, body: unknown, headers: Record<string, string> = {}): unknown {
  return new DropboxResponseError(status, new Headers(headers), body);
}

/** A 409 route error as Dropbox writes it: the summary padded with `dots` dots. */
function route(error: unknown, summary: string, dots = 2): unknown {
  return answer(409, { error_summary: `${summary}/${'.'.repeat(dots)}`, error });
}

function errnoError(code: string): Error {
  return Object.assign(new Error(`${code}: failed`), { code });
}

describe('classify: Dropbox answers by status and tags', () => {
  const table: Array<[string, unknown, 'retry' | 'fail-item' | 'fatal', string, number?]> = [
    // Auth
    ['401 expired_access_token', answer(401, { error_summary: 'expired_access_token/', error: { '.tag': 'expired_access_token' } }), 'retry', 'auth-expired'],
    ['401 invalid_access_token (revoked)', answer(401, { error_summary: 'invalid_access_token/...', error: { '.tag': 'invalid_access_token' } }), 'fatal', 'auth-revoked'],
    ['401 user_suspended', answer(401, { error_summary: 'user_suspended/', error: { '.tag': 'user_suspended' } }), 'fatal', 'account-suspended'],
    ['401 missing_scope', answer(401, { error_summary: 'missing_scope/', error: { '.tag': 'missing_scope', required_scope: 'files.content.write' } }), 'fatal', 'missing-scope'],
    ['401 unknown tag', answer(401, { error_summary: 'something_new/', error: { '.tag': 'something_new' } }), 'fatal', 'auth-failed'],
    ['400 invalid_grant on refresh', answer(400, { error: 'invalid_grant', error_description: 'refresh token is invalid or revoked' }), 'fatal', 'auth-revoked'],
    ['400 invalid_client on refresh', answer(400, { error: 'invalid_client', error_description: 'Invalid client_id or client_secret' }), 'fatal', 'auth-client-refused'],
    ['400 other OAuth error', answer(400, { error: 'invalid_request' }), 'fatal', 'auth-failed'],
    ['400 bad input (plain text)', answer(400, 'Error in call to API function "files/upload": request body: could not decode input as JSON'), 'fail-item', 'bad-request'],
    ['403 access error', answer(403, { error_summary: 'invalid_account_type/', error: { '.tag': 'invalid_account_type' } }), 'fatal', 'access-denied'],
    // Rate limits and server errors
    ['429 too_many_write_operations with Retry-After', answer(429, { error_summary: 'too_many_write_operations/', error: { reason: { '.tag': 'too_many_write_operations' }, retry_after: 7 } }, { 'retry-after': '7' }), 'retry', 'rate-limited', 7000],
    ['429 too_many_requests, retry_after in the body only', answer(429, { error_summary: 'too_many_requests/..', error: { reason: { '.tag': 'too_many_requests' }, retry_after: 3 } }), 'retry', 'rate-limited', 3000],
    ['429 without any wait', answer(429, { error_summary: 'too_many_requests/', error: { reason: { '.tag': 'too_many_requests' } } }), 'retry', 'rate-limited'],
    ['500', answer(500, 'Internal Server Error'), 'retry', 'server-error'],
    ['503 with Retry-After', answer(503, 'Service Unavailable', { 'retry-after': '12' }), 'retry', 'server-error', 12000],
    // Route errors (409)
    ['upload path/insufficient_space (UploadWriteFailed.reason)', route({ '.tag': 'path', reason: { '.tag': 'insufficient_space' }, upload_session_id: 'pid:x' }, 'path/insufficient_space'), 'fatal', 'storage-full'],
    ['finish path/insufficient_space', route({ '.tag': 'path', path: { '.tag': 'insufficient_space' } }, 'path/insufficient_space', 0), 'fatal', 'storage-full'],
    ['path/disallowed_name', route({ '.tag': 'path', reason: { '.tag': 'disallowed_name' } }, 'path/disallowed_name', 3), 'fail-item', 'disallowed-name'],
    ['path/malformed_path', route({ '.tag': 'path', path: { '.tag': 'malformed_path' } }, 'path/malformed_path'), 'fail-item', 'malformed-path'],
    ['path/conflict/folder', route({ '.tag': 'path', reason: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } }, 'path/conflict/folder'), 'fail-item', 'path-blocked'],
    ['path/no_write_permission', route({ '.tag': 'path', reason: { '.tag': 'no_write_permission' } }, 'path/no_write_permission'), 'fail-item', 'no-write-permission'],
    ['content_hash_mismatch', route({ '.tag': 'content_hash_mismatch' }, 'content_hash_mismatch'), 'retry', 'hash-mismatch'],
    ['append incorrect_offset', route({ '.tag': 'incorrect_offset', correct_offset: 8 }, 'incorrect_offset'), 'retry', 'incorrect-offset'],
    ['finish lookup_failed/incorrect_offset', route({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'incorrect_offset', correct_offset: 8 } }, 'lookup_failed/incorrect_offset'), 'retry', 'incorrect-offset'],
    ['append not_found (session gone)', route({ '.tag': 'not_found' }, 'not_found'), 'retry', 'session-gone'],
    ['finish lookup_failed/closed', route({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'closed' } }, 'lookup_failed/closed', 1), 'retry', 'session-gone'],
    ['payload_too_large', route({ '.tag': 'payload_too_large' }, 'payload_too_large'), 'fail-item', 'payload-too-large'],
    ['get_metadata path/not_found', route({ '.tag': 'path', path: { '.tag': 'not_found' } }, 'path/not_found'), 'fail-item', 'not-found'],
    ['409 other', route({ '.tag': 'other' }, 'other'), 'retry', 'conflict-other'],
    ['409 unknown tag', route({ '.tag': 'brand_new_error' }, 'brand_new_error'), 'fail-item', 'refused'],
    ['409 with only a summary', answer(409, { error_summary: 'path/disallowed_name/..' }), 'fail-item', 'disallowed-name'],
    // Not Dropbox answers
    ['a network error', new DropboxNetworkError('[stagecoach] [dropbox] network: socket hang up', 'ECONNRESET'), 'retry', 'network'],
    ['a timeout', new DropboxNetworkError('[stagecoach] [dropbox] network: network timeout', 'request-timeout'), 'retry', 'timeout'],
    ['a ShortReadError', new ShortReadError(10, 9), 'fail-item', 'source-changed'],
    ['an AbortError', Object.assign(new Error('aborted'), { name: 'AbortError' }), 'retry', 'aborted'],
    ['a source gone', new SourceError(errnoError('ENOENT')), 'fail-item', 'source-gone'],
    ['a source denied', new SourceError(errnoError('EACCES')), 'fail-item', 'source-denied'],
    ['a source I/O error', new SourceError(errnoError('EIO')), 'retry', 'source-unreadable'],
    ['a TargetError keeps its kind and wait', new TargetError('dropbox', 'retry', 'rate-limited: slow down', { code: 'dropbox.rate-limited', retryAfterMs: 5000 }), 'retry', 'rate-limited', 5000],
    ['a TargetError fail-item', new TargetError('dropbox', 'fail-item', 'disallowed-name: no', { code: 'dropbox.disallowed-name' }), 'fail-item', 'disallowed-name'],
    ['something unknown', new Error('what?'), 'retry', 'unknown'],
  ];

  it.each(table)('%s', (_what, error, kind, rule, retryAfterMs) => {
    const c = classify(error);
    expect(c.kind).toBe(kind);
    expect(c.reason.startsWith(`${rule}: `), c.reason).toBe(true);
    expect(c.retryAfterMs).toBe(retryAfterMs);
  });

  it('reasons name the tags, not the padded summary', () => {
    expect(classify(route({ '.tag': 'path', reason: { '.tag': 'disallowed_name' } }, 'path/disallowed_name', 3)).reason).toBe(
      'disallowed-name: Dropbox answered 409 path/disallowed_name',
    );
  });

  it('an OAuth refusal names its error and description, and nothing else', () => {
    const c = classify(answer(400, { error: 'invalid_grant', error_description: 'refresh token is invalid or revoked' }));
    expect(c.reason).toBe('auth-revoked: token endpoint answered 400 invalid_grant (refresh token is invalid or revoked)');
  });
});

describe('the tag helpers', () => {
  it('tagChain follows union members and UploadWriteFailed.reason', () => {
    expect(tagChain({ '.tag': 'path', path: { '.tag': 'conflict', conflict: { '.tag': 'folder' } } })).toEqual(['path', 'conflict', 'folder']);
    expect(tagChain({ '.tag': 'path', reason: { '.tag': 'insufficient_space' }, upload_session_id: 'x' })).toEqual(['path', 'insufficient_space']);
    expect(tagChain('nope')).toEqual([]);
  });

  it('summaryTags drops the padding dots', () => {
    expect(summaryTags('path/disallowed_name/')).toEqual(['path', 'disallowed_name']);
    expect(summaryTags('path/not_found/...')).toEqual(['path', 'not_found']);
    expect(summaryTags('too_many_requests/.')).toEqual(['too_many_requests']);
  });

  it('correctOffsetOf reads plain and lookup_failed offsets, nothing else', () => {
    expect(correctOffsetOf(route({ '.tag': 'incorrect_offset', correct_offset: 8388608 }, 'incorrect_offset'))).toBe(8388608);
    expect(correctOffsetOf(route({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'incorrect_offset', correct_offset: 4 } }, 'lookup_failed/incorrect_offset'))).toBe(4);
    expect(correctOffsetOf(route({ '.tag': 'not_found' }, 'not_found'))).toBeUndefined();
    expect(correctOffsetOf(answer(500, 'x'))).toBeUndefined();
  });

  it('isSessionGone: not_found, closed (plain or under lookup_failed); never a path error', () => {
    expect(isSessionGone(route({ '.tag': 'not_found' }, 'not_found'))).toBe(true);
    expect(isSessionGone(route({ '.tag': 'closed' }, 'closed'))).toBe(true);
    expect(isSessionGone(route({ '.tag': 'lookup_failed', lookup_failed: { '.tag': 'not_found' } }, 'lookup_failed/not_found'))).toBe(true);
    expect(isSessionGone(route({ '.tag': 'path', path: { '.tag': 'not_found' } }, 'path/not_found'))).toBe(false);
    expect(isSessionGone(route({ '.tag': 'incorrect_offset', correct_offset: 1 }, 'incorrect_offset'))).toBe(false);
  });
});
