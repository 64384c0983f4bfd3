//! The LSM engine's own knobs, next to the common [`kv_api::Options`].

/// Knobs only the LSM engine has: its [`kv_api::Engine::Tuning`].
///
/// ```
/// use kv_lsm::LsmOptions;
/// let tuning = LsmOptions::default().memtable_size(1 << 20).block_size(16 << 10);
/// assert_eq!(tuning.memtable_size, 1 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsmOptions {
    /// The memtable is flushed to a table past this many bytes (default 8 MiB). Also scales
    /// table sizes and level targets.
    pub memtable_size: usize,
    /// Target size of a data block (default 4 KiB).
    pub block_size: usize,
    /// Run flushes and compactions in a background task where a tokio runtime is current
    /// (default `true`); `false` runs them inline in the committing task.
    pub background: bool,
}

impl Default for LsmOptions {
    fn default() -> Self {
        LsmOptions {
            memtable_size: 8 << 20,
            block_size: 4 << 10,
            background: true,
        }
    }
}

impl LsmOptions {
    /// Sets [`LsmOptions::memtable_size`].
    pub fn memtable_size(mut self, bytes: usize) -> Self {
        self.memtable_size = bytes;
        self
    }

    /// Sets [`LsmOptions::block_size`].
    pub fn block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes;
        self
    }

    /// Sets [`LsmOptions::background`].
    pub fn background(mut self, background: bool) -> Self {
        self.background = background;
        self
    }
}

impl kv_api::Tuning for LsmOptions {
    /// 4 KiB memtables, 512-byte blocks, no background work: a few commits flush and compact.
    fn small() -> Self {
        LsmOptions {
            memtable_size: 4 << 10,
            block_size: 512,
            background: false,
        }
    }
}
