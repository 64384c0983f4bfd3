//! `kv-db`: an embedded, versioned, transactional key-value store.
//!
//! One typed API ([`Store`], [`Transaction`]) over two engines, picked by cargo features, on
//! any backend ([`backends`]): memory, native files, IndexedDB in the browser, or your own.
//!
//! | feature | engine | [`KvStore`] uses it |
//! |---------|--------|---------------------|
//! | `bitcask` (default) | `Bitcask`: append-only log, every key in memory, fast point reads | whenever enabled |
//! | `lsm` | `Lsm`: WAL, memtable, sorted tables, compaction; keys need not fit in memory | only without `bitcask` |
//!
//! Cargo unifies features across a whole dependency tree, so a feature another crate enables
//! must not change which engine opens an existing store: enabling `lsm` beside the default
//! leaves [`KvStore`] on Bitcask. Name the engine to be sure: `BitcaskStore<S>`, `LsmStore<S>`.
//! Whatever is named, a store records its engine in its `IDENTITY` file, and the other engine
//! refuses it with [`Error::Incompatible`]: never an empty store.
//!
//! ```no_run
//! # async fn demo() -> kv_db::Result<()> {
//! use kv_db::{KvStore, backends::MemoryStorage};
//! let store = KvStore::open(MemoryStorage::new()).await?;
//! let mut txn = store.current();
//! txn.insert(0, &"key1", 1u8)?;
//! txn.commit().await?;
//! let txn = store.current();
//! assert_eq!(txn.get::<_, u8>(0, &"key1").await?, Some(1));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

#[cfg(not(any(feature = "bitcask", feature = "lsm")))]
compile_error!("enable at least one engine feature of `kv-db`: `bitcask` or `lsm`");

pub use kv_api::{
    CATALOG_SLOT, Clock, Durability, Engine, Error, KeyLike, LazyRow, Options, RangeQuery,
    RangeStream, Result, Retry, RowStream, Slot, SlotDef, SlotHandle, SlotInfo, Stats, Storage,
    Store, Transaction, Tuning, Version,
};
// The operator's operations (issue #13): the integrity check (`Store::verify`), export,
// import, backup and version-preserving copies (`Store::export`, `Store::import`,
// `Store::copy_into`, `Store::backup_to`; the stream codec in `export`), and the progress
// they report.
pub use kv_api::export;
// Change feeds and version retention (issue #18): `Store::watch`, `Store::watch_from`, and
// `Options::retention` with its automatic merge.
pub use kv_api::watch;
pub use kv_api::{AutoMerge, Change, ChangeKind, KeyRange, Retention, Watch, WatchStream};
pub use kv_api::{
    BackupSummary, CopySummary, Damage, ExportScope, ExportSummary, ImportSummary, Progress,
    ProgressFn, VerifyReport,
};

// Blocking calls for programs without an async runtime (native only).
#[cfg(not(target_arch = "wasm32"))]
pub mod blocking;

/// The backends: memory, native files, IndexedDB (wasm32).
pub mod backends {
    pub use kv_backends::*;
}

/// For backend authors: what a [`Storage`] implementation needs. See `kv-conformance` to
/// prove one with the behaviour suite.
pub mod storage {
    pub use kv_api::{
        LockGuard, MaybeSend, MaybeSendSync, MaybeSync, Storage, StorageFile, async_trait,
        not_found, read_past_end,
    };
}

/// For engine authors: the byte-level [`Engine`] trait and its argument types.
pub mod engine {
    pub use kv_api::{
        BoxFuture, Engine, Entry, KeyRange, Location, Snapshot, Snapshots, Tuning, ValueVisitor,
        Write, WriteBatch, prefix_successor,
    };
}

#[cfg(feature = "bitcask")]
pub use kv_bitcask::Bitcask;
/// The engine over an etcd v3 cluster and where it connects (feature `etcd`, native only).
#[cfg(all(feature = "etcd", not(target_arch = "wasm32")))]
pub use kv_etcd::{Etcd, EtcdConfig};
#[cfg(feature = "lsm")]
pub use kv_lsm::{Compression, Lsm, LsmOptions};

/// The engine of [`KvStore`]: Bitcask whenever the `bitcask` feature is on (so a dependency
/// that enables `lsm` changes nothing), the LSM only in a build without `bitcask`.
#[cfg(feature = "bitcask")]
pub type DefaultEngine<S> = kv_bitcask::Bitcask<S>;
/// The engine of [`KvStore`]: Bitcask whenever the `bitcask` feature is on (so a dependency
/// that enables `lsm` changes nothing), the LSM only in a build without `bitcask`.
#[cfg(all(feature = "lsm", not(feature = "bitcask")))]
pub type DefaultEngine<S> = kv_lsm::Lsm<S>;

/// The typed store on the Bitcask engine, over storage `S`.
#[cfg(feature = "bitcask")]
pub type BitcaskStore<S> = Store<kv_bitcask::Bitcask<S>>;

/// The typed store on the LSM engine, over storage `S`.
#[cfg(feature = "lsm")]
pub type LsmStore<S> = Store<kv_lsm::Lsm<S>>;

/// The typed store on the engine the features select, over storage `S`.
pub type KvStore<S> = Store<DefaultEngine<S>>;
