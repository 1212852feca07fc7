import picomatch from 'picomatch';
import { TEMP_NAME_GLOBS } from '../config/schema.js';

/** The filters of one root, resolved (sizes in bytes). */
export interface FilterOptions {
  include: string[];
  exclude: string[];
  minSize: number;
  maxSize: number | null;
  ignoreHidden: boolean;
  ignoreTemp: boolean;
}


export type SkipReason = 'hidden' | 'temp' | 'excluded' | 'not-included' | 'too-small' | 'too-large';

export interface PathFilter {
  /** Why a path (relative to the root, POSIX) is skipped by its name, or null to keep it. */
  byPath(relPath: string): SkipReason | null;
  /** A folder whose whole subtree is skipped (so the watcher spends no watches on it). */
  skipsDir(relDir: string): boolean;
  /** Why a file is skipped by its path or size, or null to keep it. */
  check(relPath: string, size: number): SkipReason | null;
  /**
   * `byPath` for a walk that kept every folder above `relPath` by `skipsDir`/`skipsChildDir`:
   * hidden and temp names are looked for in `name` (the last one) alone, as no folder above has
   * one; the globs still match the whole path.
   */
  byChild(relPath: string, name: string): SkipReason | null;
  /** `skipsDir` for a walk that kept every folder above (see byChild). */
  skipsChildDir(relPath: string, name: string): boolean;
}

const isHiddenName = (s: string) => s.startsWith('.') && s !== '.' && s !== '..';
const isHidden = (relPath: string) => relPath.split('/').some(isHiddenName);

/**
 * What a walk needs to skip folders, and files by their name alone, as `skipsChildDir` and the
 * first two checks of `byChild` do, in a form another thread can take (prewalk.ts): the temp
 * names as one RegExp's source, the excluded folders as picomatch globs (matched with
 * PICOMATCH_OPTIONS). createPathFilter builds its own checks from the same rules.
 */
export interface NameRules {
  ignoreHidden: boolean;
  /** Source of the RegExp a temp name matches, or null when temp names are kept. */
  tempName: string | null;
  /** Globs of the folders whose whole subtree is excluded (each exclude glob "<dir glob>/**"). */
  excludedDirs: string[];
}

export const PICOMATCH_OPTIONS = { dot: true } as const;

export function nameRulesOf(opts: FilterOptions): NameRules {
  return {
    ignoreHidden: opts.ignoreHidden,
    // Temp globs are on names: a temp folder (e.g. Synology's @eaDir) hides all below it.
    // One RegExp of all of them: the watcher asks this of every path several times, and testing
    // the globs one by one was a quarter of a restart's time on a large tree.
    tempName: opts.ignoreTemp ? TEMP_NAME_GLOBS.map((g) => `(?:${picomatch.makeRe(g, PICOMATCH_OPTIONS).source})`).join('|') : null,
    // Only an exclude glob of the form "<dir glob>/**" excludes a folder's whole subtree.
    excludedDirs: opts.exclude.filter((g) => g.endsWith('/**')).map((g) => g.slice(0, -3)),
  };
}

/** Builds the filter of a root. Pure; globs are picomatch globs on the path inside the root. */
export function createPathFilter(opts: FilterOptions): PathFilter {
  const pm = (globs: readonly string[]) => (globs.length ? picomatch(globs as string[], PICOMATCH_OPTIONS) : null);
  const rules = nameRulesOf(opts);
  const tempName = rules.tempName === null ? null : new RegExp(rules.tempName);
  const temp = tempName ? (p: string) => p.split('/').some((seg) => tempName.test(seg)) : null;
  const exclude = pm(opts.exclude);
  const include = pm(opts.include);
  const excludedDir = pm(rules.excludedDirs);
  const byPath = (relPath: string): SkipReason | null => {
    if (opts.ignoreHidden && isHidden(relPath)) return 'hidden';
    if (temp?.(relPath)) return 'temp';
    if (exclude?.(relPath)) return 'excluded';
    if (include && !include(relPath)) return 'not-included';
    return null;
  };
  return {
    byPath,
    byChild(relPath, name) {
      if (opts.ignoreHidden && isHiddenName(name)) return 'hidden';
      if (tempName?.test(name)) return 'temp';
      if (exclude?.(relPath)) return 'excluded';
      if (include && !include(relPath)) return 'not-included';
      return null;
    },
    skipsChildDir(relPath, name) {
      if (opts.ignoreHidden && isHiddenName(name)) return true;
      if (tempName?.test(name)) return true;
      return !!excludedDir?.(relPath);
    },
    skipsDir(relDir) {
      if (relDir === '' || relDir === '.') return false;
      if (opts.ignoreHidden && isHidden(relDir)) return true;
      if (temp?.(relDir)) return true;
      return !!excludedDir?.(relDir);
    },
    check(relPath, size) {
      const r = byPath(relPath);
      if (r) return r;
      if (size < opts.minSize) return 'too-small';
      if (opts.maxSize !== null && size > opts.maxSize) return 'too-large';
      return null;
    },
  };
}
