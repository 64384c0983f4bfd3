//! Change feeds: [`crate::Store::watch`] and [`crate::Store::watch_from`] (issue #18).
//!
//! An engine owns one [`Feed`] (the workspace's engines: in their commit pipeline). The
//! pipeline hands it each commit's writes in sequence order while it holds the writer lock
//! ([`Feed::appended`]), and tells it how far commits are durable and visible
//! ([`Feed::durable`]); only then does the feed hand the changes to its subscribers. So a
//! watcher sees the commits of every [`crate::Store`] handle (and of the byte-level engine
//! API) over that engine, in commit order even when concurrent commits return out of order,
//! and never a change that a crash could take back.
//!
//! A [`Watch`] subscribes first, then replays from storage what was committed before its
//! subscription (from the versions still held: see [`crate::Engine::scan_versions`]), then
//! goes live: the feed hands it only commits numbered after the last one appended when it
//! subscribed, which the replay covers, so there is no gap and no duplicate.
//!
//! Each subscriber buffers at most its capacity of changes ([`DEFAULT_WATCH_CAPACITY`] by
//! default): a watcher that falls behind never slows writers down; once its buffer is full it
//! stops receiving, returns what it holds and then [`Error::Lagged`] with the last commit
//! it delivered whole, from which [`crate::Store::watch_from`] resumes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use crate::codec::{decode_key, decode_value};
use crate::{Engine, Error, KeyRange, Result, Slot, Snapshot, Version, Write};

/// Changes a watcher buffers before it is [`Error::Lagged`], unless
/// [`Watch`]'s capacity is set otherwise ([`crate::Store::watch_with_capacity`]).
///
/// 4096 changes: a burst of several thousand small commits (what one group commit of the
/// suite's concurrency cases holds many times over) fits, and the buffer of a stalled watcher
/// stays a few hundred KiB for small values.
pub const DEFAULT_WATCH_CAPACITY: usize = 4096;

/// Keys listed per `scan_versions` call of a replay.
const REPLAY_PAGE: usize = 256;

/// One committed change of one key, as a [`Watch`] delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The slot of the key.
    pub slot: Slot,
    /// The encoded key ([`Change::key_as`] decodes it).
    pub key: Vec<u8>,
    /// What the commit did to the key.
    pub kind: ChangeKind,
    /// The commit: its sequence number and time; [`Version::is_removal`] for a removal.
    pub version: Version,
}

/// What a commit did to a key. More kinds may come (a removal of a whole range, say), so
/// match with a wildcard arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The key was set to this encoded value ([`Change::value_as`] decodes it).
    Insert(Vec<u8>),
    /// The key was removed.
    Remove,
}

impl Change {
    fn of_write(w: &Write, version: Version) -> Change {
        Change {
            slot: w.slot,
            key: w.key.clone(),
            kind: match &w.value {
                Some(v) => ChangeKind::Insert(v.clone()),
                None => ChangeKind::Remove,
            },
            version: version.with_removal(w.value.is_none()),
        }
    }

    /// The key, decoded as `K` ([`Error::Decode`] if it is not one).
    ///
    /// ```
    /// use kv_api::{Version, watch::{Change, ChangeKind}};
    /// let change = Change {
    ///     slot: 0,
    ///     key: kv_api::codec::encode_key(&"user:7")?,
    ///     kind: ChangeKind::Remove,
    ///     version: Version::new(3, 0).with_removal(true),
    /// };
    /// assert_eq!(change.key_as::<String>()?, "user:7");
    /// assert_eq!(change.value_as::<u32>()?, None);
    /// # Ok::<(), kv_api::Error>(())
    /// ```
    pub fn key_as<K: DeserializeOwned>(&self) -> Result<K> {
        decode_key(&self.key)
    }

