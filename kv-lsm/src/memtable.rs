//! The memtable: recent commits in memory, ordered by `(user key, seq descending)`.
//!
//! One active memtable takes commits; when it passes `Options::memtable_size` it is frozen
//! (immutable, still readable) and a new one starts, with a new WAL file. A frozen memtable is
//! flushed to a level-0 table in the background. The map sits under a `std::sync::RwLock` that
//! is only ever held for a synchronous step, never across an `.await`: iterators copy entries
//! out in batches ([`MemBatch`], growing from a few entries, so a short scan copies little)
//! and resume after the last entry they copied.
//!
//! Keys carry their first 8 bytes inline ([`IKey`]), so most comparisons of a map descent
//! are one integer comparison instead of a `memcmp` behind a pointer; lookups compare a
//! borrowed probe ([`KeyView`]) against the map's keys and allocate nothing.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};

use kv_api::{Slot, Version, Write};

use crate::key::{EntryRef, Seek, prefix};

/// What the map compares: its own keys ([`IKey`]) and borrowed lookup probes ([`Probe`]).
trait KeyView {
    /// `(prefix, user key, seq)`.
    fn parts(&self) -> (u64, &[u8], u64);
}

/// Internal key order: user key ascending (prefix first), then seq descending.
fn cmp_views(a: &dyn KeyView, b: &dyn KeyView) -> Ordering {
    let (ap, ak, aseq) = a.parts();
    let (bp, bk, bseq) = b.parts();
    ap.cmp(&bp)
        .then_with(|| ak.cmp(bk))
        .then_with(|| bseq.cmp(&aseq))
}

impl PartialEq for dyn KeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        cmp_views(self, other) == Ordering::Equal
    }
}
impl Eq for dyn KeyView + '_ {}
impl PartialOrd for dyn KeyView + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for dyn KeyView + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_views(self, other)
    }
}

/// An internal key as the memtable stores it.
#[derive(Debug, Clone)]
struct IKey {
    prefix: u64,
    ukey: Box<[u8]>,
    seq: u64,
}

impl IKey {
    fn new(slot: Slot, key: &[u8], seq: u64) -> Self {
        let ukey = [std::slice::from_ref(&slot), key].concat();
        IKey {
            prefix: prefix(&ukey),
            ukey: ukey.into_boxed_slice(),
            seq,
        }
    }
}

impl KeyView for IKey {
    fn parts(&self) -> (u64, &[u8], u64) {
        (self.prefix, &self.ukey, self.seq)
    }
}

impl PartialEq for IKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for IKey {}
impl PartialOrd for IKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for IKey {
    fn cmp(&self, other: &Self) -> Ordering {
        // Monomorphic copy of `cmp_views`: inserts compare owned keys only.
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.ukey.cmp(&other.ukey))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<'a> Borrow<dyn KeyView + 'a> for IKey {
    fn borrow(&self) -> &(dyn KeyView + 'a) {
        self
    }
}

/// A borrowed internal key to look up.
struct Probe<'a> {
    prefix: u64,
    ukey: &'a [u8],
    seq: u64,
}

impl<'a> Probe<'a> {
    fn new(ukey: &'a [u8], seq: u64) -> Self {
        Probe {
            prefix: prefix(ukey),
            ukey,
            seq,
        }
    }
}

impl KeyView for Probe<'_> {
    fn parts(&self) -> (u64, &[u8], u64) {
        (self.prefix, self.ukey, self.seq)
    }
}

#[derive(Debug, Clone)]
struct Value {
    time_ms: u64,
    value: Option<Vec<u8>>,
}

/// Fixed per-entry overhead counted towards the memtable size (map node, key, value headers).
const ENTRY_OVERHEAD: usize = 48;

/// A memtable. See the module docs.
pub(crate) struct Memtable {
    map: RwLock<BTreeMap<IKey, Value>>,
    size: AtomicUsize,
    first_wal: u64,
    last_seq: AtomicU64,
    last_time: AtomicU64,
}

fn entry_ref<'a>(k: &'a IKey, v: &'a Value) -> EntryRef<'a> {
    EntryRef {
        ukey: &k.ukey,
        seq: k.seq,
        time_ms: v.time_ms,
        value: v.value.as_deref(),
        blob: false,
    }
}

