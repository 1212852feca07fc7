/**
 * Peak memory of the daemon while one large file uploads to each cloud (emulated) and to a local
 * folder, against the daemon's own idle RSS measured in the same run: the "cloud targets" goal is
 * peak − idle ≤ 128 MiB for a 1 GiB file.
 *
 *   npx tsc -p tsconfig.json; node dist/bench/upload-rss.js [--size MiB] [--targets local,gdrive,…]
 *       [--budget MiB] [--dir DIR] [--timeout S] [--trace DIR] [--source FILE]
 *
 * Per target, in a fresh temp folder: the emulators start in a child process of their own (so
 * the daemon's RSS is the daemon's alone; their blobs go to a folder removed afterwards), the
 * daemon (`dist/src/cli/main.js run`) starts with that one target; once it logs `watching`, its
 * idle RSS is the median of 10 VmRSS samples; then its VmHWM is reset, the source file is
 * hard-linked into the inbox (full size, mtime an hour old: stable at once), and VmRSS/VmHWM are
 * sampled every 50 ms until the journal says the delivery is done. Peak is VmHWM at the end
 * (the kernel's own high-water mark, so spikes between samples count). `--source FILE` uploads
 * that file (on the same file system as `--dir`; its mtime is set an hour back, it is not removed)
 * instead of writing a new one: bench/large-files.ts passes the file its baselines copy, so the
 * daemon reads the same page-cached bytes they do. Exit 1 when a target
 * misses the budget or does not deliver, 2 on bad usage or too little disk.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, statfsSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { CLOUDS, startEmulatorChild, terminate, type Cloud, type EmulatorChild } from './lib/emulators.js';
import { MiB, kibToMiB, median, readMemory, resetPeak } from './lib/proc-memory.js';
import { cpuSeconds } from './lib/proc-cpu.js';

const ALL_TARGETS = ['local', ...CLOUDS] as const;
type TargetName = (typeof ALL_TARGETS)[number];

const DAEMON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const FILE_NAME = 'big-file.bin';
const SAMPLE_MS = 50;
/** The daemon and emulator processes running now, killed if the bench is interrupted. */
const live = new Set<ChildProcess>();
const POLL_MS = 250;

interface Options {
  sizeMiB: number;
  targets: TargetName[];
  budgetMiB: number;
  dir: string;
  timeoutS: number;
  trace: string | null;
  /** An existing file to upload instead of a new one (see the module comment). */
  source: string | null;
}

interface Result {
  target: TargetName;
  ok: boolean;
  error: string | null;
  idleKiB: number;
  peakKiB: number;
  /** The peak came from VmHWM reset before the upload (exact) rather than from samples alone. */
  exactPeak: boolean;
  /** From the file's appearance in the inbox to the delivery done in the journal. */
  seconds: number;
  /** The put alone (the daemon's `archived` log line), or null when it was not logged. */
  putSeconds: number | null;
  bytes: number;
  /** CPU seconds (user + system, all threads) of the daemon from the file's appearance to done. */
  cpuS: number | null;
  /** The same for the emulator process (null for the local target). */
  emulatorCpuS: number | null;
  bytesSent: number | null;
  samples: number;
}

function usage(message: string): never {
  process.stderr.write(`upload-rss: ${message}\nusage: node dist/bench/upload-rss.js [--size MiB] [--targets ${ALL_TARGETS.join(',')}] [--budget MiB] [--dir DIR] [--timeout S] [--trace DIR] [--source FILE]\n`);
  process.exit(2);
}

