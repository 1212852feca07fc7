/**
 * OneDrive's classify reads Node's file errors by their `code` ('EACCES'), not their numeric
 * `errno` (-13): a source that vanished or cannot be read fails that one file instead of being
 * retried until the whole target parks. (Found by the chaos suite.)
 */import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SourceError } from '../../src/targets/kit/classify.js';
import { classifyRule } from '../../src/targets/onedrive/classify.js';

const fsError = (p: string): Error => {
  try {
    readFileSync(p);
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
};

describe('OneDrive source errors', () => {
  it.each([
    ['/nonexistent/stagecoach-finding', 'source-gone'],
    ['/tmp', 'source-is-folder'],
  ])('%s fails the item (%s), it is not retried', (p, rule) => {
    expect(classifyRule(new SourceError(fsError(p)))).toEqual({ kind: 'fail-item', rule });
  });
});