/// Where a batch read starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ReadFrom<'a> {
    /// At a position.
    Seek(Seek<'a>),
    /// Right after (forward) or before (reverse) the internal key `(ukey, seq)`.
    After(&'a [u8], u64),
}

/// The range bounds for reading from `from` in a direction; `None` if nothing lies that way.
fn bounds<'a>(from: ReadFrom<'a>, reverse: bool) -> Option<Bound<Probe<'a>>> {
    let (lo, hi) = match from {
        ReadFrom::Seek(Seek::Start) => (Bound::Unbounded, None),
        ReadFrom::Seek(Seek::End) => (Bound::Unbounded, Some(Bound::Unbounded)),
        // Before the first entry of `k`: (k, MAX) is the smallest internal key of `k`.
        ReadFrom::Seek(Seek::Ge(k)) => (
            Bound::Included(Probe::new(k, u64::MAX)),
            Some(Bound::Excluded(Probe::new(k, u64::MAX))),
        ),
        // After the last entry of `k`: (k, 0) is the largest internal key of `k`.
        ReadFrom::Seek(Seek::Gt(k)) => (
            Bound::Excluded(Probe::new(k, 0)),
            Some(Bound::Included(Probe::new(k, 0))),
        ),
        ReadFrom::Seek(Seek::At(k, s)) => (
            Bound::Included(Probe::new(k, s)),
            Some(Bound::Excluded(Probe::new(k, s))),
        ),
        ReadFrom::After(k, s) => (
            Bound::Excluded(Probe::new(k, s)),
            Some(Bound::Excluded(Probe::new(k, s))),
        ),
    };
    match (reverse, from) {
        (false, ReadFrom::Seek(Seek::End)) => None,
        (false, _) => Some(lo),
        (true, ReadFrom::Seek(Seek::Start)) => None,
        (true, _) => hi,
    }
}

