//! Reads: point lookups across memtables and levels, version listings, scans through the
//! merging iterator, and the counters of `stats`.
//!
//! Scans take a [`View`] (an `Arc` of each memtable and of the level set) and release the state
//! lock at once, so flushes and compactions swap state freely while they run; the tables a
//! view holds are not deleted before it drops them. Point reads look the memtables up under the
//! state lock (synchronous lookups, nothing allocated) and keep only the level set's `Arc`.

use std::sync::Arc;

use kv_api::{KeyRange, Result, Slot, Stats, Storage, StorageFile, Version};

use crate::engine::{Inner, State};
use crate::iter::{Merger, Source, TableCursor, Visible};
use crate::key::{EntryRef, OwnedEntry, Seek, UkeyRange};
use crate::levels::{LevelSet, NUM_LEVELS};
use crate::memtable::Memtable;
use crate::rtomb::{self, RangeTomb};
use crate::sstable::{Table, bloom};

/// A consistent set of sources for one read.
pub(crate) struct View<S: Storage> {
    /// Memtables, newest first.
    pub mems: Vec<Arc<Memtable>>,
    /// Tables.
    pub levels: Arc<LevelSet<S>>,
    /// Range tombstones.
    pub tombs: Arc<Vec<RangeTomb>>,
}

/// Tables of `levels` that may hold `ukey`, newest first.
fn tables_for<'a, S: Storage>(
    levels: &'a LevelSet<S>,
    ukey: &'a [u8],
) -> impl Iterator<Item = &'a Arc<Table<S>>> + 'a {
    let l0 = levels.level(0).iter().filter(move |t| t.covers(ukey));
    l0.chain((1..NUM_LEVELS).filter_map(move |l| levels.find(l, ukey)))
}

/// Memtables of `st`, newest first.
fn mems_of<S: Storage>(st: &State<S>) -> impl Iterator<Item = &Arc<Memtable>> {
    std::iter::once(&st.active).chain(st.immutables.iter().rev())
}

/// The value a point read found: its bytes, or a blob reference still to resolve
/// ([`Inner::load`]), read only after the block or memtable it was found in is let go.
pub(crate) enum Found {
    Inline(Vec<u8>),
    Blob { seq: u64, raw: Vec<u8> },
}

/// The value of an entry a point read found (`None`: a removal).
fn value_of(e: EntryRef<'_>) -> Option<Found> {
    e.value.map(|v| {
        if e.blob {
            Found::Blob {
                seq: e.seq,
                raw: v.to_vec(),
            }
        } else {
            Found::Inline(v.to_vec())
        }
    })
}

/// [`value_of`] of an entry of a key whose versions below `cover` a range tombstone removed
/// (see [`rtomb::cover`]).
fn value_above(cover: u64) -> impl Fn(EntryRef<'_>) -> Option<Found> + Copy {
    move |e| if e.seq < cover { None } else { value_of(e) }
}

impl<S: Storage> Inner<S> {
    /// A view of the current state.
    pub fn view(&self) -> View<S> {
        let st = self.read_state();
        View {
            mems: mems_of(&st).cloned().collect(),
            levels: st.levels.clone(),
            tombs: st.tombs.clone(),
        }
    }

    /// Never read past what is visible: entries above it are commits in flight.
    pub fn clamp(&self, at: u64) -> u64 {
        at.min(self.pipeline.visible().seq())
    }

    /// Looks `ukey` up in the memtables (newest first) under the state lock, so the lookup
    /// needs no view; otherwise returns the level set to search. Memtables hold values, never
    /// blob references.
    fn in_mems(
        &self,
        find: impl Fn(&Memtable) -> Option<Option<Found>>,
    ) -> std::result::Result<Option<Vec<u8>>, Arc<LevelSet<S>>> {
        let st = self.read_state();
        for m in mems_of(&st) {
            if let Some(v) = find(m) {
                return match v {
                    Some(Found::Blob { .. }) => Err(st.levels.clone()),
                    Some(Found::Inline(v)) => Ok(Some(v)),
                    None => Ok(None),
                };
            }
        }
        Err(st.levels.clone())
    }

