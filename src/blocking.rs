//! The store for programs without an async runtime: the same [`crate::Store`], the same
//! [`Transaction`] and the same semantics, with every call that waits made blocking.
//!
//! * [`Store`] wraps [`crate::Store`]: `open`, `transact`, `merge`, `close` and the other
//!   calls that wait are plain functions that return when the async call would have.
//! * Transactions are the async API's own [`Transaction`]: its synchronous calls (`insert`,
//!   `remove`, `slot_mut`, ...) are used as they are, and [`Wait::wait`] blocks on any of its
//!   futures: `txn.get(0, &"key").wait()?`, `txn.commit().wait()?`, `users.get(&k).wait()?`.
//!
//! Scans are the same too: a [`kv_api::RangeStream`], a key-only scan
//! ([`kv_api::RangeQuery::keys`]) or a cursor of value-lazy rows ([`kv_api::RowStream`],
//! whose [`kv_api::LazyRow::value`] is read only when asked) is driven by waiting on each
//! step:
//!
//! ```
//! use kv_db::blocking::{KvStore, Wait};
//! use kv_db::backends::MemoryStorage;
//!
//! let store = KvStore::open(MemoryStorage::new())?;
//! store.transact(|txn| (1..=5u32).try_for_each(|i| txn.insert(0, &i, format!("row {i}"))))?;
//! let snap = store.snapshot();
//! let ids: Vec<u32> = snap.range::<u32, String>(0, 2..).keys().wait()?;
//! assert_eq!(ids, [2, 3, 4, 5]);
//! let mut rows = snap.range::<u32, String>(0, ..).rows();
//! while let Some(row) = rows.next().wait()? {
//!     if row.key == 4 {
//!         assert_eq!(row.value().wait()?, "row 4"); // the only value read
//!     }
//! }
//! # Ok::<(), kv_db::Error>(())
//! ```
//!
//! **Which runtime runs inside**: none. [`Wait::wait`] polls the future on the calling thread
//! and parks the thread until the future's waker wakes it (a dozen lines of `std`). With no
//! async runtime on the thread, the file backend makes its system calls inline (there is no
//! executor to stall) and the LSM engine flushes and compacts inline, in the commit that
//! fills its memtable, instead of in background tasks. Calls may nest (a blocking call inside
//! a [`Store::transact`] closure) and may come from many threads at once (the store is
//! `Send + Sync`; clones share it). Do not call them from async code: there, use
//! [`crate::Store`] and `.await`.
//!
//! ```no_run
//! use kv_db::blocking::{KvStore, Wait};
//! use kv_db::{SlotDef, backends::FileStorage};
//!
//! const VISITS: SlotDef<String, u64> = SlotDef::new(1, "visits");
//!
//! fn main() -> kv_db::Result<()> {
//!     let store = KvStore::<FileStorage>::open(FileStorage::open("./data").wait()?)?;
//!     let n = store.transact(|txn| {
//!         let n = txn.slot(&VISITS)?.get("/").wait()?.unwrap_or(0) + 1;
//!         txn.slot_mut(&VISITS)?.insert("/", &n)?;
//!         Ok(n)
//!     })?;
//!     println!("{n} visits");
//!     store.close()
//! }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use kv_api::{Engine, Options, RecoveryReport, Retry, SlotDef, SlotInfo, Stats, Version};

pub use kv_api::Transaction;

use crate::Result;

/// Blocks the calling thread until a future completes: `.wait()` on any future.
pub trait Wait: Future + Sized {
    /// Runs the future to completion on this thread (see the [module docs](self)).
    ///
    /// ```
    /// use kv_db::blocking::Wait;
    /// assert_eq!(async { 1 + 1 }.wait(), 2);
    /// ```
    fn wait(self) -> Self::Output {
        let mut fut = std::pin::pin!(self);
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            // A wake before the park leaves a token, so no wake-up is lost; a spurious one
            // only polls again. The yield first gives other threads the turn that a future
            // yielding to other tasks (the jittered backoff of `transact`) means to give.
            std::thread::yield_now();
            std::thread::park();
        }
    }
}

