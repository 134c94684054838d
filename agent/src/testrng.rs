//! A seeded generator for the agent's property tests (frame, msg, flow and the hostile-host
//! loop test). Deterministic, so a failing case is replayed by its seed (`FUZZ_SEED`);
//! `FUZZ_CASES` scales the number of cases. Not used by the agent itself.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// Seed from `FUZZ_SEED` (default 20261204) plus `salt`, so each test has its own sequence.
    pub fn from_env(salt: u64) -> Rng {
        let seed = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261204u64);
        Rng::new(seed.wrapping_add(salt))
    }

    /// xorshift64*
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-enough integer in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// `n` scaled by `FUZZ_CASES` (a factor, default 1).
pub fn cases(n: u64) -> u64 {
    let scale: f64 = std::env::var("FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    ((n as f64) * scale).max(1.0) as u64
}
