//! Backend traits: what an engine needs from storage, and nothing more.
//!
//! A backend is a flat namespace of named, append-only files. Both engines are written over
//! these two traits only, so every engine runs on every backend (memory, native files,
//! IndexedDB, and backends that users write themselves and prove with `kv-conformance`).
//!
//! # Durability contract
//!
//! * Bytes given to [`StorageFile::append`] are readable at once through the same handle and
//!   any handle of the same storage, but are **durable only after [`StorageFile::sync`]
//!   returns**. A crash may keep any prefix of the unsynced appends of a file, and the last
//!   kept append may be torn (cut at any byte). Nothing before the last successful `sync` may
//!   be lost or changed.
//! * [`Storage::create`], [`Storage::remove`] and [`Storage::rename`] are atomic. They are
//!   durable after [`Storage::sync`] returns. `rename` replaces the target if it exists: after a
//!   crash the target name holds either the old or the new contents, never a mix.
//! * [`StorageFile::truncate`] is durable after the file's `sync`.
//! * A backend may buffer appends in memory (the file backend does, the IndexedDB backend must)
//!   as long as reads see them and `sync` makes them durable.
//!
//! # Example: a backend that delegates
//!
//! A wrapper (encryption, metrics, fault injection) implements both traits by delegating;
//! `kv-conformance`'s `FaultyStorage` is a complete example.

use crate::{MaybeSend, MaybeSync, Result};

/// A handle on one open file of a [`Storage`]. Cloning a handle gives another handle on the
/// same file. All methods take `&self`: readers and the single appender share a handle.
#[allow(clippy::len_without_is_empty)]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait StorageFile: Clone + MaybeSend + MaybeSync + 'static {
    /// Current length in bytes, including appends not yet synced.
    async fn len(&self) -> Result<u64>;

    /// Reads exactly `len` bytes at `offset`. Reading past the end is an error of kind
    /// `UnexpectedEof` (wrapped in [`crate::Error::Io`]).
    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>>;

    /// Appends `bytes` at the end and returns the offset where they start.
    async fn append(&self, bytes: &[u8]) -> Result<u64>;

    /// Makes every append and truncation so far durable.
    async fn sync(&self) -> Result<()>;

    /// Cuts the file to `len` bytes (used by recovery to drop a torn tail).
    async fn truncate(&self, len: u64) -> Result<()>;
}

/// A guard for the exclusive writer lock of a storage; the lock is released when it drops.
pub struct LockGuard(#[allow(dead_code)] Box<dyn MaybeSendSync>);

/// Object-safe `Send + Sync` (plain on wasm32) used to type-erase lock guards.
pub trait MaybeSendSync: MaybeSend + MaybeSync {}
impl<T: MaybeSend + MaybeSync> MaybeSendSync for T {}

impl LockGuard {
    /// Wraps whatever keeps the lock held (an OS file lock, a flag reset on drop).
    pub fn new(inner: impl MaybeSend + MaybeSync + 'static) -> Self {
        LockGuard(Box::new(inner))
    }
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockGuard")
    }
}

/// A flat namespace of append-only files. Cheap to clone: clones share the same data.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Storage: Clone + MaybeSend + MaybeSync + 'static {
    /// The file handle type.
    type File: StorageFile;

    /// Names of all files, in no particular order.
    async fn list(&self) -> Result<Vec<String>>;

    /// Opens an existing file. A missing file is an [`crate::Error::Io`] of kind `NotFound`.
    async fn open(&self, name: &str) -> Result<Self::File>;

    /// Creates an empty file, replacing any file of that name.
    async fn create(&self, name: &str) -> Result<Self::File>;

    /// Removes a file. Removing a missing file is not an error.
    async fn remove(&self, name: &str) -> Result<()>;

    /// Atomically renames `from` to `to`, replacing `to` if it exists.
    async fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Makes creations, removals and renames so far durable.
    async fn sync(&self) -> Result<()>;

    /// Takes the exclusive writer lock. A second writer (another process, another open store
    /// on the same data) gets [`crate::Error::Locked`] instead of corrupting the data.
    async fn lock(&self) -> Result<LockGuard>;

    /// True if `name` exists.
    async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.list().await?.iter().any(|n| n == name))
    }

    /// The storage a read-only open uses: [`crate::Store`] calls it when
    /// [`crate::Options::read_only`] is set, before the engine opens. The default is the
    /// storage itself (engines write nothing in a read-only open anyway); a backend whose
    /// writable handles need more rights than reading overrides it. `FileStorage` returns a
    /// view that opens every file without write access (so a store the user may only read
    /// opens) and refuses every mutation with [`crate::Error::ReadOnly`].
    fn read_only(&self) -> Self {
        self.clone()
    }
}

/// `std::io::ErrorKind::NotFound` wrapped as [`crate::Error::Io`]: for backends.
pub fn not_found(op: &str, name: &str) -> crate::Error {
    crate::Error::io(
        format!("{op} {name}"),
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no file named {name}"),
        ),
    )
}

/// `UnexpectedEof` wrapped as [`crate::Error::Io`], for a read past the end: for backends.
pub fn read_past_end(name: &str, offset: u64, len: usize, file_len: u64) -> crate::Error {
    crate::Error::io(
        format!("read {name}"),
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("read of {len} bytes at {offset} past the end ({file_len})"),
        ),
    )
}
