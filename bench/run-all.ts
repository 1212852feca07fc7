/**
 * `npm run bench`: runs every benchmark of issue 8 in turn, each in its own process, echoes its
 * output, collects its `BENCH_RESULT` line (bench/lib/report.ts) and rewrites bench/RESULTS.md
 * with one table: figure, value, goal, met?, and the command that measured it.
 *
 *   npx tsc -p tsconfig.json; node dist/bench/run-all.js [--only hashing,latency] [--quick]
 *
 * The sizes below keep the whole run within 15 minutes on this 2-core machine. `--quick` runs
 * every script at a small size (a check that they work; its figures mean little) and writes
 * RESULTS.md all the same, marked as quick. Exit 0 when every script ran and every goal was met,
 * 1 otherwise.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RESULT_PREFIX, type ScriptResult } from './lib/report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** bench/RESULTS.md in the source tree (this file runs from dist/bench). */
const RESULTS = path.resolve(HERE, '..', '..', 'bench', 'RESULTS.md');

interface Step {
  script: string;
  args: string[];
  quick: string[];
  timeoutS: number;
}

/** In the order of the lead's brief; the sizes fit the 15-minute budget together. */
const STEPS: Step[] = [
  { script: 'hashing', args: ['--size', '256', '--runs', '5'], quick: ['--size', '32', '--runs', '2'], timeoutS: 120 },
  { script: 'small-files', args: ['--files', '10000', '--runs', '2'], quick: ['--files', '500', '--runs', '1'], timeoutS: 300 },
  { script: 'latency', args: ['--files', '30', '--stable-ms', '500'], quick: ['--files', '5'], timeoutS: 120 },
  { script: 'watching', args: ['--files', '10000', '--runs', '3'], quick: ['--files', '1000', '--runs', '1'], timeoutS: 120 },
  // Issue 19's million files, once, without chokidar alone (~7 GB at this size): ~2.5 min in all.
  // The tree is made on tmpfs: empty files, ~15 s for a million, where the shared ext4 disk takes
  // ~1 ms a file under load; the walks stat cached inodes either way.
  { script: 'watching', args: ['--files', '1000000', '--runs', '1', '--dir', '/dev/shm'], quick: ['--files', '2000', '--runs', '1'], timeoutS: 600 },
  // 100k: the journal is seeded through the Store API (~30 s), each restart ~30–40 s; ~3 min.
  { script: 'restart', args: ['--files', '100000', '--runs', '3'], quick: ['--files', '100', '--runs', '1', '--check', '50'], timeoutS: 300 },
  { script: 'pipeline-efficiency', args: ['--files', '2000', '--latency', '50', '--demand', '4'], quick: ['--files', '100'], timeoutS: 240 },
  { script: 'large-files', args: ['--size', '1024', '--runs', '3'], quick: ['--size', '32', '--runs', '1'], timeoutS: 720 },
  // Issue 20: 1, 2 and 3 daemons on one PostgreSQL journal (~2.5 min), and the journal's cost per
  // delivery against SQLite with `journal migrate` of a 100k-delivery journal (~2 min).
  { script: 'fleet', args: ['--files', '600', '--latency', '50', '--demand', '4'], quick: ['--files', '60'], timeoutS: 420 },
  { script: 'journal-pg', args: ['--deliveries', '3000', '--move-deliveries', '100000'], quick: ['--deliveries', '300', '--move-deliveries', '2000'], timeoutS: 420 },
];

