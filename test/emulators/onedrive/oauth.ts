/**
 * The Microsoft identity platform as MSAL (and a hand-rolled OAuth client) calls it on
 * login.microsoftonline.com: the v2.0 token endpoint (authorization_code with PKCE, refresh_token,
 * device_code, client_credentials), the device-code endpoint, a stub authorize endpoint, and the
 * discovery documents. Refresh tokens rotate as Microsoft documents: every redemption returns a
 * new one and the old one keeps working (it is not revoked on use).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { EmulatorRequest, TokenBook } from '../harness/index.js';
import { readBody, sendJson } from '../harness/index.js';
import { sendAadError } from './errors.js';

/** The tenant every personal Microsoft account belongs to. */
export const CONSUMERS_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';

const LOGIN = 'https://login.microsoftonline.com';

export interface IdentityOptions {
  tenantId: string;
  user: { oid: string; name: string; upn: string };
  accessTokenTtlS: number;
  deviceCodeIntervalS: number;
  deviceCodeExpiresInS: number;
  /** When set, confidential clients must present this secret. */
  clientSecret: string | undefined;
}

interface RefreshRec {
  subject: string;
  clientId: string;
  scopes: string[];
}

export interface DeviceCodeRec {
  userCode: string;
  deviceCode: string;
  clientId: string;
  scopes: string[];
  expiresAt: number;
  state: 'pending' | 'approved' | 'declined' | 'redeemed';
  /** Token polls answered `authorization_pending` so far. */
  polls: number;
  /** When set, the code turns approved once this many pending polls were answered. */
  approveAfterPolls: number | null;
}

interface AuthCodeRec {
  clientId: string;
  redirectUri: string;
  scopes: string[];
  challenge: string | null;
  challengeMethod: string;
  nonce: string | null;
  expiresAt: number;
  used: boolean;
}

