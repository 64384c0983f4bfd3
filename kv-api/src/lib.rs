//! The contract of the `kv-db` store: its typed API, its two extension traits and its errors.
//!
//! * [`Store`] / [`Transaction`] / [`RangeQuery`]: the typed API users call, written once over
//!   any engine; [`Options`], [`Version`], [`Error`].
//! * [`SlotDef`]: a slot with its key and value types, checked by the compiler and against the
//!   store's catalog ([`Store::slots`]); [`Store::transact`] retries a transaction on conflict.
//! * [`Storage`] / [`StorageFile`]: what a backend implements (memory, files, IndexedDB, yours).
//! * [`Engine`]: what an engine implements (Bitcask, LSM, yours), with its argument types
//!   [`WriteBatch`], [`KeyRange`], [`Entry`], and the snapshot registry [`Snapshots`].
//! * [`keycodec`]: the order-preserving, type-tagged key encoding.
//! * [`frame`] and [`bytes`]: the one CRC framing of every record the store writes (engine
//!   files and export streams) and checked reads of the numbers in them.
//!
//! The machinery that the workspace's engines share (CRC framing, the transaction log, the
//! commit pipeline, the read cache) lives in `kv-engine-kit`, which users never see.
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

pub mod bytes;
pub mod codec;
mod engine;
mod error;
mod expiry;
pub mod export;
pub mod frame;
pub mod keycodec;
mod options;
mod progress;
mod range;
mod range_removal;
mod recovery;
pub mod retention;
mod retry;
pub mod snapshot;
mod storage;
mod store;
mod task;
mod transaction;
mod typed;
pub mod verify;
mod version;
pub mod watch;

pub use engine::{
    Engine, Entry, KeyRange, Location, Slot, Stats, ValueVisitor, Write, WriteBatch,
    prefix_successor,
};
pub use error::{Error, Result};
pub use export::{BackupSummary, CopySummary, ExportScope, ExportSummary, ImportSummary};
pub use options::{Clock, DEFAULT_CACHE_SIZE, Durability, MAX_KEY_AND_VALUE, Options, Tuning};
pub use progress::{Progress, ProgressFn};
pub use range::{LazyRow, RangeQuery, RangeStream, RowStream};
pub use recovery::{Dropped, RecoveryReport};
pub use retention::{AutoMerge, Retention};
pub use retry::Retry;
pub use snapshot::{Snapshot, Snapshots};
pub use storage::{LockGuard, MaybeSendSync, Storage, StorageFile, not_found, read_past_end};
pub use store::Store;
pub use task::{drop_off_executor, yield_now};
pub use transaction::Transaction;
pub use typed::{CATALOG_SLOT, KeyLike, SlotDef, SlotHandle, SlotInfo};
pub use verify::{Damage, VerifyReport};
pub use version::Version;
pub use watch::{Change, ChangeKind, Watch, WatchStream};

pub use async_trait::async_trait;

/// `Send` natively; nothing on wasm32, where IndexedDB handles are not `Send`.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSend: Send {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Send + ?Sized> MaybeSend for T {}
/// `Send` natively; nothing on wasm32, where IndexedDB handles are not `Send`.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSend {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSend for T {}

/// `Sync` natively; nothing on wasm32.
#[cfg(not(target_arch = "wasm32"))]
pub trait MaybeSync: Sync {}
#[cfg(not(target_arch = "wasm32"))]
impl<T: Sync + ?Sized> MaybeSync for T {}
/// `Sync` natively; nothing on wasm32.
#[cfg(target_arch = "wasm32")]
pub trait MaybeSync {}
#[cfg(target_arch = "wasm32")]
impl<T: ?Sized> MaybeSync for T {}

/// A boxed future, `Send` natively.
#[cfg(not(target_arch = "wasm32"))]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
/// A boxed future (not `Send` on wasm32).
#[cfg(target_arch = "wasm32")]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;
