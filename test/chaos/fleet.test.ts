/**
 * Scale-out (issue 20): three daemons on one PostgreSQL journal, all watching one shared folder,
 * archiving to the four emulated clouds and a local folder. One daemon is SIGKILLed while it holds
 * uploads in flight; its leases expire (leaseMs 2 s) and the other two finish them. At the end
 * every file is on every target once, byte-identical by hash, and every delivery the dead node
 * held is done by another node.
 *
 * Box signs in with OAuth, one first refresh token for the three: its refresh tokens rotate on
 * every use, so the daemons share them through the journal (a refresh refused would park Box).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { type Daemon, startDaemon } from '../helpers/daemon.js';
import { bytes, sha256File, tempDir, waitFor, waitForWork } from '../helpers/fs.js';
import { applicationName } from '../../src/state/pg-store.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { closeClouds, cloudsAndConfig, verifyClouds } from '../e2e/clouds.js';
import { drop, rng } from './chaos-kit.js';

const FILES = 60;
const TARGETS = 5;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Mostly small, some above Drive's 5 MB and OneDrive's 4 MiB resumable thresholds, one above Box's 20 MB. */
function sizeOf(i: number, next: () => number): number {
  if (i === 7) return 21_000_000;
  if (i % 6 === 1) return 6_000_000 + Math.floor(next() * 3_000_000);
  if (i % 10 === 5) return 0;
  return 1 + Math.floor(next() * 100_000);
}

describe('three daemons on one PostgreSQL journal', () => {
  it(`${FILES} files, one daemon SIGKILLed with uploads in flight: every file on every target once, by hash, its uploads finished by the others`, async () => {
    const db = await createTestDatabase(inject('pgUrl'));
    cleanups.push(() => db.drop());
    const t = await tempDir('stagecoach-fleet-');
    const made = await cloudsAndConfig(t.dir);
    const daemons: Daemon[] = [];
    cleanups.push(async () => {
      for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL');
      await Promise.all(daemons.map((d) => d.exited));
      await closeClouds(made.clouds);
      await t.cleanup();
    });
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    cleanups.push(() => pool.end());
    // 0 until the first daemon has made the tables.
    const count = async (sql: string, ...params: unknown[]) =>
      Number((await pool.query<{ n: string }>(sql, params).catch(() => ({ rows: [] as Array<{ n: string }> }))).rows[0]?.n ?? 0);

    const next = rng(20);
    const files: string[] = [];
    for (let i = 0; i < FILES; i++) {
      const rel = `s${i % 4}/f${i}.bin`;
      await drop(made.inbox, rel, bytes(sizeOf(i, next), 2000 + i));
      files.push(rel);
    }

    const yaml = made.yaml;
    expect(yaml).toContain('refreshToken: demo-box-refresh');
    const start = async (node: string) => {
      const cfg = path.join(t.dir, `${node}.yaml`);
      await writeFile(
        cfg,
        // cloudsAndConfig gave the status page a free port; these daemons run without one.
        yaml.replace('stateDir: ./state', `stateDir: ./state-${node}`).replace(/^http:.*\n/m, '') +
          `node: ${node}\njournal: { url: "\${JOURNAL_URL}", leaseMs: 2s }\nhttp: { listen: null }\nretry: { retries: 20, minDelayMs: 20, maxDelayMs: 500 }\n`,
      );
      const d = startDaemon(['run', '--config', cfg], { cwd: t.dir, env: { JOURNAL_URL: db.url } });
      daemons.push(d);
      return d;
    };
    const [victim] = [await start('n1')];
    const others = [await start('n2'), await start('n3')];

    // The moment: n1 holds uploads in flight, at least one of them a large one.
    await waitFor(
      'n1 holding a large upload',
      async () =>
        victim!.child.exitCode !== null ||
        (await count(
          `SELECT count(*) AS n FROM deliveries d JOIN files f ON f.id = d.file_id
           WHERE d.status = 'in_flight' AND d.leased_by = 'n1' AND f.size > 5000000`,
        )) > 0,
      90_000,
      20,
    );
    expect(victim!.child.exitCode, victim!.output()).toBe(null);
    const n1Connections = `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = '${applicationName('n1')}'`;
    expect(await count(n1Connections)).toBeGreaterThan(0);
    victim!.child.kill('SIGKILL');
    await victim!.exited;
    // A statement n1 sent just before it died still runs to its end on the server (a completion
    // can commit after the kill): what n1 held is read once its connections are gone.
    await waitFor(
      "n1's connections closed by the server",
      async () => (await count(n1Connections)) === 0,
      10_000,
      20,
    );
    const orphaned = (
      await pool.query<{ id: string }>(`SELECT id FROM deliveries WHERE status = 'in_flight' AND leased_by = 'n1'`)
    ).rows.map((r) => r.id);
    expect(orphaned.length).toBeGreaterThan(0);

    // What is not done yet, each with where it stands (named in the failure if it never is).
    const notDone = async (): Promise<string[]> => {
      if (others.some((d) => d.child.exitCode !== null)) return [];
      const { rows } = await pool.query<Record<string, unknown>>(
        `SELECT f.rel_path, d.target, d.status, d.leased_by, d.attempts, d.bytes_sent, d.last_error, d.resume_handle IS NOT NULL AS resumable
         FROM deliveries d JOIN files f ON f.id = d.file_id WHERE d.status <> 'done' ORDER BY f.rel_path, d.target`,
      );
      const missing = FILES * TARGETS - (await count('SELECT count(*) AS n FROM deliveries'));
      return [...rows.map((r) => JSON.stringify(r)), ...(missing > 0 ? [`${missing} deliveries not recorded yet`] : [])];
    };
    await waitForWork('every delivery done', 120_000 + FILES * 1000, notDone, 200).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}\n${others.map((d, i) => `--- n${i + 2}, last output:\n${d.output().slice(-6000)}`).join('\n')}`);
    });
    for (const d of others) expect(d.child.exitCode, d.output()).toBe(null);
    expect(await count('SELECT count(*) AS n FROM deliveries')).toBe(FILES * TARGETS);

    // What n1 held when it died was finished by n2 or n3.
    const finishers = await pool.query<{ leased_by: string; status: string }>('SELECT leased_by, status FROM deliveries WHERE id = ANY($1::bigint[])', [orphaned]);
    expect(finishers.rows.every((r) => r.status === 'done' && (r.leased_by === 'n2' || r.leased_by === 'n3')), JSON.stringify(finishers.rows)).toBe(true);

    for (const d of others) d.child.kill('SIGTERM');
    for (const d of others) expect((await d.exited).code).toBe(0);

    expect(await verifyClouds(made.clouds, made.inbox, files)).toEqual([]);
    // Box's rotating refresh token was never spent twice.
    expect(made.clouds.box.server.requests(/^\/oauth2\/token/).filter((r) => r.status !== 200)).toEqual([]);
    const local: string[] = [];
    for (const rel of files) {
      if ((await sha256File(path.join(made.archive, 'inbox', rel)).catch(() => 'missing')) !== (await sha256File(path.join(made.inbox, rel)))) local.push(rel);
    }
    expect(local).toEqual([]);
  }, 300_000);
});