/** What an access token stands for. */
export interface AccessInfo {
  /** Issued by client_credentials: no signed-in user, `/me` is refused. */
  app: boolean;
  clientId: string;
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export class Identity {
  private readonly access = new Map<string, AccessInfo>();
  private readonly refresh = new Map<string, RefreshRec>();
  private readonly expiredRefresh = new Set<string>();
  readonly deviceCodes = new Map<string, DeviceCodeRec>();
  private readonly authCodes = new Map<string, AuthCodeRec>();

  constructor(
    private readonly tokens: TokenBook,
    private readonly opts: IdentityOptions,
  ) {}

  /** What an access token in the TokenBook stands for (undefined for one issued elsewhere). */
  accessInfo(token: string): AccessInfo | undefined {
    return this.access.get(token);
  }

  /** Registers a refresh token a test hands to a client (delegated, for the signed-in user). */
  addRefreshToken(token: string, clientId = 'any', scopes = ['Files.ReadWrite', 'offline_access']): void {
    this.tokens.addRefreshToken(token, 'user');
    this.refresh.set(token, { subject: 'user', clientId, scopes });
  }

  /** Test control: every refresh token issued so far fails as expired by inactivity (AADSTS700082). */
  expireRefreshTokens(): void {
    for (const t of this.refresh.keys()) this.expiredRefresh.add(t);
  }

  /** An access token for the signed-in user, for raw HTTP tests. */
  issueAccessToken(ttlS = this.opts.accessTokenTtlS): string {
    const t = this.tokens.issue('user', ttlS);
    this.access.set(t.accessToken, { app: false, clientId: 'test' });
    return t.accessToken;
  }

  /** Test control: approves a device code by its user code (now, or after N pending polls). */
  approveDeviceCode(userCode: string, opts: { afterPolls?: number } = {}): void {
    const rec = [...this.deviceCodes.values()].find((d) => d.userCode === userCode);
    if (!rec) throw new Error(`[onedrive emulator] no device code with user code ${userCode}`);
    if (opts.afterPolls && rec.polls < opts.afterPolls) rec.approveAfterPolls = opts.afterPolls;
    else rec.state = 'approved';
  }

  declineDeviceCode(userCode: string): void {
    const rec = [...this.deviceCodes.values()].find((d) => d.userCode === userCode);
    if (!rec) throw new Error(`[onedrive emulator] no device code with user code ${userCode}`);
    rec.state = 'declined';
  }

  /** Answers a login-host request; false when the path is not one of its endpoints. */
  async handle(r: EmulatorRequest, rawPath: string): Promise<boolean> {
    const m = /^\/([^/]+)\/(.*)$/.exec(rawPath);
    if (!m) return false;
    const tenant = decodeURIComponent(m[1]!);
    const rest = m[2]!;
    if (rest === 'v2.0/.well-known/openid-configuration' && r.method === 'GET') {
      sendJson(r, 200, this.openIdConfiguration(tenant));
      return true;
    }
    if (rest === 'discovery/instance' && r.method === 'GET') {
      this.instanceDiscovery(r);
      return true;
    }
    if (rest === 'discovery/v2.0/keys' && r.method === 'GET') {
      sendJson(r, 200, { keys: [] });
      return true;
    }
    if (rest === 'oauth2/v2.0/authorize' && r.method === 'GET') {
      this.authorize(r);
      return true;
    }
    if (rest === 'oauth2/v2.0/devicecode' && r.method === 'POST') {
      await this.deviceCode(r);
      return true;
    }
    if (rest === 'oauth2/v2.0/token' && r.method === 'POST') {
      await this.token(r, tenant);
      return true;
    }
    return false;
  }

  private issuerTenant(tenant: string): string {
    if (tenant === 'consumers') return CONSUMERS_TENANT;
    if (tenant === 'common' || tenant === 'organizations') return '{tenantid}';
    return tenant;
  }

  private openIdConfiguration(tenant: string): Record<string, unknown> {
    const t = encodeURIComponent(tenant);
    return {
      token_endpoint: `${LOGIN}/${t}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${LOGIN}/${t}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${LOGIN}/${this.issuerTenant(tenant)}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${LOGIN}/${t}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${LOGIN}/${t}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${LOGIN}/${t}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
      kerberos_endpoint: `${LOGIN}/${t}/kerberos`,
      tenant_region_scope: null,
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    };
  }

  private instanceDiscovery(r: EmulatorRequest): void {
    const endpoint = r.url.searchParams.get('authorization_endpoint') ?? '';
    let host = '';
    try {
      host = new URL(endpoint).host.toLowerCase();
    } catch {
      host = '';
    }
    const aliases = ['login.microsoftonline.com', 'login.windows.net', 'login.microsoft.com', 'sts.windows.net'];
    if (!aliases.includes(host)) {
      sendAadError(r, 400, 'invalid_instance', 50049, "Unknown or invalid instance.");
      return;
    }
    sendJson(r, 200, {
      tenant_discovery_endpoint: `${LOGIN}/${new URL(endpoint).pathname.split('/')[1] ?? 'common'}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [
        { preferred_network: 'login.microsoftonline.com', preferred_cache: 'login.windows.net', aliases },
      ],
    });
  }

