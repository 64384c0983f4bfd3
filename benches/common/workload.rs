//! Workload definitions shared by the criterion suite (`benches/engines.rs`) and the peer
//! comparison (`benches/peers`): sizes per scale, the key and value generator.
//!
//! Both include this file with `#[path]`, so the two runs write exactly the same bytes.

#![allow(dead_code)]

/// Key length in bytes (a `u128`, big-endian; typed API: the `u128` itself).
pub const KEY_LEN: usize = 16;
/// Value length in bytes of every workload except `large_values`.
pub const VALUE_LEN: usize = 100;
/// Value length of `large_values`.
pub const LARGE_VALUE_LEN: usize = 64 << 10;
/// Keys per transaction of `fill_batch` (and of the fills that set up other workloads).
pub const BATCH: usize = 1_000;
/// Values per transaction when writing [`LARGE_VALUE_LEN`] values (1 MiB per commit).
pub const LARGE_BATCH: usize = 16;
/// Versions written per key by `overwrite_then_merge`.
pub const VERSIONS: usize = 10;
/// Entries per scan of `scan_100`.
pub const SCAN_LEN: usize = 100;
/// Concurrent committers of `commit_durable` (the group-commit case).
pub const COMMITTERS: usize = 64;

/// Workload sizes of one scale (`KV_BENCH_SCALE`).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// `KV_BENCH_SCALE` value these sizes belong to.
    pub name: &'static str,
    /// `fill_batch`: keys written, in transactions of [`BATCH`]; also the size of the store
    /// that `get_random` and `scan_100` read.
    pub fill: usize,
    /// `commit_durable`: synced single-key commits (in total, over all committers).
    pub durable: usize,
    /// `put_buffered`: buffered single-key commits.
    pub buffered: usize,
    /// `get_random`: point reads (peers binary; criterion picks its own count).
    pub reads: usize,
    /// `scan_100`: scans (peers binary; criterion picks its own count).
    pub scans: usize,
    /// `overwrite_then_merge`: keys, each written [`VERSIONS`] times.
    pub merge_keys: usize,
    /// `reopen`: keys in the store that is reopened.
    pub reopen: usize,
    /// `large_values`: values of [`LARGE_VALUE_LEN`] bytes written, then read.
    pub large: usize,
}

/// `full`: the sizes of the issue (1,000,000-key fills).
pub const FULL: Sizes = Sizes {
    name: "full",
    fill: 1_000_000,
    durable: 5_000,
    buffered: 200_000,
    reads: 1_000_000,
    scans: 100_000,
    merge_keys: 100_000,
    reopen: 1_000_000,
    large: 2_000,
};

/// `default`: a tenth of `full`; the criterion suite runs in about ten minutes on 2 cores.
pub const DEFAULT: Sizes = Sizes {
    name: "default",
    fill: 100_000,
    durable: 1_000,
    buffered: 50_000,
    reads: 200_000,
    scans: 20_000,
    merge_keys: 20_000,
    reopen: 100_000,
    large: 400,
};

/// `tiny`: CI smoke.
pub const TINY: Sizes = Sizes {
    name: "tiny",
    fill: 2_000,
    durable: 64,
    buffered: 1_000,
    reads: 2_000,
    scans: 200,
    merge_keys: 500,
    reopen: 2_000,
    large: 16,
};

/// The sizes chosen by `KV_BENCH_SCALE` (`tiny`, `default`, `full`; unset means `default`).
/// An unknown value stops the run rather than silently measuring something else.
pub fn sizes() -> Sizes {
    match std::env::var("KV_BENCH_SCALE").as_deref() {
        Err(_) | Ok("") | Ok("default") => DEFAULT,
        Ok("tiny") => TINY,
        Ok("full") => FULL,
        Ok(other) => {
            eprintln!("KV_BENCH_SCALE={other}: expected tiny, default or full");
            std::process::exit(2)
        }
    }
}

/// Default read-cache budget of every store, in MiB (see [`cache_bytes`]).
pub const CACHE_MB: usize = 64;

/// The read-cache budget every store gets, in bytes: `KV_BENCH_CACHE_MB` MiB, default
/// [`CACHE_MB`]. Ours: `Options::cache_size`; redb: `set_cache_size`; fjall: `cache_size`;
/// sled: `cache_capacity`; RocksDB: the block cache. One budget for all, so that nobody wins
/// by holding more of the data in memory than the others may. `KV_BENCH_CACHE_MB=default`
/// gives `None`: every store keeps its own default (what a user who sets nothing gets).
pub fn cache_bytes() -> Option<usize> {
    match std::env::var("KV_BENCH_CACHE_MB").as_deref() {
        Err(_) | Ok("") => Some(CACHE_MB << 20),
        Ok("default") => None,
        Ok(mb) => match mb.parse::<usize>() {
            Ok(mb) => Some(mb << 20),
            Err(_) => {
                eprintln!("KV_BENCH_CACHE_MB={mb}: expected a number of MiB");
                std::process::exit(2)
            }
        },
    }
}

/// The generator and hash of the workloads: SplitMix64, so that every run writes and reads the
/// same keys and values. Pick keys with [`Rng::index`] (no division). The one copy is
/// `kv_conformance::rng`, compiled in here by path: the peer comparison, a workspace of its
/// own, needs neither that crate nor its dependencies for it.
#[path = "../../kv-conformance/src/rng.rs"]
mod rng;
pub use rng::{Rng, mix};

/// The `i`-th key as a number: a hash of `i` in the high half (so writes in `i` order land in
/// random key order, as in db_bench's `fillrandom`) and `i` in the low half (so keys are unique).
pub fn key_u128(i: u64) -> u128 {
    ((mix(i ^ 0x5EED) as u128) << 64) | i as u128
}

/// The `i`-th key as bytes ([`KEY_LEN`] bytes, big-endian: byte order is numeric order).
pub fn key(i: u64) -> [u8; KEY_LEN] {
    key_u128(i).to_be_bytes()
}

/// The value of key `i` in its `version`-th write: `len` pseudo-random (incompressible) bytes.
pub fn value(i: u64, version: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng::new(mix(i.wrapping_mul(31).wrapping_add(version)));
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Disk space used by every file under `dir`, recursively: allocated blocks, not apparent
/// length, so a preallocated but empty journal (fjall) does not count as data.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Where the file-backend stores of a run live: `KV_BENCH_DIR`, else the system temp dir
/// (on this machine `/tmp` is on the same disk as the work tree, not a tmpfs).
pub fn temp_root() -> std::path::PathBuf {
    std::env::var_os("KV_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir)
}
