//! The byte-level engine trait that Bitcask and LSM implement, and its argument types.
//!
//! The trait speaks in slots, encoded keys and values, and [`Version`]s; it assumes nothing
//! about local files (no handles or offsets), so an engine over a replicated store can
//! implement it too (etcd revisions map onto versions, its compaction onto `merge`, its `Txn`
//! compare on `mod_revision` onto [`WriteBatch`] validation).

use std::ops::Bound;

use crate::{
    Durability, MaybeSend, MaybeSync, Options, ProgressFn, RecoveryReport, Result, Snapshot,
    Storage, Tuning, VerifyReport, Version,
};

/// Where an engine's data lives, as [`Engine::open`] receives it: a [`Storage`] backend
/// (every `Storage` is a `Location`, through a blanket impl), or, for an engine over a remote
/// store, whatever names its data there (for etcd: endpoints, a key prefix, credentials,
/// timeouts).
///
/// ```
/// use kv_api::Location;
/// #[derive(Clone)]
/// struct Cluster { endpoints: Vec<String> }
/// impl Location for Cluster {}
/// let read_only = Cluster { endpoints: vec!["127.0.0.1:2379".into()] }.read_only();
/// assert_eq!(read_only.endpoints.len(), 1);
/// ```
pub trait Location: Clone + MaybeSend + MaybeSync + 'static {
    /// The same location for a read-only open ([`Options::read_only`]). A [`Storage`] answers
    /// with [`Storage::read_only`]; the default is the location itself (the engine then
    /// refuses mutations on its own).
    fn read_only(&self) -> Self {
        self.clone()
    }
}

impl<S: Storage> Location for S {
    fn read_only(&self) -> Self {
        Storage::read_only(self)
    }
}

/// A namespace inside a store. Slots are independent: the same key in two slots is two keys.
pub type Slot = u8;

/// A range of encoded keys within one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub start: Bound<Vec<u8>>,
    /// Upper bound.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        KeyRange {
            start: Bound::Included(prefix.to_vec()),
            end: match prefix_successor(prefix) {
                Some(s) => Bound::Excluded(s),
                None => Bound::Unbounded,
            },
        }
    }

    /// True if `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = match &self.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        };
        let below = match &self.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        };
        above && below
    }

    /// True if no key can lie in the range.
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e))
            | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
            _ => false,
        }
    }

    /// True if some key may lie in both ranges. Conservative: two ranges that meet only
    /// between two adjacent byte strings (`..b"a\0"` and `(b"a"..`) count as overlapping,
    /// which can only cost a conflict check a false positive.
    ///
    /// ```
    /// use kv_api::KeyRange;
    /// assert!(KeyRange::prefix(b"ab").overlaps(&KeyRange::prefix(b"a")));
    /// assert!(!KeyRange::prefix(b"ab").overlaps(&KeyRange::prefix(b"b")));
    /// ```
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        !self.is_empty()
            && !other.is_empty()
            && !ends_below(&self.end, &other.start)
            && !ends_below(&other.end, &self.start)
    }

    /// The encoded range of keys of type `K` (as [`crate::Transaction::range`] takes it);
    /// a range whose start lies after its end is [`crate::Error::InvalidArgument`].
    ///
    /// ```
    /// use kv_api::KeyRange;
    /// let range = KeyRange::of(10u32..20)?;
    /// assert!(range.contains(&kv_api::codec::encode_key(&15u32)?));
    /// assert!(!range.contains(&kv_api::codec::encode_key(&20u32)?));
    /// # Ok::<(), kv_api::Error>(())
    /// ```
    pub fn of<K: serde::Serialize>(range: impl std::ops::RangeBounds<K>) -> crate::Result<Self> {
        crate::range::encode_range(&range)
    }

    /// Every key that starts with the encoded `prefix` (as [`crate::Transaction::prefix`]
    /// takes it: a string, or the first fields of a tuple key).
    ///
    /// ```
    /// use kv_api::KeyRange;
    /// let range = KeyRange::prefix_of(&("user", 7u32))?;
    /// assert!(range.contains(&kv_api::codec::encode_key(&("user", 7u32, "name"))?));
    /// assert!(!range.contains(&kv_api::codec::encode_key(&("user", 8u32, "name"))?));
    /// # Ok::<(), kv_api::Error>(())
    /// ```
    pub fn prefix_of<P: serde::Serialize + ?Sized>(prefix: &P) -> crate::Result<Self> {
        Ok(KeyRange::prefix(&crate::codec::encode_key_prefix(prefix)?))
    }

    /// The bounds as borrowed slices, for `BTreeMap::range` and friends.
    pub fn as_slices(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (as_slice(&self.start), as_slice(&self.end))
    }
}

