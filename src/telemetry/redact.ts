/**
 * Keeping secrets out of logs. Two nets: by key (a field named like a credential is replaced,
 * whatever it holds) and by value (every known secret from the config is replaced wherever it
 * appears in a string: an error message, a URL, a response body).
 */
import type { Config } from '../config/schema.js';

/** What a redacted value is replaced with. */
export const REDACTED = '[redacted]';

/**
 * Secrets shorter than this are not scrubbed by value: replacing every "abc" in every log line
 * would wreck the logs and hide nothing real. Key-based redaction still applies to them.
 */
export const MIN_SECRET_LENGTH = 4;

/** Auth keys that hold a secret (ids, tenants, file paths and `kind` are not secrets). */
const SECRET_AUTH_KEYS = new Set(['clientSecret', 'refreshToken', 'appSecret', 'accessToken', 'password']);

/**
 * Every secret value in the resolved config (each target's auth), deduplicated. Callers give the
 * result to `createLogger({ secrets })`, and to anything else that prints provider data.
 */
export function collectSecrets(config: Pick<Config, 'targets'> & { journal?: Config['journal'] }): string[] {
  const found = new Set<string>();
  if (config.journal) {
    // The journal's url, and its password alone (pg may quote either).
    found.add(config.journal.url);
    try {
      const password = decodeURIComponent(new URL(config.journal.url).password);
      if (password !== '') found.add(password);
    } catch {
      // Not a URL: the whole value is redacted all the same.
    }
  }
  for (const target of config.targets) {
    if (!('auth' in target)) continue;
    for (const [key, value] of Object.entries(target.auth)) {
      if (SECRET_AUTH_KEYS.has(key) && typeof value === 'string' && value !== '') found.add(value);
    }
  }
  return [...found];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A function that replaces every occurrence of the secrets in a string with `[redacted]`.
 * Each secret is also matched in its URL-encoded forms (tokens travel in query strings).
 * Longer secrets are matched first, so one containing another is replaced whole.
 */
export function createRedactor(secrets: readonly string[]): (s: string) => string {
  const variants = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue;
    variants.add(secret);
    variants.add(encodeURIComponent(secret));
    variants.add(new URLSearchParams({ s: secret }).toString().slice(2));
  }
  if (variants.size === 0) return (s) => s;
  const pattern = new RegExp([...variants].sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g');
  return (s) => (s.length === 0 ? s : s.replace(pattern, REDACTED));
}

/** `s` with every known secret replaced by `[redacted]` (see createRedactor). */
export function redactString(s: string, secrets: readonly string[]): string {
  return createRedactor(secrets)(s);
}
