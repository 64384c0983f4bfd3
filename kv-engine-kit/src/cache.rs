//! The read cache of the engines (LSM data blocks, Bitcask segment pages): bounded by bytes,
//! split into shards by key hash so that concurrent readers rarely meet on one lock, with
//! CLOCK eviction per shard.
//!
//! CLOCK approximates LRU at the cost of one bit per entry: a hit only sets the entry's
//! `referenced` bit (no list to re-link), and eviction sweeps a hand over the entries, clearing
//! set bits and evicting the first entry found without one. A new entry starts unreferenced,
//! so a one-off read (a scan passing by) is evicted before entries that were read again.
//!
//! Not the `quick_cache` crate (0.6, measured against this one): its lookups hand values out
//! by clone only (a Bitcask page would take a reference count per hit, where
//! [`Cache::get_with`] lends it), and it has neither batched lookups ([`Cache::get_many_with`])
//! nor a per-shard admission check ([`Cache::admit`]). A hit of a `(u32, u64)` key also costs
//! more: 146 instructions to this cache's 122 (callgrind, both on rustc-hash). Its inserts into
//! a full cache ran faster in wall time (about 250 ns to 500 ns), a cost paid on misses only,
//! next to a read from storage.
//!
//! ```
//! use kv_engine_kit::cache::Cache;
//! let cache: Cache<(u32, u64), Vec<u8>> = Cache::new(1 << 20);
//! cache.insert((1, 0), vec![7; 100], 100);
//! assert_eq!(cache.get(&(1, 0)).map(|v| v.len()), Some(100));
//! assert!(cache.get(&(1, 1)).is_none());
//! assert_eq!(cache.counters(), (1, 1));
//! ```

use parking_lot::{Mutex, MutexGuard};
use rustc_hash::FxBuildHasher;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// Most shards a cache is split into: at most `1 << SHARD_BITS`.
const MAX_SHARDS: usize = 16;
/// Bits of [`shard_bits`]' result: enough for [`MAX_SHARDS`].
const SHARD_BITS: u32 = 4;
const _: () = assert!(MAX_SHARDS <= 1 << SHARD_BITS);
/// Least capacity per shard: small caches get fewer shards, so that one shard can still hold
/// a useful number of entries (and a tiny cache behaves like one CLOCK).
const MIN_SHARD_BYTES: usize = 1 << 20;
/// Lookups of [`Cache::get_many_with`] in flight at a time.
const BATCH: usize = 16;

/// A byte-bounded, sharded cache with CLOCK eviction and hit/miss counters. See the module
/// docs. [`Cache::get`] hands values out by clone (make them cheap to clone: `Arc`);
/// [`Cache::get_with`] lends them, for values that are not `Clone` (`Box<[u8]>`).
pub struct Cache<K, V> {
    shards: Box<[LockedShard<K, V>]>,
    capacity: usize,
}

type LockedShard<K, V> = Padded<Mutex<Shard<K, V>>>;

/// A shard on cache lines of its own: two readers locking neighbouring shards must not
/// contend for one line.
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

struct Slot<V> {
    value: V,
    charge: usize,
    /// Position in the ring.
    pos: usize,
}

/// A position of the clock.
struct Hand<K> {
    /// `None` where an entry left.
    key: Option<K>,
    /// Read since the hand last passed.
    referenced: bool,
}

struct Shard<K, V> {
    /// The entries, in the map itself: a hit is one probe. Keys are the engines' own ids and
    /// offsets, never user input: no need for a keyed hash.
    map: HashMap<K, Slot<V>, FxBuildHasher>,
    /// The clock: every key once, at its slot's `pos`. Dense and small (a key and a bit per
    /// entry), so the hand sweeps it without a cache miss per step.
    ring: Vec<Hand<K>>,
    /// Empty positions of the ring, reused before it grows.
    free: Vec<usize>,
    hand: usize,
    used: usize,
    capacity: usize,
    hits: u64,
    misses: u64,
    /// Inserts [`Cache::admit`] turned down since it last said yes past the capacity.
    refused: u32,
}

/// Marks the entry at `pos` of the clock as read (written only if it was not, so that hot
/// entries do not dirty their cache line on every hit).
fn mark<K>(ring: &mut [Hand<K>], pos: usize) {
    if let Some(h) = ring.get_mut(pos)
        && !h.referenced
    {
        h.referenced = true;
    }
}

