//! The commit pipeline shared by the local engines: ordering, validation, group commit,
//! visibility and failure handling. Engines plug in only "append these bytes" and "sync".
//!
//! A commit goes through:
//! 1. [`CommitPipeline::begin`]: checks (closed, read-only, poisoned, sizes), takes the writer
//!    lock, validates the batch against recent commits, assigns the next sequence number and a
//!    monotonic commit time. The engine then appends the transaction to its log and indexes it
//!    (entries with a sequence number above the visible version are invisible to readers).
//! 2. [`CommitTicket::finish`]: records the written keys for later conflict checks, releases
//!    the writer lock, and for [`Durability::Sync`] waits until a sync covers the commit. One
//!    waiting committer syncs for every commit appended so far (group commit), so N concurrent
//!    committers share one sync instead of queueing N.
//! 3. Only then the commit becomes visible to new snapshots.
//!
//! If an append or a sync fails, the pipeline is poisoned: the failing commit returns the I/O
//! error, later commits return [`Error::Poisoned`] with that error as its cause, reads keep
//! serving the last visible state, and reopening recovers exactly what is durable.

use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::conflict::ConflictTracker;
use kv_api::{Durability, Error, Options, Result, Snapshot, Snapshots, Version, WriteBatch};

/// State owned by whoever holds the writer lock.
pub struct WriterState {
    tracker: ConflictTracker,
    last: Version,
}

impl WriterState {
    /// The last version handed out (appended, maybe not yet synced or visible).
    pub fn last(&self) -> Version {
        self.last
    }
}

#[derive(Default)]
struct SyncState {
    synced: u64,
    in_progress: bool,
    /// Syncs finished (or failed) so far: a waiter woken after one passes the wake-up on
    /// (see [`CommitPipeline::wait_durable`]).
    completions: u64,
}

/// Ordering, validation, group commit and visibility of commits. See the module docs.
pub struct CommitPipeline {
    options: Options,
    writer: tokio::sync::Mutex<WriterState>,
    visible: RwLock<Version>,
    /// `visible.seq()`, readable without the lock: stored under `visible`'s write lock, so it
    /// is never behind a version a snapshot was taken at (see [`CommitPipeline::visible_seq`]).
    visible_seq: AtomicU64,
    appended: Mutex<Version>,
    sync: Mutex<SyncState>,
    synced_notify: tokio::sync::Notify,
    snapshots: Snapshots,
    horizon: Mutex<u64>,
    /// The failure that poisoned the pipeline: the cause of every later [`Error::Poisoned`].
    poisoned: Mutex<Option<Arc<Error>>>,
    closed: AtomicBool,
    /// The change feed: every commit's writes, handed on once durable (issue #18).
    feed: kv_api::watch::Feed,
    /// Under a store-wide retention by age: some commits' versions (sequence number and
    /// time), oldest first, at least 1/1024 of the age apart, from the last recovered commit
    /// on. See [`CommitPipeline::retained_horizon`].
    commit_times: Mutex<std::collections::VecDeque<Version>>,
}

impl CommitPipeline {
    /// A pipeline continuing after `last` (the last recovered commit). `horizon` is the oldest
    /// sequence number whose whole state is still readable (raised by `merge`).
    pub fn new(last: Version, horizon: u64, options: Options) -> Self {
        CommitPipeline {
            options,
            writer: tokio::sync::Mutex::new(WriterState {
                tracker: ConflictTracker::default(),
                last,
            }),
            visible: RwLock::new(last),
            visible_seq: AtomicU64::new(last.seq()),
            appended: Mutex::new(last),
            sync: Mutex::new(SyncState {
                synced: last.seq(),
                in_progress: false,
                completions: 0,
            }),
            synced_notify: tokio::sync::Notify::new(),
            snapshots: Snapshots::default(),
            horizon: Mutex::new(horizon),
            poisoned: Mutex::new(None),
            closed: AtomicBool::new(false),
            feed: kv_api::watch::Feed::new(last),
            commit_times: Mutex::new(std::iter::once(last).collect()),
        }
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The newest version visible to readers.
    pub fn visible(&self) -> Version {
        *self.visible.read()
    }

    /// The sequence number of [`CommitPipeline::visible`], with one atomic load: for the read
    /// path, which only clamps to it. It is stored while `visible`'s write lock is held, so a
    /// snapshot taken at version `v` (under the read lock) is never ahead of it: reads at the
    /// snapshot see everything the snapshot does.
    pub fn visible_seq(&self) -> u64 {
        self.visible_seq.load(Ordering::Acquire)
    }

    fn publish(&self, v: Version) {
        let mut visible = self.visible.write();
        if v > *visible {
            *visible = v;
            self.visible_seq.store(v.seq(), Ordering::Release);
        }
    }

    /// [`Error::Closed`] once [`CommitPipeline::close`] was called.
    pub fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Marks the pipeline closed: every later call fails with [`Error::Closed`], and the
    /// change feed's watchers end.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.feed.close();
    }

