//! The typed store, written once over [`Engine`].

use std::sync::Arc;

use crate::{Engine, Options, RecoveryReport, Result, Stats, Transaction, Version};

/// A typed, versioned, transactional key-value store on engine `E`.
///
/// Cheap to clone (an `Arc`), and shareable across tasks: clones are the same store.
///
/// ```ignore
/// let store = Store::<Bitcask<MemoryStorage>>::open(MemoryStorage::new()).await?;
/// let mut txn = store.current();
/// txn.insert(0, &"key", &1u32)?;
/// txn.commit().await?;
/// ```
pub struct Store<E: Engine> {
    engine: Arc<E>,
}

impl<E: Engine> Clone for Store<E> {
    fn clone(&self) -> Self {
        Store {
            engine: self.engine.clone(),
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
        Ok(Self::from_engine(E::open(storage, options, tuning).await?))
    }

    /// Opens an existing store read-only: no writer lock is taken, nothing is ever written,
    /// and every mutation fails with [`crate::Error::ReadOnly`].
    pub async fn open_read_only(storage: E::Storage) -> Result<Self> {
        Self::open_with(storage, Options::default().read_only(true)).await
    }

    /// Wraps an engine opened by hand.
    pub fn from_engine(engine: E) -> Self {
        Store {
            engine: Arc::new(engine),
        }
    }

    /// The engine underneath, for byte-level access.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// A new transaction reading the latest commit, plus its own writes.
    pub fn current(&self) -> Transaction<E> {
        Transaction::new(self.engine.clone(), self.engine.snapshot(), false)
    }

    /// A read-only view of the latest commit. Cheap; stable while other transactions commit.
    pub fn snapshot(&self) -> Transaction<E> {
        Transaction::new(self.engine.clone(), self.engine.snapshot(), true)
    }

    /// A read-only view of the whole store as it was right after commit `version`.
    /// [`crate::Error::VersionNotFound`] if `merge` dropped it or it is not committed yet.
    pub async fn snapshot_at(&self, version: Version) -> Result<Transaction<E>> {
        let snap = self.engine.snapshot_at(version)?;
        Ok(Transaction::new(self.engine.clone(), Ok(snap), true))
    }

    /// The latest committed version ([`Version::ZERO`] for an empty store).
    pub fn version(&self) -> Result<Version> {
        Ok(self.engine.snapshot()?.version())
    }

    /// Drops old versions and removals, keeping each key's latest value; shrinks storage.
    pub async fn merge(&self) -> Result<()> {
        self.engine.merge().await
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
