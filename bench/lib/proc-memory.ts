/**
 * A process's memory as Linux reports it in /proc/<pid>/status: resident set size now (VmRSS)
 * and its high-water mark (VmHWM), which the kernel keeps between our samples, so a spike
 * shorter than the sampling interval is still seen.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface MemorySample {
  /** VmRSS, KiB. */
  rssKiB: number;
  /** VmHWM (peak RSS since start or since the last `resetPeak`), KiB. */
  hwmKiB: number;
}

function field(status: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
  if (!m) throw new Error(`no ${name} in /proc status`);
  return Number(m[1]);
}

/** The process's VmRSS and VmHWM, or null when it is gone. */
export function readMemory(pid: number): MemorySample | null {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  return { rssKiB: field(status, 'VmRSS'), hwmKiB: field(status, 'VmHWM') };
}

/**
 * Resets the process's VmHWM to its current RSS (`echo 5 > /proc/<pid>/clear_refs`, Linux 4.0+).
 * Returns false when the kernel refused (then VmHWM still holds the peak since start).
 */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export const MiB = 1024 * 1024;

/** KiB as MiB, one decimal. */
export function kibToMiB(kib: number): string {
  return (kib / 1024).toFixed(1);
}
