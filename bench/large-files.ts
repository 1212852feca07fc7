/**
 * Large files (issues 8 and 19; goals: ≥ 0.8 of a fair baseline per target, measured in the
 * same run, and peak RSS ≤ 128 MiB above idle).
 *
 *   npx tsc -p tsconfig.json; node dist/bench/large-files.js [--size MiB] [--runs N] [--targets a,b] [--dir DIR]
 *
 * One file of N MiB random bytes (page-cached: just written, as the daemon's source is). The
 * baselines, each `--runs` times in this run, and what exactly each includes:
 * - local: `cp SRC DST` (coreutils, a child process) and then an fsync of DST from here, timed
 *   together; DST in the same folder as the source, removed after each run. The local target
 *   does that and more: it hashes what it reads (sha256), reads the copy back and hashes it, and
 *   renames it into place and fsyncs the folder.
 * - each cloud: a raw streaming PUT with node:http (`createReadStream`, 1 MiB chunks, one request,
 *   Content-Length) to a loopback server in a child process that writes the body to a new file
 *   through `createWriteStream` (as the emulators' blob store does) and fsyncs it before it
 *   answers. The emulators do not fsync, but they hash the body as the provider does (Drive's
 *   md5, Box's SHA-1 of each part and of the file, Dropbox's content hash, QuickXorHash) as the
 *   bytes arrive into the session's one file (test/emulators/harness SessionFile): that cost is
 *   theirs, on the same two cores.
 * - each cloud, apart from the goal: the emulator's own ceiling, a bare client (bench/lib/bare-
 *   upload.ts: the provider's chunked-upload protocol in the daemon's chunk size over node:http,
 *   no SDK, no hash while it sends, the next chunk read while one is sent) uploading the file to a
 *   fresh emulator child, after the same pause. The daemon's rate ÷ this one is how much of what
 *   the emulator can take the daemon reaches; the emulator's hashes are in both.
 * And in each run bench/upload-rss.js (`--source` that same file, `--targets`): the daemon uploads
 * it once to each target (the emulators in a child process) and reports its put rate, the CPU
 * seconds of the daemon and of the emulator process during the upload, and its peak RSS above
 * idle. The baselines and the daemon take turns (odd runs the baselines first, even runs the
 * daemon first), read the same page-cached file, and each starts its write after the same pause
 * (3 s; the daemon's upload starts 2.5 s after its start, idle RSS measured first): on this VM
 * (a balloon hands free memory back to the host) a copy into memory freed moments ago is twice
 * as fast as one a few seconds later (`cp` + fsync of 1 GiB: 0.6 s right after the last copy
 * was removed, 1.15 s after a 3 s pause), so a side that always wrote right after a removal, as
 * the baselines did, measured the memory it got more than the copy.
 * Figures per target: the median of its put MB/s over the runs ÷ its baseline's median MB/s; CPU
 * seconds per GiB (medians) for the daemon, the emulator, and each baseline (client + server, or
 * cp + fsync); peak − idle, the highest of the runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bareUpload } from './lib/bare-upload.js';
import { CLOUDS, startEmulatorChild, type Cloud } from './lib/emulators.js';
import { childrenCpuSeconds, cpuSeconds } from './lib/proc-cpu.js';
import { MiB } from './lib/proc-memory.js';
import { commandLine, emit, fmt, summarize, table, type Figure } from './lib/report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/**
 * The pause before each baseline: bench/upload-rss.js links the file in 2.5 s after its daemon
 * is up (idle RSS measured first), so the daemon never writes right after a gigabyte was freed.
 */
