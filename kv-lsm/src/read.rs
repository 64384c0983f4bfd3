//! Reads: point lookups across memtables and levels, version listings, scans through the
//! merging iterator, and the counters of `stats`.
//!
//! Every read takes a [`View`] (an `Arc` of each memtable and of the level set) and releases
//! the state lock at once, so flushes and compactions swap state freely while it runs; the
//! tables it holds are not deleted before it drops them.

use std::sync::Arc;

use kv_api::{KeyRange, Result, Slot, Stats, Storage, StorageFile, Version};

use crate::engine::Inner;
use crate::iter::{LevelCursor, Merger, Source, TableCursor, Visible};
use crate::key::{Entry, Seek, UkeyRange};
use crate::levels::{LevelSet, NUM_LEVELS};
use crate::memtable::Memtable;
use crate::sstable::{Table, bloom};

/// A consistent set of sources for one read.
pub(crate) struct View<S: Storage> {
    /// Memtables, newest first.
    pub mems: Vec<Arc<Memtable>>,
    /// Tables.
    pub levels: Arc<LevelSet<S>>,
}

impl<S: Storage> View<S> {
    /// Tables that may hold `ukey`, newest first.
    fn tables_for<'a>(&'a self, ukey: &'a [u8]) -> impl Iterator<Item = &'a Arc<Table<S>>> + 'a {
        let l0 = self.levels.level(0).iter().filter(move |t| t.covers(ukey));
        l0.chain((1..NUM_LEVELS).filter_map(move |l| self.levels.find(l, ukey)))
    }

    /// One merge source per memtable, per level-0 table and per deeper level.
    pub fn sources(&self, cache: &Arc<crate::cache::BlockCache>, fill: bool) -> Vec<Source<S>> {
        let mut sources: Vec<Source<S>> =
            self.mems.iter().map(|m| Source::mem(m.clone())).collect();
        for t in self.levels.level(0) {
            sources.push(Source::Table(TableCursor::new(
                t.clone(),
                cache.clone(),
                fill,
            )));
        }
        for level in 1..NUM_LEVELS {
            let tables = self.levels.level(level);
            if !tables.is_empty() {
                sources.push(Source::Level(LevelCursor::new(
                    tables.to_vec(),
                    cache.clone(),
                    fill,
                )));
            }
        }
        sources
    }
}

impl<S: Storage> Inner<S> {
    /// A view of the current state.
    pub fn view(&self) -> View<S> {
        let st = self.read_state();
        let mut mems = Vec::with_capacity(1 + st.immutables.len());
        mems.push(st.active.clone());
        mems.extend(st.immutables.iter().rev().cloned());
        View {
            mems,
            levels: st.levels.clone(),
        }
    }

    /// Never read past what is visible: entries above it are commits in flight.
    pub fn clamp(&self, at: u64) -> u64 {
        at.min(self.pipeline.visible().seq())
    }