    /// The change feed of the engine (`Engine::feed`): the pipeline hands it every commit
    /// in sequence order, and the commits a sync made durable.
    pub fn feed(&self) -> &kv_api::watch::Feed {
        &self.feed
    }

    /// Errors for any mutation of a store that is closed, read-only or poisoned.
    pub fn check_writable(&self, what: &'static str) -> Result<()> {
        self.check_open()?;
        if self.options.read_only {
            return Err(Error::ReadOnly(what));
        }
        self.check_poisoned()
    }

    /// [`Error::Poisoned`], with the failure that poisoned the pipeline as its cause.
    fn check_poisoned(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records a storage failure: no commit is accepted any more. Returns `e` for chaining
    /// (for the first failure, a copy: [`Error::duplicate`]). The first failure is kept
    /// itself, with its whole source chain, as the cause of later [`Error::Poisoned`]s.
    pub fn poison(&self, e: Error) -> Error {
        let mut p = self.poisoned.lock();
        if p.is_some() {
            return e;
        }
        let copy = e.duplicate();
        *p = Some(Arc::new(e));
        copy
    }

    /// The registry of open snapshots.
    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    /// A snapshot of the latest visible commit.
    pub fn snapshot(&self) -> Result<Snapshot> {
        self.check_open()?;
        // Pin while holding the visibility lock, so that pruning (which reads the visible
        // version and the oldest pin) never drops what this snapshot still needs.
        let visible = self.visible.read();
        Ok(self.snapshots.pin(*visible))
    }

    /// A snapshot at an earlier commit, if `merge` has not dropped what it needs.
    pub fn snapshot_at(&self, version: Version) -> Result<Snapshot> {
        self.check_open()?;
        let visible = self.visible();
        if version.seq() > visible.seq() {
            return Err(Error::VersionNotFound {
                seq: version.seq(),
                reason: "not committed yet",
            });
        }
        // Pin first, then check the horizon, so a merge cannot slip in between.
        let snap = self.snapshots.pin(version);
        if version.seq() < self.horizon() {
            return Err(Error::VersionNotFound {
                seq: version.seq(),
                reason: "dropped by merge",
            });
        }
        Ok(snap)
    }

    /// The oldest sequence number whose whole state is readable.
    pub fn horizon(&self) -> u64 {
        *self.horizon.lock()
    }

    /// Sets the horizon (by `merge`, to [`CommitPipeline::merge_horizon`] at its start).
    pub fn set_horizon(&self, seq: u64) {
        let mut h = self.horizon.lock();
        *h = (*h).max(seq);
    }

    /// What a merge starting now must keep readable: the oldest open snapshot, or the latest
    /// visible commit if none is open. Versions newer than this are all kept; for older ones,
    /// only the newest version of each key at or below it.
    pub fn merge_horizon(&self) -> u64 {
        let visible = self.visible().seq();
        self.snapshots.oldest().map_or(visible, |o| o.min(visible))
    }

    /// What a merge starting now must keep readable under the store's retention policy
    /// ([`Options::retention`]): [`CommitPipeline::merge_horizon`], lowered under a retention
    /// by age to the newest commit at least that old, so that every version younger than the
    /// age stays, and `snapshot_at` of any of them works. The commits are known from the
    /// times this pipeline recorded (1/1024 of the age apart, so the horizon may be that much
    /// older than it could be: more is kept, never less); for commits before the open, from
    /// the last recovered commit's time, else the horizon stays where it was.
    pub fn retained_horizon(&self) -> u64 {
        let h = self.merge_horizon();
        let Some(age) = self.options.retention.and_then(|r| r.keep_for_ms()) else {
            return h;
        };
        let cutoff = self.options.clock.now_ms().saturating_sub(age);
        let mut times = self.commit_times.lock();
        while times.len() > 1 && times.get(1).is_some_and(|v| v.time_ms() <= cutoff) {
            times.pop_front();
        }
        let boundary = times
            .front()
            .filter(|v| v.time_ms() <= cutoff)
            .map_or(self.horizon(), |v| v.seq());
        h.min(boundary)
    }

    /// Records a commit's time for [`CommitPipeline::retained_horizon`] (under the writer
    /// lock, so in order).
    fn record_time(&self, version: Version) {
        let Some(age) = self.options.retention.and_then(|r| r.keep_for_ms()) else {
            return;
        };
        let step = (age / 1024).max(1);
        let mut times = self.commit_times.lock();
        let due = times
            .back()
            .is_none_or(|b| version.time_ms() >= b.time_ms().saturating_add(step));
        if due {
            times.push_back(version);
        }
    }

    /// Takes the writer lock without committing (for merge, flush, roll-overs).
    pub async fn lock_writer(&self) -> tokio::sync::MutexGuard<'_, WriterState> {
        self.writer.lock().await
    }

