//! Options common to every engine, with the tuning knobs each engine reads.

use std::sync::Arc;

/// When `commit` returns relative to durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `commit` returns after the transaction is synced to storage (default). Concurrent
    /// committers share one sync (group commit).
    #[default]
    Sync,
    /// `commit` returns once the transaction is written to the backend's buffers, before any
    /// sync. **Risk:** a crash (process, OS or power, depending on the backend's buffering) can
    /// lose the most recent commits that returned `Ok`; it never loses part of a transaction
    /// and never loses anything synced before (by a later `Sync` commit or [`crate::Store::flush`]).
    Buffered,
}

/// A source of wall-clock time in milliseconds since the Unix epoch (tests inject their own).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// A clock calling `f`.
    pub fn new(f: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Clock(Arc::new(f))
    }

    /// The current time in ms.
    pub fn now_ms(&self) -> u64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new(system_now_ms)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(target_arch = "wasm32")]
fn system_now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Options for opening a store. Every engine reads the common ones; each engine documents the
/// tuning knobs it uses and ignores the others.
///
/// ```
/// use kv_api::{Durability, Options};
/// let opts = Options::default().durability(Durability::Buffered).max_value_size(1 << 20);
/// assert_eq!(opts.max_value_size, 1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    /// See [`Durability`].
    pub durability: Durability,
    /// Open without the writer lock; every mutation fails with [`crate::Error::ReadOnly`].
    pub read_only: bool,
    /// Largest encoded key, in bytes (default 64 KiB).
    pub max_key_size: usize,
    /// Largest encoded value, in bytes (default 64 MiB).
    pub max_value_size: usize,
    /// Bitcask: a log segment is sealed and a new one started past this size (default 64 MiB).
    /// LSM: the write-ahead log is rolled past this size.
    pub segment_size: u64,
    /// LSM: the memtable is flushed to a table past this many bytes (default 8 MiB).
    pub memtable_size: usize,
    /// LSM: target size of a data block (default 4 KiB).
    pub block_size: usize,
    /// Bytes of read cache: the LSM's decoded blocks, Bitcask's pages of its log (default
    /// 256 MiB natively, 32 MiB on wasm32). A bound, not an allocation: the cache holds only
    /// what was read. The native default sits between RocksDB's and fjall's 32 MiB and redb's
    /// and sled's 1 GiB: enough for a million small records, so that a store that fits in it
    /// serves reads from memory without a system call.
    pub cache_size: usize,
    /// LSM: run flushes and compactions in a background task (default true where a runtime
    /// is available); `false` runs them inline in the committing task.
    pub background: bool,
    /// Source of commit times.
    pub clock: Clock,
}

/// The default [`Options::cache_size`].
pub const DEFAULT_CACHE_SIZE: usize = if cfg!(target_arch = "wasm32") {
    32 << 20
} else {
    256 << 20
};

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            read_only: false,
            max_key_size: 64 << 10,
            max_value_size: 64 << 20,
            segment_size: 64 << 20,
            memtable_size: 8 << 20,
            block_size: 4 << 10,
            cache_size: DEFAULT_CACHE_SIZE,
            background: true,
            clock: Clock::default(),
        }
    }
}

macro_rules! setters {
    ($($(#[$m:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl Options {
            $($(#[$m])* pub fn $name(mut self, $name: $ty) -> Self {
                self.$name = $name;
                self
            })*
        }
    };
}

setters! {
    /// Sets [`Options::durability`].
    durability: Durability,
    /// Sets [`Options::read_only`].
    read_only: bool,
    /// Sets [`Options::max_key_size`].
    max_key_size: usize,
    /// Sets [`Options::max_value_size`].
    max_value_size: usize,
    /// Sets [`Options::segment_size`].
    segment_size: u64,
    /// Sets [`Options::memtable_size`].
    memtable_size: usize,
    /// Sets [`Options::block_size`].
    block_size: usize,
    /// Sets [`Options::cache_size`].
    cache_size: usize,
    /// Sets [`Options::background`].
    background: bool,
    /// Sets [`Options::clock`].
    clock: Clock,
}
