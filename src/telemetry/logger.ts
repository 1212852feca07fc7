/**
 * The pino logger every part of Stagecoach logs through. Secrets never reach the output:
 *
 * 1. By key: pino `redact` paths for the usual places, and a deep walk that replaces any field
 *    named like a credential (authorization, accessToken, refresh_token, clientSecret,
 *    password, token, cookie, privateKey, ...; case, `-` and `_` ignored) at any depth.
 * 2. By value: every known secret (`secrets`, see collectSecrets) is replaced wherever it
 *    appears: in the message, in printf arguments, in string fields at any depth, in an error's
 *    message, stack and properties, and finally in the serialized line itself.
 *
 * Errors logged as `err` (or as the first argument) keep type, message, code, stack and cause
 * (pino's err serializer), scrubbed. Log objects are copied, never modified.
 */
import { isatty } from 'node:tty';
import { createRequire } from 'node:module';
import pino, { type Logger, type LoggerOptions } from 'pino';
import type { LogFormat, LogLevel } from '../config/schema.js';
import { MIN_SECRET_LENGTH, REDACTED, createRedactor } from './redact.js';

export type { Logger } from 'pino';

export interface CreateLoggerOptions {
  level: LogLevel | 'silent';
  /** `auto`: pretty when the destination is a terminal, JSON lines otherwise. */
  format: LogFormat;
  /** Values to scrub wherever they appear (from collectSecrets). */
  secrets?: readonly string[];
  /** A stream, or a file descriptor. Default: stdout. */
  destination?: NodeJS.WritableStream | number;
}

/**
 * Field names whose values are always replaced, compared lower-case with `-` and `_` removed
 * (so `refresh_token`, `refreshToken` and `Refresh-Token` all match).
 */
export const SECRET_FIELD_NAMES: readonly string[] = [
  'authorization',
  'proxyauthorization',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'token',
  'bearer',
  'clientsecret',
  'appsecret',
  'secret',
  'password',
  'passwd',
  'apikey',
  'xapikey',
  'cookie',
  'setcookie',
  'privatekey',
  'privatekeyid',
  'codeverifier',
  'clientassertion',
];

const SECRET_FIELDS = new Set(SECRET_FIELD_NAMES);

/** pino redact paths: the fast path for the usual places (the deep walk covers the rest). */
export const REDACT_PATHS: readonly string[] = [
  'authorization',
  'Authorization',
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
  'clientSecret',
  'client_secret',
  'appSecret',
  'password',
  'token',
  'headers.authorization',
  'headers.Authorization',
  'headers.cookie',
  '*.authorization',
  '*.Authorization',
  '*.accessToken',
  '*.refreshToken',
  '*.access_token',
  '*.refresh_token',
  '*.clientSecret',
  '*.client_secret',
  '*.password',
  '*.token',
  '*.headers.authorization',
  '*.headers.Authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  'requestInfo.headers.authorization',
  'err.requestInfo.headers.authorization',
  'err.config.headers.Authorization',
  'err.config.headers.authorization',
];

function isSecretField(key: string): boolean {
  return SECRET_FIELDS.has(key.toLowerCase().replace(/[-_]/g, ''));
}

const MAX_DEPTH = 12;

/**
 * A deep copy of `value` fit for output: fields named like credentials (SECRET_FIELD_NAMES)
 * become `[redacted]`, every string has the secrets replaced, errors become pino's serialized
 * form (type, message, stack, code, causes) scrubbed the same way, cycles become "[Circular]"
 * and nesting past 12 levels "[Object]". The input is never modified. The logger uses this on
 * every log object; anything else that shows provider data (a status page) can too.
 */
export function createScrubber(secrets: readonly string[]): (value: unknown) => unknown {
  return makeScrubber(createRedactor(secrets));
}

function makeScrubber(redact: (s: string) => string): (value: unknown) => unknown {
  const walk = (value: unknown, depth: number, seen: WeakSet<object>): unknown => {
    if (typeof value === 'string') return redact(value);
    if (value === null || typeof value !== 'object') return value;
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
    if (seen.has(value)) return '[Circular]';
    if (depth > MAX_DEPTH) return '[Object]';
    seen.add(value);
    try {
      if (value instanceof Error) {
        // pino's own serializer keeps type, message, stack, code, causes; then scrub what it kept.
        return walk({ ...pino.stdSerializers.err(value) }, depth, seen);
      }
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') {
        return walk(toJSON.call(value), depth + 1, seen);
      }
      if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1, seen));
      if (value instanceof Map) {
        return walk(Object.fromEntries([...value].map(([k, v]) => [String(k), v])), depth, seen);
      }
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        const child = (value as Record<string, unknown>)[key];
        out[key] = isSecretField(key) && child !== undefined && child !== null ? REDACTED : walk(child, depth + 1, seen);
      }
      return out;
    } finally {
      seen.delete(value);
    }
  };
  return (value) => walk(value, 0, new WeakSet());
}

