//! The LSM engine's own knobs, next to the common [`kv_api::Options`].

/// Knobs only the LSM engine has: its [`kv_api::Engine::Tuning`].
///
/// ```
/// use kv_lsm::{Compression, LsmOptions};
/// let tuning = LsmOptions::default()
///     .memtable_size(1 << 20)
///     .block_size(16 << 10)
///     .compression(Compression::None);
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
    /// How the data blocks of new tables are compressed (default [`Compression::Lz4`]). Each
    /// block records its codec, so changing this later is safe: tables already written stay
    /// readable, and compactions rewrite them with the new setting.
    pub compression: Compression,
    /// Values of at least this many bytes are stored in blob files apart from their keys
    /// (default 4 KiB); `None` keeps every value in the tables. See
    /// [`LsmOptions::blob_threshold`].
    pub blob_threshold: Option<usize>,
}

/// The default [`LsmOptions::blob_threshold`]: 4 KiB, Titan's and (the order of) RocksDB
/// BlobDB's usual setting. A value that large fills a data block by itself, so keeping it in
/// the table saves no read, while every compaction would copy it again.
pub const DEFAULT_BLOB_THRESHOLD: usize = 4 << 10;

/// The codec of table data blocks ([`LsmOptions::compression`]).
///
/// A block is stored compressed only if that saves at least an eighth of it (and it is at
/// most 16 MiB uncompressed); otherwise it is stored as is, whatever the setting.
///
/// The default is [`Compression::Lz4`]: it decompresses faster than a block is read from a
/// file, halves typical text, costs little on incompressible data, and is pure Rust, so it
/// is the same on every target.
///
/// ```
/// use kv_lsm::{Compression, LsmOptions};
/// let tuning = LsmOptions::default().compression(Compression::Zstd);
/// assert_eq!(LsmOptions::default().compression, Compression::Lz4);
/// # let _ = tuning;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Blocks are stored as encoded.
    None,
    /// LZ4 block compression (`lz4_flex`, safe code only).
    #[default]
    Lz4,
    /// Zstandard at level 3: smaller than LZ4, slower to write. Native targets only: on
    /// wasm32 the zstd library is not built, a store set to `Zstd` writes LZ4 blocks, and
    /// reading a zstd block (a table written natively) is [`kv_api::Error::Incompatible`]
    /// naming the codec.
    Zstd,
}

impl Default for LsmOptions {
    fn default() -> Self {
        LsmOptions {
            memtable_size: 8 << 20,
            block_size: 4 << 10,
            background: true,
            compression: Compression::Lz4,
            blob_threshold: Some(DEFAULT_BLOB_THRESHOLD),
        }
    }
}

impl LsmOptions {
    /// Sets [`LsmOptions::blob_threshold`]: values of at least `bytes` go to blob files when
    /// their memtable is flushed (the WAL keeps them inline, so a commit is still one append),
    /// and tables hold a reference; compactions then move the reference, not the value, and
    /// `merge` rewrites the live values out of the blob files it leaves behind. `None` turns
    /// this off (values already in blob files stay readable, and a merge moves them back).
    ///
    /// ```
    /// use kv_lsm::LsmOptions;
    /// let big_values = LsmOptions::default().blob_threshold(Some(1 << 10));
    /// let inline = LsmOptions::default().blob_threshold(None);
    /// assert_eq!(LsmOptions::default().blob_threshold, Some(4096));
    /// # let _ = (big_values, inline);
    /// ```
    pub fn blob_threshold(mut self, bytes: Option<usize>) -> Self {
        self.blob_threshold = bytes;
        self
    }

    /// True if a value of `len` bytes goes to a blob file.
    pub(crate) fn is_blob(&self, len: usize) -> bool {
        self.blob_threshold.is_some_and(|t| len >= t)
    }

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

    /// Sets [`LsmOptions::compression`].
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets [`LsmOptions::background`].
    pub fn background(mut self, background: bool) -> Self {
        self.background = background;
        self
    }
}

impl kv_api::Tuning for LsmOptions {
    /// 4 KiB memtables, 512-byte blocks, values of 256 bytes or more in blob files, no
    /// background work: a few commits flush and compact.
    fn small() -> Self {
        LsmOptions {
            memtable_size: 4 << 10,
            block_size: 512,
            background: false,
            compression: Compression::Lz4,
            blob_threshold: Some(256),
        }
    }

    /// `small()` with each [`Compression`], and without blob files.
    fn variants() -> Vec<(&'static str, Self)> {
        let mut v: Vec<(&'static str, Self)> = [
            ("none", Compression::None),
            ("lz4", Compression::Lz4),
            ("zstd", Compression::Zstd),
        ]
        .into_iter()
        .map(|(name, c)| (name, Self::small().compression(c)))
        .collect();
        v.push(("inline", Self::small().blob_threshold(None)));
        v
    }
}
