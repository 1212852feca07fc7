/** The CLI's exit codes (documented in README.md). */
export const EXIT = {
  /** Done: the daemon stopped cleanly, or the command succeeded. */
  ok: 0,
  /** The daemon failed at run time (state store unusable, a bug), or a delivery failed in backfill --once. */
  failure: 1,
  /** Bad usage or a config that cannot be used: the message names the key. */
  config: 2,
  /** `run` / `backfill`: another daemon holds this state directory's journal (the line names its pid). */
  locked: 2,
  /** `check`: the config is valid but a root is missing or at least one target cannot be reached or used. */
  check: 3,
  /** `verify` found a copy missing or altered (or could not look one up); `restore` could not bring a file back. */
  verify: 4,
  /** Stopped by a second signal before the orderly shutdown finished. */
  interrupted: 130,
} as const;
