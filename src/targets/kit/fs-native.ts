/**
 * The native module native/fs-native.c: file calls Node has no binding for (syncfs and
 * copy_file_range), built by `npm ci` with the system's C compiler (scripts/build-native.mjs). Where
 * it is not built (no compiler at install, not Linux) each caller does without: see
 * kit/fs-barrier.ts and the local target's large copies (src/targets/local/upload.ts).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** syncfs(fd) on the thread pool; `done` gets 0 or the errno. */
export type SyncfsCall = (fd: number, done: (errno: number) => void) => void;
/**
 * The bytes [position, position + length) of `src` copied to the same place in `dst` in the kernel,
 * as far as the source's size, its holes left holes, on the thread pool; `done` gets 0 or the errno,
 * and where the range ended (less than position + length at the source's end), or how far it got.
 */
export type CopyRangeCall = (src: number, dst: number, position: number, length: number, done: (errno: number, end: number) => void) => void;

export interface NativeFs {
  syncfs: SyncfsCall;
  copyRange: CopyRangeCall;
}

const MODULE = join('native', 'build', 'fs-native.node');

let found: string | null | undefined;

/**
 * The built module's path, found by going up from this file (src/targets/kit under vitest,
 * dist/src/targets/kit or dist/bundle once built); null off Linux or where it was not built.
 */
export function nativeFsModule(): string | null {
  if (found !== undefined) return found;
  found = null;
  if (process.platform !== 'linux') return found;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    const candidate = join(dir, MODULE);
    if (existsSync(candidate)) {
      found = candidate;
      break;
    }
    dir = dirname(dir);
  }
  return found;
}

let loaded: NativeFs | null | undefined;

/** The module's calls, loaded once in this thread; null where there is none (or it does not load). */
export function loadNativeFs(): NativeFs | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  const path = nativeFsModule();
  if (path === null) return loaded;
  try {
    const m = createRequire(import.meta.url)(path) as Partial<NativeFs>;
    if (typeof m.syncfs === 'function' && typeof m.copyRange === 'function') loaded = m as NativeFs;
  } catch {
    // Built for another Node-API or libc: as if it were not built.
  }
  return loaded;
}