function parseOptions(): Options {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        size: { type: 'string', default: '1024' },
        targets: { type: 'string', default: ALL_TARGETS.join(',') },
        budget: { type: 'string', default: '128' },
        dir: { type: 'string', default: os.tmpdir() },
        timeout: { type: 'string', default: '300' },
        trace: { type: 'string' },
        source: { type: 'string' },
      },
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  const num = (name: string, v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) usage(`--${name} must be a positive number, got ${JSON.stringify(v)}`);
    return n;
  };
  const targets = values.targets.split(',').map((t) => t.trim()).filter(Boolean);
  for (const t of targets) if (!(ALL_TARGETS as readonly string[]).includes(t)) usage(`unknown target ${JSON.stringify(t)}; known: ${ALL_TARGETS.join(', ')}`);
  if (targets.length === 0) usage('--targets names no target');
  return {
    sizeMiB: num('size', values.size),
    targets: [...new Set(targets)] as TargetName[],
    budgetMiB: num('budget', values.budget),
    dir: path.resolve(values.dir),
    timeoutS: num('timeout', values.timeout),
    trace: values.trace ? path.resolve(values.trace) : null,
    source: values.source ? path.resolve(values.source) : null,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Random bytes (nothing downstream can compress or dedupe them), fsynced, mtime an hour ago. */
function makeSource(file: string, bytes: number): void {
  const block = Buffer.allocUnsafe(8 * MiB);
  const fd = openSync(file, 'w');
  try {
    for (let off = 0; off < bytes; off += block.length) {
      const n = Math.min(block.length, bytes - off);
      randomFillSync(block, 0, n);
      writeSync(fd, block, 0, n);
    }
    // On disk before the upload, as large-files' baseline source is: otherwise the kernel may
    // write this gigabyte back during the measured upload, on the same disk.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const old = new Date(Date.now() - 3_600_000);
  utimesSync(file, old, old);
}

/** The daemon, its JSON log lines, and a promise of the first line with `msg`. */
class Daemon {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  #stderr = '';
  #waiters: Array<{ msg: string; resolve: (entry: LogEntry) => void }> = [];

  constructor(config: string) {
    this.child = spawn(process.execPath, [DAEMON, 'run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    this.child.once('exit', () => live.delete(this.child));
    let buf = '';
    this.child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.#line(line);
      }
    });
    this.child.stderr!.on('data', (c: Buffer) => {
      this.#stderr = (this.#stderr + c.toString()).slice(-4000);
    });
  }

  #line(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 200) this.lines.shift();
    let entry: LogEntry;
    try {
      entry = JSON.parse(line) as LogEntry;
    } catch {
      return;
    }
    this.#waiters = this.#waiters.filter((w) => {
      if (w.msg !== entry.msg) return true;
      w.resolve(entry);
      return false;
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** The first log line from now on with this `msg`; rejects if the daemon exits or `timeoutMs` passes. */
  waitFor(msg: string, timeoutMs: number): Promise<LogEntry> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the daemon did not log "${msg}" within ${timeoutMs} ms`)), timeoutMs);
      const onExit = (): void => {
        clearTimeout(timer);
        reject(new Error(`the daemon exited (${this.child.exitCode ?? this.child.signalCode}) before logging "${msg}": ${this.#stderr.trim() || this.warnings().join(' | ')}`));
      };
      this.child.once('exit', onExit);
      this.#waiters.push({
        msg,
        resolve: (entry) => {
          clearTimeout(timer);
          this.child.off('exit', onExit);
          resolve(entry);
        },
      });
    });
  }

  /** Warn-and-above log lines so far (diagnostics for a failed run). */
  warnings(): string[] {
    return this.lines.filter((l) => {
      try {
        return ((JSON.parse(l) as { level?: number }).level ?? 0) >= 40;
      } catch {
        return true;
      }
    });
  }
}

interface LogEntry {
  level?: number;
  msg?: string;
  /** On `archived` (debug): how long the put took, from lease to the target's answer. */
  durationMs?: number;
}

interface DeliveryRow {
  status: string;
  last_error: string | null;
  bytes_sent: number | null;
  updated_at: number;
}