/// True if every key below `end` lies below every key above `start`.
fn ends_below(end: &Bound<Vec<u8>>, start: &Bound<Vec<u8>>) -> bool {
    match (end, start) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
        (Bound::Included(e), Bound::Included(s)) => e < s,
        (Bound::Included(e) | Bound::Excluded(e), Bound::Included(s) | Bound::Excluded(s)) => {
            e <= s
        }
    }
}

fn as_slice(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if let Some(next) = last.checked_add(1) {
            s.push(next);
            return Some(s);
        }
    }
    None
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Slot.
    pub slot: Slot,
    /// Encoded key.
    pub key: Vec<u8>,
    /// Encoded value; `None` removes the key.
    pub value: Option<Vec<u8>>,
}

/// What a transaction hands to [`Engine::commit`]: its writes and what it read, for the
/// optimistic conflict check.
#[derive(Debug, Clone)]
pub struct WriteBatch {
    /// The snapshot the transaction read at: a conflict is any commit after it that wrote a
    /// key this batch read, wrote, or that lies in a range it scanned.
    pub start: Snapshot,
    /// Keys read.
    pub reads: Vec<(Slot, Vec<u8>)>,
    /// Ranges scanned.
    pub ranges: Vec<(Slot, KeyRange)>,
    /// Writes, at most one per key, in any order.
    pub writes: Vec<Write>,
    /// Ranges the transaction removed (`Transaction::remove_range`, `remove_prefix`). Every
    /// key the range held at `start` is also in `writes` as a removal (unless the range is in
    /// [`WriteBatch::range_tombstones`]), and the range is in `ranges` too (so a commit into it since `start` conflicts); here it is a write over
    /// the whole range, for the conflict checks of transactions that commit after this one:
    /// one that read, wrote or scanned anything inside it since before this commit conflicts.
    pub removed_ranges: Vec<(Slot, KeyRange)>,
    /// Ranges the engine removes itself, for an engine with
    /// [`Engine::range_tombstones`] (empty for any other): every key such a range held
    /// before this commit is removed, and then `writes` apply (so a write inside the range
    /// wins: the transaction wrote it after the removal). Their keys are not listed in
    /// `writes`; each range is also in `removed_ranges` and `ranges`.
    pub range_tombstones: Vec<(Slot, KeyRange)>,
    /// Overrides the store's [`Options::durability`] for this commit.
    pub durability: Option<Durability>,
}

impl WriteBatch {
    /// An empty batch of a transaction that reads at `start`.
    pub fn new(start: Snapshot) -> Self {
        WriteBatch {
            start,
            reads: Vec::new(),
            ranges: Vec::new(),
            writes: Vec::new(),
            removed_ranges: Vec::new(),
            range_tombstones: Vec::new(),
            durability: None,
        }
    }

    /// Adds a write (`None` removes the key).
    pub fn write(mut self, slot: Slot, key: impl Into<Vec<u8>>, value: Option<Vec<u8>>) -> Self {
        self.writes.push(Write {
            slot,
            key: key.into(),
            value,
        });
        self
    }
}

