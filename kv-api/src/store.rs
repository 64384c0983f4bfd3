//! The typed store, written once over [`Engine`].

use std::sync::Arc;

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
/// ```ignore
/// let store = Store::<Bitcask<MemoryStorage>>::open(MemoryStorage::new()).await?;
/// let mut txn = store.current();
/// txn.insert(0, &"key", &1u32)?;
/// txn.commit().await?;
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
}

impl<E: Engine> Clone for Store<E> {
    fn clone(&self) -> Self {
        Store {
            engine: self.engine.clone(),
            catalog: self.catalog.clone(),
        }
    }
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
    pub async fn open(storage: E::Storage) -> Result<Self> {
        Self::open_with(storage, Options::default()).await
    }

    /// Opens (or creates) a store with `options` and the engine's default [`Engine::Tuning`].
    pub async fn open_with(storage: E::Storage, options: Options) -> Result<Self> {
        Self::open_tuned(storage, options, E::Tuning::default()).await
    }

    /// Opens (or creates) a store with `options` and the engine's own knobs `tuning`.
    pub async fn open_tuned(
        storage: E::Storage,
        options: Options,
        tuning: E::Tuning,
    ) -> Result<Self> {
        let storage = if options.read_only {
            crate::Storage::read_only(&storage)
        } else {
            storage
        };
        Self::from_engine(E::open(storage, options, tuning).await?).await
    }

    /// Opens an existing store read-only: no writer lock is taken, nothing is ever written,
    /// and every mutation fails with [`crate::Error::ReadOnly`]. Every open with
    /// [`Options::read_only`] goes through [`crate::Storage::read_only`], so a store on files
    /// the user may read but not write opens (`FileStorage` then opens them read-only).
    pub async fn open_read_only(storage: E::Storage) -> Result<Self> {
        Self::open_with(storage, Options::default().read_only(true)).await
    }

    /// Wraps an engine opened by hand (reading the catalog of typed slots).
    pub async fn from_engine(engine: E) -> Result<Self> {
        let catalog = Catalog::load(&engine).await?;
        Ok(Store {
            engine: Arc::new(engine),
            catalog: Arc::new(catalog),
        })
    }

    /// The engine underneath, for byte-level access.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// A new transaction reading the latest commit, plus its own writes. Synchronous: it
    /// only pins the latest commit. On a closed store every call of the transaction returns
    /// [`crate::Error::Closed`].
    ///
    /// ```
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let mut txn = store.current();
    /// txn.insert(0, &"key", &1u32)?;
    /// txn.commit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn current(&self) -> Transaction<E> {
        self.transaction(self.engine.snapshot(), false)
    }

    /// A read-only view of the latest commit. Cheap; stable while other transactions commit.
    ///
    /// ```
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let snap = store.snapshot();
    /// let value: Option<u32> = snap.get(0, &"key").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn snapshot(&self) -> Transaction<E> {
        self.transaction(self.engine.snapshot(), true)
    }

    fn transaction(&self, snapshot: Result<crate::Snapshot>, read_only: bool) -> Transaction<E> {
        Transaction::new(
            self.engine.clone(),
            self.catalog.clone(),
            snapshot,
            read_only,
        )
    }

    /// Runs `f` in a new transaction and commits it; if the commit (or `f`) fails with
    /// [`crate::Error::Conflict`], runs it again in a fresh transaction, up to
    /// [`Retry::default`] (10) attempts with a jittered backoff (see [`Retry`]). Returns what
    /// `f` returned, or its first error that is not a conflict, or the last conflict. `f` may
    /// run several times: it should do nothing but read and write through its transaction.
    ///
    /// ```
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let visits = store
    ///     .transact(async |txn| {
    ///         let n: u64 = txn.get(0, &"visits").await?.unwrap_or(0);
    ///         txn.insert(0, &"visits", n + 1)?;
    ///         Ok(n + 1)
    ///     })
    ///     .await?;
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
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// use kv_api::Retry;
    /// store
    ///     .transact_with(Retry::attempts(50), async |txn| txn.insert(0, &"hot key", 1u8))
    ///     .await?;
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
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// for slot in store.slots().await? {
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
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// const USERS: kv_api::SlotDef<(String, u32), String> = kv_api::SlotDef::new(1, "users");
    /// store.open_slot(&USERS).await?;
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
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// const USERS_V2: kv_api::SlotDef<(String, u64), String> = kv_api::SlotDef::new(1, "users");
    /// store.redefine_slot(&USERS_V2).await?;
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
    pub async fn snapshot_at(&self, version: Version) -> Result<Transaction<E>> {
        let snap = self.engine.snapshot_at(version)?;
        Ok(self.transaction(Ok(snap), true))
    }

    /// The latest committed version ([`Version::ZERO`] for an empty store).
    pub fn version(&self) -> Result<Version> {
        Ok(self.engine.snapshot()?.version())
    }

    /// Drops old versions and removals, keeping each key's latest value; shrinks storage.
    pub async fn merge(&self) -> Result<()> {
        self.engine.merge().await
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
        self.engine.merge_with(progress).await
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
    pub async fn flush(&self) -> Result<()> {
        self.engine.flush().await
    }

    /// What opening this store had to leave out: a torn last transaction after a crash, for
    /// example (nothing whose commit returned). Empty after a clean shutdown.
    ///
    /// ```
    /// # async fn demo(store: kv_api::Store<impl kv_api::Engine>) {
    /// for d in &store.recovery().dropped {
    ///     eprintln!("{}: {} bytes at {} left out: {}", d.file, d.bytes, d.offset, d.reason);
    /// }
    /// # }
    /// ```
    pub fn recovery(&self) -> RecoveryReport {
        self.engine.recovery()
    }

    /// Counters: keys, versions, bytes, garbage, files.
    pub async fn stats(&self) -> Result<Stats> {
        self.engine.stats().await
    }

    /// Flushes and closes the store (every clone) and releases the storage's writer lock, so
    /// the storage can be opened again at once. Later calls fail with
    /// [`crate::Error::Closed`], except `close`: closing a closed store does nothing and
    /// returns `Ok(())`. Without `close`, the writer lock is released when the last clone
    /// drops. See [`crate::Engine::close`].
    pub async fn close(&self) -> Result<()> {
        self.engine.close().await
    }
}
