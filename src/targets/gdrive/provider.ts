/**
 * The Google Drive provider: its options, its factory (index.ts, loaded on first use, with the
 * Drive SDK) and its sign-in (auth.ts, OAuth with a pasted code; a service account needs none).
 */
import { z } from 'zod';
import { pathString, secret, url } from '../../config/fields.js';
import { StagecoachError } from '../../errors.js';
import { cloudOptions, endpoints, oauthClient, timeoutOf } from '../kit/options.js';
import { defineProvider, type ProviderConfig } from '../provider.js';
import { drivePathKey } from './names.js';
import { readSavedToken, savedTokenFile } from '../saved-token.js';

const schema = z.strictObject({
  type: z.literal('gdrive'),
  ...cloudOptions,
  auth: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('oauth'),
      ...oauthClient,
      refreshToken: secret.optional().describe('Default: the token `stagecoach auth <id>` saved in the state folder.'),
    }),
    z.strictObject({
      kind: z.literal('serviceAccount'),
      keyFile: pathString.describe('The service account JSON key file.'),
    }),
  ]),
  sharedDriveId: z
    .string()
    .min(1)
    .optional()
    .describe('Archive into this shared drive (needed with a service account: it has no storage of its own).'),
  endpoints: endpoints({ rootUrl: url, tokenUrl: url }),
});

/** A `type: gdrive` entry of the resolved config. */
export type GdriveConfig = ProviderConfig<typeof schema>;

export const provider = defineProvider({
  type: 'gdrive',
  schema,
  pathKeys: [{ key: ['auth', 'keyFile'], what: 'the key file', role: 'credentials' }],
  secretKeys: ['auth.clientSecret', 'auth.refreshToken'],
  nameKey: drivePathKey,
  checkSignedIn(config, stateDir) {
    if (config.auth.kind === 'oauth' && config.auth.refreshToken === undefined) readSavedToken(config.id, stateDir);
  },
  async create(config, ctx) {
    const { createGdriveTarget } = await import('./index.js');
    return createGdriveTarget(config, ctx, timeoutOf(config));
  },
  async authorize(config, ctx, io) {
    if (config.auth.kind !== 'oauth') throw new StagecoachError('cli.usage', `target "${config.id}" uses a service account: it needs no sign-in`);
    const { authorize } = await import('./auth.js');
    const { clientId, clientSecret } = config.auth;
    const endpoints = config.endpoints ? { tokenUrl: config.endpoints.tokenUrl } : undefined;
    await authorize({ id: config.id, clientId, clientSecret, tokenFile: savedTokenFile(ctx.stateDir), endpoints }, io);
  },
  needsSignIn: (config) => config.auth.kind === 'oauth',
});
