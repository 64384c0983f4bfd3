//! The typed store, written once over [`Engine`].

use std::sync::Arc;

use crate::retention::AutoMerger;
use crate::retry::{Retry, backoff};
use crate::typed::{Catalog, SlotDef, SlotInfo};
use crate::{Engine, Options, RecoveryReport, Result, Stats, Transaction, Version};

/// A typed, versioned, transactional key-value store on engine `E`.
///
/// Cheap to clone (an `Arc`), and shareable across tasks: clones are the same store.
///
/// The store (with its writer lock) stays open until [`Store::close`], or until every clone
/// and every transaction and snapshot taken from it are dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_db::Result<()> {
/// use kv_db::{KvStore, backends::MemoryStorage};
/// let store = KvStore::open(MemoryStorage::new()).await?;
/// let mut txn = store.current();
/// txn.insert(0, &"key", 1u32)?;
/// txn.commit().await?;
/// assert_eq!(store.snapshot().get::<_, u32>(0, &"key").await?, Some(1));
/// # Ok(())
/// # }
/// ```
///
/// # Keys
///
/// Keys are encoded with [`keycodec`](crate::keycodec), which orders them by their type's
/// order and gives each value one encoding: a lookup finds a key only if it encodes to the
/// same bytes as when it was written. Maps, `HashMap` included, are encoded sorted, but serde
/// presents sets as sequences, so a `HashSet` (in a key, at any depth) encodes in its
/// iteration order, and an equal set can miss silently. Use a `BTreeSet` or a sorted `Vec`.
pub struct Store<E: Engine> {
    engine: Arc<E>,
    pub(crate) catalog: Arc<Catalog>,
    /// Its merges: the exclusion between merge and export, and the automatic merge's state.
    pub(crate) auto_merge: Arc<AutoMerger>,
}

impl<E: Engine> Clone for Store<E> {
    fn clone(&self) -> Self {
        Store {
            engine: self.engine.clone(),
            catalog: self.catalog.clone(),
            auto_merge: self.auto_merge.clone(),
        }
    }
}

/// The one merge of the store: [`Store::merge`], [`Store::merge_with`] and the automatic
/// merges of a [`crate::Retention`] policy all go through it. It excludes the pinning and
/// listing of exports and backups (see [`AutoMerger::exclusion`]).
pub(crate) async fn merge_engine<E: Engine>(
    store: &Store<E>,
    progress: &crate::ProgressFn<'_>,
) -> Result<()> {
    let _exclusive = store.auto_merge.exclusion.write().await;
    store.engine.merge_with(progress).await
}

/// Shows the engine, the latest version and the options; never keys or values.
impl<E: Engine> std::fmt::Debug for Store<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &E::NAME)
            .field("version", &self.version().ok())
            .field("options", self.engine.options())
            .field("tuning", self.engine.tuning())
            .finish()
    }
}