    /// The bytes of a found value: a blob reference is read from the blob files of `levels`,
    /// the view it was found in.
    pub async fn load(
        &self,
        levels: &LevelSet<S>,
        ukey: &[u8],
        found: Option<Found>,
    ) -> Result<Option<Vec<u8>>> {
        match found {
            None => Ok(None),
            Some(Found::Inline(v)) => Ok(Some(v)),
            Some(Found::Blob { seq, raw }) => self.resolve(levels, ukey, seq, &raw).await.map(Some),
        }
    }

    /// The newest version of `ukey` with `seq <= at`: `Some(value)` (`Some(None)` for a
    /// removal) from the first source (newest first) holding one.
    pub async fn newest(&self, ukey: &[u8], at: u64) -> Result<Option<Option<Vec<u8>>>> {
        // The tombstones before the sources (see `State::tombs`).
        let value_of = value_above(rtomb::cover(&self.read_state().tombs, ukey, at));
        let levels = match self.in_mems(|m| m.get(ukey, at, value_of)) {
            Ok(v) => return Ok(Some(v)),
            Err(levels) => levels,
        };
        let hash = bloom::hash(ukey);
        for t in tables_for(&levels, ukey) {
            if let Some(v) = t
                .find(ukey, hash, Seek::At(ukey, at), &self.cache, value_of)
                .await?
            {
                return Ok(Some(self.load(&levels, ukey, v).await?));
            }
        }
        Ok(None)
    }