/** Escapes as JSON.stringify would inside a string, to find secrets in a serialized line. */
function jsonEscaped(secret: string): string {
  return JSON.stringify(secret).slice(1, -1);
}

function isTerminal(destination: NodeJS.WritableStream | number | undefined): boolean {
  if (destination === undefined) return process.stdout.isTTY === true;
  if (typeof destination === 'number') return isatty(destination);
  return (destination as { isTTY?: boolean }).isTTY === true;
}

/**
 * A pino logger with Stagecoach's redaction. `format: 'pretty'` (or `auto` on a terminal)
 * formats in-process with pino-pretty, synchronously; JSON goes to the destination through
 * sonic-boom when it is a file descriptor. Callers MUST call `flushLogger` before exiting.
 */
export function createLogger(opts: CreateLoggerOptions): Logger {
  const secrets = opts.secrets ?? [];
  const redact = createRedactor(secrets);
  const scrub = makeScrubber(redact);
  const redactLine = createRedactor(
    secrets.filter((s) => s.length >= MIN_SECRET_LENGTH).flatMap((s) => [s, jsonEscaped(s)]),
  );

  const options: LoggerOptions = {
    level: opts.level,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    serializers: {
      // formatters.log has already turned errors into scrubbed plain objects.
      err: (value: unknown) => (value instanceof Error ? scrub(value) : value),
    },
    formatters: {
      log: (object) => scrub(object) as Record<string, unknown>,
      // The root's own bindings; child() and setBindings() are wrapped below.
      bindings: (bindings) => scrub(bindings) as Record<string, unknown>,
    },
    hooks: {
      // printf arguments are formatted after formatters.log, so objects (%j, %o) are scrubbed
      // here for credential keys; strings and errors (%s) are caught by streamWrite below.
      logMethod(args, method) {
        const [first, ...rest] = args as unknown[];
        const isPlainObject = (arg: unknown) => typeof arg === 'object' && arg !== null && !(arg instanceof Error);
        const out = [first, ...rest.map((arg) => (isPlainObject(arg) ? scrub(arg) : arg))];
        (method as (...a: unknown[]) => void).apply(this, out);
      },
      // The last net: any known secret still in the serialized line (a message, a message
      // prefix, an error pino took the message from) is replaced before it is written.
      streamWrite: (line) => redactLine(line),
    },
  };

  const format = opts.format === 'auto' ? (isTerminal(opts.destination) ? 'pretty' : 'json') : opts.format;
  if (format === 'pretty') {
    // Loaded only for this format: a daemon logging JSON never pays its import (~15–30 ms at start).
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    const stream = pretty({
      destination: opts.destination ?? 1,
      colorize: isTerminal(opts.destination),
      sync: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    return scrubChildBindings(pino(options, stream), scrub);
  }
  const destination =
    opts.destination === undefined || typeof opts.destination === 'number'
      ? pino.destination({ dest: opts.destination ?? 1, sync: false })
      : opts.destination;
  return scrubChildBindings(pino(options, destination), scrub);
}

/**
 * pino applies formatters.bindings to the root's bindings only, not to `child()` or
 * `setBindings()`; wrap both on the root (children inherit them through the prototype).
 */
function scrubChildBindings(log: Logger, scrub: (value: unknown) => unknown): Logger {
  const child = log.child as unknown as (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => Logger;
  const setBindings = log.setBindings;
  log.child = function (this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) {
    return child.call(this, scrub(bindings) as pino.Bindings, options);
  } as unknown as Logger['child'];
  log.setBindings = function (this: Logger, bindings: pino.Bindings) {
    setBindings.call(this, scrub(bindings) as pino.Bindings);
  };
  return log;
}

/**
 * Writes out whatever the logger still buffers. Call (and await) before the process exits;
 * resolves even if flushing fails, since there is nowhere left to report that.
 */
export function flushLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      log.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}
