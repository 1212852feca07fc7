/**
 * What every bench script shares: repeated timing with median and spread, a plain-text table, and
 * the one machine-readable line (`BENCH_RESULT {...}`) that bench/run-all.ts collects into
 * bench/RESULTS.md. A script prints its human table first and that line last.
 */
import { median } from './proc-memory.js';

/** A figure set against its goal, as one row of RESULTS.md. */
export interface Figure {
  /** What is measured, e.g. "hashing, gdrive (md5) ÷ plain read". */
  figure: string;
  /** The measured value as printed (ratio, seconds…), median with its spread. */
  value: string;
  /** The goal as written in the issue, or "–" when the figure is informative only. */
  goal: string;
  /** true/false when there is a goal; null when the figure is informative only. */
  met: boolean | null;
  /** Why a goal is missed, or what the figure means; optional. */
  note?: string;
}

/** The line run-all.ts looks for. */
export const RESULT_PREFIX = 'BENCH_RESULT ';

export interface ScriptResult {
  script: string;
  /** The command that produced the figures, as run. */
  command: string;
  figures: Figure[];
}

/** Prints the machine-readable result line (last line of a script's output). */
export function emit(result: ScriptResult): void {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

/** Median, min, max of repeated measurements; `spread` is (max − min) / median. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  spread: number;
  n: number;
}

/** Median, extremes and spread of a list; NaN fields (n = 0) for an empty one. */
export function summarize(xs: readonly number[]): Summary {
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, spread: NaN, n: 0 };
  const m = median(xs);
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  return { median: m, min, max, spread: m !== 0 ? (max - min) / Math.abs(m) : 0, n: xs.length };
}

/** "0.93× (0.88–0.97, n=5)". */
export function fmtRatio(s: Summary, digits = 2): string {
  return `${s.median.toFixed(digits)}× (${s.min.toFixed(digits)}–${s.max.toFixed(digits)}, n=${s.n})`;
}

/** "1.23 s (1.10–1.40, n=3)" with any unit. */
export function fmt(s: Summary, unit: string, digits = 2): string {
  return `${s.median.toFixed(digits)} ${unit} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)}, n=${s.n})`;
}

/** Quantile (0..1) of a non-empty list, nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i]!;
}

/** A left-aligned first column, right-aligned rest. */
export function table(head: string[], rows: string[][]): string {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The command line this process was started with, relative to the working directory. */
export function commandLine(): string {
  const rel = (p: string): string => (p.startsWith(`${process.cwd()}/`) ? p.slice(process.cwd().length + 1) : p);
  return ['node', ...process.argv.slice(1).map(rel)].join(' ');
}