/** What each script's misses come from, as far as a short profile showed (kept with the table). */
const EXPLANATIONS: Record<string, string> = {
  hashing:
    'The bound is the hash function on one core, not the stream. On this CPU (AMD EPYC, SHA-NI) node:crypto hashes 1 MiB buffers with no I/O at md5 ~0.5 GB/s, sha1 ~1.4 GB/s, sha256 ~1.3 GB/s, while a page-cached read runs at ~3.7 GB/s: even a hash that cost no I/O at all would reach 0.14× (md5), 0.35× (sha256) and 0.37× (sha1) of the read. The stream reaches 72–86 % of each raw hash rate (sha256 0.92 GB/s, md5 0.44, sha1 0.93, Dropbox 0.90, QuickXorHash in TypeScript 1.8). A cryptographic hash of one stream cannot be split across cores (each block depends on the last), so ≥ 0.8 of a page-cached read is out of reach for md5/sha1/sha256 here; in the product each target hashes only its own kind inside its upload stream, where the network or the disk, not the hash, is the bound (see large-files).',
  'small-files':
    "4.10× rclone in the run of 2026-12-07 19:04 (3.90 s, its two runs 3.02 and 4.78 s, against 0.94–0.96 s; CPU 4.51 s against 1.64), in a slow and uneven phase of the machine (the journal-pg bench's SQLite loop 0.132 ms a delivery against 0.095 at 16:48; the fleet's net CPU per delivery at one daemon 2.83 ms against 1.85); 3.39× at 18:37, 3.05× at 16:48. This session: (1) one syncfs of the archive's file system per batch of small files (a flush barrier, src/targets/kit/fs-barrier.ts over the native module native/fs-native.c that `npm ci` builds) in place of an fsync per temp file and per folder. A batch waits for a syncfs begun after its temp files are written, and another after its renames; since Linux 5.8 a syncfs reports every writeback error of the file system since the last one through the same descriptor, and a batch fails if any flush that completed after its first write reported one. The bench now runs the daemon both ways in the same run: one syncfs a batch against an fsync per file and folder, 0.86× and 1.18× in this run's two pairs (the 4.78 s run), 0.85–0.87× at 18:37 (3.06 s against 3.57 s; CPU 3.71 s against 4.75), 0.83× in a separate run (2.70 s against 3.27 s; `node dist/bench/small-files.js --files 10000 --runs 3`). Outside the daemon, in C on this disk (10,000 files of 4 KiB written, flushed and renamed by one thread): an fdatasync per file 2.7–5.6 s, one syncfs per 256 files 0.6 s, no flush at all 0.4 s. (2) The bench: the daemon is the bundle production runs (as in bench/restart), and each tool starts after a `sync`, untimed: rclone and cp leave their copies unwritten, and a syncfs writes every dirty page of the file system, so the daemon paid for their bytes (before the sync, one run gave 3.44 s with the barrier against 2.97 s without). What is left is the daemon's CPU on two cores, 3.7–4.5 CPU s against rclone's 1.6 (on tmpfs, where a flush costs nothing, it was already 3.2–3.6×: bench/HISTORY.md). A profile of one backfill with the barrier (`node --cpu-prof dist/bundle/main.js backfill --once`): the main thread busy ~1.6 s (SQLite 0.45 s for record, lease, claim and complete; garbage collection 0.25 s; the sources' opens and confinement checks, open, /proc readlink and fstat, 0.2 s; start-up), the small-file worker ~1.5 s, 0.9 s of it creating the temp files (ext4's inode and folder entry for each, then the rename). What would close it: less CPU per file, on both threads (the source's open and checks moved to the worker with its put, one journal transaction per batch from record to complete, fewer objects per file); the flushes no longer decide it. Each round's measurements: bench/HISTORY.md.",
  'pipeline-efficiency':
    "In the run of 2026-12-07 19:04, in a slow and uneven phase of the machine (the journal-pg bench's SQLite loop 0.132 ms a delivery against 0.095 at 16:48; the fleet's net CPU per delivery at one daemon 2.83 ms against 1.85): Drive 0.89, Dropbox 0.91, Box 0.90, OneDrive 0.95; main-thread CPU 1.34 ms per delivery (1.27 ms at 18:37, also slow). Nothing on this path changed this session (the local target's changes do not touch the clouds'). Before: Met in the run of 2026-12-07 16:48: Drive 0.91, Dropbox 0.93, Box 0.92, OneDrive 0.96; main-thread CPU 0.85 ms per delivery (goal ≤ 1). The figure moves with the machine, with no change on this path this session: the run of 16:14 fell in a slow minute (emulators' CPU 8.2 s against 6.2 s here) and gave Drive 0.897 and 1.16 ms; separate runs 0.71 ms (15:52), 1.04 ms (16:24, profiled), 1.08 ms (16:35) (`node dist/bench/pipeline-efficiency.js --files 2000 --latency 50 --demand 4`). Where the main thread goes (`--profile`, all four at once, 8.7 s busy over 8,000 deliveries): the SQLite journal ~11 % (1,480 lease transactions of 5.4 deliveries each with their claims ~0.47 s, commits 0.31 s, completions, records), socket writes ~5 %, garbage collection ~5 %, Node's HTTP client and agent ~7 %, the sources' checks (/proc readlink, open, fstat, stat, read) ~5 %, the proxy variables read per request 1.2 %, the SDKs' layers (Graph client, Box's serialization, gaxios) the rest. What would give margin on a slow minute: fewer lease transactions (leasing more ahead holds more per daemon, which a fleet's tail pays), and the per-request work of the SDK layers. Each round's measurements: bench/HISTORY.md.",
  watching:
    "Met in the run of 2026-12-07 19:04: a million files watched live 1.12× a bare walk at 95 B/file above idle RSS. Before: Met: a million files watched live 1.21× a bare walk at 96 B/file above idle RSS in the run of 2026-12-07 16:48 (1.25× and 95 B/file at 16:14, 1.27× and 82 B/file at 14:30; goals ≤ 2× and ≤ 1 KiB). The first walk runs on a worker thread (src/pipeline/prewalk.ts) and the watcher attaches each folder's watch before the worker reads it, so the root is live when its walk ends; the journal index is read on a worker thread and handed over as typed arrays with a hash table. Each round's measurements: bench/HISTORY.md.",
  restart:
    "Met in the run of 2026-12-07 19:04: 2.0× (0.98 s against a 426 ms walk; three restarts 1.9–3.0×; 1.9× at 18:37), with nothing on the restart path changed this session (the native module is loaded on a local target's first put, never by a restart with nothing to send). Before: Met at the line: 2.0× (0.72 s against a 353 ms walk; three restarts 1.9–2.0×) in the run of 2026-12-07 16:48; 2.0× (2.0–2.4, shown as not met) at 16:14, 1.9× at 14:30, 2.2× in a profiled run at 15:52, with the same restart path (nothing on it changed this session but the walk's worker starting for `backfill` too, which a restart does not use). The bound is the two cores' CPU: 1.14 s of CPU from spawn to idle (1.59 of the 2 cores busy), the main thread 0.31 s. A profile (`node dist/bench/restart.js --files 100000 --runs 2 --profile DIR`): the walk's worker starts ~60 ms after spawn and reads freely until the watcher takes the walk (~180 ms), then spends ~67 ms waiting for the main thread to watch the folders it is about to read (chokidar's watch of ~1,000 folders), and ~400 ms in lstat and readdir, a bare walk's own time, while the journal index's worker (~0.18 s) and the main thread's start-up share the cores with it. What would close it for good: the folder watches set more cheaply than through chokidar's per-folder bookkeeping, less of the main thread before the walk's gate (Node's boot, the config's modules and zod, ~140 ms), and a compile cache (Node 22+; the Docker image's Node 24 keeps one, Node 20 here has none). Each round's measurements: bench/HISTORY.md.",
  'large-files':
    "Local: 0.75× of cp + fsync in the run of 2026-12-07 19:04 (744 against 995 MB/s, medians of three runs each, the daemon's 726–950; the daemon 2.20 CPU s/GiB against 0.74), in a slow and uneven phase of the machine (the journal-pg bench's SQLite loop 0.132 ms a delivery against 0.095 at 16:48; the fleet's net CPU per delivery at one daemon 2.83 ms against 1.85); 0.62× at 18:37 (before the copy ran ahead of its check), 0.54× at 16:48. Separate runs of this build (`node dist/bench/large-files.js --size 1024 --runs 3 --targets local`): 1.02× twice (623 against 610 MB/s, 871 against 853), against 0.69–0.72× before the copy ran ahead of its check. This session the copy is made by the kernel, as cp's is: copy_file_range from the source's descriptor (PutRequest.sourceFd, which deliver.ts now offers with every unpaced read) to the temp file, 1 MiB a call, the source's data only (SEEK_DATA/SEEK_HOLE: a hole stays a hole), through the native module native/fs-native.c (`copyInKernel` in src/targets/local/upload.ts). Each chunk is then read back from the temp file and hashed on the sha256 worker, in order, behind the copy, which runs ahead (it holds no buffer) and has the disk write its tail while the hash catches up; the hash recorded is that of the bytes the archive holds. Where the kernel refuses (another file system, an old kernel) before a byte is written, or the module is not built, the copy goes through the process as before. What is left: the sha256 of the bytes, ~0.77 s/GiB on one core in a quick phase (the daemon's whole CPU was 1.41 s/GiB at 17:58, 2.20 here), against cp + fsync's 0.65–1.4 s/GiB: where the hash takes longer than cp's copy and flush together, it is the bound, and only a faster hash would go past it. Clouds, in this run: 0.26–0.33× of a raw streaming PUT to a syncing server (88–111 against 335 MB/s); the daemon spends 3.2–5.7 and the emulators 7.1–8.9 CPU s/GiB, against 3.14 for the whole baseline. At 16:48: Clouds: 0.25–0.40× of a raw streaming PUT to a syncing server (108–175 against 437 MB/s); the emulators spend 4.7–7.1 CPU s/GiB (the provider's hashes as the provider computes them, part files and their concatenation) and the daemon 2.5–5.1 (its own provider hash per stream: md5 alone is ~2 s/GiB on this CPU) on the same two cores, against 2.4 for the whole baseline: here the emulators and the hashes, not the upload path, are the bound. Memory is within the budget for every target (the highest of three runs: 34–82 MiB above idle; local's 34 includes its worker thread). Each round's measurements: bench/HISTORY.md.",
  fleet:
    "Below the goal in the run of 2026-12-07 19:04: 1.98× at 3 daemons (280.5 against 141.3 deliveries/s), in a slow phase of the machine (the daemons' net CPU per delivery 2.83 / 3.16 / 3.66 ms at 1 / 2 / 3 daemons, against 1.85 / 2.17 / 2.88 at 16:48; 2.03× at 18:37); nothing on the fleet's path changed this session. Before: Below the goal in the run of 2026-12-07 16:48: 2.19× at 3 daemons (318.8 against 145.7 deliveries/s), in a slow phase of the machine (the daemons' net CPU per delivery 2.88 ms at 3 daemons against 2.13 at 16:14, PostgreSQL's 0.52 against 0.42 ms); 2.48× at 16:14, 2.14× at 14:30. Separate runs of this build (`node dist/bench/fleet.js --files 600 --latency 50 --demand 4 --daemons 1,3`): 2.43× and 2.51× at 16:07, 2.36× and 2.32× at 16:57: the figure sits at the goal and moves ±0.15 with the machine. Two changes this session. (1) The bench keeps the emulators' blobs under /dev/shm, as pipeline-efficiency does (`--blobs`): a profile of the emulators' process at 3 daemons found 1.6 of its 3.2 busy CPU seconds in opening, writing and closing blob files on the ext4 disk, on the two cores the daemons share (2.29–2.45× with it, against 2.14–2.19× before). (2) A lease on the PostgreSQL journal claims its deliveries' remote names itself, in one statement right after it (as the SQLite journal claims inside its lease), so an upload no longer waits for a claim's round trip of its own before its first request: journal transactions per delivery 0.66–0.73 against 1.02–1.15, PostgreSQL 0.42–0.52 ms a delivery against 0.61–0.70. What keeps 3 daemons from 3×: OneDrive, the slowest target, delivers its first file ~0.4 s after the first delivery of all (its token and folders at 50 ms a request), which weighs three times as much in a span a third as long, and the daemons' CPU per delivery grows with their number (1.85 / 2.17 / 2.88 ms net at 1 / 2 / 3 in this run: each warms up its own JIT) on two cores shared with the emulators and PostgreSQL (62 % busy at 3). What would close it on two cores: the daemons' CPU per delivery (see pipeline-efficiency), and OneDrive's sign-in and folders made before the first lease rather than on its first upload. Each round's measurements: bench/HISTORY.md.",
  'journal-pg':
    "In the run of 2026-12-07 19:04: the migration met (100,000 deliveries moved in 3.3 s; a restart on them queues 0), in a slow and uneven phase of the machine (the journal-pg bench's SQLite loop 0.132 ms a delivery against 0.095 at 16:48; the fleet's net CPU per delivery at one daemon 2.83 ms against 1.85). Before: No goal but the migration's (met: 100,000 deliveries moved in 3.0 s in the run of 2026-12-07 16:48, and a restart on them queues 0). PostgreSQL costs 3.0–5.1× SQLite per delivery in the loops there (0.28–0.48 ms against 0.10 ms; 0.47 ms as a daemon's uploaders do it, against 0.10; 2.4–4.0× at 16:14, on a quicker minute): a lease and a claim are round trips, while a SQLite commit is a call. These loops claim each delivery apart; the daemon's leases now claim their deliveries together right after the lease (see fleet). Each round's measurements: bench/HISTORY.md.",
  latency: 'Latency is stableMs plus the sweep interval (stableMs/4, at most 1 s) that checks stability, plus five uploads and verifications; no goal beyond "against stableMs".',
};

