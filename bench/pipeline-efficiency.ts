/**
 * Pipeline efficiency against the latency bound (issue 8, item 1; goal ≥ 0.95).
 *
 *   npx tsc -p tsconfig.json; node dist/bench/pipeline-efficiency.js [--files N] [--latency MS] [--demand C] [--dir DIR]
 *
 * The four emulators run in a child process with a fixed latency on every request; the daemon
 * archives N files of 1 KiB (bench/lib/tree.ts) to all four at once with `backfill --once`,
 * `maxDemand` C per target. Per target: requests per file from the emulator's own request log
 * (token requests left out), the rate achieved (files − 1 over the span from its first delivery
 * done to its last, from the journal: start-up and the token fetch do not count), and the ideal
 * C ÷ (latency × requests per file): with C uploads always in flight and nothing but the latency
 * costing time. Efficiency = achieved ÷ ideal.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { DAEMON_MAIN, requireBuild } from './lib/daemon.js';
import { CLOUDS, startEmulatorChild, type EmulatorChild } from './lib/emulators.js';
import { commandLine, emit, table, type Figure } from './lib/report.js';
import { makeTree } from './lib/tree.js';

const GOAL = 0.95;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { files: { type: 'string', default: '2000' }, latency: { type: 'string', default: '50' }, demand: { type: 'string', default: '4' }, dir: { type: 'string', default: os.tmpdir() } },
  });
  const files = Math.max(2, Math.floor(Number(values.files)));
  const latencyMs = Number(values.latency);
  const demand = Math.max(1, Math.floor(Number(values.demand)));
  if (!(latencyMs > 0)) throw new Error('--latency must be positive');
  requireBuild();
  const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-pipe-'));
  const tree = path.join(work, 'tree');
  const stateDir = path.join(work, 'state');
  const blobDir = path.join(work, 'blobs');
  mkdirSync(blobDir, { recursive: true });
  let emu: EmulatorChild | null = null;
  try {
    makeTree(tree, files, 1024);
    emu = await startEmulatorChild({ blobDir, latencyMs });
    const config = path.join(work, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        stateDir,
        stableMs: 200,
        log: { level: 'warn', format: 'json' },
        roots: [{ path: tree, name: 'tree' }],
        targets: CLOUDS.map((c) => ({ ...emu!.ready.targets[c], maxDemand: demand })),
      }),
    );
    const t = Date.now();
    const fill = spawnSync(process.execPath, [DAEMON_MAIN, 'backfill', '--once', '--config', config], { encoding: 'utf8', timeout: 900_000, maxBuffer: 64 * 1024 * 1024 });
    const wall = (Date.now() - t) / 1000;
    if (fill.status !== 0) throw new Error(`backfill --once exited ${fill.status ?? fill.signal}: ${(fill.stderr || fill.stdout).trim().split('\n').slice(-3).join(' | ')}`);
    const counts = await emu.requests();
    const db = new Database(path.join(stateDir, 'stagecoach.db'), { readonly: true, fileMustExist: true });
    const span = db.prepare<[string], { n: number; first: number; last: number }>(
      `SELECT COUNT(*) AS n, MIN(updated_at) AS first, MAX(updated_at) AS last FROM deliveries WHERE target = ? AND status = 'done'`,
    );
    const targetNames = db.prepare<[], { target: string }>(`SELECT DISTINCT target FROM deliveries`).all().map((r) => r.target);
    const figures: Figure[] = [];
    const rows: string[][] = [];
    for (const c of CLOUDS) {
      // The target's name in the journal: the config gives none, so it is the type (or type-N).
      const name = targetNames.find((n) => n === c) ?? targetNames.find((n) => n.startsWith(c)) ?? c;
      const s = span.get(name)!;
      const rpf = (counts[c].total - counts[c].token) / files;
      const achieved = s.n > 1 && s.last > s.first ? ((s.n - 1) * 1000) / (s.last - s.first) : 0;
      const ideal = demand / ((latencyMs / 1000) * rpf);
      const eff = ideal > 0 ? achieved / ideal : 0;
      rows.push([c, `${s.n}/${files}`, rpf.toFixed(2), achieved.toFixed(1), ideal.toFixed(1), `${eff.toFixed(2)}×`, eff >= GOAL ? 'yes' : 'NO']);
      figures.push({
        figure: `pipeline efficiency, ${c}: ${files} files, ${latencyMs} ms latency, maxDemand ${demand}: files/s ÷ C/(latency × requests per file)`,
        value: `${eff.toFixed(2)}× (${achieved.toFixed(1)} of ${ideal.toFixed(1)} files/s; ${rpf.toFixed(2)} requests/file)`,
        goal: `≥ ${GOAL}`,
        met: s.n === files && eff >= GOAL,
      });
    }
    db.close();
    process.stdout.write(`${files} files of 1 KiB to ${CLOUDS.join(', ')} at once; ${latencyMs} ms per request; maxDemand ${demand}; backfill took ${wall.toFixed(1)} s (one run)\n\n`);
    process.stdout.write(`${table(['target', 'done', 'requests/file', 'files/s', 'ideal files/s', 'efficiency', `≥ ${GOAL}`], rows)}\n\n`);
    emit({ script: 'pipeline-efficiency', command: commandLine(), figures });
    return figures.every((f) => f.met) ? 0 : 1;
  } finally {
    if (emu) await emu.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
