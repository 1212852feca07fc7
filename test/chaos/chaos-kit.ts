/**
 * Shared helpers of the chaos suite: a workspace with the four emulated clouds and the local
 * target, the journal read as another process would, and files dropped whole (written beside
 * the inbox, back-dated, renamed in) so the watcher never sees them half-written.
 */
import { chown, mkdir, readdir, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { tempDir } from '../helpers/fs.js';
import { type Clouds, closeClouds, cloudsAndConfig } from '../e2e/clouds.js';

/** One delivery row as the journal holds it. */
export interface Row {
  target: string;
  rel_path: string;
  /** Where the target was told to put it (after the target's own name mapping). */
  remote_path: string;
  status: string;
  last_error: string | null;
}

/** A temp folder, the emulators, config/demo.yaml pointed at both, and the daemons started in it. */
export interface Workspace {
  dir: string;
  inbox: string;
  archive: string;
  cfg: string;
  clouds: Clouds;
  yaml: string;
  /** Starts `stagecoach run` on the workspace's config (killed at cleanup). */
  start(o?: { permissionsApply?: boolean }): Daemon;
  /** Every delivery row, read-only from the journal; [] while it does not exist yet. */
  rows(): Row[];
  /** Deliveries of one target by status ({} while the journal does not exist yet). */
  counts(target: string): Record<string, number>;
  /** Deliveries done, summed over the given targets. */
  done(targets: string[]): number;
  cleanup(): Promise<void>;
}

/**
 * Sets up a workspace; `extra` is appended to the YAML (top-level keys); the targets of the
 * types in `without` are left out of the config (their emulators still run, unused).
 */
export async function workspace(extra = '', opts: { without?: string[] } = {}): Promise<Workspace> {
  const t = await tempDir('stagecoach-chaos-');
  const made = await cloudsAndConfig(t.dir, extra);
  const { clouds, inbox, archive } = made;
  let yaml = made.yaml;
  for (const type of opts.without ?? []) {
    const before = yaml;
    yaml = yaml.replace(new RegExp(`\\n  - type: ${type}\\n(    .*\\n?)*`), '\n');
    if (yaml === before) throw new Error(`no ${type} target in the demo config`);
  }
  const cfg = path.join(t.dir, 'c.yaml');
  await writeFile(cfg, yaml);
  const daemons: Daemon[] = [];
  /** Runs a read-only query on the journal as another process would; [] while it does not exist. */
  const query = (sql: string, ...params: unknown[]): unknown[] => {
    try {
      const db = new Database(path.join(t.dir, 'state', 'stagecoach.db'), { readonly: true, fileMustExist: true });
      try {
        db.pragma('busy_timeout = 2000');
        return db.prepare(sql).all(...params);
      } finally {
        db.close();
      }
    } catch {
      return [];
    }
  };
  return {
    dir: t.dir,
    inbox,
    archive,
    cfg,
    clouds,
    yaml,
    start(o = {}) {
      const d = startDaemon(['run', '--config', cfg], { cwd: t.dir, ...o });
      daemons.push(d);
      return d;
    },
    rows() {
      return query(
        'SELECT d.target AS target, f.rel_path AS rel_path, d.remote_path AS remote_path, d.status AS status, d.last_error AS last_error FROM deliveries d JOIN files f ON f.id = d.file_id',
      ) as Row[];
    },
    counts(target) {
      const rows = query('SELECT status, count(*) AS n FROM deliveries WHERE target = ? GROUP BY status', target) as Array<{ status: string; n: number }>;
      return Object.fromEntries(rows.map((r) => [r.status, r.n]));
    },
    done(targets) {
      const marks = targets.map(() => '?').join(',');
      const rows = query(`SELECT count(*) AS n FROM deliveries WHERE status = 'done' AND target IN (${marks})`, ...targets) as Array<{ n: number }>;
      return rows[0]?.n ?? 0;
    },
    async cleanup() {
      for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
      await Promise.all(daemons.map((d) => d.exited));
      await closeClouds(clouds);
      await t.cleanup();
    },
  };
}

const OLD = new Date(Date.now() - 3_600_000);

/** Writes `data` to inbox/rel whole: staged beside the inbox, back-dated, renamed in. */
export async function drop(inbox: string, rel: string, data: Buffer | string): Promise<void> {
  const tmp = path.join(inbox, '..', `.staging-${Math.random().toString(36).slice(2)}`);
  await writeFile(tmp, data);
  await utimes(tmp, OLD, OLD);
  const dest = path.join(inbox, rel);
  await mkdir(path.dirname(dest), { recursive: true });
  await rename(tmp, dest);
}

/** Deterministic PRNG (mulberry32) for seeded chaos. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
