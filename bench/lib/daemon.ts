/**
 * The daemon as production starts it (`node dist/src/cli/main.js run --config …`), with its JSON
 * log lines and a wait for the first line with a given `msg`. The caller MUST `stop()` it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { terminate } from './emulators.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DAEMON_MAIN = path.resolve(HERE, '..', '..', 'src', 'cli', 'main.js');
/** The CLI as production runs it (the package's bin, the Docker image): the bundle of scripts/bundle.mjs. */
export const DAEMON_BUNDLE = path.resolve(HERE, '..', '..', 'bundle', 'main.js');

/** Throws when the build is missing. */
export function requireBuild(): void {
  if (!existsSync(DAEMON_MAIN)) throw new Error(`${DAEMON_MAIN} is missing: run npx tsc -p tsconfig.json first`);
}

/**
 * Bundles the CLI from the tsc build into DAEMON_BUNDLE (scripts/bundle.mjs, the last step of
 * `npm run build`), so a bench started after `npx tsc -p tsconfig.json` runs the code it was
 * built from as production runs it. Throws if the bundling fails.
 */
export function buildBundle(): void {
  requireBuild();
  const script = path.resolve(HERE, '..', '..', '..', 'scripts', 'bundle.mjs');
  const r = spawnSync(process.execPath, [script, '--dist', path.resolve(HERE, '..', '..')], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${script} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
}

/** A pino JSON log line, as far as the benchmarks read it. */
export interface LogEntry {
  level?: number;
  msg?: string;
  time?: string | number;
  [k: string]: unknown;
}

/**
 * One daemon process (`run` by default, or the given command), stdout parsed as JSON log lines
 * (the config must set `log.format: json`); the last 500 are kept for diagnostics.
 */
export class Daemon {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  /** Wall-clock ms at which the process was spawned. */
  readonly startedAt = Date.now();
  #stderr = '';
  #waiters: Array<{ msg: string; resolve: (entry: LogEntry) => void }> = [];

  /** `main`: the CLI file to run (DAEMON_MAIN as tsc builds it, or DAEMON_BUNDLE). */
  constructor(config: string, args: string[] = ['run'], nodeArgs: string[] = [], main = DAEMON_MAIN) {
    this.child = spawn(process.execPath, [...nodeArgs, main, ...args, '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        this.#line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    this.child.stderr!.on('data', (c: Buffer) => {
      this.#stderr = (this.#stderr + c.toString()).slice(-4000);
    });
  }

  #line(line: string): void {
    this.lines.push(line);
    if (this.lines.length > 500) this.lines.shift();
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

  /** The first log line from now on with this `msg`; rejects if the daemon exits or `timeoutMs` passes. */
  waitFor(msg: string, timeoutMs: number): Promise<LogEntry> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the daemon did not log "${msg}" within ${timeoutMs} ms: ${this.warnings().slice(-3).join(' | ')}`)), timeoutMs);
      const onExit = (): void => {
        clearTimeout(timer);
        reject(new Error(`the daemon exited (${this.child.exitCode ?? this.child.signalCode}) before logging "${msg}": ${this.#stderr.trim() || this.warnings().slice(-3).join(' | ')}`));
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

  /** SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs = 15_000): Promise<void> {
    return terminate(this.child, graceMs);
  }
}
