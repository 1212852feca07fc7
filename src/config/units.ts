/**
 * Durations and sizes as the config file writes them. Both accept a plain number (milliseconds,
 * bytes) or a short string. Pure functions: they return `undefined` for anything they do not
 * understand, and the schema turns that into a ConfigError naming the key.
 */

/**
 * A duration: a number with an optional unit, `ms` (the default), `s`, `m`, `h` or `d`.
 * Fractions are allowed ("1.5s"); one number and one unit only ("1h30m" is refused).
 * The JSON Schema copies this pattern, so keep it free of flags and lookarounds.
 */
export const DURATION_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h|d)?\\s*$';

/**
 * A size: a number with an optional unit. Decimal units are powers of 1000 (KB, MB, GB, TB),
 * binary units powers of 1024 (KiB, MiB, GiB, TiB), in any letter case; no unit or `B` is bytes.
 */
export const SIZE_PATTERN = '^\\s*\\d+(\\.\\d+)?\\s*([bB]|[kKmMgGtT][iI]?[bB])?\\s*$';

const DURATION_RE = new RegExp(DURATION_PATTERN);
const SIZE_RE = new RegExp(SIZE_PATTERN);

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/**
 * Milliseconds for a duration (`2000`, `"2000"`, `"2s"`, `"1.5m"`, `"1h"`, `"1d"`), rounded to a
 * whole millisecond; `undefined` when the input is not a duration (negative, NaN, bad unit).
 */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  }
  const m = DURATION_RE.exec(input);
  if (!m) return undefined;
  const unit = DURATION_UNITS[m[2] ?? 'ms'];
  if (unit === undefined) return undefined;
  const ms = Math.round(Number.parseFloat(input) * unit);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/**
 * Bytes for a size (`4096`, `"4096"`, `"10MB"`, `"4 KiB"`, `"1.5 GB"`), rounded to a whole
 * byte; `undefined` when the input is not a size.
 */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  }
  const m = SIZE_RE.exec(input);
  if (!m) return undefined;
  const unit = SIZE_UNITS[(m[2] ?? 'b').toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.round(Number.parseFloat(input) * unit);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