    /// Starts a commit: see the module docs. Validates sizes against the options. After a
    /// commit with the largest sequence number (only damaged storage holds one), commits are
    /// [`Error::ReadOnly`].
    pub async fn begin(&self, batch: &WriteBatch) -> Result<CommitTicket<'_>> {
        self.begin_at(batch, None).await
    }

    /// [`CommitPipeline::begin`] of an imported commit, which keeps the `version` (sequence
    /// number and time) another store gave it and is not checked for conflicts (see
    /// `Engine::import_commit`). A sequence number at or below the last commit's, or a time
    /// below its time, is [`Error::InvalidArgument`]. Sequence numbers may skip: the engine
    /// writes [`CommitTicket::follows`] into the commit record so that its log replays.
    pub async fn begin_import(
        &self,
        batch: &WriteBatch,
        version: Version,
    ) -> Result<CommitTicket<'_>> {
        self.begin_at(batch, Some(version)).await
    }

    async fn begin_at(
        &self,
        batch: &WriteBatch,
        imported: Option<Version>,
    ) -> Result<CommitTicket<'_>> {
        self.check_writable("commit")?;
        for w in &batch.writes {
            self.options.check_write_size(w)?;
        }
        let state = self.writer.lock().await;
        self.check_writable("commit")?;
        let last = state.last;
        let version = match imported {
            Some(v) if v.seq() <= last.seq() || v.time_ms() < last.time_ms() => {
                return Err(Error::InvalidArgument(format!(
                    "an imported commit must come after the store's last ({last}, at {} ms): \
                     got {v} at {} ms; import into a new store",
                    last.time_ms(),
                    v.time_ms()
                )));
            }
            Some(v) => Version::new(v.seq(), v.time_ms()),
            None => {
                state.tracker.check(batch)?;
                let time_ms = self.options.clock.now_ms().max(last.time_ms());
                // Only recovered data can hold the largest sequence number; nothing wraps.
                let Some(seq) = last.seq().checked_add(1) else {
                    return Err(Error::ReadOnly(
                        "a commit after the largest sequence number",
                    ));
                };
                Version::new(seq, time_ms)
            }
        };
        Ok(CommitTicket {
            pipeline: self,
            state,
            version,
            announced: false,
        })
    }

    /// Waits until a sync covers commit `seq`, running the sync itself if no other committer
    /// is: the group commit.
    ///
    /// The waiters are woken in a chain, not all at once: the leader wakes the first one
    /// (`notify_one`, first come first woken), and each waiter woken after a sync finished
    /// wakes the next before anything else. Waking 63 committers in the leader's one poll
    /// held its worker for a millisecond: each wake unparked the other worker, which
    /// preempted the waker (#12, docs/benchmarks.md). A waiter that registered after the
    /// latest sync finished does not pass the wake-up on (it was woken by a stale one):
    /// every waiter behind it registered later still, while a sync was running, and that
    /// sync's end starts a new chain. A waiter dropped after its wake-up passes it on
    /// (tokio's `Notified` does).
    async fn wait_durable<F, Fut>(&self, seq: u64, sync: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        loop {
            let mut notified = std::pin::pin!(self.synced_notify.notified());
            let waiting = {
                let mut st = self.sync.lock();
                if st.synced >= seq {
                    return Ok(());
                }
                self.check_poisoned()?;
                if !st.in_progress {
                    st.in_progress = true;
                    None
                } else {
                    // Queued now, under the lock: in the order of `completions`.
                    notified.as_mut().enable();
                    Some(st.completions)
                }
            };
            if let Some(seen) = waiting {
                notified.await;
                if self.sync.lock().completions != seen {
                    self.synced_notify.notify_one();
                }
                continue;
            }
            // Leader: everything appended so far is covered by this sync.
            let target = *self.appended.lock();
            let mut abandoned = Abandoned(Some(self));
            let result = sync().await;
            abandoned.0 = None; // finished: the lead ends below
            drop(abandoned);
            {
                let mut st = self.sync.lock();
                st.in_progress = false;
                st.completions = st.completions.wrapping_add(1);
                if result.is_ok() {
                    st.synced = st.synced.max(target.seq());
                }
            }
            match result {
                Ok(()) => {
                    self.publish(target);
                    // Durable and visible: watchers may have it now.
                    self.feed.durable(target);
                }
                Err(e) => {
                    let e = self.poison(e);
                    self.synced_notify.notify_one();
                    return Err(e);
                }
            }
            self.synced_notify.notify_one();
        }
    }

    /// A leader whose sync was dropped before it finished (its commit's future was dropped):
    /// no sync is running any more, and the first waiter must learn it and lead the next.
    fn sync_abandoned(&self) {
        {
            let mut st = self.sync.lock();
            st.in_progress = false;
            st.completions = st.completions.wrapping_add(1);
        }
        self.synced_notify.notify_one();
    }

    /// Makes everything appended so far durable through `sync` (sharing an in-flight sync).
    pub async fn flush<F, Fut>(&self, sync: F) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let target = self.appended.lock().seq();
        self.wait_durable(target, sync).await
    }

    /// Prunes conflict tracking that no open transaction needs.
    fn prune(&self, state: &mut WriterState) {
        let oldest = self.merge_horizon();
        state.tracker.prune(oldest);
    }
}

