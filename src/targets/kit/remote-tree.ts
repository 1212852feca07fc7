import type { RemoteEntry } from '../target.js';

/** One child of a remote folder, as a provider's listing gives it: a folder to walk into, or a file. */
export type RemoteChild = { name: string; folderId: string } | { name: string; size: number; hash: string | null };

/**
 * Every file below the remote folder `top`, sub-folders walked depth first, for `Target.list`:
 * `children(id)` gives one folder's children (paged as its provider pages; what is neither file
 * nor folder left out), and each file's path is its names from `top` joined with '/'.
 */
export async function* walkRemoteTree(top: string, children: (folderId: string) => AsyncIterable<RemoteChild>): AsyncGenerator<RemoteEntry> {
  const stack: Array<{ id: string; rel: string }> = [{ id: top, rel: '' }];
  while (stack.length > 0) {
    const { id, rel } = stack.pop()!;
    for await (const c of children(id)) {
      const path = rel === '' ? c.name : `${rel}/${c.name}`;
      if ('folderId' in c) stack.push({ id: c.folderId, rel: path });
      else yield { path, size: c.size, hash: c.hash };
    }
  }
}
