/**
 * Dropbox's OAuth 2 token endpoint, `POST /oauth2/token` (on api.dropboxapi.com, also answered
 * for api.dropbox.com). Parameters may come in the query string (the JS SDK puts them there,
 * secret included), a form or JSON body, and client credentials also by HTTP Basic.
 * - `grant_type=refresh_token`: `{access_token, token_type: 'bearer', expires_in}`; the refresh
 *   token does not rotate. Without `client_secret` only a PKCE-issued refresh token (or a client
 *   registered without secret) is accepted.
 * - `grant_type=authorization_code` (the setup flow): also `refresh_token`, `scope`, `uid`,
 *   `account_id`; codes are single-use; PKCE (`code_verifier`, S256) is checked when the code was
 *   made with a challenge.
 * Errors are 400 `{error, error_description}`: `invalid_grant` (unknown, revoked or reused),
 * `invalid_client`, `invalid_request`, `unsupported_grant_type`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readBody, sendJson, type EmulatorRequest, type TokenBook } from '../harness/index.js';

export interface AuthCodeOptions {
  clientId: string;
  redirectUri?: string;
  /** PKCE S256 challenge (base64url of SHA-256 of the verifier). */
  codeChallenge?: string;
}

export const ACCOUNT_ID = 'dbid:AAD1Stagecoach-Emulated-Account00';
export const SUBJECT = 'user';

export class DropboxOAuth {
  private readonly clients = new Map<string, { secret: string | null }>();
  private readonly refreshOwners = new Map<string, { clientId: string; pkce: boolean }>();
  private readonly codes = new Map<string, AuthCodeOptions>();

  constructor(
    private readonly tokens: TokenBook,
    private readonly ttlS: () => number,
  ) {}

  addClient(clientId: string, secret: string | null): void {
    this.clients.set(clientId, { secret });
  }

  /** Registers a refresh token for a client, as if the user had authorised the app. */
  addRefreshToken(token: string, clientId: string, opts: { pkce?: boolean } = {}): void {
    this.tokens.addRefreshToken(token, SUBJECT);
    this.refreshOwners.set(token, { clientId, pkce: opts.pkce ?? false });
  }

  /** A code as /oauth2/authorize would hand back after the user consents. */
  authorizationCode(opts: AuthCodeOptions): string {
    const code = `code-${randomUUID()}`;
    this.codes.set(code, opts);
    return code;
  }

  async handle(r: EmulatorRequest): Promise<void> {
    const fail = (error: string, error_description: string) => sendJson(r, 400, { error, error_description });
    if (r.method !== 'POST') return fail('invalid_request', 'expected POST');
    const params = new Map(r.url.searchParams);
    const raw = (await readBody(r)).toString('utf8').trim();
    if (raw) {
      const type = String(r.req.headers['content-type'] ?? '');
      if (type.includes('json')) {
        try {
          for (const [k, v] of Object.entries(JSON.parse(raw) as Record<string, unknown>)) params.set(k, String(v));
        } catch {
          return fail('invalid_request', 'could not decode request body');
        }
      } else {
        for (const [k, v] of new URLSearchParams(raw)) params.set(k, v);
      }
    }
    const basic = /^Basic\s+(.+)$/i.exec(String(r.req.headers.authorization ?? ''));
    if (basic) {
      const [id, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      params.set('client_id', id ?? '');
      params.set('client_secret', rest.join(':'));
    }

    const grant = params.get('grant_type');
    if (!grant) return fail('invalid_request', 'No grant_type provided.');
    if (grant !== 'refresh_token' && grant !== 'authorization_code') {
      return fail('unsupported_grant_type', `"grant_type" must be "authorization_code" or "refresh_token"`);
    }
    const clientId = params.get('client_id');
    const client = clientId === undefined ? undefined : this.clients.get(clientId);
    if (!clientId || !client) return fail('invalid_client', 'Invalid client_id or client_secret');
    const secret = params.get('client_secret');
    if (secret !== undefined && secret !== client.secret) return fail('invalid_client', 'Invalid client_id or client_secret');

    if (grant === 'refresh_token') {
      const refreshToken = params.get('refresh_token');
      if (!refreshToken) return fail('invalid_request', 'No refresh_token provided.');
      const owner = this.refreshOwners.get(refreshToken);
      if (!owner || owner.clientId !== clientId) return fail('invalid_grant', 'refresh token is invalid or revoked');
      if (secret === undefined && client.secret !== null && !owner.pkce) {
        return fail('invalid_request', 'No auth function available for given request');
      }
      const t = this.tokens.redeem(refreshToken, this.ttlS());
      if ('error' in t) return fail('invalid_grant', 'refresh token is invalid or revoked');
      return sendJson(r, 200, { access_token: t.accessToken, token_type: 'bearer', expires_in: this.ttlS() });
    }

    const code = params.get('code');
    const grantCode = code === undefined ? undefined : this.codes.get(code);
    if (!code || !grantCode || grantCode.clientId !== clientId) return fail('invalid_grant', "code doesn't exist or has expired");
    this.codes.delete(code);
    if (grantCode.redirectUri !== undefined && params.get('redirect_uri') !== grantCode.redirectUri) {
      return fail('invalid_grant', 'redirect_uri mismatch');
    }
    let pkce = false;
    if (grantCode.codeChallenge !== undefined) {
      const verifier = params.get('code_verifier') ?? '';
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      if (challenge !== grantCode.codeChallenge) return fail('invalid_grant', 'invalid code verifier');
      pkce = true;
    } else if (secret === undefined) {
      return fail('invalid_request', 'No auth function available for given request');
    }
    const refreshToken = `dbx-rt-${randomUUID()}`;
    this.addRefreshToken(refreshToken, clientId, { pkce });
    const t = this.tokens.redeem(refreshToken, this.ttlS());
    if ('error' in t) return fail('invalid_grant', 'account is revoked');
    return sendJson(r, 200, {
      access_token: t.accessToken,
      token_type: 'bearer',
      expires_in: this.ttlS(),
      refresh_token: refreshToken,
      scope: 'account_info.read files.content.read files.content.write files.metadata.read files.metadata.write',
      uid: '123456789',
      account_id: ACCOUNT_ID,
    });
  }
}
