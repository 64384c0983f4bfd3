//! The set of live tables per level: an immutable value, swapped whole by flushes and
//! compactions, so a reader holding an `Arc` of it keeps a consistent view (and its files).
//!
//! Invariants the reads rely on:
//! * Level 0 holds flushed memtables, newest first; their key ranges may overlap.
//! * Levels 1.. hold tables sorted by key with disjoint user-key ranges: all versions of a key
//!   are in one table per level (compaction outputs split only between user keys).
//! * For any key, versions in a shallower level (and in memtables) are newer than versions in a
//!   deeper one, so the first source holding a version `<= at` has the newest such version.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kv_api::Storage;

use crate::blob::BlobFile;
use crate::sstable::Table;

/// Levels, level 0 included.
pub(crate) const NUM_LEVELS: usize = 7;

/// Tables per level, and the live blob files their references point into (swapped together,
/// so a view that holds a table holds the blob files it may refer to). See the module docs.
pub(crate) struct LevelSet<S: Storage> {
    levels: Vec<Vec<Arc<Table<S>>>>,
    blobs: BTreeMap<u64, Arc<BlobFile<S>>>,
}

impl<S: Storage> Clone for LevelSet<S> {
    fn clone(&self) -> Self {
        LevelSet {
            levels: self.levels.clone(),
            blobs: self.blobs.clone(),
        }
    }
}

impl<S: Storage> Default for LevelSet<S> {
    fn default() -> Self {
        LevelSet {
            levels: vec![Vec::new(); NUM_LEVELS],
            blobs: BTreeMap::new(),
        }
    }
}

impl<S: Storage> LevelSet<S> {
    /// The tables of `level`, or of the last level for a level past it.
    #[expect(
        clippy::indexing_slicing,
        reason = "`levels` always holds NUM_LEVELS lists (made by `default`, never resized), \
                  and the index is clamped below NUM_LEVELS"
    )]
    fn level_mut(&mut self, level: usize) -> &mut Vec<Arc<Table<S>>> {
        &mut self.levels[level.min(NUM_LEVELS - 1)]
    }

    /// A set from `(level, table)` pairs in any order (levels past the last are clamped).
    pub fn from_tables(tables: impl IntoIterator<Item = (usize, Arc<Table<S>>)>) -> Self {
        let mut set = LevelSet::default();
        for (level, t) in tables {
            set.level_mut(level).push(t);
        }
        set.sort();
        set
    }

    fn sort(&mut self) {
        for (level, tables) in self.levels.iter_mut().enumerate() {
            if level == 0 {
                tables.sort_by_key(|t| std::cmp::Reverse(t.meta.id));
            } else {
                tables.sort_by(|a, b| a.meta.smallest.cmp(&b.meta.smallest));
            }
        }
    }

    /// Tables of `level` (level 0: newest first; others: by key).
    pub fn level(&self, level: usize) -> &[Arc<Table<S>>] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// Every table with its level.
    pub fn all(&self) -> impl Iterator<Item = (usize, &Arc<Table<S>>)> {
        self.levels
            .iter()
            .enumerate()
            .flat_map(|(l, ts)| ts.iter().map(move |t| (l, t)))
    }

    /// Number of tables.
    pub fn table_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Bytes of the tables of `level`, as the manifest records them; `u64::MAX` if their sum
    /// is larger. Sizes are only checked against the files at a table's first read, and this
    /// sum scores levels for compaction before that: a damaged size must not overflow it.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.level(level)
            .iter()
            .fold(0u64, |sum, t| sum.saturating_add(t.meta.size))
    }

    /// The table of `level` (≥ 1) whose range covers `ukey`.
    pub fn find(&self, level: usize, ukey: &[u8]) -> Option<&Arc<Table<S>>> {
        let tables = self.level(level);
        let i = tables.partition_point(|t| t.meta.largest.0.as_slice() < ukey);
        tables.get(i).filter(|t| t.covers(ukey))
    }

    /// Tables of `level` whose user-key range intersects `[lo, hi]`.
    pub fn overlapping(&self, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<Table<S>>> {
        self.level(level)
            .iter()
            .filter(|t| t.meta.smallest.0.as_slice() <= hi && lo <= t.meta.largest.0.as_slice())
            .cloned()
            .collect()
    }

    /// A new set with `flushed` as the newest level-0 table, and `blob` (the blob file its
    /// references point into, if any).
    pub fn with_flushed(&self, flushed: Arc<Table<S>>, blob: Option<Arc<BlobFile<S>>>) -> Self {
        let mut set = self.clone();
        set.level_mut(0).insert(0, flushed);
        set.blobs.extend(blob.map(|b| (b.meta.id, b)));
        set
    }

    /// The set with `blobs` added (an open).
    pub fn with_blob_files(mut self, blobs: impl IntoIterator<Item = Arc<BlobFile<S>>>) -> Self {
        self.blobs.extend(blobs.into_iter().map(|b| (b.meta.id, b)));
        self
    }

    /// Live blob file `id`.
    pub fn blob(&self, id: u64) -> Option<&Arc<BlobFile<S>>> {
        self.blobs.get(&id)
    }

    /// Every live blob file, by id.
    pub fn blob_files(&self) -> impl Iterator<Item = &Arc<BlobFile<S>>> {
        self.blobs.values()
    }

    /// A new set without the blob files `removed` and with `added` (a merge).
    pub fn with_blob_change(
        mut self,
        removed: &HashSet<u64>,
        added: Vec<Arc<BlobFile<S>>>,
    ) -> Self {
        self.blobs.retain(|id, _| !removed.contains(id));
        self.blobs.extend(added.into_iter().map(|b| (b.meta.id, b)));
        self
    }

    /// A new set without the tables `removed` and with `added` in `level`.
    pub fn with_compaction(
        &self,
        removed: &HashSet<u64>,
        level: usize,
        added: Vec<Arc<Table<S>>>,
    ) -> Self {
        let mut set = self.clone();
        for tables in &mut set.levels {
            tables.retain(|t| !removed.contains(&t.meta.id));
        }
        set.level_mut(level).extend(added);
        set.sort();
        set
    }
}

#[cfg(test)]
mod tests {
    use kv_backends::MemoryStorage;
    use kv_engine_kit::header::StoreId;

    use super::*;
    use crate::sstable::TableMeta;

    fn table(id: u64, size: u64, key: &[u8]) -> Arc<Table<MemoryStorage>> {
        let meta = TableMeta {
            id,
            size,
            entries: 1,
            smallest: (key.to_vec(), 1),
            largest: (key.to_vec(), 1),
            min_seq: 1,
            max_seq: 1,
        };
        Arc::new(Table::new(
            meta,
            MemoryStorage::new(),
            StoreId::from_bytes([0; 16]),
        ))
    }

    #[test]
    fn level_bytes_of_damaged_sizes_saturate() {
        // Found by the dir_image fuzz target: a MANIFEST whose table sizes sum past u64::MAX
        // overflowed the compaction score at open, before any table was read.
        let set = LevelSet::from_tables([
            (1, table(1, 100, b"a")),
            (1, table(2, 50, b"b")),
            (2, table(3, u64::MAX - 10, b"a")),
            (2, table(4, 11, b"b")),
            (2, table(5, u64::MAX, b"c")),
        ]);
        assert_eq!(set.level_bytes(1), 150);
        assert_eq!(set.level_bytes(2), u64::MAX);
        assert_eq!(set.level_bytes(3), 0);
    }
}