  /** A stub sign-in page: the user "consents" at once and is redirected back with a code. */
  private authorize(r: EmulatorRequest): void {
    const q = r.url.searchParams;
    const clientId = q.get('client_id');
    const redirectUri = q.get('redirect_uri');
    if (!clientId || !redirectUri) {
      const body = Buffer.from('<html><body>AADSTS900144: The request body must contain the following parameter: client_id / redirect_uri.</body></html>');
      r.res.writeHead(400, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(body.length) });
      r.res.end(body);
      return;
    }
    const code = `M.C5${b64url(randomBytes(24))}`;
    this.authCodes.set(code, {
      clientId,
      redirectUri,
      scopes: (q.get('scope') ?? '').split(' ').filter(Boolean),
      challenge: q.get('code_challenge'),
      challengeMethod: q.get('code_challenge_method') ?? 'plain',
      nonce: q.get('nonce'),
      expiresAt: Date.now() + 10 * 60_000,
      used: false,
    });
    const to = new URL(redirectUri);
    to.searchParams.set('code', code);
    const state = q.get('state');
    if (state !== null) to.searchParams.set('state', state);
    if (q.get('client_info') === '1') to.searchParams.set('client_info', this.clientInfo());
    r.res.writeHead(302, { location: to.toString(), 'content-length': '0' });
    r.res.end();
  }

  private async form(r: EmulatorRequest): Promise<URLSearchParams> {
    return new URLSearchParams((await readBody(r, 1 << 20)).toString('utf8'));
  }

  private async deviceCode(r: EmulatorRequest): Promise<void> {
    const f = await this.form(r);
    const clientId = f.get('client_id');
    if (!clientId) {
      sendAadError(r, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
      return;
    }
    const scope = f.get('scope');
    if (!scope) {
      sendAadError(r, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
      return;
    }
    const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
    const userCode = Array.from(randomBytes(9), (b) => alphabet[b % alphabet.length]).join('');
    const deviceCode = `DAQABAAEAAAD${b64url(randomBytes(48))}`;
    this.deviceCodes.set(deviceCode, {
      userCode,
      deviceCode,
      clientId,
      scopes: scope.split(' ').filter(Boolean),
      expiresAt: Date.now() + this.opts.deviceCodeExpiresInS * 1000,
      state: 'pending',
      polls: 0,
      approveAfterPolls: null,
    });
    sendJson(r, 200, {
      user_code: userCode,
      device_code: deviceCode,
      verification_uri: 'https://microsoft.com/devicelogin',
      expires_in: this.opts.deviceCodeExpiresInS,
      interval: this.opts.deviceCodeIntervalS,
      message: `To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ${userCode} to authenticate.`,
    });
  }

  private clientInfo(): string {
    return b64url(JSON.stringify({ uid: this.opts.user.oid, utid: this.opts.tenantId }));
  }

  private idToken(clientId: string, nonce: string | null): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'none' };
    const claims: Record<string, unknown> = {
      ver: '2.0',
      iss: `${LOGIN}/${this.opts.tenantId}/v2.0`,
      sub: b64url(createHash('sha256').update(`${this.opts.user.oid}|${clientId}`).digest()).slice(0, 43),
      aud: clientId,
      exp: now + 3600,
      iat: now,
      nbf: now,
      name: this.opts.user.name,
      preferred_username: this.opts.user.upn,
      oid: this.opts.user.oid,
      tid: this.opts.tenantId,
      ...(nonce ? { nonce } : {}),
    };
    // Unsigned (alg none): MSAL reads the claims without checking a signature.
    return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}.`;
  }

  /** A delegated token response for the signed-in user. */
  private delegated(clientId: string, scopes: string[], f: URLSearchParams, nonce: string | null = null): Record<string, unknown> {
    const ttl = this.opts.accessTokenTtlS;
    const at = this.tokens.issue('user', ttl);
    this.access.set(at.accessToken, { app: false, clientId });
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: scopes.join(' '),
      expires_in: ttl,
      ext_expires_in: ttl,
      access_token: at.accessToken,
    };
    if (scopes.includes('offline_access')) {
      const rt = `M.C5${b64url(randomBytes(48))}`;
      this.tokens.addRefreshToken(rt, 'user');
      this.refresh.set(rt, { subject: 'user', clientId, scopes });
      body.refresh_token = rt;
    }
    if (scopes.includes('openid')) body.id_token = this.idToken(clientId, nonce);
    if (f.get('client_info') === '1') body.client_info = this.clientInfo();
    return body;
  }

  /** False (after answering 401) when a confidential client's secret is wrong. */
  private checkSecret(r: EmulatorRequest, f: URLSearchParams, required: boolean): boolean {
    const secret = f.get('client_secret');
    const assertion = f.get('client_assertion');
    if (!secret && !assertion) {
      if (!required) return true;
      sendAadError(r, 401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
      return false;
    }
    if (secret && this.opts.clientSecret !== undefined && secret !== this.opts.clientSecret) {
      sendAadError(r, 401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
      return false;
    }
    return true;
  }

  private async token(r: EmulatorRequest, tenant: string): Promise<void> {
    const f = await this.form(r);
    // client_secret_basic (RFC 6749 §2.3.1, advertised in the OpenID configuration): the client
    // id and secret, each form-url-encoded, as HTTP Basic credentials instead of body fields.
    const basic = /^Basic\s+(\S+)$/i.exec(r.req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      let id: string;
      let secret: string;
      try {
        id = decodeURIComponent((colon < 0 ? decoded : decoded.slice(0, colon)).replace(/\+/g, ' '));
        secret = colon < 0 ? '' : decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
      } catch {
        sendAadError(r, 401, 'invalid_client', 7000215, 'The Authorization header does not hold form-url-encoded client credentials.');
        return;
      }
      if (f.has('client_id') && f.get('client_id') !== id) {
        sendAadError(r, 401, 'invalid_client', 7000215, 'The client_id in the body does not match the one in the Authorization header.');
        return;
      }
      f.set('client_id', id);
      if (secret) f.set('client_secret', secret);
    }
    const grant = f.get('grant_type');
    const clientId = f.get('client_id');
    if (!grant) {
      sendAadError(r, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
      return;
    }
    if (!clientId) {
      sendAadError(r, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
      return;
    }
    const scopes = (f.get('scope') ?? '').split(' ').filter(Boolean);
    switch (grant) {
      case 'authorization_code':
        return this.grantAuthCode(r, f, clientId);
      case 'refresh_token':
        return this.grantRefresh(r, f, clientId, scopes);
      // The documented name is the RFC 8628 URN; MSAL sends the short `device_code`, which the
      // service accepts too.
      case 'urn:ietf:params:oauth:grant-type:device_code':
      case 'device_code':
        return this.grantDeviceCode(r, f, clientId);
      case 'client_credentials':
        return this.grantClientCredentials(r, f, clientId, scopes, tenant);
      default:
        sendAadError(r, 400, 'unsupported_grant_type', 70003, `The app requested an unsupported grant type '${grant}'.`);
    }
  }

  private grantAuthCode(r: EmulatorRequest, f: URLSearchParams, clientId: string): void {
    const code = f.get('code');
    if (!code) {
      sendAadError(r, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'code'.");
      return;
    }
    const rec = this.authCodes.get(code);
    if (!rec || rec.clientId !== clientId || rec.expiresAt <= Date.now()) {
      sendAadError(r, 400, 'invalid_grant', 70000, "The provided value for the 'code' parameter is not valid.");
      return;
    }
    if (rec.used) {
      sendAadError(r, 400, 'invalid_grant', 54005, 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.');
      return;
    }
    if (f.get('redirect_uri') !== rec.redirectUri) {
      sendAadError(r, 400, 'invalid_grant', 50011, "The redirect URI specified in the request does not match the redirect URIs configured for the application.");
      return;
    }
    if (rec.challenge !== null) {
      const verifier = f.get('code_verifier') ?? '';
      const computed = rec.challengeMethod === 'S256' ? b64url(createHash('sha256').update(verifier).digest()) : verifier;
      if (computed !== rec.challenge) {
        sendAadError(r, 400, 'invalid_grant', 501481, 'The Code_Verifier does not match the code_challenge supplied in the authorization request.');
        return;
      }
    }
    if (!this.checkSecret(r, f, false)) return;
    rec.used = true;
    const scopes = (f.get('scope') ?? rec.scopes.join(' ')).split(' ').filter(Boolean);
    sendJson(r, 200, this.delegated(clientId, scopes, f, rec.nonce), { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' });
  }

  private grantRefresh(r: EmulatorRequest, f: URLSearchParams, clientId: string, scopes: string[]): void {
    const token = f.get('refresh_token');
    if (!token) {
      sendAadError(r, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'refresh_token'.");
      return;
    }
    const rec = this.refresh.get(token);
    if (!rec) {
      sendAadError(r, 400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
      return;
    }
    if (this.expiredRefresh.has(token)) {
      sendAadError(r, 400, 'invalid_grant', 700082, 'The refresh token has expired due to inactivity. The token was issued on a date more than 90 days ago and was inactive for 90.00:00:00.');
      return;
    }
    // The TokenBook knows revocation; non-rotating there, so a failure here means revoked.
    const redeemed = this.tokens.redeem(token, this.opts.accessTokenTtlS);
    if ('error' in redeemed) {
      sendAadError(r, 400, 'invalid_grant', 50173, 'The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.');
      return;
    }
    if (!this.checkSecret(r, f, false)) return;
    // The redemption above issued a token we do not hand out: the response carries a fresh pair.
    const granted = scopes.length ? scopes : rec.scopes;
    const body = this.delegated(clientId, granted.includes('offline_access') ? granted : [...granted, 'offline_access'], f);
    sendJson(r, 200, body, { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' });
  }

  private grantDeviceCode(r: EmulatorRequest, f: URLSearchParams, clientId: string): void {
    const code = f.get('device_code');
    const rec = code ? this.deviceCodes.get(code) : undefined;
    if (!rec || rec.clientId !== clientId) {
      sendAadError(r, 400, 'invalid_grant', 70000, 'Provided grant is invalid or malformed.');
      return;
    }
    if (rec.expiresAt <= Date.now()) {
      sendAadError(r, 400, 'expired_token', 70020, 'The provided value for the input parameter \'device_code\' is not valid. This device code has expired.');
      return;
    }
    if (rec.state === 'pending' && rec.approveAfterPolls !== null && rec.polls >= rec.approveAfterPolls) rec.state = 'approved';
    if (rec.state === 'pending') {
      rec.polls++;
      sendAadError(r, 400, 'authorization_pending', 70016, 'OAuth 2.0 device flow error. Authorization is pending. Continue polling.');
      return;
    }
    if (rec.state === 'declined') {
      sendAadError(r, 400, 'authorization_declined', 70000, 'The user declined the authorization request.');
      return;
    }
    if (rec.state === 'redeemed') {
      sendAadError(r, 400, 'invalid_grant', 54005, 'The device code was already redeemed.');
      return;
    }
    rec.state = 'redeemed';
    sendJson(r, 200, this.delegated(clientId, rec.scopes, f), { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' });
  }

  private grantClientCredentials(r: EmulatorRequest, f: URLSearchParams, clientId: string, scopes: string[], tenant: string): void {
    if (tenant === 'common' || tenant === 'consumers' || tenant === 'organizations') {
      sendAadError(r, 400, 'invalid_request', 700016, 'Client credential flows need a tenant-specific authority, not common, organizations or consumers.');
      return;
    }
    if (!this.checkSecret(r, f, true)) return;
    if (scopes.length !== 1 || !scopes[0]!.endsWith('/.default')) {
      sendAadError(r, 400, 'invalid_scope', 1002012, `The provided value for scope ${scopes.join(' ')} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
      return;
    }
    const ttl = this.opts.accessTokenTtlS;
    const at = this.tokens.issue(`app:${clientId}`, ttl);
    this.access.set(at.accessToken, { app: true, clientId });
    sendJson(r, 200, { token_type: 'Bearer', expires_in: ttl, ext_expires_in: ttl, access_token: at.accessToken }, { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' });
  }
}
