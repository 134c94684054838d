import os from 'node:os';
import { KataError } from '../errors.js';

const BY_NAME: Readonly<Record<string, number>> = os.constants.signals;

/**
 * Parses a signal as runc's kill does: a number, or a name with or without the SIG prefix, in any
 * case (SIGKILL, KILL, kill, 9). Real-time signals: RTMIN+n / RTMAX-n. 0 is kill(2)'s "is it
 * alive?" probe, which runc accepts too.
 */
export function parseSignal(input: string): number {
  const s = input.trim();
  if (/^[0-9]+$/.test(s)) {
    const n = Number(s);
    // 0 is no signal: runc's `kill ID 0` only checks that the container is not stopped.
    if (n >= 0 && n <= 64) return n;
    throw new KataError('E_INVALID_ARGUMENT', `invalid signal ${JSON.stringify(input)}: numbers go from 0 to 64`);
  }
  const upper = s.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  const rt = /^SIGRT(MIN|MAX)(?:([+-])([0-9]+))?$/.exec(name);
  if (rt) {
    const base = rt[1] === 'MIN' ? 34 : 64;
    const off = rt[3] === undefined ? 0 : Number(rt[3]) * (rt[2] === '-' ? -1 : 1);
    const n = base + off;
    if (n >= 34 && n <= 64) return n;
  } else {
    const n = BY_NAME[name];
    if (n !== undefined && n > 0) return n;
  }
  throw new KataError('E_INVALID_ARGUMENT', `invalid signal ${JSON.stringify(input)}`);
}

export function signalName(n: number): string {
  for (const [name, v] of Object.entries(BY_NAME)) if (v === n) return name;
  return `signal ${n}`;
}
