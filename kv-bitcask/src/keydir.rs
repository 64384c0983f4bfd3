//! The keydir: every version of every key, in key order, with where its record lives.
//!
//! Keys are stored as `slot byte + encoded key`, so one ordered map serves every slot and a
//! slot's keys are one contiguous range. Each key holds its versions oldest first; most keys
//! have one version, which is stored inline (no second allocation).

use std::cmp::{Ordering, Reverse};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::ops::Bound;

use kv_api::{KeyRange, Slot, Version};

use crate::hint::HintRun;
use crate::key::Key;
use crate::newest::NewestTable;

/// Highest file id: the top bit of [`Loc`]'s file field is the removal flag.
pub(crate) const MAX_FILE_ID: u32 = (1 << 31) - 1;
const REMOVAL: u32 = 1 << 31;

/// One version of a key and where its record is: 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    /// Commit sequence number.
    pub seq: u64,
    /// Commit time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Offset of the record's frame in its file.
    pub offset: u64,
    /// Length of the whole frame.
    pub len: u32,
    /// File id in the low 31 bits, removal flag in the top bit.
    file_flags: u32,
}

impl Loc {
    /// A location; `file` must be at most [`MAX_FILE_ID`].
    pub fn new(seq: u64, time_ms: u64, file: u32, offset: u64, len: u32, removal: bool) -> Self {
        debug_assert!(file <= MAX_FILE_ID);
        Loc {
            seq,
            time_ms,
            offset,
            len,
            file_flags: (file & MAX_FILE_ID) | if removal { REMOVAL } else { 0 },
        }
    }

    /// A location from its packed parts (see [`Loc::file_flags`]), without its commit time
    /// (0): for reading the record, not for reporting its version.
    pub fn from_parts(seq: u64, offset: u64, len: u32, file_flags: u32) -> Self {
        Loc {
            seq,
            time_ms: 0,
            offset,
            len,
            file_flags,
        }
    }

    /// File id and removal flag, packed.
    pub fn file_flags(&self) -> u32 {
        self.file_flags
    }

    /// The file holding the record.
    pub fn file(&self) -> u32 {
        self.file_flags & MAX_FILE_ID
    }

    /// True if this version removed the key.
    pub fn is_removal(&self) -> bool {
        self.file_flags & REMOVAL != 0
    }

    /// The same version, stored elsewhere.
    pub fn moved(&self, file: u32, offset: u64, len: u32) -> Self {
        Loc::new(self.seq, self.time_ms, file, offset, len, self.is_removal())
    }

    /// The version as the API reports it.
    pub fn version(&self) -> Version {
        Version::new(self.seq, self.time_ms).with_removal(self.is_removal())
    }
}

/// The versions of one key, oldest first.
#[derive(Debug, Clone)]
pub(crate) enum Versions {
    /// The common case.
    One(Loc),
    /// Several versions (never empty).
    Many(Vec<Loc>),
}

impl Versions {
    pub fn as_slice(&self) -> &[Loc] {
        match self {
            Versions::One(l) => std::slice::from_ref(l),
            Versions::Many(v) => v,
        }
    }

    fn newest(&self) -> Option<&Loc> {
        self.as_slice().last()
    }

    /// Adds a newer version (a second write of the same commit replaces the first).
    fn push(&mut self, loc: Loc) {
        match self {
            Versions::One(l) if l.seq == loc.seq => *l = loc,
            Versions::One(l) => *self = Versions::Many(vec![*l, loc]),
            Versions::Many(v) => match v.last_mut() {
                Some(last) if last.seq == loc.seq => *last = loc,
                _ => v.push(loc),
            },
        }
    }

    fn from_vec(mut v: Vec<Loc>) -> Option<Self> {
        match v.len() {
            0 => None,
            1 => v.pop().map(Versions::One),
            _ => Some(Versions::Many(v)),
        }
    }

    /// The newest version with `seq <= at`.
    fn at(&self, at: u64) -> Option<&Loc> {
        self.as_slice().iter().rev().find(|l| l.seq <= at)
    }
}

/// The entries of one segment, for [`Keydir::from_runs`]: in key order, the versions of a key
/// oldest first.
pub(crate) enum Run {
    /// Entries in memory (a replayed segment).
    Entries(std::vec::IntoIter<(Key, Loc)>),
    /// A hint, decoded as its entries are taken.
    Hint(HintRun),
}

impl Run {
    /// The run of `entries` (in file order), sorted by key, stably.
    pub fn sorted(mut entries: Vec<(Key, Loc)>) -> Self {
        if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Run::Entries(entries.into_iter())
    }

    /// Entries not taken yet.
    fn len(&self) -> usize {
        match self {
            Run::Entries(e) => e.len(),
            Run::Hint(h) => h.len(),
        }
    }

