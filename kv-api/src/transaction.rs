//! Transactions: a snapshot plus the transaction's own buffered writes.

use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::sync::Arc;

use parking_lot::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode_value, encode_key, encode_key_prefix, encode_value};
use crate::range::{RangeQuery, encode_range};
use crate::typed::{CATALOG_SLOT, Catalog, SlotInfo};
use crate::{
    Durability, Engine, Error, KeyRange, Result, Slot, Snapshot, Version, Write, WriteBatch,
};

/// An isolated transaction: it reads the snapshot taken at its start plus its own writes, and
/// commits atomically. `commit` fails with [`Error::Conflict`] (writing nothing) if another
/// transaction committed, after this one started, a key this one read, wrote or scanned.
///
/// A transaction without writes never conflicts. Dropping a transaction (or [`abort`]) discards
/// its writes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_db::Result<()> {
/// use kv_db::{Error, KvStore, backends::MemoryStorage};
/// let store = KvStore::open(MemoryStorage::new()).await?;
/// let mut a = store.current();
/// let mut b = store.current();
/// let stock: u32 = a.get(0, &"stock").await?.unwrap_or(10);
/// a.insert(0, &"stock", stock - 1)?;
/// let _: Option<u32> = b.get(0, &"stock").await?;
/// b.insert(0, &"stock", 0u32)?;
/// a.commit().await?;
/// // `b` read "stock" before `a` committed a new value: committing it would lose `a`'s update.
/// assert!(matches!(b.commit().await, Err(Error::Conflict(_))));
/// assert_eq!(store.snapshot().get::<_, u32>(0, &"stock").await?, Some(9));
/// # Ok(())
/// # }
/// ```
///
/// [`abort`]: Transaction::abort
pub struct Transaction<E: Engine> {
    engine: Arc<E>,
    snapshot: Snapshot,
    /// Set if the snapshot could not be taken (closed store): reported by every call.
    closed: bool,
    read_only: bool,
    pub(crate) writes: BTreeMap<(Slot, Vec<u8>), Option<Vec<u8>>>,
    reads: Mutex<Reads>,
    last_write_ms: Option<u64>,
    durability: Option<Durability>,
    /// The store's catalog of typed slots.
    pub(crate) catalog: Arc<Catalog>,
    /// Slots this transaction records in the catalog (their entries are in `writes` too).
    pub(crate) catalog_writes: Vec<SlotInfo>,
    /// Ranges removed by `remove_range` / `remove_prefix` (their keys are in `writes` too).
    pub(crate) removed_ranges: Vec<(Slot, KeyRange)>,
    /// Of those, the ranges the engine removes itself ([`Engine::range_tombstones`]): their
    /// keys are not in `writes`, and reads of this transaction see them removed unless it
    /// wrote them since.
    pub(crate) range_tombstones: Vec<(Slot, KeyRange)>,
    /// The time expiry is judged at ("now" of this view, ms), see the `expiry` module: set
    /// at the start when the store holds expiry records, else at the first judgment (until
    /// then, the view has nothing to judge but its own writes).
    pub(crate) now_ms: std::sync::OnceLock<u64>,
    /// Set once this transaction wrote a key with a time to live.
    pub(crate) wrote_ttl: bool,
    /// The store's automatic merges, told of each commit.
    pub(crate) auto_merge: Option<Arc<crate::retention::AutoMerger>>,
}

/// [`Error::InvalidArgument`] for the catalog's slot.
pub(crate) fn not_catalog(slot: Slot) -> Result<()> {
    if slot == CATALOG_SLOT {
        return Err(Error::InvalidArgument(format!(
            "slot {CATALOG_SLOT} is the store's catalog of typed slots; the untyped API does not write it"
        )));
    }
    Ok(())
}

