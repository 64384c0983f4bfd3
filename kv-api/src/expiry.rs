//! Expiry (time to live): `Transaction::insert_with_ttl`, how reads judge expiry, and the
//! sweep that lets `merge` reclaim expired values.
//!
//! The expiry of a key's value is kept beside it, in the same commit, as an *expiry record*
//! in the catalog's slot ([`CATALOG_SLOT`]): key `("kv.expiry", slot, key bytes)` (the key
//! codec's tuple, so it never decodes as a catalog entry, whose keys are `u8`), value the
//! expiry in ms since the Unix epoch (postcard `u64`). It is versioned and transactional with
//! the value on every engine and backend, needs no change to any file format, and travels with
//! `export`/`import`. A later write of the key without a time to live, or its removal, removes
//! the record in the same commit.
//!
//! *Reading.* A transaction (and a snapshot) judges expiry at one time, its `now`, fixed when
//! it starts: the store's [`crate::Clock`] then (never below its version's commit time). So a
//! view is stable: a value does not vanish halfway through a transaction. A view from
//! [`crate::Store::snapshot_at`] judges at the commit time of the version it is pinned at,
//! and so sees what was live then. A value whose expiry is at or before `now` reads as
//! absent in `get`, `get_many`, scans and `keys`; `versions` lists it with its expiry
//! ([`crate::Version::expires_ms`]); `get_version` and `get_unremoved` still return it (they
//! read a named version, or what was removed, on purpose).
//!
//! *Cost.* A store that never wrote a time to live pays one atomic load per read and per
//! transaction (a view reads the clock at its start only once the store holds records). Once
//! one is written (or found at open), every read that finds a value also looks up its expiry
//! record, and every commit looks up the records of the keys it writes without one.
//!
//! *Reclaiming.* [`crate::Store::merge`] first removes, in one commit of its own, every key
//! whose expiry is at or before the clock (and its record), then merges: so the expired value
//! goes like any removed one, while snapshots open before that commit still see it. The
//! removal shows in `versions` as a removal version at that commit.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::{Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::codec::{decode_key, decode_value, encode_key, encode_key_prefix, encode_value};
use crate::typed::CATALOG_SLOT;
use crate::{Engine, Error, KeyRange, Result, Slot, Store, Transaction, Version};

/// The first field of every expiry record's key.
const NAME: &str = "kv.expiry";

/// Expiry records listed per scan by the sweep.
const PAGE: usize = 1024;

/// A key's bytes as one field of an expiry record's key (the key codec's byte string).
struct KeyBytes<'a>(&'a [u8]);

impl Serialize for KeyBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// [`KeyBytes`] decoded.
struct OwnedKeyBytes(Vec<u8>);