/// One row of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Encoded key.
    pub key: Vec<u8>,
    /// Encoded value.
    pub value: Vec<u8>,
    /// The commit that wrote it.
    pub version: Version,
}

/// Counters describing an engine's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Engine name (`"bitcask"`, `"lsm"`).
    pub engine: &'static str,
    /// Keys whose latest version is a value.
    pub live_keys: u64,
    /// Versions held (values and removals), including old ones kept until `merge`.
    pub versions: u64,
    /// Bytes of every file on storage.
    pub bytes_on_storage: u64,
    /// Bytes that `merge` would reclaim (superseded versions, removals, torn data), estimated.
    pub garbage_bytes: u64,
    /// Data files: log segments (Bitcask) or tables (LSM).
    pub files: u64,
    /// Block or value cache hits, where the engine has a cache.
    pub cache_hits: u64,
    /// Block or value cache misses.
    pub cache_misses: u64,
    /// The latest committed version.
    pub last_version: Version,
    /// Merges this store ran by itself ([`crate::AutoMerge`]), since it was opened. Engines
    /// leave the three `auto_merge` counters at 0: [`crate::Store::stats`] fills them.
    pub auto_merges: u64,
    /// Milliseconds those merges took in all (by the store's [`crate::Clock`]).
    pub auto_merge_ms: u64,
    /// Bytes of storage those merges freed in all.
    pub auto_merge_reclaimed_bytes: u64,
}

impl Stats {
    /// Fraction of storage that `merge` would reclaim, 0.0 to 1.0.
    pub fn garbage_ratio(&self) -> f64 {
        if self.bytes_on_storage == 0 {
            0.0
        } else {
            (self.garbage_bytes as f64 / self.bytes_on_storage as f64).min(1.0)
        }
    }
}

/// What [`Engine::get_with`] hands a value to: `Send` natively, like the futures.
#[cfg(not(target_arch = "wasm32"))]
pub type ValueVisitor<'f> = dyn FnMut(Option<&[u8]>) + Send + 'f;
/// What [`Engine::get_with`] hands a value to.
#[cfg(target_arch = "wasm32")]
pub type ValueVisitor<'f> = dyn FnMut(Option<&[u8]>) + 'f;