impl<F: Future> Wait for F {}

/// How long a blocking [`Store::transact_with`] sleeps after its `attempt`-th conflict: a
/// random time up to 50 us x 2^(attempt - 1), at most 12.8 ms.
fn backoff(attempt: u32) -> std::time::Duration {
    use std::hash::{BuildHasher, Hasher};
    let cap_us = 50u64 << attempt.saturating_sub(1).min(8);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let us = h.finish() % cap_us.max(1);
    std::time::Duration::from_micros(us.saturating_add(1))
}

/// The waker of [`Wait::wait`]: unparks the waiting thread.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The blocking store on the engine the features select ([`crate::KvStore`]'s), over `S`.
pub type KvStore<S> = Store<crate::DefaultEngine<S>>;

/// [`crate::Store`] with blocking calls. Cheap to clone; clones are the same store. See the
/// [module docs](self).
pub struct Store<E: Engine> {
    inner: crate::Store<E>,
}

impl<E: Engine> Clone for Store<E> {
    fn clone(&self) -> Self {
        Store {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Engine> std::fmt::Debug for Store<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<E: Engine> From<crate::Store<E>> for Store<E> {
    fn from(inner: crate::Store<E>) -> Self {
        Store { inner }
    }
}

impl<E: Engine> Store<E> {
    /// [`crate::Store::open`]: opens (or creates) a store with default options.
    ///
    /// ```
    /// use kv_db::{backends::MemoryStorage, blocking::KvStore};
    /// let store = KvStore::<MemoryStorage>::open(MemoryStorage::new())?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn open(storage: E::Storage) -> Result<Self> {
        crate::Store::open(storage).wait().map(Self::from)
    }

    /// [`crate::Store::open_with`]: opens (or creates) a store with `options`.
    ///
    /// ```
    /// use kv_db::{Durability, Options, backends::MemoryStorage, blocking::KvStore};
    /// let options = Options::default().durability(Durability::Buffered);
    /// let store = KvStore::<MemoryStorage>::open_with(MemoryStorage::new(), options)?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn open_with(storage: E::Storage, options: Options) -> Result<Self> {
        crate::Store::open_with(storage, options)
            .wait()
            .map(Self::from)
    }

    /// [`crate::Store::open_tuned`]: opens (or creates) a store with `options` and `tuning`.
    pub fn open_tuned(storage: E::Storage, options: Options, tuning: E::Tuning) -> Result<Self> {
        crate::Store::open_tuned(storage, options, tuning)
            .wait()
            .map(Self::from)
    }

    /// [`crate::Store::open_read_only`]: opens an existing store read-only.
    ///
    /// ```
    /// use kv_db::{backends::MemoryStorage, blocking::KvStore};
    /// let store = KvStore::<MemoryStorage>::open_read_only(MemoryStorage::new())?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn open_read_only(storage: E::Storage) -> Result<Self> {
        crate::Store::open_read_only(storage).wait().map(Self::from)
    }

    /// The async store underneath (the same store: what one commits, the other sees).
    pub fn as_async(&self) -> &crate::Store<E> {
        &self.inner
    }

    /// [`crate::Store::current`]: a new transaction on the latest commit.
    ///
    /// ```
    /// use kv_db::blocking::Wait;
    /// # let store = kv_db::blocking::KvStore::<kv_db::backends::MemoryStorage>::open(kv_db::backends::MemoryStorage::new())?;
    /// let mut txn = store.current();
    /// txn.insert(0, &"key", 1u32)?;
    /// txn.commit().wait()?;
    /// assert_eq!(store.snapshot().get::<_, u32>(0, &"key").wait()?, Some(1));
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn current(&self) -> Transaction<E> {
        self.inner.current()
    }