    /// [`Inner::newest`] of each of `ukeys` (sorted, without duplicates), in their order:
    /// the memtables under one state lock, then each table once, newest first, for the keys
    /// it may hold and no newer source answered, each block loaded once for all its keys.
    pub async fn newest_many(
        &self,
        ukeys: &[&[u8]],
        at: u64,
    ) -> Result<Vec<Option<Option<Vec<u8>>>>> {
        let mut out: Vec<Option<Option<Found>>> = Vec::with_capacity(ukeys.len());
        out.resize_with(ukeys.len(), || None);
        let (levels, covers) = {
            let st = self.read_state();
            let covers: Vec<u64> = ukeys
                .iter()
                .map(|k| rtomb::cover(&st.tombs, k, at))
                .collect();
            for ((k, o), c) in ukeys.iter().zip(out.iter_mut()).zip(&covers) {
                *o = mems_of(&st).find_map(|m| m.get(k, at, value_above(*c)));
            }
            (st.levels.clone(), covers)
        };
        let hashes: Vec<u64> = ukeys.iter().map(|k| bloom::hash(k)).collect();
        // Level 0's tables overlap (newest first); deeper levels' are disjoint and older.
        let tables = (0..NUM_LEVELS).flat_map(|l| levels.level(l));
        let mut pending = Vec::with_capacity(ukeys.len());
        for t in tables {
            let lo = ukeys.partition_point(|k| *k < t.meta.smallest.0.as_slice());
            let hi = ukeys.partition_point(|k| *k <= t.meta.largest.0.as_slice());
            pending.clear();
            pending.extend((lo..hi).filter(|i| out.get(*i).is_some_and(Option::is_none)));
            if pending.is_empty() {
                continue;
            }
            let found = |i: usize, e: EntryRef<'_>| {
                let cover = covers.get(i).copied().unwrap_or(0);
                if let Some(o) = out.get_mut(i) {
                    *o = Some(value_above(cover)(e));
                }
            };
            t.find_many((ukeys, &hashes), &pending, at, &self.cache, found)
                .await?;
        }
        let mut values = Vec::with_capacity(out.len());
        for (k, o) in ukeys.iter().zip(out) {
            values.push(match o {
                Some(f) => Some(self.load(&levels, k, f).await?),
                None => None,
            });
        }
        Ok(values)
    }

    /// Version `seq` of `ukey`, wherever it is: `Some(value)` as for [`Inner::newest`].
    pub async fn exact(&self, ukey: &[u8], seq: u64) -> Result<Option<Option<Vec<u8>>>> {
        let levels = match self.in_mems(|m| m.get_exact(ukey, seq, value_of)) {
            Ok(v) => return Ok(Some(v)),
            Err(levels) => levels,
        };
        let hash = bloom::hash(ukey);
        for t in tables_for(&levels, ukey) {
            if t.meta.min_seq > seq || t.meta.max_seq < seq {
                continue;
            }
            let found = t
                .find(ukey, hash, Seek::At(ukey, seq), &self.cache, |e| {
                    (e.seq == seq).then(|| value_of(e))
                })
                .await?;
            if let Some(Some(v)) = found {
                return Ok(Some(self.load(&levels, ukey, v).await?));
            }
        }
        Ok(None)
    }

    /// Versions of `ukey` with `seq <= at`, newest first; with `until_value`, stops after the
    /// source holding the newest value, and that value is resolved if it is in a blob file
    /// (other values may be left as blob references: `blob` says so).
    pub async fn versions_desc(
        &self,
        ukey: &[u8],
        at: u64,
        until_value: bool,
    ) -> Result<Vec<OwnedEntry>> {
        let view = self.view();
        let mut out = Vec::new();
        let done = |out: &Vec<OwnedEntry>| until_value && out.iter().any(|e| e.value.is_some());
        for m in &view.mems {
            m.versions(ukey, at, |e| out.push(e.to_owned_entry()));
            if done(&out) {
                return Ok(out);
            }
        }
        let hash = bloom::hash(ukey);
        for t in tables_for(&view.levels, ukey) {
            let reader = t.reader().await?;
            if !reader.may_contain(hash) {
                continue;
            }
            let mut cursor = TableCursor::new(t.clone(), self.cache.clone(), false);
            cursor.seek(Seek::At(ukey, at), false).await?;
            while let Some(e) = cursor.current() {
                if e.ukey != ukey {
                    break;
                }
                out.push(e.to_owned_entry());
                cursor.step(false).await?;
            }
            if done(&out) {
                break;
            }
        }
        if until_value
            && let Some(e) = out.iter_mut().find(|e| e.value.is_some())
            && e.blob
            && let Some(raw) = e.value.take()
        {
            e.value = Some(self.resolve(&view.levels, ukey, e.seq, &raw).await?);
            e.blob = false;
        }
        Ok(out)
    }

    /// Every version of `ukey` at or below `at`, oldest first, with the removals range
    /// tombstones made.
    pub async fn versions(&self, ukey: &[u8], at: u64) -> Result<Vec<Version>> {
        let tombs = self.read_state().tombs.clone();
        let mut versions: Vec<Version> = self
            .versions_desc(ukey, at, false)
            .await?
            .iter()
            .map(OwnedEntry::version)
            .collect();
        versions.sort();
        versions.dedup();
        Ok(rtomb::synthesize(&versions, &tombs, ukey, at))
    }

    /// Up to `limit` live entries of `range` in `slot` at `at`, each made by `row` of its key
    /// (without the slot byte), value and version: one merging pass, each source positioned
    /// once; `row` sees the bytes where they lie in a block or memtable, so only what it
    /// copies is copied. Without `values` (a key-only scan) no value is copied at all, and
    /// `row` gets an empty one.
    pub async fn scan<T>(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        (reverse, limit, values): (bool, usize, bool),
        mut row: impl FnMut(&[u8], &[u8], Version) -> T,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        if limit == 0 || range.is_empty() {
            return Ok(out);
        }
        let view = self.view();
        let tombs = rtomb::relevant(&view.tombs, slot, range, at);
        let range = UkeyRange::new(slot, range);
        let seek = if reverse {
            range.seek_backward()
        } else {
            range.seek_forward()
        };
        let sources = Source::all(view.mems, &view.levels, &self.cache, false);
        let merger = Merger::new(sources, seek, reverse).await?;
        let mut visible = Visible::new(merger, at);
        if !values {
            visible = visible.without_values();
        }
        out.reserve(limit.min(256));
        // Entries come from the position of the range's first bound on, so the only bound to
        // check is the other one (and the slot's end).
        while out.len() < limit && visible.next().await? {
            let Some(e) = visible.entry() else { break };
            if range.is_past(e.ukey, reverse) {
                break;
            }
            debug_assert!(range.contains(e.ukey), "scan entry outside its range");
            if let Some(value) = e.value
                && (tombs.is_empty() || !rtomb::hidden(&tombs, e.ukey, e.seq, at))
            {
                let key = e.ukey.get(1..).unwrap_or_default();
                let version = Version::new(e.seq, e.time_ms);
                if e.blob && values {
                    // Read apart; a key-only scan never comes here (`values` is false).
                    let (ukey, raw) = (e.ukey.to_vec(), value.to_vec());
                    let value = self.resolve(&view.levels, &ukey, e.seq, &raw).await?;
                    out.push(row(ukey.get(1..).unwrap_or_default(), &value, version));
                } else {
                    out.push(row(key, value, version));
                }
            }
        }
        Ok(out)
    }

    /// Up to `limit` keys of `range` in `slot` with a version at or below `at` (key without
    /// its slot byte), each with those versions oldest first, removals included: one merging
    /// pass over every version, like [`Inner::scan`] without the visibility reduction.
    pub async fn scan_versions(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<Version>)>> {
        let mut out: Vec<(Vec<u8>, Vec<Version>)> = Vec::new();
        if limit == 0 || range.is_empty() {
            return Ok(out);
        }
        let view = self.view();
        let tombs = rtomb::relevant(&view.tombs, slot, range, at);
        let range = UkeyRange::new(slot, range);
        let sources = Source::all(view.mems, &view.levels, &self.cache, false);
        let mut merger = Merger::new(sources, range.seek_forward(), false).await?;
        while let Some(e) = merger.current() {
            if range.is_past(e.ukey, false) {
                break;
            }
            if e.seq <= at {
                let key = e.ukey.get(1..).unwrap_or_default();
                let version = Version::new(e.seq, e.time_ms).with_removal(e.value.is_none());
                let full = out.len() >= limit;
                match out.last_mut() {
                    Some((k, versions)) if k.as_slice() == key => versions.push(version),
                    _ if full => break,
                    _ => out.push((key.to_vec(), vec![version])),
                }
            }
            merger.next().await?;
        }
        // Newest first from the merger, and a version a flush copied may come twice.
        let mut ukey = vec![slot];
        for (key, versions) in &mut out {
            versions.sort();
            versions.dedup();
            if !tombs.is_empty() {
                ukey.truncate(1);
                ukey.extend_from_slice(key);
                *versions = rtomb::synthesize(versions, &tombs, &ukey, at);
            }
        }
        Ok(out)
    }

    /// Counters, from one pass over every version (cost: a full read of the store).
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "u64 counts of one store's versions and of the bytes of its entries and files"
    )]
    pub async fn stats(&self) -> Result<Stats> {
        let visible = self.pipeline.visible();
        let view = self.view();
        let sources = Source::all(view.mems.iter().cloned(), &view.levels, &self.cache, true);
        let mut merger = Merger::new(sources, Seek::Start, false).await?;
        let (mut versions, mut live_keys, mut garbage) = (0u64, 0u64, 0u64);
        // Per key (newest first): the first version <= visible decides liveness; every older
        // version, and that one if it is a removal, is what merge would drop.
        let mut key: Vec<u8> = Vec::new();
        let mut has_key = false;
        let mut decided = false;
        while let Some(e) = merger.current() {
            versions += 1;
            if !has_key || key.as_slice() != e.ukey {
                key.clear();
                key.extend_from_slice(e.ukey);
                has_key = true;
                decided = false;
            }
            // Rough on-disk size of an entry: key, value, and its header fields.
            let size = e.payload_len() + 12;
            if e.seq <= visible.seq() {
                if decided {
                    garbage += size;
                } else {
                    decided = true;
                    let hidden = rtomb::hidden(&view.tombs, e.ukey, e.seq, visible.seq());
                    match e.value {
                        Some(_) if !hidden => live_keys += 1,
                        _ => garbage += size,
                    }
                }
            }
            merger.next().await?;
        }
        let mut bytes_on_storage = 0;
        for name in self.storage.list().await? {
            if let Ok(f) = self.storage.open(&name).await {
                bytes_on_storage += f.len().await.unwrap_or(0);
            }
        }
        let (cache_hits, cache_misses) = self.cache.counters();
        Ok(Stats {
            engine: "lsm",
            live_keys,
            versions,
            bytes_on_storage,
            garbage_bytes: garbage.min(bytes_on_storage),
            files: (view.levels.table_count() as u64) + view.levels.blob_files().count() as u64,
            cache_hits,
            cache_misses,
            last_version: visible,
            ..Stats::default()
        })
    }
}