    /// The new value, decoded as `V`; `None` if the change removed the key (or is of a kind
    /// without a value). [`Error::Decode`] if the bytes are not a `V`.
    ///
    /// ```
    /// use kv_api::{Version, watch::{Change, ChangeKind}};
    /// let change = Change {
    ///     slot: 0,
    ///     key: kv_api::codec::encode_key(&1u32)?,
    ///     kind: ChangeKind::Insert(kv_api::codec::encode_value(&"hello")?),
    ///     version: Version::new(3, 0),
    /// };
    /// assert_eq!(change.value_as::<String>()?.as_deref(), Some("hello"));
    /// # Ok::<(), kv_api::Error>(())
    /// ```
    pub fn value_as<V: DeserializeOwned>(&self) -> Result<Option<V>> {
        match &self.kind {
            ChangeKind::Insert(v) => decode_value(v).map(Some),
            ChangeKind::Remove => Ok(None),
        }
    }
}

/// The change feed of one engine: what its commit path publishes to and watchers read from.
/// Engine authors call [`Feed::appended`], [`Feed::durable`] and [`Feed::close`] and return
/// it from [`crate::Engine::feed`]; users meet it only through [`crate::Store::watch`].
///
/// ```
/// use kv_api::{Version, Write, watch::Feed};
/// let feed = Feed::new(Version::ZERO);
/// let v1 = Version::new(1, 1_000);
/// // Under the writer lock, in sequence order:
/// feed.appended(v1, &[Write { slot: 0, key: b"k".to_vec(), value: Some(b"v".to_vec()) }]);
/// // Once a sync covers it and it is visible:
/// feed.durable(v1);
/// assert_eq!(feed.durable_version(), v1);
/// ```
#[derive(Clone)]
pub struct Feed {
    state: Arc<Mutex<FeedState>>,
}

struct FeedState {
    subscribers: Vec<Subscriber>,
    next_id: u64,
    /// Appended commits not yet durable, with the writes some subscriber may want.
    pending: VecDeque<(Version, Vec<Write>)>,
    last_appended: Version,
    durable: Version,
    closed: bool,
    /// Wakers of watchers waiting for `durable` to reach their replay's end.
    durable_wakers: Vec<Waker>,
}

struct Subscriber {
    id: u64,
    slot: Slot,
    range: KeyRange,
    /// Commits after this one are delivered live; the replay covers the rest.
    after: u64,
    queue: VecDeque<Change>,
    capacity: usize,
    /// The last commit handed to this subscriber whole (changes or none).
    seen: Version,
    lagged: Option<Version>,
    waker: Option<Waker>,
}

impl Subscriber {
    fn wants(&self, w: &Write) -> bool {
        w.slot == self.slot && self.range.contains(&w.key)
    }

    fn covers_any(&self, ranges: &[(Slot, KeyRange)]) -> bool {
        self.lagged.is_none()
            && ranges
                .iter()
                .any(|(slot, r)| *slot == self.slot && r.overlaps(&self.range))
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Feed")
            .field("subscribers", &st.subscribers.len())
            .field("last_appended", &st.last_appended)
            .field("durable", &st.durable)
            .finish()
    }
}

impl Feed {
    /// The feed of an engine whose last recovered (durable) commit is `last`.
    pub fn new(last: Version) -> Self {
        Feed {
            state: Arc::new(Mutex::new(FeedState {
                subscribers: Vec::new(),
                next_id: 0,
                pending: VecDeque::new(),
                last_appended: last,
                durable: last,
                closed: false,
                durable_wakers: Vec::new(),
            })),
        }
    }

    /// Records commit `version` with its `writes`. The engine calls it for every commit, in
    /// sequence order, after the commit is appended and before the writer lock is released.
    /// Without subscribers it only notes the version.
    pub fn appended(&self, version: Version, writes: &[Write]) {
        let mut st = self.state.lock();
        st.last_appended = version;
        if st.subscribers.is_empty() {
            return;
        }
        let wanted: Vec<Write> = writes
            .iter()
            .filter(|w| {
                st.subscribers
                    .iter()
                    .any(|s| s.lagged.is_none() && s.wants(w))
            })
            .cloned()
            .collect();
        // A commit with nothing wanted still advances each subscriber's `seen`.
        st.pending.push_back((version, wanted));
    }

