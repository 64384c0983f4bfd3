//! The newest-version table: a shortcut past the keydir's ordered map for point reads.
//!
//! A read of the newest value of a key is the common case, and a descent of the keydir's
//! `BTreeMap` is most of its cost (several cache misses per level of a million-key tree). This
//! table answers it with about one: a hash table of 4-way buckets (96 bytes), each slot holding
//! a fingerprint of a key and where its newest version is. It is lossy by design (a full
//! bucket forgets its oldest slot, a key whose place does not fit the packing is left out) and
//! it never holds a stale place, which is what makes a hit usable:
//!
//! * Every new version of a key is set in the table, overwriting the slot with the key's
//!   fingerprint in its bucket (there is at most one), so a slot with a key's fingerprint
//!   holds either that key's newest version or a version of another key with the same
//!   fingerprint in the same bucket.
//! * The record at a slot's place names its key (and is CRC-checked), so a reader tells the
//!   two apart by reading it, and falls back to the keydir on a mismatch.
//! * A merge moves versions: the table is rebuilt from the keydir after every merge.
//!
//! Memory: 24 bytes per slot, between 4/3 and 8/3 slots per key (a power of two, doubled when
//! keys pass 3/4 of the slots), so 32 - 64 bytes per key on top of the keydir's ~70.

use kv_engine_kit::cache::hash_bytes;

use crate::keydir::Loc;

/// Slots per bucket.
const WAYS: usize = 4;
/// Bits of a place's offset that fit a slot: offsets at or past 1 TiB are left out.
const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
/// Fewest slots.
const MIN_SLOTS: usize = 64;
/// A bulk build ([`NewestTable::build`]) sets the table in up to 2^8 partitions.
const PARTITION_BITS: u32 = 8;

/// One key's newest version: 24 bytes. `seq == 0` is an empty slot (commits start at 1).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Slot {
    seq: u64,
    /// Offset in the low [`OFFSET_BITS`], fingerprint above.
    offset_fp: u64,
    /// Frame length.
    len: u32,
    /// File id and removal flag ([`Loc::file_flags`]).
    file_flags: u32,
}

/// A [`Slot`] as the table stores it: three words (seq, offset and fingerprint, length and
/// file flags). An all-zero array is an empty slot, so a new table is a zeroed allocation,
/// which the OS hands out lazily: filling 200k keys' worth of `Slot::default()` took 8 ms, a
/// pause for the commit that starts the table's growth (#12).
type RawSlot = [u64; 3];

impl Slot {
    fn from_raw(raw: &RawSlot) -> Slot {
        let [seq, offset_fp, rest] = *raw;
        Slot {
            seq,
            offset_fp,
            len: (rest >> 32) as u32,
            #[expect(
                clippy::cast_possible_truncation,
                reason = "the low half of the word, by design"
            )]
            file_flags: rest as u32,
        }
    }

    fn raw(&self) -> RawSlot {
        [
            self.seq,
            self.offset_fp,
            (u64::from(self.len) << 32) | u64::from(self.file_flags),
        ]
    }

    fn fingerprint(&self) -> u64 {
        self.offset_fp >> OFFSET_BITS
    }

    fn is_empty(&self) -> bool {
        self.seq == 0
    }
}

/// A key's hash and its newest version's sequence number, offset, length and file flags.
type StagedSlot = (u64, u64, u64, u32, u32);

/// A table being built in one go: its keys hashed, in partitions (see [`NewestTable::stage`]).
pub(crate) struct Staged {
    /// Empty, sized for the keys.
    table: NewestTable,
    /// The keys of each run of adjacent buckets, in the order they were given.
    partitions: Vec<Vec<StagedSlot>>,
}

impl Staged {
    /// The table holding the staged keys.
    pub fn fill(self) -> NewestTable {
        let mut table = self.table;
        for part in self.partitions {
            for (h, seq, offset, len, file_flags) in part {
                let (b, fp) = table.place_of_hash(h);
                table.set_at(b, fp, &Loc::from_parts(seq, offset, len, file_flags));
            }
        }
        table
    }
}

