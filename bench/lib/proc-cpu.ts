/**
 * CPU time of another process, or of one of its threads, as Linux reports it in
 * /proc/<pid>/stat and /proc/<pid>/task/<tid>/stat (utime + stime, in clock ticks). A Node
 * process's main thread has the process's own id as its thread id, so `readCpu(pid, pid)` is the
 * main thread alone (the event loop: JavaScript, and what it runs synchronously), without the
 * thread pool, the garbage collector's helper threads or the compiler's. `childrenCpuSeconds` is
 * the CPU of the children a process has waited for (what `cp` cost, once spawnSync returned).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/** The fields of /proc/<pid>[/task/<tid>]/stat after the command name; null when gone or off Linux. */
function statFields(pid: number | 'self', tid?: number): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU seconds (user + system) of process `pid`, or of its thread `tid`; null when gone or off Linux. */
export function readCpu(pid: number | 'self', tid?: number): number | null {
  const rest = statFields(pid, tid);
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
  return rest ? (Number(rest[11]) + Number(rest[12])) / CLOCK_TICKS : null;
}

/** The same for the whole process (every thread, libuv's pool included). */
export const cpuSeconds = (pid: number | 'self'): number | null => readCpu(pid);

/** cutime + cstime: the CPU of the children this process has waited for, seconds. */
export function childrenCpuSeconds(pid: number | 'self' = 'self'): number {
  const rest = statFields(pid);
  return rest ? (Number(rest[13]) + Number(rest[14])) / CLOCK_TICKS : 0;
}

/** One sample: wall-clock ms and the CPU seconds of each process watched. */
export interface CpuSample {
  at: number;
  cpu: Record<string, number | null>;
}

/**
 * Samples the CPU of the given processes (or threads) every `everyMs` until `stop()`, which
 * returns the samples in order (one more taken at once).
 */
export function sampleCpu(watch: Record<string, { pid: number; tid?: number }>, everyMs = 100): { stop(): CpuSample[] } {
  const samples: CpuSample[] = [];
  const take = (): void => {
    const cpu: Record<string, number | null> = {};
    for (const [name, w] of Object.entries(watch)) cpu[name] = readCpu(w.pid, w.tid);
    samples.push({ at: Date.now(), cpu });
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

/**
 * The widest pair of samples inside wall-clock ms [`from`, `to`] where every process in `names`
 * was alive: its ends and the CPU seconds each used between them; null when fewer than two
 * samples fall inside. Count the work done between `at0` and `at1` to divide by.
 */
export function cpuWithin(samples: CpuSample[], names: string[], from: number, to: number): { at0: number; at1: number; seconds: Record<string, number> } | null {
  const inside = samples.filter((s) => s.at >= from && s.at <= to && names.every((n) => s.cpu[n] != null));
  if (inside.length < 2) return null;
  const a = inside[0]!;
  const b = inside[inside.length - 1]!;
  return { at0: a.at, at1: b.at, seconds: Object.fromEntries(names.map((n) => [n, b.cpu[n]! - a.cpu[n]!])) };
}

/** The parent pid of a process, or null when it is gone. */
function parentOf(pid: number): number | null {
  const rest = statFields(pid);
  // ppid is field 4 of the line, 2 after the name.
  return rest ? Number(rest[1]) : null;
}

/**
 * CPU seconds of the PostgreSQL server this process started (its child named postgres): the
 * postmaster, its live backends and the ones that exited; 0 when it started none.
 */
export function postgresSeconds(): number {
  let total = 0;
  const pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  const master = pids.find((p) => {
    try {
      return parentOf(p) === process.pid && readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'postgres';
    } catch {
      return false;
    }
  });
  if (master === undefined) return 0;
  total += (readCpu(master) ?? 0) + childrenCpuSeconds(master);
  for (const p of pids) if (parentOf(p) === master) total += readCpu(p) ?? 0;
  return total;
}
