/**
 * Box's token endpoint, `POST https://api.box.com/oauth2/token` (form-encoded):
 * - `refresh_token`: refresh tokens are single use. Each refresh returns a new access token and a
 *   new refresh token; the old refresh token is dead from then on (400 `invalid_grant`,
 *   "Refresh token has expired").
 * - `authorization_code`: the setup flow; a test issues the code with `issueAuthCode()` (the
 *   browser leg at account.box.com is not emulated). Codes are single use and live 30 s.
 * - `client_credentials` (CCG): `box_subject_type` `enterprise` or `user` with `box_subject_id`;
 *   no refresh token is returned, the client simply asks again.
 */
import { randomBytes } from 'node:crypto';
import type { EmulatorRequest, IssuedToken, TokenBook } from '../harness/index.js';
import { readBody, sendJson } from '../harness/index.js';
import { sendOAuthError } from './errors.js';

/** Who may ask for tokens, and for whom. */
export interface OAuthSettings {
  clientId: string;
  clientSecret: string;
  enterpriseId: string;
  /** The user the OAuth grants (and CCG `user` subjects) act as. */
  userId: string;
  tokenTtlS: number;
}

/** Token subject for CCG enterprise tokens (the app's service account). */
export const serviceAccountSubject = (enterpriseId: string): string => `enterprise:${enterpriseId}`;

/** The token endpoint and its test controls (see the module comment for the grants). */
export class BoxOAuthServer {
  private readonly codes = new Map<string, { subject: string; expiresAt: number }>();
  /** Every refresh token this server ever handed out, to tell "used" from "never existed". */
  private readonly knownRefresh = new Set<string>();
  /** Successful grants, by type (tests count refreshes). */
  readonly grants = { refresh_token: 0, authorization_code: 0, client_credentials: 0 };

  constructor(
    private readonly tokens: TokenBook,
    readonly settings: OAuthSettings,
  ) {}

  /** Test control: an authorization code the setup flow can exchange once, within 30 s. */
  issueAuthCode(subject = this.settings.userId): string {
    const code = randomBytes(16).toString('hex');
    this.codes.set(code, { subject, expiresAt: Date.now() + 30_000 });
    return code;
  }

  /** Test control: a refresh token for the user, as if saved by an earlier login. */
  addRefreshToken(token = `box-rt-${randomBytes(12).toString('hex')}`, subject = this.settings.userId): string {
    this.tokens.addRefreshToken(token, subject);
    this.knownRefresh.add(token);
    return token;
  }

  /** Test control: a fresh access + refresh token pair without going through the endpoint. */
  issue(subject = this.settings.userId): IssuedToken {
    const t = this.tokens.issue(subject);
    this.knownRefresh.add(t.refreshToken);
    return t;
  }

  async handleToken(r: EmulatorRequest): Promise<void> {
    const form = new URLSearchParams((await readBody(r, 64 * 1024)).toString('utf8'));
    const grant = form.get('grant_type');
    if (!grant || !['refresh_token', 'authorization_code', 'client_credentials'].includes(grant)) {
      sendOAuthError(r, 'invalid_request', 'Invalid grant_type parameter or parameter missing');
      return;
    }
    if (form.get('client_id') !== this.settings.clientId || form.get('client_secret') !== this.settings.clientSecret) {
      sendOAuthError(r, 'invalid_client', 'The client credentials are invalid');
      return;
    }
    if (grant === 'refresh_token') {
      const rt = form.get('refresh_token') ?? '';
      const t = this.tokens.redeem(rt, this.settings.tokenTtlS);
      if ('error' in t) {
        sendOAuthError(r, 'invalid_grant', this.knownRefresh.has(rt) ? 'Refresh token has expired' : 'Invalid refresh token');
        return;
      }
      this.knownRefresh.add(t.refreshToken);
      this.grants.refresh_token++;
      this.sendToken(r, t, true);
      return;
    }
    if (grant === 'authorization_code') {
      const code = form.get('code') ?? '';
      const c = this.codes.get(code);
      this.codes.delete(code);
      if (!c || c.expiresAt <= Date.now()) {
        sendOAuthError(r, 'invalid_grant', 'The authorization code has expired');
        return;
      }
      const t = this.tokens.issue(c.subject, this.settings.tokenTtlS);
      this.knownRefresh.add(t.refreshToken);
      this.grants.authorization_code++;
      this.sendToken(r, t, true);
      return;
    }
    const type = form.get('box_subject_type');
    const id = form.get('box_subject_id');
    let subject: string | null = null;
    if (type === 'enterprise' && id === this.settings.enterpriseId) subject = serviceAccountSubject(id);
    else if (type === 'user' && id === this.settings.userId) subject = id;
    if (!subject) {
      sendOAuthError(r, 'invalid_grant', 'Grant credentials are invalid');
      return;
    }
    const t = this.tokens.issue(subject, this.settings.tokenTtlS);
    this.grants.client_credentials++;
    this.sendToken(r, t, false);
  }

  private sendToken(r: EmulatorRequest, t: IssuedToken, withRefresh: boolean): void {
    sendJson(r, 200, {
      access_token: t.accessToken,
      expires_in: this.settings.tokenTtlS,
      restricted_to: [],
      ...(withRefresh ? { refresh_token: t.refreshToken } : {}),
      token_type: 'bearer',
    });
  }
}
