/**
 * The building blocks of the config schema, shared by config/schema.ts and by the option schema
 * each provider declares in src/targets/<id>/provider.ts: durations, sizes, paths, secrets, URLs,
 * and the keys every target has (`targetCommon`). Zod only: importing this loads no SDK.
 */
import { z } from 'zod';
import { describeValue } from './messages.js';
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from './units.js';

const TARGET_ID_RE = /^[a-z0-9_-]+$/;

export function durationSchema(opts: { min?: number } = {}) {
  const min = opts.min ?? 0;
  const error = (issue: { input?: unknown }) =>
    `expected a duration such as 2000 (ms), "2s", "5m" or "1h"${min > 0 ? ` (at least ${min} ms)` : ''}, got ${describeValue(issue.input)}`;
  return z
    .union(
      [
        z.number({ error }).int({ error }).min(0, { error }),
        z.string({ error }).regex(new RegExp(DURATION_PATTERN), { error }),
      ],
      { error },
    )
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined || ms < min) {
        ctx.addIssue({ code: 'custom', message: error({ input: value }), input: value });
        return z.NEVER;
      }
      return ms;
    });
}

export function sizeSchema(opts: { min?: number } = {}) {
  const min = opts.min ?? 0;
  const error = (issue: { input?: unknown }) =>
    `expected a size such as 1048576 (bytes), "10 MB" or "4 KiB"${min > 0 ? ` (at least ${min} byte)` : ''}, got ${describeValue(issue.input)}`;
  return z
    .union(
      [
        z.number({ error }).int({ error }).min(0, { error }),
        z.string({ error }).regex(new RegExp(SIZE_PATTERN), { error }),
      ],
      { error },
    )
    .transform((value, ctx) => {
      const bytes = parseSize(value);
      if (bytes === undefined || bytes < min) {
        ctx.addIssue({ code: 'custom', message: error({ input: value }), input: value });
        return z.NEVER;
      }
      return bytes;
    });
}

export const count = (min: number) => z.number().int().min(min);

/** A file or folder path; relative ones are resolved against the working directory. */
export const pathString = z.string().min(1);

/** A secret: never defaulted, never shown in messages. */
export const secret = z.string().min(1);

/** A provider's id (Box enterprise or user): YAML reads an unquoted 12345 as a number. */
export const numericId = z
  .union([z.string().regex(/^\d+$/, { error: (i) => `expected a numeric id, got ${describeValue(i.input)}` }), z.number().int().min(0)])
  .transform(String);

export const url = z.url({ protocol: /^https?$/ });

/** The keys every target has, whatever its provider: its id and the pipeline's knobs. */
export const targetCommon = {
  id: z
    .string()
    .regex(TARGET_ID_RE, { error: (i) => `expected an id made of a-z 0-9 _ -, got ${describeValue(i.input)}` })
    .optional()
    .describe('Unique id of the target (in logs, status and the journal). Default: the type.'),
  maxDemand: count(1).default(4).describe('Most uploads in flight to this target.'),
  minDemand: count(0)
    .optional()
    .describe('Ask for more work when uploads in flight drop to this. Must be below maxDemand. Default: maxDemand - 1 (a freed slot is refilled at once).'),
  requestsPerSecond: z
    .number()
    .positive()
    .nullable()
    .default(null)
    .describe('Cap on uploads started per second (each attempt of each file counts one; the chunks of a large upload are paced by bytesPerSecond); null: none.'),
  bytesPerSecond: sizeSchema({ min: 1 })
    .nullable()
    .default(null)
    .describe('Cap on upload bandwidth (bytes per second, or "10 MB"); null: none.'),
};

