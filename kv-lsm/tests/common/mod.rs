//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use kv_api::{Durability, Engine, KeyRange, Options, Result, Storage, StorageFile, Store, Tuning};
use kv_backends::MemoryStorage;
use kv_lsm::{Lsm, LsmOptions};

pub type Mem = Lsm<MemoryStorage>;

/// The common options and the LSM's own knobs, passed around together by these tests.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    pub options: Options,
    pub tuning: LsmOptions,
}

impl Opts {
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.options.read_only = read_only;
        self
    }

    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.options.segment_size = bytes;
        self
    }

    pub fn durability(mut self, durability: Durability) -> Self {
        self.options.durability = durability;
        self
    }

    pub fn memtable_size(mut self, bytes: usize) -> Self {
        self.tuning.memtable_size = bytes;
        self
    }

    pub fn block_size(mut self, bytes: usize) -> Self {
        self.tuning.block_size = bytes;
        self
    }

    pub fn background(mut self, background: bool) -> Self {
        self.tuning.background = background;
        self
    }

    pub fn compression(mut self, compression: kv_lsm::Compression) -> Self {
        self.tuning.compression = compression;
        self
    }
}

impl From<Options> for Opts {
    fn from(options: Options) -> Self {
        Opts {
            options,
            tuning: LsmOptions::default(),
        }
    }
}

/// Knobs that make the tree deep with little data: tiny memtables, blocks and tables, and
/// flushes/compactions inline so tests are deterministic.
pub fn small() -> Opts {
    Opts {
        options: Options::default(),
        tuning: LsmOptions::small(),
    }
}

/// Every file of a storage with its contents.
pub async fn files<S: Storage>(s: &S) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for name in s.list().await.expect("list") {
        let f = s.open(&name).await.expect("open");
        let len = f.len().await.expect("len") as usize;
        out.insert(name, f.read_at(0, len).await.expect("read"));
    }
    out
}

/// A deep copy of a memory storage (the state a crash would leave, to be edited).
pub async fn copy(files: &BTreeMap<String, Vec<u8>>) -> MemoryStorage {
    let s = MemoryStorage::new();
    for (name, data) in files {
        s.create(name)
            .await
            .expect("create")
            .append(data)
            .await
            .expect("append");
    }
    s
}

/// Opens a typed store on `s`.
pub async fn open(s: &MemoryStorage, opts: impl Into<Opts>) -> Store<Mem> {
    let o = opts.into();
    Store::<Mem>::open_tuned(s.clone(), o.options, o.tuning)
        .await
        .expect("open")
}

/// Opens the raw engine on `s`.
pub async fn engine(s: &MemoryStorage, opts: impl Into<Opts>) -> Mem {
    try_engine(s.clone(), opts).await.expect("open")
}

/// Opens the raw engine on `s`, or says why not.
pub async fn try_engine(s: MemoryStorage, opts: impl Into<Opts>) -> Result<Mem> {
    let o = opts.into();
    Mem::open(s, o.options, o.tuning).await
}

/// The `(key, value)` pairs of a scan of `range` in slot 0 of `e` at `at`.
pub async fn scan_pairs<E: Engine>(
    e: &E,
    range: &KeyRange,
    at: u64,
    reverse: bool,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    e.scan(0, range, at, reverse, limit)
        .await
        .expect("scan")
        .into_iter()
        .map(|en| (en.key, en.value))
        .collect()
}

/// A runtime of two workers, for tests whose tasks must run in parallel.
pub fn parallel_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Names of table files.
pub fn tables(files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    files
        .keys()
        .filter(|n| n.ends_with(".sst"))
        .cloned()
        .collect()
}

/// Names of WAL files.
pub fn wals(files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    files
        .keys()
        .filter(|n| n.starts_with("wal-"))
        .cloned()
        .collect()
}

/// The live entries of slot 0 at the newest version.
pub async fn contents<E: Engine>(e: &E) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let at = e.snapshot().expect("snapshot").seq();
    e.scan(0, &KeyRange::all(), at, false, usize::MAX)
        .await
        .expect("scan")
        .into_iter()
        .map(|en| (en.key, en.value))
        .collect()
}
