/**
 * Clear English for config problems. zod's own texts ("Invalid input: expected number, received
 * string") are replaced here, so every message reads "expected a number, got "four"" and stays
 * on one line whatever the input holds.
 */
import type { z } from 'zod';

const MAX_SHOWN = 60;

let hidden: ReadonlyMap<unknown, string> | undefined;

/**
 * Runs `fn` (synchronous) with the values in `values` shown by describeValue as their text in the
 * file (`${file:/run/secrets/x}`, `${NAME}`) instead of themselves: a value read through a
 * reference may be a secret whatever its key.
 */
export function hidingValues<T>(values: ReadonlyMap<unknown, string>, fn: () => T): T {
  const outer = hidden;
  hidden = values;
  try {
    return fn();
  } finally {
    hidden = outer;
  }
}

/**
 * How a value from the file is shown in a message: quoted strings, plain numbers, kinds; a value
 * that came from a `${...}` reference (see hidingValues) as the reference.
 */
export function describeValue(value: unknown): string {
  const reference = hidden?.get(value);
  if (reference !== undefined) return reference;
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const shown = value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN - 1)}…` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Uint8Array) return 'binary data';
  if (value instanceof Date) return `a date (${JSON.stringify(value.toISOString())})`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** The kind of a value, without the value (for secrets). */
export function describeKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value === 'string') return 'a string';
  return typeof value;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  array: 'a list',
  null: 'null',
};

function typeName(expected: unknown): string {
  return TYPE_NAMES[String(expected)] ?? String(expected);
}

function orList(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

/** Levenshtein distance, for "did you mean" on unknown keys. */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] ?? 0;
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
      prev[j] = Math.min(up + 1, (prev[j - 1] ?? 0) + 1, diag + cost);
      diag = up;
    }
  }
  return prev[b.length] ?? 0;
}

/** The closest known key, if one is close enough to be a typo. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(key.length / 4)) ? best : undefined;
}

function knownKeys(inst: unknown): string[] {
  const shape = (inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

/**
 * The per-parse zod error map. Messages set on a schema itself (sizes, durations, names) take
 * precedence over this map, as zod 4 orders them. Returns the text after "key.path: ".
 */
export function configErrorMap(issue: z.core.$ZodRawIssue): string | undefined {
  const input = issue.input;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return 'is required';
      return `expected ${typeName(issue.expected)}, got ${describeValue(input)}`;
    case 'invalid_union': {
      if ('discriminator' in issue && typeof issue.discriminator === 'string') {
        const options = (Array.isArray(issue.options) ? issue.options : []).map(String).join(', ');
        const got =
          input !== null && typeof input === 'object' && !Array.isArray(input)
            ? (input as Record<string, unknown>)[issue.discriminator]
            : undefined;
        if (got === undefined) return `is required (one of ${options})`;
        return `expected one of ${options}, got ${describeValue(got)}`;
      }
      const expected = new Set<string>();
      for (const branch of issue.errors ?? []) {
        for (const inner of branch) {
          if (inner.code === 'invalid_type' && inner.path.length === 0) expected.add(typeName(inner.expected));
        }
      }
      if (expected.size === 0) return `is not valid, got ${describeValue(input)}`;
      return `expected ${orList([...expected])}, got ${describeValue(input)}`;
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v));
      const list = values.length === 1 ? values.join('') : `one of ${values.join(', ')}`;
      return `expected ${list}, got ${describeValue(input)}`;
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array') {
        return `must have at least ${min} ${min === 1 ? 'entry' : 'entries'}`;
      }
      if (issue.origin === 'string') {
        return min <= 1 ? 'must not be empty' : `must be at least ${min} characters long`;
      }
      const bound = issue.inclusive ? `at least ${min}` : `greater than ${min}`;
      return `must be ${bound}, got ${describeValue(input)}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'array') return `must have at most ${max} ${max === 1 ? 'entry' : 'entries'}`;
      if (issue.origin === 'string') return `must be at most ${max} characters long`;
      const bound = issue.inclusive ? `at most ${max}` : `less than ${max}`;
      return `must be ${bound}, got ${describeValue(input)}`;
    }
    case 'invalid_format':
      if (issue.format === 'url') return `expected an http(s) URL, got ${describeValue(input)}`;
      if (issue.format === 'regex' && issue.pattern) {
        return `does not match ${issue.pattern}, got ${describeValue(input)}`;
      }
      return `expected a valid ${issue.format}, got ${describeValue(input)}`;
    case 'unrecognized_keys': {
      const key = issue.keys[0] ?? '';
      const hint = suggestKey(key, knownKeys(issue.inst));
      return `unknown key ${JSON.stringify(key)}${hint ? ` (did you mean "${hint}"?)` : ''}`;
    }
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}, got ${describeValue(input)}`;
    default:
      return undefined;
  }
}
