import { describe, expect, it } from 'vitest';
import { QueryError, evaluate, parseQuery, type QueryFile } from './query.js';

const file = (over: Partial<QueryFile> = {}): QueryFile => ({
  name: 'HelloWorld report.txt',
  mimeType: 'text/plain',
  parents: ['P1'],
  trashed: false,
  starred: false,
  createdTime: Date.parse('2024-01-01T00:00:00Z'),
  modifiedTime: Date.parse('2024-06-01T12:00:00Z'),
  properties: { dept: 'sales' },
  appProperties: {},
  ...over,
});
const ctx = { rootId: 'ROOT' };
const match = (q: string, f: QueryFile = file()) => evaluate(parseQuery(q), f, ctx);

describe('Drive q parser and evaluator', () => {
  it('reads quoted strings with \\\' and \\\\ escapes', () => {
    const f = file({ name: "Valentine's \\ Day" });
    expect(match("name = 'Valentine\\'s \\\\ Day'", f)).toBe(true);
    expect(match("name = 'Valentine\\'s Day'", f)).toBe(false);
  });

  it('compares names case-insensitively with =, as Drive does', () => {
    expect(match("name = 'helloworld REPORT.txt'")).toBe(true);
    expect(match("name != 'helloworld report.txt'")).toBe(false);
    expect(match("name = 'HelloWorld report'")).toBe(false);
  });

  it('matches name contains on word prefixes only', () => {
    expect(match("name contains 'Hello'")).toBe(true);
    expect(match("name contains 'rep'")).toBe(true);
    expect(match("name contains 'World'")).toBe(false);
    expect(match("name contains 'hello rep'")).toBe(true);
  });

  it('handles in parents, with the root alias', () => {
    expect(match("'P1' in parents")).toBe(true);
    expect(match("'P2' in parents")).toBe(false);
    expect(match("'root' in parents", file({ parents: ['ROOT'] }))).toBe(true);
  });

  it('gives not, and, or their usual precedence and honours parentheses', () => {
    expect(match("name = 'x' or mimeType = 'text/plain' and trashed = false")).toBe(true);
    expect(match("mimeType = 'text/plain' or name = 'x' and trashed = true")).toBe(true);
    expect(match("trashed = true and name = 'x' or starred = false")).toBe(true);
    expect(match("(name = 'x' or mimeType = 'text/plain') and trashed = true")).toBe(false);
    expect(match("not trashed = true and not 'P2' in parents")).toBe(true);
    expect(match("not (mimeType != 'text/plain' or starred = true)")).toBe(true);
    expect(match("mimeType = 'application/vnd.google-apps.folder' or name contains 'zzz'")).toBe(false);
  });

  it('evaluates trashed, mimeType, dates and properties', () => {
    expect(match('trashed = true', file({ trashed: true }))).toBe(true);
    expect(match('trashed != true', file({ trashed: true }))).toBe(false);
    expect(match("mimeType contains 'text/'")).toBe(true);
    expect(match("modifiedTime > '2024-05-01T00:00:00'")).toBe(true);
    expect(match("modifiedTime < '2024-05-01T00:00:00Z'")).toBe(false);
    expect(match("properties has { key='dept' and value='sales' }")).toBe(true);
    expect(match("properties has { key='dept' and value='ops' }")).toBe(false);
  });

  it.each([
    ["name = foo"],
    ["name = 'unterminated"],
    ["name ~ 'x'"],
    ["trashed = 'false'"],
    ["name < 'x'"],
    ["'x' in name"],
    ["size > 3"],
    ["name = 'x' and"],
    ["(name = 'x'"],
    ["name = 'a\\nb'"],
    ["modifiedTime > 'yesterday'"],
  ])('rejects %s', (q) => {
    expect(() => parseQuery(q)).toThrow(QueryError);
  });

  it('treats an empty query as match-all', () => {
    expect(parseQuery('  ')).toBeNull();
    expect(evaluate(null, file(), ctx)).toBe(true);
  });
});