const SETTLE_MS = 3000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const GiB = 1024 * MiB;
/** Writes each PUT's body to a new file in argv[1] as the emulators' BlobStore does, fsyncs it, answers its length. */
const SYNCING_SERVER = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
const { pipeline } = require('node:stream');
let k = 0;
const s = http.createServer((req, res) => {
  const file = path.join(process.argv[1], 'put-' + k++);
  const fd = fs.openSync(file, 'w');
  let n = 0;
  req.on('data', (c) => { n += c.length; });
  pipeline(req, fs.createWriteStream(null, { fd, autoClose: false }), (err) => {
    if (err) { fs.closeSync(fd); res.statusCode = 500; res.end(String(err)); return; }
    fs.fsync(fd, (e) => { fs.closeSync(fd); fs.unlinkSync(file); res.statusCode = e ? 500 : 200; res.end(e ? String(e) : String(n)); });
  });
});
s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
`;

interface Run {
  mbps: number;
  /** CPU seconds per GiB: the sender (this process, or cp + the fsync) and the receiving server. */
  cpuPerGiB: number;
}

const ownCpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** One streaming PUT of `file` to the syncing server; MB/s and CPU s/GiB (client + server). */
async function rawPut(file: string, port: number, serverPid: number, bytes: number): Promise<Run> {
  const c0 = ownCpu();
  const s0 = cpuSeconds(serverPid) ?? 0;
  const t = process.hrtime.bigint();
  const agent = new http.Agent({ keepAlive: false });
  const answer = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/blob', agent, headers: { 'content-length': String(bytes), 'content-type': 'application/octet-stream' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
    pipeline(createReadStream(file, { highWaterMark: MiB }), req).catch(reject);
  });
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  if (Number(answer) !== bytes) throw new Error(`the syncing server got ${answer} of ${bytes} bytes`);
  const cpu = ownCpu() - c0 + ((cpuSeconds(serverPid) ?? s0) - s0);
  return { mbps: bytes / 1e6 / secs, cpuPerGiB: (cpu * GiB) / bytes };
}

/** `cp file dst` then an fsync of dst, timed together; MB/s and CPU s/GiB (cp + the fsync). */
function cpSync(file: string, dst: string, bytes: number): Run {
  const c0 = ownCpu();
  const k0 = childrenCpuSeconds();
  const t = process.hrtime.bigint();
  const r = spawnSync('cp', [file, dst], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp exited ${r.status ?? r.signal}: ${r.stderr}`);
  const fd = openSync(dst, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  const cpu = ownCpu() - c0 + (childrenCpuSeconds() - k0);
  rmSync(dst);
  return { mbps: bytes / 1e6 / secs, cpuPerGiB: (cpu * GiB) / bytes };
}

/** The bare client's upload of `file` to a fresh emulator child (its blobs in a folder removed after); MB/s. */
async function barePut(cloud: Cloud, file: string, bytes: number, work: string): Promise<number> {
  const blobDir = mkdtempSync(path.join(work, `bare-${cloud}-`));
  const emu = await startEmulatorChild({ blobDir });
  try {
    await sleep(SETTLE_MS);
    const secs = await bareUpload(cloud, emu.ready.targets[cloud], emu.ready.tokens[cloud], file, bytes, 'bare.bin');
    return bytes / 1e6 / secs;
  } finally {
    await emu.stop();
    rmSync(blobDir, { recursive: true, force: true });
  }
}

