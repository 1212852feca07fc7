/**
 * The local provider: a folder on a local or mounted disk. Its options, and its factory
 * (index.ts, loaded on first use). No sign-in.
 */
import { z } from 'zod';
import { count, pathString, targetCommon } from '../../config/fields.js';
import { defineProvider, type ProviderConfig } from '../provider.js';
import { localPathKey } from './names.js';

const schema = z.strictObject({
  type: z.literal('local'),
  ...targetCommon,
  // A local put is mostly waiting on the disk (its fsyncs): more at once share the disk's flushes
  // and the small files' batches, and hide the journal's and the pipeline's turns between a put's
  // answer and the next. 10,000 small files took ~25 % less time at 128 than at 32, and ~11 % less
  // at 512 than at 128 (eight alternated pairs, faster in seven; bench/HISTORY.md, small-files);
  // large copies are bounded apart (CopyBudget in upload.ts).
  maxDemand: count(1).default(512).describe('Most uploads in flight to this target (local: 512, the clouds: 4).'),
  path: pathString.describe('The archive folder. Must not be inside a watched root, nor contain one.'),
  keepVersions: z
    .boolean()
    .default(false)
    .describe('Keep the previous copy of a changed file instead of replacing it.'),
  preserveOwner: z
    .boolean()
    .default(false)
    .describe('When the daemon runs as root, copies keep the source file\'s owner and group (they always keep its permission bits).'),
});

export const provider = defineProvider({
  type: 'local',
  schema,
  pathKeys: [{ key: ['path'], what: 'the archive folder', role: 'archive' }],
  secretKeys: [],
  nameKey: localPathKey,
  async create(config, ctx) {
    const { createLocalTarget } = await import('./index.js');
    return createLocalTarget(config, ctx);
  },
  authorize: null,
  needsSignIn: () => false,
});