impl<K: Hash + Eq + Clone, V> Shard<K, V> {
    fn new(capacity: usize) -> Self {
        Shard {
            map: HashMap::default(),
            ring: Vec::new(),
            free: Vec::new(),
            hand: 0,
            used: 0,
            capacity,
            hits: 0,
            misses: 0,
            refused: 0,
        }
    }

    /// The slot of `key`, marked as read; counts a hit or a miss.
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "u64 counts of lookups: 2^64 of them would take centuries"
    )]
    fn hit(&mut self, key: &K) -> Option<&Slot<V>> {
        match self.map.get(key) {
            Some(slot) => {
                mark(&mut self.ring, slot.pos);
                self.hits += 1;
                Some(slot)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    fn remove(&mut self, key: &K) -> Option<Slot<V>> {
        let slot = self.map.remove(key)?;
        if let Some(h) = self.ring.get_mut(slot.pos) {
            h.key = None;
            h.referenced = false;
            self.free.push(slot.pos);
        }
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`used` is the sum of the charges of the entries in `map`, this one's too"
        )]
        {
            self.used -= slot.charge;
        }
        Some(slot)
    }

    /// Evicts one entry (CLOCK sweep); false if the shard is empty. Runs at most two turns of
    /// the hand: the first clears every referenced bit, so the second finds a victim.
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "a Vec holds at most isize::MAX entries: `2 * n` and `hand + 1` (hand < n) fit"
    )]
    fn evict_one(&mut self) -> bool {
        let n = self.ring.len();
        for _ in 0..2 * n {
            if self.hand >= n {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            let Some(h) = self.ring.get_mut(i) else {
                continue;
            };
            if h.referenced {
                h.referenced = false;
            } else if let Some(key) = h.key.take() {
                // Dropping the evicted value here, under the lock, is fine: it is at most
                // one value per insert, and most are a free or a refcount decrement.
                return self.remove(&key).is_some();
            }
        }
        false
    }

    fn insert(&mut self, key: K, value: V, charge: usize) {
        self.remove(&key);
        // Never saturates: `used` and `charge` are at most the capacity of the shard, which is
        // below 2 MiB alone and at most usize::MAX / 2 with others.
        while self.used.saturating_add(charge) > self.capacity {
            if !self.evict_one() {
                return;
            }
        }
        let hand = Hand {
            key: Some(key.clone()),
            referenced: false,
        };
        let pos = match self.free.pop() {
            Some(pos) => {
                if let Some(h) = self.ring.get_mut(pos) {
                    *h = hand;
                }
                pos
            }
            None => {
                let pos = self.ring.len();
                self.ring.push(hand);
                pos
            }
        };
        self.map.insert(key, Slot { value, charge, pos });
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "the loop above made `used + charge <= capacity`"
        )]
        {
            self.used += charge;
        }
    }
}