/// Held by a group-commit leader while its sync runs; dropped with the leader's future (a
/// commit cancelled by its caller), it hands the lead on ([`CommitPipeline::sync_abandoned`]):
/// otherwise every later durable commit would wait for a sync that never ends.
struct Abandoned<'a>(Option<&'a CommitPipeline>);

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.sync_abandoned();
        }
    }
}

/// The batch of an imported commit (`Engine::import_commit`): its writes, nothing read,
/// [`Durability::Buffered`] (an import flushes once, at its end).
pub fn import_batch(writes: Vec<kv_api::Write>) -> WriteBatch {
    WriteBatch {
        writes,
        durability: Some(Durability::Buffered),
        ..WriteBatch::new(Snapshot::unpinned(Version::ZERO))
    }
}

/// A commit in progress, holding the writer lock. Dropping it without `finish` (for example on
/// an append error) releases the lock; the engine must then call [`CommitPipeline::poison`]
/// (done by [`CommitTicket::fail`]) if anything may have reached storage.
pub struct CommitTicket<'a> {
    pipeline: &'a CommitPipeline,
    state: tokio::sync::MutexGuard<'a, WriterState>,
    version: Version,
    /// The writes were handed to the change feed ([`CommitTicket::announce`]).
    announced: bool,
}

impl<'a> CommitTicket<'a> {
    /// The version this commit gets.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The commit this one follows in the log: the last commit before it. Usually the
    /// sequence number just below this one; an imported commit may skip numbers, which the
    /// log must say (`txlog::encode_txn`), or replay would take the gap for a missing file.
    pub fn follows(&self) -> u64 {
        self.state.last.seq()
    }

