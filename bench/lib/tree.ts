/**
 * Test trees for the benchmarks: N small files, 100 per folder, folders nested two deep
 * (d<i>/e<j>), mtimes an hour old so every file is stable at once; and a bare recursive stat walk,
 * the floor every discovery is compared with.
 */
import { mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const PER_FOLDER = 100;

/** Writes `files` files of `size` bytes (unique content each) under `root`. */
export function makeTree(root: string, files: number, size = 4096): void {
  const old = new Date(Date.now() - 3_600_000);
  const body = Buffer.alloc(size, 'x');
  for (let i = 0; i < files; i++) {
    const folder = Math.floor(i / PER_FOLDER);
    const dir = path.join(root, `d${Math.floor(folder / 10)}`, `e${folder % 10}`);
    if (i % PER_FOLDER === 0) mkdirSync(dir, { recursive: true });
    if (size >= 12) body.write(`${i}`.padStart(12, '0'), 0);
    const f = path.join(dir, `f${i}.dat`);
    writeFileSync(f, body);
    utimesSync(f, old, old);
  }
}

/** Synchronous recursive walk with a stat of every entry; returns the number of files. */
export function statWalk(root: string): number {
  let n = 0;
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const st = statSync(p);
      if (st.isDirectory()) stack.push(p);
      else if (st.isFile()) n++;
    }
  }
  return n;
}
