//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use kv_api::{Engine, Options, Storage, StorageFile, Store};
use kv_backends::MemoryStorage;
use kv_lsm::Lsm;

pub type Mem = Lsm<MemoryStorage>;

/// Options that make the tree deep with little data: tiny memtables, blocks and tables, and
/// flushes/compactions inline so tests are deterministic.
pub fn small() -> Options {
    Options::default()
        .memtable_size(4 << 10)
        .block_size(512)
        .background(false)
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
pub async fn open(s: &MemoryStorage, options: Options) -> Store<Mem> {
    Store::<Mem>::open_with(s.clone(), options)
        .await
        .expect("open")
}

/// Opens the raw engine on `s`.
pub async fn engine(s: &MemoryStorage, options: Options) -> Mem {
    Mem::open(s.clone(), options).await.expect("open")
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
