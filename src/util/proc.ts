import fs from 'node:fs';

export interface ProcInfo {
  /** One-letter state from /proc/<pid>/stat: R, S, D, Z, T, ... */
  state: string;
  /** Start time in clock ticks after boot (field 22): with the pid, it names a process uniquely. */
  startTime: string;
}

/** Reads /proc/<pid>/stat; undefined if the process does not exist. */
export function procInfo(pid: number): ProcInfo | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = stat.slice(close + 2).split(' ');
  const state = fields[0];
  const startTime = fields[19];
  if (state === undefined || startTime === undefined) return undefined;
  return { state, startTime };
}

/** True if pid is the same live process (not a zombie) that was recorded with startTime. */
export function isAlive(pid: number, startTime: string | undefined): boolean {
  const info = procInfo(pid);
  if (info === undefined) return false;
  if (info.state === 'Z' || info.state === 'X') return false;
  return startTime === undefined || info.startTime === startTime;
}
