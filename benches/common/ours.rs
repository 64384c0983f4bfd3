//! Our stores, as both benchmark programs drive them: backends that make a fresh place and
//! reopen it, and the two APIs (typed `Store`, byte-level `Engine`) doing the same writes,
//! point reads and scans. Included with `#[path]` by `benches/engines.rs` and
//! `benches/peers`, next to `workload.rs`.

#![allow(dead_code)]

use std::ops::Bound;
use std::path::PathBuf;

use kv_db::backends::{FileStorage, MemoryStorage};
use kv_db::engine::{KeyRange, WriteBatch};
use kv_db::{Durability, Engine, Options, Storage, Store};
use serde_bytes::ByteBuf;

use crate::workload::{self, SCAN_LEN};

/// The slot every workload writes.
pub const SLOT: u8 = 0;

// Backends: a fresh, empty storage per store, and a way to reopen the same data.

/// A place a store lives: memory (a cloneable handle) or a temporary directory.
pub trait Backend: 'static {
    type S: Storage;
    const NAME: &'static str;
    /// A fresh, empty place.
    fn fresh() -> Self;
    /// A storage handle on this place's data (the same data every call).
    async fn storage(&self) -> Self::S;
    /// Bytes of this place's files, as the OS (or the memory backend) counts them.
    fn bytes(&self) -> u64;
}

pub struct Memory(pub MemoryStorage);

impl Backend for Memory {
    type S = MemoryStorage;
    const NAME: &'static str = "memory";
    fn fresh() -> Self {
        Memory(MemoryStorage::new())
    }
    async fn storage(&self) -> MemoryStorage {
        self.0.clone()
    }
    fn bytes(&self) -> u64 {
        self.0.total_bytes()
    }
}

pub struct Files(pub tempfile::TempDir);

impl Backend for Files {
    type S = FileStorage;
    const NAME: &'static str = "file";
    fn fresh() -> Self {
        let root = workload::temp_root();
        Files(
            tempfile::Builder::new()
                .prefix("kv-bench-")
                .tempdir_in(&root)
                .unwrap_or_else(|e| panic!("temp dir in {}: {e}", root.display())),
        )
    }
    async fn storage(&self) -> FileStorage {
        let path: PathBuf = self.0.path().into();
        FileStorage::open(&path).await.expect("open FileStorage")
    }
    fn bytes(&self) -> u64 {
        workload::dir_bytes(self.0.path())
    }
}

/// A store on a place that outlives it (so the store can be closed and reopened).
pub struct Opened<E: Engine, B: Backend> {
    pub store: Store<E>,
    pub place: B,
}

/// The options our stores are opened with: the defaults, with the run's cache budget
/// ([`workload::cache_bytes`]).
pub fn options() -> Options {
    match workload::cache_bytes() {
        Some(bytes) => Options::default().cache_size(bytes),
        None => Options::default(),
    }
}

pub async fn open_on<E: Engine<Storage = B::S>, B: Backend>(place: &B) -> Store<E> {
    Store::open_with(place.storage().await, options())
        .await
        .unwrap_or_else(|e| panic!("open {} on {}: {e}", E::NAME, B::NAME))
}

pub async fn fresh_store<E: Engine<Storage = B::S>, B: Backend>() -> Opened<E, B> {
    let place = B::fresh();
    let store = open_on::<E, B>(&place).await;
    Opened { store, place }
}

// The two APIs. Typed: `u128` keys (16 bytes, 17 encoded) and byte-string values (100 bytes,
// 101 encoded). Byte-level: the same 16 key bytes and 100 value bytes, unencoded.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Api {
    /// `Store` / `Transaction`.
    Typed,
    /// `Engine::commit`, `Engine::get`, `Engine::scan`.
    Bytes,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::Typed => "store",
            Api::Bytes => "engine",
        }
    }
}

pub const APIS: [Api; 2] = [Api::Typed, Api::Bytes];

