//! Optimistic conflict detection shared by the local engines.
//!
//! The tracker remembers, for recent commits, which keys they wrote. A batch conflicts if a
//! commit after its start wrote a key it read or wrote, or a key inside a range it scanned.
//! Entries are dropped once no open snapshot is older than them; a cap bounds memory, and a
//! transaction older than what was dropped conservatively conflicts.
//!
//! Every commit is recorded (a transaction may take its snapshot below a commit until that
//! commit is published), so recording is on the write path of every commit and is kept cheap:
//! point keys are remembered by a 64-bit keyed hash in one hash table (no allocation per key),
//! and each commit's keys are copied back to back into one buffer, kept only for the range
//! checks of transactions that scanned. Two keys with the same hash can only make a check
//! report a conflict that did not happen (about one chance in 2^64 per pair of keys), which
//! the caller handles like any conflict: by retrying.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

use kv_api::{Error, KeyRange, Result, Slot, Write, WriteBatch};

/// Most keys remembered before the oldest are forgotten (and older transactions conflict).
const MAX_TRACKED: usize = 1 << 20;
/// Commit records kept for reuse, so a steady stream of commits allocates nothing.
const SPARE_COMMITS: usize = 4;

/// The keys of one commit.
#[derive(Default)]
struct Commit {
    seq: u64,
    /// Keyed hash of (slot, key) of every write.
    hashes: Vec<u64>,
    /// The keys back to back, each as slot byte + key bytes.
    keys: Vec<u8>,
    /// End offset in `keys` of each key.
    ends: Vec<usize>,
    /// Ranges the commit removed (`WriteBatch::removed_ranges`): writes over every key in
    /// them, present or not.
    removed: Vec<(Slot, KeyRange)>,
}

impl Commit {
    fn keys(&self) -> impl Iterator<Item = (Slot, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .filter_map(|(s, e)| self.keys.get(s..e))
            .filter_map(|k| k.split_first().map(|(slot, key)| (*slot, key)))
    }

    fn len(&self) -> usize {
        self.hashes.len().saturating_add(self.removed.len())
    }

    /// True if `hit` holds for a range this commit removed.
    fn removed_hit(&self, hit: impl Fn(Slot, &KeyRange) -> bool) -> bool {
        self.removed.iter().any(|(slot, range)| hit(*slot, range))
    }
}

/// Passes the tracker's 64-bit key hashes through: they are already keyed hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Keys written by recent commits.
#[derive(Default)]
pub struct ConflictTracker {
    /// Hash of (slot, key) -> the last commit that wrote it.
    recent: HashMap<u64, u64, BuildHasherDefault<IdentityHasher>>,
    /// Commits in order, for pruning and range checks.
    log: VecDeque<Commit>,
    spare: Vec<Commit>,
    tracked: usize,
    /// Transactions starting before this sequence number cannot be validated any more.
    floor: u64,
    /// Set while some commit in `log` may have removed a range: the range checks are skipped
    /// otherwise (most stores never remove one). Cleared when the log empties.
    any_removed_range: bool,
    hasher: RandomState,
}

impl ConflictTracker {
    fn hash(&self, slot: Slot, key: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write_u8(slot);
        h.write(key);
        h.finish()
    }

    /// Checks `batch` against commits after its start.
    pub fn check(&self, batch: &WriteBatch) -> Result<()> {
        let start = batch.start.seq();
        if start < self.floor {
            return Err(Error::Conflict(format!(
                "transaction from version {start} is too old to validate (tracking from {})",
                self.floor
            )));
        }
        if self.log.back().is_none_or(|c| c.seq <= start) {
            return Ok(());
        }
        let newer = |slot: Slot, key: &[u8]| {
            self.recent
                .get(&self.hash(slot, key))
                .is_some_and(|seq| *seq > start)
        };
        for (slot, key) in &batch.reads {
            if newer(*slot, key) {
                return Err(Error::Conflict(format!(
                    "a key read in slot {slot} was committed since"
                )));
            }
        }
        for w in &batch.writes {
            if newer(w.slot, &w.key) {
                return Err(Error::Conflict(format!(
                    "a key written in slot {} was committed since",
                    w.slot
                )));
            }
        }
        for (slot, range) in &batch.ranges {
            if self.written_in(start, *slot, range) {
                return Err(Error::Conflict(format!(
                    "a key in a range scanned in slot {slot} was committed since"
                )));
            }
        }
        if self.any_removed_range
            && self
                .log
                .iter()
                .rev()
                .take_while(|c| c.seq > start)
                .any(|c| c.removed_hit(|slot, removed| touches(batch, slot, removed)))
        {
            return Err(Error::Conflict(
                "a range this transaction read, wrote or scanned in was removed since".into(),
            ));
        }
        Ok(())
    }

