/**
 * Dropbox's error shapes, as its HTTP reference ("Errors by status code") describes them:
 * - 400 bad input: a plain-text body (`Error in call to API function "files/upload": …`);
 * - 401 bad or expired token: JSON `{error_summary, error: AuthError}`;
 * - 409 endpoint-specific: JSON `{error_summary, error: <the route's error union>}`;
 * - 429 rate limited: JSON `{error_summary, error: RateLimitError}` and always `Retry-After`;
 * - 5xx: a plain-text body.
 * `error_summary` is the chain of union tags, each followed by `/`, then a few dots: Dropbox pads
 * it on purpose (seen as `path/disallowed_name/`, `…/.`, `…/..`) so clients match on the tags and
 * never on the whole string. The padding here is drawn from a seeded source.
 */
import type { FaultContext } from '../harness/index.js';

/** A JSON-able value of a Dropbox union (`{'.tag': …}`) or struct. */
export type Tagged = { '.tag': string; [k: string]: unknown };

/** An HTTP answer the dispatcher writes: the routes throw or return these. */
export class DropboxHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
    this.name = 'DropboxHttpError';
  }
}

/** Error-summary builder with Dropbox's random trailing dots, seeded for replayable runs. */
export class Summaries {
  constructor(private readonly random: () => number) {}

  /** `path/not_found/` + 0–3 dots. */
  of(tags: string[]): string {
    return `${tags.join('/')}/${'.'.repeat(Math.floor(this.random() * 4))}`;
  }

  /** A 409 route error whose summary is the chain of tags inside `error`. */
  route(error: Tagged): DropboxHttpError {
    return new DropboxHttpError(409, { error_summary: this.of(tagChain(error)), error });
  }

  /** A 401 AuthError (`expired_access_token`, `invalid_access_token`, …). */
  auth(tag: string): DropboxHttpError {
    return new DropboxHttpError(401, { error_summary: this.of([tag]), error: { '.tag': tag } });
  }

  /** A 429 RateLimitError with its Retry-After header. */
  rateLimit(reason: 'too_many_requests' | 'too_many_write_operations', retryAfterS: number): DropboxHttpError {
    return new DropboxHttpError(
      429,
      { error_summary: this.of([reason]), error: { reason: { '.tag': reason }, retry_after: retryAfterS } },
      { 'retry-after': String(retryAfterS) },
    );
  }
}

/**
 * The tags of a nested union value, outermost first: `{'.tag':'path', path:{'.tag':'conflict',
 * conflict:{'.tag':'folder'}}}` → path, conflict, folder. A member whose value is a struct is
 * flattened into the union object by Dropbox's JSON encoding, so the walk also follows the one
 * struct field that holds a union (UploadWriteFailed.reason, as in `path/insufficient_space/`).
 */
export function tagChain(v: Tagged): string[] {
  const out = [v['.tag']];
  const inner = v[v['.tag']] ?? v.reason;
  if (inner && typeof inner === 'object' && '.tag' in inner) out.push(...tagChain(inner as Tagged));
  return out;
}

/** A 400 with Dropbox's plain-text body for a route's bad input. */
export function badInput(route: string, message: string): DropboxHttpError {
  return new DropboxHttpError(400, `Error in call to API function "${route}": ${message}`);
}

/** Routes that write to the user's namespace (they get `too_many_write_operations`), by URL path. */
export const WRITE_ROUTE_RE = /^(\/api|\/content)?\/2\/files\/(upload$|upload_session\/finish|create_folder|delete|move|copy)/;

export function isWriteRoute(path: string): boolean {
  return WRITE_ROUTE_RE.test(path);
}

/**
 * The harness's `faultBody` for Dropbox: an injected status rendered as Dropbox would send it.
 * 429 on a write route is `too_many_write_operations` (the namespace lock), elsewhere
 * `too_many_requests`; both carry Retry-After (default 1 s, Dropbox's documented default).
 */
export function dropboxFaultBody(summaries: Summaries) {
  return (status: number, ctx?: FaultContext): { headers?: Record<string, string>; body: unknown } => {
    if (status === 429) {
      const retryAfterS = ctx?.retryAfterS ?? 1;
      const e = summaries.rateLimit(ctx && isWriteRoute(ctx.path) ? 'too_many_write_operations' : 'too_many_requests', retryAfterS);
      return { headers: { 'content-type': 'application/json', ...e.headers }, body: e.body };
    }
    if (status === 401) return { body: summaries.auth('expired_access_token').body };
    if (status === 409) return { body: { error_summary: summaries.of(['other']), error: { '.tag': 'other' } } };
    if (status === 400) return { headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Error in call to API function: bad request' };
    return {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
      body: status === 503 ? 'Service Unavailable' : 'Internal Server Error',
    };
  };
}