impl<K: Hash + Eq + Clone, V> Cache<K, V> {
    /// A cache holding up to `capacity` bytes of charged entries (0 disables it).
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "`shards` is a power of two from 1 to MAX_SHARDS: no overflow, no division by 0"
    )]
    pub fn new(capacity: usize) -> Self {
        // A power of two, so that the shard is a mask of the hash.
        let mut shards = 1;
        while shards < MAX_SHARDS && capacity / (shards * 2) >= MIN_SHARD_BYTES {
            shards *= 2;
        }
        let per_shard = capacity / shards;
        Cache {
            shards: (0..shards)
                .map(|_| Padded(Mutex::new(Shard::new(per_shard))))
                .collect(),
            capacity,
        }
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The shard of `key`, locked. Always `Some` (the index is masked by `len - 1` of a
    /// non-empty power-of-two slice); callers treat `None` as an empty, disabled cache.
    fn shard(&self, key: &K) -> Option<MutexGuard<'_, Shard<K, V>>> {
        let i = shard_bits(FxBuildHasher.hash_one(key)) & self.shards.len().saturating_sub(1);
        // A panic while a shard is locked leaves it consistent between statements.
        self.shards.get(i).map(|m| m.lock())
    }

    /// Calls `f` with the value of `key`, if cached, under the shard's lock; marks it recently
    /// used and counts a hit (or a miss). Unlike [`Cache::get`] it does not clone the value:
    /// for an `Arc`, no reference count to update, so a hit touches only the bytes `f` reads.
    /// Keep `f` short: other readers of the shard wait for it.
    pub fn get_with<R>(&self, key: &K, f: impl FnOnce(&V) -> R) -> Option<R> {
        let mut shard = self.shard(key)?;
        shard.hit(key).map(|slot| f(&slot.value))
    }

    /// Caches `value` under `key`, charged `charge` bytes, replacing any value of that key and
    /// evicting entries past the capacity. A value larger than a shard is not cached.
    pub fn insert(&self, key: K, value: V, charge: usize) {
        if let Some(mut shard) = self.shard(&key)
            && charge <= shard.capacity
        {
            shard.insert(key, value, charge);
        }
    }

    /// [`Cache::get_with`] for many keys: counts a hit or a miss for each, then calls
    /// `touch(i, value)` for every hit and `f(i, value)` for every key (`None`: a miss), in no
    /// particular order. Keys are grouped by shard, each shard locked once, and its lookups
    /// run back to back before any call, then its `touch` calls before its `f` calls: reads
    /// that miss the CPU cache (hash buckets, then whatever `touch` reads) overlap instead of
    /// waiting for each other. `touch` should only read (a byte of each cache line that `f`
    /// will need); `f` does the work.
    pub fn get_many_with(
        &self,
        keys: &[K],
        mut touch: impl FnMut(usize, &V),
        mut f: impl FnMut(usize, Option<&V>),
    ) {
        let mask = self.shards.len().saturating_sub(1);
        let mut order: Vec<(usize, usize)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (shard_bits(FxBuildHasher.hash_one(k)) & mask, i))
            .collect();
        order.sort_unstable();
        let mut rest = order.as_slice();
        while let Some(&(s, _)) = rest.first() {
            let n = rest.iter().take_while(|(t, _)| *t == s).count();
            let (group, after) = rest.split_at(n);
            rest = after;
            let Some(m) = self.shards.get(s) else {
                continue;
            };
            let mut guard = m.lock();
            let Shard {
                map,
                ring,
                hits,
                misses,
                ..
            } = &mut *guard;
            // In chunks on the stack: enough reads in flight, no allocation.
            for chunk in group.chunks(BATCH) {
                let mut found: [Option<&V>; BATCH] = [None; BATCH];
                for (&(_, i), v) in chunk.iter().zip(&mut found) {
                    let slot = keys.get(i).and_then(|k| map.get(k));
                    #[expect(
                        clippy::arithmetic_side_effects,
                        reason = "u64 counts of lookups: 2^64 of them would take centuries"
                    )]
                    match slot {
                        Some(sl) => {
                            *hits += 1;
                            mark(ring, sl.pos);
                            *v = Some(&sl.value);
                        }
                        None => *misses += 1,
                    }
                }
                for (&(_, i), v) in chunk.iter().zip(&found) {
                    if let Some(v) = v {
                        touch(i, v);
                    }
                }
                for (&(_, i), v) in chunk.iter().zip(found) {
                    f(i, v);
                }
            }
        }
    }

    /// Whether a value of `charge` bytes under `key`, just missed, is worth inserting: always
    /// while its shard has room; once it is full, one time in `one_in`. A cache smaller than
    /// the data read at random would evict on every miss (the cost of an insert, plus the
    /// evicted value's drop) for no better hit rate: which entries are in matters, not how
    /// often they change. Entries read again and again still get in after a few misses.
    pub fn admit(&self, key: &K, charge: usize, one_in: u32) -> bool {
        let Some(mut shard) = self.shard(key) else {
            return false;
        };
        if charge > shard.capacity {
            return false;
        }
        if shard.used.saturating_add(charge) <= shard.capacity {
            return true;
        }
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`refused` is reset once it reaches `one_in`, a u32: it stays below u32::MAX"
        )]
        {
            shard.refused += 1;
        }
        if shard.refused >= one_in {
            shard.refused = 0;
            return true;
        }
        false
    }

    /// Removes `key`, if cached.
    pub fn remove(&self, key: &K) {
        if let Some(mut shard) = self.shard(key) {
            shard.remove(key);
        }
    }

    /// Removes every entry whose key fails `keep` (all the entries of a file that was removed
    /// or cut short, say). Visits every entry: for rare bulk removals, not per read.
    pub fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let gone: Vec<K> = shard.map.keys().filter(|k| !keep(k)).cloned().collect();
            for key in &gone {
                shard.remove(key);
            }
        }
    }

    /// (hits, misses) counted by [`Cache::get`] and [`Cache::get_with`] so far.
    pub fn counters(&self) -> (u64, u64) {
        self.shards.iter().fold((0, 0), |(h, m), s| {
            let s = s.lock();
            (h.saturating_add(s.hits), m.saturating_add(s.misses))
        })
    }

    /// Bytes charged by the entries held.
    pub fn used(&self) -> usize {
        self.shards.iter().map(|s| s.lock().used).sum()
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Cache<K, V> {
    /// The value of `key`, if cached: marks it recently used and counts a hit (or a miss).
    pub fn get(&self, key: &K) -> Option<V> {
        let mut shard = self.shard(key)?;
        shard.hit(key).map(|slot| slot.value.clone())
    }

    /// The value of `key`, if cached, without counting or marking it (reads that say nothing
    /// about what readers need, like compactions).
    pub fn peek(&self, key: &K) -> Option<V> {
        self.shard(key)?.map.get(key).map(|s| s.value.clone())
    }
}

impl<K, V> std::fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .finish()
    }
}

