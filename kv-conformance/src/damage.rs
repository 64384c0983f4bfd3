//! Seeded damage to the files of a store, for the `damage_seeded` case
//! ([`crate::cases::damage::seeded`]): what a disk, a careless copy or an operator can do to
//! them, picked by a [`Rng`] so that every damage reproduces from its seed.
//!
//! Engine-neutral: files are told apart only by the shape of their names ([`kind`]: digits
//! stand for an id), so every kind of file an engine writes gets hit without this module
//! knowing any engine's names. Offsets lean towards the first and last bytes of a file
//! (headers, the torn tail of a log) and frame lengths are found through the shared log
//! format ([`kv_engine_kit::frame`]).

use std::collections::BTreeMap;
use std::fmt;

use kv_engine_kit::{frame, txlog};

use crate::Rng;

/// Every file of a store with its contents, as [`crate::dump`] returns them.
pub(crate) type Files = BTreeMap<String, Vec<u8>>;

/// Bytes at either end of a file that offsets lean towards.
const EDGE: u64 = 24;

/// One damage to the files of a store.
#[derive(Debug, Clone)]
pub(crate) enum Damage {
    /// The file cut to `len` bytes.
    Truncate { file: String, len: usize },
    /// These bits (bit offsets in the file) flipped.
    Flip { file: String, bits: Vec<usize> },
    /// `len` bytes from `at` set to zero.
    Zero { file: String, at: usize, len: usize },
    /// Bytes from `at` overwritten with random ones.
    Garbage {
        file: String,
        at: usize,
        bytes: Vec<u8>,
    },
    /// The file deleted.
    Delete { file: String },
    /// `to` replaced by a copy of `from`.
    CopyOver { from: String, to: String },
    /// The contents of two files exchanged.
    Swap { a: String, b: String },
    /// Bytes appended.
    AppendJunk { file: String, bytes: Vec<u8> },
    /// The 4 bytes at `at` (a frame's length field where one is found) set to `value`
    /// (little-endian, as the frames write lengths); they held `was`.
    ForgeLength {
        file: String,
        at: usize,
        value: u32,
        was: u32,
    },
}

