//! Range removal: `Transaction::remove_range` and `remove_prefix`.
//!
//! A removed range becomes, in the transaction's commit, one removal of each key the range
//! held at the transaction's snapshot (so every removed key gets a removal version that
//! `versions` lists, on every engine), plus the range itself: as a scanned range (a commit
//! into it since the snapshot makes this commit conflict, so the keys removed are exactly the
//! keys the range holds when the commit lands) and as a removed range of the batch
//! ([`crate::WriteBatch::removed_ranges`]), a write over the whole range that later commits
//! which read, wrote or scanned inside it conflict with.
//!
//! On an engine that removes ranges itself ([`crate::Engine::range_tombstones`], the LSM) the
//! range's keys are only counted, not written: the range goes to the engine as one record
//! ([`crate::WriteBatch::range_tombstones`]), which the engine applies before the commit's
//! writes. So the order within a transaction is the order of its calls: a key written after
//! the removal is written, one written before is removed (its pending write is dropped here).
//! Not while the store holds expiry records: a removed key's record must go too, which needs
//! the key list (then the keys are written as above).

use std::ops::{Bound, RangeBounds};

use serde::Serialize;

use crate::codec::encode_key_prefix;
use crate::range::encode_range;
use crate::transaction::not_catalog;
use crate::{Engine, KeyRange, Result, Slot, Transaction};

/// Keys listed from the engine per scan while a range is removed.
const PAGE: usize = 4096;
/// Keys counted per listing when the engine removes the range itself (keys only: a page of
/// them is small, and fewer pages are fewer positionings of the engine's sources).
const KEY_PAGE: usize = 1 << 16;

impl<E: Engine> Transaction<E> {
    /// Removes every key of `slot` whose encoded key lies in `range`, atomically with the
    /// rest of the transaction; returns how many live keys it removed (those of the snapshot
    /// and this transaction's own pending inserts in the range).
    ///
    /// Each removed key gets a removal version of its own ([`crate::Version::is_removal`] in
    /// `versions`). The bounds are keys of type `K` and compare as encoded keys, as in
    /// [`Transaction::range`]; unlike a scan, a removal does not skip keys of other types
    /// that lie between the bounds, and an unbounded side reaches every key of the slot on
    /// that side (so `..` clears the slot). A concurrent transaction that read, wrote or
    /// scanned a key inside the range conflicts with this one (whichever commits second
    /// fails with [`crate::Error::Conflict`]). Slot [`crate::CATALOG_SLOT`] is refused.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// store.transact(async |t| {
    ///     for id in 1u32..=10 {
    ///         t.insert(0, &id, id * 100)?;
    ///     }
    ///     Ok(())
    /// })
    /// .await?;
    /// let mut txn = store.current();
    /// assert_eq!(txn.remove_range(0, 3u32..8).await?, 5);
    /// txn.commit().await?;
    /// let snap = store.snapshot();
    /// assert_eq!(snap.keys::<u32>(0).await?, [1, 2, 8, 9, 10]);
    /// assert!(snap.versions(0, &5u32).await?[1].is_removal());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remove_range<K>(&mut self, slot: Slot, range: impl RangeBounds<K>) -> Result<usize>
    where
        K: Serialize,
    {
        not_catalog(slot)?;
        self.check_write("remove_range")?;
        let range = encode_range(&range)?;
        self.remove_encoded_range(slot, range).await
    }

    /// Removes every key of `slot` whose encoded key starts with the encoding of `prefix`
    /// (the keys [`Transaction::prefix`] lists, and keys of other types with that prefix),
    /// as [`Transaction::remove_range`] does; returns how many live keys it removed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// # use kv_db::{KvStore, backends::MemoryStorage};
    /// # let store = KvStore::open(MemoryStorage::new()).await?;
    /// store.transact(async |t| {
    ///     t.insert(0, &("org1", 1u32), "Ada")?;
    ///     t.insert(0, &("org1", 2u32), "Grace")?;
    ///     t.insert(0, &("org2", 1u32), "Edsger")
    /// })
    /// .await?;
    /// let mut txn = store.current();
    /// assert_eq!(txn.remove_prefix(0, &("org1",)).await?, 2);
    /// txn.commit().await?;
    /// let left: Vec<((String, u32), String)> = store.snapshot().prefix(0, &("org",)).await?;
    /// assert_eq!(left, [(("org2".to_string(), 1), "Edsger".to_string())]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remove_prefix<P>(&mut self, slot: Slot, prefix: &P) -> Result<usize>
    where
        P: Serialize + ?Sized,
    {
        not_catalog(slot)?;
        self.check_write("remove_prefix")?;
        let prefix = encode_key_prefix(prefix)?;
        self.remove_encoded_range(slot, KeyRange::prefix(&prefix))
            .await
    }

