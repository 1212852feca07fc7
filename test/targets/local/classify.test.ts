import { describe, expect, test } from 'vitest';
import { ShortReadError, StagecoachError, TargetError } from '../../../src/errors.js';
import { SourceError } from '../../../src/targets/kit/classify.js';
import { classify } from '../../../src/targets/local/classify.js';

const errnoError = (code: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: simulated, write '/archive/x'`), { code, errno: -1, syscall: 'write' });

const abortError = (): Error => Object.assign(new Error('aborted'), { name: 'AbortError' });

describe('classify (local)', () => {
  test.each([
    // The archive side: a bare fs error.
    ['ENOSPC on the archive', errnoError('ENOSPC'), 'fatal', 'archive-full'],
    ['EDQUOT on the archive', errnoError('EDQUOT'), 'fatal', 'archive-full'],
    ['EROFS on the archive', errnoError('EROFS'), 'fatal', 'archive-read-only'],
    ['EACCES on the archive', errnoError('EACCES'), 'fatal', 'archive-denied'],
    ['EPERM on the archive', errnoError('EPERM'), 'fatal', 'archive-denied'],
    ['ENAMETOOLONG on the archive', errnoError('ENAMETOOLONG'), 'fail-item', 'archive-bad-name'],
    ['EINVAL on the archive', errnoError('EINVAL'), 'fail-item', 'archive-bad-name'],
    ['ENOTDIR on the archive', errnoError('ENOTDIR'), 'fail-item', 'archive-path-blocked'],
    ['EISDIR on the archive', errnoError('EISDIR'), 'fail-item', 'archive-path-blocked'],
    ['EBUSY on the archive', errnoError('EBUSY'), 'retry', 'busy'],
    ['EMFILE on the archive', errnoError('EMFILE'), 'retry', 'busy'],
    ['EAGAIN on the archive', errnoError('EAGAIN'), 'retry', 'busy'],
    ['ETIMEDOUT on the archive', errnoError('ETIMEDOUT'), 'retry', 'busy'],
    ['EIO on the archive', errnoError('EIO'), 'retry', 'unknown'],
    ['ENOENT on the archive (a folder removed under us)', errnoError('ENOENT'), 'retry', 'unknown'],
    // The source side.
    ['ENOENT of the source', new SourceError(errnoError('ENOENT')), 'fail-item', 'source-gone'],
    ['ENOTDIR of the source', new SourceError(errnoError('ENOTDIR')), 'fail-item', 'source-gone'],
    ['EISDIR of the source', new SourceError(errnoError('EISDIR')), 'fail-item', 'source-is-folder'],
    ['ELOOP of the source', new SourceError(errnoError('ELOOP')), 'fail-item', 'source-loop'],
    ['EACCES of the source', new SourceError(errnoError('EACCES')), 'fail-item', 'source-denied'],
    ['EMFILE of the source', new SourceError(errnoError('EMFILE')), 'retry', 'busy'],
    ['EBUSY of the source', new SourceError(errnoError('EBUSY')), 'retry', 'busy'],
    ['EIO of the source', new SourceError(errnoError('EIO')), 'retry', 'source-unreadable'],
    ['a plain error of the source', new SourceError(new Error('boom')), 'retry', 'source-unreadable'],
    ['ShortReadError', new ShortReadError(10, 9), 'fail-item', 'source-changed'],
    ['ShortReadError inside SourceError', new SourceError(new ShortReadError(10, 11)), 'fail-item', 'source-changed'],
    ['AbortError', abortError(), 'retry', 'aborted'],
    // Already classified, and the unknown.
    ['TargetError fatal', new TargetError('l', 'fatal', 'archive-root-gone: gone', { code: 'local.archive-root-gone' }), 'fatal', 'archive-root-gone'],
    ['TargetError fail-item', new TargetError('l', 'fail-item', 'name-too-long: x', { code: 'local.name-too-long' }), 'fail-item', 'name-too-long'],
    ['an unrelated StagecoachError', new StagecoachError('x.y', 'what'), 'retry', 'unknown'],
    ['a plain Error', new Error('what'), 'retry', 'unknown'],
    ['a string', 'what', 'retry', 'unknown'],
    ['undefined', undefined, 'retry', 'unknown'],
  ] as Array<[string, unknown, string, string]>)('%s → %s %s', (_what, error, kind, rule) => {
    const c = classify(error);
    expect(c.kind).toBe(kind);
    expect(c.reason.startsWith(`${rule}: `), `reason ${JSON.stringify(c.reason)} starts with ${rule}`).toBe(true);
  });

  test('the reason carries the detail of the error', () => {
    expect(classify(errnoError('ENOSPC')).reason).toContain("ENOSPC: simulated, write '/archive/x'");
    expect(classify(new SourceError(errnoError('ENOENT'))).reason).toContain('ENOENT: simulated');
    expect(classify(new TargetError('l', 'fatal', 'archive-root-gone: the root left', { code: 'local.archive-root-gone' })).reason).toBe(
      'archive-root-gone: the root left',
    );
  });

  test('retryAfterMs of a TargetError is kept', () => {
    const c = classify(new TargetError('l', 'retry', 'busy: later', { code: 'local.busy', retryAfterMs: 1234 }));
    expect(c).toEqual({ kind: 'retry', reason: 'busy: later', retryAfterMs: 1234 });
  });
});
