import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FileItem } from '../../src/archive/item.js';
import type { NewItem } from '../../src/state/store.js';

/** A fresh temp directory, removed by the returned cleanup. */
export function tempDir(prefix = 'stagecoach-state-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An item of root `inbox` at /srv/inbox, with stat overrides; remote path = relPath unless given. */
export function newItem(relPath: string, over: Partial<FileItem> & { remotePath?: string } = {}): NewItem {
  const { remotePath, ...stat } = over;
  const item: FileItem = {
    root: 'inbox',
    rootPath: '/srv/inbox',
    relPath,
    size: 100,
    mtimeMs: 1_700_000_000_000.25,
    ino: 42,
    ...stat,
  };
  return { item, remotePath: remotePath ?? relPath };
}
