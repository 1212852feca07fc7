/**
 * The Box provider: its options, its factory (index.ts, loaded on first use, with box-node-sdk)
 * and its sign-in (auth.ts, OAuth with a pasted code; client credentials need none).
 */
import { z } from 'zod';
import { numericId, pathString, secret, url } from '../../config/fields.js';
import { StagecoachError } from '../../errors.js';
import { cloudOptions, endpoints, oauthClient, timeoutOf } from '../kit/options.js';
import { defineProvider, type ProviderConfig } from '../provider.js';
import { boxPathKey } from './names.js';

const schema = z.strictObject({
  type: z.literal('box'),
  ...cloudOptions,
  auth: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('oauth'),
      ...oauthClient,
      refreshToken: secret
        .optional()
        .describe('The first refresh token. Box rotates it on every use; later ones are kept in the state folder.'),
      tokenFile: pathString.optional().describe('Where rotated tokens are kept. Default: in the state folder.'),
    }),
    z
      .strictObject({
        kind: z.literal('ccg'),
        ...oauthClient,
        enterpriseId: numericId.optional(),
        userId: numericId.optional(),
      })
      .superRefine((auth, ctx) => {
        if ((auth.enterpriseId === undefined) === (auth.userId === undefined)) {
          ctx.addIssue({
            code: 'custom',
            path: auth.enterpriseId === undefined ? [] : ['userId'],
            message: 'client credentials need exactly one of enterpriseId or userId',
            input: auth,
          });
        }
      }),
  ]),
  endpoints: endpoints({ baseUrl: url, uploadUrl: url, oauth2Url: url }),
});

/** A `type: box` entry of the resolved config. */
export type BoxConfig = ProviderConfig<typeof schema>;

export const provider = defineProvider({
  type: 'box',
  schema,
  pathKeys: [{ key: ['auth', 'tokenFile'], what: 'the token file', role: 'credentials' }],
  secretKeys: ['auth.clientSecret', 'auth.refreshToken'],
  nameKey: boxPathKey,
  async create(config, ctx) {
    const { createBoxTarget } = await import('./index.js');
    return createBoxTarget(config, ctx, timeoutOf(config));
  },
  async authorize(config, ctx, io) {
    if (config.auth.kind !== 'oauth') throw new StagecoachError('cli.usage', `target "${config.id}" uses client credentials: it needs no sign-in`);
    const { authorize } = await import('./auth.js');
    await authorize(config, ctx, io);
  },
  needsSignIn: (config) => config.auth.kind === 'oauth',
});