    /// For an engine that removes a range with one record
    /// ([`crate::Engine::range_tombstones`]): whether some subscriber watches a key of one
    /// of `ranges` (then the engine lists the keys the ranges remove, as removals among the
    /// writes it hands to [`Feed::appended_removing`]), and a mark to pass on to it. Ask
    /// under the writer lock, before listing.
    pub fn watches(&self, ranges: &[(Slot, KeyRange)]) -> (bool, u64) {
        let st = self.state.lock();
        let wanted = st.subscribers.iter().any(|s| s.covers_any(ranges));
        (wanted, st.next_id)
    }

    /// [`Feed::appended`] of a commit that also removed `ranges` (with the removals of their
    /// keys among `writes` if [`Feed::watches`], which returned `mark`, said so). A
    /// subscriber of those ranges that came after `mark` (between the two calls) did not
    /// get the keys listed: it lags, and resumes from the engine, whose versions show the
    /// removals.
    pub fn appended_removing(
        &self,
        version: Version,
        writes: &[Write],
        ranges: &[(Slot, KeyRange)],
        mark: u64,
    ) {
        {
            let mut st = self.state.lock();
            for sub in st.subscribers.iter_mut() {
                if sub.id >= mark && sub.covers_any(ranges) {
                    sub.lagged = Some(sub.seen);
                    sub.wake();
                }
            }
        }
        self.appended(version, writes);
    }

    /// Every commit up to `version` is durable and visible: hands their changes to the
    /// subscribers. The engine calls it after each sync that covers new commits.
    pub fn durable(&self, version: Version) {
        let mut st = self.state.lock();
        if version > st.durable {
            st.durable = version;
        }
        let durable = st.durable.seq();
        while st.pending.front().is_some_and(|(v, _)| v.seq() <= durable) {
            let Some((v, writes)) = st.pending.pop_front() else {
                break;
            };
            for sub in st.subscribers.iter_mut() {
                if sub.lagged.is_some() || v.seq() <= sub.after {
                    continue;
                }
                let changes: Vec<Change> = writes
                    .iter()
                    .filter(|w| sub.wants(w))
                    .map(|w| Change::of_write(w, v))
                    .collect();
                let room = sub.capacity.saturating_sub(sub.queue.len());
                if !sub.queue.is_empty() && changes.len() > room {
                    sub.lagged = Some(sub.seen);
                } else {
                    sub.queue.extend(changes);
                    sub.seen = v;
                }
                sub.wake();
            }
        }
        for w in st.durable_wakers.drain(..) {
            w.wake();
        }
    }

