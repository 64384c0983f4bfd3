//! A tiny seeded generator (SplitMix64): deterministic, so every failure reproduces from its
//! seed, and no dependency on `rand` for a few numbers.
//!
//! The one generator of the workspace's tests and benchmarks: crash points and torn lengths
//! in this suite, random histories in the engines' own tests, keys and values of the
//! benchmark workloads (`benches/common/workload.rs`, which also hashes with [`mix`]).
//!
//! The benchmarks compile this file into their own crates by `#[path]` (the peer comparison
//! must not depend on this crate): keep it free of dependencies and of `crate::` paths.

/// SplitMix64.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (`0` if `n == 0`), as the remainder of [`Rng::next_u64`]: the
    /// sequence the seeded cases and tests were written against.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `0..n` (`0` if `n == 0`) by multiply-shift instead of a division: for hot
    /// loops, like the benchmarks' choice of the next key to read. Not the sequence of
    /// [`Rng::below`].
    pub fn index(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash of `z`.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    /// The published SplitMix64 sequence of seed 0 (also pins `below` and `index`, which
    /// seeded tests and the benchmarks' workloads depend on).
    #[test]
    fn known_sequence() {
        use super::Rng;
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
        let mut r = Rng::new(0);
        assert_eq!(r.below(1000), 0xE220_A839_7B1D_CDAF % 1000);
        assert_eq!(
            r.index(1000),
            ((0x6E78_9E6A_A1B9_65F4u128 * 1000) >> 64) as usize
        );
        assert_eq!((r.below(0), r.index(0)), (0, 0));
    }
}