/// The kind of a file: its name with every run of digits written `#`, so `00000007.log`
/// and `00000012.log` are one kind and `MANIFEST` is its own.
pub(crate) fn kind(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// True if `name` is the newest (largest id) file of its numbered kind, such as a store's
/// newest log file (which may be the only one of its kind).
pub(crate) fn is_newest_of_its_kind(name: &str, files: &Files) -> bool {
    let k = kind(name);
    k.contains('#')
        && files
            .keys()
            .rfind(|n| kind(n) == k)
            .is_some_and(|n| n == name)
}

/// True if `damage` cuts the newest log file of the store exactly after a whole transaction
/// (the shared log format, [`kv_engine_kit::txlog`], after the file's header): what is left is
/// byte for byte the file a crash just before the lost appends would leave. No file of the
/// store witnesses the lost commits, so no engine can tell this from a crash (docs/format.md,
/// "What is not detected"): the suite counts it apart instead of as a silent loss.
pub(crate) fn cuts_log_at_a_commit(damage: &Damage, files: &Files) -> bool {
    let Damage::Truncate { file, len } = damage else {
        return false;
    };
    let Some(bytes) = files.get(file) else {
        return false;
    };
    let Some(kept) = bytes.get(..*len) else {
        return false;
    };
    let from = kv_engine_kit::header::LEN;
    // A cut right after the header leaves the file as it was created, before its first
    // commit: a crash state as well.
    is_newest_of_its_kind(file, files)
        && kept.len() >= from
        && kv_engine_kit::txlog::replay(
            kept,
            from,
            file,
            true,
            txlog::Follows::Above(0),
            |_| Ok(()),
        )
        .is_ok_and(|end| end.dropped.is_none() && end.valid_len == kept.len() as u64)
}

impl Damage {
    /// The names of the damage kinds, in the order [`Damage::pick`] draws them.
    pub const KINDS: [&'static str; 9] = [
        "truncate",
        "flip",
        "zero",
        "garbage",
        "delete",
        "copy over",
        "swap",
        "append junk",
        "forge length",
    ];

    /// A damage to `files` (at least one) drawn from `rng`.
    pub fn pick(rng: &mut Rng, files: &Files) -> Damage {
        let file = pick_file(rng, files);
        let data = &files[&file];
        let len = data.len() as u64;
        match rng.below(Self::KINDS.len() as u64) {
            0 => Damage::Truncate {
                len: pick_offset(rng, len) as usize,
                file,
            },
            1 => {
                let base = pick_offset(rng, len);
                let span = (len - base.min(len)).clamp(1, 64);
                let bits = (0..1 + rng.below(8))
                    .map(|_| ((base + rng.below(span)) * 8 + rng.below(8)) as usize)
                    .collect();
                Damage::Flip { file, bits }
            }
            2 => {
                let at = pick_offset(rng, len);
                let n = pick_span(rng, len - at.min(len));
                Damage::Zero {
                    file,
                    at: at as usize,
                    len: n as usize,
                }
            }
            3 => {
                let at = pick_offset(rng, len);
                let n = pick_span(rng, len - at.min(len));
                Damage::Garbage {
                    file,
                    at: at as usize,
                    bytes: random_bytes(rng, n),
                }
            }
            4 => Damage::Delete { file },
            5 | 6 => {
                let other = pick_other(rng, files, &file);
                if rng.below(2) == 0 {
                    Damage::CopyOver {
                        from: other,
                        to: file,
                    }
                } else {
                    Damage::Swap { a: file, b: other }
                }
            }
            7 => {
                let n = 1 + rng.below(64);
                let bytes = match rng.below(4) {
                    0 => vec![0; n as usize],
                    // The file's own last bytes again: a replayed record.
                    1 => data[data.len().saturating_sub(n as usize)..].to_vec(),
                    _ => random_bytes(rng, n),
                };
                Damage::AppendJunk { file, bytes }
            }
            _ => {
                let at = length_field(rng, data);
                let was = read_u32(data, at);
                let value = match rng.below(6) {
                    0 => u32::MAX,
                    1 => 0x8000_0000 + rng.below(1 << 31) as u32,
                    2 => u32::MAX - rng.below(1 << 12) as u32,
                    3 => was.wrapping_add(1 + rng.below(8) as u32),
                    4 => was.wrapping_sub(1 + rng.below(8) as u32),
                    _ => was.wrapping_add(data.len() as u32),
                };
                Damage::ForgeLength {
                    file,
                    at,
                    value,
                    was,
                }
            }
        }
    }

    /// The name of this damage's kind (one of [`Damage::KINDS`]).
    pub fn kind(&self) -> &'static str {
        let i = match self {
            Damage::Truncate { .. } => 0,
            Damage::Flip { .. } => 1,
            Damage::Zero { .. } => 2,
            Damage::Garbage { .. } => 3,
            Damage::Delete { .. } => 4,
            Damage::CopyOver { .. } => 5,
            Damage::Swap { .. } => 6,
            Damage::AppendJunk { .. } => 7,
            Damage::ForgeLength { .. } => 8,
        };
        Self::KINDS[i]
    }

    /// The damage applied to `files`.
    pub fn apply(&self, files: &mut Files) {
        let Some(first) = self.first_file() else {
            return;
        };
        let mut data = files.get(first).cloned().unwrap_or_default();
        match self {
            Damage::Truncate { len, .. } => data.truncate(*len),
            Damage::Flip { bits, .. } => {
                for bit in bits {
                    if let Some(b) = data.get_mut(bit / 8) {
                        *b ^= 1 << (bit % 8);
                    }
                }
            }
            Damage::Zero { at, len, .. } => {
                let end = (at + len).min(data.len());
                data[(*at).min(end)..end].fill(0);
            }
            Damage::Garbage { at, bytes, .. } => overwrite(&mut data, *at, bytes),
            Damage::AppendJunk { bytes, .. } => data.extend_from_slice(bytes),
            Damage::ForgeLength { at, value, .. } => {
                overwrite(&mut data, *at, &value.to_le_bytes())
            }
            Damage::Delete { file } => {
                files.remove(file);
                return;
            }
            Damage::CopyOver { from, to } => {
                if let Some(copy) = files.get(from).cloned() {
                    files.insert(to.clone(), copy);
                }
                return;
            }
            Damage::Swap { a, b } => {
                if let (Some(x), Some(y)) = (files.get(a).cloned(), files.get(b).cloned()) {
                    files.insert(a.clone(), y);
                    files.insert(b.clone(), x);
                }
                return;
            }
        }
        files.insert(first.to_string(), data);
    }

    /// Every file the damage changes or removes.
    pub fn files(&self) -> Vec<&str> {
        match self {
            Damage::Swap { a, b } => vec![a, b],
            other => other.first_file().into_iter().collect(),
        }
    }

    /// The file whose contents change (for a copy the one overwritten, for a swap the first).
    fn first_file(&self) -> Option<&str> {
        match self {
            Damage::Truncate { file, .. }
            | Damage::Flip { file, .. }
            | Damage::Zero { file, .. }
            | Damage::Garbage { file, .. }
            | Damage::Delete { file }
            | Damage::AppendJunk { file, .. }
            | Damage::ForgeLength { file, .. } => Some(file),
            Damage::CopyOver { to, .. } => Some(to),
            Damage::Swap { a, .. } => Some(a),
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Truncate { file, len } => write!(f, "truncate {file} to {len} bytes"),
            Damage::Flip { file, bits } => {
                let at: Vec<String> = bits
                    .iter()
                    .map(|b| format!("{}.{}", b / 8, b % 8))
                    .collect();
                write!(f, "flip bits (byte.bit) {} of {file}", at.join(", "))
            }
            Damage::Zero { file, at, len } => write!(f, "zero {len} bytes of {file} at {at}"),
            Damage::Garbage { file, at, bytes } => {
                write!(
                    f,
                    "overwrite {} bytes of {file} at {at} with garbage",
                    bytes.len()
                )
            }
            Damage::Delete { file } => write!(f, "delete {file}"),
            Damage::CopyOver { from, to } => write!(f, "copy {from} over {to}"),
            Damage::Swap { a, b } => write!(f, "swap {a} and {b}"),
            Damage::AppendJunk { file, bytes } => {
                write!(f, "append {} junk bytes to {file}", bytes.len())
            }
            Damage::ForgeLength {
                file,
                at,
                value,
                was,
            } => write!(f, "forge the u32 at {at} of {file}: {was} -> {value}"),
        }
    }
}

