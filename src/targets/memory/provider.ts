/**
 * The memory provider (tests only: not in the config's providers list). Declared like every
 * other provider, so the conformance suite and the shape test treat it alike.
 */
import { z } from 'zod';
import { targetCommon } from '../../config/fields.js';
import { defineProvider, type ProviderConfig } from '../provider.js';

const schema = z.strictObject({
  type: z.literal('memory'),
  ...targetCommon,
  hashKind: z.enum(['sha256', 'md5', 'dropbox', 'sha1', 'quickxor']).optional(),
  caseInsensitive: z.boolean().optional(),
  maxNameBytes: z.number().int().min(1).optional(),
  broken: z.enum(['truncate', 'no-verify', 'half-write', 'not-idempotent', 'leak-temp', 'no-nfc', 'wrong-hash', 'ignore-abort', 'drops-mtime', 'racy-folders', 'long-names']).optional(),
});

/** A `type: memory` entry of a resolved config. */
export type MemoryConfig = ProviderConfig<typeof schema>;

export const provider = defineProvider({
  type: 'memory',
  schema,
  pathKeys: [],
  secretKeys: [],
  async create(config) {
    const { createMemoryTarget } = await import('./index.js');
    return createMemoryTarget(config);
  },
  authorize: null,
  needsSignIn: () => false,
});
