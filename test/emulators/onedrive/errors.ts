/**
 * Error bodies as Microsoft's services write them: Graph (and its upload host) answers
 * `{error: {code, message, innerError: {code?, date, request-id, client-request-id}}}` with a
 * string `code`; the identity platform (login.microsoftonline.com) answers the OAuth 2.0 shape
 * with AADSTS numbers. Both carry request ids the way the real services do.
 */
import { randomUUID } from 'node:crypto';
import type { EmulatorRequest, FaultContext } from '../harness/index.js';
import { sendJson } from '../harness/index.js';

/** Graph's `innerError.date`: ISO 8601 without fraction or zone, as Graph writes it. */
function graphDate(now = new Date()): string {
  return now.toISOString().slice(0, 19);
}

/** The request id pair Graph returns on every answer (echoing the client's own id if sent). */
export function requestIds(r: EmulatorRequest | null): { requestId: string; clientRequestId: string } {
  const requestId = randomUUID();
  const sent = r?.req.headers['client-request-id'];
  return { requestId, clientRequestId: typeof sent === 'string' && sent ? sent : requestId };
}

/** Headers every Graph answer carries. */
export function graphHeaders(r: EmulatorRequest | null): Record<string, string> {
  const ids = requestIds(r);
  return { 'request-id': ids.requestId, 'client-request-id': ids.clientRequestId };
}

export interface GraphErrorOptions {
  /** The more specific code Graph nests in `innerError.code` (e.g. `fragmentOverlap`). */
  inner?: string;
  headers?: Record<string, string>;
}

/** The JSON body of a Graph error. */
export function graphErrorBody(code: string, message: string, r: EmulatorRequest | null, inner?: string): unknown {
  const ids = requestIds(r);
  return {
    error: {
      code,
      message,
      innerError: {
        ...(inner ? { code: inner } : {}),
        date: graphDate(),
        'request-id': ids.requestId,
        'client-request-id': ids.clientRequestId,
      },
    },
  };
}

/** Answers a Graph error (JSON, request ids in headers and body). */
export function sendGraphError(r: EmulatorRequest, status: number, code: string, message: string, opts: GraphErrorOptions = {}): void {
  const body = graphErrorBody(code, message, r, opts.inner);
  const innerErr = (body as { error: { innerError: Record<string, string> } }).error.innerError;
  sendJson(r, status, body, {
    'request-id': innerErr['request-id']!,
    'client-request-id': innerErr['client-request-id']!,
    ...opts.headers,
  });
}

/** 401 as Graph sends it, with the WWW-Authenticate challenge. */
export function sendUnauthenticated(r: EmulatorRequest, message: string): void {
  sendGraphError(r, 401, 'InvalidAuthenticationToken', message, {
    headers: {
      'www-authenticate':
        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
    },
  });
}

/** An identity-platform error: the OAuth 2.0 error object with Microsoft's extra fields. */
export function aadErrorBody(error: string, aadsts: number, description: string): Record<string, unknown> {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date().toISOString().slice(0, 19).replace('T', ' ') + 'Z';
  return {
    error,
    error_description: `AADSTS${aadsts}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [aadsts],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${aadsts}`,
  };
}

export function sendAadError(r: EmulatorRequest, status: number, error: string, aadsts: number, description: string): void {
  sendJson(r, status, aadErrorBody(error, aadsts, description), { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' });
}

/** Paths served by the identity platform (so an injected fault answers in its shape). */
export const LOGIN_PATH = /^\/[^/]+\/(oauth2\/|v2\.0\/\.well-known\/|discovery\/)/;

/**
 * Renders an injected status fault the way the service hit would: OAuth errors on the login
 * host, Graph errors elsewhere. 429 and 503 carry a Retry-After unless the fault sets its own.
 */
export function faultBody(status: number, ctx?: FaultContext): { headers?: Record<string, string>; body: unknown } {
  if (ctx && (ctx.host.startsWith('login.') || LOGIN_PATH.test(ctx.path))) {
    if (status === 429) return { body: aadErrorBody('temporarily_unavailable', 50196, 'The server terminated an operation because it encountered a client request loop.') };
    if (status >= 500) return { body: aadErrorBody('temporarily_unavailable', 90033, 'A transient error has occurred. Please try again.') };
    return { body: aadErrorBody('invalid_request', 900144, 'The request body must contain the following parameter.') };
  }
  const retry = ctx?.retryAfterS === undefined && (status === 429 || status === 503) ? { 'retry-after': '1' } : undefined;
  const [code, message, inner] =
    status === 429
      ? ['activityLimitReached', 'The request has been throttled', 'throttledRequest']
      : status === 503
        ? ['serviceNotAvailable', 'The service is not available. Try the request again after a delay.', undefined]
        : status === 401
          ? ['InvalidAuthenticationToken', 'Access token has expired or is not yet valid.', undefined]
          : status === 404
            ? ['itemNotFound', 'The resource could not be found.', undefined]
            : status === 507
              ? ['quotaLimitReached', 'Insufficient Space Available', undefined]
              : status >= 500
                ? ['generalException', 'An unspecified error has occurred.', undefined]
                : ['invalidRequest', 'The request is malformed or incorrect.', undefined];
  return { ...(retry ? { headers: retry } : {}), body: graphErrorBody(code!, message!, null, inner) };
}