/// A file: first a kind (so that a kind with one file is hit as often as one with many),
/// then, half of the time, the newest file of that kind (the one a log appends to), else any.
fn pick_file(rng: &mut Rng, files: &Files) -> String {
    let mut kinds: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for name in files.keys() {
        kinds.entry(kind(name)).or_default().push(name);
    }
    let names = kinds
        .values()
        .nth(rng.below(kinds.len() as u64) as usize)
        .expect("a store has files");
    let i = if rng.below(2) == 0 {
        names.len() - 1
    } else {
        rng.below(names.len() as u64) as usize
    };
    names[i].clone()
}

/// Another file than `file`: half of the time one of the same kind where there is one.
fn pick_other(rng: &mut Rng, files: &Files, file: &str) -> String {
    let others: Vec<&String> = files.keys().filter(|n| *n != file).collect();
    let same: Vec<&String> = others
        .iter()
        .copied()
        .filter(|n| kind(n) == kind(file))
        .collect();
    let pool = if !same.is_empty() && rng.below(2) == 0 {
        same
    } else {
        others
    };
    match pool.len() {
        0 => file.to_string(),
        n => pool[rng.below(n as u64) as usize].clone(),
    }
}

/// An offset in `0..len` (0 if empty): a third each near the start, near the end, anywhere.
fn pick_offset(rng: &mut Rng, len: u64) -> u64 {
    if len == 0 {
        return 0;
    }
    match rng.below(3) {
        0 => rng.below(len.min(EDGE)),
        1 => len - 1 - rng.below(len.min(EDGE)),
        _ => rng.below(len),
    }
}