    /// The newest version of `ukey` with `seq <= at`: the first source (newest first) holding
    /// one decides.
    pub async fn newest(&self, ukey: &[u8], at: u64) -> Result<Option<Entry>> {
        let view = self.view();
        for m in &view.mems {
            if let Some(e) = m.get(ukey, at) {
                return Ok(Some(e));
            }
        }
        let hash = bloom::hash(ukey);
        for t in view.tables_for(ukey) {
            if let Some(e) = t.find(ukey, hash, Seek::At(ukey, at), &self.cache).await? {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Version `seq` of `ukey`, wherever it is.
    pub async fn exact(&self, ukey: &[u8], seq: u64) -> Result<Option<Entry>> {
        let view = self.view();
        for m in &view.mems {
            if let Some(e) = m.get_exact(ukey, seq) {
                return Ok(Some(e));
            }
        }
        let hash = bloom::hash(ukey);
        for t in view.tables_for(ukey) {
            if t.meta.min_seq > seq || t.meta.max_seq < seq {
                continue;
            }
            if let Some(e) = t.find(ukey, hash, Seek::At(ukey, seq), &self.cache).await?
                && e.seq == seq
            {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Versions of `ukey` with `seq <= at`, newest first; with `until_value`, stops after the
    /// source holding the newest value.
    pub async fn versions_desc(
        &self,
        ukey: &[u8],
        at: u64,
        until_value: bool,
    ) -> Result<Vec<Entry>> {
        let view = self.view();
        let mut out = Vec::new();
        let done = |out: &Vec<Entry>| until_value && out.iter().any(|e| e.value.is_some());
        for m in &view.mems {
            m.versions(ukey, at, &mut out);
            if done(&out) {
                return Ok(out);
            }
        }
        let hash = bloom::hash(ukey);
        for t in view.tables_for(ukey) {
            let reader = t.reader().await?;
            if !reader.may_contain(hash) {
                continue;
            }
            let mut cursor = TableCursor::new(t.clone(), self.cache.clone(), true);
            cursor.seek(Seek::At(ukey, at)).await?;
            while let Some(e) = cursor.next().await? {
                if e.ukey != ukey {
                    break;
                }
                out.push(e);
            }
            if done(&out) {
                return Ok(out);
            }
        }
        Ok(out)
    }

    /// Up to `limit` live entries of `range` in `slot` at `at`.
    pub async fn scan(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<kv_api::Entry>> {
        let mut out = Vec::new();
        if limit == 0 || range.is_empty() {
            return Ok(out);
        }
        let range = UkeyRange::new(slot, range);
        let view = self.view();
        let seek = if reverse {
            range.seek_backward()
        } else {
            range.seek_forward()
        };
        let merger = Merger::new(view.sources(&self.cache, true), seek, reverse).await?;
        let mut visible = Visible::new(merger, at);
        while out.len() < limit {
            let Some(e) = visible.next().await? else {
                break;
            };
            if range.is_past(&e.ukey, reverse) {
                break;
            }
            if !range.contains(&e.ukey) {
                continue;
            }
            if let Some(value) = e.value {
                out.push(kv_api::Entry {
                    key: e.ukey.get(1..).unwrap_or_default().to_vec(),
                    value,
                    version: Version::new(e.seq, e.time_ms),
                });
            }
        }
        Ok(out)
    }

    /// Counters, from one pass over every version (cost: a full read of the store).
    pub async fn stats(&self) -> Result<Stats> {
        let visible = self.pipeline.visible();
        let view = self.view();
        let mut merger = Merger::new(view.sources(&self.cache, false), Seek::Start, false).await?;
        let (mut versions, mut live_keys, mut garbage) = (0u64, 0u64, 0u64);
        // Per key (newest first): the first version <= visible decides liveness; every older
        // version, and that one if it is a removal, is what merge would drop.
        let mut key: Option<Vec<u8>> = None;
        let mut decided = false;
        while let Some(e) = merger.next().await? {
            versions += 1;
            if key.as_deref() != Some(e.ukey.as_slice()) {
                key = Some(e.ukey.clone());
                decided = false;
            }
            // Rough on-disk size of an entry: key, value, and its header fields.
            let size = e.payload_len() + 12;
            if e.seq > visible.seq() {
                continue;
            }
            if decided {
                garbage += size;
            } else {
                decided = true;
                match e.value {
                    Some(_) => live_keys += 1,
                    None => garbage += size,
                }
            }
        }
        let mut bytes_on_storage = 0;
        for name in self.storage.list().await? {
            if let Ok(f) = self.storage.open(&name).await {
                bytes_on_storage += f.len().await.unwrap_or(0);
            }
        }
        let deepest = (0..NUM_LEVELS)
            .rev()
            .find(|l| !view.levels.level(*l).is_empty())
            .unwrap_or(0);
        let (cache_hits, cache_misses) = self.cache.counters();
        Ok(Stats {
            engine: "lsm",
            live_keys,
            versions,
            bytes_on_storage,
            garbage_bytes: garbage.min(bytes_on_storage),
            files: view.levels.table_count() as u64,
            levels: (0..=deepest)
                .map(|l| view.levels.level(l).len() as u64)
                .collect(),
            cache_hits,
            cache_misses,
            last_version: visible,
        })
    }
}