fn as_view<'b>(b: &'b Bound<Probe<'_>>) -> Bound<&'b dyn KeyView> {
    match b {
        Bound::Included(p) => Bound::Included(p as &dyn KeyView),
        Bound::Excluded(p) => Bound::Excluded(p as &dyn KeyView),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// One entry of a [`MemBatch`]: key and value as ranges of its arena.
#[derive(Debug, Clone, Copy)]
struct Stored {
    key: (usize, usize),
    seq: u64,
    time_ms: u64,
    value: Option<(usize, usize)>,
}

/// Entries copied out of a memtable, key and value bytes in one reused arena (no allocation
/// per entry).
#[derive(Debug, Default)]
pub(crate) struct MemBatch {
    arena: Vec<u8>,
    entries: Vec<Stored>,
    /// The read stopped at its limit: more entries may follow.
    more: bool,
}

impl MemBatch {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the last read may have left entries behind.
    pub fn more(&self) -> bool {
        self.more
    }

    /// Entry `i`.
    pub fn get(&self, i: usize) -> Option<EntryRef<'_>> {
        let e = self.entries.get(i)?;
        let bytes = |(s, end): (usize, usize)| self.arena.get(s..end).unwrap_or_default();
        Some(EntryRef {
            ukey: bytes(e.key),
            seq: e.seq,
            time_ms: e.time_ms,
            value: e.value.map(bytes),
            blob: false,
        })
    }

    fn push(&mut self, e: EntryRef<'_>) {
        let mut put = |b: &[u8]| {
            let start = self.arena.len();
            self.arena.extend_from_slice(b);
            (start, self.arena.len())
        };
        let key = put(e.ukey);
        let value = e.value.map(put);
        self.entries.push(Stored {
            key,
            seq: e.seq,
            time_ms: e.time_ms,
            value,
        });
    }
}

/// Bytes a batch read copies before it stops (at least one entry), so a batch of large values
/// stays small.
const BATCH_BYTES: usize = 1 << 20;

impl Memtable {
    /// An empty memtable whose commits are logged from WAL file `first_wal` on.
    pub fn new(first_wal: u64) -> Self {
        Memtable {
            map: RwLock::new(BTreeMap::new()),
            size: AtomicUsize::new(0),
            first_wal,
            last_seq: AtomicU64::new(0),
            last_time: AtomicU64::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<IKey, Value>> {
        self.map.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<IKey, Value>> {
        self.map.write()
    }

    /// The first WAL file holding its commits: older WAL files are not needed once it is the
    /// oldest memtable.
    pub fn first_wal(&self) -> u64 {
        self.first_wal
    }

    /// Approximate bytes held.
    pub fn size(&self) -> usize {
        self.size.load(AtomicOrdering::Acquire)
    }

    /// True if it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// The last commit applied (also commits without writes), [`Version::ZERO`] if none.
    pub fn last_version(&self) -> Version {
        Version::new(
            self.last_seq.load(AtomicOrdering::Acquire),
            self.last_time.load(AtomicOrdering::Acquire),
        )
    }

    /// Inserts `writes` of commit `version` under one lock acquisition.
    fn insert(
        &self,
        version: Version,
        writes: impl IntoIterator<Item = (Slot, impl AsRef<[u8]>, Option<Vec<u8>>)>,
    ) {
        let mut added = 0;
        let mut entry = |(slot, key, value): (Slot, _, Option<Vec<u8>>)| {
            let key: &[u8] = AsRef::as_ref(&key);
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "bytes of keys and values this commit holds in memory, plus a constant \
                          per entry: far below usize::MAX"
            )]
            {
                added += 1 + key.len() + value.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD;
            }
            let v = Value {
                time_ms: version.time_ms(),
                value,
            };
            (IKey::new(slot, key, version.seq()), v)
        };
        let mut writes = writes.into_iter();
        match (writes.next(), writes.size_hint().1) {
            (None, _) => {}
            (Some(first), Some(0)) => {
                let (k, v) = entry(first);
                self.write().insert(k, v);
            }
            (Some(first), _) => {
                // Keys are built before the lock is taken: readers wait less.
                let mut entries = Vec::with_capacity(writes.size_hint().0.saturating_add(1));
                entries.push(entry(first));
                entries.extend(writes.map(&mut entry));
                let mut map = self.write();
                for (k, v) in entries {
                    map.insert(k, v);
                }
            }
        }
        self.size.fetch_add(added, AtomicOrdering::AcqRel);
        self.last_seq
            .fetch_max(version.seq(), AtomicOrdering::AcqRel);
        self.last_time
            .fetch_max(version.time_ms(), AtomicOrdering::AcqRel);
    }

    /// Applies the writes of commit `version`, copying them (WAL replay).
    pub fn apply<'a>(
        &self,
        version: Version,
        writes: impl IntoIterator<Item = (Slot, &'a [u8], Option<&'a [u8]>)>,
    ) {
        self.insert(
            version,
            writes
                .into_iter()
                .map(|(slot, key, value)| (slot, key, value.map(<[u8]>::to_vec))),
        );
    }

    /// Applies the writes of a committing transaction, moving its values in (the commit
    /// pipeline needs only the keys afterwards): a removal stays `None`, a value is taken.
    pub fn apply_writes(&self, version: Version, writes: &mut [Write]) {
        self.insert(
            version,
            writes.iter_mut().map(|w| (w.slot, &w.key, w.value.take())),
        );
    }

    /// The newest version of `ukey` with `seq <= at`, passed to `f`.
    pub fn get<T>(&self, ukey: &[u8], at: u64, f: impl FnOnce(EntryRef<'_>) -> T) -> Option<T> {
        let map = self.read();
        if map.is_empty() {
            return None;
        }
        let probe = Probe::new(ukey, at);
        let from: Bound<&dyn KeyView> = Bound::Included(&probe);
        let (k, v) = map
            .range::<dyn KeyView, _>((from, Bound::Unbounded))
            .next()?;
        (*k.ukey == *ukey).then(|| f(entry_ref(k, v)))
    }

    /// Version `seq` of `ukey`, passed to `f`.
    pub fn get_exact<T>(
        &self,
        ukey: &[u8],
        seq: u64,
        f: impl FnOnce(EntryRef<'_>) -> T,
    ) -> Option<T> {
        let probe = Probe::new(ukey, seq);
        let map = self.read();
        let (k, v) = map.get_key_value::<dyn KeyView>(&probe)?;
        Some(f(entry_ref(k, v)))
    }

    /// Versions of `ukey` with `seq <= at`, newest first, each passed to `f`.
    pub fn versions(&self, ukey: &[u8], at: u64, mut f: impl FnMut(EntryRef<'_>)) {
        let map = self.read();
        let probe = Probe::new(ukey, at);
        let from: Bound<&dyn KeyView> = Bound::Included(&probe);
        for (k, v) in map.range::<dyn KeyView, _>((from, Bound::Unbounded)) {
            if *k.ukey != *ukey {
                break;
            }
            f(entry_ref(k, v));
        }
    }

    /// Replaces `out` with up to `max` entries after (forward) or before (`reverse`) `from`,
    /// nearest first.
    pub fn read_batch(&self, from: ReadFrom<'_>, reverse: bool, max: usize, out: &mut MemBatch) {
        out.arena.clear();
        out.entries.clear();
        out.more = false;
        out.entries.reserve(max);
        let Some(bound) = bounds(from, reverse) else {
            return;
        };
        let map = self.read();
        let bound = as_view(&bound);
        let range: (Bound<&dyn KeyView>, Bound<&dyn KeyView>) = if reverse {
            (Bound::Unbounded, bound)
        } else {
            (bound, Bound::Unbounded)
        };
        let mut push = |(k, v): (&IKey, &Value)| {
            if out.entries.len() >= max.max(1) || out.arena.len() >= BATCH_BYTES {
                out.more = true;
                return false;
            }
            out.push(entry_ref(k, v));
            true
        };
        let mut iter = map.range::<dyn KeyView, _>(range);
        if reverse {
            while let Some(kv) = iter.next_back() {
                if !push(kv) {
                    break;
                }
            }
        } else {
            for kv in iter {
                if !push(kv) {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> Memtable {
        let m = Memtable::new(1);
        m.apply(
            Version::new(1, 10),
            [(1, &b"a"[..], Some(&b"1"[..])), (1, b"b", Some(b"x"))],
        );
        m.apply(Version::new(2, 20), [(1, &b"a"[..], None)]);
        m.apply(Version::new(3, 30), [(1, &b"a"[..], Some(&b"3"[..]))]);
        m
    }

    fn value(e: EntryRef<'_>) -> Option<Vec<u8>> {
        e.value.map(<[u8]>::to_vec)
    }

    #[test]
    fn reads_by_version() {
        let m = mem();
        assert_eq!(m.get(b"\x01a", 3, value), Some(Some(b"3".to_vec())));
        assert_eq!(m.get(b"\x01a", 2, value), Some(None));
        assert_eq!(m.get(b"\x01a", 1, value), Some(Some(b"1".to_vec())));
        assert_eq!(m.get(b"\x01a", 0, value), None);
        assert_eq!(m.get(b"\x01c", 9, value), None);
        let mut v = Vec::new();
        m.versions(b"\x01a", 2, |e| v.push(e.seq));
        assert_eq!(v, vec![2, 1]);
        assert_eq!(m.get_exact(b"\x01a", 2, |e| e.time_ms), Some(20));
        assert_eq!(m.get_exact(b"\x01a", 4, |e| e.time_ms), None);
        assert_eq!(m.last_version().seq(), 3);
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn batches_in_both_directions() {
        let m = mem();
        let mut b = MemBatch::default();
        let mut read = |from: ReadFrom<'_>, reverse: bool, max: usize| {
            m.read_batch(from, reverse, max, &mut b);
            let got: Vec<(Vec<u8>, u64)> = (0..b.len())
                .filter_map(|i| b.get(i))
                .map(|e| (e.ukey.to_vec(), e.seq))
                .collect();
            (got, b.more())
        };
        let a = |s| (b"\x01a".to_vec(), s);
        assert_eq!(
            read(ReadFrom::Seek(Seek::Start), false, 10),
            (vec![a(3), a(2), a(1), (b"\x01b".to_vec(), 1)], false)
        );
        assert_eq!(
            read(ReadFrom::Seek(Seek::Gt(b"\x01a")), true, 2),
            (vec![a(1), a(2)], true)
        );
        assert_eq!(
            read(ReadFrom::After(b"\x01a", 2), true, 5),
            (vec![a(3)], false)
        );
        assert_eq!(
            read(ReadFrom::After(b"\x01a", 2), false, 5),
            (vec![a(1), (b"\x01b".to_vec(), 1)], false)
        );
        assert_eq!(
            read(ReadFrom::Seek(Seek::Ge(b"\x01b")), false, 10),
            (vec![(b"\x01b".to_vec(), 1)], false)
        );
        assert_eq!(read(ReadFrom::Seek(Seek::End), false, 10).0, vec![]);
        assert_eq!(read(ReadFrom::Seek(Seek::Start), true, 10).0, vec![]);
    }
}
