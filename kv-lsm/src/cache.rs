//! The block cache: decoded blocks keyed by `(table id, block offset)`, bounded by bytes
//! (`Options::cache_size`). A thin layer over the shared [`kv_engine_kit::cache::Cache`] (sharded,
//! CLOCK eviction). Table ids are never reused, so blocks of deleted tables simply age out.

use std::sync::Arc;

use kv_engine_kit::cache::Cache;

use crate::sstable::block::Block;

/// A byte-bounded cache of decoded blocks, with hit and miss counters.
pub(crate) struct BlockCache {
    cache: Cache<(u64, u64), Arc<Block>>,
}

impl BlockCache {
    /// A cache holding up to `capacity` bytes (0 disables it).
    pub fn new(capacity: usize) -> Self {
        BlockCache {
            cache: Cache::new(capacity),
        }
    }

    /// The block at `offset` of table `table`, if cached. Counts a hit or a miss.
    pub fn get(&self, table: u64, offset: u64) -> Option<Arc<Block>> {
        self.cache.get(&(table, offset))
    }

    /// [`BlockCache::get`] of the blocks at `offsets` of table `table`, in their order: the
    /// lookups grouped by shard, each shard locked once, and each block found touched where
    /// its search starts before any is handed out (see [`Block::touch`] and
    /// [`kv_engine_kit::cache::Cache::get_many_with`]).
    pub fn get_many(&self, table: u64, offsets: &[u64]) -> Vec<Option<Arc<Block>>> {
        let keys: Vec<(u64, u64)> = offsets.iter().map(|&o| (table, o)).collect();
        let mut out = vec![None; keys.len()];
        self.cache.get_many_with(
            &keys,
            |_, b| b.touch(),
            |i, b| {
                if let (Some(o), Some(b)) = (out.get_mut(i), b) {
                    *o = Some(b.clone());
                }
            },
        );
        out
    }

    /// The block at `offset` of table `table`, if cached, without counting or promoting it
    /// (compactions: their reads say nothing about what readers need).
    pub fn peek(&self, table: u64, offset: u64) -> Option<Arc<Block>> {
        self.cache.peek(&(table, offset))
    }

    /// Caches a block, evicting blocks not read recently past the capacity.
    pub fn insert(&self, table: u64, offset: u64, block: Arc<Block>) {
        let charge = block.charge();
        self.cache.insert((table, offset), block, charge);
    }

    /// (hits, misses) so far.
    pub fn counters(&self) -> (u64, u64) {
        self.cache.counters()
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.cache.used()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sstable::block::BlockBuilder;

    fn block(n: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(16);
        for i in 0..n {
            b.add(format!("k{i:04}").as_bytes(), 1, 0, Some(&[0u8; 100]))
                .expect("add");
        }
        Arc::new(Block::load(b.finish(), "t", 0).expect("block"))
    }

    #[test]
    fn bounded_and_recently_used_stay() {
        let one = block(10);
        let cap = one.charge() * 3;
        let cache = BlockCache::new(cap);
        for off in 0..3 {
            cache.insert(1, off, block(10));
        }
        assert!(cache.get(1, 0).is_some()); // 0 was read since it was cached
        cache.insert(1, 3, block(10)); // evicts 1, the first not read since
        assert!(cache.get(1, 1).is_none());
        assert!(cache.get(1, 0).is_some());
        assert!(cache.peek(1, 3).is_some());
        assert!(cache.used() <= cap);
        assert_eq!(cache.counters(), (2, 1));
        let off = BlockCache::new(0);
        off.insert(1, 0, one);
        assert!(off.get(1, 0).is_none());
    }
}
