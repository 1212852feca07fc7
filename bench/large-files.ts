/**
 * Large files (issue 8, item 3; goals: ≥ 0.8 of a raw streaming HTTP PUT, and peak RSS ≤ 128 MiB
 * above idle).
 *
 *   npx tsc -p tsconfig.json; node dist/bench/large-files.js [--size MiB] [--runs N] [--targets a,b] [--dir DIR]
 *
 * Baseline, in this process: the same number of random bytes read from a file with
 * `createReadStream` (1 MiB chunks) and sent by node:http as one streaming PUT to a discard server
 * on loopback (the server in a child process, so the two do not share a core's event loop), N
 * times. Then bench/upload-rss.js runs (`--size`, `--targets`): the daemon uploads the file once
 * to each target with the emulators in a child process and reports its put rate and its peak RSS
 * above idle. Figures per target: put MB/s ÷ the raw PUT's median, and peak − idle.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MiB } from './lib/proc-memory.js';
import { commandLine, emit, fmt, summarize, table, type Figure } from './lib/report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DISCARD = `
const http = require('node:http');
const s = http.createServer((req, res) => { let n = 0; req.on('data', (c) => { n += c.length; }); req.on('end', () => { res.end(String(n)); }); });
s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
`;

async function rawPut(file: string, port: number, bytes: number): Promise<number> {
  const t = process.hrtime.bigint();
  const agent = new http.Agent({ keepAlive: false });
  const answer = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/discard', agent, headers: { 'content-length': String(bytes), 'content-type': 'application/octet-stream' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
    pipeline(createReadStream(file, { highWaterMark: MiB }), req).catch(reject);
  });
  if (Number(answer) !== bytes) throw new Error(`the discard server got ${answer} of ${bytes} bytes`);
  return bytes / 1e6 / (Number(process.hrtime.bigint() - t) / 1e9);
}

interface RssResult { target: string; ok: boolean; error: string | null; idleKiB: number; peakKiB: number; mbps: number }

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { size: { type: 'string', default: '1024' }, runs: { type: 'string', default: '3' }, targets: { type: 'string', default: 'local,gdrive,dropbox,box,onedrive' }, dir: { type: 'string', default: os.tmpdir() }, budget: { type: 'string', default: '128' } },
  });
  const sizeMiB = Number(values.size);
  const runs = Math.max(1, Math.floor(Number(values.runs)));
  const budget = Number(values.budget);
  const bytes = Math.round(sizeMiB * MiB);
  const work = mkdtempSync(path.join(path.resolve(values.dir), 'stagecoach-bench-large-'));
  const server = spawn(process.execPath, ['-e', DISCARD], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().trim())));
      server.once('exit', (code) => reject(new Error(`the discard server exited (${code})`)));
    });
    const file = path.join(work, 'raw.bin');
    const block = Buffer.allocUnsafe(8 * MiB);
    const fd = openSync(file, 'w');
    for (let off = 0; off < bytes; off += block.length) {
      const n = Math.min(block.length, bytes - off);
      randomFillSync(block, 0, n);
      writeSync(fd, block, 0, n);
    }
    closeSync(fd);
    const raw: number[] = [];
    for (let r = 0; r < runs; r++) raw.push(await rawPut(file, port, bytes));
    rmSync(file);
    const rawS = summarize(raw);
    process.stdout.write(`raw streaming PUT of ${sizeMiB} MiB to a discard server on loopback: ${fmt(rawS, 'MB/s', 0)}\n\nupload-rss (daemon, one upload per target):\n`);

    const rss = spawnSync(process.execPath, [path.join(HERE, 'upload-rss.js'), '--size', String(sizeMiB), '--targets', values.targets, '--dir', work, '--budget', String(budget)], { encoding: 'utf8', timeout: 1_800_000, maxBuffer: 64 * 1024 * 1024 });
    const out = rss.stdout ?? '';
    process.stdout.write(out.split('\n').filter((l) => !l.startsWith('UPLOAD_RSS_JSON')).join('\n'));
    const line = out.split('\n').find((l) => l.startsWith('UPLOAD_RSS_JSON '));
    if (!line) throw new Error(`upload-rss gave no result (exit ${rss.status ?? rss.signal}): ${(rss.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
    const results = JSON.parse(line.slice('UPLOAD_RSS_JSON '.length)) as RssResult[];
    const figures: Figure[] = [];
    const rows: string[][] = [];
    for (const r of results) {
      const ratio = r.mbps / rawS.median;
      const grew = (r.peakKiB - r.idleKiB) / 1024;
      rows.push([r.target, r.ok ? r.mbps.toFixed(0) : 'FAILED', r.ok ? `${ratio.toFixed(2)}×` : '–', r.ok ? grew.toFixed(1) : '–']);
      figures.push({ figure: `large file ${sizeMiB} MiB → ${r.target}: put MB/s ÷ raw streaming PUT`, value: r.ok ? `${ratio.toFixed(2)}× (${r.mbps.toFixed(0)} vs ${rawS.median.toFixed(0)} MB/s)` : `failed: ${r.error ?? ''}`, goal: '≥ 0.8', met: r.ok && ratio >= 0.8 });
      figures.push({ figure: `large file ${sizeMiB} MiB → ${r.target}: peak RSS above idle`, value: r.ok ? `${grew.toFixed(1)} MiB` : 'failed', goal: `≤ ${budget} MiB`, met: r.ok && grew <= budget });
    }
    process.stdout.write(`\n${table(['target', 'put MB/s', 'vs raw PUT', 'peak − idle MiB'], rows)}\n(raw PUT: ${fmt(rawS, 'MB/s', 0)}; each target one upload)\n\n`);
    emit({ script: 'large-files', command: commandLine(), figures });
    return figures.every((f) => f.met) ? 0 : 1;
  } finally {
    server.stdin.end();
    server.kill('SIGTERM');
    rmSync(work, { recursive: true, force: true });
  }
}

process.exitCode = await main();
