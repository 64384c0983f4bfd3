//! Optimistic conflict detection shared by the local engines.
//!
//! The tracker remembers, for recent commits, which keys they wrote. A batch conflicts if a
//! commit after its start wrote a key it read or wrote, or a key inside a range it scanned.
//! Entries are dropped once no open snapshot is older than them; a cap bounds memory, and a
//! transaction older than what was dropped conservatively conflicts.

use std::collections::{BTreeMap, VecDeque};

use crate::{Error, Result, Slot, WriteBatch};

/// Most keys remembered before the oldest are forgotten (and older transactions conflict).
const MAX_TRACKED: usize = 1 << 20;

/// Keys written by recent commits.
#[derive(Default)]
pub struct ConflictTracker {
    /// slot byte + key -> the last commit that wrote it.
    recent: BTreeMap<Vec<u8>, u64>,
    /// Commits in order, with the keys (slot byte + key) each wrote, for pruning.
    log: VecDeque<(u64, Vec<Vec<u8>>)>,
    tracked: usize,
    /// Transactions starting before this sequence number cannot be validated any more.
    floor: u64,
}

impl ConflictTracker {
    /// Checks `batch` against commits after its start.
    pub fn check(&self, batch: &WriteBatch) -> Result<()> {
        let start = batch.start.seq();
        if start < self.floor {
            return Err(Error::Conflict(format!(
                "transaction from version {start} is too old to validate (tracking from {})",
                self.floor
            )));
        }
        if self.log.back().is_none_or(|(seq, _)| *seq <= start) {
            return Ok(());
        }
        let mut scratch = Vec::new();
        let mut newer = |slot: Slot, key: &[u8]| {
            scratch.clear();
            scratch.push(slot);
            scratch.extend_from_slice(key);
            self.recent
                .get(scratch.as_slice())
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
            let mut lo = vec![*slot];
            if let std::ops::Bound::Included(k) | std::ops::Bound::Excluded(k) = &range.start {
                lo.extend_from_slice(k);
            }
            let hit = self
                .recent
                .range(lo..)
                .take_while(|(k, _)| k.first() == Some(slot))
                .take_while(|(k, _)| match &range.end {
                    std::ops::Bound::Included(e) => &k[1..] <= e.as_slice(),
                    std::ops::Bound::Excluded(e) => &k[1..] < e.as_slice(),
                    std::ops::Bound::Unbounded => true,
                })
                .any(|(k, seq)| *seq > start && range.contains(&k[1..]));
            if hit {
                return Err(Error::Conflict(format!(
                    "a key in a range scanned in slot {slot} was committed since"
                )));
            }
        }
        Ok(())
    }

    /// Remembers the keys written by commit `seq`.
    pub fn record(&mut self, seq: u64, writes: &[crate::Write]) {
        let keys: Vec<Vec<u8>> = writes
            .iter()
            .map(|w| {
                let mut k = Vec::with_capacity(1 + w.key.len());
                k.push(w.slot);
                k.extend_from_slice(&w.key);
                k
            })
            .collect();
        for k in &keys {
            self.recent.insert(k.clone(), seq);
        }
        self.tracked += keys.len();
        self.log.push_back((seq, keys));
        while self.tracked > MAX_TRACKED {
            match self.log.front() {
                Some((seq, _)) => self.floor = self.floor.max(*seq),
                None => break,
            }
            self.pop_front();
        }
    }

    /// Forgets commits that no open transaction can conflict with: those at or below `oldest`,
    /// the oldest start of any open transaction.
    pub fn prune(&mut self, oldest: u64) {
        while self.log.front().is_some_and(|(seq, _)| *seq <= oldest) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((seq, keys)) = self.log.pop_front() {
            self.tracked -= keys.len();
            for k in keys {
                if self.recent.get(&k) == Some(&seq) {
                    self.recent.remove(&k);
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyRange, Snapshot, Version, Write};

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
        t.record(5, &[w(1, b"k"), w(2, b"m")]);
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
}