    /// The writer state (for engines that keep more under the writer lock).
    pub fn state(&mut self) -> &mut WriterState {
        &mut self.state
    }

    /// Hands the commit's writes to the change feed now, for an engine that moves the values
    /// out of the batch before [`CommitTicket::finish`] (which otherwise does it). Call it
    /// once the commit is appended; the feed delivers it only once a sync covers it, so a
    /// commit that fails after this (and poisons the pipeline) is never delivered.
    pub fn announce(&mut self, writes: &[kv_api::Write]) {
        self.pipeline.feed.appended(self.version, writes);
        self.announced = true;
    }

    /// [`CommitTicket::announce`] of a commit that also removed `ranges` through the engine
    /// (see [`kv_api::watch::Feed::appended_removing`], which says what `writes` and `mark`
    /// are).
    pub fn announce_removing(
        &mut self,
        writes: &[kv_api::Write],
        ranges: &[(kv_api::Slot, kv_api::KeyRange)],
        mark: u64,
    ) {
        self.pipeline
            .feed
            .appended_removing(self.version, writes, ranges, mark);
        self.announced = true;
    }

    /// Abandons the commit after a storage failure: poisons the pipeline and returns `e`.
    pub fn fail(self, e: Error) -> Error {
        self.pipeline.poison(e)
    }

