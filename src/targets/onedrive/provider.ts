/**
 * The OneDrive provider: its options, its factory (index.ts, loaded on first use, with the Graph
 * client and MSAL) and its sign-in (auth.ts, the device-code flow; app-only auth needs none).
 */
import { z } from 'zod';
import { pathString, secret, url } from '../../config/fields.js';
import { describeValue } from '../../config/messages.js';
import { cloudOptions, endpoints, timeoutOf } from '../kit/options.js';
import { defineProvider, type ProviderConfig } from '../provider.js';
import { oneDrivePathKey } from './names.js';

const schema = z.strictObject({
  type: z.literal('onedrive'),
  ...cloudOptions,
  auth: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('delegated'),
      clientId: z.string().min(1),
      tenant: z.string().min(1).default('consumers').describe('"consumers" (personal), "organizations", or a tenant id or domain.'),
      clientSecret: secret.optional().describe('Absent: a public client.'),
      tokenCacheFile: pathString.optional().describe('Where MSAL keeps its token cache. Default: in the state folder.'),
    }),
    z
      .strictObject({
        kind: z.literal('app'),
        tenant: z.string().min(1).describe('The tenant id or domain.'),
        clientId: z.string().min(1),
        clientSecret: secret,
        userId: z.string().min(1).describe("The user whose drive is written (id or user principal name)."),
      })
      .superRefine((auth, ctx) => {
        if (['common', 'consumers', 'organizations'].includes(auth.tenant.toLowerCase())) {
          ctx.addIssue({
            code: 'custom',
            path: ['tenant'],
            message: `app auth needs your tenant id or domain, got ${describeValue(auth.tenant)}`,
            input: auth.tenant,
          });
        }
      }),
  ]),
  driveId: z.string().min(1).optional().describe("Archive into this drive. Default: the user's OneDrive."),
  endpoints: endpoints({ graph: url, login: url }),
});


/** A `type: onedrive` entry of the resolved config. */
export type OnedriveConfig = ProviderConfig<typeof schema>;

export const provider = defineProvider({
  type: 'onedrive',
  schema,
  pathKeys: [{ key: ['auth', 'tokenCacheFile'], what: 'the token cache file', role: 'credentials' }],
  secretKeys: ['auth.clientSecret'],
  nameKey: oneDrivePathKey,
  async create(config, ctx) {
    const { createOnedriveTarget } = await import('./index.js');
    return createOnedriveTarget(config, ctx, timeoutOf(config));
  },
  async authorize(config, ctx, io) {
    const { authorize } = await import('./auth.js');
    await authorize(config, ctx, io);
  },
  needsSignIn: (config) => config.auth.kind === 'delegated',
});
