import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { StagecoachError } from '../errors.js';

export interface TemplateInput {
  root: string;
  relPath: string;
  mtimeMs: number;
  host?: string;
}

/** The tokens of the remotePath template (the config's schema lists the same). */
export const REMOTE_PATH_TOKENS = ['root', 'path', 'dir', 'name', 'ext', 'yyyy', 'mm', 'dd', 'host'] as const;
const TOKENS = new Set<string>(REMOTE_PATH_TOKENS);

/** Checks a template once, at start: unknown tokens and unsafe literal parts are errors. */
export function validateTemplate(template: string): void {
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    if (!TOKENS.has(m[1]!)) throw new StagecoachError('template.token', `unknown token {${m[1]}} in remotePath template "${template}"`);
  }
  if (!template.includes('{path}') && !template.includes('{name}')) {
    throw new StagecoachError('template.name', `remotePath template "${template}" must contain {path} or {name}, or every file would land on one name`);
  }
  renderRemotePath(template, { root: 'r', relPath: 'd/f.txt', mtimeMs: 0, host: 'h' });
}

const pad = (n: number) => String(n).padStart(2, '0');

/**
 * Renders the remote path of a file: tokens {root} {path} {dir} {name} {ext} {yyyy} {mm} {dd}
 * (of the file's mtime, local time) and {host}. The result is relative to the target's
 * remote root, POSIX separators, no empty, `.` or `..` segments, no NUL: a remote path can never
 * leave the target's root. Throws StagecoachError('remote-path.unsafe') otherwise.
 */
export function renderRemotePath(template: string, input: TemplateInput): string {
  const d = new Date(input.mtimeMs);
  const base = path.posix.basename(input.relPath);
  const ext = path.posix.extname(base);
  const dir = path.posix.dirname(input.relPath);
  const values: Record<string, string> = {
    root: input.root,
    path: input.relPath,
    dir: dir === '.' ? '' : dir,
    name: base,
    ext: ext.replace(/^\./, ''),
    yyyy: String(d.getFullYear()),
    mm: pad(d.getMonth() + 1),
    dd: pad(d.getDate()),
    host: input.host ?? os.hostname(),
  };
  const rendered = template.replace(/\{([^}]*)\}/g, (_, k: string) => values[k] ?? '');
  const segments = rendered.split('/').filter((s) => s !== '');
  for (const s of segments) {
    if (s === '.' || s === '..' || s.includes('\u0000') || s.includes('\\')) {
      throw new StagecoachError('remote-path.unsafe', `remote path "${rendered}" has an unsafe segment "${s}"`);
    }
  }
  if (segments.length === 0) throw new StagecoachError('remote-path.unsafe', `remote path of "${input.relPath}" is empty`);
  return segments.join('/');
}

/**
 * The name a file gets on a target when another file already owns `remotePath` there: a short
 * suffix `~<6 hex>` before the extension of the last segment (`a/Report~3f2a9c.pdf`; a dotfile or
 * a name without extension gets it at the end), the hex being the start of sha256 of `owner`
 * (`root/relPath`), so the same file always gets the same name. `attempt` > 0 (the name with the
 * suffix is itself taken) appends `-<attempt>`. Pure.
 */
export function collisionName(remotePath: string, owner: string, attempt = 0): string {
  const tag = `~${createHash('sha256').update(owner).digest('hex').slice(0, 6)}${attempt > 0 ? `-${attempt}` : ''}`;
  const slash = remotePath.lastIndexOf('/');
  const dir = remotePath.slice(0, slash + 1);
  const base = remotePath.slice(slash + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? `${dir}${base.slice(0, dot)}${tag}${base.slice(dot)}` : `${dir}${base}${tag}`;
}
