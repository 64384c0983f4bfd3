//! Version retention and merge that runs itself (issue #18, part 4).
//!
//! By default every version stays readable until [`crate::Store::merge`], which keeps each
//! key's latest value (and what open snapshots need). A store opts into a [`Retention`]
//! policy with [`crate::Options::retention`] (a slot with [`crate::Options::slot_retention`]):
//! merge then keeps, on top of what open snapshots need, the versions the policy names, and
//! runs by itself when the garbage passes the thresholds of [`AutoMerge`].
//!
//! **Where the automatic merge runs.** In the task of the commit that found the thresholds
//! passed, after that commit is durable and visible (its `commit` returns once the merge is
//! done). That needs no runtime, so it is the same natively, under any executor, and in the
//! browser; merges yield to the executor as they go, and one merge runs at a time (a commit
//! that finds one running goes on). A merge never breaks an open snapshot's view (it keeps
//! what the oldest one can see), and the check that triggers it is a counter on the commit
//! path and, every [`AutoMerge::check_every`] commits (or quarter of [`AutoMerge::min_bytes`]
//! written), one [`crate::Engine::stats`] call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::{Engine, Options, Result, Slot};

/// Which old versions a merge keeps (beyond what open snapshots need): the newest
/// `keep_last` versions of each key, and every version younger than `keep_for`. A key whose
/// newest version older than both is a removal is dropped with its older versions, as merge
/// drops removed keys. Versions newer than the oldest open snapshot are always kept.
///
/// ```
/// use std::time::Duration;
/// use kv_api::{Options, Retention};
/// let options = Options::default().retention(Retention::last(3));
/// let hour = Options::default().retention(Retention::younger_than(Duration::from_secs(3600)));
/// let both = Retention::last(2).and_younger_than(Duration::from_secs(60));
/// assert_eq!(both.keep_last(), 2);
/// # let _ = (options, hour);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    keep_last: u32,
    keep_for_ms: Option<u64>,
}

impl Retention {
    /// Keep only each key's latest version: what a manual merge does, now run by itself.
    pub const LATEST: Retention = Retention {
        keep_last: 1,
        keep_for_ms: None,
    };

    /// Keep the newest `n` versions of each key (`0` is taken as 1: the latest value is
    /// never dropped).
    ///
    /// ```
    /// assert_eq!(kv_api::Retention::last(0).keep_last(), 1);
    /// ```
    pub fn last(n: u32) -> Self {
        Retention {
            keep_last: n.max(1),
            keep_for_ms: None,
        }
    }

    /// Keep every version committed less than `age` ago (by the store's
    /// [`crate::Clock`]), and each key's latest version.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r = kv_api::Retention::younger_than(Duration::from_secs(90));
    /// assert_eq!(r.keep_for(), Some(Duration::from_secs(90)));
    /// ```
    pub fn younger_than(age: Duration) -> Self {
        Retention::LATEST.and_younger_than(age)
    }

