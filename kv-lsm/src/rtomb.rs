//! Range tombstones: what `Transaction::remove_range` and `remove_prefix` leave in the LSM
//! instead of one removal per key ([`kv_api::Engine::range_tombstones`]).
//!
//! A tombstone is a commit's removal of every key of a range (in one slot) that was live
//! before the commit: a version at the commit's sequence number that hides every older
//! version of the keys it covers, applied before the commit's own writes (a write of the same
//! commit is newer). It is stored once: in the commit's WAL record (`txlog`'s range removal),
//! then, once the commit is flushed, in the manifest, which lists every tombstone until a
//! `merge` turns it into per-key removals (see [`synthesize`]; ordinary compaction keeps every
//! version, so it has nothing to do with them). Readers hold the list beside the memtables
//! and tables ([`crate::engine::State::tombs`]) and apply it: a point read or a scan drops a
//! version a newer tombstone (at or below the read's snapshot) covers; `versions`,
//! `scan_versions` and `get_version` show one removal at the tombstone's commit for each key
//! it found live.

use kv_api::{KeyRange, Slot, Version};

/// One range removal of one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeTomb {
    /// The slot of the removed range.
    pub slot: Slot,
    /// The removed range of encoded keys.
    pub range: KeyRange,
    /// The commit that removed it.
    pub version: Version,
}

impl RangeTomb {
    /// The commit's sequence number.
    pub fn seq(&self) -> u64 {
        self.version.seq()
    }

    /// True if the tombstone covers user key `ukey` (slot byte + key).
    pub fn covers(&self, ukey: &[u8]) -> bool {
        ukey.split_first()
            .is_some_and(|(slot, key)| *slot == self.slot && self.range.contains(key))
    }

    /// True if the tombstone may cover a key of `range` in `slot`.
    pub fn overlaps(&self, slot: Slot, range: &KeyRange) -> bool {
        slot == self.slot && self.range.overlaps(range)
    }
}

/// Range tombstones held at most (until a merge turns them into per-key removals): every
/// read checks the key against each one, so their number bounds what they add to a read.
/// Past it, range removals are written as one removal per key (what every engine does
/// without tombstones), which costs the writer, never the readers.
pub(crate) const MAX_HELD: usize = 64;

/// The tombstones of `tombs` at or below `at` that may cover a key of `range` in `slot`: what
/// a scan checks its entries against.
pub(crate) fn relevant(
    tombs: &[RangeTomb],
    slot: Slot,
    range: &KeyRange,
    at: u64,
) -> Vec<RangeTomb> {
    tombs
        .iter()
        .filter(|t| t.seq() <= at && t.overlaps(slot, range))
        .cloned()
        .collect()
}

/// The newest tombstone at or below `at` covering `ukey`: versions of the key below it are
/// removed (0 if none covers it; no version is below 0).
pub(crate) fn cover(tombs: &[RangeTomb], ukey: &[u8], at: u64) -> u64 {
    tombs
        .iter()
        .filter(|t| t.seq() <= at && t.covers(ukey))
        .map(RangeTomb::seq)
        .max()
        .unwrap_or(0)
}

/// True if the version `seq` of `ukey` is hidden at `at`: a tombstone newer than it, at or
/// below `at`, covers the key.
pub(crate) fn hidden(tombs: &[RangeTomb], ukey: &[u8], seq: u64, at: u64) -> bool {
    tombs
        .iter()
        .any(|t| seq < t.seq() && t.seq() <= at && t.covers(ukey))
}