/// Writes keys `ids` (version `version`, `len`-byte values) in one transaction.
pub async fn put<E: Engine>(
    store: &Store<E>,
    api: Api,
    ids: std::ops::Range<u64>,
    version: u64,
    len: usize,
    durability: Durability,
) {
    match api {
        Api::Typed => {
            let mut txn = store.current();
            txn.set_durability(durability);
            for i in ids {
                txn.insert(
                    SLOT,
                    &workload::key_u128(i),
                    ByteBuf::from(workload::value(i, version, len)),
                )
                .expect("insert");
            }
            txn.commit().await.expect("commit");
        }
        Api::Bytes => {
            let engine = store.engine();
            let mut batch = WriteBatch::new(engine.snapshot().expect("snapshot"));
            batch.durability = Some(durability);
            for i in ids {
                batch = batch.write(
                    SLOT,
                    workload::key(i).to_vec(),
                    Some(workload::value(i, version, len)),
                );
            }
            engine.commit(batch).await.expect("commit");
        }
    }
}

/// Writes keys `0..n` in transactions of `batch` keys.
pub async fn fill<E: Engine>(
    store: &Store<E>,
    api: Api,
    n: usize,
    batch: usize,
    version: u64,
    len: usize,
    durability: Durability,
) {
    let mut start = 0u64;
    while start < n as u64 {
        let end = (start + batch as u64).min(n as u64);
        put(store, api, start..end, version, len, durability).await;
        start = end;
    }
}

/// `count` random point reads of keys `0..n` from one snapshot; panics on a missing key.
pub async fn read_random<E: Engine>(store: &Store<E>, api: Api, n: usize, count: u64, seed: u64) {
    let mut rng = workload::Rng::new(seed);
    match api {
        Api::Typed => {
            let snap = store.snapshot();
            for _ in 0..count {
                let i = rng.index(n) as u64;
                let v: Option<ByteBuf> = snap.get(SLOT, &workload::key_u128(i)).await.expect("get");
                assert!(v.is_some(), "key {i} missing");
            }
        }
        Api::Bytes => {
            let engine = store.engine();
            let snap = engine.snapshot().expect("snapshot");
            for _ in 0..count {
                let i = rng.index(n) as u64;
                // The value where it lies, not copied out (as the peers' reads, where their
                // API allows).
                let mut found = false;
                let mut seen = |v: Option<&[u8]>| found = v.is_some_and(|v| !v.is_empty());
                engine
                    .get_with(SLOT, &workload::key(i), snap.seq(), &mut seen)
                    .await
                    .expect("get");
                assert!(found, "key {i} missing");
            }
        }
    }
}

/// `count` ordered scans of [`SCAN_LEN`] entries from random keys of `0..n`.
pub async fn scan_random<E: Engine>(store: &Store<E>, api: Api, n: usize, count: u64, seed: u64) {
    let mut rng = workload::Rng::new(seed);
    match api {
        Api::Typed => {
            let snap = store.snapshot();
            for _ in 0..count {
                let start = workload::key_u128(rng.index(n) as u64);
                let rows: Vec<(u128, ByteBuf)> = snap
                    .range(SLOT, start..)
                    .limit(SCAN_LEN)
                    .await
                    .expect("range");
                assert!(!rows.is_empty(), "scan from an existing key found nothing");
            }
        }
        Api::Bytes => {
            let engine = store.engine();
            let snap = engine.snapshot().expect("snapshot");
            for _ in 0..count {
                let start = workload::key(rng.index(n) as u64).to_vec();
                let range = KeyRange {
                    start: Bound::Included(start),
                    end: Bound::Unbounded,
                };
                let rows = engine
                    .scan(SLOT, &range, snap.seq(), false, SCAN_LEN)
                    .await
                    .expect("scan");
                assert!(!rows.is_empty(), "scan from an existing key found nothing");
            }
        }
    }
}