    /// This policy, also keeping every version younger than `age`.
    pub fn and_younger_than(self, age: Duration) -> Self {
        Retention {
            keep_for_ms: Some(u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
            ..self
        }
    }

    /// Versions kept per key.
    pub fn keep_last(&self) -> u32 {
        self.keep_last
    }

    /// The age below which every version is kept, if any.
    pub fn keep_for(&self) -> Option<Duration> {
        self.keep_for_ms.map(Duration::from_millis)
    }

    /// The age in ms below which every version is kept, if any.
    pub fn keep_for_ms(&self) -> Option<u64> {
        self.keep_for_ms
    }
}

/// When a store with a [`Retention`] policy merges by itself: once at least `min_ratio` of
/// its storage and `min_bytes` bytes are garbage ([`crate::Stats::garbage_bytes`], less what
/// the last automatic merge had to keep for the policy or for snapshots), checked every
/// `check_every` commits or every quarter of `min_bytes` of keys and values committed,
/// whichever comes first.
///
/// Where a runtime allows (natively, when the commit runs on a multi-thread tokio runtime),
/// the check and the merge run as a task of that runtime ([`AutoMerge::background`]): the
/// commit that triggers them returns at once. Elsewhere (a current-thread runtime, WASI, the
/// browser, any other executor) they run in the committing task, after its commit is durable.
/// One runs at a time; [`crate::Store::close`] waits for a running one. A store dropped
/// without `close` stays open (its files locked) until a running merge ends.
///
/// The defaults (ratio 0.4, 1 MiB, every 64 commits) come from the steady-overwrite
/// measurement in `docs/benchmarks.md`: a ratio r bounds a store with retention
/// [`Retention::LATEST`] near 1 / (1 - r) x its live data (0.4: 1.67 x; measured 1.63 x on
/// Bitcask, 1.69 x on the LSM, against 1.94 x and 2.05 x at 0.5, the target being 2 x), and
/// 0.3 merged half as often again for 0.2 x less. Checking by bytes written too keeps large
/// commits from overshooting between checks. The byte floor keeps a small store from merging
/// every few commits, and the checks' [`crate::Engine::stats`] calls are a negligible share
/// of commit time.
///
/// ```
/// use kv_api::{AutoMerge, Options, Retention};
/// let options = Options::default()
///     .retention(Retention::LATEST)
///     .auto_merge(AutoMerge::default().min_ratio(0.5).min_bytes(64 << 20));
/// assert_eq!(options.auto_merge.min_bytes, 64 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoMerge {
    /// Share of storage that is garbage, 0.0 to 1.0 (default 0.4).
    pub min_ratio: f64,
    /// Garbage bytes (default 1 MiB).
    pub min_bytes: u64,
    /// Commits between two checks (default 64; 0 is taken as 1).
    pub check_every: u64,
    /// Off: a policy applies to manual merges only.
    pub enabled: bool,
    /// Run them as a task of the caller's multi-thread tokio runtime where there is one
    /// (default); `false`: always in the committing task.
    pub background: bool,
}

impl Default for AutoMerge {
    fn default() -> Self {
        AutoMerge {
            min_ratio: 0.4,
            min_bytes: 1 << 20,
            check_every: 64,
            enabled: true,
            background: true,
        }
    }
}

impl AutoMerge {
    /// No automatic merge: a [`Retention`] policy then applies to manual merges only.
    pub fn off() -> Self {
        AutoMerge {
            enabled: false,
            ..AutoMerge::default()
        }
    }

    /// Sets [`AutoMerge::min_ratio`].
    pub fn min_ratio(self, min_ratio: f64) -> Self {
        AutoMerge { min_ratio, ..self }
    }

    /// Sets [`AutoMerge::min_bytes`].
    pub fn min_bytes(self, min_bytes: u64) -> Self {
        AutoMerge { min_bytes, ..self }
    }

    /// Sets [`AutoMerge::background`].
    ///
    /// ```
    /// use kv_api::AutoMerge;
    /// // Merges in the committing task, even on a multi-thread runtime.
    /// let inline = AutoMerge::default().background(false);
    /// assert!(!inline.background);
    /// ```
    pub fn background(self, background: bool) -> Self {
        AutoMerge { background, ..self }
    }

    /// Sets [`AutoMerge::check_every`].
    pub fn check_every(self, check_every: u64) -> Self {
        AutoMerge {
            check_every,
            ..self
        }
    }
}

/// The policy of `slot` under `options`: its own, or the store's, or `None` (no policy:
/// a merge keeps each key's latest value only).
pub fn policy_of(options: &Options, slot: Slot) -> Option<Retention> {
    options
        .slot_retention
        .iter()
        .rev()
        .find(|(s, _)| *s == slot)
        .map(|(_, r)| *r)
        .or(options.retention)
}

/// The merges of one store: the exclusion between merges and exports, and the automatic
/// merges' trigger state and counters (in [`crate::Stats::auto_merges`] and the fields after
/// it).
#[derive(Debug, Default)]
pub(crate) struct AutoMerger {
    /// Merges take it exclusively; exports, copies and backups take it shared while they pin
    /// and list what they will copy. A merge fixes its horizon when it starts (without pins
    /// taken later) and drops removal markers at or below it, so a listing that overlapped a
    /// running merge could show some slots before it and some after it.
    pub(crate) exclusion: tokio::sync::RwLock<()>,
    commits: AtomicU64,
    /// Bytes of keys and values committed since the last check.
    written: AtomicU64,
    running: AtomicBool,
    /// Held by a background merge for its whole run: commits that wrote too much beside it
    /// wait on it (see [`AutoMerger::after_commit`]).
    busy: Arc<tokio::sync::Mutex<()>>,
    /// Bytes of keys and values committed since the running background merge started.
    written_beside: AtomicU64,
    /// Garbage bytes the last automatic merge left (what policy and snapshots kept).
    baseline: AtomicU64,
    merges: AtomicU64,
    merge_ms: AtomicU64,
    reclaimed: AtomicU64,
}