interface RssResult { target: string; ok: boolean; error: string | null; idleKiB: number; peakKiB: number; mbps: number; cpuS: number | null; emulatorCpuS: number | null; bytes: number }

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { size: { type: 'string', default: '1024' }, runs: { type: 'string', default: '3' }, targets: { type: 'string', default: 'local,gdrive,dropbox,box,onedrive' }, dir: { type: 'string', default: os.tmpdir() }, budget: { type: 'string', default: '128' } },
  });
  const sizeMiB = Number(values.size);
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  const budget = Number(values.budget);
  const bytes = Math.round(sizeMiB * MiB);
  const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-large-'));
  const server = spawn(process.execPath, ['-e', SYNCING_SERVER, work], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().trim())));
      server.once('exit', (code) => reject(new Error(`the syncing server exited (${code})`)));
    });
    const file = path.join(work, 'raw.bin');
    const block = Buffer.allocUnsafe(8 * MiB);
    const fd = openSync(file, 'w');
    for (let off = 0; off < bytes; off += block.length) {
      const n = Math.min(block.length, bytes - off);
      randomFillSync(block, 0, n);
      writeSync(fd, block, 0, n);
    }
    fsyncSync(fd);
    closeSync(fd);
    const put: Run[] = [];
    const cp: Run[] = [];
    const daemon = new Map<string, RssResult[]>();
    const bare = new Map<Cloud, number[]>();
    const clouds = CLOUDS.filter((c) => values.targets.split(',').map((t) => t.trim()).includes(c));
    const failures = new Map<string, string>();
    // Each baseline starts as the daemon's upload does: a few seconds after the last large write
    // was removed (see the module comment).
    const baselines = async (): Promise<void> => {
      await sleep(SETTLE_MS);
      cp.push(cpSync(file, path.join(work, 'cp.bin'), bytes));
      await sleep(SETTLE_MS);
      put.push(await rawPut(file, port, server.pid!, bytes));
      for (const c of clouds) bare.set(c, [...(bare.get(c) ?? []), await barePut(c, file, bytes, work)]);
    };
    // The daemon's uploads, each target once, of the same page-cached file the baselines copy.
    const uploads = (): void => {
      const rss = spawnSync(process.execPath, [path.join(HERE, 'upload-rss.js'), '--source', file, '--targets', values.targets, '--dir', work, '--budget', String(budget)], { encoding: 'utf8', timeout: 1_800_000, maxBuffer: 64 * 1024 * 1024 });
      const out = rss.stdout ?? '';
      process.stdout.write(out.split('\n').filter((l) => !l.startsWith('UPLOAD_RSS_JSON')).join('\n'));
      const line = out.split('\n').find((l) => l.startsWith('UPLOAD_RSS_JSON '));
      if (!line) throw new Error(`upload-rss gave no result (exit ${rss.status ?? rss.signal}): ${(rss.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
      for (const r of JSON.parse(line.slice('UPLOAD_RSS_JSON '.length)) as RssResult[]) {
        if (r.ok) daemon.set(r.target, [...(daemon.get(r.target) ?? []), r]);
        else failures.set(r.target, r.error ?? '(no reason)');
      }
    };
    process.stdout.write(`${sizeMiB} MiB, ${runs} runs; each run: the baselines and the daemon's uploads (bench/upload-rss.js), in turns (odd runs the baselines first, even runs the daemon first)\n`);
    for (let r = 0; r < runs; r++) {
      process.stdout.write(`\nrun ${r + 1}:\n`);
      if (r % 2 === 0) await baselines();
      uploads();
      if (r % 2 === 1) await baselines();
    }
    rmSync(file);
    const putS = summarize(put.map((r) => r.mbps));
    const cpS = summarize(cp.map((r) => r.mbps));
    const putCpu = summarize(put.map((r) => r.cpuPerGiB)).median;
    const cpCpu = summarize(cp.map((r) => r.cpuPerGiB)).median;
    process.stdout.write(
      `\nbaselines, ${sizeMiB} MiB, ${runs} runs each:\n` +
        `  local: cp + fsync of the copy: ${fmt(cpS, 'MB/s', 0)}, ${cpCpu.toFixed(2)} CPU s/GiB\n` +
        `  clouds: raw streaming PUT to a loopback server that writes and fsyncs: ${fmt(putS, 'MB/s', 0)}, ${putCpu.toFixed(2)} CPU s/GiB (client + server)\n`,
    );
    // Per target: the median of its runs' rates and CPU, and the highest peak of any run.
    const targets = values.targets.split(',').map((t) => t.trim()).filter(Boolean);
    const bareOf = (target: string): ReturnType<typeof summarize> | null => {
      const b = bare.get(target as Cloud);
      return b && b.length > 0 ? summarize(b) : null;
    };
    const results = targets.map((target) => {
      const rs = daemon.get(target) ?? [];
      if (rs.length < runs) return { target, ok: false, error: failures.get(target) ?? 'no upload', runs: rs.length } as const;
      const med = (f: (r: RssResult) => number | null): number | null => (rs.some((r) => f(r) === null) ? null : summarize(rs.map((r) => f(r)!)).median);
      return {
        target,
        ok: true,
        mbps: summarize(rs.map((r) => r.mbps)),
        cpuS: med((r) => r.cpuS),
        emulatorCpuS: med((r) => r.emulatorCpuS),
        grewMiB: Math.max(...rs.map((r) => (r.peakKiB - r.idleKiB) / 1024)),
        bytes: rs[0]!.bytes,
      } as const;
    });
    const figures: Figure[] = [];
    const rows: string[][] = [];
    const perGiB = (s: number | null, b: number): string => (s === null ? '–' : ((s * GiB) / b).toFixed(2));
    for (const r of results) {
      const local = r.target === 'local';
      const base = local ? cpS.median : putS.median;
      const baseCpu = local ? cpCpu : putCpu;
      const baseName = local ? 'cp + fsync' : 'raw PUT to a syncing server';
      if (!r.ok) {
        rows.push([r.target, 'FAILED', base.toFixed(0), '–', '–', '–', '–', baseCpu.toFixed(2), '–']);
        figures.push({ figure: `large file ${sizeMiB} MiB → ${r.target}: put MB/s ÷ ${baseName}`, value: `failed (${r.runs} of ${runs} runs delivered): ${r.error}`, goal: '≥ 0.8', met: false });
        figures.push({ figure: `large file ${sizeMiB} MiB → ${r.target}: peak RSS above idle`, value: 'failed', goal: `≤ ${budget} MiB`, met: false });
        continue;
      }
      const ratio = r.mbps.median / base;
      const cpu = `daemon ${perGiB(r.cpuS, r.bytes)}${local ? '' : `, emulator ${perGiB(r.emulatorCpuS, r.bytes)}`} CPU s/GiB vs ${baseCpu.toFixed(2)}`;
      const b = bareOf(r.target);
      rows.push([
        r.target,
        `${r.mbps.median.toFixed(0)} (${r.mbps.min.toFixed(0)}–${r.mbps.max.toFixed(0)})`,
        base.toFixed(0),
        `${ratio.toFixed(2)}×`,
        b === null ? '–' : `${b.median.toFixed(0)} (${(r.mbps.median / b.median).toFixed(2)}×)`,
        perGiB(r.cpuS, r.bytes),
        local ? '–' : perGiB(r.emulatorCpuS, r.bytes),
        baseCpu.toFixed(2),
        r.grewMiB.toFixed(1),
      ]);
      figures.push({ figure: `large file ${sizeMiB} MiB → ${r.target}: put MB/s ÷ ${baseName}`, value: `${ratio.toFixed(2)}× (${r.mbps.median.toFixed(0)} vs ${base.toFixed(0)} MB/s, medians of ${runs} runs each, the daemon's ${r.mbps.min.toFixed(0)}–${r.mbps.max.toFixed(0)}; ${cpu})`, goal: '≥ 0.8', met: ratio >= 0.8 });
      if (b !== null) {
        figures.push({
          figure: `large file ${sizeMiB} MiB → ${r.target}: put MB/s ÷ a bare client's upload to the same emulator (its ceiling here)`,
          value: `${(r.mbps.median / b.median).toFixed(2)}× (${r.mbps.median.toFixed(0)} vs ${b.median.toFixed(0)} MB/s, the bare client's ${b.min.toFixed(0)}–${b.max.toFixed(0)}, medians of ${runs} runs)`,
          goal: '–',
          met: null,
        });
      }
      figures.push({ figure: `large file ${sizeMiB} MiB → ${r.target}: peak RSS above idle`, value: `${r.grewMiB.toFixed(1)} MiB (the highest of ${runs} runs)`, goal: `≤ ${budget} MiB`, met: r.grewMiB <= budget });
    }
    process.stdout.write(
      `\n${table(['target', 'put MB/s', 'baseline MB/s', 'vs baseline', 'bare client MB/s (daemon ÷ it)', 'daemon CPU s/GiB', 'emulator CPU s/GiB', 'baseline CPU s/GiB', 'peak − idle MiB'], rows)}\n` +
        `(baselines: local = cp + fsync of the copy, ${fmt(cpS, 'MB/s', 0)}; clouds = raw PUT to a server that writes and fsyncs, ${fmt(putS, 'MB/s', 0)}; daemon: median of ${runs} uploads per target, peak the highest)\n\n`,
    );
    emit({ script: 'large-files', command: commandLine(), figures });
    return figures.every((f) => f.met !== false) ? 0 : 1;
  } finally {
    server.stdin.end();
    server.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