/// A length of at least 1 and at most `max` (or 1): short, medium or long.
fn pick_span(rng: &mut Rng, max: u64) -> u64 {
    let cap = [8, 64, 4096][rng.below(3) as usize];
    1 + rng.below(max.min(cap).max(1))
}

fn random_bytes(rng: &mut Rng, n: u64) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

/// Writes `bytes` at `at`, growing nothing: what falls past the end is dropped.
fn overwrite(data: &mut [u8], at: usize, bytes: &[u8]) {
    let end = at.saturating_add(bytes.len()).min(data.len());
    if at < end {
        data[at..end].copy_from_slice(&bytes[..end - at]);
    }
}

fn read_u32(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    for (i, x) in b.iter_mut().enumerate() {
        *x = data.get(at + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

/// Where a length field likely is: the length of the first, the last or any frame of the
/// shared framing ([`frame`]) when the file starts with frames; else a 4-byte aligned offset
/// near the end (a footer's offsets and lengths) or anywhere.
fn length_field(rng: &mut Rng, data: &[u8]) -> usize {
    let mut frames = Vec::new();
    let mut at = 0;
    while let frame::Decoded::Frame { next, .. } = frame::decode(data, at) {
        frames.push(at);
        at = next;
    }
    if !frames.is_empty() {
        let start = match rng.below(3) {
            0 => frames[0],
            1 => frames[frames.len() - 1],
            _ => frames[rng.below(frames.len() as u64) as usize],
        };
        return start + 4;
    }
    let words = data.len() as u64 / 4;
    if words == 0 {
        return 0;
    }
    let word = if rng.below(2) == 0 {
        words - 1 - rng.below(words.min(16))
    } else {
        rng.below(words)
    };
    (word * 4) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_ignore_ids() {
        assert_eq!(kind("00000007.log"), "#.log");
        assert_eq!(kind("00000012.log"), kind("00000007.log"));
        assert_eq!(kind("MANIFEST"), "MANIFEST");
        let files: Files = ["00000001.log", "00000002.log", "00000002.hint", "META"]
            .iter()
            .map(|n| (n.to_string(), Vec::new()))
            .collect();
        assert!(is_newest_of_its_kind("00000002.log", &files));
        assert!(!is_newest_of_its_kind("00000001.log", &files));
        assert!(
            is_newest_of_its_kind("00000002.hint", &files),
            "the only one of its kind"
        );
        assert!(!is_newest_of_its_kind("META", &files));
    }

    /// Every kind of damage is drawn, and applying one changes the files.
    #[test]
    fn every_kind_drawn_and_applied() {
        let mut data = Vec::new();
        for i in 0..5u8 {
            frame::encode(&[i; 40], &mut data);
        }
        let files: Files = [
            ("00000001.log", data.clone()),
            ("00000002.log", data[..60].to_vec()),
        ]
        .into_iter()
        .map(|(n, d)| (n.to_string(), d))
        .collect();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..500 {
            let d = Damage::pick(&mut Rng::new(seed), &files);
            seen.insert(d.kind());
            let mut damaged = files.clone();
            d.apply(&mut damaged);
            if let Damage::ForgeLength { at, .. } = d {
                assert_eq!(at % 48, 4, "{d}: not at a frame's length");
            }
        }
        assert_eq!(seen.len(), Damage::KINDS.len(), "{seen:?}");
    }
}
