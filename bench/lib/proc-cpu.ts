/**
 * CPU time of a process as Linux reports it in /proc/<pid>/stat: user + system time of all its
 * threads (libuv's thread pool included), in seconds, and the same for its children that it has
 * waited for (what `cp` cost, once spawnSync returned).
 */
import { readFileSync } from 'node:fs';

/** The kernel's USER_HZ: /proc reports times in these ticks (100 on every Linux Node runs on). */
const TICKS_PER_SECOND = 100;

function statFields(pid: number | 'self'): string[] | null {
  let s: string;
  try {
    s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: fields restart after it.
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of the process, seconds; null when it is gone. */
export function cpuSeconds(pid: number | 'self'): number | null {
  const f = statFields(pid);
  // After the name: state is field 3, so utime (14) and stime (15) sit at 11 and 12.
  return f ? (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND : null;
}

/** cutime + cstime: the CPU of the children this process has waited for, seconds. */
export function childrenCpuSeconds(pid: number | 'self' = 'self'): number {
  const f = statFields(pid);
  return f ? (Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND : 0;
}