    /// The store is closed: watchers return what they hold, then [`Error::Closed`].
    pub fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        for sub in st.subscribers.iter_mut() {
            sub.wake();
        }
        for w in st.durable_wakers.drain(..) {
            w.wake();
        }
    }

    /// The newest commit that [`Feed::durable`] reported.
    pub fn durable_version(&self) -> Version {
        self.state.lock().durable
    }

    /// Registers a subscriber; returns its id and the last commit appended, after which it
    /// receives commits live.
    fn subscribe(&self, slot: Slot, range: KeyRange, capacity: usize) -> (u64, Version) {
        let mut st = self.state.lock();
        let id = st.next_id;
        st.next_id = id.saturating_add(1);
        let after = st.last_appended;
        st.subscribers.push(Subscriber {
            id,
            slot,
            range,
            after: after.seq(),
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            seen: after,
            lagged: None,
            waker: None,
        });
        (id, after)
    }

    fn unsubscribe(&self, id: u64) {
        let mut st = self.state.lock();
        st.subscribers.retain(|s| s.id != id);
        if st.subscribers.is_empty() {
            // Nobody wants them; commits appended from now on are not kept either.
            st.pending.clear();
        }
    }

    /// Ready once commit `seq` is durable (or the feed closed: `Err(Closed)`).
    fn poll_durable(&self, seq: u64, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut st = self.state.lock();
        if st.durable.seq() >= seq {
            Poll::Ready(Ok(()))
        } else if st.closed {
            Poll::Ready(Err(Error::Closed))
        } else {
            st.durable_wakers.push(cx.waker().clone());
            Poll::Pending
        }
    }

    /// The subscriber's next live change, its lag or the feed's end.
    fn poll_live(&self, id: u64, cx: &mut Context<'_>) -> Poll<Result<Change>> {
        let mut st = self.state.lock();
        let closed = st.closed;
        let Some(sub) = st.subscribers.iter_mut().find(|s| s.id == id) else {
            return Poll::Ready(Err(Error::Closed));
        };
        if let Some(change) = sub.queue.pop_front() {
            return Poll::Ready(Ok(change));
        }
        if let Some(resume_from) = sub.lagged {
            return Poll::Ready(Err(Error::Lagged { resume_from }));
        }
        if closed {
            return Poll::Ready(Err(Error::Closed));
        }
        sub.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A subscription to the committed changes of one key range of one slot: see
/// [`crate::Store::watch`]. [`Watch::next`] returns them one by one, in commit order (by
/// key within a commit), each once its commit is durable and visible.
///
/// The feed ends with an error, after which `next` returns `None`: [`Error::Lagged`] if the
/// watcher fell behind (resume with [`crate::Store::watch_from`]), [`Error::Closed`] when
/// the store closes, or the error of a replay's read.
pub struct Watch<E: Engine> {
    engine: Arc<E>,
    feed: Feed,
    id: u64,
    slot: Slot,
    range: KeyRange,
    phase: Phase,
    /// The last commit delivered (or replayed past): later duplicates are dropped.
    delivered: u64,
    ended: bool,
}

enum Phase {
    /// Replays the commits in `(from, to]` once `to` is durable; `pin` keeps them from merge.
    Replay {
        from: Version,
        to: Version,
        pin: Snapshot,
    },
    /// Replayed changes left to deliver, in commit order: (version, key).
    Replaying {
        items: VecDeque<(Version, Vec<u8>)>,
        _pin: Snapshot,
    },
    Live,
}

impl<E: Engine> std::fmt::Debug for Watch<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("slot", &self.slot)
            .field("delivered", &self.delivered)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<E: Engine> Watch<E> {
    /// Subscribes to `range` of `slot` and prepares the replay of the commits after `from`.
    pub(crate) fn start(
        engine: Arc<E>,
        feed: Feed,
        slot: Slot,
        range: KeyRange,
        from: Version,
        capacity: usize,
    ) -> Result<Self> {
        // Pin `from` first: merge keeps every version after it from now on, or refuses.
        let pin = engine.snapshot_at(from)?;
        let (id, to) = feed.subscribe(slot, range.clone(), capacity);
        let watch = Watch {
            engine,
            feed,
            id,
            slot,
            range,
            phase: Phase::Replay { from, to, pin },
            delivered: from.seq(),
            ended: false,
        };
        Ok(watch)
    }

    /// The next committed change, waiting for one if there is none yet; `None` after the
    /// feed ended with an error (see [`Watch`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{KeyRange, KvStore, backends::MemoryStorage, watch::ChangeKind};
    /// let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut feed = store.watch(0, KeyRange::all())?;
    /// store.transact(async |txn| txn.insert(0, &"k", 1u32)).await?;
    /// let change = feed.next().await.transpose()?.expect("a change");
    /// assert_eq!(change.key_as::<String>()?, "k");
    /// assert_eq!(change.value_as::<u32>()?, Some(1));
    /// assert!(matches!(change.kind, ChangeKind::Insert(_)));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn next(&mut self) -> Option<Result<Change>> {
        if self.ended {
            return None;
        }
        let next = self.step().await;
        if next.is_err() {
            self.ended = true;
            self.feed.unsubscribe(self.id);
        }
        Some(next)
    }

    async fn step(&mut self) -> Result<Change> {
        loop {
            match &mut self.phase {
                Phase::Replay { from, to, pin } => {
                    let (from, to, pin) = (*from, *to, pin.clone());
                    let feed = self.feed.clone();
                    std::future::poll_fn(|cx| feed.poll_durable(to.seq(), cx)).await?;
                    let items = self.list_replay(from, to).await?;
                    self.phase = Phase::Replaying { items, _pin: pin };
                }
                Phase::Replaying { items, .. } => {
                    let Some((version, key)) = items.pop_front() else {
                        self.phase = Phase::Live;
                        continue;
                    };
                    let value = self.engine.get_version(self.slot, &key, version).await?;
                    self.delivered = version.seq();
                    return Ok(Change {
                        slot: self.slot,
                        key,
                        kind: match value {
                            Some(v) => ChangeKind::Insert(v),
                            None => ChangeKind::Remove,
                        },
                        version,
                    });
                }
                Phase::Live => {
                    let feed = self.feed.clone();
                    let id = self.id;
                    let change = std::future::poll_fn(|cx| feed.poll_live(id, cx)).await?;
                    // Live commits all come after the replay's end; kept as a guard.
                    if change.version.seq() < self.delivered {
                        continue;
                    }
                    self.delivered = change.version.seq();
                    return Ok(change);
                }
            }
        }
    }

    /// Every version in `(from, to]` of the watched keys, in commit order, by key within a
    /// commit. Memory: one entry per version listed (keys, not values).
    async fn list_replay(
        &self,
        from: Version,
        to: Version,
    ) -> Result<VecDeque<(Version, Vec<u8>)>> {
        let mut items = Vec::new();
        if to.seq() > from.seq() {
            let mut range = self.range.clone();
            loop {
                let page = self
                    .engine
                    .scan_versions(self.slot, &range, to.seq(), REPLAY_PAGE)
                    .await?;
                let Some(last) = page.last().map(|(k, _)| k.clone()) else {
                    break;
                };
                let full = page.len() >= REPLAY_PAGE;
                for (key, versions) in page {
                    for v in versions {
                        if v.seq() > from.seq() && v.seq() <= to.seq() {
                            items.push((v, key.clone()));
                        }
                    }
                }
                if !full {
                    break;
                }
                range.start = std::ops::Bound::Excluded(last);
            }
        }
        items.sort_by(|a, b| a.0.seq().cmp(&b.0.seq()).then_with(|| a.1.cmp(&b.1)));
        Ok(items.into())
    }
}

