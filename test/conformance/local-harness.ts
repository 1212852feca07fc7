/** A conformance harness for the local target on a fresh temp folder. */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { createLocalTarget } from '../../src/targets/local/index.js';
import type { LocalOptions } from '../../src/targets/local/api-types.js';
import { listFiles, tempDir } from '../helpers/fs.js';
import type { SuiteHarness } from './target-suite.js';

export interface LocalHarness extends SuiteHarness {
  /** The archive root (inside `dir`, not yet created). */
  root: string;
  /** The temp folder holding the root; removed by cleanup. */
  dir: string;
}

async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** A local target archiving to `<tmp>/archive`, with the suite's view of that folder. */
export async function localHarness(options: Partial<Omit<LocalOptions, 'path'>> = {}): Promise<LocalHarness> {
  const { dir, cleanup } = await tempDir('stagecoach-local-');
  const root = path.join(dir, 'archive');
  const target = createLocalTarget({ id: 'local', path: root, ...options }, { log: pino({ level: 'silent' }), stateDir: dir });
  return {
    target,
    root,
    dir,
    readBack: (p) => orNull(readFile(path.join(root, p))),
    listAll: () => listFiles(root),
    readMtimeMs: async (p) => (await orNull(stat(path.join(root, p))))?.mtimeMs ?? null,
    cleanup: async () => {
      await target.close();
      await cleanup();
    },
  };
}