async function runTarget(name: TargetName, source: string, work: string, opts: Options): Promise<Result> {
  const dir = path.join(work, name);
  const inbox = path.join(dir, 'inbox');
  const stateDir = path.join(dir, 'state');
  const blobDir = path.join(dir, 'emulator-blobs');
  for (const d of [inbox, stateDir, blobDir]) mkdirSync(d, { recursive: true });
  const bytes = Math.round(opts.sizeMiB * MiB);
  const result: Result = { target: name, ok: false, error: null, idleKiB: 0, peakKiB: 0, exactPeak: false, seconds: 0, putSeconds: null, bytes, cpuS: null, emulatorCpuS: null, bytesSent: null, samples: 0 };
  let emu: EmulatorChild | null = null;
  let daemon: Daemon | null = null;
  let db: Database.Database | null = null;
  const trace: string[] = ['t_ms,rss_kib,hwm_kib'];
  try {
    let target: Record<string, unknown>;
    if (name === 'local') {
      target = { type: 'local', path: path.join(dir, 'archive') };
    } else {
      emu = await startEmulatorChild({ blobDir });
      const p = emu.process;
      live.add(p);
      p.once('exit', () => live.delete(p));
      target = emu.ready.targets[name as Cloud];
    }
    const config = path.join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        stateDir,
        stableMs: 200,
        shutdownMs: 5000,
        // debug: for the `archived` line and its durationMs (a handful of lines per upload).
        log: { level: 'debug', format: 'json' },
        roots: [{ path: inbox, name: 'inbox' }],
        targets: [target],
      }),
    );
    daemon = new Daemon(config);
    const pid = daemon.child.pid!;
    await daemon.waitFor('watching', 30_000);

    // Let start-up settle (module loading, first GC) before calling anything idle.
    await sleep(1500);
    const idle: number[] = [];
    for (let i = 0; i < 10; i++) {
      const m = readMemory(pid);
      if (m) idle.push(m.rssKiB);
      await sleep(100);
    }
    if (idle.length === 0) throw new Error('the daemon is gone before the upload');
    result.idleKiB = median(idle);
    const hwmBefore = readMemory(pid)?.hwmKiB ?? 0;
    result.exactPeak = resetPeak(pid);

    db = new Database(path.join(stateDir, 'stagecoach.db'), { readonly: true, fileMustExist: true });
    const row = db.prepare<[string], DeliveryRow>(
      `SELECT d.status, d.last_error, d.bytes_sent, d.updated_at FROM deliveries d JOIN files f ON f.id = d.file_id WHERE f.rel_path = ?`,
    );

    const archived = daemon.waitFor('archived', opts.timeoutS * 1000 + 5000);
    archived.catch(() => undefined);
    const cpu0 = cpuSeconds(pid);
    const emuCpu0 = emu ? cpuSeconds(emu.process.pid!) : null;
    const t0 = Date.now();
    linkSync(source, path.join(inbox, FILE_NAME));
    let maxRss = 0;
    let lastHwm = 0;
    const sample = (): boolean => {
      const m = readMemory(pid);
      if (!m) return false;
      maxRss = Math.max(maxRss, m.rssKiB);
      lastHwm = m.hwmKiB;
      result.samples++;
      if (opts.trace) trace.push(`${Date.now() - t0},${m.rssKiB},${m.hwmKiB}`);
      return true;
    };
    const deadline = t0 + opts.timeoutS * 1000;
    let nextPoll = t0;
    let final: DeliveryRow | undefined;
    while (Date.now() < deadline) {
      if (!sample()) throw new Error(`the daemon exited during the upload: ${daemon.warnings().slice(-3).join(' | ')}`);
      if (Date.now() >= nextPoll) {
        nextPoll = Date.now() + POLL_MS;
        const r = row.get(FILE_NAME);
        if (r && (r.status === 'done' || r.status === 'failed' || r.status === 'skipped')) {
          final = r;
          break;
        }
      }
      await sleep(SAMPLE_MS);
    }
    sample();
    const cpu1 = cpuSeconds(pid);
    result.cpuS = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : null;
    const emuCpu1 = emu ? cpuSeconds(emu.process.pid!) : null;
    result.emulatorCpuS = emuCpu0 !== null && emuCpu1 !== null ? emuCpu1 - emuCpu0 : null;
    if (!final) throw new Error(`no delivery within ${opts.timeoutS} s; last warnings: ${daemon.warnings().slice(-3).join(' | ')}`);
    result.seconds = (final.updated_at - t0) / 1000;
    result.bytesSent = final.bytes_sent;
    // Without the reset VmHWM may be start-up's peak: trust it only where it rose during the upload.
    result.peakKiB = result.exactPeak ? Math.max(lastHwm, maxRss) : lastHwm > hwmBefore ? lastHwm : maxRss;
    if (final.status !== 'done') throw new Error(`delivery ${final.status}: ${final.last_error ?? '(no reason)'}`);
    const put = await Promise.race([archived, sleep(5000).then(() => null)]);
    result.putSeconds = typeof put?.durationMs === 'number' ? put.durationMs / 1000 : null;
    result.ok = true;
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
  } finally {
    db?.close();
    if (daemon) await terminate(daemon.child, 15_000);
    if (emu) await emu.stop();
    if (opts.trace) {
      mkdirSync(opts.trace, { recursive: true });
      writeFileSync(path.join(opts.trace, `${name}.csv`), `${trace.join('\n')}\n`);
    }
    // Removes the inbox link, the journal, a local archive and every emulator blob.
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

/** MB/s of the put (end to end when the put time was not logged). */
function rate(r: Result): number {
  const s = r.putSeconds ?? r.seconds;
  return s > 0 ? r.bytes / 1e6 / s : 0;
}

function table(results: Result[], opts: Options): string {
  const local = results.find((r) => r.target === 'local' && r.ok);
  const head = ['target', 'idle MiB', 'peak MiB', 'peak−idle MiB', 'of budget', 'put s', 'MB/s', 'vs local', 'end-to-end s', `within ${opts.budgetMiB} MiB`];
  const rows = results.map((r) => {
    const verdict = !r.ok ? 'FAILED' : r.peakKiB - r.idleKiB <= opts.budgetMiB * 1024 ? 'yes' : 'NO';
    if (r.peakKiB === 0) return [r.target, r.idleKiB ? kibToMiB(r.idleKiB) : '–', '–', '–', '–', '–', '–', '–', '–', verdict];
    const grew = r.peakKiB - r.idleKiB;
    return [
      r.target,
      kibToMiB(r.idleKiB),
      kibToMiB(r.peakKiB) + (r.exactPeak ? '' : '*'),
      kibToMiB(grew),
      `${(grew / 1024 / opts.budgetMiB).toFixed(2)}×`,
      r.putSeconds === null ? '–' : r.putSeconds.toFixed(2),
      rate(r).toFixed(0),
      local ? `${(rate(r) / rate(local)).toFixed(2)}×` : '–',
      r.seconds.toFixed(2),
      verdict,
    ];
  });
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  return all.map((row) => row.map((c, i) => (i === 0 || i === row.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

async function main(): Promise<number> {
  const opts = parseOptions();
  if (!existsSync('/proc/self/status')) usage('needs Linux /proc to read a process RSS');
  if (!existsSync(DAEMON)) usage(`${DAEMON} is missing: run npx tsc -p tsconfig.json first`);
  if (opts.source) {
    let st;
    try {
      st = statSync(opts.source);
    } catch (err) {
      usage(`--source ${opts.source}: ${(err as Error).message}`);
    }
    if (!st.isFile() || st.size === 0) usage(`--source ${opts.source} is not a file with bytes in it`);
    opts.sizeMiB = st.size / MiB;
  }
  const bytes = Math.round(opts.sizeMiB * MiB);
  mkdirSync(opts.dir, { recursive: true });
  const fs = statfsSync(opts.dir);
  const free = fs.bavail * fs.bsize;
  // The source (unless given), plus one target's worst: Box's emulator keeps the parts and their
  // concatenation.
  const need = (opts.source ? 2 : 3) * bytes + 512 * MiB;
  process.stdout.write(`disk: ${(free / 1024 ** 3).toFixed(1)} GiB free under ${opts.dir}; this run needs up to ${(need / 1024 ** 3).toFixed(1)} GiB at a time\n`);
  if (free < need) {
    process.stderr.write(`upload-rss: not enough free disk under ${opts.dir}: ${(free / 1024 ** 3).toFixed(1)} GiB free, up to ${(need / 1024 ** 3).toFixed(1)} GiB needed. Use --dir elsewhere or a smaller --size.\n`);
    return 2;
  }
  const work = mkdtempSync(path.join(opts.dir, 'stagecoach-bench-rss-'));
  const stop = (): void => {
    // The emulators' SIGTERM handler removes their blobs; the daemon must not outlive its inbox.
    void Promise.allSettled([...live].map((c) => terminate(c, 5000))).finally(() => {
      rmSync(work, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const results: Result[] = [];
  try {
    let source: string;
    if (opts.source) {
      source = opts.source;
      const old = new Date(Date.now() - 3_600_000);
      utimesSync(source, old, old);
      process.stdout.write(`source: ${source} (${opts.sizeMiB.toFixed(0)} MiB); budget: peak − idle ≤ ${opts.budgetMiB} MiB\n`);
    } else {
      source = path.join(work, FILE_NAME);
      const t = Date.now();
      makeSource(source, bytes);
      process.stdout.write(`source: ${opts.sizeMiB} MiB of random bytes written in ${((Date.now() - t) / 1000).toFixed(1)} s; budget: peak − idle ≤ ${opts.budgetMiB} MiB\n`);
    }
    for (const name of opts.targets) {
      process.stdout.write(`${name}: uploading ${opts.sizeMiB} MiB… `);
      const r = await runTarget(name, source, work, opts);
      results.push(r);
      process.stdout.write(
        r.ok
          ? `idle ${kibToMiB(r.idleKiB)} MiB, peak ${kibToMiB(r.peakKiB)} MiB (+${kibToMiB(r.peakKiB - r.idleKiB)}), ${rate(r).toFixed(0)} MB/s, ${r.samples} samples\n`
          : `FAILED: ${r.error}\n`,
      );
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  process.stdout.write(`\n${table(results, opts)}\n`);
  // For bench/large-files.ts: every result, with the put rate, on one line.
  process.stdout.write(`UPLOAD_RSS_JSON ${JSON.stringify(results.map((r) => ({ ...r, mbps: r.ok ? rate(r) : 0 })))}\n`);
  if (results.some((r) => !r.exactPeak)) process.stdout.write('* VmHWM could not be reset: peak from 50 ms samples (a shorter spike may be missed)\n');
  if (opts.trace) process.stdout.write(`RSS traces (t_ms,rss_kib,hwm_kib) in ${opts.trace}\n`);
  return results.every((r) => r.ok && r.peakKiB - r.idleKiB <= opts.budgetMiB * 1024) ? 0 : 1;
}

process.exitCode = await main();
