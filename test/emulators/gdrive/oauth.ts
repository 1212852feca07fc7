/**
 * Google's OAuth 2.0 token endpoint (`POST https://oauth2.googleapis.com/token`) as
 * google-auth-library calls it: a form body with `grant_type=refresh_token`, `refresh_token`,
 * `client_id`, `client_secret` (or HTTP Basic client auth). Also `authorization_code` for the
 * setup flow. Refresh tokens do not rotate on Google; a refresh answer carries no new one.
 */
import type { EmulatorRequest, TokenBook } from '../harness/index.js';
import { readBody, sendJson } from '../harness/index.js';

export const DRIVE_SCOPE = 'https://www.googleapis.com/auth/drive';

export interface OAuthConfig {
  clientId: string;
  clientSecret: string;
  /** Lifetime of issued access tokens, seconds (Google: 3599). */
  tokenTtlS: number;
}

/** Single-use authorization codes a test handed out (`addAuthCode`). */
export class AuthCodes {
  private readonly codes = new Map<string, string>();
  add(code: string, subject = 'user'): void {
    this.codes.set(code, subject);
  }
  take(code: string): string | undefined {
    const s = this.codes.get(code);
    this.codes.delete(code);
    return s;
  }
}

function oauthError(r: EmulatorRequest, status: number, error: string, description: string): void {
  sendJson(r, status, { error, error_description: description });
}

/** Handles one token request. */
export async function handleToken(r: EmulatorRequest, cfg: OAuthConfig, tokens: TokenBook, codes: AuthCodes): Promise<void> {
  if (r.method !== 'POST') {
    r.req.resume();
    oauthError(r, 405, 'invalid_request', 'Method not allowed');
    return;
  }
  const raw = (await readBody(r, 1 << 20)).toString('utf8');
  const form = new URLSearchParams(raw);
  let clientId = form.get('client_id');
  let clientSecret = form.get('client_secret');
  const basic = /^Basic\s+(.+)$/i.exec(r.req.headers.authorization ?? '');
  if (basic) {
    const [id, ...secret] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
    clientId = decodeURIComponent(id ?? '');
    clientSecret = decodeURIComponent(secret.join(':'));
  }
  const grant = form.get('grant_type');
  if (!grant) return oauthError(r, 400, 'invalid_request', 'Missing required parameter: grant_type');
  if (grant !== 'refresh_token' && grant !== 'authorization_code') {
    return oauthError(r, 400, 'unsupported_grant_type', `Invalid grant_type: ${grant}`);
  }
  if (!clientId) return oauthError(r, 400, 'invalid_request', 'Could not determine client ID from request.');
  if (clientId !== cfg.clientId) return oauthError(r, 401, 'invalid_client', 'The OAuth client was not found.');
  if (clientSecret !== cfg.clientSecret) return oauthError(r, 401, 'invalid_client', 'Unauthorized');

  if (grant === 'refresh_token') {
    const rt = form.get('refresh_token');
    if (!rt) return oauthError(r, 400, 'invalid_request', 'Missing required parameter: refresh_token');
    const t = tokens.redeem(rt, cfg.tokenTtlS);
    if ('error' in t) return oauthError(r, 400, 'invalid_grant', 'Token has been expired or revoked.');
    sendJson(r, 200, { access_token: t.accessToken, expires_in: cfg.tokenTtlS, scope: DRIVE_SCOPE, token_type: 'Bearer' }, { 'cache-control': 'no-cache, no-store, max-age=0, must-revalidate', pragma: 'no-cache' });
    return;
  }
  const code = form.get('code');
  if (!code) return oauthError(r, 400, 'invalid_request', 'Missing required parameter: code');
  const subject = codes.take(code);
  if (subject === undefined) return oauthError(r, 400, 'invalid_grant', 'Malformed auth code.');
  const refreshToken = `1//emu-${Buffer.from(code).toString('base64url')}`;
  tokens.addRefreshToken(refreshToken, subject);
  const t = tokens.issue(subject, cfg.tokenTtlS);
  sendJson(r, 200, {
    access_token: t.accessToken,
    expires_in: cfg.tokenTtlS,
    refresh_token: refreshToken,
    scope: DRIVE_SCOPE,
    token_type: 'Bearer',
  });
}