impl<E: Engine> Store<E> {
    /// Opens (or creates) a store with default options; recovers after a crash.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{KvStore, backends::MemoryStorage};
    /// let storage = MemoryStorage::new(); // clones share the same files
    /// let store = KvStore::open(storage.clone()).await?;
    /// store.transact(async |txn| txn.insert(0, &"greeting", "hello")).await?;
    /// store.close().await?;
    ///
    /// // Opening again finds what was committed.
    /// let store = KvStore::open(storage).await?;
    /// let greeting: Option<String> = store.snapshot().get(0, &"greeting").await?;
    /// assert_eq!(greeting.as_deref(), Some("hello"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(storage: E::Storage) -> Result<Self> {
        Self::open_with(storage, Options::default()).await
    }

    /// Opens (or creates) a store with `options` and the engine's default [`Engine::Tuning`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{Durability, Error, KvStore, Options, backends::MemoryStorage};
    /// let options = Options::default()
    ///     .durability(Durability::Buffered) // commits return before the sync
    ///     .max_value_size(1024);
    /// let store = KvStore::open_with(MemoryStorage::new(), options).await?;
    /// let mut txn = store.current();
    /// let too_large = txn.insert(0, &"blob", vec![0u8; 2048]);
    /// assert!(matches!(too_large, Err(Error::TooLarge { what: "value", .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open_with(storage: E::Storage, options: Options) -> Result<Self> {
        Self::open_tuned(storage, options, E::Tuning::default()).await
    }

    /// Opens (or creates) a store with `options` and the engine's own knobs `tuning`
    /// (`()` for Bitcask, [`LsmOptions`](https://docs.rs/kv-lsm) for the LSM).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{Engine, LsmOptions, LsmStore, Options, backends::MemoryStorage};
    /// let tuning = LsmOptions::default().memtable_size(1 << 20);
    /// let store = LsmStore::open_tuned(MemoryStorage::new(), Options::default(), tuning).await?;
    /// assert_eq!(store.engine().tuning().memtable_size, 1 << 20);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open_tuned(
        storage: E::Storage,
        options: Options,
        tuning: E::Tuning,
    ) -> Result<Self> {
        let storage = if options.read_only {
            crate::Location::read_only(&storage)
        } else {
            storage
        };
        Self::from_engine(E::open(storage, options, tuning).await?).await
    }

    /// Opens an existing store read-only: no writer lock is taken, nothing is ever written,
    /// and every mutation fails with [`crate::Error::ReadOnly`]. Every open with
    /// [`Options::read_only`] goes through [`crate::Storage::read_only`], so a store on files
    /// the user may read but not write opens (`FileStorage` then opens them read-only).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{Error, KvStore, backends::MemoryStorage};
    /// let storage = MemoryStorage::new();
    /// let writer = KvStore::open(storage.clone()).await?;
    /// writer.transact(async |txn| txn.insert(0, &"k", 1u32)).await?;
    ///
    /// // No writer lock: a read-only store opens beside the writer.
    /// let reader = KvStore::open_read_only(storage).await?;
    /// assert_eq!(reader.snapshot().get::<_, u32>(0, &"k").await?, Some(1));
    /// let mut txn = reader.current();
    /// assert!(matches!(txn.insert(0, &"k", 2u32), Err(Error::ReadOnly(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open_read_only(storage: E::Storage) -> Result<Self> {
        Self::open_with(storage, Options::default().read_only(true)).await
    }

    /// The store a transaction was taken from, put back together from the parts it holds
    /// (for the automatic merge that its commit may run).
    pub(crate) fn from_parts(
        engine: Arc<E>,
        catalog: Arc<Catalog>,
        auto_merge: Arc<AutoMerger>,
    ) -> Self {
        Store {
            engine,
            catalog,
            auto_merge,
        }
    }

    /// Wraps an engine opened by hand (reading the catalog of typed slots).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{Bitcask, BitcaskStore, Engine, Options, Version, backends::MemoryStorage};
    /// let storage = MemoryStorage::new();
    /// let engine = Bitcask::<MemoryStorage>::open(storage, Options::default(), ()).await?;
    /// let store = BitcaskStore::from_engine(engine).await?;
    /// assert_eq!(store.version()?, Version::ZERO);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn from_engine(engine: E) -> Result<Self> {
        let catalog = Catalog::load(&engine).await?;
        Ok(Store {
            engine: Arc::new(engine),
            catalog: Arc::new(catalog),
            auto_merge: Arc::new(AutoMerger::default()),
        })
    }

    /// The engine underneath, for byte-level access and its own counters.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// use kv_db::Engine;
    /// assert_eq!(store.engine().options().max_key_size, 64 << 10);
    /// assert_eq!(store.stats().await?.engine, "bitcask");
    /// # Ok(())
    /// # }
    /// ```
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// A new transaction reading the latest commit, plus its own writes. Synchronous: it
    /// only pins the latest commit. On a closed store every call of the transaction returns
    /// [`crate::Error::Closed`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// txn.insert(0, &"key", 1u32)?;
    /// assert_eq!(txn.get::<_, u32>(0, &"key").await?, Some(1)); // its own write
    /// let version = txn.commit().await?;
    /// assert_eq!(store.version()?, version);
    /// # Ok(())
    /// # }
    /// ```
    pub fn current(&self) -> Transaction<E> {
        self.transaction(self.engine.snapshot(), false)
    }

    /// A read-only view of the latest commit. Cheap; stable while other transactions commit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// store.transact(async |txn| txn.insert(0, &"key", 1u32)).await?;
    /// let snap = store.snapshot();
    /// store.transact(async |txn| txn.insert(0, &"key", 2u32)).await?;
    /// // The snapshot still reads the commit it was taken at.
    /// assert_eq!(snap.get::<_, u32>(0, &"key").await?, Some(1));
    /// assert_eq!(store.snapshot().get::<_, u32>(0, &"key").await?, Some(2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn snapshot(&self) -> Transaction<E> {
        self.transaction(self.engine.snapshot(), true)
    }

    fn transaction(&self, snapshot: Result<crate::Snapshot>, read_only: bool) -> Transaction<E> {
        let mut txn = Transaction::new(
            self.engine.clone(),
            self.catalog.clone(),
            snapshot,
            read_only,
        );
        if !read_only {
            txn.auto_merge = Some(self.auto_merge.clone());
        }
        txn
    }

    /// Runs `f` in a new transaction and commits it; if the commit (or `f`) fails with
    /// [`crate::Error::Conflict`], runs it again in a fresh transaction, up to
    /// [`Retry::default`] (10) attempts with a jittered backoff (see [`Retry`]). Returns what
    /// `f` returned, or its first error that is not a conflict, or the last conflict. `f` may
    /// run several times: it should do nothing but read and write through its transaction.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// for expected in 1..=3u64 {
    ///     let visits = store
    ///         .transact(async |txn| {
    ///             let n: u64 = txn.get(0, &"visits").await?.unwrap_or(0);
    ///             txn.insert(0, &"visits", n + 1)?;
    ///             Ok(n + 1)
    ///         })
    ///         .await?;
    ///     assert_eq!(visits, expected);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// The future is `Send` when `f`'s is; a closure that borrows from its surroundings
    /// (rather than owning what it captures, `async move`) makes it `Send` only for
    /// `'static` borrows, a limit of Rust's async closures.
    pub async fn transact<T, F>(&self, f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut Transaction<E>) -> Result<T>,
    {
        self.transact_with(Retry::default(), f).await
    }

    /// [`Store::transact`] with `retry` attempts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// use kv_db::Retry;
    /// store
    ///     .transact_with(Retry::attempts(50), async |txn| txn.insert(0, &"hot key", 1u8))
    ///     .await?;
    /// assert_eq!(store.snapshot().get::<_, u8>(0, &"hot key").await?, Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn transact_with<T, F>(&self, retry: Retry, mut f: F) -> Result<T>
    where
        F: AsyncFnMut(&mut Transaction<E>) -> Result<T>,
    {
        let mut attempt: u32 = 1;
        loop {
            let mut txn = self.current();
            let outcome = match f(&mut txn).await {
                Ok(value) => txn.commit().await.map(|_| value),
                Err(e) => Err(e),
            };
            match outcome {
                Err(e) if e.is_conflict() && attempt < retry.max_attempts() => {
                    backoff(attempt).await;
                    attempt = attempt.saturating_add(1);
                }
                other => return other,
            }
        }
    }

    /// The typed slots the catalog records (number, name, key type, value type), by slot
    /// number, as of the latest commit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// const USERS: kv_db::SlotDef<(String, u32), String> = kv_db::SlotDef::new(1, "users");
    /// store.open_slot(&USERS).await?;
    /// let slots = store.slots().await?;
    /// assert_eq!(slots.len(), 1);
    /// assert_eq!((slots[0].slot, slots[0].name.as_str()), (1, "users"));
    /// for slot in slots {
    ///     println!("{} {}: {} -> {}", slot.slot, slot.name, slot.key_type, slot.value_type);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn slots(&self) -> Result<Vec<SlotInfo>> {
        self.catalog.refresh(&*self.engine).await
    }

    /// Checks `def` against the catalog ([`crate::Error::SlotTypeMismatch`] if it records
    /// other types) and records it there if it is new, in a transaction of its own. Opening
    /// a slot in a transaction ([`Transaction::slot_mut`]) does the same; this is for
    /// checking every definition once, at startup.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// use kv_db::{Error, SlotDef};
    /// const USERS: SlotDef<(String, u32), String> = SlotDef::new(1, "users");
    /// const WRONG: SlotDef<u64, String> = SlotDef::new(1, "users");
    /// store.open_slot(&USERS).await?;
    /// // The catalog now holds slot 1's types: another key type is refused.
    /// assert!(matches!(store.open_slot(&WRONG).await, Err(Error::SlotTypeMismatch { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open_slot<K, V>(&self, def: &SlotDef<K, V>) -> Result<()> {
        let mut txn = self.current();
        txn.slot_mut(def)?;
        txn.commit().await.map(|_| ())
    }

    /// Records `def` in the catalog whatever it recorded before: for a deliberate migration
    /// to new key or value types (or a new name). Values already stored keep their old
    /// encoding: rewrite them (read with the old definition, write with the new one) in the
    /// same transaction or before.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// use kv_db::SlotDef;
    /// const USERS: SlotDef<(String, u32), String> = SlotDef::new(1, "users");
    /// const USERS_V2: SlotDef<(String, u64), String> = SlotDef::new(1, "users");
    /// store.open_slot(&USERS).await?;
    /// assert!(store.open_slot(&USERS_V2).await.is_err());
    /// store.redefine_slot(&USERS_V2).await?; // deliberate: the slot's keys are now (String, u64)
    /// store.open_slot(&USERS_V2).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn redefine_slot<K, V>(&self, def: &SlotDef<K, V>) -> Result<()> {
        let mut txn = self.current();
        txn.redefine_slot(def)?;
        txn.commit().await.map(|_| ())
    }

    /// A read-only view of the whole store as it was right after commit `version`.
    /// [`crate::Error::VersionNotFound`] if `merge` dropped it or it is not committed yet.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// txn.insert(0, &"price", 10u32)?;
    /// let v1 = txn.commit().await?;
    /// store.transact(async |txn| txn.insert(0, &"price", 12u32)).await?;
    ///
    /// let then = store.snapshot_at(v1).await?;
    /// assert_eq!(then.get::<_, u32>(0, &"price").await?, Some(10));
    /// assert_eq!(store.snapshot().get::<_, u32>(0, &"price").await?, Some(12));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn snapshot_at(&self, version: Version) -> Result<Transaction<E>> {
        let snap = self.engine.snapshot_at(version)?;
        let mut txn = self.transaction(Ok(snap), true);
        // What was live then: expiry is judged at the version's commit time.
        txn.now_ms = std::sync::OnceLock::from(version.time_ms());
        Ok(txn)
    }

    /// The latest committed version ([`Version::ZERO`] for an empty store).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// assert_eq!(store.version()?, kv_db::Version::ZERO);
    /// let mut txn = store.current();
    /// txn.insert(0, &"k", 1u8)?;
    /// let v = txn.commit().await?;
    /// assert_eq!(store.version()?, v);
    /// assert_eq!(v.seq(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn version(&self) -> Result<Version> {
        Ok(self.engine.snapshot()?.version())
    }

    /// A feed of the changes committed from now on to the keys of `range` in `slot` (a slot
    /// number or a [`crate::SlotDef`]): every insert and removal, by any handle of this store
    /// (clones, transactions, the byte-level engine), in commit order, each delivered once
    /// its commit is durable and visible. See [`crate::Watch`] for how it ends, and
    /// [`Store::watch_from`] to resume after a given commit.
    ///
    /// Commits with [`crate::Durability::Buffered`] are delivered once a sync covers them
    /// (a later durable commit, [`Store::flush`] or [`Store::close`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{KeyRange, KvStore, SlotDef, backends::MemoryStorage};
    /// const USERS: SlotDef<(String, u32), String> = SlotDef::new(1, "users");
    /// let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut feed = store.watch(&USERS, KeyRange::prefix_of(&("eu",))?)?;
    /// store
    ///     .transact(async |txn| {
    ///         txn.slot_mut(&USERS)?.insert(&("us".to_string(), 1), &"Ann".to_string())?;
    ///         txn.slot_mut(&USERS)?.insert(&("eu".to_string(), 2), &"Bo".to_string())
    ///     })
    ///     .await?;
    /// let change = feed.next().await.transpose()?.expect("a change");
    /// assert_eq!(change.key_as::<(String, u32)>()?, ("eu".to_string(), 2));
    /// assert_eq!(change.value_as::<String>()?.as_deref(), Some("Bo"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch(
        &self,
        slot: impl Into<crate::Slot>,
        range: crate::KeyRange,
    ) -> Result<crate::Watch<E>> {
        let from = self.engine.snapshot()?.version();
        self.watch_with_capacity(slot, range, from, crate::watch::DEFAULT_WATCH_CAPACITY)
    }

    /// [`Store::watch`] that first replays every change committed after `from` (from the
    /// versions the store still holds), then goes on live, with no gap and no duplicate:
    /// how a watcher resumes after [`crate::Error::Lagged`], or after a restart from the last
    /// version it processed. A `from` older than what `merge` kept is
    /// [`crate::Error::VersionNotFound`]; while the feed lives, merge keeps what it needs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{KeyRange, KvStore, Version, backends::MemoryStorage};
    /// let store = KvStore::open(MemoryStorage::new()).await?;
    /// for n in 1..=3u32 {
    ///     store.transact(async |txn| txn.insert(0, &"n", n)).await?;
    /// }
    /// // Replays commits 2 and 3, then waits for new ones.
    /// let mut feed = store.watch_from(0, KeyRange::all(), Version::new(1, 0))?;
    /// let two = feed.next().await.transpose()?.expect("a change");
    /// assert_eq!((two.version.seq(), two.value_as::<u32>()?), (2, Some(2)));
    /// let three = feed.next().await.transpose()?.expect("a change");
    /// assert_eq!((three.version.seq(), three.value_as::<u32>()?), (3, Some(3)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch_from(
        &self,
        slot: impl Into<crate::Slot>,
        range: crate::KeyRange,
        from: Version,
    ) -> Result<crate::Watch<E>> {
        self.watch_with_capacity(slot, range, from, crate::watch::DEFAULT_WATCH_CAPACITY)
    }

    /// [`Store::watch_from`] buffering at most `capacity` changes (at least 1) before the
    /// feed is [`crate::Error::Lagged`] (default [`crate::watch::DEFAULT_WATCH_CAPACITY`]).
    /// [`crate::Error::InvalidArgument`] if the engine has no change feed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{Error, KeyRange, KvStore, backends::MemoryStorage};
    /// let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut feed = store.watch_with_capacity(0, KeyRange::all(), store.version()?, 2)?;
    /// for n in 0..5u32 {
    ///     store.transact(async |txn| txn.insert(0, &n, n)).await?;
    /// }
    /// let mut resume_from = None;
    /// while let Some(next) = feed.next().await {
    ///     match next {
    ///         Ok(change) => println!("{:?}", change.key_as::<u32>()?),
    ///         Err(Error::Lagged { resume_from: v }) => resume_from = Some(v),
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// let resumed = store.watch_from(0, KeyRange::all(), resume_from.expect("lagged"))?;
    /// # drop(resumed);
    /// # Ok(())
    /// # }
    /// ```
    pub fn watch_with_capacity(
        &self,
        slot: impl Into<crate::Slot>,
        range: crate::KeyRange,
        from: Version,
        capacity: usize,
    ) -> Result<crate::Watch<E>> {
        let Some(feed) = self.engine.feed() else {
            return Err(crate::Error::InvalidArgument(format!(
                "the {} engine has no change feed",
                E::NAME
            )));
        };
        crate::Watch::start(
            self.engine.clone(),
            feed.clone(),
            slot.into(),
            range,
            from,
            capacity,
        )
    }

    /// Drops old versions and removals, keeping each key's latest value; shrinks storage.
    /// Snapshots taken before keep reading what they read. A merge waits for exports and
    /// backups of this store that are still listing what they copy, and they wait for it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// for n in 0..3u32 {
    ///     store.transact(async |txn| txn.insert(0, &"counter", n)).await?;
    /// }
    /// assert_eq!(store.snapshot().versions(0, &"counter").await?.len(), 3);
    /// store.merge().await?;
    /// assert_eq!(store.snapshot().versions(0, &"counter").await?.len(), 1);
    /// assert_eq!(store.snapshot().get::<_, u32>(0, &"counter").await?, Some(2));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn merge(&self) -> Result<()> {
        self.sweep_expired().await?;
        merge_engine(self, &|_| {}).await
    }

    /// [`Store::merge`], reporting its progress to `progress`.
    ///
    /// ```
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// store
    ///     .merge_with(&|p| eprintln!("{}: {} of {}", p.stage, p.done, p.total))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn merge_with(&self, progress: &crate::ProgressFn<'_>) -> Result<()> {
        self.sweep_expired().await?;
        merge_engine(self, progress).await
    }

    /// Checks the store's integrity: every file's CRCs, records and the engine's invariants
    /// (see [`Engine::verify`]). Damage is listed in the report, never fixed; an `Err` means
    /// the check itself failed (I/O, a closed store). Changes nothing: it works on a store
    /// opened with [`Store::open_read_only`], also while another store writes the storage.
    ///
    /// ```
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let report = store.verify().await?;
    /// for damage in &report.damage {
    ///     eprintln!("{damage}");
    /// }
    /// assert!(report.is_clean());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn verify(&self) -> Result<crate::VerifyReport> {
        self.verify_with(&|_| {}).await
    }

    /// [`Store::verify`], reporting its progress to `progress`.
    ///
    /// ```
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let report = store
    ///     .verify_with(&|p| eprintln!("{}: {} of {}", p.stage, p.done, p.total))
    ///     .await?;
    /// println!("{} files, {} records, {} bytes", report.files, report.records, report.bytes);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn verify_with(
        &self,
        progress: &crate::ProgressFn<'_>,
    ) -> Result<crate::VerifyReport> {
        self.engine.verify(progress).await
    }

    /// Makes every commit so far durable (after [`crate::Durability::Buffered`] commits).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// use kv_db::Durability;
    /// let mut txn = store.current();
    /// txn.set_durability(Durability::Buffered); // returns before the sync
    /// txn.insert(0, &"k", 1u8)?;
    /// txn.commit().await?;
    /// store.flush().await?; // now synced, with every commit before it
    /// assert_eq!(store.snapshot().get::<_, u8>(0, &"k").await?, Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&self) -> Result<()> {
        self.engine.flush().await
    }

    /// What opening this store had to leave out: a torn last transaction after a crash, for
    /// example (nothing whose commit returned). Empty after a clean shutdown.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let report = store.recovery();
    /// assert!(report.dropped.is_empty()); // a new store: nothing was torn
    /// for d in &report.dropped {
    ///     eprintln!("{}: {} bytes at {} left out: {}", d.file, d.bytes, d.offset, d.reason);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn recovery(&self) -> RecoveryReport {
        self.engine.recovery()
    }

    /// Counters: keys, versions, bytes, garbage, files.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// store.transact(async |txn| txn.insert(0, &"a", 1u8)).await?;
    /// store.transact(async |txn| txn.insert(0, &"a", 2u8)).await?;
    /// let stats = store.stats().await?;
    /// assert_eq!(stats.engine, "bitcask");
    /// assert_eq!((stats.live_keys, stats.versions), (1, 2));
    /// assert_eq!(stats.last_version, store.version()?);
    /// println!("{:.0}% of storage is garbage", stats.garbage_ratio() * 100.0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn stats(&self) -> Result<Stats> {
        let mut stats = self.engine.stats().await?;
        self.auto_merge.fill(&mut stats);
        Ok(stats)
    }

    /// Flushes and closes the store (every clone) and releases the storage's writer lock, so
    /// the storage can be opened again at once. Later calls fail with
    /// [`crate::Error::Closed`], except `close`: closing a closed store does nothing and
    /// returns `Ok(())`. Without `close`, the writer lock is released when the last clone
    /// drops. See [`crate::Engine::close`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{Error, KvStore, backends::MemoryStorage};
    /// let storage = MemoryStorage::new();
    /// let store = KvStore::open(storage.clone()).await?;
    /// store.close().await?;
    /// assert!(matches!(store.current().get::<_, u8>(0, &"k").await, Err(Error::Closed)));
    /// store.close().await?; // closing again does nothing
    /// let reopened = KvStore::open(storage).await?; // the writer lock is free at once
    /// assert_eq!(reopened.version()?, kv_db::Version::ZERO);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) -> Result<()> {
        // A running automatic merge (maybe a background task) ends first: it holds this.
        let _no_merge = self.auto_merge.exclusion.write().await;
        self.engine.close().await
    }
}
