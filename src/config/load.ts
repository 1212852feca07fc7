/**
 * Reading the config file: YAML → interpolation → validation → path resolution → checks that
 * need the file system. Every problem is a ConfigError whose message is one line naming the
 * file, the line, the key path and what is wrong:
 *
 *     config/stagecoach.yaml:7: targets.0.maxDemand: expected a number, got "four"
 *
 * Only the first problem (in file order) is reported.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  LineCounter,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  visit,
  type Document,
  type Scalar,
} from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { InterpolationError, hasReference, interpolate, type InterpolateContext } from './interpolate.js';
import { configErrorMap, describeKind, hidingValues } from './messages.js';
import { expandPath, isInside, realPathSoFar } from './paths.js';
import { PROVIDERS } from '../targets/providers.js';
import type { PathKey } from '../targets/provider.js';
import { configSchema, type Config } from './schema.js';

export interface ParseConfigOptions {
  /** Variables for `${NAME}`. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Relative paths (and `${file:...}`) are resolved against this. Default: process.cwd(). */
  cwd?: string;
  /** The file name shown in messages. Default: "<config>". */
  source?: string;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

type KeyPath = (string | number)[];

/**
 * Keys whose values are never shown in a message: the last segment of every provider's secret
 * keys, and the status server's `token`.
 */
const SECRET_KEYS = new Set([...Object.values(PROVIDERS).flatMap((p) => p.secretKeys.map((key) => key.split('.').pop() ?? key)), 'token']);

/** Where things are in the YAML text, for messages. */
class Locator {
  /** Interpolated values and how to show them instead (see hide). */
  readonly hidden = new Map<unknown, string>();

  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly source: string,
  ) {}

  /**
   * The node at `keyPath` (when the whole path exists) and the offset to report: the key's for
   * a mapping entry (the line a reader looks at), the deepest existing ancestor's otherwise.
   */
  find(keyPath: KeyPath): { node: unknown; offset: number | undefined; found: boolean } {
    let node: unknown = this.doc.contents;
    let offset = keyPath.length === 0 ? rangeStart(node) : undefined;
    for (const segment of keyPath) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(segment));
        if (!pair) return { node: undefined, offset, found: false };
        offset = rangeStart(pair.key) ?? offset;
        node = pair.value;
      } else if (isSeq(node)) {
        const item: unknown = node.items[Number(segment)];
        if (item === undefined) return { node: undefined, offset, found: false };
        offset = rangeStart(item) ?? offset;
        node = item;
      } else {
        return { node: undefined, offset, found: false };
      }
    }
    return { node, offset, found: true };
  }

  /**
   * The last guard against echoing a `${...}` value: any interpolated string of 4 characters or
   * more left in `message` (a message built without describeValue) becomes its reference.
   */
  private hide(message: string): string {
    let out = message;
    for (const [value, reference] of this.hidden) {
      if (typeof value !== 'string' || value.length < 4) continue;
      for (const form of [JSON.stringify(value), JSON.stringify(value).slice(1, -1), value]) out = out.split(form).join(reference);
    }
    return out;
  }

  line(offset: number | undefined): number | undefined {
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }

  error(keyPath: KeyPath, message: string, offset = this.find(keyPath).offset, cause?: unknown): ConfigError {
    const line = this.line(offset);
    const dotted = keyPath.map(String).map(printable).join('.');
    const text = `${this.source}${line === undefined ? '' : `:${line}`}: ${dotted ? `${dotted}: ` : ''}${this.hide(message)}`;
    return new ConfigError(dotted, text, { line, cause });
  }
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range?.[0];
}

