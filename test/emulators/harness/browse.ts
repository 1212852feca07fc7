/**
 * The read-only browse page every emulator serves at its root URL (`GET /`): what the emulated
 * cloud holds — folders and files by path, size, the provider's hash, modified time and
 * versions — so a newcomer running `npm run demo` can check a file landed by opening a page.
 *
 * Every name is HTML-escaped (names are whatever clients uploaded); the page has no script and a
 * Content-Security-Policy that allows none. It takes no input and changes nothing.
 */
import type { EmulatorRequest } from './index.js';

export interface BrowseEntry {
  /** Full path from the cloud's root, `/a/b.txt`. */
  path: string;
  kind: 'folder' | 'file';
  size?: number;
  /** The provider's content hash of the current version. */
  hash?: string;
  /** ISO 8601: the file's own modified time where the cloud keeps one, else the upload time. */
  modified?: string;
  /** The versions the cloud keeps, oldest first (one entry each: an id, rev or number and its hash). */
  versions?: string[];
}

export interface BrowseSource {
  /** The page title, e.g. "Box (emulated)". */
  title: string;
  /** What the hash column holds, e.g. "SHA-1". */
  hashName: string;
  entries(): BrowseEntry[] | Promise<BrowseEntry[]>;
}

/** `&`, `<`, `>`, `"`, `'` as entities: safe in text and in quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function depth(path: string): number {
  return path.split('/').length - 2;
}

/** The page as HTML. Entries are shown in path order, each under its folder. */
export function renderBrowse(source: Pick<BrowseSource, 'title' | 'hashName'>, entries: BrowseEntry[]): string {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const files = sorted.filter((e) => e.kind === 'file');
  const rows = sorted.map((e) => {
    const name = e.path.slice(e.path.lastIndexOf('/') + 1);
    const indent = `padding-left:${depth(e.path) * 1.2}em`;
    const label = e.kind === 'folder' ? `📁 ${escapeHtml(name)}/` : escapeHtml(name);
    const versions = e.versions && e.versions.length > 0 ? `${e.versions.length}: ${e.versions.map(escapeHtml).join(', ')}` : '';
    return (
      `<tr class="${e.kind}" data-path="${escapeHtml(e.path)}">` +
      `<td style="${indent}" title="${escapeHtml(e.path)}">${label}</td>` +
      `<td class="num">${e.size === undefined ? '' : String(e.size)}</td>` +
      `<td class="hash">${escapeHtml(e.hash ?? '')}</td>` +
      `<td>${escapeHtml(e.modified ?? '')}</td>` +
      `<td class="hash">${versions}</td></tr>`
    );
  });
  const title = escapeHtml(source.title);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right}.hash{font-family:monospace;font-size:12px;word-break:break-all}
tr.folder td:first-child{font-weight:600}
</style></head><body>
<h1>${title}</h1>
<p>${files.length} file${files.length === 1 ? '' : 's'}, ${sorted.length - files.length} folder${sorted.length - files.length === 1 ? '' : 's'}. Read-only; reload to refresh.</p>
<table><thead><tr><th>Name</th><th>Size (bytes)</th><th>${escapeHtml(source.hashName)}</th><th>Modified</th><th>Versions</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
</body></html>
`;
}

/** Answers `GET /` (and HEAD) with the page. */
export async function serveBrowse(r: EmulatorRequest, source: BrowseSource): Promise<void> {
  r.req.resume();
  const html = Buffer.from(renderBrowse(source, await source.entries()));
  r.res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': String(html.length),
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  });
  r.res.end(r.method === 'HEAD' ? undefined : html);
}