/// [`SHARD_BITS`] bits of a key's hash `h` to pick its shard from, independent of the bits the
/// shard's map uses (buckets: the low bits; tags: the top 7). rustc-hash's Fx hash is tuned
/// for exactly those: its well-mixed bits are the low ones and a few at the top, while the
/// middle ones depend on few bits of the key (with 4 KiB-aligned block offsets, bits 32-35
/// would put 40% more keys than average in some shards and 80% fewer in others). One
/// multiply spreads every bit of `h` into the top bits of the product: those pick the shard.
fn shard_bits(h: u64) -> usize {
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SHARD_BITS)) as usize
}

/// A fast, unkeyed 64-bit hash of `bytes` (Fx over 8-byte words, then murmur3's finalizer, so
/// every bit of the result depends on every input bit). For in-memory tables whose keys an
/// attacker does not choose to collide (the newest-version table takes buckets from its top
/// bits and fingerprints from its low ones); never persisted.
///
/// Not rustc-hash's `FxHasher`, although that is faster on 64-bit targets: its state is a
/// `usize`, so on wasm32 (the browser build) its hashes have 32 bits, and the top bits the
/// newest-version table indexes by would all be zero.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let add = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(SEED);
    let mut h = 0;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        h = add(h, u64::from_le_bytes(b));
    }
    for &b in words.remainder() {
        h = add(h, u64::from(b));
    }
    // murmur3's fmix64.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn clock_evicts_unreferenced_first() {
        // Small: one shard, so the order is exactly CLOCK's.
        let cache: Cache<u64, Arc<u64>> = Cache::new(300);
        assert_eq!(cache.shards.len(), 1);
        for k in 0..3 {
            cache.insert(k, Arc::new(k), 100);
        }
        assert!(cache.get(&0).is_some()); // 0 is referenced now
        cache.insert(3, Arc::new(3), 100); // evicts 1, the first unreferenced
        assert!(cache.peek(&1).is_none());
        assert!(cache.peek(&0).is_some() && cache.peek(&2).is_some());
        assert_eq!(cache.used(), 300);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.counters(), (1, 0)); // peek counts nothing
        assert!(cache.get(&1).is_none());
        assert_eq!(cache.counters(), (1, 1));
        assert_eq!(cache.get_with(&3, |v| **v + 1), Some(4));
        assert_eq!(cache.get_with(&1, |v| **v), None);
        assert_eq!(cache.counters(), (2, 2));
        // Replacing a key re-charges it.
        cache.insert(2, Arc::new(20), 50);
        assert_eq!(cache.used(), 250);
        assert_eq!(cache.peek(&2).as_deref(), Some(&20));
        cache.remove(&2);
        assert_eq!((cache.used(), cache.len()), (200, 2));
        // Admission: always while there is room, then one time in N.
        assert!(cache.admit(&7, 100, 3));
        cache.insert(7, Arc::new(7), 100);
        let admitted: Vec<bool> = (0..6).map(|_| cache.admit(&8, 100, 3)).collect();
        assert_eq!(admitted, [false, false, true, false, false, true]);
        cache.remove(&7);
        let mut seen = Vec::new();
        cache.get_many_with(
            &[3, 42, 0],
            |_, _| {},
            |i, v| seen.push((i, v.map(|v| **v))),
        );
        seen.sort();
        assert_eq!(seen, [(0, Some(3)), (1, None), (2, Some(0))]);
        // Too large for the cache: not cached, nothing evicted.
        cache.insert(9, Arc::new(9), 301);
        assert!(cache.peek(&9).is_none());
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn retain_removes_what_fails_the_test() {
        // (file, chunk) keys over many shards; drop file 1 from chunk 10 on, then file 2.
        let cache: Cache<(u64, u64), u64> = Cache::new(64 << 20);
        for file in 0..3 {
            for chunk in 0..100 {
                cache.insert((file, chunk), chunk, 1000);
            }
        }
        cache.retain(|&(file, chunk)| file != 1 || chunk < 10);
        assert_eq!((cache.len(), cache.used()), (210, 210_000));
        assert!(cache.peek(&(1, 9)).is_some() && cache.peek(&(1, 10)).is_none());
        cache.retain(|&(file, _)| file != 2);
        assert_eq!(cache.len(), 110);
        assert!(cache.peek(&(2, 0)).is_none() && cache.peek(&(0, 99)).is_some());
        // Freed room is reused: the clock's free positions, then new ones.
        for chunk in 0..200 {
            cache.insert((3, chunk), chunk, 1000);
        }
        assert_eq!((cache.len(), cache.used()), (310, 310_000));
    }

    #[test]
    fn disabled_and_sharded() {
        let off: Cache<u64, u64> = Cache::new(0);
        off.insert(1, 1, 1);
        assert!(off.get(&1).is_none());
        assert!(off.is_empty());
        let big: Cache<(u32, u64), u64> = Cache::new(64 << 20);
        assert_eq!(big.shards.len(), MAX_SHARDS);
        assert_eq!(Cache::<u64, u64>::new(4 << 20).shards.len(), 4);
        // Many entries over many shards: bounded, and every shard gets some.
        for p in 0..100_000u64 {
            big.insert((p as u32 % 7, p), p, 4096);
        }
        assert!(big.used() <= 64 << 20);
        assert!(big.len() >= (64 << 20) / 4096 * 9 / 10, "{}", big.len());
        for s in big.shards.iter() {
            assert!(s.lock().map.len() > 500);
        }
        // Batched lookups over every shard, more than a batch per shard.
        let keys: Vec<(u32, u64)> = (99_000..100_100u64).map(|p| (p as u32 % 7, p)).collect();
        let (h0, m0) = big.counters();
        let mut seen = vec![None; keys.len()];
        let mut touched = 0;
        big.get_many_with(
            &keys,
            |_, _| touched += 1,
            |i, v| seen[i] = Some(v.copied()),
        );
        let expect: Vec<Option<Option<u64>>> = keys
            .iter()
            .map(|&(_, p)| Some((p < 100_000).then_some(p)))
            .collect();
        assert_eq!(seen, expect);
        assert_eq!(touched, 1000);
        assert_eq!(big.counters(), (h0 + 1000, m0 + 100));
    }

    #[test]
    fn shards_spread_aligned_offsets() {
        // Block offsets that are multiples of 4 KiB (low bits all zero) over few tables: every
        // shard gets its share (a hash whose shard bits depend on few key bits would not).
        let mut per_shard = [0usize; MAX_SHARDS];
        for table in 1..=8u64 {
            for block in 0..4096u64 {
                per_shard[shard_bits(FxBuildHasher.hash_one((table, block << 12))) % MAX_SHARDS] +=
                    1;
            }
        }
        let mean = 8 * 4096 / MAX_SHARDS;
        for n in per_shard {
            assert!(n > mean * 9 / 10 && n < mean * 11 / 10, "{per_shard:?}");
        }
        // hash_bytes: the values of the hand-written Hasher it was written from.
        assert_eq!(hash_bytes(b"\0key-00000000000001"), 0x45fa_288b_1d12_fa84);
        assert_eq!(
            hash_bytes(b"0123456789abcdef0123456789abcdef0123"),
            0xaf65_6b6d_a3b5_cf1d
        );
    }

    #[test]
    fn concurrent_readers_and_writers() {
        let cache: Arc<Cache<u64, Arc<Vec<u8>>>> = Arc::new(Cache::new(2 << 20));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let cache = cache.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        let k = (i * 7 + t) % 3000;
                        match cache.get(&k) {
                            Some(v) => assert_eq!(v[0], k as u8),
                            None => cache.insert(k, Arc::new(vec![k as u8; 1000]), 1000),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert!(cache.used() <= 2 << 20);
        let (hits, misses) = cache.counters();
        assert_eq!(hits + misses, 80_000);
    }
}