    /// True if a commit after `start` wrote a key of `slot` inside `range`. A linear walk
    /// over those commits' keys: only transactions that scanned pay for it, and the keys
    /// tracked are bounded by [`MAX_TRACKED`].
    fn written_in(&self, start: u64, slot: Slot, range: &KeyRange) -> bool {
        if range.is_empty() {
            return false;
        }
        self.log
            .iter()
            .rev()
            .take_while(|c| c.seq > start)
            .any(|c| c.keys().any(|(s, k)| s == slot && range.contains(k)))
    }

    /// Remembers the keys written and the ranges removed by commit `seq`.
    pub fn record(&mut self, seq: u64, writes: &[Write], removed: &[(Slot, KeyRange)]) {
        let mut commit = self.spare.pop().unwrap_or_default();
        commit.seq = seq;
        if !removed.is_empty() {
            commit.removed.extend_from_slice(removed);
            self.any_removed_range = true;
        }
        for w in writes {
            let h = self.hash(w.slot, &w.key);
            self.recent.insert(h, seq);
            commit.hashes.push(h);
            commit.keys.push(w.slot);
            commit.keys.extend_from_slice(&w.key);
            commit.ends.push(commit.keys.len());
        }
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "at most MAX_TRACKED before, plus the length of one Vec"
        )]
        {
            self.tracked += commit.len();
        }
        self.log.push_back(commit);
        while self.tracked > MAX_TRACKED {
            match self.log.front() {
                Some(c) => self.floor = self.floor.max(c.seq),
                None => break,
            }
            self.pop_front();
        }
    }

    /// Forgets commits that no open transaction can conflict with: those at or below `oldest`,
    /// the oldest start of any open transaction.
    pub fn prune(&mut self, oldest: u64) {
        while self.log.front().is_some_and(|c| c.seq <= oldest) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        let Some(mut commit) = self.log.pop_front() else {
            return;
        };
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`tracked` is the sum of the lengths of the commits in `log`, this one's too"
        )]
        {
            self.tracked -= commit.len();
        }
        for h in &commit.hashes {
            if self.recent.get(h) == Some(&commit.seq) {
                self.recent.remove(h);
            }
        }
        if self.spare.len() < SPARE_COMMITS && commit.keys.capacity() <= 1 << 20 {
            commit.hashes.clear();
            commit.keys.clear();
            commit.ends.clear();
            commit.removed.clear();
            self.spare.push(commit);
        }
        if self.log.is_empty() {
            self.any_removed_range = false;
        }
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.tracked
    }

    /// True if nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.tracked == 0
    }
}

