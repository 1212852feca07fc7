/**
 * Latency from a file written into the inbox until it is verified on every target (issue 8,
 * item 7), against the configured `stableMs`.
 *
 *   npx tsc -p tsconfig.json; node dist/bench/latency.js [--files N] [--stable-ms MS] [--dir DIR]
 *
 * The four emulators (no added latency) run in a child process; the daemon runs as in production
 * with one inbox, the local target and the four clouds, and `stableMs` as given. After a first
 * file (tokens, folders: not counted), N files of 4 KiB are written one at a time; each one's
 * latency runs from its write to the last of its five deliveries marked `done` in the journal
 * (the row's own `updated_at`, so the polling interval does not count). Figures: median and p95,
 * and the same minus `stableMs` (what the pipeline adds to the wait it is configured to make).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Daemon, requireBuild } from './lib/daemon.js';
import { CLOUDS, startEmulatorChild, type EmulatorChild } from './lib/emulators.js';
import { commandLine, emit, quantile, sleep, table, type Figure } from './lib/report.js';
import { median } from './lib/proc-memory.js';

const TARGETS = 1 + CLOUDS.length;

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { files: { type: 'string', default: '30' }, 'stable-ms': { type: 'string', default: '500' }, dir: { type: 'string', default: os.tmpdir() } } });
  const files = Math.max(1, Math.floor(Number(values.files)));
  const stableMs = Number(values['stable-ms']);
  if (!(stableMs >= 0)) throw new Error('--stable-ms must be a number ≥ 0');
  requireBuild();
  const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-latency-'));
  const inbox = path.join(work, 'inbox');
  const stateDir = path.join(work, 'state');
  const blobDir = path.join(work, 'blobs');
  for (const d of [inbox, stateDir, blobDir]) mkdirSync(d, { recursive: true });
  let emu: EmulatorChild | null = null;
  let daemon: Daemon | null = null;
  let db: Database.Database | null = null;
  try {
    emu = await startEmulatorChild({ blobDir });
    const config = path.join(work, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        stateDir,
        stableMs,
        log: { level: 'info', format: 'json' },
        roots: [{ path: inbox, name: 'inbox' }],
        targets: [{ type: 'local', path: path.join(work, 'archive') }, ...CLOUDS.map((c) => emu!.ready.targets[c])],
      }),
    );
    daemon = new Daemon(config);
    await daemon.waitFor('watching', 30_000);
    db = new Database(path.join(stateDir, 'stagecoach.db'), { readonly: true, fileMustExist: true });
    const q = db.prepare<[string], { n: number; last: number | null; bad: number }>(
      `SELECT SUM(d.status = 'done') AS n, MAX(d.updated_at) AS last, SUM(d.status IN ('failed','skipped')) AS bad
         FROM deliveries d JOIN files f ON f.id = d.file_id WHERE f.rel_path = ?`,
    );
    const body = Buffer.alloc(4096, 'l');
    const one = async (name: string): Promise<number> => {
      body.write(name.padEnd(32), 0);
      const t0 = Date.now();
      writeFileSync(path.join(inbox, name), body);
      const deadline = t0 + 60_000 + stableMs;
      while (Date.now() < deadline) {
        const r = q.get(name);
        if (r && (r.bad ?? 0) > 0) throw new Error(`${name}: a delivery failed: ${daemon!.warnings().slice(-2).join(' | ')}`);
        if (r && r.n === TARGETS && r.last !== null) return r.last - t0;
        await sleep(10);
      }
      throw new Error(`${name} was not delivered to all ${TARGETS} targets within 60 s + stableMs: ${daemon!.warnings().slice(-3).join(' | ')}`);
    };
    await one('warm-up.dat');
    const lat: number[] = [];
    for (let i = 0; i < files; i++) lat.push(await one(`file-${i}.dat`));
    const med = median(lat);
    const p95 = quantile(lat, 0.95);
    process.stdout.write(`${files} files of 4 KiB, one at a time, to local + ${CLOUDS.join(', ')} (emulators, no latency); stableMs ${stableMs}\n\n`);
    process.stdout.write(
      `${table(
        ['', 'ms', 'minus stableMs', '÷ stableMs'],
        [
          ['median', med.toFixed(0), (med - stableMs).toFixed(0), stableMs ? `${(med / stableMs).toFixed(2)}×` : '–'],
          ['p95', p95.toFixed(0), (p95 - stableMs).toFixed(0), stableMs ? `${(p95 / stableMs).toFixed(2)}×` : '–'],
          ['min / max', `${Math.min(...lat).toFixed(0)} / ${Math.max(...lat).toFixed(0)}`, '', ''],
        ],
      )}\n\n`,
    );
    const figures: Figure[] = [
      { figure: `latency: write → verified on all ${TARGETS} targets, median (stableMs ${stableMs})`, value: `${med.toFixed(0)} ms = stableMs + ${(med - stableMs).toFixed(0)} ms (${(med / stableMs).toFixed(2)}×; n=${files})`, goal: '– (against stableMs)', met: null },
      { figure: `latency: write → verified on all ${TARGETS} targets, p95 (stableMs ${stableMs})`, value: `${p95.toFixed(0)} ms = stableMs + ${(p95 - stableMs).toFixed(0)} ms (${(p95 / stableMs).toFixed(2)}×)`, goal: '– (against stableMs)', met: null },
    ];
    emit({ script: 'latency', command: commandLine(), figures });
    return 0;
  } finally {
    db?.close();
    if (daemon) await daemon.stop();
    if (emu) await emu.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
