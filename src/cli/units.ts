import { KataError } from '../errors.js';

function bad(msg: string): KataError {
  return new KataError('E_INVALID_ARGUMENT', msg);
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** A Go duration ("5s", "100ms", "1m30s", "1.5h") in milliseconds; must be positive. */
export function parseDuration(text: string): number {
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ''] ?? NaN);
    matched = re.lastIndex;
  }
  if (text === '' || matched !== text.length || !Number.isFinite(total)) throw bad(`invalid duration ${JSON.stringify(text)}`);
  if (total <= 0) throw bad('duration interval must be greater than 0');
  return total;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * A memory size as runc reads it (docker's units.RAMInBytes): a number with an optional binary
 * suffix (k, kb, kib, m, ... case-insensitive). `-1` means unlimited where runc allows it.
 */
export function parseBytes(text: string, allowUnlimited = false): number {
  if (allowUnlimited && text === '-1') return -1;
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(i?b)?$/i.exec(text.trim());
  if (m === null) throw bad(`invalid size: ${JSON.stringify(text)}`);
  const n = Number(m[1]) * (SIZE_UNITS[(m[2] ?? '').toLowerCase()] ?? NaN);
  if (!Number.isSafeInteger(Math.floor(n))) throw bad(`invalid size: ${JSON.stringify(text)}`);
  return Math.floor(n);
}

/** A decimal integer flag value (runc parses them with strconv). */
export function parseInteger(text: string, flag: string, min = -(2 ** 53), max = 2 ** 53): number {
  if (!/^-?[0-9]+$/.test(text)) throw bad(`invalid value ${JSON.stringify(text)} for flag --${flag}`);
  const n = Number(text);
  if (n < min || n > max) throw bad(`invalid value ${JSON.stringify(text)} for flag --${flag}: out of range`);
  return n;
}
