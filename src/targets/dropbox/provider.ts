/**
 * The Dropbox provider: its options, its factory (index.ts, loaded on first use, with the
 * Dropbox SDK) and its sign-in (auth.ts, OAuth with a pasted code, PKCE without an app secret).
 */
import { z } from 'zod';
import { secret, url } from '../../config/fields.js';
import { cloudOptions, endpoints, timeoutOf } from '../kit/options.js';
import { defineProvider, type ProviderConfig } from '../provider.js';
import { dropboxPathKey } from './names.js';
import { readSavedToken, savedTokenFile } from '../saved-token.js';

const schema = z.strictObject({
  type: z.literal('dropbox'),
  ...cloudOptions,
  auth: z.strictObject({
    appKey: z.string().min(1),
    appSecret: secret.optional().describe('Absent: the refresh token was obtained with PKCE.'),
    refreshToken: secret.optional().describe('Default: the token `stagecoach auth <id>` saved in the state folder.'),
  }),
  endpoints: endpoints({ api: url, content: url }),
});

/** A `type: dropbox` entry of the resolved config. */
export type DropboxConfig = ProviderConfig<typeof schema>;

export const provider = defineProvider({
  type: 'dropbox',
  schema,
  pathKeys: [],
  secretKeys: ['auth.appSecret', 'auth.refreshToken'],
  nameKey: dropboxPathKey,
  checkSignedIn(config, stateDir) {
    if (config.auth.refreshToken === undefined) readSavedToken(config.id, stateDir);
  },
  async create(config, ctx) {
    const { createDropboxTarget } = await import('./index.js');
    return createDropboxTarget(config, ctx, timeoutOf(config));
  },
  async authorize(config, ctx, io) {
    const { authorize } = await import('./auth.js');
    const { appKey, appSecret } = config.auth;
    await authorize({ id: config.id, appKey, appSecret, tokenFile: savedTokenFile(ctx.stateDir), endpoints: config.endpoints }, io);
  },
  needsSignIn: () => true,
});
