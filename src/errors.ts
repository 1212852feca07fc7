/**
 * Errors with stable codes. Every error Stagecoach raises on purpose is a StagecoachError; the
 * `code` is part of the public contract (logs, status, tests match on it), the message is not.
 */
export class StagecoachError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StagecoachError';
    this.code = code;
  }
}

/** What a failed call means for the delivery and the target. */
export type ErrorKind = 'retry' | 'fail-item' | 'fatal';

/**
 * An error from a target, already classified. `retry`: transient, try again after
 * `retryAfterMs` when the provider said so. `fail-item`: this delivery fails with the message as
 * its reason. `fatal`: the target cannot work (revoked credentials, storage full) and is parked.
 */
export class TargetError extends StagecoachError {
  readonly target: string;
  readonly kind: ErrorKind;
  readonly retryAfterMs: number | undefined;
  constructor(
    target: string,
    kind: ErrorKind,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number; code?: string },
  ) {
    super(options?.code ?? `target.${kind}`, `[stagecoach] [${target}] ${message}`, options);
    this.name = 'TargetError';
    this.target = target;
    this.kind = kind;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** A config file that cannot be used. `path` is the key path (`targets.1.maxDemand`). */
export class ConfigError extends StagecoachError {
  readonly path: string;
  readonly line: number | undefined;
  constructor(path: string, message: string, options?: { line?: number; cause?: unknown }) {
    super('config.invalid', message, options);
    this.name = 'ConfigError';
    this.path = path;
    this.line = options?.line;
  }
}

/** The bytes read from a source differ from the size stated for it (file changed or truncated). */
export class ShortReadError extends StagecoachError {
  readonly expected: number;
  readonly actual: number;
  constructor(expected: number, actual: number) {
    super('source.size-mismatch', `read ${actual} bytes, expected ${expected}: the file changed while it was read`);
    this.name = 'ShortReadError';
    this.expected = expected;
    this.actual = actual;
  }
}