impl<'de> Deserialize<'de> for OwnedKeyBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OwnedKeyBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(
                self,
                v: &[u8],
            ) -> std::result::Result<Self::Value, E> {
                Ok(OwnedKeyBytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(
                self,
                v: Vec<u8>,
            ) -> std::result::Result<Self::Value, E> {
                Ok(OwnedKeyBytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

/// The key of the expiry record of `key` in `slot`.
pub(crate) fn record_key(slot: Slot, key: &[u8]) -> Result<Vec<u8>> {
    encode_key(&(NAME, slot, KeyBytes(key)))
}

/// The slot and key an expiry record's key names, if it is one.
fn parse_record_key(bytes: &[u8]) -> Option<(Slot, Vec<u8>)> {
    let (name, slot, key): (String, Slot, OwnedKeyBytes) = decode_key(bytes).ok()?;
    (name == NAME && slot != CATALOG_SLOT).then_some((slot, key.0))
}

/// Every expiry record's key (and any other key of the catalog's slot whose first field is
/// a string starting with [`NAME`]: [`parse_record_key`] sorts them out).
fn all_records() -> Result<KeyRange> {
    encode_key_prefix(&(NAME,)).map(|p| KeyRange::prefix(&p))
}

/// Whether a store holds (or may hold) expiry records: shared by its transactions.
#[derive(Debug, Default)]
pub(crate) struct ExpiryState {
    used: AtomicBool,
}

impl ExpiryState {
    /// Looks for expiry records at the latest commit (a read-only store always looks them up:
    /// a writer beside it may add some at any time).
    pub(crate) async fn load<E: Engine>(engine: &E) -> Result<ExpiryState> {
        let state = ExpiryState::default();
        state.refresh(engine).await?;
        Ok(state)
    }

    /// Looks again (after an import, which writes records without a transaction); never
    /// forgets that records were seen.
    pub(crate) async fn refresh<E: Engine>(&self, engine: &E) -> Result<()> {
        let used = engine.options().read_only || {
            let at = engine.snapshot()?.seq();
            !engine
                .scan(CATALOG_SLOT, &all_records()?, at, false, 1)
                .await?
                .is_empty()
        };
        if used {
            self.mark_used();
        }
        Ok(())
    }

    pub(crate) fn used(&self) -> bool {
        self.used.load(Ordering::Acquire)
    }

    fn mark_used(&self) {
        self.used.store(true, Ordering::Release);
    }
}

/// The "now" of a view pinned at `snapshot`: the clock, never below its commit time.
pub(crate) fn now_for<E: Engine>(engine: &E, snapshot: &crate::Snapshot) -> u64 {
    engine
        .options()
        .clock
        .now_ms()
        .max(snapshot.version().time_ms())
}

impl<E: Engine> Transaction<E> {
    /// The time this view judges expiry at (fixed once read).
    pub(crate) fn read_now(&self) -> u64 {
        *self
            .now_ms
            .get_or_init(|| now_for(self.engine(), self.snapshot()))
    }

    /// Sets `key` in `slot` to `value`, expiring `ttl` after now (the store's
    /// [`crate::Clock`] at this call): from then on it reads as absent, and
    /// [`crate::Store::merge`] reclaims it. Its expiry shows in
    /// [`crate::Version::expires_ms`] of its version. A later [`Transaction::insert`] of the
    /// key without a time to live makes it permanent again. See [`Transaction::insert`] for
    /// the slot rules.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::time::Duration;
    /// use kv_db::{Clock, KvStore, Options, backends::MemoryStorage};
    /// let now = Arc::new(AtomicU64::new(1_000_000));
    /// let clock = { let now = now.clone(); Clock::new(move || now.load(Ordering::SeqCst)) };
    /// let store = KvStore::open_with(MemoryStorage::new(), Options::default().clock(clock)).await?;
    /// let mut txn = store.current();
    /// txn.insert_with_ttl(0, &"token", "abc", Duration::from_secs(30))?;
    /// txn.commit().await?;
    /// assert_eq!(store.snapshot().get::<_, String>(0, &"token").await?.as_deref(), Some("abc"));
    /// now.fetch_add(30_000, Ordering::SeqCst);
    /// assert_eq!(store.snapshot().get::<_, String>(0, &"token").await?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert_with_ttl<K, V>(
        &mut self,
        slot: Slot,
        key: &K,
        value: V,
        ttl: std::time::Duration,
    ) -> Result<()>
    where
        K: Serialize + ?Sized,
        V: Serialize,
    {
        crate::transaction::not_catalog(slot)?;
        self.insert_ttl_unchecked(slot, key, &value, ttl)
    }

    /// [`Self::insert_with_ttl`] into any slot but the catalog's (typed handles use it).
    pub(crate) fn insert_ttl_unchecked<K, V>(
        &mut self,
        slot: Slot,
        key: &K,
        value: &V,
        ttl: std::time::Duration,
    ) -> Result<()>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        self.insert_unchecked(slot, key, value)?;
        let k = encode_key(key)?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let expires = self
            .engine()
            .options()
            .clock
            .now_ms()
            .saturating_add(ttl_ms);
        self.writes.insert(
            (CATALOG_SLOT, record_key(slot, &k)?),
            Some(encode_value(&expires)?),
        );
        self.wrote_ttl = true;
        Ok(())
    }

    /// Drops this transaction's own expiry record of `key` (a later write without a time to
    /// live replaces a write with one).
    pub(crate) fn forget_own_ttl(&mut self, slot: Slot, key: &[u8]) -> Result<()> {
        if self.wrote_ttl && slot != CATALOG_SLOT {
            self.writes.remove(&(CATALOG_SLOT, record_key(slot, key)?));
        }
        Ok(())
    }

    /// True if expiry records may exist for this view.
    pub(crate) fn expiry_in_use(&self) -> bool {
        self.wrote_ttl || self.catalog.expiry.used()
    }

    /// The expiry of the value `key` has in this view, if it was written with one.
    async fn expiry_of(&self, slot: Slot, key: &[u8]) -> Result<Option<u64>> {
        let record = record_key(slot, key)?;
        if let Some(own) = self.writes.get(&(CATALOG_SLOT, record.clone())) {
            return own.as_deref().map(decode_value).transpose();
        }
        if !self.catalog.expiry.used() {
            return Ok(None);
        }
        let at = self.snapshot_seq();
        match self.engine().get(CATALOG_SLOT, &record, at).await? {
            Some(bytes) => decode_value(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// True if the value `key` has in this view expired at this view's `now`.
    pub(crate) async fn is_expired(&self, slot: Slot, key: &[u8]) -> Result<bool> {
        if slot == CATALOG_SLOT || !self.expiry_in_use() {
            return Ok(false);
        }
        Ok(self
            .expiry_of(slot, key)
            .await?
            .is_some_and(|e| e <= self.read_now()))
    }

    /// Drops the entries of a scanned page whose values expired at this view's `now`.
    pub(crate) async fn drop_expired<T>(
        &self,
        slot: Slot,
        entries: Vec<(Vec<u8>, T)>,
    ) -> Result<Vec<(Vec<u8>, T)>> {
        if slot == CATALOG_SLOT || !self.expiry_in_use() {
            return Ok(entries);
        }
        // Each entry's record: this transaction's own, or (all at once) the snapshot's.
        let records = entries
            .iter()
            .map(|(k, _)| record_key(slot, k))
            .collect::<Result<Vec<_>>>()?;
        let own: Vec<Option<&Option<Vec<u8>>>> = records
            .iter()
            .map(|r| self.writes.get(&(CATALOG_SLOT, r.clone())))
            .collect();
        let lookup: Vec<&[u8]> = if self.catalog.expiry.used() {
            records
                .iter()
                .zip(&own)
                .filter(|(_, own)| own.is_none())
                .map(|(r, _)| r.as_slice())
                .collect()
        } else {
            Vec::new()
        };
        let mut stored = if lookup.is_empty() {
            Vec::new()
        } else {
            self.engine()
                .get_many(CATALOG_SLOT, &lookup, self.snapshot_seq())
                .await?
        }
        .into_iter();
        let used = self.catalog.expiry.used();
        let mut kept = Vec::with_capacity(entries.len());
        for ((k, v), own) in entries.into_iter().zip(own) {
            let record = match own {
                Some(own) => own.clone(),
                None if used => stored.next().flatten(),
                None => None,
            };
            let expires: Option<u64> = record.as_deref().map(decode_value).transpose()?;
            if expires.is_none_or(|e| e > self.read_now()) {
                kept.push((k, v));
            }
        }
        Ok(kept)
    }

    /// `versions` with the expiry of each value version that had one.
    pub(crate) async fn with_expiries(
        &self,
        slot: Slot,
        key: &[u8],
        versions: Vec<Version>,
    ) -> Result<Vec<Version>> {
        if slot == CATALOG_SLOT || !self.catalog.expiry.used() {
            return Ok(versions);
        }
        let record = record_key(slot, key)?;
        let at = self.snapshot_seq();
        let records = self.engine().versions(CATALOG_SLOT, &record, at).await?;
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            let expiry = match records.iter().find(|r| r.seq() == v.seq()) {
                Some(r) if !r.is_removal() && !v.is_removal() => {
                    match self.engine().get_version(CATALOG_SLOT, &record, *r).await {
                        Ok(Some(bytes)) => Some(decode_value::<u64>(&bytes)?),
                        Ok(None) | Err(Error::VersionNotFound { .. }) => None,
                        Err(e) => return Err(e),
                    }
                }
                _ => None,
            };
            out.push(v.with_expiry(expiry));
        }
        Ok(out)
    }

    /// Before a commit: removes the expiry records of keys written without one (looked up at
    /// this transaction's snapshot: a commit that gave one of them a record since wrote the
    /// key too, and so conflicts with this one), and tells the store it holds records.
    pub(crate) async fn settle_expiries(&mut self) -> Result<()> {
        if self.wrote_ttl {
            self.catalog.expiry.mark_used();
        }
        if !self.catalog.expiry.used() {
            return Ok(());
        }
        let mut candidates = Vec::new();
        let mut stale = Vec::new();
        for ((slot, key), value) in &self.writes {
            if *slot == CATALOG_SLOT {
                continue;
            }
            let record = record_key(*slot, key)?;
            match self.writes.get(&(CATALOG_SLOT, record.clone())) {
                // A value with a time to live (its record is written), or a record removed.
                Some(Some(_)) if value.is_some() => {}
                Some(None) => {}
                // Its own record, of a key it removed since (by range): remove it.
                Some(Some(_)) => stale.push(record),
                None => candidates.push(record),
            }
        }
        for record in stale {
            self.writes.insert((CATALOG_SLOT, record), None);
        }
        if candidates.is_empty() {
            return Ok(());
        }
        let refs: Vec<&[u8]> = candidates.iter().map(Vec::as_slice).collect();
        let found = self
            .engine()
            .get_many(CATALOG_SLOT, &refs, self.snapshot_seq())
            .await?;
        for (record, found) in candidates.into_iter().zip(found) {
            if found.is_some() {
                self.writes.insert((CATALOG_SLOT, record), None);
            }
        }
        Ok(())
    }
}

impl<E: Engine> Store<E> {
    /// Removes, in one commit, every key whose expiry is at or before the clock, with its
    /// expiry record; returns how many. What `merge` runs first. A conflict with a commit
    /// writing one of those keys is retried a few times, then left to the next merge.
    pub(crate) async fn sweep_expired(&self) -> Result<usize> {
        if !self.catalog.expiry.used() || self.engine().options().read_only {
            return Ok(0);
        }
        let mut attempts = 0u32;
        loop {
            let mut txn = self.current();
            txn.check_write("merge")?;
            let at = txn.snapshot_seq();
            let now = txn.read_now();
            let range = all_records()?;
            let mut lower = range.start.clone();
            let mut expired = Vec::new();
            loop {
                let page_range = KeyRange {
                    start: lower.clone(),
                    end: range.end.clone(),
                };
                let page = self
                    .engine()
                    .scan(CATALOG_SLOT, &page_range, at, false, PAGE)
                    .await?;
                let full = page.len() == PAGE;
                let mut last = None;
                for entry in page {
                    if let Some((slot, key)) = parse_record_key(&entry.key)
                        && decode_value::<u64>(&entry.value).is_ok_and(|e| e <= now)
                    {
                        expired.push((slot, key, entry.key.clone()));
                    }
                    last = Some(entry.key);
                }
                match last {
                    Some(l) if full => lower = Bound::Excluded(l),
                    _ => break,
                }
            }
            if expired.is_empty() {
                return Ok(0);
            }
            let n = expired.len();
            for (slot, key, record) in expired {
                txn.writes.insert((slot, key), None);
                txn.writes.insert((CATALOG_SLOT, record), None);
            }
            match txn.commit_only().await.map(|(version, _)| version) {
                Ok(_) => return Ok(n),
                Err(Error::Conflict(_)) if attempts < 3 => attempts = attempts.saturating_add(1),
                Err(Error::Conflict(_)) => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_keys_round_trip_and_stay_apart_from_catalog_entries() {
        let all = all_records().expect("range");
        for (slot, key) in [(0u8, &b""[..]), (7, b"k\x00\xff"), (254, &[0xffu8; 40][..])] {
            let record = record_key(slot, key).expect("encode");
            assert_eq!(parse_record_key(&record), Some((slot, key.to_vec())));
            assert!(all.contains(&record), "slot {slot}");
        }
        // Catalog entries (u8 keys) are outside, and do not parse as records.
        for slot in [0u8, 1, 254] {
            let catalog_key = encode_key(&slot).expect("encode");
            assert!(!all.contains(&catalog_key));
            assert_eq!(parse_record_key(&catalog_key), None);
        }
        // Another name, the catalog's own slot, trailing bytes: not records.
        let other = encode_key(&("kv.expiryX", 1u8, KeyBytes(b"k"))).expect("encode");
        assert_eq!(parse_record_key(&other), None);
        let own = encode_key(&(NAME, CATALOG_SLOT, KeyBytes(b"k"))).expect("encode");
        assert_eq!(parse_record_key(&own), None);
        let mut long = record_key(1, b"k").expect("encode");
        long.push(0);
        assert_eq!(parse_record_key(&long), None);
    }
}
