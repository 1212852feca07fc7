/**
 * A target's `prepare` (see Target.prepare): the folders of files leased ahead of their puts
 * found or made now, through `ensure` (the target's own ensureFolder, which shares its folder
 * cache and its one lookup-or-create per path with the puts). When a run of files moves into a new
 * folder, its first puts then find the folder made instead of all waiting for one slot's request.
 * Each folder is asked for once in a while (the last 256 kept); a failure is forgotten, the put
 * meets it.
 */
export function foldersAhead(ensure: (folder: string) => Promise<unknown>): (remotePaths: readonly string[]) => void {
  const asked = new Set<string>();
  return (remotePaths) => {
    for (const p of remotePaths) {
      const folder = p.slice(0, Math.max(0, p.lastIndexOf('/')));
      if (asked.has(folder)) continue;
      if (asked.size >= 256) asked.clear();
      asked.add(folder);
      ensure(folder).catch(() => asked.delete(folder));
    }
  };
}
