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
  // 100k: the journal is seeded through the Store API (~30 s), each restart ~30–40 s; ~2.5 min.
  { script: 'restart', args: ['--files', '100000', '--runs', '2'], quick: ['--files', '100', '--runs', '1', '--check', '50'], timeoutS: 300 },
  { script: 'pipeline-efficiency', args: ['--files', '2000', '--latency', '50', '--demand', '4'], quick: ['--files', '100'], timeoutS: 240 },
  { script: 'large-files', args: ['--size', '1024', '--runs', '3'], quick: ['--size', '32', '--runs', '1'], timeoutS: 300 },
];

/** What each script's misses come from, as far as a short profile showed (kept with the table). */
const EXPLANATIONS: Record<string, string> = {
  hashing:
    'The bound is the hash function on one core, not the stream. On this CPU (AMD EPYC, SHA-NI) node:crypto hashes 1 MiB buffers with no I/O at md5 ~0.5 GB/s, sha1 ~1.4 GB/s, sha256 ~1.3 GB/s, while a page-cached read runs at ~3.7 GB/s: even a hash that cost no I/O at all would reach 0.14× (md5), 0.35× (sha256) and 0.37× (sha1) of the read. The stream reaches 72–86 % of each raw hash rate (sha256 0.92 GB/s, md5 0.44, sha1 0.93, Dropbox 0.90, QuickXorHash in TypeScript 1.8). A cryptographic hash of one stream cannot be split across cores (each block depends on the last), so ≥ 0.8 of a page-cached read is out of reach for md5/sha1/sha256 here; in the product each target hashes only its own kind inside its upload stream, where the network or the disk, not the hash, is the bound (see large-files).',
  'small-files':
    "Issue 19 round (measured on 10,000 × 4 KiB with `/usr/bin/time`, `strace -f -c` and `perf record -e cpu-clock`, same machine under a load average of 10–16): the daemon went from 17.7× rclone at the start of the round (60.7 s against 3.4 s in one run) to the figures above. Causes found and removed: the local target ran 4 puts at once (maxDemand 4), so every file waited for its own fsync; local now defaults to 32, whose fsyncs the disk's journal commits together. Each delivery completed in its own journal transaction and each freed upload slot leased on its own: completions now commit as a group (one transaction per event-loop turn) and the requests of one turn make one lease (16.6 → 10.2 CPU s at 64 in flight). Each read of a 4 KiB source still allocated 64 KiB (GC 3.2 s → 0.7 s of the profile with a buffer of the file's size). The small-file path of the local target writes, sets the mtime, reads back and renames with synchronous calls (7 fewer thread-pool round trips per file; user time ~20 % lower, A/B over 3 runs each). Still missed, by measure: (1) durability itself: Stagecoach fsyncs each file and each folder it renamed into before the journal says done (the crash loop checks this); rclone and cp -r fsync nothing, and their copies are only in the page cache when they exit; (2) kernel time, ~2/3 of the daemon's CPU: `perf` puts ~14 % of samples in ext4_create's search for recently deleted inodes (every tool pays it, the bench deletes a tree per run), ~15 % in thread-pool wake-ups (futex, uv__work_submit: the source is still read through a stream, open, two reads and close on the thread pool, and the temp file's open, fsync and close); (3) the journal and pipeline per file (record, lease, complete, events). Next: read small sources with synchronous calls too (needs the PutRequest to offer the descriptor p13 opens), one syncfs or a batch of fdatasync per batch instead of an fsync per file (the renames then wait for the whole batch), and a batched put API so that one uploader call carries a whole lease.",
  'pipeline-efficiency':
    'Issue 19 round: not worked on beyond what every target shares (completions committed as a group, one lease per event-loop turn); this run had the 2 cores at a load average of 5 at its start and 10–16 around it from other work, so the daemon and the four emulators waited for CPU, and the figures are below the previous run\'s. The ≤ 1 ms of main-thread CPU per delivery is not measured yet; the profile below is the previous round\'s. Requests per file are counted by path now (the previous run counted Drive\'s list queries, whose query string asks for `nextPageToken`, as token requests: Drive makes 2 requests per new file, a name lookup that keeps it free of duplicates and the upload). Every target reaches 0.57–0.78 of its ideal with all four at once; Box alone reaches ~0.73. The daemon is not CPU-saturated (~55 % of a core), so the loss is time per upload outside the emulated latency: each delivery costs ~4 ms of main-thread CPU (journal lease and complete ~0.3 ms; the SDK per request: Box 1.1 ms, Drive 0.75 ms, OneDrive 0.4 ms, Dropbox 0.3 ms in `--cpu-prof`; stat and read of the source; p-retry and abort-signal set-up), every upload of the four targets waits its turn on that one thread, and the emulators run on the same two cores. The Dropbox target\'s AsyncLocalStorage turns on Node 20\'s promise hooks for the whole process (~10 % more CPU on every promise, measured on the local target). Next: lease and complete in batches, drop the AsyncLocalStorage, keep-alive agents checked per SDK.',
  watching:
    'Issue 19 item 5 (measured 2026-12-06 on the shared 2 cores, load average 5–8, `node dist/bench/watching.js --files 1000000 --runs 1 --dir /dev/shm` and `--files 100000 --runs 1 --dir /dev/shm` with the code before and after in the same session): chokidar kept an entry, a stat and an fs.watch of its own for every file, 8,855 B/file above the idle RSS at 100k (844 MiB; ~9 GB for a million), live after 49.7 s. Now chokidar is given the folders only: its `ignored` drops every file and link, each folder\'s inotify watch names the child that changed (its `raw` event) and the watcher stats that child itself, and the folders are handed to chokidar 8 at a time (`depth: 0`) instead of its own walk with every folder\'s read in flight at once, whose freed requests the process kept (~1.6 KB a file of RSS outside the JS heap). One inotify watch per folder: 11,001 for a million files in folders of 100 (max_user_watches here 192,540). A million files: 136 B/file above a 62 MiB idle RSS (130 MiB, peak 568 MiB, including what the three journal-index reads of a scan leave behind; the index itself is dropped after each scan) — met. 100k (same session): 8,855 → 500 B/file (48 MiB; chokidar alone 6,930 B/file), live 49.7 s → 3.0 s (3.9× a 0.77 s bare walk; chokidar alone 17.5 s). Time to every file watched live is missed: 52.1 s against a 3.74 s bare walk (13.9×) at a million: the initial walk against the index 9.9 s (2.65× the bare walk: reading the index and the filter), then chokidar reads each folder and lstats every child asynchronously (readdirp with `alwaysStat`, its filters per entry) ~30 s, then the walk after `ready`, ~10 s. Closing it would need chokidar to watch a folder without reading it (it stats every child when a folder is added) or the index read while the walk runs (issue 19 item 3).',
  restart:
    'Issue 19 round: 3.3× the bare walk in this run (4.4× in the previous one; the walk itself took twice as long on this loaded machine, so the ratio is not a like-for-like gain). Not worked on yet: each provider\'s module is imported when its target is made (src/targets/<id>/provider.ts), and every target is made at start, so the cloud SDKs still load before the walk; importing them on a target\'s first upload, and reading the journal index while the walk runs, would close it. Start to idle at 100k archived files went from ~36 s to ~2.4 s: the initial scan is now a plain walk against the journal index (chokidar\'s own initial scan took 29 s), and live watching is set up after idle (~13 s more in the background, see watching); the Box target imports only the SDK modules it uses (its index loads every manager of the API: 1.1 s → 0.4 s) and OneDrive loads MSAL\'s one-file CommonJS build (~0.1 s against 0.3–0.5 s). Of the 2.4 s, 1.3 s pass before the walk starts (`stagecoach running`): Node and the core modules ~0.5 s, the cloud SDKs ~0.8 s, imported when the targets are made; then the journal index (~0.5 s) and the walk with the filter (~0.5 s). Against a fresh node process that walks the same tree (0.67 s) it is 3.6×. ≤ 2× of the in-process walk (0.54 s) is out of reach for a Node daemon that must also read its journal: Node and the core modules alone take ~0.5 s. Closer would need the SDKs imported on a target\'s first upload (a restart with nothing to send would never load them) and the index read while the walk runs. The Docker image (Node 24) keeps Node\'s compile cache, which this Node 20 run does not show. No request reaches the clouds and the journal is unchanged after every restart (checked).',
  'large-files':
    'Issue 19\'s fair baselines (cp of the same file for the local target; a raw PUT to a loopback server that writes and fsyncs for the clouds; CPU seconds per GiB) are not measured yet: the ratios below are still against the discard server. The raw PUT is node:http streaming a page-cached file to a discard server that keeps nothing, so it measures loopback HTTP alone; every target also has to store the bytes. A `--cpu-prof` of `backfill --once` of 1 GiB to the local target: 6.8 s wall, the main thread idle 3.9 s of it (waiting on writes to ext4 and the fsync that makes the copy durable: the disk is the bound), sha256 `update` 1.3 s, reads 0.5 s. The clouds\' figures also include the emulators writing every byte to disk in their own process on the same 2 shared cores (Box keeps the parts and concatenates them), the target\'s hash (md5 for Drive: ~0.5 GB/s on this CPU, see hashing) and its HTTP client. A fair baseline for the ≥ 0.8 goal would be a raw PUT to a server that writes to disk (or `cp` for the local target); that is not measured yet. Memory is within the budget for every target.',
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
