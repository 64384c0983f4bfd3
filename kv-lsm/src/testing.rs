//! Helpers shared by the unit tests of several modules.

use kv_backends::MemoryStorage;

use crate::key::OwnedEntry;
use crate::sstable::{TableMeta, TableWriter};

/// A single-threaded runtime for a test's async part.
pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// Writes `entries` (in internal key order) as table `id` of `storage`, in blocks of about
/// `block_size` bytes.
pub(crate) async fn write_table(
    storage: &MemoryStorage,
    id: u64,
    entries: &[OwnedEntry],
    block_size: usize,
) -> TableMeta {
    let mut w = TableWriter::create(storage, id, block_size)
        .await
        .expect("create");
    for e in entries {
        w.add(&e.ukey, e.seq, e.time_ms, e.value.as_deref());
    }
    w.finish().await.expect("finish")
}