/// See the module docs.
pub(crate) struct NewestTable {
    buckets: Vec<[RawSlot; WAYS]>,
    /// `64 - log2(buckets.len())`: the bucket is the hash's top bits.
    shift: u32,
}

impl Default for NewestTable {
    fn default() -> Self {
        NewestTable::with_capacity(0)
    }
}

impl NewestTable {
    /// An empty table sized for `keys` keys: at most 3 keys per 4 slots.
    pub fn with_capacity(keys: usize) -> Self {
        let slots = keys
            .saturating_add(keys / 3)
            .saturating_add(1)
            .max(MIN_SLOTS)
            .next_power_of_two();
        let buckets = slots / WAYS;
        NewestTable {
            // Zeroed: see [`RawSlot`].
            buckets: vec![[[0; 3]; WAYS]; buckets],
            // At least 16 buckets, a power of two below 2^64: a shift from 1 to 60.
            shift: u64::BITS.saturating_sub(buckets.trailing_zeros()),
        }
    }

    /// Buckets in the table.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Writes the memory of buckets `from..from + count` (clamped to the table) and returns
    /// where it stopped: for a new table, before anything is set in it.
    ///
    /// A new table is a zeroed allocation the OS maps lazily, and [`NewestTable::set_all`]
    /// reads a bucket before it writes it: its first touch of a page maps the shared zero
    /// page, and the write that follows copies it and flushes the TLB of every CPU running
    /// the process. Setting the first keys of a growing table took over a millisecond of page
    /// faults per commit (#12); written here first, a page costs one fault, and a growing
    /// table's pages are spread over many commits.
    pub fn prefault(&mut self, from: usize, count: usize) -> usize {
        /// Buckets closer together than a page (96 bytes each), so that one in this many
        /// touches every page.
        const PAGE_BUCKETS: usize = 4096 / std::mem::size_of::<[RawSlot; WAYS]>();
        let end = from.saturating_add(count).min(self.buckets.len());
        let fresh = self.buckets.get_mut(from..end).unwrap_or_default();
        for bucket in fresh.iter_mut().step_by(PAGE_BUCKETS) {
            // Zero over zero (nothing is set yet), opaque to the compiler so that the store
            // is kept.
            debug_assert_eq!(*bucket, [[0; 3]; WAYS]);
            *bucket = std::hint::black_box([[0; 3]; WAYS]);
        }
        end
    }

    /// Slots in the table.
    pub fn slots(&self) -> usize {
        self.buckets.len().saturating_mul(WAYS)
    }

    /// True once `keys` keys are more than 3 per 4 slots: past that, full buckets forget more
    /// and more keys (a million keys in 4-way buckets: 98% held at 0.48 keys per slot, 89% at
    /// 0.75, 82% at 0.95), and the table should be rebuilt at twice the size.
    pub fn is_crowded(&self, keys: usize) -> bool {
        keys.saturating_mul(4) > self.slots().saturating_mul(3)
    }

    /// The bucket index and fingerprint of `key` (slot byte + key).
    fn place(&self, key: &[u8]) -> (usize, u64) {
        self.place_of_hash(hash_bytes(key))
    }

