/**
 * A small seeded generator for the property tests (test/unit/hostile-guest.test.ts). Seeded so a
 * failure is reproducible: the seed is printed with the case count, and FUZZ_SEED=<n> replays it;
 * FUZZ_CASES=<n> scales the number of cases.
 */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** mulberry32: a uniform u32. */
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }

  bool(p = 0.5): boolean {
    return this.u32() / 0x100000000 < p;
  }

  pick<T>(xs: readonly T[]): T {
    const x = xs[this.int(xs.length)];
    if (x === undefined) throw new Error('pick from an empty list');
    return x;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** Splits `b` into random chunks (sizes 1..max). */
  chunks(b: Buffer, max = 64): Buffer[] {
    const out: Buffer[] = [];
    for (let off = 0; off < b.length; ) {
      const n = 1 + this.int(max);
      out.push(b.subarray(off, off + n));
      off += n;
    }
    return out;
  }
}

export const FUZZ_SEED = Number(process.env['FUZZ_SEED'] ?? 20261204);
export const FUZZ_SCALE = Number(process.env['FUZZ_CASES'] ?? 1);
