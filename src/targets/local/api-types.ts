/** Options of the local target (`type: local` in the config). */
export interface LocalOptions {
  /** The instance name from the config (`targets[].id`). */
  id: string;
  /** The archive root: a folder on a local or mounted disk. Relative paths resolve against the cwd. */
  path: string;
  /**
   * When a put replaces a file with different content, keep the previous copy beside it as
   * `<stem>.<yyyymmdd-hhmmss>.<ext>` (the old copy's mtime, UTC). Default false: replace it.
   */
  keepVersions?: boolean;
  /**
   * When the daemon runs as root, copies get the source's owner and group too (always its
   * permission bits). Default false: copies belong to the daemon's user.
   */
  preserveOwner?: boolean;
}
