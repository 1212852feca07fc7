/**
 * Option fields that several providers declare alike (a cloud's `remoteRoot`, its
 * `requestTimeoutMs`). Zod only: importing this loads no SDK.
 */
import { z } from 'zod';
import { durationSchema } from '../../config/fields.js';
import { describeValue } from '../../config/messages.js';

export const remoteRoot = z
  .string()
  .default('')
  .transform((value, ctx) => {
    const trimmed = value.replace(/^\/+|\/+$/g, '');
    if (trimmed.split('/').some((segment) => segment === '.' || segment === '..')) {
      ctx.addIssue({ code: 'custom', message: `must not contain "." or ".." segments, got ${describeValue(value)}`, input: value });
      return z.NEVER;
    }
    return trimmed;
  })
  .describe('Folder on the cloud under which everything is archived, e.g. "Stagecoach". Default: the top.');

/**
 * How long a cloud request may go unanswered before it is dropped and retried (a hung
 * connection). Each provider counts it its own way; see docs/operations.md.
 */
export const requestTimeoutMs = durationSchema({ min: 1000 })
  .optional()
  .describe(
    'A request that hangs this long is dropped and retried. Default and meaning per provider: gdrive 2 min (uploads get more time per byte), onedrive 2 min with nothing sent or received, dropbox and box 10 min for the whole request including the chunk it sends.',
  );