impl<E: Engine> Watch<E> {
    /// The feed as a [`futures_core::Stream`] of `Result<Change>` (for the `StreamExt`
    /// adapters of `futures` or `tokio-stream`): the same changes as [`Watch::next`], ending
    /// after the error that ends the feed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use futures_core::Stream;
    /// use kv_db::{KeyRange, KvStore, backends::MemoryStorage};
    /// let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut changes = store.watch(0, KeyRange::all())?.into_stream();
    /// store.transact(async |txn| txn.insert(0, &"k", 1u32)).await?;
    /// // What `StreamExt::next` does:
    /// let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut changes).poll_next(cx));
    /// let change = next.await.transpose()?.expect("a change");
    /// assert_eq!(change.value_as::<u32>()?, Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_stream(self) -> WatchStream<E> {
        WatchStream {
            watch: Some(self),
            pending: None,
        }
    }
}

/// [`Watch::into_stream`]: a [`Watch`] as a [`futures_core::Stream`].
pub struct WatchStream<E: Engine> {
    /// `None` while `pending` owns it.
    watch: Option<Watch<E>>,
    /// The `next` in progress, which owns the watch until it returns.
    pending: Option<NextFuture<E>>,
}

/// A [`Watch::next`] that owns its watch, and gives it back with the change.
type NextFuture<E> = crate::BoxFuture<'static, (Watch<E>, Option<Result<Change>>)>;