function runStep(step: Step, quick: boolean): Promise<{ result: ScriptResult | null; error: string | null; seconds: number }> {
  const args = [path.join(HERE, `${step.script}.js`), ...(quick ? step.quick : step.args)];
  const t = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let result: ScriptResult | null = null;
    let buf = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      process.stdout.write(c);
      buf += c.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith(RESULT_PREFIX)) result = JSON.parse(line.slice(RESULT_PREFIX.length)) as ScriptResult;
      }
    });
    child.stderr.on('data', (c: Buffer) => {
      process.stderr.write(c);
      stderr = (stderr + c.toString()).slice(-2000);
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), step.timeoutS * 1000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const seconds = (Date.now() - t) / 1000;
      const error = result ? null : `exited ${signal ?? code} after ${seconds.toFixed(0)} s without a result${signal ? ` (time box ${step.timeoutS} s)` : ''}: ${stderr.trim().split('\n').slice(-2).join(' | ')}`;
      resolve({ result, error, seconds });
    });
  });
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * Rewrites RESULTS.md from the `BENCH_RESULT` lines of a saved run-all (or script) output,
 * without measuring anything: `node dist/bench/run-all.js --from-log run.log`.
 */
function fromLog(file: string): number {
  const results = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(RESULT_PREFIX))
    .map((l) => JSON.parse(l.slice(RESULT_PREFIX.length)) as ScriptResult)
    // A script may print a cumulative result more than once (watching: after each size): the last wins.
    .filter((r, i, all) => !all.slice(i + 1).some((later) => later.command === r.command));
  if (results.length === 0) throw new Error(`no ${RESULT_PREFIX.trim()} line in ${file}`);
  const { rows, notes, allMet } = tabulate(results);
  // Keep the measured run's own description (time, machine, load) when RESULTS.md has it.
  let run = '';
  try {
    run = /^Run [\s\S]*?whole run [^\n]*$/m.exec(readFileSync(RESULTS, 'utf8'))?.[0] ?? '';
  } catch {
    // no earlier RESULTS.md
  }
  writeMarkdown(`Figures from \`npm run bench\`; this file rebuilt with \`--from-log\` from that run's output (${path.basename(file)}, written ${statSync(file).mtime.toISOString()})${run ? `.\n${run.replace(/\.$/, '')}` : ''}`, rows, notes, []);
  return allMet ? 0 : 1;
}