/** Keeps a message on one line whatever a key contains. */
function printable(segment: string): string {
  return /[\s"\\]/.test(segment) ? JSON.stringify(segment) : segment;
}

/** Where the quoted scalar that runs to `end` (a YAML error's position) opened. */
function unclosedQuoteStart(doc: Document, end: number): number | undefined {
  let start: number | undefined;
  visit(doc, {
    Scalar(_key, node) {
      if ((node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') && node.range?.[1] === end) {
        start = node.range[0];
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return start;
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0]?.trim() ?? '';
}

/** Replaces references in every string value (keys are left alone). Returns the scalars changed. */
function interpolateDocument(doc: Document, ctx: InterpolateContext, where: Locator): Set<Scalar> {
  const changed = new Set<Scalar>();
  const walk = (node: unknown, keyPath: KeyPath): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        walk(pair.value, [...keyPath, String(isScalar(pair.key) ? pair.key.value : pair.key)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...keyPath, i]));
    } else if (isScalar(node) && typeof node.value === 'string' && hasReference(node.value)) {
      try {
        const value = interpolate(node.value, ctx);
        if (value !== node.value) {
          where.hidden.set(value, /^[^\s"\\]+$/.test(node.value) ? node.value : JSON.stringify(node.value));
          node.value = value;
          changed.add(node);
        }
      } catch (error) {
        if (error instanceof InterpolationError) throw where.error(keyPath, error.message, rangeStart(node), error);
        throw error;
      }
    }
  };
  walk(doc.contents, []);
  return changed;
}

const NUMBER_RE = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

/** An interpolated string read as the type the schema asked for, if it reads as one. */
function convert(value: string, expected: string[]): unknown {
  const v = value.trim();
  for (const kind of expected) {
    if ((kind === 'number' || kind === 'int') && NUMBER_RE.test(v)) return Number(v);
    if (kind === 'boolean' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
    if (kind === 'null' && (v === '' || v === 'null' || v === '~')) return null;
  }
  return undefined;
}

function expectedTypes(issue: z.core.$ZodIssue): string[] {
  if (issue.code === 'invalid_type') return [issue.expected];
  if (issue.code === 'invalid_union') {
    return issue.errors.flat().flatMap((inner) => (inner.code === 'invalid_type' && inner.path.length === 0 ? [inner.expected] : []));
  }
  return [];
}

function getIn(data: unknown, keyPath: KeyPath): unknown {
  let value = data;
  for (const segment of keyPath) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[String(segment)];
  }
  return value;
}

function setIn(data: unknown, keyPath: KeyPath, value: unknown): void {
  const parent = getIn(data, keyPath.slice(0, -1));
  const last = keyPath[keyPath.length - 1];
  if (parent !== null && typeof parent === 'object' && last !== undefined) {
    (parent as Record<string, unknown>)[String(last)] = value;
  }
}

function toKeyPath(p: PropertyKey[]): KeyPath {
  return p.map((s) => (typeof s === 'number' ? s : String(s)));
}

/**
 * Interpolation gives strings. Where the schema wants a number, boolean or null and an
 * interpolated value reads as one (`maxDemand: ${MAX}` with MAX=8), use that and try again.
 */
function retype(issues: z.core.$ZodIssue[], data: unknown, interpolated: Set<Scalar>, where: Locator): boolean {
  let changed = false;
  for (const issue of issues) {
    const keyPath = toKeyPath(issue.path);
    const { node, found } = where.find(keyPath);
    if (!found || !isScalar(node) || !interpolated.has(node)) continue;
    const current = getIn(data, keyPath);
    if (typeof current !== 'string') continue;
    const value = convert(current, expectedTypes(issue));
    if (value === undefined) continue;
    setIn(data, keyPath, value);
    where.hidden.set(value, where.hidden.get(current) ?? describeKind(value));
    interpolated.delete(node);
    changed = true;
  }
  return changed;
}

function firstIssueError(issues: z.core.$ZodIssue[], data: unknown, where: Locator): ConfigError {
  const located = issues.map((issue) => {
    let keyPath = toKeyPath(issue.path);
    let message = issue.message;
    if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) keyPath = [...keyPath, issue.keys[0]];
    const last = keyPath[keyPath.length - 1];
    // A secret's own value is never shown; rules that show none (length, cross-key) keep their text.
    if (typeof last === 'string' && SECRET_KEYS.has(last) && !['unrecognized_keys', 'too_small', 'custom'].includes(issue.code)) {
      const value = getIn(data, keyPath);
      message =
        value === undefined
          ? 'is required'
          : typeof value === 'string'
            ? 'must not be empty'
            : `expected a string, got ${describeKind(value)} (not shown: it is a secret)`;
    }
    return { keyPath, message, offset: where.find(keyPath).offset };
  });
  // File order; problems with no place in the file (a missing top-level key) come last.
  located.sort((a, b) => (a.offset ?? Infinity) - (b.offset ?? Infinity));
  const first = located[0];
  if (!first) return where.error([], 'is not valid');
  return where.error(first.keyPath, first.message, first.offset);
}

function validate(data: unknown, interpolated: Set<Scalar>, where: Locator): Config {
  // Each pass converts at least one interpolated scalar or stops, so this ends.
  for (;;) {
    // jitless: a config is parsed once or twice per start; zod's compiled fast path (code made
    // with new Function for each object schema on its first parse) costs more than it saves.
    const result = configSchema.safeParse(data, { error: configErrorMap, jitless: true });
    if (result.success) return result.data;
    if (!retype(result.error.issues, data, interpolated, where)) {
      throw firstIssueError(result.error.issues, data, where);
    }
  }
}

/** The path options of a target entry that are set: each with its key path and current value. */
function pathOptions(target: Config['targets'][number]): { key: PathKey; at: readonly string[]; value: string }[] {
  return PROVIDERS[target.type].pathKeys.flatMap((key) => {
    const value = getIn(target, [...key.key]);
    return typeof value === 'string' ? [{ key, at: key.key, value }] : [];
  });
}

function resolvePaths(config: Config, cwd: string): void {
  config.stateDir = expandPath(config.stateDir, cwd);
  for (const root of config.roots) {
    root.path = expandPath(root.path, cwd);
    if (root.afterArchive?.moveTo !== undefined) root.afterArchive.moveTo = expandPath(root.afterArchive.moveTo, cwd);
  }
  for (const target of config.targets) {
    for (const { at, value } of pathOptions(target)) setIn(target, [...at], expandPath(value, cwd));
  }
}

/**
 * Places that must not be inside a watched root: an archive there would be archived again
 * (forever), and state or credential files would be uploaded.
 */
function checkNesting(config: Config, where: Locator): void {
  const roots = config.roots.map((root) => ({ ...root, real: realPathSoFar(root.path) }));
  const problems: { keyPath: KeyPath; message: string }[] = [];
  const inside = (file: string, keyPath: KeyPath, what: string, why: string) => {
    const real = realPathSoFar(file);
    for (const root of roots) {
      if (isInside(real, root.real)) {
        const rel = real === root.real ? 'is' : 'is inside';
        problems.push({ keyPath, message: `${what} ${file} ${rel} the watched root "${root.name}" (${root.path}): ${why}` });
        return;
      }
    }
  };

  inside(config.stateDir, ['stateDir'], 'the state folder', 'its journal would be archived');
  config.targets.forEach((target, i) => {
    for (const { key, at, value } of pathOptions(target)) {
      const keyPath = ['targets', i, ...at];
      if (key.role === 'credentials') {
        inside(value, keyPath, key.what, 'your credentials would be archived');
        continue;
      }
      const why = 'Stagecoach would archive its own archive';
      inside(value, keyPath, key.what, why);
      const real = realPathSoFar(value);
      for (const root of roots) {
        if (real !== root.real && isInside(root.real, real)) {
          problems.push({ keyPath, message: `${key.what} ${value} contains the watched root "${root.name}" (${root.path}): ${why}` });
        }
      }
    }
  });

  const located = problems.map((p) => ({ ...p, offset: where.find(p.keyPath).offset }));
  located.sort((a, b) => (a.offset ?? Infinity) - (b.offset ?? Infinity));
  const first = located[0];
  if (first) throw where.error(first.keyPath, first.message, first.offset);
}

/**
 * Parses and validates config text. Synchronous (it may read `${file:...}` secrets).
 *
 * Guarantees: the result has every default applied, every derived value filled in (root names,
 * target ids, minDemand, per-root filters and polling) and every path absolute (resolved against
 * `cwd`; `~/` is the home folder). Throws ConfigError — `path` the dotted key path, `line` the
 * 1-based line, `message` one line as `source:line: key.path: what is wrong` — for the first
 * problem in file order: YAML syntax, a reference that cannot be resolved, an unknown key, a
 * wrong type or value, a cross-key rule, or a folder that must not be inside a watched root.
 */
export function parseConfig(text: string, opts: ParseConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const source = opts.source ?? '<config>';
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const where = new Locator(doc, lines, source);

  const syntax = doc.errors[0];
  if (syntax) {
    // An unclosed quote is noticed at the end of the file; the reader needs where it opened.
    const quoted = syntax.code === 'MISSING_CHAR' ? unclosedQuoteStart(doc, syntax.pos[0]) : undefined;
    if (quoted !== undefined) throw where.error([], 'invalid YAML: a quoted string starts here and is never closed', quoted, syntax);
    throw where.error([], `invalid YAML: ${firstLine(syntax.message)}`, syntax.pos[0], syntax);
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    throw where.error([], 'the file is empty; it needs at least roots and targets', undefined);
  }

  const interpolated = interpolateDocument(doc, { env, cwd }, where);
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (error) {
    throw where.error([], `invalid YAML: ${firstLine(error instanceof Error ? error.message : String(error))}`, undefined, error);
  }

  // A value read through `${...}` is never shown in a message, whatever its key.
  return hidingValues(where.hidden, () => {
    const config = validate(data, interpolated, where);
    resolvePaths(config, cwd);
    checkNesting(config, where);
    return config;
  });
}

/**
 * Reads and validates the config file at `file` (relative to `cwd`). Relative paths inside the
 * file are resolved against `cwd` (default: process.cwd()), not against the file's folder, so a
 * Docker image and a shell behave alike. See parseConfig for what is guaranteed and thrown.
 */
export async function loadConfig(file: string, opts: LoadConfigOptions = {}): Promise<Config> {
  const cwd = opts.cwd ?? process.cwd();
  let text: string;
  try {
    text = await fs.readFile(path.resolve(cwd, file), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : code;
    throw new ConfigError('', `${file}: cannot read the config file (${why})`, { cause: error });
  }
  return parseConfig(text, { env: opts.env ?? process.env, cwd, source: file });
}
