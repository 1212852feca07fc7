/**
 * The `q` parameter of `files.list`: a parser and an evaluator for Drive's search language
 * (developers.google.com/drive/api/guides/ref-search-terms). `and`, `or`, `not`, parentheses;
 * `'X' in parents`; `name = / != / contains` (the `=` of Drive is case-insensitive, and `contains`
 * on a name matches word prefixes only: 'Hello' finds "HelloWorld", 'World' does not);
 * `mimeType`, `trashed`, `starred`, dates, `properties has {key=… and value=…}`. Strings are
 * single-quoted with `\'` and `\\` escapes. Anything else is a 400 `invalid` on `q`.
 */

export class QueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueryError';
  }
}

type Op = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'contains';

export type QueryNode =
  | { type: 'and' | 'or'; left: QueryNode; right: QueryNode }
  | { type: 'not'; expr: QueryNode }
  | { type: 'cmp'; field: string; op: Op; value: string | boolean }
  | { type: 'in'; value: string; field: string }
  | { type: 'has'; field: 'properties' | 'appProperties'; key: string; value: string };

type Token =
  | { t: 'str'; v: string }
  | { t: 'word'; v: string }
  | { t: 'op'; v: Op }
  | { t: 'punct'; v: '(' | ')' | '{' | '}' };

function tokenize(q: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < q.length) {
    const c = q[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '(' || c === ')' || c === '{' || c === '}') {
      out.push({ t: 'punct', v: c });
      i++;
      continue;
    }
    if (c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= q.length) throw new QueryError('unterminated string');
        const d = q[i]!;
        if (d === '\\') {
          const e = q[i + 1];
          // Only these two escapes exist in Drive's grammar; anything else is a malformed query.
          if (e !== "'" && e !== '\\') throw new QueryError(`bad escape \\${e ?? ''}`);
          v += e;
          i += 2;
          continue;
        }
        if (d === "'") {
          i++;
          break;
        }
        v += d;
        i++;
      }
      out.push({ t: 'str', v });
      continue;
    }
    const two = q.slice(i, i + 2);
    if (two === '!=' || two === '<=' || two === '>=') {
      out.push({ t: 'op', v: two });
      i += 2;
      continue;
    }
    if (c === '=' || c === '<' || c === '>') {
      out.push({ t: 'op', v: c });
      i++;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(q.slice(i));
    if (m) {
      const w = m[0];
      if (w.toLowerCase() === 'contains') out.push({ t: 'op', v: 'contains' });
      else out.push({ t: 'word', v: w });
      i += w.length;
      continue;
    }
    throw new QueryError(`unexpected character ${c}`);
  }
  return out;
}

const STRING_TERMS: Record<string, Op[]> = {
  name: ['contains', '=', '!='],
  fullText: ['contains'],
  mimeType: ['contains', '=', '!='],
  visibility: ['=', '!='],
  'shortcutDetails.targetId': ['=', '!='],
};
const DATE_TERMS = new Set(['modifiedTime', 'viewedByMeTime', 'createdTime', 'sharedWithMeTime']);
const BOOL_TERMS = new Set(['trashed', 'starred', 'sharedWithMe']);
const COLLECTION_TERMS = new Set(['parents', 'owners', 'writers', 'readers']);

/** Parses a query; throws QueryError when Drive would answer 400 Invalid Value. */
export function parseQuery(q: string): QueryNode | null {
  const toks = tokenize(q);
  if (toks.length === 0) return null;
  let i = 0;
  const peek = () => toks[i];
  const isWord = (t: Token | undefined, w: string) => t?.t === 'word' && t.v.toLowerCase() === w;
  const expect = (pred: (t: Token | undefined) => boolean, what: string): Token => {
    const t = toks[i];
    if (!pred(t)) throw new QueryError(`expected ${what}`);
    i++;
    return t!;
  };

  const parseOr = (): QueryNode => {
    let left = parseAnd();
    while (isWord(peek(), 'or')) {
      i++;
      left = { type: 'or', left, right: parseAnd() };
    }
    return left;
  };
  const parseAnd = (): QueryNode => {
    let left = parseUnary();
    while (isWord(peek(), 'and')) {
      i++;
      left = { type: 'and', left, right: parseUnary() };
    }
    return left;
  };
  const parseUnary = (): QueryNode => {
    const t = peek();
    if (isWord(t, 'not')) {
      i++;
      return { type: 'not', expr: parseUnary() };
    }
    if (t?.t === 'punct' && t.v === '(') {
      i++;
      const e = parseOr();
      expect((x) => x?.t === 'punct' && x.v === ')', ')');
      return e;
    }
    return parseTerm();
  };
  const parseTerm = (): QueryNode => {
    const t = peek();
    if (t?.t === 'str') {
      // 'value' in collection
      i++;
      expect((x) => isWord(x, 'in'), 'in');
      const f = expect((x) => x?.t === 'word', 'collection') as { t: 'word'; v: string };
      if (!COLLECTION_TERMS.has(f.v)) throw new QueryError(`${f.v} is not a collection`);
      return { type: 'in', value: t.v, field: f.v };
    }
    if (t?.t !== 'word') throw new QueryError('expected a query term');
    const field = t.v;
    i++;
    if (field === 'properties' || field === 'appProperties') {
      expect((x) => isWord(x, 'has'), 'has');
      expect((x) => x?.t === 'punct' && x.v === '{', '{');
      expect((x) => isWord(x, 'key'), 'key');
      expect((x) => x?.t === 'op' && x.v === '=', '=');
      const key = (expect((x) => x?.t === 'str', 'string') as { v: string }).v;
      expect((x) => isWord(x, 'and'), 'and');
      expect((x) => isWord(x, 'value'), 'value');
      expect((x) => x?.t === 'op' && x.v === '=', '=');
      const value = (expect((x) => x?.t === 'str', 'string') as { v: string }).v;
      expect((x) => x?.t === 'punct' && x.v === '}', '}');
      return { type: 'has', field, key, value };
    }
    const opTok = expect((x) => x?.t === 'op', 'operator') as { t: 'op'; v: Op };
    const op = opTok.v;
    const valTok = peek();
    i++;
    if (STRING_TERMS[field]) {
      if (!STRING_TERMS[field].includes(op)) throw new QueryError(`${op} not valid for ${field}`);
      if (valTok?.t !== 'str') throw new QueryError(`${field} needs a quoted string`);
      return { type: 'cmp', field, op, value: valTok.v };
    }
    if (DATE_TERMS.has(field)) {
      if (op === 'contains') throw new QueryError(`contains not valid for ${field}`);
      if (valTok?.t !== 'str' || Number.isNaN(parseDate(valTok.v))) throw new QueryError(`${field} needs an RFC 3339 date`);
      return { type: 'cmp', field, op, value: valTok.v };
    }
    if (BOOL_TERMS.has(field)) {
      if (op !== '=' && op !== '!=') throw new QueryError(`${op} not valid for ${field}`);
      if (valTok?.t !== 'word' || !/^(true|false)$/i.test(valTok.v)) throw new QueryError(`${field} needs true or false`);
      return { type: 'cmp', field, op, value: valTok.v.toLowerCase() === 'true' };
    }
    throw new QueryError(`unknown query term ${field}`);
  };

  const node = parseOr();
  if (i !== toks.length) throw new QueryError('trailing input');
  return node;
}