impl<E: Engine> std::fmt::Debug for WatchStream<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("waiting", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

impl<E: Engine> futures_core::Stream for WatchStream<E> {
    type Item = Result<Change>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.pending.is_none() {
            let Some(mut watch) = this.watch.take() else {
                return Poll::Ready(None);
            };
            this.pending = Some(Box::pin(async move {
                let item = watch.next().await;
                (watch, item)
            }));
        }
        let Some(pending) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match pending.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((watch, item)) => {
                this.pending = None;
                this.watch = Some(watch);
                Poll::Ready(item)
            }
        }
    }
}

impl<E: Engine> Drop for Watch<E> {
    fn drop(&mut self) {
        self.feed.unsubscribe(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8]) -> Write {
        Write {
            slot: 0,
            key: key.to_vec(),
            value: Some(key.to_vec()),
        }
    }

    fn drain(feed: &Feed, id: u64) -> Vec<Result<Change>> {
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut out = Vec::new();
        while let Poll::Ready(r) = feed.poll_live(id, &mut cx) {
            let stop = r.is_err();
            out.push(r);
            if stop {
                break;
            }
        }
        out
    }

    #[test]
    fn changes_wait_for_durability_and_come_in_order() {
        let feed = Feed::new(Version::ZERO);
        let (id, after) = feed.subscribe(0, KeyRange::prefix(b"a"), 16);
        assert_eq!(after, Version::ZERO);
        feed.appended(Version::new(1, 1), &[put(b"a1"), put(b"b1")]);
        feed.appended(Version::new(2, 2), &[put(b"a2")]);
        assert!(drain(&feed, id).is_empty(), "nothing before the sync");
        feed.durable(Version::new(1, 1));
        let got: Vec<Vec<u8>> = drain(&feed, id)
            .into_iter()
            .map(|c| c.map(|c| c.key))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(got, vec![b"a1".to_vec()]);
        feed.durable(Version::new(2, 2));
        let got = drain(&feed, id);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().version.seq(), 2);
    }

    #[test]
    fn a_full_buffer_lags_with_the_last_whole_commit() {
        let feed = Feed::new(Version::ZERO);
        let (id, _) = feed.subscribe(0, KeyRange::all(), 2);
        for seq in 1..=4u64 {
            let v = Version::new(seq, seq);
            feed.appended(v, &[put(&[seq as u8])]);
            feed.durable(v);
        }
        let got = drain(&feed, id);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap().version.seq(), 1);
        assert_eq!(got[1].as_ref().unwrap().version.seq(), 2);
        assert!(
            matches!(got[2], Err(Error::Lagged { resume_from }) if resume_from.seq() == 2),
            "{:?}",
            got[2]
        );
    }

    #[test]
    fn subscribers_get_only_commits_after_their_start() {
        let feed = Feed::new(Version::ZERO);
        let (_early, _) = feed.subscribe(0, KeyRange::all(), 16);
        feed.appended(Version::new(1, 1), &[put(b"x")]);
        let (late, after) = feed.subscribe(0, KeyRange::all(), 16);
        assert_eq!(after.seq(), 1, "commit 1 is the late watcher's replay");
        feed.appended(Version::new(2, 2), &[put(b"y")]);
        feed.durable(Version::new(2, 2));
        let got = drain(&feed, late);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().key, b"y".to_vec());
        feed.close();
        assert!(matches!(
            drain(&feed, late).as_slice(),
            [Err(Error::Closed)]
        ));
    }
}