function tabulate(results: ScriptResult[]): { rows: string[]; notes: string[]; allMet: boolean } {
  const rows: string[] = [];
  const notes: string[] = [];
  let allMet = true;
  const explained = new Set<string>();
  for (const result of results) {
    let missed = false;
    for (const f of result.figures) {
      if (f.met === false) {
        allMet = false;
        missed = true;
      }
      rows.push(`| ${cell(f.figure)} | ${cell(f.value)} | ${cell(f.goal)} | ${f.met === null ? '–' : f.met ? 'yes' : '**no**'} | \`${result.command}\` |`);
      if (f.note && !explained.has(f.note)) {
        explained.add(f.note);
        notes.push(`- ${cell(f.figure)}: ${cell(f.note)}`);
      }
    }
    const why = EXPLANATIONS[result.script];
    if (why && !explained.has(result.script) && (missed || result.script === 'latency')) {
      explained.add(result.script);
      notes.push(`- **${result.script}**: ${why}`);
    }
  }
  return { rows, notes, allMet };
}

function writeMarkdown(header: string, rows: string[], notes: string[], failures: string[]): void {
  const md = `# Benchmark results

${header}.
These machines are shared and noisy: every figure is a ratio against a baseline measured in the
same run; "median (min–max, n=runs)" where the script repeats it. Compare lines of one run only.

| figure | value | goal | met? | command |
|---|---|---|---|---|
${rows.join('\n')}
${failures.length ? `\n## Scripts that did not finish\n\n${failures.join('\n')}\n` : ''}
## Why goals are missed (as far as measured)

${notes.length ? notes.join('\n') : 'Every goal was met.'}

Each script's header comment says exactly what it measures; bench/README.md lists them.
`;
  writeFileSync(RESULTS, md);
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, quick: { type: 'boolean', default: false }, 'from-log': { type: 'string' } } });
  if (values['from-log']) return fromLog(values['from-log']);
  const only = values.only ? new Set(values.only.split(',').map((s) => s.trim())) : null;
  const steps = STEPS.filter((s) => !only || only.has(s.script));
  if (only) for (const o of only) if (!STEPS.some((s) => s.script === o)) throw new Error(`unknown script ${o}; known: ${STEPS.map((s) => s.script).join(', ')}`);
  const started = new Date();
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' / ');
  const failures: string[] = [];
  const results: ScriptResult[] = [];
  const times: string[] = [];
  for (const step of steps) {
    process.stdout.write(`\n=== ${step.script} ===\n`);
    const { result, error, seconds } = await runStep(step, values.quick);
    times.push(`${step.script} ${seconds.toFixed(0)} s`);
    if (result) results.push(result);
    else failures.push(`- **${step.script}**: ${cell(error ?? 'no result')} (\`node dist/bench/${step.script}.js ${(values.quick ? step.quick : step.args).join(' ')}\`)`);
  }
  const total = (Date.now() - started.getTime()) / 1000;
  const { rows, notes, allMet } = tabulate(results);
  writeMarkdown(
    `Written by \`npm run bench\` (bench/run-all.ts)${values.quick ? ' with `--quick`: small sizes, a check that every script works, **not** figures to quote' : ''}.
Run ${started.toISOString()} on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version};
load average at the start ${load}; whole run ${(total / 60).toFixed(1)} min (${times.join(', ')})`,
    rows,
    notes,
    failures,
  );
  process.stdout.write(`\nwrote ${RESULTS} (${(total / 60).toFixed(1)} min)\n`);
  return allMet && failures.length === 0 ? 0 : 1;
}

process.exitCode = await main();
