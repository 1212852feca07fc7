/**
 * Starting and stopping the cloud emulators in a child process (bench/lib/emulator-child.ts), so
 * that the process under measurement holds none of their memory, and their blobs stay in one
 * folder the caller owns.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The cloud targets the emulators stand in for. */
export const CLOUDS = ['gdrive', 'dropbox', 'box', 'onedrive'] as const;
export type Cloud = (typeof CLOUDS)[number];

/** The line the child prints once every emulator listens. */
export interface EmulatorReady {
  ready: true;
  pid: number;
  /** A target block per cloud, ready to put in a config's `targets`. */
  targets: Record<Cloud, Record<string, unknown>>;
  /** An access token per cloud, valid an hour, for a client that skips the sign-in (bench/lib/bare-upload.ts). */
  tokens: Record<Cloud, string>;
}

export interface EmulatorChild {
  readonly ready: EmulatorReady;
  readonly process: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /**
   * The requests each emulator has logged since it started: `total`, and `token` (those to its
   * OAuth token endpoint), and the TCP connections it accepted. Rejects when the child does not answer within 5 s.
   */
  requests(): Promise<Record<Cloud, EmulatorCount>>;
}

export interface RequestCount {
  total: number;
  token: number;
}

/**
 * What `requests()` answers: the counts, the TCP connections accepted (keep-alive: far fewer
 * than requests), and the mean ms from a request's arrival to the end of its answer.
 */
export type EmulatorCount = RequestCount & { connections: number; servedMs: number };

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'emulator-child.js');

/** Resolves when `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, SIGKILL after `graceMs`, and wait for the exit. */
export async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  const done = exited(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/**
 * Starts the four emulators in a child whose TMPDIR is `blobDir` (every byte they store lands
 * there). Rejects when the child exits or stays silent for `timeoutMs` before it is ready. The
 * caller MUST `stop()` it, and may then remove `blobDir`. `nodeArgs` go before the script (e.g.
 * `--cpu-prof`).
 */
export async function startEmulatorChild(opts: { blobDir: string; timeoutMs?: number; latencyMs?: number; nodeArgs?: string[] }): Promise<EmulatorChild> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CHILD], {
    env: { ...process.env, TMPDIR: opts.blobDir, STAGECOACH_BENCH_LATENCY_MS: String(opts.latencyMs ?? 0) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  let stopped: Promise<void> | null = null;
  const stop = (graceMs = 10_000): Promise<void> => {
    stopped ??= terminate(child, graceMs);
    return stopped;
  };
  try {
    const ready = await new Promise<EmulatorReady>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`the emulators were not ready within ${opts.timeoutMs ?? 20_000} ms`)), opts.timeoutMs ?? 20_000);
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const nl = out.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out.slice(0, nl)) as EmulatorReady);
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the emulator process exited (${signal ?? code}) before it was ready: ${stderr.trim()}`));
      });
    });
    // Answers to `requests`, one JSON line each, in order (the ready line was read above).
    const pending: Array<(counts: Record<Cloud, EmulatorCount>) => void> = [];
    let lines = '';
    child.stdout.on('data', (c: Buffer) => {
      lines += c.toString();
      for (let nl = lines.indexOf('\n'); nl >= 0; nl = lines.indexOf('\n')) {
        const line = lines.slice(0, nl);
        lines = lines.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as { requests?: Record<Cloud, EmulatorCount> };
          if (msg.requests) pending.shift()?.(msg.requests);
        } catch {
          // not an answer
        }
      }
    });
    const requests = (): Promise<Record<Cloud, EmulatorCount>> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the emulators did not report their requests within 5 s')), 5000);
        pending.push((counts) => {
          clearTimeout(timer);
          resolve(counts);
        });
        child.stdin.write('requests\n');
      });
    return { ready, process: child, stop, requests };
  } catch (err) {
    await stop(2_000);
    throw err;
  }
}