/// A storage engine: ordered, versioned, transactional bytes over a [`Storage`].
///
/// Reads take the snapshot sequence number `at`: they see the newest version with
/// `seq <= at`. Old versions stay readable until [`Engine::merge`], except that merge keeps
/// whatever an open snapshot can still see.
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
pub trait Engine: MaybeSend + MaybeSync + Sized + 'static {
    /// Where the engine's data lives: a [`Storage`] backend for the workspace's local engines
    /// (Bitcask, LSM), a connection config for an engine over a remote store (etcd). Any
    /// [`Storage`] is a [`Location`].
    type Storage: Location;

    /// The engine's own knobs, next to the common [`Options`] (`()` if it has none).
    type Tuning: Tuning;

    /// Short name, as in [`Stats::engine`].
    const NAME: &'static str;

    /// Opens (recovering after a crash) or creates a store on `storage`.
    async fn open(storage: Self::Storage, options: Options, tuning: Self::Tuning) -> Result<Self>;

    /// The options the engine was opened with.
    fn options(&self) -> &Options;

    /// The engine's own knobs it was opened with.
    fn tuning(&self) -> &Self::Tuning;

    /// A read view pinned at the latest commit. Merge keeps what it can see.
    fn snapshot(&self) -> Result<Snapshot>;

    /// A read view pinned at an earlier commit; [`crate::Error::VersionNotFound`] if `merge`
    /// has dropped what it would need, or the version is in the future.
    fn snapshot_at(&self, version: Version) -> Result<Snapshot>;

    /// The value of a key at `at`, `None` if absent or removed. An `at` past the newest
    /// commit (`u64::MAX` for "everything") reads the newest commit; so do the other reads
    /// that take an `at`.
    ///
    /// (Not an `async fn` of `#[async_trait]`, whose futures are boxed: point reads are the
    /// hottest call, and this future is returned unboxed.)
    fn get<'a>(
        &'a self,
        slot: Slot,
        key: &'a [u8],
        at: u64,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>>> + MaybeSend + 'a;

    /// [`Engine::get`] without copying the value out: calls `f` with the value's bytes where
    /// they lie (`None` if the key is absent or removed). An engine may call `f` while it
    /// holds a lock of its read cache, so `f` should be short (decode or copy the bytes); it
    /// is called once, unless the read fails. The default implementation reads through
    /// [`Engine::get`].
    ///
    /// ```
    /// # use kv_api::{Engine, Result};
    /// # async fn demo(engine: &impl Engine) -> Result<()> {
    /// let at = engine.snapshot()?.seq();
    /// let mut len = None;
    /// engine.get_with(0, b"key", at, &mut |v| len = v.map(<[u8]>::len)).await?;
    /// # Ok(())
    /// # }
    /// ```
    fn get_with<'a>(
        &'a self,
        slot: Slot,
        key: &'a [u8],
        at: u64,
        f: &'a mut ValueVisitor<'_>,
    ) -> impl std::future::Future<Output = Result<()>> + MaybeSend + 'a {
        async move {
            let value = self.get(slot, key, at).await?;
            f(value.as_deref());
            Ok(())
        }
    }

    /// The values of `keys` at `at`, in the order of `keys` (duplicates and any order
    /// allowed): what a loop of [`Engine::get`] returns, in one call an engine can serve
    /// with one lock and one pass over its files in key order. The default is that loop.
    ///
    /// ```
    /// # use kv_api::{Engine, Result};
    /// # async fn demo(engine: &impl Engine) -> Result<()> {
    /// let at = engine.snapshot()?.seq();
    /// let values = engine.get_many(0, &[b"b", b"a", b"b"], at).await?;
    /// assert_eq!(values.len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    async fn get_many(&self, slot: Slot, keys: &[&[u8]], at: u64) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(slot, key, at).await?);
        }
        Ok(out)
    }

    /// The newest version at `at` that is not a removal, with its value.
    async fn get_unremoved(
        &self,
        slot: Slot,
        key: &[u8],
        at: u64,
    ) -> Result<Option<(Version, Vec<u8>)>>;

    /// Every version of a key up to `at`, oldest first, removals included.
    async fn versions(&self, slot: Slot, key: &[u8], at: u64) -> Result<Vec<Version>>;

    /// The value a key had in commit `version` (`None`: that commit removed it);
    /// [`crate::Error::VersionNotFound`] if the key has no such version (or it was merged away).
    async fn get_version(
        &self,
        slot: Slot,
        key: &[u8],
        version: Version,
    ) -> Result<Option<Vec<u8>>>;

    /// Up to `limit` live entries of `range` at `at`, in key order (descending if `reverse`).
    /// Callers page through a large range by narrowing the range after the last key returned.
    async fn scan(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>>;

    /// [`Engine::scan`] without the values: up to `limit` live keys of `range` at `at`, in key
    /// order (descending if `reverse`), each with the version that wrote its value. The same
    /// keys `scan` returns, and paged the same way; what key-only and value-lazy scans read
    /// ([`crate::RangeQuery::keys`], [`crate::RangeQuery::rows`]). An engine answers it
    /// without reading, decoding or copying a value (Bitcask from its keydir, the LSM engine
    /// skipping value bytes), so a value stored apart from its key is never fetched. The
    /// default calls `scan` and drops the values, for engines without a cheaper way.
    ///
    /// ```
    /// # use kv_api::{Engine, KeyRange, Result};
    /// # async fn demo(engine: &impl Engine) -> Result<()> {
    /// let at = engine.snapshot()?.seq();
    /// for (key, version) in engine.scan_keys(0, &KeyRange::prefix(b"user:"), at, false, 100).await? {
    ///     println!("{key:?} written by commit {}", version.seq());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    async fn scan_keys(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Version)>> {
        let entries = self.scan(slot, range, at, reverse, limit).await?;
        Ok(entries.into_iter().map(|e| (e.key, e.version)).collect())
    }

    /// Validates and commits a transaction atomically; returns its version.
    /// [`crate::Error::Conflict`] leaves nothing written.
    async fn commit(&self, batch: WriteBatch) -> Result<Version>;

    // --- export / import (issue #13): what `Store::export`, `import` and `backup_to` need.

    /// Up to `limit` keys of `range` in `slot` that have any version at or below `at`, a
    /// value or a removal, in key order, each with those versions oldest first. Unlike
    /// [`Engine::scan`] it lists keys whose newest version is a removal: an export of every
    /// version needs them. Callers page like `scan`, narrowing the range after the last key.
    ///
    /// The default, for engines that cannot list versions, is
    /// [`crate::Error::InvalidArgument`] naming the engine (a listing built from `scan` would
    /// silently miss removed keys).
    ///
    /// ```
    /// # use kv_api::{Engine, KeyRange, Result};
    /// # async fn demo(engine: &impl Engine) -> Result<()> {
    /// let at = engine.snapshot()?.seq();
    /// for (key, versions) in engine.scan_versions(0, &KeyRange::all(), at, 100).await? {
    ///     println!("{key:?}: {} versions", versions.len());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    async fn scan_versions(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<Version>)>> {
        let _ = (slot, range, at, limit);
        Err(unsupported::<Self>("scan_versions"))
    }

    /// Commits `writes` under the given `version` (its sequence number and commit time, as
    /// another store recorded them) with [`Durability::Buffered`]: how an import keeps
    /// versions. No conflict check: the importer is the only writer it expects. A sequence
    /// number at or below the store's last, or a time below the last commit's, is
    /// [`crate::Error::InvalidArgument`]. Sequence numbers may skip (an export of the latest
    /// versions only, or of a merged store, has gaps); the engine must reopen such a log.
    ///
    /// The default, for engines that cannot commit at a given version, is
    /// [`crate::Error::InvalidArgument`] naming the engine.
    ///
    /// ```
    /// # use kv_api::{Engine, Result, Version, Write};
    /// # async fn demo(engine: &impl Engine) -> Result<()> {
    /// let next = engine.snapshot()?.seq() + 10;
    /// let write = Write { slot: 0, key: b"k".to_vec(), value: Some(b"v".to_vec()) };
    /// engine.import_commit(Version::new(next, 1_700_000_000_000), vec![write]).await?;
    /// engine.flush().await?;
    /// # Ok(())
    /// # }
    /// ```
    async fn import_commit(&self, version: Version, writes: Vec<Write>) -> Result<()> {
        let _ = (version, writes);
        Err(unsupported::<Self>("import_commit"))
    }

    /// True if the engine removes a range itself ([`WriteBatch::range_tombstones`]): one
    /// record for the range instead of one removal per key. Every read must then still show
    /// one removal version per key the range held live (in `versions`, `scan_versions`,
    /// `get_version`), and the change feed one removal per such key. The default, `false`,
    /// has transactions list the range's keys as removals. The answer may change from call
    /// to call: an engine that bounds the tombstones it holds says `false` while it is full.
    ///
    /// ```
    /// # use kv_api::Engine;
    /// fn one_record_per_range(engine: &impl Engine) -> bool {
    ///     engine.range_tombstones()
    /// }
    /// ```
    fn range_tombstones(&self) -> bool {
        false
    }

    /// The engine's change feed ([`crate::watch::Feed`]), to which its commit path hands
    /// every commit's writes in sequence order and reports which commits are durable; what
    /// [`crate::Store::watch`] subscribes to. The default, `None`, is an engine without one:
    /// `watch` is then [`crate::Error::InvalidArgument`].
    fn feed(&self) -> Option<&crate::watch::Feed> {
        None
    }

    /// The store's random id (from its `IDENTITY`), named in export streams; `None` (the
    /// default) for engines without one.
    fn store_id(&self) -> Option<[u8; 16]> {
        None
    }

    /// Drops every version that no open snapshot needs and every removal; afterwards each key
    /// has only its latest live value, and storage shrinks accordingly.
    async fn merge(&self) -> Result<()>;

    /// [`Engine::merge`], reporting its progress to `progress` (the workspace's engines count
    /// bytes rewritten, or tables compacted). The default calls `merge` and reports nothing.
    async fn merge_with(&self, progress: &ProgressFn<'_>) -> Result<()> {
        let _ = progress;
        self.merge().await
    }

    /// Checks every stored byte it can reach (CRCs, decoding, the engine's invariants) and
    /// reports the damage it finds in a [`VerifyReport`], going on past each damaged file.
    /// Changes nothing, so it runs on a read-only engine, also while another process writes.
    /// `Err` only for failures that are not damage (the backend's I/O, a closed engine).
    ///
    /// The default, for engines without a check of their own, is
    /// [`crate::verify::logical_verify`]: every version of every live key read through the
    /// trait, each read failure with [`crate::Error::Corruption`] or [`crate::Error::Decode`]
    /// reported as damage.
    async fn verify(&self, progress: &ProgressFn<'_>) -> Result<VerifyReport> {
        crate::verify::logical_verify(self, progress).await
    }

    /// Makes every commit so far durable (useful after [`Durability::Buffered`] commits).
    async fn flush(&self) -> Result<()>;

    /// Current counters.
    async fn stats(&self) -> Result<Stats>;

    /// What the open that made this engine had to leave out (a torn last transaction, say).
    /// The default, for engines that never leave anything out, is a clean report.
    fn recovery(&self) -> RecoveryReport {
        RecoveryReport::default()
    }

    /// Flushes, closes and releases the storage's writer lock; every later call returns
    /// [`crate::Error::Closed`], except `close` itself: closing a closed engine does nothing
    /// and returns `Ok(())` (idempotent, as closing a file or a connection is in other
    /// stores), so cleanup paths may close unconditionally. The error of a failed final flush
    /// is reported by the `close` that ran it, not by later ones. Dropping an engine without
    /// `close` is safe too: committed data is never lost, only unsynced
    /// [`Durability::Buffered`] commits may be.
    async fn close(&self) -> Result<()>;
}