    /// Completes a commit whose records were appended and indexed: see the module docs.
    pub async fn finish<F, Fut>(mut self, batch: &WriteBatch, sync: F) -> Result<Version>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let version = self.version;
        let pipeline = self.pipeline;
        self.state.last = version;
        // In sequence order: the writer lock is held.
        pipeline.record_time(version);
        if !self.announced {
            pipeline.feed.appended(version, &batch.writes);
        }
        // Always recorded: a transaction may take its snapshot (below this version) at any
        // time until this commit is published; pruning drops the entry once nobody can.
        self.state
            .tracker
            .record(version.seq(), &batch.writes, &batch.removed_ranges);
        pipeline.prune(&mut self.state);
        *pipeline.appended.lock() = version;
        drop(self.state);
        match batch.durability.unwrap_or(pipeline.options.durability) {
            Durability::Buffered => pipeline.publish(version),
            Durability::Sync => pipeline.wait_durable(version.seq(), sync).await?,
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Durable committers that arrive together share syncs (group commit).
    ///
    /// 64 tasks on a multi-thread runtime are released at once by a barrier; each commits one
    /// key with [`Durability::Sync`], and every sync takes 2 ms. Without group commit every
    /// committer runs its own sync: 64 syncs. With it, the committers that append while one
    /// sync runs are all covered by the next, so the count is the number of 2 ms rounds it
    /// takes the (microsecond) append path to let 64 commits through: a handful. The bound,
    /// at most half the commits, can only hold if syncs are shared (on average each sync
    /// covered two commits or more), and leaves room for a slow, loaded machine.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_durable_commits_share_syncs() -> Result<()> {
        const COMMITS: usize = 64;
        let options = Options::default().durability(Durability::Sync);
        let p = Arc::new(CommitPipeline::new(Version::ZERO, 0, options));
        let syncs = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(COMMITS));
        let mut tasks = Vec::new();
        for i in 0..COMMITS as u8 {
            let (p, syncs, barrier) = (p.clone(), syncs.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let batch = WriteBatch::new(p.snapshot()?).write(0, vec![i], Some(vec![i]));
                let ticket = p.begin(&batch).await?;
                let sync = || async {
                    syncs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    Ok(())
                };
                let version = ticket.finish(&batch, sync).await?;
                assert!(
                    p.visible().seq() >= version.seq(),
                    "published when acknowledged"
                );
                Ok::<_, Error>(version.seq())
            }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.expect("task")?);
        }
        seqs.sort();
        assert_eq!(seqs, (1..=COMMITS as u64).collect::<Vec<_>>());
        assert_eq!(p.visible().seq(), COMMITS as u64);
        let syncs = syncs.load(Ordering::SeqCst);
        assert!(syncs >= 1, "durable commits were never synced");
        assert!(
            syncs <= COMMITS / 2,
            "{COMMITS} concurrent durable commits ran {syncs} syncs: they do not share them"
        );
        Ok(())
    }

    /// Durable commits whose callers give up waiting (their futures dropped, as a timeout
    /// does) never hold up the others: a dropped waiter passes its wake-up on, and a dropped
    /// leader hands the lead on. 32 tasks commit 20 times each; every third commit is raced
    /// against a timer shorter than the sync, so leaders and waiters are both dropped, before
    /// and after their wake-up. Every commit that is not dropped must return (the outer
    /// timeout only turns a hang into a failure).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_durable_commits_never_stall_the_others() -> Result<()> {
        let options = Options::default().durability(Durability::Sync);
        let p = Arc::new(CommitPipeline::new(Version::ZERO, 0, options));
        let mut tasks = Vec::new();
        for t in 0..32u8 {
            let p = p.clone();
            tasks.push(tokio::spawn(async move {
                let (mut done, mut dropped) = (0u32, 0u32);
                for i in 0..20u8 {
                    let batch = WriteBatch::new(p.snapshot()?).write(0, vec![t, i], Some(vec![i]));
                    let ticket = p.begin(&batch).await?;
                    let sync = || async {
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        Ok(())
                    };
                    let commit = ticket.finish(&batch, sync);
                    if i % 3 == 0 {
                        let give_up = tokio::time::sleep(std::time::Duration::from_micros(300));
                        tokio::select! {
                            r = commit => { r?; done += 1; }
                            () = give_up => dropped += 1,
                        }
                    } else {
                        commit.await?;
                        done += 1;
                    }
                }
                Ok::<_, Error>((done, dropped))
            }));
        }
        let all = async {
            let (mut done, mut dropped) = (0, 0);
            for t in tasks {
                let (d, x) = t.await.expect("task")?;
                done += d;
                dropped += x;
            }
            Ok::<_, Error>((done, dropped))
        };
        let (done, dropped) = tokio::time::timeout(std::time::Duration::from_secs(60), all)
            .await
            .expect("durable commits hung after others were dropped")?;
        assert_eq!(done + dropped, 32 * 20);
        assert!(dropped > 0, "no commit was dropped: the test tests nothing");
        Ok(())
    }

    /// The inner error of the failing sync: only the original `std::io::Error` holds it.
    #[derive(Debug)]
    struct DiskGone;

    impl std::fmt::Display for DiskGone {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("disk gone")
        }
    }

    impl std::error::Error for DiskGone {}

    #[tokio::test]
    async fn failed_sync_poisons_and_hides_the_commit() -> Result<()> {
        let p = CommitPipeline::new(Version::ZERO, 0, Options::default());
        let batch = WriteBatch::new(p.snapshot()?).write(0, b"k".to_vec(), Some(vec![1]));
        let ticket = p.begin(&batch).await?;
        let failing = || async { Err(Error::io("sync", std::io::Error::other(DiskGone))) };
        match ticket.finish(&batch, failing).await {
            Err(e @ Error::Io { .. }) => {
                assert_eq!(e.to_string(), "i/o error during sync: disk gone")
            }
            other => panic!("the failing commit returned {other:?}"),
        }
        assert_eq!(p.visible(), Version::ZERO, "never visible");
        for later in [
            p.begin(&batch).await.err(),
            p.flush(|| async { Ok(()) }).await.err(),
        ] {
            let Some(Error::Poisoned { cause }) = later else {
                panic!("a later call returned {later:?}, not Poisoned");
            };
            // The cause is the failure itself, down to the backend's own error object...
            let Error::Io { op, source } = &*cause else {
                panic!("cause {cause:?}");
            };
            assert_eq!(op, "sync");
            assert!(source.get_ref().is_some_and(|inner| inner.is::<DiskGone>()));
            // ...and `source()` walks there.
            let err = Error::Poisoned { cause };
            let mut chain = Vec::new();
            let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&err);
            while let Some(e) = next {
                chain.push(e);
                next = e.source();
            }
            assert!(
                chain
                    .iter()
                    .filter_map(|e| e.downcast_ref::<std::io::Error>())
                    .any(|io| io.get_ref().is_some_and(|inner| inner.is::<DiskGone>())),
                "source() does not reach the failed sync's std::io::Error: {chain:?}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn commit_times_never_go_back() -> Result<()> {
        let now = Arc::new(AtomicUsize::new(1_000));
        let clock = {
            let now = now.clone();
            kv_api::Clock::new(move || now.load(Ordering::SeqCst) as u64)
        };
        let opts = Options::default()
            .clock(clock)
            .durability(Durability::Buffered);
        let p = CommitPipeline::new(Version::ZERO, 0, opts);
        let mut times = Vec::new();
        for t in [1_000usize, 5_000, 2_000, 6_000] {
            now.store(t, Ordering::SeqCst);
            let batch = WriteBatch::new(p.snapshot()?).write(0, b"k".to_vec(), None);
            let ticket = p.begin(&batch).await?;
            times.push(ticket.finish(&batch, || async { Ok(()) }).await?.time_ms());
        }
        assert_eq!(times, vec![1_000, 5_000, 5_000, 6_000]);
        Ok(())
    }

    /// Recovered storage can end at the largest sequence number (replay accepts it). The next
    /// commit used to compute `u64::MAX + 1`: a panic in debug builds, and in release a commit
    /// numbered 0 appended to the log, which the next open rejects as out of order.
    #[tokio::test]
    async fn no_commit_after_the_largest_sequence_number() -> Result<()> {
        let last = Version::new(u64::MAX, 1_000);
        let p = CommitPipeline::new(last, 0, Options::default());
        let batch = WriteBatch::new(p.snapshot()?).write(0, b"k".to_vec(), Some(vec![1]));
        assert!(matches!(p.begin(&batch).await, Err(Error::ReadOnly(_))));
        assert_eq!(p.visible(), last, "reads go on at the last commit");
        // The one before it still commits.
        let p = CommitPipeline::new(Version::new(u64::MAX - 1, 1_000), 0, Options::default());
        let batch = WriteBatch::new(p.snapshot()?).write(0, b"k".to_vec(), Some(vec![1]));
        let ticket = p.begin(&batch).await?;
        assert_eq!(ticket.version().seq(), u64::MAX);
        Ok(())
    }

    /// An imported commit keeps its version, may skip numbers, and must come after the last
    /// commit (sequence number and time).
    #[tokio::test]
    async fn imported_commits_keep_their_version_in_order() -> Result<()> {
        let p = CommitPipeline::new(Version::new(3, 1_000), 0, Options::default());
        let batch = import_batch(vec![kv_api::Write {
            slot: 0,
            key: b"k".to_vec(),
            value: None,
        }]);
        for bad in [
            Version::new(3, 2_000),
            Version::new(2, 2_000),
            Version::new(9, 999),
        ] {
            let refused = p.begin_import(&batch, bad).await.err();
            assert!(
                matches!(refused, Some(Error::InvalidArgument(_))),
                "{refused:?}"
            );
        }
        let ticket = p.begin_import(&batch, Version::new(9, 1_000)).await?;
        assert_eq!(ticket.follows(), 3);
        let v = ticket.finish(&batch, || async { Ok(()) }).await?;
        assert_eq!((v.seq(), v.time_ms()), (9, 1_000));
        assert_eq!(p.visible(), v, "buffered: visible at once");
        let ticket = p.begin(&WriteBatch::new(p.snapshot()?)).await?;
        assert_eq!((ticket.version().seq(), ticket.follows()), (10, 9));
        Ok(())
    }
}