    /// The shared body of both: lists the range at the snapshot, removes each key, records
    /// the range for the conflict checks.
    async fn remove_encoded_range(&mut self, slot: Slot, range: KeyRange) -> Result<usize> {
        if range.is_empty() {
            return Ok(0);
        }
        if self.engine().range_tombstones() && !self.catalog.expiry.used() && !self.wrote_ttl {
            return self.remove_by_tombstone(slot, range).await;
        }
        let at = self.snapshot_seq();
        let mut keys = Vec::new();
        self.each_key_page(slot, &range, at, PAGE, |page| keys.extend(page))
            .await?;
        // This transaction's own writes in the range: its inserts are removed too, its
        // removals stay removals (and a key it already removed is not counted again).
        let own: Vec<(Vec<u8>, bool)> = self
            .writes
            .range((slot, Vec::new())..)
            .take_while(|((s, _), _)| *s == slot)
            .filter(|((_, k), _)| range.contains(k))
            .map(|((_, k), v)| (k.clone(), v.is_some()))
            .collect();
        let mut removed = 0usize;
        for key in keys {
            if !matches!(self.writes.get(&(slot, key.clone())), Some(None)) {
                removed = removed.saturating_add(1);
            }
            self.writes.insert((slot, key), None);
        }
        for (key, was_insert) in own {
            if was_insert {
                // Counted above if the snapshot held it too (then it is `None` already).
                if self
                    .writes
                    .insert((slot, key), None)
                    .is_some_and(|v| v.is_some())
                {
                    removed = removed.saturating_add(1);
                }
            }
        }
        self.note_range(slot, &range);
        self.removed_ranges.push((slot, range));
        self.touch();
        Ok(removed)
    }

    /// [`Transaction::remove_range`] on an engine that removes the range itself: counts the
    /// live keys (snapshot keys not already removed by this transaction, and its own pending
    /// inserts), drops its pending writes in the range, and hands the range to the engine.
    async fn remove_by_tombstone(&mut self, slot: Slot, range: KeyRange) -> Result<usize> {
        let at = self.snapshot_seq();
        // This transaction's own writes in the range (true: an insert) and its earlier
        // removed ranges: they decide what a snapshot key is now.
        let own: std::collections::BTreeMap<Vec<u8>, bool> = self
            .writes
            .range((slot, Vec::new())..)
            .take_while(|((s, _), _)| *s == slot)
            .filter(|((_, k), _)| range.contains(k))
            .map(|((_, k), v)| (k.clone(), v.is_some()))
            .collect();
        let earlier: Vec<KeyRange> = self
            .range_tombstones
            .iter()
            .filter(|(s, r)| *s == slot && r.overlaps(&range))
            .map(|(_, r)| r.clone())
            .collect();
        let mut removed = own.values().filter(|insert| **insert).count();
        let mut listed = false;
        self.each_key_page(slot, &range, at, KEY_PAGE, |page| {
            listed |= !page.is_empty();
            for key in &page {
                if !own.contains_key(key) && !earlier.iter().any(|r| r.contains(key)) {
                    removed = removed.saturating_add(1);
                }
            }
        })
        .await?;
        for key in own.keys() {
            self.writes.remove(&(slot, key.clone()));
        }
        self.note_range(slot, &range);
        if listed || !own.is_empty() {
            self.range_tombstones.push((slot, range.clone()));
        }
        self.removed_ranges.push((slot, range));
        self.touch();
        Ok(removed)
    }

    /// The live keys of `range` in `slot` at `at`, key-only, handed to `each` a page of at
    /// most `page` keys at a time, in key order.
    async fn each_key_page(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        page: usize,
        mut each: impl FnMut(Vec<Vec<u8>>),
    ) -> Result<()> {
        let mut lower = range.start.clone();
        loop {
            let page_range = KeyRange {
                start: lower,
                end: range.end.clone(),
            };
            if page_range.is_empty() {
                return Ok(());
            }
            let keys: Vec<Vec<u8>> = self
                .engine()
                .scan_keys(slot, &page_range, at, false, page)
                .await?
                .into_iter()
                .map(|(key, _)| key)
                .collect();
            let next = match keys.last() {
                Some(l) if keys.len() == page => Bound::Excluded(l.clone()),
                _ => {
                    each(keys);
                    return Ok(());
                }
            };
            each(keys);
            lower = next;
        }
    }
}
