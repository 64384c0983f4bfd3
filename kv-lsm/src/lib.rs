//! The LSM-tree engine of the `kv-db` store: [`Lsm`], an [`kv_api::Engine`] over any
//! [`kv_api::Storage`] backend.
//!
//! ```text
//!  commit ──► WAL (wal-NNNNNNNN.log) ──► memtable ──freeze──► immutable memtables
//!                                                                   │ flush
//!  reads: memtables → L0 (newest first) → L1 → … → L6               ▼
//!                                              L0 tables ──compaction──► L1 … L6
//!  MANIFEST: tables per level, last flushed commit, WAL floor, newest WAL, merge horizon
//!  IDENTITY: the store's engine, format and random id (`kv_engine_kit::identity`)
//! ```
//!
//! **Format 2.** An open reads `IDENTITY` first and refuses, before it takes the writer lock,
//! a storage that is not an LSM store of this format. Every WAL file, table and the manifest
//! begins with a file header (`kv_engine_kit::header`: kind, store id, the id in the file's
//! name), so a file swapped, copied over another or brought from another store is corruption
//! naming it, never data read in the wrong place. The manifest names the newest WAL file, the
//! one WAL continuity cannot vouch for, so its loss is corruption too. A new store is created
//! as `IDENTITY`, `MANIFEST`, first WAL file, `MANIFEST` naming it: a crash at any step opens
//! as a new store.
//!
//! * `wal`: commits in the shared [`kv_engine_kit::txlog`] format, one append per transaction.
//! * `memtable`: recent commits ordered by `(slot, key, seq descending)`.
//! * `sstable`: immutable sorted tables (blocks with restart points and CRCs, a bloom
//!   filter, an index, a footer), opened lazily; `cache`: the block cache.
//! * `manifest`: the atomic record of which tables exist; `levels`: the level set.
//! * `compaction`: flush, leveled compaction (every version kept) and `merge` (drops what
//!   no snapshot needs); `background`: where that work runs, and writer backpressure.
//! * `iter`: the merging iterator behind scans and compactions; `read`: point reads, scans,
//!   stats; `key`: internal keys (`slot ‖ key`, sequence number descending).
//!
//! Behaviour is the same as the Bitcask engine's: optimistic transactions with conflict
//! checks, every version readable until `merge`, crash safety (a torn WAL tail is cut back to
//! the last whole transaction), typed errors. The commit path is the shared
//! [`kv_engine_kit::commit::CommitPipeline`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use kv_api::Store;
//! use kv_backends::MemoryStorage;
//! use kv_lsm::Lsm;
//!
//! let store = Store::<Lsm<MemoryStorage>>::open(MemoryStorage::new()).await?;
//! let mut txn = store.current();
//! txn.insert(0, &"key1", 1u8)?;
//! txn.commit().await?;
//! let txn = store.current();
//! assert_eq!(txn.get::<_, u8>(0, &"key1").await?, Some(1));
//! store.merge().await?;
//! # Ok::<(), kv_api::Error>(()) }).unwrap();
//! ```
//!
//! Knobs: from the common [`kv_api::Options`], `segment_size` (WAL roll) and `cache_size`;
//! the engine's own in [`LsmOptions`] (`memtable_size`, `block_size`, `background`,
//! `compression`: see [`Compression`]; `blob_threshold`: large values in blob files), passed
//! with `Store::open_tuned`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Numbers read from storage or given by callers are checked (issue #19): each exception is an
// `#[expect(lint, reason = "...")]` on the smallest item. Tests may panic on purpose.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used
    )
)]

mod background;
mod blob;
mod cache;
mod compaction;
mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod iter;
mod key;
mod levels;
mod manifest;
mod memtable;
mod names;
mod options;
mod read;
mod rtomb;
mod sstable;
#[cfg(test)]
mod testing;
mod verify;
mod wal;

pub use engine::Lsm;
pub use options::{Compression, DEFAULT_BLOB_THRESHOLD, LsmOptions};
