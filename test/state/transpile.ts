import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transformWithOxc } from 'vite';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Strips the types from `entry` (a .ts file of this repo) and every file it reaches through
 * relative imports, into a temp tree with the repo's layout, so a plain `node` child process can
 * run the real code. Packages resolve through a node_modules symlink to the repo's.
 * Returns the path of the entry's .js twin. The caller removes `root` when done.
 */
export async function transpileForNode(entry: string): Promise<{ root: string; main: string }> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'stagecoach-child-'));
  symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  writeFileSync(path.join(root, 'package.json'), '{"type":"module"}\n');
  const todo = [path.resolve(entry)];
  const done = new Set<string>();
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const { code } = await transformWithOxc(readFileSync(file, 'utf8'), file, { lang: 'ts' });
    const out = path.join(root, path.relative(REPO, file)).replace(/\.ts$/, '.js');
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, code);
    for (const m of code.matchAll(/(?:from|import)\s*["'](\.{1,2}\/[^"']+)\.js["']/g)) {
      todo.push(path.resolve(path.dirname(file), `${m[1]}.ts`));
    }
  }
  return { root, main: path.join(root, path.relative(REPO, entry)).replace(/\.ts$/, '.js') };
}
