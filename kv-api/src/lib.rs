//! Traits, typed API and errors of the `kv` store.
//!
//! * [`Storage`] / [`StorageFile`]: what a backend implements (memory, files, IndexedDB, yours).
//! * [`Engine`]: the byte-level engine trait (Bitcask, LSM), with [`WriteBatch`], [`KeyRange`].
//! * [`Store`] / [`Transaction`]: the typed API, written once over any engine.
//! * Shared engine machinery: [`frame`] (CRC framing), [`txlog`] (transaction log records and
//!   recovery), [`commit`] (ordering, conflicts, group commit), [`snapshot`], [`keycodec`],
//!   [`cache`] (the sharded read cache).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod codec;
pub mod commit;
pub mod conflict;
mod engine;
mod error;
pub mod frame;
pub mod keycodec;
mod options;
mod range;
pub mod snapshot;
mod storage;
mod store;
mod transaction;
pub mod txlog;
mod version;

pub use engine::{
    Engine, Entry, KeyRange, Slot, Stats, ValueVisitor, Write, WriteBatch, prefix_successor,
};
pub use error::{Error, Result};
pub use options::{Clock, DEFAULT_CACHE_SIZE, Durability, Options};
pub use range::{RangeQuery, RangeStream};
pub use snapshot::{Snapshot, Snapshots};
pub use storage::{LockGuard, MaybeSendSync, Storage, StorageFile, not_found, read_past_end};
pub use store::Store;
pub use transaction::Transaction;
pub use version::Version;

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
