/** Path helpers for the config: resolution against a working directory and nesting checks. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Absolute path for a config path: `~` and `~/x` are the home folder, relative is from `cwd`. */
export function expandPath(p: string, cwd: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return path.resolve(cwd, p);
}

/**
 * The path with symlinks resolved as far as it exists (the rest appended as written), so two
 * spellings of one folder compare equal even before the folder is created.
 */
export function realPathSoFar(abs: string): string {
  const rest: string[] = [];
  let current = abs;
  for (;;) {
    try {
      return path.join(fs.realpathSync.native(current), ...rest.reverse());
    } catch {
      const parent = path.dirname(current);
      if (parent === current) return abs;
      rest.push(path.basename(current));
      current = parent;
    }
  }
}

/** True when `child` is `parent` or inside it (both absolute, already normalised). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