/// The versions of one key (oldest first, removals flagged) with the removals the
/// tombstones of `tombs` at or below `at` covering `ukey` make: one at a tombstone's commit
/// if the key was live just before it, and the commit did not write the key itself (its
/// writes apply after the range: such a write is the key's one version of that commit).
pub(crate) fn synthesize(
    versions: &[Version],
    tombs: &[RangeTomb],
    ukey: &[u8],
    at: u64,
) -> Vec<Version> {
    let mut covering: Vec<Version> = tombs
        .iter()
        .filter(|t| t.seq() <= at && t.covers(ukey))
        .map(|t| t.version)
        .collect();
    if covering.is_empty() {
        return versions.to_vec();
    }
    covering.sort();
    covering.dedup_by_key(|v| v.seq());
    let mut out = Vec::with_capacity(versions.len().saturating_add(covering.len()));
    let mut live = false;
    let mut tombs = covering.into_iter().peekable();
    for v in versions {
        while let Some(t) = tombs.next_if(|t| t.seq() <= v.seq()) {
            // A key the commit writes has that write as its one version of the commit.
            if live && t.seq() < v.seq() {
                out.push(Version::new(t.seq(), t.time_ms()).with_removal(true));
            }
            live = false;
        }
        out.push(*v);
        live = !v.is_removal();
    }
    for t in tombs {
        if live {
            out.push(Version::new(t.seq(), t.time_ms()).with_removal(true));
        }
        live = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::Bound;

    fn tomb(slot: Slot, from: &[u8], to: &[u8], seq: u64) -> RangeTomb {
        RangeTomb {
            slot,
            range: KeyRange {
                start: Bound::Included(from.to_vec()),
                end: Bound::Excluded(to.to_vec()),
            },
            version: Version::new(seq, seq * 10),
        }
    }

    fn v(seq: u64, removal: bool) -> Version {
        Version::new(seq, seq).with_removal(removal)
    }

    #[test]
    fn covers_by_slot_and_range() {
        let t = tomb(1, b"b", b"d", 5);
        assert!(t.covers(b"\x01b"));
        assert!(t.covers(b"\x01c\xff"));
        assert!(!t.covers(b"\x01d"));
        assert!(!t.covers(b"\x02b"));
        assert!(!t.covers(b""));
    }

    #[test]
    fn hidden_only_between_the_version_and_the_snapshot() {
        let tombs = [tomb(0, b"a", b"z", 5)];
        assert!(hidden(&tombs, b"\x00k", 4, 5));
        assert!(
            !hidden(&tombs, b"\x00k", 4, 4),
            "a snapshot below the removal"
        );
        assert!(
            !hidden(&tombs, b"\x00k", 5, 9),
            "the removal's own commit wrote it"
        );
        assert!(!hidden(&tombs, b"\x00k", 6, 9), "written after the removal");
        assert_eq!(cover(&tombs, b"\x00k", 9), 5);
        assert_eq!(cover(&tombs, b"\x00k", 4), 0);
    }

    #[test]
    fn a_removal_for_each_tombstone_that_found_the_key_live() {
        let tombs = [
            tomb(0, b"a", b"z", 3),
            tomb(0, b"a", b"z", 5),
            tomb(0, b"a", b"z", 8),
            tomb(0, b"a", b"z", 9),
        ];
        let ukey = b"\x00k";
        // Value at 2, removed by 3; 5 finds nothing; a value at 6, removed by 8; 9 finds
        // nothing; a value of 9's own commit stays.
        let versions = [v(2, false), v(6, false), v(9, false)];
        let all = synthesize(&versions, &tombs, ukey, 20);
        let want: Vec<(u64, bool)> = vec![(2, false), (3, true), (6, false), (8, true), (9, false)];
        assert_eq!(
            all.iter()
                .map(|v| (v.seq(), v.is_removal()))
                .collect::<Vec<_>>(),
            want
        );
        assert_eq!(all.get(1).map(Version::time_ms), Some(30));
        // At 7: only the removal at 3 is visible.
        let at7 = synthesize(&versions[..2], &tombs, ukey, 7);
        assert_eq!(at7.len(), 3);
        // A key no tombstone covers keeps its versions.
        assert_eq!(
            synthesize(&versions, &tombs, b"\x01k", 20),
            versions.to_vec()
        );
        // A key the removing commit writes has that write only.
        let rewritten = [v(2, false), v(3, false)];
        assert_eq!(
            synthesize(&rewritten, &tombs[..1], ukey, 20),
            rewritten.to_vec()
        );
        // A key removed by its own removal is not removed again.
        let removed = [v(1, false), v(2, true)];
        assert_eq!(synthesize(&removed, &tombs, ukey, 20), removed.to_vec());
    }
}