/// The error of an export/import operation that engine `E` does not provide.
fn unsupported<E: Engine>(what: &str) -> crate::Error {
    crate::Error::InvalidArgument(format!(
        "the {} engine does not provide {what} (needed by export, import and backup)",
        E::NAME
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: Bound<&[u8]>, end: Bound<&[u8]>) -> KeyRange {
        KeyRange {
            start: start.map(<[u8]>::to_vec),
            end: end.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn overlaps_by_bounds() {
        use Bound::{Excluded as X, Included as I, Unbounded as U};
        let cases: [(KeyRange, KeyRange, bool); 9] = [
            (r(I(b"a"), I(b"c")), r(I(b"c"), I(b"d")), true),
            (r(I(b"a"), X(b"c")), r(I(b"c"), I(b"d")), false),
            (r(I(b"a"), I(b"c")), r(X(b"c"), I(b"d")), false),
            (r(I(b"a"), X(b"c")), r(X(b"b"), U), true),
            (r(U, U), r(I(b"x"), I(b"x")), true),
            (r(U, X(b"a")), r(I(b"a"), U), false),
            (r(I(b"b"), I(b"a")), KeyRange::all(), false),
            (KeyRange::prefix(b"ab"), KeyRange::prefix(b"a"), true),
            (KeyRange::prefix(b"ab"), KeyRange::prefix(b"ac"), false),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.overlaps(&b), want, "{a:?} / {b:?}");
            assert_eq!(b.overlaps(&a), want, "{b:?} / {a:?}");
        }
    }
}