/// Shows the engine, the version read at, whether it is read-only and how many writes are
/// buffered; never keys or values.
impl<E: Engine> std::fmt::Debug for Transaction<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("engine", &E::NAME)
            .field("version", &self.snapshot.version())
            .field("read_only", &self.read_only)
            .field("closed", &self.closed)
            .field("writes", &self.writes.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Reads {
    keys: Vec<(Slot, Vec<u8>)>,
    ranges: Vec<(Slot, KeyRange)>,
}

impl<E: Engine> Transaction<E> {
    pub(crate) fn new(
        engine: Arc<E>,
        catalog: Arc<Catalog>,
        snapshot: Result<Snapshot>,
        read_only: bool,
    ) -> Self {
        let (snapshot, closed) = match snapshot {
            Ok(s) => (s, false),
            Err(_) => (Snapshot::unpinned(Version::ZERO), true),
        };
        let now_ms = std::sync::OnceLock::new();
        if catalog.expiry.used() {
            let _ = now_ms.set(crate::expiry::now_for(&*engine, &snapshot));
        }
        Transaction {
            engine,
            snapshot,
            closed,
            read_only,
            writes: BTreeMap::new(),
            reads: Mutex::new(Reads::default()),
            last_write_ms: None,
            durability: None,
            catalog,
            catalog_writes: Vec::new(),
            removed_ranges: Vec::new(),
            range_tombstones: Vec::new(),
            now_ms,
            wrote_ttl: false,
            auto_merge: None,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.closed {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn check_write(&self, what: &'static str) -> Result<()> {
        self.check()?;
        if self.read_only || self.engine.options().read_only {
            return Err(Error::ReadOnly(what));
        }
        Ok(())
    }

    fn note_read(&self, slot: Slot, key: &[u8]) {
        if !self.read_only {
            let mut r = self.reads.lock();
            r.keys.push((slot, key.to_vec()));
        }
    }

    pub(crate) fn note_range(&self, slot: Slot, range: &KeyRange) {
        if !self.read_only {
            let mut r = self.reads.lock();
            r.ranges.push((slot, range.clone()));
        }
    }

    /// This transaction's own pending write of a key, if any (a removal if a range it
    /// removed holds the key and it did not write the key since).
    fn local(&self, slot: Slot, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        /// What a key of a removed range reads as.
        static REMOVED: Option<Vec<u8>> = None;
        if self.writes.is_empty() && self.range_tombstones.is_empty() {
            return None; // the common case: no key copy for the lookup
        }
        self.writes
            .get(&(slot, key.to_vec()))
            .or_else(|| self.in_removed_range(slot, key).then_some(&REMOVED))
    }

    /// True if a range this transaction removed through the engine holds `key`.
    pub(crate) fn in_removed_range(&self, slot: Slot, key: &[u8]) -> bool {
        self.range_tombstones
            .iter()
            .any(|(s, r)| *s == slot && r.contains(key))
    }

    pub(crate) fn engine(&self) -> &E {
        &self.engine
    }

    /// The version this transaction reads at.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let txn = store.current();
    /// assert_eq!(txn.version(), kv_db::Version::ZERO);
    /// store.transact(async |t| t.insert(0, &"k", 1u8)).await?;
    /// assert_eq!(txn.version(), kv_db::Version::ZERO); // still its snapshot
    /// assert_eq!(store.current().version().seq(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn version(&self) -> Version {
        self.snapshot.version()
    }

    /// True for views from [`crate::Store::snapshot`] and [`crate::Store::snapshot_at`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// assert!(store.snapshot().is_read_only());
    /// assert!(!store.current().is_read_only());
    /// let mut snap = store.snapshot();
    /// assert!(matches!(snap.insert(0, &"k", 1u8), Err(kv_db::Error::ReadOnly(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Overrides the store's durability for this transaction's commit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// // Returns before the sync: see `Store::flush`.
    /// txn.set_durability(kv_db::Durability::Buffered);
    /// txn.insert(0, &"page views", 1u64)?;
    /// txn.commit().await?;
    /// assert_eq!(store.snapshot().get::<_, u64>(0, &"page views").await?, Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = Some(durability);
    }

    /// The value of `key` in `slot`, `None` if absent or removed.
    /// A value stored as another type is [`Error::Decode`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// txn.insert(0, &("user", 7u32), "Ada")?;
    /// let name: Option<String> = txn.get(0, &("user", 7u32)).await?;
    /// assert_eq!(name.as_deref(), Some("Ada"));
    /// assert_eq!(txn.get::<_, String>(0, &("user", 8u32)).await?, None);
    /// let as_number = txn.get::<_, u64>(0, &("user", 7u32)).await;
    /// assert!(matches!(as_number, Err(kv_db::Error::Decode { .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get<K, V>(&self, slot: Slot, key: &K) -> Result<Option<V>>
    where
        K: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        self.check()?;
        let k = encode_key(key)?;
        if let Some(local) = self.local(slot, &k) {
            if local.is_some() && self.is_expired(slot, &k).await? {
                return Ok(None);
            }
            return local.as_deref().map(decode_value).transpose();
        }
        self.note_read(slot, &k);
        // Not `get_with`: decoding in its visitor would make the future hold a `V`, so `V`
        // would have to be `Send` for a transaction's future to be.
        match self.engine.get(slot, &k, self.snapshot.seq()).await? {
            Some(_) if self.is_expired(slot, &k).await? => Ok(None),
            Some(bytes) => decode_value(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The values of `keys` in `slot`, in the order of `keys`: what a [`Transaction::get`]
    /// of each returns (this transaction's own writes included, every key read recorded for
    /// conflicts alike), read from the engine in one batch ([`Engine::get_many`]).
    ///
    /// ```
    /// # async fn demo(txn: kv_api::Transaction<impl kv_api::Engine>) -> kv_api::Result<()> {
    /// let values: Vec<Option<u8>> = txn.get_many(0, &["key2", "key1"]).await?;
    /// assert_eq!(values.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_many<K, V>(&self, slot: Slot, keys: &[K]) -> Result<Vec<Option<V>>>
    where
        K: Serialize,
        V: DeserializeOwned,
    {
        self.check()?;
        let encoded = keys.iter().map(encode_key).collect::<Result<Vec<_>>>()?;
        // Keys this transaction wrote are answered locally, as `get` answers them.
        let remote: Vec<&[u8]> = encoded
            .iter()
            .filter(|k| self.local(slot, k).is_none())
            .map(Vec::as_slice)
            .collect();
        if !self.read_only {
            // One lock for the batch's reads.
            let mut r = self.reads.lock();
            r.keys.extend(remote.iter().map(|k| (slot, k.to_vec())));
        }
        let mut fetched = self
            .engine
            .get_many(slot, &remote, self.snapshot.seq())
            .await?
            .into_iter();
        let mut values = Vec::with_capacity(encoded.len());
        for k in &encoded {
            values.push(match self.local(slot, k) {
                Some(local) => local.clone(),
                None => fetched.next().ok_or_else(|| {
                    Error::InvalidArgument("the engine returned fewer values than keys".into())
                })?,
            });
        }
        if self.expiry_in_use() {
            // Values expired at this view's time read as absent: their records looked up in
            // one batch, as a scan's page does.
            let live: Vec<(Vec<u8>, usize)> = encoded
                .iter()
                .zip(&values)
                .enumerate()
                .filter(|(_, (_, v))| v.is_some())
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            let mut kept = vec![false; values.len()];
            for (_, i) in self.drop_expired(slot, live).await? {
                if let Some(k) = kept.get_mut(i) {
                    *k = true;
                }
            }
            for (v, kept) in values.iter_mut().zip(kept) {
                if !kept {
                    *v = None;
                }
            }
        }
        values
            .iter()
            .map(|v| v.as_deref().map(decode_value).transpose())
            .collect()
    }

    /// The latest value of `key` that was not a removal ("trash" semantics: read what was
    /// removed), until `merge` drops it. The transaction's own pending write counts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// store.transact(async |t| t.insert(0, &"note", "draft")).await?;
    /// store.transact(async |t| t.remove(0, &"note")).await?;
    /// let txn = store.snapshot();
    /// assert_eq!(txn.get::<_, String>(0, &"note").await?, None);
    /// assert_eq!(txn.get_unremoved::<_, String>(0, &"note").await?.as_deref(), Some("draft"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_unremoved<K, V>(&self, slot: Slot, key: &K) -> Result<Option<V>>
    where
        K: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        self.check()?;
        let k = encode_key(key)?;
        if let Some(Some(local)) = self.local(slot, &k) {
            return decode_value(local).map(Some);
        }
        self.note_read(slot, &k);
        match self
            .engine
            .get_unremoved(slot, &k, self.snapshot.seq())
            .await?
        {
            Some((_, bytes)) => decode_value(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Sets `key` in `slot` to `value` (buffered until commit). Slot [`CATALOG_SLOT`] (255)
    /// is the store's catalog of typed slots: writing it is [`Error::InvalidArgument`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// txn.insert(0, &"a", 1u32)?; // slot 0
    /// txn.insert(1, &"a", "one")?; // slot 1: another key, of any type
    /// let catalog = txn.insert(kv_db::CATALOG_SLOT, &"a", 1u8);
    /// assert!(matches!(catalog, Err(kv_db::Error::InvalidArgument(_))));
    /// txn.commit().await?;
    /// let snap = store.snapshot();
    /// assert_eq!(snap.get::<_, u32>(0, &"a").await?, Some(1));
    /// assert_eq!(snap.get::<_, String>(1, &"a").await?.as_deref(), Some("one"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert<K, V>(&mut self, slot: Slot, key: &K, value: V) -> Result<()>
    where
        K: Serialize + ?Sized,
        V: Serialize,
    {
        not_catalog(slot)?;
        self.insert_unchecked(slot, key, &value)
    }

    /// [`Self::insert`] into any slot, the catalog's too.
    pub(crate) fn insert_unchecked<K, V>(&mut self, slot: Slot, key: &K, value: &V) -> Result<()>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        self.check_write("insert")?;
        let k = self.checked_key(key)?;
        let v = encode_value(value)?;
        self.engine.options().check_value_size(v.len())?;
        self.forget_own_ttl(slot, &k)?;
        self.writes.insert((slot, k), Some(v));
        self.touch();
        Ok(())
    }

    /// Removes `key` from `slot` (buffered until commit). The removal becomes a version.
    /// Slot [`CATALOG_SLOT`] is refused ([`Error::InvalidArgument`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// store.transact(async |t| t.insert(0, &"k", 1u8)).await?;
    /// let mut txn = store.current();
    /// txn.remove(0, &"k")?;
    /// txn.commit().await?;
    /// let snap = store.snapshot();
    /// assert_eq!(snap.get::<_, u8>(0, &"k").await?, None);
    /// let versions = snap.versions(0, &"k").await?;
    /// assert!(versions[1].is_removal()); // the removal is a version of its own
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove<K>(&mut self, slot: Slot, key: &K) -> Result<()>
    where
        K: Serialize + ?Sized,
    {
        not_catalog(slot)?;
        self.remove_unchecked(slot, key)
    }

    /// [`Self::remove`] from any slot.
    pub(crate) fn remove_unchecked<K>(&mut self, slot: Slot, key: &K) -> Result<()>
    where
        K: Serialize + ?Sized,
    {
        self.check_write("remove")?;
        let k = self.checked_key(key)?;
        self.forget_own_ttl(slot, &k)?;
        self.writes.insert((slot, k), None);
        self.touch();
        Ok(())
    }

    fn checked_key<K: Serialize + ?Sized>(&self, key: &K) -> Result<Vec<u8>> {
        let k = encode_key(key)?;
        self.engine.options().check_key_size(k.len())?;
        Ok(k)
    }

    /// Records `info` in the catalog with this transaction's commit.
    pub(crate) fn record_slot(&mut self, info: SlotInfo) -> Result<()> {
        self.check_write("slot_mut")?;
        let (key, value) = info.encode()?;
        self.writes.insert((CATALOG_SLOT, key), Some(value));
        self.touch();
        self.catalog_writes.push(info);
        Ok(())
    }

    pub(crate) fn touch(&mut self) {
        let now = self.engine.options().clock.now_ms();
        self.last_write_ms = Some(now.max(self.snapshot.version().time_ms()));
    }

    /// Every committed version of `key` visible to this transaction, oldest first, removals
    /// included (see [`Version::is_removal`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// for price in [10u32, 12] {
    ///     store.transact(async |t| t.insert(0, &"price", price)).await?;
    /// }
    /// store.transact(async |t| t.remove(0, &"price")).await?;
    /// let versions = store.snapshot().versions(0, &"price").await?;
    /// assert_eq!(versions.len(), 3);
    /// assert!(versions[0].seq() < versions[1].seq());
    /// assert!(versions[0].time_ms() <= versions[1].time_ms()); // commit times, in ms
    /// let removals: Vec<bool> = versions.iter().map(|v| v.is_removal()).collect();
    /// assert_eq!(removals, [false, false, true]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn versions<K>(&self, slot: Slot, key: &K) -> Result<Vec<Version>>
    where
        K: Serialize + ?Sized,
    {
        self.check()?;
        let k = encode_key(key)?;
        let versions = self.engine.versions(slot, &k, self.snapshot.seq()).await?;
        self.with_expiries(slot, &k, versions).await
    }

    /// The value `key` had in commit `version`: `None` if that commit removed it;
    /// [`Error::VersionNotFound`] if the key has no such version (or it was merged away).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// for price in [10u32, 12] {
    ///     store.transact(async |t| t.insert(0, &"price", price)).await?;
    /// }
    /// let txn = store.snapshot();
    /// let versions = txn.versions(0, &"price").await?;
    /// assert_eq!(txn.get_version::<_, u32>(0, &"price", versions[0]).await?, Some(10));
    /// assert_eq!(txn.get_version::<_, u32>(0, &"price", versions[1]).await?, Some(12));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn get_version<K, V>(
        &self,
        slot: Slot,
        key: &K,
        version: Version,
    ) -> Result<Option<V>>
    where
        K: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        self.check()?;
        if version.seq() > self.snapshot.seq() {
            return Err(Error::VersionNotFound {
                seq: version.seq(),
                reason: "newer than this transaction",
            });
        }
        let k = encode_key(key)?;
        match self.engine.get_version(slot, &k, version).await? {
            Some(bytes) => decode_value(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Entries of `slot` whose keys (of type `K`) lie in `range`, in `K`'s order. Await it for
    /// a `Vec`, or call [`RangeQuery::stream`] to page through a large range in bounded memory;
    /// [`RangeQuery::reverse`] and [`RangeQuery::limit`] shape it. Keys of other types in the
    /// slot are skipped.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// for id in [1u32, 5, 10, 20] {
    ///     txn.insert(0, &id, format!("item {id}"))?;
    /// }
    /// // Typed order (2 < 10), not string order; its own pending writes included.
    /// let rows: Vec<(u32, String)> = txn.range(0, 2..=10).await?;
    /// assert_eq!(rows, [(5, "item 5".to_string()), (10, "item 10".to_string())]);
    /// let last = txn.range::<u32, String>(0, ..).reverse().limit(1).await?;
    /// assert_eq!(last[0].0, 20);
    /// # Ok(())
    /// # }
    /// ```
    pub fn range<K, V>(&self, slot: Slot, range: impl RangeBounds<K>) -> RangeQuery<'_, E, K, V>
    where
        K: Serialize + DeserializeOwned,
        V: DeserializeOwned,
    {
        let encoded = encode_range(&range);
        RangeQuery::new(self, slot, encoded)
    }

    /// Entries of `slot` whose encoded keys start with the encoding of `prefix`, without its
    /// final string terminator: for a string, every string key that starts with it; for a
    /// tuple `(a, b)` of a tuple key `(a, b, c)`, every key with those leading fields (and if
    /// the last given field is a string, every key whose field starts with it).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// txn.insert(0, &("org1", 1u32), "Ada")?;
    /// txn.insert(0, &("org1", 2u32), "Grace")?;
    /// txn.insert(0, &("org2", 1u32), "Edsger")?;
    /// let org1: Vec<((String, u32), String)> = txn.prefix(0, &("org1",)).await?;
    /// assert_eq!(org1.len(), 2);
    /// assert!(org1.iter().all(|((org, _), _)| org == "org1"));
    /// // The last given field is a string: every first field that starts with it.
    /// let orgs: Vec<((String, u32), String)> = txn.prefix(0, &("org",)).await?;
    /// assert_eq!(orgs.len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefix<P, K, V>(&self, slot: Slot, prefix: &P) -> RangeQuery<'_, E, K, V>
    where
        P: Serialize + ?Sized,
        K: Serialize + DeserializeOwned,
        V: DeserializeOwned,
    {
        let range = encode_key_prefix(prefix).map(|p| KeyRange::prefix(&p));
        RangeQuery::new(self, slot, range)
    }

    /// Every live key of type `K` in `slot`, in `K`'s order, including this transaction's own
    /// inserts and excluding its own removals. A key-only scan ([`RangeQuery::keys`]): no
    /// value is read.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// store.transact(async |t| {
    ///     t.insert(0, &"b", 1u8)?;
    ///     t.insert(0, &"a", 1u8)
    /// })
    /// .await?;
    /// let mut txn = store.current();
    /// txn.insert(0, &"c", 1u8)?;
    /// txn.remove(0, &"b")?;
    /// assert_eq!(txn.keys::<String>(0).await?, ["a", "c"]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn keys<K>(&self, slot: Slot) -> Result<Vec<K>>
    where
        K: Serialize + DeserializeOwned + crate::MaybeSend,
    {
        RangeQuery::<E, K, ()>::new(self, slot, Ok(KeyRange::all()))
            .keys()
            .await
    }

    /// The commit time (ms since the Unix epoch) of the latest commit visible to this
    /// transaction, or of its own latest pending write; `None` on an empty store.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// assert_eq!(store.current().last_updated(), None);
    /// let mut txn = store.current();
    /// txn.insert(0, &"k", 1u8)?;
    /// let version = txn.commit().await?;
    /// assert_eq!(store.current().last_updated(), Some(version.time_ms()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn last_updated(&self) -> Option<u64> {
        self.last_write_ms.or_else(|| {
            let v = self.snapshot.version();
            (v.seq() > 0).then_some(v.time_ms())
        })
    }

    /// Discards the buffered writes (dropping the transaction does the same).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// txn.insert(0, &"k", 1u8)?;
    /// txn.abort();
    /// assert_eq!(store.snapshot().get::<_, u8>(0, &"k").await?, None);
    /// assert_eq!(store.version()?, kv_db::Version::ZERO); // nothing was committed
    /// # Ok(())
    /// # }
    /// ```
    pub fn abort(self) {}

    /// Commits atomically and returns the new version; a transaction without writes returns
    /// its snapshot's version and never conflicts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// let mut txn = store.current();
    /// txn.insert(0, &"k", 1u8)?;
    /// let v1 = txn.commit().await?;
    /// assert_eq!(v1.seq(), 1);
    /// let reader = store.current();
    /// let _: Option<u8> = reader.get(0, &"k").await?;
    /// assert_eq!(reader.commit().await?, v1); // no writes: nothing to commit, no conflict
    /// # Ok(())
    /// # }
    /// ```
    pub async fn commit(mut self) -> Result<Version> {
        let auto = self.auto_merge.take();
        let (engine, catalog) = (self.engine.clone(), self.catalog.clone());
        let (version, written) = self.commit_only().await?;
        if let Some(auto) = auto
            && written > 0
        {
            // The commit is durable whatever the merge does: its error is not this commit's.
            // A storage failure in it poisons the store, and later commits report that.
            let store = crate::Store::from_parts(engine, catalog, auto.clone());
            let _ = auto.after_commit(&store, written).await;
        }
        Ok(version)
    }

    /// [`Transaction::commit`] without the automatic merge check: the new version and the
    /// bytes of keys and values written. What the merge's own expiry sweep commits with (a
    /// merge inside a merge would also be a recursive future).
    pub(crate) async fn commit_only(mut self) -> Result<(Version, u64)> {
        self.check()?;
        if self.writes.is_empty() && self.range_tombstones.is_empty() {
            return Ok((self.snapshot.version(), 0));
        }
        self.check_write("commit")?;
        self.settle_expiries().await?;
        let reads = std::mem::take(&mut *self.reads.lock());
        let written: u64 = self
            .writes
            .iter()
            .map(|((_, k), v)| k.len().saturating_add(v.as_ref().map_or(0, Vec::len)) as u64)
            .fold(0, u64::saturating_add);
        let catalog = self.catalog;
        let recorded = self.catalog_writes;
        let batch = WriteBatch {
            start: self.snapshot.clone(),
            reads: reads.keys,
            ranges: reads.ranges,
            removed_ranges: self.removed_ranges,
            range_tombstones: self.range_tombstones,
            writes: self
                .writes
                .into_iter()
                .map(|((slot, key), value)| Write { slot, key, value })
                .collect(),
            durability: self.durability,
        };
        let version = self.engine.commit(batch).await?;
        catalog.record(recorded);
        Ok((version, written))
    }

    pub(crate) fn snapshot_seq(&self) -> u64 {
        self.snapshot.seq()
    }

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        self.check()
    }
}