    /// The key of the run's last entry.
    fn last_key(&self) -> Option<&Key> {
        match self {
            Run::Entries(e) => e.as_slice().last().map(|(k, _)| k),
            Run::Hint(h) => h.last_key(),
        }
    }
}

impl Iterator for Run {
    type Item = (Key, Loc);

    fn next(&mut self) -> Option<(Key, Loc)> {
        match self {
            Run::Entries(e) => e.next(),
            Run::Hint(h) => h.next(),
        }
    }
}

/// The next entry of one run, in a k-way merge of runs.
struct Head {
    key: Key,
    run: usize,
    loc: Loc,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key).then(self.run.cmp(&other.run))
    }
}

/// Counters kept up to date by every change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Keys whose newest version is a value.
    pub live_keys: u64,
    /// Versions held.
    pub versions: u64,
    /// Frame bytes of the newest version of every live key: what a merge must keep at least.
    pub live_bytes: u64,
}

impl Counts {
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "each count is a sum over the map's versions: a subtraction takes back what \
                  an addition of the same `Versions` put in, and the sums stay below the \
                  versions held in memory and the frame bytes of the segments"
    )]
    fn add(&mut self, v: &Versions, sign: bool) {
        let n = v.as_slice().len() as u64;
        let (keys, bytes) = match v.newest() {
            Some(l) if !l.is_removal() => (1, u64::from(l.len)),
            _ => (0, 0),
        };
        if sign {
            self.versions += n;
            self.live_keys += keys;
            self.live_bytes += bytes;
        } else {
            self.versions -= n;
            self.live_keys -= keys;
            self.live_bytes -= bytes;
        }
    }
}

/// Which versions a merge keeps, given the sealed files and the horizon `h`.
pub(crate) struct MergeRule<'a> {
    /// Files being merged away.
    pub sealed: &'a HashSet<u32>,
    /// What is kept of each key (`kv_engine_kit::retention`): versions above the horizon,
    /// and of the older ones those the retention policy keeps (without one, the newest if a
    /// value).
    pub keep: kv_engine_kit::retention::KeepRule,
}

impl MergeRule<'_> {
    fn is_sealed(&self, l: &Loc) -> bool {
        self.sealed.contains(&l.file())
    }

    /// The sealed versions of `versions` (those of keydir key `key`, slot byte first) that
    /// the merge rewrites, oldest first. Versions in other files are left alone; sealed
    /// versions not returned are dropped.
    pub fn kept<'v>(
        &self,
        key: &[u8],
        versions: &'v [Loc],
    ) -> impl Iterator<Item = &'v Loc> + use<'v> {
        let mut rule = self.keep.key(key.first().copied().unwrap_or(0));
        // The rule takes versions newest first.
        let mut keep: Vec<bool> = versions
            .iter()
            .rev()
            .map(|l| rule.keep(l.seq, l.time_ms, !l.is_removal()))
            .collect();
        keep.reverse();
        let sealed: Vec<bool> = versions.iter().map(|l| self.is_sealed(l)).collect();
        versions
            .iter()
            .zip(keep)
            .zip(sealed)
            .filter_map(|((l, keep), sealed)| (keep && sealed).then_some(l))
    }

    fn touches(&self, versions: &[Loc]) -> bool {
        versions.iter().any(|l| self.is_sealed(l))
    }
}

/// The in-memory index of the store.
#[derive(Default)]
pub(crate) struct Keydir {
    map: BTreeMap<Key, Versions>,
    counts: Counts,
    /// The newest version of (most) keys, for point reads: see [`crate::newest`].
    newest: NewestTable,
    /// A table of twice the size, filled from `map` a few keys per commit while the current
    /// one is crowded: growing in one go paused the commit that crossed the threshold, and
    /// every task waiting on the keydir lock with it, for the whole map (30 ms at 230k keys,
    /// the executor stalls of #12).
    growing: Option<Growing>,
}

/// See [`Keydir::growing`].
struct Growing {
    table: NewestTable,
    /// Buckets of `table` written so far ([`NewestTable::prefault`]): nothing is set in the
    /// table (neither copied keys nor new commits) until all of them are.
    prefaulted: usize,
    /// Every key below it has been copied into `table` (`None`: none yet). A version
    /// committed meanwhile is set in both tables, so `table` is right for every key below.
    copied_below: Option<Key>,
}

impl Growing {
    /// Every page of the table is written: keys may be set in it.
    fn ready(&self) -> bool {
        self.prefaulted >= self.table.buckets()
    }
}

/// Keys copied into a growing table per commit, on top of a few per key the commit wrote:
/// about 50 µs of work. The copy outpaces the map's growth (at most a quarter of the keys
/// it copies), so it ends long before the new table (twice the slots) is crowded in turn.
const GROW_STEP: usize = 512;

