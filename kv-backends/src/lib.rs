//! Storage backends for the kv store. Every engine runs on every backend.
//!
//! * [`MemoryStorage`]: in memory; a cloneable handle, so a test can drop a store and reopen
//!   it on the same data.
//! * [`FileStorage`] (native): a directory of files, positional reads, `fsync`, an OS lock.
//! * `IndexedDbStorage` (wasm32, feature `indexeddb`): files as 64 KiB chunks in IndexedDB,
//!   appends buffered in memory and written by `sync` in one IndexedDB transaction.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod memory;
pub use memory::MemoryStorage;

// The checks of IndexedDB's chunk layout, without JavaScript: natively for tests and fuzzing.
#[cfg(any(
    all(target_arch = "wasm32", feature = "indexeddb"),
    feature = "fuzzing",
    test
))]
mod chunks;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(not(target_arch = "wasm32"))]
mod file;
#[cfg(not(target_arch = "wasm32"))]
pub use file::FileStorage;

#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
mod indexeddb;
#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
pub use indexeddb::{CHUNK_SIZE, IndexedDbFile, IndexedDbStorage};

/// Names of the backends this crate exports on this target, for matrix completeness checks.
#[cfg(not(target_arch = "wasm32"))]
pub const BACKENDS: &[&str] = &["memory", "file"];
/// Names of the backends this crate exports on this target, for matrix completeness checks.
#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
pub const BACKENDS: &[&str] = &["memory", "indexeddb"];
/// Names of the backends this crate exports on this target, for matrix completeness checks.
#[cfg(all(target_arch = "wasm32", not(feature = "indexeddb")))]
pub const BACKENDS: &[&str] = &["memory"];
