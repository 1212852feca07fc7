/**
 * Drive's error bodies: `{error: {code, message, errors: [{message, domain, reason, location?,
 * locationType?}], status}}`, as the "Resolve errors" guide of the Drive API shows them, and the
 * canned errors the emulator answers with or a test can queue.
 */
import type { EmulatorRequest } from '../harness/index.js';
import { sendJson } from '../harness/index.js';

/** The gRPC-style `status` string Google's front end adds for each HTTP code. */
const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  412: 'FAILED_PRECONDITION',
  416: 'OUT_OF_RANGE',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

export interface DriveErrorSpec {
  code: number;
  reason: string;
  message: string;
  /** `global` for most, `usageLimits` for quotas and rate limits. */
  domain?: string;
  location?: string;
  locationType?: 'parameter' | 'header';
  /** The top-level message when it differs from the item's (401 does). */
  topMessage?: string;
}

export interface DriveErrorBody {
  error: {
    code: number;
    message: string;
    errors: Array<{ message: string; domain: string; reason: string; location?: string; locationType?: string }>;
    status?: string;
  };
}

/** Renders a spec into Google's JSON error body. */
export function errorBody(spec: DriveErrorSpec): DriveErrorBody {
  const item: DriveErrorBody['error']['errors'][number] = {
    message: spec.message,
    domain: spec.domain ?? 'global',
    reason: spec.reason,
  };
  if (spec.location !== undefined) item.location = spec.location;
  if (spec.locationType !== undefined) item.locationType = spec.locationType;
  const body: DriveErrorBody = { error: { code: spec.code, message: spec.topMessage ?? spec.message, errors: [item] } };
  const status = STATUS_NAMES[spec.code];
  if (status) body.error.status = status;
  return body;
}

/** Headers a Drive error carries besides its JSON type (401 names the realm). */
export function errorHeaders(spec: DriveErrorSpec): Record<string, string> {
  if (spec.code === 401) return { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' };
  return {};
}

export function sendDriveError(r: EmulatorRequest, spec: DriveErrorSpec, extraHeaders: Record<string, string> = {}): void {
  sendJson(r, spec.code, errorBody(spec), { ...errorHeaders(spec), ...extraHeaders });
}

/** Thrown by handlers; the router turns it into a Drive error response. */
export class DriveHttpError extends Error {
  constructor(readonly spec: DriveErrorSpec) {
    super(spec.message);
    this.name = 'DriveHttpError';
  }
}

const AUTH_TOP =
  'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

/** The errors a test can queue with `failNext`, and the emulator raises itself. */
export const DRIVE_ERRORS = {
  /** An expired, revoked or unknown access token. */
  authError: { code: 401, reason: 'authError', message: 'Invalid Credentials', topMessage: AUTH_TOP, location: 'Authorization', locationType: 'header' },
  /** No Authorization header at all. */
  required: {
    code: 401,
    reason: 'required',
    message: 'Login Required.',
    topMessage:
      'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.',
    location: 'Authorization',
    locationType: 'header',
  },
  /** Per-user request rate (the Cloud console quota). */
  userRateLimitExceeded: { code: 403, domain: 'usageLimits', reason: 'userRateLimitExceeded', message: 'User Rate Limit Exceeded' },
  /** Project-wide rate. */
  rateLimitExceeded: { code: 403, domain: 'usageLimits', reason: 'rateLimitExceeded', message: 'Rate Limit Exceeded' },
  /** The back end's own throttling. */
  tooManyRequests: { code: 429, domain: 'usageLimits', reason: 'rateLimitExceeded', message: 'Rate Limit Exceeded' },
  /**
   * The undocumented 750 GB/day upload cap. Google reports it with the rate-limit reason and a
   * message in sentence case; rclone's `--drive-stop-on-upload-limit` tells the two apart by
   * exactly this message.
   */
  dailyUploadCap: { code: 403, domain: 'usageLimits', reason: 'userRateLimitExceeded', message: 'User rate limit exceeded.' },
  /** The project's daily request quota. */
  dailyLimitExceeded: { code: 403, domain: 'usageLimits', reason: 'dailyLimitExceeded', message: 'Daily Limit Exceeded' },
  storageQuotaExceeded: {
    code: 403,
    domain: 'usageLimits',
    reason: 'storageQuotaExceeded',
    message: "The user's Drive storage quota has been exceeded.",
  },
  backendError: { code: 500, reason: 'backendError', message: 'Backend Error' },
  backendError503: { code: 503, reason: 'backendError', message: 'Backend Error' },
} as const satisfies Record<string, DriveErrorSpec>;

export type DriveErrorName = keyof typeof DRIVE_ERRORS;

export function notFound(id: string): DriveErrorSpec {
  return { code: 404, reason: 'notFound', message: `File not found: ${id}.`, location: 'fileId', locationType: 'parameter' };
}

export function invalidParam(location: string, message = 'Invalid Value'): DriveErrorSpec {
  return { code: 400, reason: 'invalid', message, location, locationType: 'parameter' };
}

export function badRequest(message: string): DriveErrorSpec {
  return { code: 400, reason: 'badRequest', message };
}

/** The body a harness status fault renders (random 429/5xx injection). */
export function faultSpec(status: number): DriveErrorSpec {
  if (status === 429) return DRIVE_ERRORS.tooManyRequests;
  if (status === 403) return DRIVE_ERRORS.userRateLimitExceeded;
  if (status === 401) return DRIVE_ERRORS.authError;
  if (status >= 500) return { code: status, reason: 'backendError', message: 'Backend Error' };
  return { code: status, reason: 'badRequest', message: 'Bad Request' };
}
