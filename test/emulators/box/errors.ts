/**
 * Box's error shapes. API errors are the ClientError object
 * (`{type: 'error', status, code, message, context_info?, help_url, request_id}`); a bad or
 * expired access token is a 401 with an empty body and a `WWW-Authenticate` challenge; the token
 * endpoint answers with the OAuth2Error object (`{error, error_description}`).
 */
import { randomBytes } from 'node:crypto';
import type { EmulatorRequest } from '../harness/index.js';
import { sendEmpty, sendJson } from '../harness/index.js';

/** The `help_url` Box puts in every error body. */
export const HELP_URL = 'https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/';

/** Box's `request_id`: opaque, unique per response. */
export function requestId(): string {
  return randomBytes(8).toString('hex');
}

/** Messages Box sends for the codes the emulator uses (from the common-errors guide). */
const MESSAGES: Record<string, string> = {
  bad_request: 'Bad Request',
  bad_digest: 'The specified content-md5 did not match what we received',
  digest_mismatch: 'File digest was incorrect.',
  file_size_limit_exceeded: 'File size exceeds the folder owner\u2019s file size limit',
  file_size_too_small: 'File size is less than minimum allowed for this API',
  folder_not_empty: 'Cannot delete \u2013 folder not empty',
  internal_server_error: 'Internal Server Error',
  bad_gateway: 'Bad Gateway',
  unavailable: 'Unavailable',
  item_name_in_use: 'Item with the same name already exists',
  item_name_invalid: 'Item name invalid',
  item_name_too_long: 'Item name too long',
  metadata_after_file_contents: 'Metadata is included after file contents in a file upload request.',
  method_not_allowed: 'Method Not Allowed',
  not_found: 'Not Found',
  parts_mismatch: 'Parts sent in the commit do not match the parts uploaded to the session',
  precondition_failed: 'The resource has been modified. Retrieve the resource again and retry',
  range_not_satisfiable: 'The content range does not match a specified range for the session',
  range_overlaps_existing_part: 'Part range overlaps with a part already uploaded',
  rate_limit_exceeded: 'Request rate limit exceeded, please try again later',
  storage_limit_exceeded: 'Account storage limit reached',
};

/** Box's ClientError object. */
export interface BoxErrorBody {
  type: 'error';
  status: number;
  code: string;
  context_info?: unknown;
  help_url: string;
  message: string;
  request_id: string;
}

/** A ClientError body; `message` defaults to Box's text for `code`. */
export function boxError(status: number, code: string, message?: string, contextInfo?: unknown): BoxErrorBody {
  return {
    type: 'error',
    status,
    code,
    ...(contextInfo === undefined ? {} : { context_info: contextInfo }),
    help_url: HELP_URL,
    message: message ?? MESSAGES[code] ?? code,
    request_id: requestId(),
  };
}

/** Sends a ClientError body with `box-request-id`, as Box does on every API response. */
export function sendBoxError(
  r: EmulatorRequest,
  status: number,
  code: string,
  message?: string,
  contextInfo?: unknown,
  headers: Record<string, string> = {},
): void {
  const body = boxError(status, code, message, contextInfo);
  sendJson(r, status, body, { 'box-request-id': body.request_id, ...headers });
}

/** A 404 as Box renders it for an unknown item id: `context_info.errors[]` names the parameter. */
export function sendNotFound(r: EmulatorRequest, name: 'folder' | 'file' | 'item' | 'upload_session', id: string): void {
  sendBoxError(r, 404, 'not_found', 'Not Found', {
    errors: [{ reason: 'invalid_parameter', name, message: `Invalid value '${id}'. '${name}' with value '${id}' not found` }],
  });
}

/**
 * 401 for a missing, unknown, expired or revoked access token: empty body, the reason only in
 * `WWW-Authenticate` (RFC 6750). Without any token Box sends the bare realm challenge.
 */
export function sendUnauthorized(r: EmulatorRequest, hadToken: boolean): void {
  const challenge = hadToken
    ? 'Bearer realm="Service", error="invalid_token", error_description="The access token provided is invalid."'
    : 'Bearer realm="Service"';
  sendEmpty(r, 401, { 'www-authenticate': challenge, 'box-request-id': requestId() });
}

/** The token endpoint's error object (RFC 6749 §5.2), always 400 on Box. */
export function sendOAuthError(r: EmulatorRequest, error: string, description: string, status = 400): void {
  sendJson(r, status, { error, error_description: description });
}

/**
 * Renders a status injected by the harness (rate limits, 5xx, 401) in Box's shape. 429 always
 * carries `retry-after` on Box; the harness overrides it when a fault names its own value.
 */
export function faultBody(status: number): { headers?: Record<string, string>; body: unknown } {
  switch (status) {
    case 401:
      return {
        headers: { 'www-authenticate': 'Bearer realm="Service", error="invalid_token", error_description="The access token provided is invalid."' },
        body: '',
      };
    case 429:
      return { headers: { 'retry-after': '1' }, body: boxError(429, 'rate_limit_exceeded') };
    case 500:
      return { body: boxError(500, 'internal_server_error') };
    case 502:
      return { body: boxError(502, 'bad_gateway') };
    case 503:
      return { body: boxError(503, 'unavailable') };
    default:
      return { body: boxError(status, status >= 500 ? 'internal_server_error' : 'bad_request') };
  }
}
