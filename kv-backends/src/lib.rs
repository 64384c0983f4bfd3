//! Storage backends for the kv store. Every engine runs on every backend.
//!
//! * [`MemoryStorage`]: in memory; a cloneable handle, so a test can drop a store and reopen
//!   it on the same data.
//! * [`FileStorage`] (native and WASI): a directory of files, positional reads, `fsync`, an OS
//!   lock (WASI has no file locks: there, a lock within the process only).
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

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
mod file;
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub use file::FileStorage;

#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
mod indexeddb;
#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
pub use indexeddb::{CHUNK_SIZE, IndexedDbFile, IndexedDbStorage};

/// Names of the backends this crate exports on this target, for matrix completeness checks.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub const BACKENDS: &[&str] = &["memory", "file"];
/// Names of the backends this crate exports on this target, for matrix completeness checks.
#[cfg(all(
    all(target_arch = "wasm32", target_os = "unknown"),
    feature = "indexeddb"
))]
pub const BACKENDS: &[&str] = &["memory", "indexeddb"];
/// Names of the backends this crate exports on this target, for matrix completeness checks.
#[cfg(all(
    all(target_arch = "wasm32", target_os = "unknown"),
    not(feature = "indexeddb")
))]
pub const BACKENDS: &[&str] = &["memory"];
