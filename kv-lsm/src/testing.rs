//! Helpers shared by the unit tests of several modules.

use kv_backends::MemoryStorage;
use kv_engine_kit::header::StoreId;

use crate::key::OwnedEntry;
use crate::options::Compression;
use crate::sstable::{TableMeta, TableWriter};

/// The store id of the tables unit tests write.
pub(crate) const STORE: StoreId = StoreId::from_bytes([0x5a; 16]);

/// A single-threaded runtime for a test's async part.
pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// Writes `entries` (in internal key order) as table `id` of store [`STORE`] in `storage`, in blocks of about
/// `block_size` bytes, compressed with LZ4 where it pays (the default).
pub(crate) async fn write_table(
    storage: &MemoryStorage,
    id: u64,
    entries: &[OwnedEntry],
    block_size: usize,
) -> TableMeta {
    write_table_with(storage, id, entries, block_size, Compression::Lz4).await
}

/// [`write_table`] with blocks stored with `compression`.
pub(crate) async fn write_table_with(
    storage: &MemoryStorage,
    id: u64,
    entries: &[OwnedEntry],
    block_size: usize,
    compression: Compression,
) -> TableMeta {
    let mut w = TableWriter::create(storage, STORE, id, block_size, compression)
        .await
        .expect("create");
    for e in entries {
        w.add(&e.ukey, e.seq, e.time_ms, e.value.as_deref())
            .expect("add");
    }
    w.finish().await.expect("finish")
}