/// True if `batch` read, wrote or scanned inside `removed` of `slot`.
fn touches(batch: &WriteBatch, slot: Slot, removed: &KeyRange) -> bool {
    batch
        .reads
        .iter()
        .any(|(s, k)| *s == slot && removed.contains(k))
        || batch
            .writes
            .iter()
            .any(|w| w.slot == slot && removed.contains(&w.key))
        || batch
            .ranges
            .iter()
            .chain(&batch.removed_ranges)
            .any(|(s, r)| *s == slot && r.overlaps(removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_api::{Snapshot, Version};
    use std::ops::Bound;

    fn batch(start: u64) -> WriteBatch {
        WriteBatch::new(Snapshot::unpinned(Version::new(start, 0)))
    }

    fn w(slot: Slot, key: &[u8]) -> Write {
        Write {
            slot,
            key: key.to_vec(),
            value: Some(vec![1]),
        }
    }

    #[test]
    fn reads_writes_and_ranges_conflict_only_with_later_commits() {
        let mut t = ConflictTracker::default();
        t.record(5, &[w(1, b"k"), w(2, b"m")], &[]);
        let mut b = batch(4);
        b.reads.push((1, b"k".to_vec()));
        assert!(t.check(&b).is_err(), "read of a key committed after start");
        assert!(t.check(&batch(5)).is_ok());
        let mut b = batch(5);
        b.reads.push((1, b"k".to_vec()));
        assert!(
            t.check(&b).is_ok(),
            "commit at the start version is visible, no conflict"
        );
        let b = batch(4).write(1, b"k".to_vec(), None);
        assert!(t.check(&b).is_err(), "write-write");
        let b = batch(4).write(1, b"other".to_vec(), None);
        assert!(t.check(&b).is_ok());
        let mut b = batch(4);
        b.reads.push((3, b"k".to_vec()));
        assert!(t.check(&b).is_ok(), "slots are independent");
        let mut b = batch(4);
        b.ranges.push((2, KeyRange::prefix(b"m")));
        assert!(t.check(&b).is_err(), "phantom in a scanned range");
        let mut b = batch(4);
        b.ranges.push((2, KeyRange::prefix(b"n")));
        assert!(t.check(&b).is_ok(), "range not touched");
        t.prune(5);
        assert!(t.is_empty());
    }

    #[test]
    fn a_removed_range_conflicts_with_reads_writes_and_scans_inside_it() {
        let mut t = ConflictTracker::default();
        t.record(5, &[w(1, b"ab")], &[(1, KeyRange::prefix(b"a"))]);
        let conflicts = |f: &dyn Fn(&mut WriteBatch)| {
            let mut b = batch(4);
            f(&mut b);
            t.check(&b).is_err()
        };
        assert!(conflicts(&|b| b.reads.push((1, b"absent a".to_vec()))));
        assert!(conflicts(&|b| b.writes.push(w(1, b"a new key"))));
        assert!(conflicts(&|b| b.ranges.push((1, KeyRange::prefix(b"az")))));
        assert!(conflicts(&|b| b.ranges.push((1, KeyRange::all()))));
        assert!(conflicts(&|b| b
            .removed_ranges
            .push((1, KeyRange::prefix(b"")))));
        assert!(!conflicts(&|b| b.reads.push((1, b"b".to_vec()))), "outside");
        assert!(!conflicts(&|b| b.writes.push(w(2, b"a"))), "another slot");
        assert!(!conflicts(&|b| b.ranges.push((1, KeyRange::prefix(b"b")))));
        let mut b = batch(5);
        b.writes.push(w(1, b"a new key"));
        assert!(t.check(&b).is_ok(), "started after the removal");
        t.prune(5);
        assert!(t.is_empty() && !t.any_removed_range);
    }

    #[test]
    fn ranges_see_every_commit_since_start_and_pruning_forgets() {
        let mut t = ConflictTracker::default();
        for seq in 1..=50u64 {
            t.record(seq, &[w(1, &seq.to_be_bytes())], &[]);
        }
        let scanned = |start: u64, lo: u64, hi: u64| {
            let mut b = batch(start);
            b.ranges.push((
                1,
                KeyRange {
                    start: Bound::Included(lo.to_be_bytes().to_vec()),
                    end: Bound::Excluded(hi.to_be_bytes().to_vec()),
                },
            ));
            t.check(&b).is_err()
        };
        assert!(scanned(9, 10, 11), "key 10, committed at 10 > 9");
        assert!(!scanned(10, 10, 11), "committed at the start itself");
        assert!(!scanned(9, 5, 10), "keys 5..10 committed at or before 9");
        assert!(scanned(0, 1, 2) && scanned(20, 30, 60));
        let mut other_slot = batch(0);
        other_slot.ranges.push((2, KeyRange::all()));
        assert!(t.check(&other_slot).is_ok());
        t.prune(30);
        assert_eq!(t.len(), 20);
        let mut b = batch(30);
        b.reads.push((1, 30u64.to_be_bytes().to_vec()));
        assert!(t.check(&b).is_ok(), "pruned");
        b.reads.push((1, 31u64.to_be_bytes().to_vec()));
        assert!(t.check(&b).is_err());
        // A key rewritten later stays tracked when its first commit is pruned.
        t.record(51, &[w(1, &40u64.to_be_bytes())], &[]);
        t.prune(45);
        let mut b = batch(45);
        b.reads.push((1, 40u64.to_be_bytes().to_vec()));
        assert!(t.check(&b).is_err());
    }

    #[test]
    fn the_cap_makes_older_transactions_conflict() {
        let mut t = ConflictTracker::default();
        let keys: Vec<Write> = (0..1024u32).map(|i| w(0, &i.to_be_bytes())).collect();
        for seq in 1..=(MAX_TRACKED / keys.len() + 2) as u64 {
            t.record(seq, &keys, &[]);
        }
        assert!(t.len() <= MAX_TRACKED);
        assert!(matches!(t.check(&batch(0)), Err(Error::Conflict(_))));
        let newest = t.log.back().map_or(0, |c| c.seq);
        assert!(t.check(&batch(newest)).is_ok());
    }
}