    /// [`NewestTable::place`] of a key whose hash is `h`.
    fn place_of_hash(&self, h: u64) -> (usize, u64) {
        // The bucket takes the top bits, the fingerprint the low ones: independent bits.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "`h >> shift` is below the number of buckets, a usize"
        )]
        let bucket = (h.checked_shr(self.shift).unwrap_or(0)) as usize;
        (bucket, h & ((1 << (64 - OFFSET_BITS)) - 1))
    }

    /// Records `loc` as the newest version of `key` (slot byte + key).
    #[cfg(test)]
    pub fn set(&mut self, key: &[u8], loc: &Loc) {
        let (b, fp) = self.place(key);
        self.set_at(b, fp, loc);
    }

    /// Records each `(key, loc)` in turn, as [`NewestTable::set`] does. Faster than one
    /// at a time: the buckets of a batch of keys
    /// are touched together first, so their cache misses overlap instead of queueing behind
    /// the branches of each set.
    pub fn set_all<'a>(&mut self, entries: impl Iterator<Item = (&'a [u8], &'a Loc)>) {
        const BATCH: usize = 16;
        let mut batch: Vec<(usize, u64, &Loc)> = Vec::with_capacity(BATCH);
        let mut entries = entries.peekable();
        while entries.peek().is_some() {
            batch.clear();
            batch.extend(entries.by_ref().take(BATCH).map(|(k, l)| {
                let (b, fp) = self.place(k);
                (b, fp, l)
            }));
            let mut touched = 0;
            for &(b, _, _) in &batch {
                touched ^= self.buckets.get(b).map_or(0, |s| s[0][0]);
            }
            std::hint::black_box(touched);
            for &(b, fp, l) in &batch {
                self.set_at(b, fp, l);
            }
        }
    }

    /// A table sized for `keys` keys holding each of `entries` (`(key, loc)`, each key once),
    /// slot for slot as [`NewestTable::set_all`] of them in that order would: for rebuilding
    /// the table in one go (reopen, merge). See [`NewestTable::stage`].
    pub fn build<'a>(keys: usize, entries: impl Iterator<Item = (&'a [u8], &'a Loc)>) -> Self {
        NewestTable::stage(keys, entries).fill()
    }

    /// The first half of [`NewestTable::build`], the half that reads the keys: the rest
    /// ([`Staged::fill`]) needs no keys, so it can run on another thread while the keys are
    /// moved into the keydir.
    ///
    /// Setting keys in key order writes all over a table far larger than the caches, a cache
    /// and TLB miss per key. Here the keys are first hashed into partitions of adjacent
    /// buckets (in order, so each bucket sees its keys in the order `set_all` would show
    /// them), then each partition is set, its buckets (at most 1/256 of the table) in cache.
    pub fn stage<'a>(keys: usize, entries: impl Iterator<Item = (&'a [u8], &'a Loc)>) -> Staged {
        let table = NewestTable::with_capacity(keys);
        // `buckets` is a power of two, 2^bits; a partition is 2^(bits - part_bits) buckets.
        let bits = u64::BITS.saturating_sub(table.shift);
        let part_bits = bits.min(PARTITION_BITS);
        let part_shift = bits.saturating_sub(part_bits);
        let parts = 1usize.checked_shl(part_bits).unwrap_or(1);
        // Room for a little more than an even share, so few partitions reallocate.
        let even = keys.checked_div(parts).unwrap_or(keys);
        let share = even.saturating_add(even / 4).saturating_add(8);
        let mut partitions: Vec<Vec<StagedSlot>> =
            (0..parts).map(|_| Vec::with_capacity(share)).collect();
        for (key, loc) in entries {
            let h = hash_bytes(key);
            let (b, _) = table.place_of_hash(h);
            let part = b.checked_shr(part_shift).unwrap_or(0);
            if let Some(p) = partitions.get_mut(part) {
                p.push((h, loc.seq, loc.offset, loc.len, loc.file_flags()));
            }
        }
        Staged { table, partitions }
    }

    fn set_at(&mut self, b: usize, fp: u64, loc: &Loc) {
        let Some(bucket) = self.buckets.get_mut(b) else {
            return;
        };
        let slot = (loc.offset <= OFFSET_MASK).then(|| Slot {
            seq: loc.seq,
            offset_fp: loc.offset | (fp << OFFSET_BITS),
            len: loc.len,
            file_flags: loc.file_flags(),
        });
        if let Some(own) = bucket.iter_mut().find(|s| {
            let s = Slot::from_raw(s);
            !s.is_empty() && s.fingerprint() == fp
        }) {
            // The key's own slot (or a same-fingerprint neighbour's): replaced, or emptied if
            // the new place does not fit, so that it never goes stale.
            *own = slot.unwrap_or_default().raw();
            return;
        }
        if let Some(slot) = slot {
            // Newest first; a full bucket forgets its older slot.
            bucket.copy_within(0..WAYS - 1, 1);
            bucket[0] = slot.raw();
        }
    }

    /// The newest version of `key` (slot byte + key) if the table holds it, is a value (not a
    /// removal), and is visible at `at`. It may belong to another key with the same
    /// fingerprint: the caller checks the record's key.
    pub fn get(&self, key: &[u8], at: u64) -> Option<Loc> {
        let (b, fp) = self.place(key);
        let s = self
            .buckets
            .get(b)?
            .iter()
            .map(Slot::from_raw)
            .find(|s| !s.is_empty() && s.fingerprint() == fp)?;
        let loc = Loc::from_parts(s.seq, s.offset_fp & OFFSET_MASK, s.len, s.file_flags);
        (s.seq <= at && !loc.is_removal()).then_some(loc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Vec<u8> {
        let mut k = vec![0];
        k.extend_from_slice(&i.to_be_bytes());
        k
    }

    #[test]
    fn holds_newest_versions_and_never_a_stale_one() {
        assert_eq!(std::mem::size_of::<Slot>(), 24);
        let slot = Slot {
            seq: u64::MAX - 1,
            offset_fp: 0xdead_beef << OFFSET_BITS | 77,
            len: u32::MAX,
            file_flags: 0x8000_0003,
        };
        assert_eq!(Slot::from_raw(&slot.raw()), slot);
        assert!(Slot::from_raw(&[0; 3]).is_empty());
        let mut t = NewestTable::with_capacity(1000);
        assert_eq!(t.slots(), 2048);
        assert!(!t.is_crowded(1536) && t.is_crowded(1537));
        for i in 0..1000u32 {
            t.set(&key(i), &Loc::new(1, 0, 1, u64::from(i) * 100, 100, false));
        }
        let hits = (0..1000u32)
            .filter(|&i| t.get(&key(i), 5).is_some())
            .count();
        assert!(hits > 900, "4-way buckets keep most keys: {hits}");
        for i in 0..1000u32 {
            t.set(&key(i), &Loc::new(2, 0, 3, u64::from(i), 7, false));
        }
        for i in 0..1000u32 {
            if let Some(l) = t.get(&key(i), 5) {
                // Same fingerprint, another key: possible, and the caller checks the record.
                if l.seq != 2 {
                    continue;
                }
                assert_eq!((l.file(), l.offset, l.len), (3, u64::from(i), 7));
            }
            assert!(t.get(&key(i), 1).is_none(), "version 2 is not visible at 1");
        }
        // A removal hides the value; a place that does not fit empties the key's slot.
        t.set(&key(5), &Loc::new(3, 0, 1, 1, 10, true));
        assert!(t.get(&key(5), 9).is_none());
        t.set(&key(6), &Loc::new(3, 0, 1, 1 << 41, 10, false));
        assert!(t.get(&key(6), 9).is_none());
    }

    /// A bulk build holds exactly what setting the same keys one by one in the same order
    /// does: full buckets, shared fingerprints, places that do not fit, every table size.
    #[test]
    fn build_matches_setting_in_order() {
        for (keys, sized_for) in [
            (0, 0),
            (10, 10),
            (1000, 1000),
            (5000, 300),
            (70_000, 70_000),
        ] {
            let entries: Vec<(Vec<u8>, Loc)> = (0..keys)
                .map(|i: u32| {
                    // Every 97th place does not fit a slot; some are removals.
                    let offset = if i % 97 == 5 {
                        1 << 41
                    } else {
                        u64::from(i) * 40
                    };
                    let file = i % 5 + 1;
                    (
                        key(i),
                        Loc::new(u64::from(i) + 1, 0, file, offset, 40, i.is_multiple_of(13)),
                    )
                })
                .collect();
            let iter = || entries.iter().map(|(k, l)| (k.as_slice(), l));
            let built = NewestTable::build(sized_for as usize, iter());
            let mut set = NewestTable::with_capacity(sized_for as usize);
            set.set_all(iter());
            assert_eq!(built.shift, set.shift);
            assert!(
                built.buckets == set.buckets,
                "{keys} keys in a table for {sized_for}"
            );
            // The table is lossy: a crowded one forgets keys, as set_all's does.
            let held = (0..keys)
                .filter(|&i| built.get(&key(i), u64::MAX).is_some())
                .count();
            assert!(keys == 0 || held > 0);
        }
    }
}
