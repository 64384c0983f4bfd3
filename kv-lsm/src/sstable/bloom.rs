//! The per-table bloom filter over user keys (slot + key, without sequence numbers), so a point
//! read of any version skips tables that cannot hold the key.
//!
//! Layout: `bits ... | k (u8) | crc32 (u32 LE)`. Probes use double hashing (`h + i * delta`) of
//! one 64-bit hash, as in LevelDB, each mapped onto the bit array by a multiply-shift;
//! `k = bits_per_key * ln 2` is the optimal probe count.

use kv_api::{Error, Result};
use kv_engine_kit::bytes;

/// Bits per key of the filters this crate writes: ~1% false positives.
pub(crate) const BITS_PER_KEY: usize = 10;

fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The 64-bit hash the filter is built on (a MurmurHash3-style mix of 8-byte words). Part of
/// the table format: changing it makes existing filters answer wrongly.
pub(crate) fn hash(data: &[u8]) -> u64 {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let mut h = 0x9e37_79b9_7f4a_7c15 ^ (data.len() as u64).wrapping_mul(C2);
    let (words, rest) = data.as_chunks::<8>();
    for w in words {
        let mut k = u64::from_le_bytes(*w);
        k = k.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h = (h ^ k)
            .rotate_left(27)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
    }
    let mut tail = [0u8; 8];
    for (d, s) in tail.iter_mut().zip(rest) {
        *d = *s;
    }
    let tail = u64::from_le_bytes(tail);
    h ^= tail.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    fmix(h)
}

fn probes(h: u64, bits: u64, k: u8) -> impl Iterator<Item = u64> {
    let delta = h.rotate_left(21) | 1;
    // Multiply-shift maps a 64-bit probe onto `0..bits` without a division.
    (0..u64::from(k)).map(move |i| {
        let x = h.wrapping_add(i.wrapping_mul(delta));
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "a product of two u64 fits in a u128"
        )]
        let scaled = u128::from(x) * u128::from(bits);
        (scaled >> 64) as u64
    })
}

/// Builds a filter for keys with the given hashes.
#[expect(
    clippy::arithmetic_side_effects,
    reason = "`hashes` holds 8 bytes per key in memory, the filter `bits_per_key` (10) bits: \
              its size in bits, and in bytes times 8, stays far below usize::MAX"
)]
pub(crate) fn build(hashes: &[u64], bits_per_key: usize) -> Vec<u8> {
    let bits = (hashes.len() * bits_per_key).max(64);
    let bytes = bits.div_ceil(8);
    let bits = (bytes * 8) as u64;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "clamped to 1..=30 before the cast"
    )]
    let k = ((bits_per_key as f64) * std::f64::consts::LN_2)
        .round()
        .clamp(1.0, 30.0) as u8;
    let mut out = vec![0u8; bytes];
    for &h in hashes {
        for bit in probes(h, bits, k) {
            #[expect(
                clippy::indexing_slicing,
                reason = "a probe is below `bits`, 8 times `out.len()`"
            )]
            {
                out[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
    }
    out.push(k);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A decoded filter.
#[derive(Debug)]
pub(crate) struct Bloom {
    bits: Vec<u8>,
    /// `8 * bits.len()`.
    nbits: u64,
    k: u8,
}

impl Bloom {
    /// Checks and decodes a filter read from `file` at `offset`.
    pub fn decode(mut raw: Vec<u8>, file: &str, offset: u64) -> Result<Bloom> {
        // `at` is inside the filter, read from the file at `offset`: the sum cannot saturate.
        let bad =
            |at: usize, why: &str| Error::corruption(file, offset.saturating_add(at as u64), why);
        let short = || bad(0, "filter shorter than its trailer");
        if raw.len() < 6 {
            return Err(short());
        }
        let crc_at = raw.len().checked_sub(4).ok_or_else(short)?;
        let k_at = raw.len().checked_sub(5).ok_or_else(short)?;
        let stored = bytes::u32_at(&raw, crc_at).ok_or_else(short)?;
        if crc32fast::hash(raw.get(..crc_at).ok_or_else(short)?) != stored {
            return Err(bad(crc_at, "filter crc mismatch"));
        }
        let k = *raw.get(k_at).ok_or_else(short)?;
        if k == 0 || k > 30 {
            return Err(bad(k_at, "impossible filter probe count"));
        }
        raw.truncate(k_at);
        let nbits = u64::try_from(raw.len())
            .ok()
            .and_then(|n| n.checked_mul(8))
            .ok_or_else(|| bad(0, "filter too large"))?;
        Ok(Bloom {
            bits: raw,
            nbits,
            k,
        })
    }

    /// False if no key with hash `h` was added; true if one may have been.
    pub fn may_contain(&self, h: u64) -> bool {
        probes(h, self.nbits, self.k).all(|bit| {
            self.bits
                .get((bit / 8) as usize)
                .is_some_and(|b| b & (1 << (bit % 8)) != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_low_false_positive_rate() {
        let n = 100_000u32;
        let key = |i: u32| {
            let mut k = vec![0u8];
            k.extend_from_slice(format!("user-key-{i}").as_bytes());
            k
        };
        let hashes: Vec<u64> = (0..n).map(|i| hash(&key(i))).collect();
        let bloom = Bloom::decode(build(&hashes, BITS_PER_KEY), "f", 0).expect("decode");
        assert!(
            (0..n).all(|i| bloom.may_contain(hash(&key(i)))),
            "false negative"
        );
        let fp = (n..2 * n)
            .filter(|&i| bloom.may_contain(hash(&key(i))))
            .count();
        let rate = fp as f64 / f64::from(n);
        println!(
            "bloom filter: {BITS_PER_KEY} bits/key, false-positive rate {:.3}% over {n} absent keys",
            rate * 100.0
        );
        assert!(rate < 0.02, "false-positive rate {rate}");
    }

    #[test]
    fn corruption_is_typed() {
        let raw = build(&[1, 2, 3], BITS_PER_KEY);
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x10;
            assert!(matches!(
                Bloom::decode(bad, "f", 7),
                Err(Error::Corruption { .. })
            ));
        }
        assert!(matches!(
            Bloom::decode(vec![1, 2], "f", 0),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn empty_filter_rejects() {
        let bloom = Bloom::decode(build(&[], BITS_PER_KEY), "f", 0).expect("decode");
        assert!(!bloom.may_contain(hash(b"x")));
    }
}