    /// [`crate::Store::snapshot`]: a read-only view of the latest commit.
    ///
    /// ```
    /// use kv_db::blocking::Wait;
    /// # let store = kv_db::blocking::KvStore::<kv_db::backends::MemoryStorage>::open(kv_db::backends::MemoryStorage::new())?;
    /// let value: Option<u32> = store.snapshot().get(0, &"key").wait()?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn snapshot(&self) -> Transaction<E> {
        self.inner.snapshot()
    }

    /// [`crate::Store::snapshot_at`]: the whole store as it was right after `version`.
    pub fn snapshot_at(&self, version: Version) -> Result<Transaction<E>> {
        self.inner.snapshot_at(version).wait()
    }

    /// [`crate::Store::transact`]: runs `f` in a new transaction and commits it, again on
    /// [`crate::Error::Conflict`] (up to [`Retry::default`] attempts). `f` may block (with
    /// [`Wait::wait`]) and may run several times. Between attempts the thread sleeps a
    /// jittered time that doubles per attempt (50 us, up to 12.8 ms).
    ///
    /// ```
    /// use kv_db::blocking::Wait;
    /// # let store = kv_db::blocking::KvStore::<kv_db::backends::MemoryStorage>::open(kv_db::backends::MemoryStorage::new())?;
    /// let visits = store.transact(|txn| {
    ///     let n: u64 = txn.get(0, &"visits").wait()?.unwrap_or(0);
    ///     txn.insert(0, &"visits", n + 1)?;
    ///     Ok(n + 1)
    /// })?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn transact<T>(&self, f: impl FnMut(&mut Transaction<E>) -> Result<T>) -> Result<T> {
        self.transact_with(Retry::default(), f)
    }

    /// [`crate::Store::transact_with`]: [`Store::transact`] with `retry` attempts.
    ///
    /// ```
    /// # let store = kv_db::blocking::KvStore::<kv_db::backends::MemoryStorage>::open(kv_db::backends::MemoryStorage::new())?;
    /// store.transact_with(kv_db::Retry::attempts(50), |txn| txn.insert(0, &"hot key", 1u8))?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn transact_with<T>(
        &self,
        retry: Retry,
        mut f: impl FnMut(&mut Transaction<E>) -> Result<T>,
    ) -> Result<T> {
        // The async loop backs off in executor turns; between threads a turn is a
        // `sched_yield`, far shorter than the commit being waited for. A blocking caller owns
        // its thread, so it sleeps instead: 50 us doubled per attempt up to 12.8 ms, jittered.
        let mut attempt: u32 = 1;
        loop {
            let mut txn = self.inner.current();
            let outcome = f(&mut txn).and_then(|value| txn.commit().wait().map(|_| value));
            match outcome {
                Err(e) if e.is_conflict() && attempt < retry.max_attempts() => {
                    std::thread::sleep(backoff(attempt));
                    attempt = attempt.saturating_add(1);
                }
                other => return other,
            }
        }
    }

    /// [`crate::Store::slots`]: the typed slots the catalog records.
    ///
    /// ```
    /// # let store = kv_db::blocking::KvStore::<kv_db::backends::MemoryStorage>::open(kv_db::backends::MemoryStorage::new())?;
    /// for slot in store.slots()? {
    ///     println!("{} {}: {} -> {}", slot.slot, slot.name, slot.key_type, slot.value_type);
    /// }
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn slots(&self) -> Result<Vec<SlotInfo>> {
        self.inner.slots().wait()
    }

    /// [`crate::Store::open_slot`]: checks `def` against the catalog, recording it if new.
    ///
    /// ```
    /// # let store = kv_db::blocking::KvStore::<kv_db::backends::MemoryStorage>::open(kv_db::backends::MemoryStorage::new())?;
    /// const USERS: kv_db::SlotDef<(String, u32), String> = kv_db::SlotDef::new(1, "users");
    /// store.open_slot(&USERS)?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn open_slot<K, V>(&self, def: &SlotDef<K, V>) -> Result<()> {
        self.inner.open_slot(def).wait()
    }

    /// [`crate::Store::redefine_slot`]: records `def` whatever the catalog recorded before.
    pub fn redefine_slot<K, V>(&self, def: &SlotDef<K, V>) -> Result<()> {
        self.inner.redefine_slot(def).wait()
    }

    /// [`crate::Store::version`]: the latest committed version.
    pub fn version(&self) -> Result<Version> {
        self.inner.version()
    }

    /// [`crate::Store::merge`]: drops old versions and removals; shrinks storage.
    ///
    /// ```
    /// # let store = kv_db::blocking::KvStore::<kv_db::backends::MemoryStorage>::open(kv_db::backends::MemoryStorage::new())?;
    /// store.merge()?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn merge(&self) -> Result<()> {
        self.inner.merge().wait()
    }

    /// [`crate::Store::flush`]: makes every commit so far durable.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush().wait()
    }

    /// [`crate::Store::recovery`]: what opening this store had to leave out.
    pub fn recovery(&self) -> RecoveryReport {
        self.inner.recovery()
    }

    /// [`crate::Store::stats`]: keys, versions, bytes, garbage, files.
    pub fn stats(&self) -> Result<Stats> {
        self.inner.stats().wait()
    }

    // --- export, import, backup (issue #13)

    /// [`crate::Store::export`]: writes every commit (or the latest values) to `out` as a
    /// portable export stream, from one pinned snapshot.
    ///
    /// ```
    /// # use kv_db::backends::MemoryStorage;
    /// # let store = kv_db::blocking::KvStore::<MemoryStorage>::open(MemoryStorage::new())?;
    /// # let target = kv_db::blocking::KvStore::<MemoryStorage>::open(MemoryStorage::new())?;
    /// let mut stream = Vec::new();
    /// store.export(&mut stream, kv_db::ExportScope::AllVersions, &|_| {})?;
    /// target.import(stream.as_slice(), &|_| {})?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn export<W: std::io::Write + Send>(
        &self,
        out: W,
        scope: crate::ExportScope,
        progress: &crate::ProgressFn<'_>,
    ) -> Result<crate::ExportSummary> {
        self.inner.export(out, scope, progress).wait()
    }

    /// [`crate::Store::import`]: applies an export stream, keeping every commit's version.
    pub fn import<R: std::io::Read + Send>(
        &self,
        input: R,
        progress: &crate::ProgressFn<'_>,
    ) -> Result<crate::ImportSummary> {
        self.inner.import(input, progress).wait()
    }

    /// [`crate::Store::copy_into`]: copies this store into a new store of any engine.
    pub fn copy_into<T: crate::Engine>(
        &self,
        target: &Store<T>,
        scope: crate::ExportScope,
        progress: &crate::ProgressFn<'_>,
    ) -> Result<crate::CopySummary> {
        self.inner.copy_into(&target.inner, scope, progress).wait()
    }

    /// [`crate::Store::backup_to`]: a consistent copy into an empty storage.
    pub fn backup_to(
        &self,
        target: E::Storage,
        progress: &crate::ProgressFn<'_>,
    ) -> Result<crate::BackupSummary>
    where
        E::Storage: crate::Storage,
    {
        self.inner.backup_to(target, progress).wait()
    }

    /// [`crate::Store::close`]: flushes and closes the store (every clone) and releases the
    /// writer lock.
    ///
    /// ```
    /// # let store = kv_db::blocking::KvStore::<kv_db::backends::MemoryStorage>::open(kv_db::backends::MemoryStorage::new())?;
    /// store.close()?;
    /// # Ok::<(), kv_db::Error>(())
    /// ```
    pub fn close(&self) -> Result<()> {
        self.inner.close().wait()
    }
}