function parseDate(s: string): number {
  // RFC 3339 without a zone is read as UTC, as the reference says.
  const withZone = /([zZ]|[+-]\d\d:\d\d)$/.test(s) ? s : `${s}Z`;
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?([zZ]|[+-]\d\d:\d\d)$/.test(withZone)) return Number.NaN;
  return Date.parse(withZone);
}

/** What the evaluator reads of a file. */
export interface QueryFile {
  name: string;
  mimeType: string;
  parents: readonly string[];
  trashed: boolean;
  starred: boolean;
  createdTime: number;
  modifiedTime: number;
  description?: string;
  properties: Readonly<Record<string, string>>;
  appProperties: Readonly<Record<string, string>>;
}

export interface QueryContext {
  /** The real id of My Drive, for `'root' in parents`. */
  rootId: string;
}

const words = (s: string): string[] => s.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean);

function nameContains(name: string, needle: string): boolean {
  const have = words(name);
  return words(needle).every((w) => have.some((h) => h.startsWith(w)));
}

function fullTextContains(f: QueryFile, needle: string): boolean {
  const text = words(`${f.name} ${f.description ?? ''}`);
  const phrase = /^"(.*)"$/.exec(needle);
  if (phrase) {
    const want = words(phrase[1]!);
    if (want.length === 0) return true;
    for (let s = 0; s + want.length <= text.length; s++) if (want.every((w, k) => text[s + k] === w)) return true;
    return false;
  }
  return words(needle).every((w) => text.includes(w));
}

function compare(a: number, op: Op, b: number): boolean {
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    default:
      return false;
  }
}

/** Whether a file matches a parsed query (null matches everything). */
export function evaluate(node: QueryNode | null, f: QueryFile, ctx: QueryContext): boolean {
  if (node === null) return true;
  switch (node.type) {
    case 'and':
      return evaluate(node.left, f, ctx) && evaluate(node.right, f, ctx);
    case 'or':
      return evaluate(node.left, f, ctx) || evaluate(node.right, f, ctx);
    case 'not':
      return !evaluate(node.expr, f, ctx);
    case 'in': {
      if (node.field === 'parents') {
        const id = node.value === 'root' ? ctx.rootId : node.value;
        return f.parents.includes(id);
      }
      // One user owns everything in the emulator.
      return node.value === 'me';
    }
    case 'has': {
      const bag = node.field === 'properties' ? f.properties : f.appProperties;
      return bag[node.key] === node.value;
    }
    case 'cmp': {
      const { field, op, value } = node;
      if (typeof value === 'boolean') {
        const actual = field === 'trashed' ? f.trashed : field === 'starred' ? f.starred : false;
        return op === '=' ? actual === value : actual !== value;
      }
      if (DATE_TERMS.has(field)) {
        const actual = field === 'createdTime' ? f.createdTime : field === 'modifiedTime' ? f.modifiedTime : 0;
        return compare(actual, op, parseDate(value));
      }
      if (field === 'name') {
        if (op === 'contains') return nameContains(f.name, value);
        const eq = f.name.toLowerCase() === value.toLowerCase();
        return op === '=' ? eq : !eq;
      }
      if (field === 'mimeType') {
        if (op === 'contains') return f.mimeType.toLowerCase().includes(value.toLowerCase());
        return op === '=' ? f.mimeType === value : f.mimeType !== value;
      }
      if (field === 'fullText') return fullTextContains(f, value);
      if (field === 'visibility') return op === '=' ? value === 'limited' : value !== 'limited';
      return op === '!=';
    }
  }
}