/// Buckets of a growing table written per commit before any key is copied into it
/// ([`NewestTable::prefault`]): 1344 buckets are 32 pages, about 40 µs of page faults. A
/// table for a million keys (2^19 buckets) is ready after 390 commits.
const PREFAULT_STEP: usize = 1344;

/// `slot byte + key`, the keydir's key.
pub(crate) fn slot_key(slot: Slot, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len().saturating_add(1));
    k.push(slot);
    k.extend_from_slice(key);
    k
}

/// Lower and upper bound of a keydir range.
type Bounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The keydir bounds of `range` within `slot`; `None` if the range is empty.
fn slot_bounds(slot: Slot, range: &KeyRange) -> Option<Bounds> {
    if range.is_empty() {
        return None;
    }
    let start = match &range.start {
        Bound::Included(k) => Bound::Included(slot_key(slot, k)),
        Bound::Excluded(k) => Bound::Excluded(slot_key(slot, k)),
        Bound::Unbounded => Bound::Included(vec![slot]),
    };
    let end = match &range.end {
        Bound::Included(k) => Bound::Included(slot_key(slot, k)),
        Bound::Excluded(k) => Bound::Excluded(slot_key(slot, k)),
        Bound::Unbounded => match slot.checked_add(1) {
            Some(next) => Bound::Excluded(vec![next]),
            None => Bound::Unbounded,
        },
    };
    // `BTreeMap::range` panics on inverted bounds: rule them out here, whatever the input.
    let ok = match (&start, &end) {
        (Bound::Included(s), Bound::Included(e)) => s <= e,
        (Bound::Included(s), Bound::Excluded(e)) | (Bound::Excluded(s), Bound::Included(e)) => {
            s <= e
        }
        (Bound::Excluded(s), Bound::Excluded(e)) => s < e,
        _ => true,
    };
    ok.then_some((start, end))
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Keydir {
    /// Builds the keydir from recovered runs of entries, one run per segment in replay order.
    /// Within a run, the versions of a key must be oldest first (file order); runs that are
    /// not in key order yet (replayed logs) are sorted, stably. Hint files are in key order
    /// already, so reopening costs one k-way merge, not a sort of every key.
    pub fn from_runs(runs: Vec<Run>) -> Self {
        let total = runs.iter().map(Run::len).sum();
        let mut grouped: Vec<(Key, Versions)> = Vec::with_capacity(total);
        let mut add = |key: Key, loc: Loc| match grouped.last_mut() {
            Some((k, v)) if *k == key => v.push(loc),
            _ => grouped.push((key, Versions::One(loc))),
        };
        // A k-way merge that streams from one run for as long as it holds the smallest key:
        // runs that do not overlap (merged segments) cost one comparison per entry.
        let mut iters: Vec<Run> = runs.into_iter().filter(|r| r.len() > 0).collect();
        let mut heap = BinaryHeap::with_capacity(iters.len());
        for (run, it) in iters.iter_mut().enumerate() {
            if let Some((key, loc)) = it.next() {
                heap.push(Reverse(Head { key, run, loc }));
            }
        }
        while let Some(Reverse(Head { key, run, loc })) = heap.pop() {
            add(key, loc);
            let Some(it) = iters.get_mut(run) else {
                continue;
            };
            // The whole rest of the run comes first (always, for the last run): taken without
            // comparing each entry to the other runs.
            let rest_first = it.last_key().is_none_or(|last| {
                heap.peek().is_none_or(|Reverse(top)| {
                    (last.as_bytes(), run) < (top.key.as_bytes(), top.run)
                })
            });
            if rest_first {
                for (key, loc) in it.by_ref() {
                    add(key, loc);
                }
                continue;
            }
            for (key, loc) in it.by_ref() {
                // Ties go to the older run (smaller index): a key's versions stay in order.
                let first = heap.peek().is_none_or(|Reverse(top)| {
                    (key.as_bytes(), run) < (top.key.as_bytes(), top.run)
                });
                if first {
                    add(key, loc);
                } else {
                    heap.push(Reverse(Head { key, run, loc }));
                    break;
                }
            }
        }
        // One pass over the keys for the counts and the newest-version table: the keys are
        // hashed here, and the table is filled on another thread (where there is one) while
        // the keys move into the map.
        let mut counts = Counts::default();
        let staged = NewestTable::stage(
            grouped.len(),
            grouped.iter_mut().filter_map(|entry| {
                // Defensive: versions are expected in order already; keep them so regardless.
                if let (_, Versions::Many(list)) = entry
                    && !list.is_sorted_by_key(|l| l.seq)
                {
                    list.sort_by_key(|l| l.seq);
                    list.dedup_by_key(|l| l.seq);
                }
                let (k, v): &(Key, Versions) = entry;
                counts.add(v, true);
                Some((k.as_bytes(), v.newest()?))
            }),
        );
        let (newest, map) =
            kv_engine_kit::parallel::join(|| staged.fill(), || grouped.into_iter().collect());
        // Sorted and unique: the bulk build only checks the order.
        Keydir {
            map,
            counts,
            newest,
            growing: None,
        }
    }

    /// Refills the newest-version table from the map, sized for its keys.
    fn rebuild_newest(&mut self) {
        let built = NewestTable::build(
            self.map.len(),
            self.map
                .iter()
                .filter_map(|(k, v)| Some((k.as_bytes(), v.newest()?))),
        );
        let old = std::mem::replace(&mut self.newest, built);
        kv_api::drop_off_executor((old, self.growing.take()));
    }

    /// Copies the next keys into the growing newest-version table (starting one when the
    /// current table is crowded), and puts it in place once every key is in.
    fn grow_newest(&mut self, wrote: usize) {
        if self.growing.is_none() {
            if !self.newest.is_crowded(self.map.len()) {
                return;
            }
            self.growing = Some(Growing {
                // Twice the slots, as a one-go rebuild at this size had.
                table: NewestTable::with_capacity(self.map.len()),
                prefaulted: 0,
                copied_below: None,
            });
        }
        let Some(g) = &mut self.growing else {
            return;
        };
        if !g.ready() {
            // At least a bucket per key written: the new table (4x the keys it starts
            // with in slots) is ready long before it is crowded in turn.
            g.prefaulted = g
                .table
                .prefault(g.prefaulted, PREFAULT_STEP.saturating_add(wrote));
            return;
        }
        let mut rest = match &g.copied_below {
            None => self.map.range::<Key, _>(..),
            Some(k) => self.map.range::<Key, _>(k..),
        };
        let step = GROW_STEP.saturating_add(wrote.saturating_mul(4));
        g.table.set_all(
            rest.by_ref()
                .take(step)
                .filter_map(|(k, v)| Some((k.as_bytes(), v.newest()?))),
        );
        match rest.next() {
            Some((next, _)) => g.copied_below = Some(next.clone()),
            None => {
                if let Some(done) = self.growing.take() {
                    // The old table is MiBs, freed under the keydir lock otherwise.
                    kv_api::drop_off_executor(std::mem::replace(&mut self.newest, done.table));
                }
            }
        }
    }

    /// Counters.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Adds a version of `key`, newer than every version it has.
    #[cfg(test)]
    pub fn insert(&mut self, key: &Key, loc: Loc) {
        self.insert_all(&[(key.clone(), loc)]);
    }

    /// Adds the versions of one commit, each newer than every version its key has.
    pub fn insert_all(&mut self, entries: &[(Key, Loc)]) {
        for (key, loc) in entries {
            // One descent per key (a clone of an inline key is a copy of 24 bytes).
            match self.map.entry(key.clone()) {
                Entry::Occupied(mut o) => {
                    let v = o.get_mut();
                    self.counts.add(v, false);
                    v.push(*loc);
                    self.counts.add(v, true);
                }
                Entry::Vacant(slot) => {
                    let v = slot.insert(Versions::One(*loc));
                    self.counts.add(v, true);
                }
            }
        }
        self.newest
            .set_all(entries.iter().map(|(k, l)| (k.as_bytes(), l)));
        if let Some(g) = self.growing.as_mut().filter(|g| g.ready()) {
            g.table
                .set_all(entries.iter().map(|(k, l)| (k.as_bytes(), l)));
        }
        self.grow_newest(entries.len());
    }

    /// The newest version of `key` if it is a value visible at `at` and the newest-version
    /// table holds it: a guess, which may belong to another key (see [`crate::newest`]); the
    /// caller checks the record and otherwise asks [`Keydir::get`].
    pub fn newest_guess(&self, key: &Key, at: u64) -> Option<Loc> {
        match &self.growing {
            Some(g) if g.copied_below.as_ref().is_some_and(|below| key < below) => {
                g.table.get(key.as_bytes(), at)
            }
            _ => self.newest.get(key.as_bytes(), at),
        }
    }

    /// Sets the newest-version table's slot of `key` to `loc`, right or wrong.
    #[cfg(test)]
    pub fn set_newest_for_test(&mut self, key: &Key, loc: &Loc) {
        self.newest.set(key.as_bytes(), loc);
        if let Some(g) = self.growing.as_mut().filter(|g| g.ready()) {
            g.table.set(key.as_bytes(), loc);
        }
    }

    /// Every version of `key`, oldest first.
    pub fn all(&self, key: &Key) -> &[Loc] {
        self.map.get(key).map_or(&[], Versions::as_slice)
    }

    /// The newest version of `key` with `seq <= at`.
    pub fn get(&self, key: &Key, at: u64) -> Option<Loc> {
        self.map.get(key)?.at(at).copied()
    }

    /// The newest version of `key` with `seq <= at` that is not a removal.
    pub fn get_unremoved(&self, key: &Key, at: u64) -> Option<Loc> {
        self.all(key)
            .iter()
            .rev()
            .find(|l| l.seq <= at && !l.is_removal())
            .copied()
    }

    /// Every version of every key, in key order (for `verify`).
    pub fn entries(&self) -> impl Iterator<Item = (&Key, &Loc)> {
        self.map
            .iter()
            .flat_map(|(k, v)| v.as_slice().iter().map(move |l| (k, l)))
    }

    /// The version of `key` written by commit `seq`.
    pub fn exact(&self, key: &Key, seq: u64) -> Option<Loc> {
        self.all(key).iter().find(|l| l.seq == seq).copied()
    }

    /// Up to `limit` live entries (key without its slot byte, location) of `range` in `slot`
    /// at `at`. The keys are copied once, into what the scan returns.
    pub fn scan(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        reverse: bool,
        limit: usize,
    ) -> Vec<(Vec<u8>, Loc)> {
        let Some((start, end)) = slot_bounds(slot, range) else {
            return Vec::new();
        };
        let iter = self.map.range::<[u8], _>((as_ref(&start), as_ref(&end)));
        let live = |(k, v): (&Key, &Versions)| match v.at(at) {
            Some(l) if !l.is_removal() => Some((k.user_key().to_vec(), *l)),
            _ => None,
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        if reverse {
            out.extend(iter.rev().filter_map(live).take(limit));
        } else {
            out.extend(iter.filter_map(live).take(limit));
        }
        out
    }

    /// Up to `limit` keys of `range` in `slot` with a version at or below `at` (key without
    /// its slot byte), each with those versions oldest first, removals included.
    pub fn scan_versions(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<Version>)> {
        let Some((start, end)) = slot_bounds(slot, range) else {
            return Vec::new();
        };
        let iter = self.map.range::<[u8], _>((as_ref(&start), as_ref(&end)));
        iter.filter_map(|(k, v)| {
            let versions: Vec<Version> = v
                .as_slice()
                .iter()
                .filter(|l| l.seq <= at)
                .map(Loc::version)
                .collect();
            (!versions.is_empty()).then(|| (k.user_key().to_vec(), versions))
        })
        .take(limit)
        .collect()
    }

    /// Merge planning: from the key after `cursor`, visits up to `max_keys` keys and returns
    /// the sealed versions to rewrite (key order, versions of a key oldest first), plus the
    /// last key visited (`None` at the end of the keydir).
    pub fn merge_batch(
        &self,
        cursor: Option<&[u8]>,
        rule: &MergeRule<'_>,
        max_keys: usize,
    ) -> (Vec<(Key, Loc)>, Option<Key>) {
        let lower = cursor.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        let mut last = None;
        for (k, v) in self
            .map
            .range::<[u8], _>((lower, Bound::Unbounded))
            .take(max_keys)
        {
            out.extend(rule.kept(k, v.as_slice()).map(|l| (k.clone(), *l)));
            last = Some(k);
        }
        (out, last.cloned())
    }

    /// Applies a finished merge: for every key with sealed versions, drops those the rule
    /// drops and moves those it keeps to `moved` (the kept versions in the order
    /// [`Keydir::merge_batch`] produced them, at their new places). Keys left without versions
    /// disappear. Returns an error message if `moved` does not match the rule (a bug): the
    /// keydir is then unusable and the caller must stop writing.
    pub fn apply_merge(&mut self, rule: &MergeRule<'_>, moved: &[Loc]) -> Result<(), String> {
        let mut next = moved.iter();
        let mut error = None;
        let mut counts = Counts::default();
        self.map.retain(|k, v| {
            if error.is_some() || !rule.touches(v.as_slice()) {
                counts.add(v, true);
                return true;
            }
            let out = {
                let versions = v.as_slice();
                let mut kept = rule.kept(k, versions).peekable();
                let mut out = Vec::with_capacity(versions.len());
                for l in versions {
                    if !rule.is_sealed(l) {
                        out.push(*l);
                    } else if kept.peek().is_some_and(|k| k.seq == l.seq) {
                        kept.next();
                        match next.next() {
                            Some(m) if m.seq == l.seq => out.push(*m),
                            _ => {
                                error =
                                    Some(format!("merge output out of step at version {}", l.seq))
                            }
                        }
                    }
                }
                out
            };
            match Versions::from_vec(out) {
                Some(nv) => {
                    *v = nv;
                    counts.add(v, true);
                    true
                }
                None => false,
            }
        });
        self.counts = counts;
        // Versions moved: every place in the table may be stale.
        self.rebuild_newest();
        if next.next().is_some() {
            error.get_or_insert_with(|| "merge output has extra versions".into());
        }
        error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(seq: u64, file: u32, removal: bool) -> Loc {
        Loc::new(seq, seq * 10, file, seq * 100, 50, removal)
    }

    #[test]
    fn loc_is_small_and_packs_flags() {
        assert_eq!(std::mem::size_of::<Loc>(), 32);
        assert!(std::mem::size_of::<Versions>() <= 40);
        let l = Loc::new(1, 2, MAX_FILE_ID, 3, 4, true);
        assert_eq!((l.file(), l.is_removal()), (MAX_FILE_ID, true));
        let l = l.moved(7, 8, 9);
        assert_eq!((l.file(), l.is_removal(), l.offset, l.len), (7, true, 8, 9));
    }

    #[test]
    fn visibility_and_counts() {
        let mut kd = Keydir::default();
        kd.insert(&Key::from_bytes(b"\x00a"), loc(1, 1, false));
        kd.insert(&Key::from_bytes(b"\x00a"), loc(2, 1, true));
        kd.insert(&Key::from_bytes(b"\x00a"), loc(3, 1, false));
        kd.insert(&Key::from_bytes(b"\x00b"), loc(3, 1, false));
        assert_eq!(kd.get(&Key::from_bytes(b"\x00a"), 0), None);
        assert_eq!(
            kd.get(&Key::from_bytes(b"\x00a"), 2).map(|l| l.seq),
            Some(2)
        );
        assert_eq!(
            kd.get_unremoved(&Key::from_bytes(b"\x00a"), 2)
                .map(|l| l.seq),
            Some(1)
        );
        assert_eq!(
            kd.exact(&Key::from_bytes(b"\x00a"), 2)
                .map(|l| l.is_removal()),
            Some(true)
        );
        assert_eq!(kd.exact(&Key::from_bytes(b"\x00a"), 4), None);
        assert_eq!(
            kd.counts(),
            Counts {
                live_keys: 2,
                versions: 4,
                live_bytes: 100
            }
        );
        // Rebuilding from runs (sorted or not) gives the same answers.
        let k = Key::from_bytes;
        let runs = vec![
            vec![(k(b"\x00a"), loc(1, 1, false))],
            vec![
                (k(b"\x00b"), loc(3, 1, false)),
                (k(b"\x00a"), loc(2, 1, true)),
            ],
            vec![],
            vec![(k(b"\x00a"), loc(3, 1, false))],
        ];
        let kd2 = Keydir::from_runs(runs.into_iter().map(Run::sorted).collect());
        assert_eq!(kd2.counts(), kd.counts());
        assert_eq!(
            kd2.all(&Key::from_bytes(b"\x00a")),
            kd.all(&Key::from_bytes(b"\x00a"))
        );
        assert_eq!(
            kd2.all(&Key::from_bytes(b"\x00b")),
            kd.all(&Key::from_bytes(b"\x00b"))
        );
        let one = Keydir::from_runs(vec![Run::sorted(vec![
            (k(b"\x00b"), loc(1, 1, false)),
            (k(b"\x00a"), loc(2, 1, false)),
        ])]);
        assert_eq!(one.scan(0, &KeyRange::all(), 9, false, 9).len(), 2);
    }

    /// Runs that overlap, nest, repeat keys or lie apart (as after a merge) build the same
    /// keydir as inserting their entries in replay order.
    #[test]
    fn from_runs_matches_inserts_in_replay_order() {
        let mut rng = kv_conformance::Rng::new(0x2545_f491_4f6c_dd1d);
        let mut next = |n: u64| rng.below(n);
        for round in 0..200u64 {
            let mut seq = 0;
            let runs: Vec<(bool, Vec<(Key, Loc)>)> = (0..1 + next(5))
                .map(|r| {
                    let (base, span) = match round % 3 {
                        0 => (0, 50),             // overlapping
                        1 => (r * 100, 50),       // apart, in order
                        _ => ((4 - r) * 100, 50), // apart, in reverse
                    };
                    let mut run: Vec<(Key, Loc)> = (0..next(40))
                        .map(|_| {
                            seq += 1;
                            let k = (base + next(span)) as u32;
                            (Key::new(0, &k.to_be_bytes()), loc(seq, 1, next(4) == 0))
                        })
                        .collect();
                    let hinted = next(3);
                    if hinted > 0 {
                        // Hint files are in key order; the versions of a key stay in order.
                        run.sort_by(|a, b| a.0.cmp(&b.0));
                    }
                    (hinted == 2, run)
                })
                .collect();
            let mut inserted = Keydir::default();
            for (key, l) in runs.iter().flat_map(|(_, run)| run) {
                inserted.insert(key, *l);
            }
            // Some runs are read from hints as the open reads them, decoded as they are taken.
            let store = kv_engine_kit::header::StoreId::from_bytes([7; 16]);
            let runs = runs.into_iter().map(|(hinted, run)| {
                if !hinted {
                    return Run::sorted(run);
                }
                let buf = crate::hint::encode(store, 1, 1 << 40, (seq, 0), &run);
                let (hint, _) = HintRun::check(buf, store, 1, 1 << 40).expect("a hint");
                Run::Hint(hint)
            });
            let built = Keydir::from_runs(runs.collect());
            assert_eq!(built.counts(), inserted.counts(), "round {round}");
            for k in 0..500u32 {
                let key = Key::new(0, &k.to_be_bytes());
                assert_eq!(built.all(&key), inserted.all(&key), "round {round} key {k}");
                if let Some(guess) = built.newest_guess(&key, u64::MAX) {
                    let newest = built.all(&key).last().copied();
                    assert_eq!(
                        newest.map(|l| (l.seq, l.offset)),
                        Some((guess.seq, guess.offset))
                    );
                }
            }
        }
    }

    /// A place as the newest-version table keeps it (no commit time).
    fn place_of(l: &Loc) -> (u64, u64, u32, u32, bool) {
        (l.seq, l.offset, l.len, l.file(), l.is_removal())
    }

    /// The newest-version table grows a few keys per commit, never in one go, and every
    /// guess it gives on the way is a key's newest place or another key's (never a stale
    /// place of the same key); most keys are held throughout.
    #[test]
    fn newest_table_grows_in_steps_and_never_goes_stale() {
        let mut kd = Keydir::default();
        let mut rng = kv_conformance::Rng::new(7);
        let mut seq = 0u64;
        let mut grown = 0;
        let mut longest_step = 0;
        let (mut growing_for, mut longest_growth) = (0, 0);
        for round in 0..40_000u64 {
            // Mostly new keys, some updates and removals of older ones.
            let id = if round % 4 == 3 {
                rng.below(round)
            } else {
                round
            };
            let key = Key::from_bytes(&[&[0u8][..], &id.to_be_bytes()].concat());
            seq += 1;
            let was_growing = kd.growing.is_some();
            // Keys are copied only once the new table's pages are written.
            let was_copying = kd.growing.as_ref().is_some_and(Growing::ready);
            let before = kd.growing.as_ref().and_then(|g| g.copied_below.clone());
            kd.insert_all(&[(key, loc(seq, 1, round % 16 == 5))]);
            if was_growing && kd.growing.is_none() {
                grown += 1;
                longest_growth = longest_growth.max(growing_for);
            }
            growing_for = if kd.growing.is_some() {
                growing_for + 1
            } else {
                0
            };
            if let Some(g) = kd.growing.as_ref().filter(|_| was_copying) {
                let copied = kd
                    .map
                    .range::<Key, _>((
                        before.as_ref().map_or(Bound::Unbounded, Bound::Included),
                        g.copied_below
                            .as_ref()
                            .map_or(Bound::Unbounded, Bound::Excluded),
                    ))
                    .count();
                longest_step = longest_step.max(copied);
            }
            if round % 997 == 0 || kd.growing.is_some() && round % 61 == 0 {
                let (mut held, mut live) = (0, 0);
                for (k, v) in &kd.map {
                    let place = place_of;
                    let newest = v.newest().map(place);
                    if newest.is_some_and(|l| !l.4) {
                        live += 1;
                    }
                    if let Some(guess) = kd.newest_guess(k, u64::MAX) {
                        let guess = place(&guess);
                        if v.as_slice().iter().any(|l| l.seq == guess.0) {
                            assert_eq!(Some(guess), newest, "stale guess for {k:?}");
                        }
                        if Some(guess) == newest {
                            held += 1;
                        }
                    }
                }
                // As many as a table built in one go from the same map holds (the table is
                // lossy by design: full buckets forget keys).
                let mut reference = Keydir {
                    map: kd.map.clone(),
                    ..Keydir::default()
                };
                reference.rebuild_newest();
                let reference_held = reference
                    .map
                    .iter()
                    .filter(|(k, v)| {
                        let newest = v.newest().map(place_of);
                        newest.is_some()
                            && reference.newest_guess(k, u64::MAX).as_ref().map(place_of) == newest
                    })
                    .count();
                assert!(
                    held * 10 >= reference_held * 9 && held <= live,
                    "{held} of {live} live keys held, {reference_held} by a table built in one go"
                );
            }
        }
        assert!(grown >= 5, "the table grew {grown} times");
        assert!(
            longest_growth > 10,
            "growth took at most {longest_growth} commits"
        );
        assert!(
            longest_step <= GROW_STEP + 4,
            "one commit copied {longest_step} keys"
        );
    }

    #[test]
    fn scan_stays_in_its_slot() {
        let mut kd = Keydir::default();
        for (slot, k) in [
            (0u8, &b"a"[..]),
            (1, b""),
            (1, b"a"),
            (1, b"b"),
            (2, b"a"),
            (255, b"z"),
        ] {
            kd.insert(&Key::new(slot, k), loc(1, 1, false));
        }
        kd.insert(&Key::new(1, b"b"), loc(2, 1, true));
        let keys = |slot, r: &KeyRange, rev, lim| -> Vec<Vec<u8>> {
            kd.scan(slot, r, 10, rev, lim)
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        assert_eq!(
            keys(1, &KeyRange::all(), false, 10),
            vec![b"".to_vec(), b"a".to_vec()]
        );
        assert_eq!(keys(1, &KeyRange::all(), true, 1), vec![b"a".to_vec()]);
        assert_eq!(keys(255, &KeyRange::all(), false, 10), vec![b"z".to_vec()]);
        // At version 1 the removal of b is not visible yet.
        assert_eq!(kd.scan(1, &KeyRange::all(), 1, false, 10).len(), 3);
        let inverted = KeyRange {
            start: Bound::Excluded(b"b".to_vec()),
            end: Bound::Excluded(b"b".to_vec()),
        };
        assert!(keys(1, &inverted, false, 10).is_empty());
        let to_empty = KeyRange {
            start: Bound::Unbounded,
            end: Bound::Excluded(Vec::new()),
        };
        assert!(keys(1, &to_empty, false, 10).is_empty());
    }

    #[test]
    fn merge_rule_and_apply() {
        let sealed: HashSet<u32> = [1, 2].into();
        let rule = MergeRule {
            sealed: &sealed,
            keep: kv_engine_kit::retention::KeepRule::new(3, &kv_api::Options::default(), 0),
        };
        let mut kd = Keydir::default();
        // a: values 1, 2 (both <= h): keep 2. b: removal at 3 <= h: drop all.
        // c: value 1, removal 4 > h, value 5 in a newer file: keep 1 and 4, leave 5.
        for (k, l) in [
            (&b"\x00a"[..], loc(1, 1, false)),
            (b"\x00a", loc(2, 2, false)),
            (b"\x00b", loc(1, 1, false)),
            (b"\x00b", loc(3, 2, true)),
            (b"\x00c", loc(1, 1, false)),
            (b"\x00c", loc(4, 2, true)),
            (b"\x00c", loc(5, 3, false)),
            (b"\x00d", loc(6, 3, false)),
        ] {
            kd.insert(&Key::from_bytes(k), l);
        }
        let (batch, last) = kd.merge_batch(None, &rule, 2);
        assert_eq!(
            batch.iter().map(|(_, l)| l.seq).collect::<Vec<_>>(),
            vec![2]
        );
        let (batch2, last2) = kd.merge_batch(last.as_deref(), &rule, 10);
        assert_eq!(last2.as_deref(), Some(&b"\x00d"[..]));
        let kept: Vec<(Vec<u8>, u64)> = batch2.iter().map(|(k, l)| (k.to_vec(), l.seq)).collect();
        assert_eq!(kept, vec![(b"\x00c".to_vec(), 1), (b"\x00c".to_vec(), 4)]);
        let moved: Vec<Loc> = batch
            .iter()
            .chain(&batch2)
            .map(|(_, l)| l.moved(9, l.seq, 60))
            .collect();
        kd.apply_merge(&rule, &moved).expect("apply");
        assert_eq!(
            kd.all(&Key::from_bytes(b"\x00a")),
            &[loc(2, 9, false).moved(9, 2, 60)]
        );
        assert!(kd.all(&Key::from_bytes(b"\x00b")).is_empty());
        let c: Vec<(u64, u32)> = kd
            .all(&Key::from_bytes(b"\x00c"))
            .iter()
            .map(|l| (l.seq, l.file()))
            .collect();
        assert_eq!(c, vec![(1, 9), (4, 9), (5, 3)]);
        assert_eq!(kd.counts().versions, 5);
        assert_eq!(kd.counts().live_keys, 3);
        // Out-of-step output is reported, not applied silently.
        let mut kd2 = Keydir::default();
        kd2.insert(&Key::from_bytes(b"\x00a"), loc(1, 1, false));
        assert!(kd2.apply_merge(&rule, &[]).is_err());
    }
}
