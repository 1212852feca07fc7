/**
 * Option fields that several providers declare alike (a cloud's `remoteRoot`, its
 * `requestTimeoutMs`). Zod only: importing this loads no SDK.
 */
import { z } from 'zod';
import { durationSchema, secret, targetCommon } from '../../config/fields.js';
import { describeValue } from '../../config/messages.js';
import { ConfigError } from '../../errors.js';

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
    'A request that hangs this long is dropped and retried. Default and meaning per provider: gdrive 2 min (uploads get more time per byte), onedrive, dropbox and box 2 min with nothing sent or received.',
  );

/** The options every cloud target has, in this order: the common keys, `remoteRoot`, `requestTimeoutMs`. */
export const cloudOptions = { ...targetCommon, remoteRoot, requestTimeoutMs };

/** An OAuth client's credentials, as every provider with OAuth names them. */
export const oauthClient = { clientId: z.string().min(1), clientSecret: secret };

/** A provider's `endpoints` block: the base URLs it is pointed at instead of the service's (emulators, tests). */
export function endpoints<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.strictObject(shape).optional().describe('Base URLs (for emulators and tests).');
}

/** The config's `requestTimeoutMs` as the tuning a cloud factory takes (none: its own default). */
export function timeoutOf(config: { requestTimeoutMs?: number | undefined }): { requestTimeoutMs?: number } {
  return config.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: config.requestTimeoutMs };
}

/**
 * Checks the options a factory was handed, for a factory called directly (tests, benchmarks;
 * the config has checked them already): `id` is a non-empty string, and each of `keys` fits its
 * provider's own schema (the one the config uses, so the two cannot part). Throws a ConfigError
 * at the first key that does not fit, as "Expected `auth.clientId` to be …"; a value is never
 * shown (it may be a secret).
 */
export function checkOptions(schema: z.ZodObject, options: unknown, keys: readonly string[]): void {
  if (typeof options !== 'object' || options === null) throw new ConfigError('', `Expected the target options to be an object, got ${describeValue(options)}`);
  const id: unknown = Reflect.get(options, 'id');
  if (typeof id !== 'string' || id.length === 0) throw new ConfigError('id', `Expected \`id\` to be a non-empty string, got ${describeValue(id)}`);
  for (const key of keys) {
    const field = schema.shape[key];
    if (field === undefined) continue;
    const result = field.safeParse(Reflect.get(options, key), { jitless: true }); // parsed once: see validate in config/load.ts
    const issue = result.error?.issues[0];
    if (issue === undefined) continue;
    const at = [key, ...issue.path.map(String)].join('.');
    throw new ConfigError(at, `Expected \`${at}\` to be valid: ${issue.message}`);
  }
}