impl AutoMerger {
    /// Called after each commit of the store with the bytes of keys and values it wrote:
    /// counts it, and every `check_every` commits, or every quarter of `min_bytes` written,
    /// checks the thresholds and merges.
    pub(crate) async fn after_commit<E: Engine>(
        self: &Arc<Self>,
        store: &crate::Store<E>,
        bytes: u64,
    ) -> Result<()> {
        let engine = store.engine();
        let options = engine.options();
        let auto = options.auto_merge;
        let has_policy = options.retention.is_some() || !options.slot_retention.is_empty();
        if !auto.enabled || !has_policy || options.read_only {
            return Ok(());
        }
        if self.running.load(Ordering::Acquire) {
            // Backpressure: a background merge reclaims what was written before it started;
            // commits beside it add garbage it cannot see. Past an eighth of `min_bytes` of
            // them, commits wait for it to end (as an inline merge makes them wait), so the
            // store cannot outgrow its merges.
            let beside = self
                .written_beside
                .fetch_add(bytes, Ordering::Relaxed)
                .saturating_add(bytes);
            if beside >= auto.min_bytes / 8 {
                drop(self.busy.lock().await);
            }
        }
        let n = self.commits.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let written = self
            .written
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        if !n.is_multiple_of(auto.check_every.max(1)) && written < auto.min_bytes / 4 {
            return Ok(());
        }
        self.written.store(0, Ordering::Relaxed);
        if self.running.swap(true, Ordering::AcqRel) {
            return Ok(()); // another task merges
        }
        #[cfg(not(target_arch = "wasm32"))]
        if auto.background
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
        {
            // Free: only the task that set `running` takes it.
            if let Ok(busy) = self.busy.clone().try_lock_owned() {
                self.written_beside.store(0, Ordering::Relaxed);
                let (me, store) = (self.clone(), store.clone());
                // Its error is no commit's: a storage failure poisons the store, and later
                // commits report that.
                drop(runtime.spawn(async move {
                    let _ = me.check_and_merge(&store, &auto).await;
                    me.running.store(false, Ordering::Release);
                    drop(busy);
                }));
                return Ok(());
            }
        }
        let result = self.check_and_merge(store, &auto).await;
        self.running.store(false, Ordering::Release);
        result
    }

    async fn check_and_merge<E: Engine>(
        &self,
        store: &crate::Store<E>,
        auto: &AutoMerge,
    ) -> Result<()> {
        let engine = store.engine();
        let before = engine.stats().await?;
        let baseline = self.baseline.load(Ordering::Relaxed);
        let new_garbage = before.garbage_bytes.saturating_sub(baseline);
        if before.garbage_ratio() < auto.min_ratio || new_garbage < auto.min_bytes {
            return Ok(());
        }
        let clock = &engine.options().clock;
        let start = clock.now_ms();
        // `Store::merge`: expired keys are swept first, and exports are excluded.
        store.merge().await?;
        let ms = clock.now_ms().saturating_sub(start);
        let after = engine.stats().await?;
        self.baseline.store(after.garbage_bytes, Ordering::Relaxed);
        self.merges.fetch_add(1, Ordering::Relaxed);
        self.merge_ms.fetch_add(ms, Ordering::Relaxed);
        self.reclaimed.fetch_add(
            before
                .bytes_on_storage
                .saturating_sub(after.bytes_on_storage),
            Ordering::Relaxed,
        );
        Ok(())
    }

    /// Adds this store's counters to `stats`.
    pub(crate) fn fill(&self, stats: &mut crate::Stats) {
        stats.auto_merges = self.merges.load(Ordering::Relaxed);
        stats.auto_merge_ms = self.merge_ms.load(Ordering::Relaxed);
        stats.auto_merge_reclaimed_bytes = self.reclaimed.load(Ordering::Relaxed);
    }
}
