/**
 * `${...}` references in config strings, resolved before validation:
 * - `${NAME}`: the environment variable; unset is an error (set but empty gives "").
 * - `${NAME:-default}`: the variable, or `default` when it is unset or empty.
 * - `${file:/run/secrets/x}`: the file's content with surrounding whitespace trimmed (Docker and
 *   Kubernetes secrets); a relative path is resolved against the working directory.
 * - `$${` is a literal `${`.
 * A reference ends at the first `}`, so a default cannot contain one. Results are not scanned
 * again: a secret that contains `${` stays as it is.
 */
import fs from 'node:fs';
import { expandPath } from './paths.js';

export interface InterpolateContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** A reference that cannot be resolved; the loader adds the key path and line. */
export class InterpolationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InterpolationError';
  }
}

const NAME_RE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

function readSecretFile(ref: string, ctx: InterpolateContext): string {
  const file = ref.trim();
  if (file === '') throw new InterpolationError('${file:} needs a path, as in ${file:/run/secrets/token}');
  const abs = expandPath(file, ctx.cwd);
  try {
    return fs.readFileSync(abs, 'utf8').trim();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'permission denied' : code;
    throw new InterpolationError(`cannot read secret file ${abs} (${why})`, { cause: error });
  }
}

function resolveReference(ref: string, ctx: InterpolateContext): string {
  if (ref.startsWith('file:')) return readSecretFile(ref.slice('file:'.length), ctx);
  const m = NAME_RE.exec(ref);
  if (!m) {
    throw new InterpolationError(
      `bad reference \${${ref}}: expected \${NAME}, \${NAME:-default} or \${file:/path} (write $\${ for a literal \${)`,
    );
  }
  const name = m[1] ?? '';
  const value = ctx.env[name];
  if (m[2] !== undefined) return value === undefined || value === '' ? m[2] : value;
  if (value === undefined) {
    throw new InterpolationError(`environment variable ${name} is not set (use \${${name}:-default} for a default)`);
  }
  return value;
}

/** True when `value` holds something `interpolate` would change. */
export function hasReference(value: string): boolean {
  return value.includes('${');
}

/** Resolves every reference in `value`. Throws InterpolationError on the first bad one. */
export function interpolate(value: string, ctx: InterpolateContext): string {
  let out = '';
  let i = 0;
  while (i < value.length) {
    const dollar = value.indexOf('$', i);
    if (dollar < 0) {
      out += value.slice(i);
      break;
    }
    out += value.slice(i, dollar);
    if (value.startsWith('$${', dollar)) {
      out += '${';
      i = dollar + 3;
    } else if (value.startsWith('${', dollar)) {
      const end = value.indexOf('}', dollar + 2);
      if (end < 0) throw new InterpolationError('unterminated ${ (write $${ for a literal ${)');
      out += resolveReference(value.slice(dollar + 2, end), ctx);
      i = end + 1;
    } else {
      out += '$';
      i = dollar + 1;
    }
  }
  return out;
}
