//! The block cache: decoded blocks keyed by `(table id, block offset)`, least recently used
//! first out, bounded by bytes (`Options::cache_size`). Table ids are never reused, so blocks of
//! deleted tables simply age out.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::sstable::block::Block;

type Key = (u64, u64);

#[derive(Default)]
struct Lru {
    map: HashMap<Key, (Arc<Block>, usize, u64)>,
    order: BTreeMap<u64, Key>,
    used: usize,
    tick: u64,
}

/// A byte-bounded LRU cache of decoded blocks, with hit and miss counters.
pub(crate) struct BlockCache {
    capacity: usize,
    lru: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BlockCache {
    /// A cache holding up to `capacity` bytes (0 disables it).
    pub fn new(capacity: usize) -> Self {
        BlockCache {
            capacity,
            lru: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The block at `offset` of table `table`, if cached. Counts a hit or a miss.
    pub fn get(&self, table: u64, offset: u64) -> Option<Arc<Block>> {
        let mut lru = self.lock();
        let lru = &mut *lru;
        lru.tick += 1;
        let tick = lru.tick;
        match lru.map.get_mut(&(table, offset)) {
            Some((block, _, last)) => {
                // Promote only blocks that drifted into the older half: hot blocks are hit
                // often, and re-linking on every hit would cost two tree updates per read.
                if tick - *last > (lru.order.len() as u64) / 2 {
                    lru.order.remove(last);
                    *last = tick;
                    lru.order.insert(tick, (table, offset));
                }
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(block.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The block at `offset` of table `table`, if cached, without counting or promoting it
    /// (compactions: their reads say nothing about what readers need).
    pub fn peek(&self, table: u64, offset: u64) -> Option<Arc<Block>> {
        self.lock()
            .map
            .get(&(table, offset))
            .map(|(b, _, _)| b.clone())
    }

    /// Caches a block, evicting the least recently used ones past the capacity.
    pub fn insert(&self, table: u64, offset: u64, block: Arc<Block>) {
        let charge = block.charge();
        if charge > self.capacity {
            return;
        }
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        if let Some((_, old_charge, old_tick)) =
            lru.map.insert((table, offset), (block, charge, tick))
        {
            lru.order.remove(&old_tick);
            lru.used -= old_charge;
        }
        lru.order.insert(tick, (table, offset));
        lru.used += charge;
        while lru.used > self.capacity {
            let Some((_, key)) = lru.order.pop_first() else {
                break;
            };
            if let Some((_, c, _)) = lru.map.remove(&key) {
                lru.used -= c;
            }
        }
    }

    /// (hits, misses) so far.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Bytes held.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.lock().used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sstable::block::BlockBuilder;

    fn block(n: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(16);
        for i in 0..n {
            b.add(format!("k{i:04}").as_bytes(), 1, 0, Some(&[0u8; 100]));
        }
        Arc::new(Block::load(b.finish(), "t", 0).expect("block"))
    }

    #[test]
    fn bounded_lru() {
        let one = block(10);
        let cap = one.charge() * 3;
        let cache = BlockCache::new(cap);
        for off in 0..3 {
            cache.insert(1, off, block(10));
        }
        assert!(cache.get(1, 0).is_some()); // 0 is now the most recent
        cache.insert(1, 3, block(10)); // evicts 1
        assert!(cache.get(1, 1).is_none());
        assert!(cache.get(1, 0).is_some());
        assert!(cache.used() <= cap);
        assert_eq!(cache.counters(), (2, 1));
        let off = BlockCache::new(0);
        off.insert(1, 0, one);
        assert!(off.get(1, 0).is_none());
    }
}
