//! A bounded, least-recently-used cache of full chunks, shared by every file of a storage.
//!
//! Only chunks below a file's in-memory tail are cached: those are full and never change
//! (until a truncation below them, which evicts them), so a cached chunk is never stale.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

type Key = (u64, u64);

/// Chunks by `(file id, chunk index)`, evicting the least recently used past `capacity`.
pub(super) struct ChunkCache {
    capacity: usize,
    tick: u64,
    chunks: HashMap<Key, (Rc<[u8]>, u64)>,
    by_use: BTreeMap<u64, Key>,
}

impl ChunkCache {
    /// A cache of at most `capacity` chunks (0 disables it).
    pub fn new(capacity: usize) -> Self {
        ChunkCache {
            capacity,
            tick: 0,
            chunks: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    /// Chunk `index` of file `id`, if cached; marks it as recently used.
    pub fn get(&mut self, id: u64, index: u64) -> Option<Rc<[u8]>> {
        self.tick += 1;
        let tick = self.tick;
        let (bytes, used) = self.chunks.get_mut(&(id, index))?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, (id, index));
        Some(bytes.clone())
    }

    /// Caches chunk `index` of file `id`.
    pub fn insert(&mut self, id: u64, index: u64, bytes: Rc<[u8]>) {
        if self.capacity == 0 {
            return;
        }
        self.tick += 1;
        if let Some((_, used)) = self.chunks.insert((id, index), (bytes, self.tick)) {
            self.by_use.remove(&used);
        }
        self.by_use.insert(self.tick, (id, index));
        while self.chunks.len() > self.capacity {
            let Some((_, key)) = self.by_use.pop_first() else {
                break;
            };
            self.chunks.remove(&key);
        }
    }

    /// Forgets the chunks of file `id` from `from_index` on.
    pub fn evict(&mut self, id: u64, from_index: u64) {
        let by_use = &mut self.by_use;
        self.chunks.retain(|&(i, index), (_, used)| {
            let keep = i != id || index < from_index;
            if !keep {
                by_use.remove(used);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    #[wasm_bindgen_test]
    fn evicts_least_recently_used() {
        let mut c = ChunkCache::new(2);
        c.insert(1, 0, Rc::from(&b"a"[..]));
        c.insert(1, 1, Rc::from(&b"b"[..]));
        assert!(c.get(1, 0).is_some());
        c.insert(2, 0, Rc::from(&b"c"[..]));
        assert!(c.get(1, 1).is_none());
        assert!(c.get(1, 0).is_some());
        c.evict(1, 0);
        assert!(c.get(1, 0).is_none());
        assert!(c.get(2, 0).is_some());
    }
}
