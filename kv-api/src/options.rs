//! Options common to every engine, and the trait of each engine's own knobs ([`Tuning`]).

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

/// [`crate::Error::TooLarge`] for a `what` of `size` bytes above `max`.
fn too_large(what: &'static str, size: usize, max: usize) -> crate::Result<()> {
    if size > max {
        return Err(crate::Error::TooLarge { what, size, max });
    }
    Ok(())
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        // Saturates some 584 million years from now.
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[expect(
    clippy::cast_possible_truncation,
    reason = "a float-to-integer `as` saturates: a clock before 1970 reads 0, NaN reads 0"
)]
fn system_now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// Options for opening a store, read by every engine. Knobs that only one engine has are in
/// that engine's [`Tuning`] type (for example `kv_lsm::LsmOptions`).
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
    /// The log (Bitcask's segment, the LSM's write-ahead log) is sealed and a new one started
    /// past this size (default 64 MiB).
    pub segment_size: u64,
    /// Bytes of read cache: the LSM's decoded blocks, Bitcask's pages of its log (default
    /// 256 MiB natively, 32 MiB on wasm32). A bound, not an allocation: the cache holds only
    /// what was read. The native default sits between RocksDB's and fjall's 32 MiB and redb's
    /// and sled's 1 GiB: enough for a million small records, so that a store that fits in it
    /// serves reads from memory without a system call.
    pub cache_size: usize,
    /// Source of commit times.
    pub clock: Clock,
    /// Which old versions merge keeps, store-wide; `None` (default): every version stays
    /// readable until a manual [`crate::Store::merge`], which keeps each key's latest value.
    /// With a policy, merge also runs by itself (see [`Options::auto_merge`]).
    pub retention: Option<crate::Retention>,
    /// Policies of single slots, over [`Options::retention`] (the last one given for a slot
    /// wins).
    pub slot_retention: Vec<(crate::Slot, crate::Retention)>,
    /// When a store with a retention policy merges by itself.
    pub auto_merge: crate::AutoMerge,
}

/// The largest `max_key_size + max_value_size` a store accepts: what one record of the log
/// formats can hold (their lengths are `u32`, less room for the record headers).
pub const MAX_KEY_AND_VALUE: usize = (u32::MAX - (1 << 16)) as usize;

impl Options {
    /// Checks the options before a store opens with them: a key and a value of the largest
    /// sizes allowed must fit one log record, and a log segment must hold at least one byte.
    /// Engines call it when they open; a bad value is [`crate::Error::InvalidArgument`].
    ///
    /// ```
    /// use kv_api::Options;
    /// assert!(Options::default().validate().is_ok());
    /// assert!(Options::default().max_value_size(usize::MAX).validate().is_err());
    /// ```
    pub fn validate(&self) -> crate::Result<()> {
        let both = self.max_key_size.checked_add(self.max_value_size);
        if both.is_none_or(|n| n > MAX_KEY_AND_VALUE) {
            return Err(crate::Error::InvalidArgument(format!(
                "max_key_size ({}) + max_value_size ({}) exceed what one log record holds \
                 ({MAX_KEY_AND_VALUE} bytes)",
                self.max_key_size, self.max_value_size
            )));
        }
        if self.segment_size == 0 {
            return Err(crate::Error::InvalidArgument(
                "segment_size must be at least 1 byte".to_string(),
            ));
        }
        Ok(())
    }
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
            cache_size: DEFAULT_CACHE_SIZE,
            clock: Clock::default(),
            retention: None,
            slot_retention: Vec::new(),
            auto_merge: crate::AutoMerge::default(),
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
    /// Sets [`Options::cache_size`].
    cache_size: usize,
    /// Sets [`Options::clock`].
    clock: Clock,
    /// Sets [`Options::auto_merge`].
    auto_merge: crate::AutoMerge,
}

impl Options {
    /// [`crate::Error::TooLarge`] if a key of `len` bytes exceeds [`Options::max_key_size`].
    pub fn check_key_size(&self, len: usize) -> crate::Result<()> {
        too_large("key", len, self.max_key_size)
    }

    /// [`crate::Error::TooLarge`] if a value of `len` bytes exceeds
    /// [`Options::max_value_size`].
    pub fn check_value_size(&self, len: usize) -> crate::Result<()> {
        too_large("value", len, self.max_value_size)
    }

    /// Both checks on one write of a batch: what an engine runs on every write before a
    /// commit (the typed API checks at `insert` already; the byte-level one does not).
    ///
    /// ```
    /// use kv_api::{Options, Write};
    /// let options = Options::default().max_value_size(4);
    /// let write = |v: &[u8]| Write { slot: 0, key: b"k".to_vec(), value: Some(v.to_vec()) };
    /// assert!(options.check_write_size(&write(b"1234")).is_ok());
    /// assert!(matches!(
    ///     options.check_write_size(&write(b"12345")),
    ///     Err(kv_api::Error::TooLarge { what: "value", size: 5, max: 4 })
    /// ));
    /// ```
    pub fn check_write_size(&self, write: &crate::Write) -> crate::Result<()> {
        self.check_key_size(write.key.len())?;
        match &write.value {
            Some(v) => self.check_value_size(v.len()),
            None => Ok(()),
        }
    }

    /// Sets [`Options::retention`]: the store's versions are kept by `policy`, and merged
    /// away by themselves past it.
    ///
    /// ```
    /// use kv_api::{Options, Retention};
    /// let options = Options::default().retention(Retention::last(5));
    /// assert_eq!(options.retention, Some(Retention::last(5)));
    /// ```
    pub fn retention(mut self, policy: crate::Retention) -> Self {
        self.retention = Some(policy);
        self
    }

    /// Adds a policy for `slot` alone ([`Options::slot_retention`]).
    ///
    /// ```
    /// use kv_api::{Options, Retention};
    /// let options = Options::default().slot_retention(3, Retention::last(10));
    /// assert_eq!(kv_api::retention::policy_of(&options, 3), Some(Retention::last(10)));
    /// assert_eq!(kv_api::retention::policy_of(&options, 4), None);
    /// ```
    pub fn slot_retention(mut self, slot: crate::Slot, policy: crate::Retention) -> Self {
        self.slot_retention.push((slot, policy));
        self
    }
}

/// The knobs of one engine that the common [`Options`] do not have: the associated type
/// [`crate::Engine::Tuning`] (`()` for an engine without any).
///
/// ```
/// use kv_api::Tuning;
/// #[derive(Debug, Clone, Default)]
/// struct MyTuning {
///     page_size: usize,
/// }
/// impl Tuning for MyTuning {
///     fn small() -> Self {
///         MyTuning { page_size: 512 }
///     }
/// }
/// ```
pub trait Tuning: Default + Clone + std::fmt::Debug + Send + Sync + 'static {
    /// Knobs that make the engine cross its internal boundaries (roll files, flush, compact)
    /// after a few KiB and do that work inline, so that short tests, such as the crash cases of
    /// `kv-conformance`, reach every boundary reproducibly. The default implementation is
    /// [`Default::default`].
    fn small() -> Self {
        Self::default()
    }

    /// Settings that store the same data differently on disk (the LSM: one per block codec),
    /// each named, all based on [`Tuning::small`]. The conformance suite writes, merges and
    /// reads a store under each, and reopens it under the next, as a changed setting does to
    /// an existing store. The default is `small()` alone.
    fn variants() -> Vec<(&'static str, Self)> {
        vec![("small", Self::small())]
    }
}

impl Tuning for () {}
