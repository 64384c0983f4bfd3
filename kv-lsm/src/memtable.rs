//! The memtable: recent commits in memory, ordered by `(user key, seq descending)`.
//!
//! One active memtable takes commits; when it passes `Options::memtable_size` it is frozen
//! (immutable, still readable) and a new one starts, with a new WAL file. A frozen memtable is
//! flushed to a level-0 table in the background. The map sits under a `std::sync::RwLock` that
//! is only ever held for a synchronous step, never across an `.await`: iterators read it in
//! small batches and re-seek after the last key they returned.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use kv_api::{Version, Write};

use crate::key::{Entry, Seek};

/// An internal key as the memtable orders it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IKey {
    ukey: Vec<u8>,
    seq: Reverse<u64>,
}

impl IKey {
    fn new(ukey: &[u8], seq: u64) -> Self {
        IKey {
            ukey: ukey.to_vec(),
            seq: Reverse(seq),
        }
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

fn entry(k: &IKey, v: &Value) -> Entry {
    Entry {
        ukey: k.ukey.clone(),
        seq: k.seq.0,
        time_ms: v.time_ms,
        value: v.value.clone(),
    }
}

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
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The first WAL file holding its commits: older WAL files are not needed once it is the
    /// oldest memtable.
    pub fn first_wal(&self) -> u64 {
        self.first_wal
    }

    /// Approximate bytes held.
    pub fn size(&self) -> usize {
        self.size.load(Ordering::Acquire)
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
            self.last_seq.load(Ordering::Acquire),
            self.last_time.load(Ordering::Acquire),
        )
    }

    /// Applies the writes of commit `version`.
    pub fn apply<'a>(
        &self,
        version: Version,
        writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) {
        let mut added = 0;
        {
            let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
            for (ukey, value) in writes {
                added += ukey.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD;
                map.insert(
                    IKey::new(ukey, version.seq()),
                    Value {
                        time_ms: version.time_ms(),
                        value: value.map(<[u8]>::to_vec),
                    },
                );
            }
        }
        self.size.fetch_add(added, Ordering::AcqRel);
        self.last_seq.fetch_max(version.seq(), Ordering::AcqRel);
        self.last_time
            .fetch_max(version.time_ms(), Ordering::AcqRel);
    }

    /// Applies the writes of a transaction given in the engine's form.
    pub fn apply_writes(&self, version: Version, writes: &[Write]) {
        let ukeys: Vec<Vec<u8>> = writes
            .iter()
            .map(|w| crate::key::ukey(w.slot, &w.key))
            .collect();
        self.apply(
            version,
            ukeys
                .iter()
                .zip(writes)
                .map(|(u, w)| (u.as_slice(), w.value.as_deref())),
        );
    }

    /// The newest version of `ukey` with `seq <= at`.
    pub fn get(&self, ukey: &[u8], at: u64) -> Option<Entry> {
        let map = self.read();
        if map.is_empty() {
            return None;
        }
        let (k, v) = map.range(IKey::new(ukey, at)..).next()?;
        (k.ukey == ukey).then(|| entry(k, v))
    }

    /// Version `seq` of `ukey`.
    pub fn get_exact(&self, ukey: &[u8], seq: u64) -> Option<Entry> {
        let k = IKey::new(ukey, seq);
        self.read().get(&k).map(|v| entry(&k, v))
    }

    /// Versions of `ukey` with `seq <= at`, newest first, appended to `out`.
    pub fn versions(&self, ukey: &[u8], at: u64, out: &mut Vec<Entry>) {
        let map = self.read();
        out.extend(
            map.range(IKey::new(ukey, at)..)
                .take_while(|(k, _)| k.ukey == ukey)
                .map(|(k, v)| entry(k, v)),
        );
    }

    /// Up to `max` entries after (forward) or before (`reverse`) `from`, nearest first.
    pub fn batch(&self, from: &Bound<IKey>, reverse: bool, max: usize) -> Vec<Entry> {
        let map = self.read();
        if reverse {
            map.range((Bound::Unbounded, from.clone()))
                .rev()
                .take(max)
                .map(|(k, v)| entry(k, v))
                .collect()
        } else {
            map.range((from.clone(), Bound::Unbounded))
                .take(max)
                .map(|(k, v)| entry(k, v))
                .collect()
        }
    }
}

/// The range bound for reading from `seek` in a direction; `None` if nothing lies that way.
pub(crate) fn bound_for(seek: Seek<'_>, reverse: bool) -> Option<Bound<IKey>> {
    let (lo, hi) = match seek {
        Seek::Start => (Bound::Unbounded, None),
        Seek::End => (Bound::Unbounded, Some(Bound::Unbounded)),
        // Before the first entry of `k`: (k, MAX) is the smallest internal key of `k`.
        Seek::Ge(k) => (
            Bound::Included(IKey::new(k, u64::MAX)),
            Some(Bound::Excluded(IKey::new(k, u64::MAX))),
        ),
        // After the last entry of `k`: (k, 0) is the largest internal key of `k`.
        Seek::Gt(k) => (
            Bound::Excluded(IKey::new(k, 0)),
            Some(Bound::Included(IKey::new(k, 0))),
        ),
        Seek::At(k, s) => (
            Bound::Included(IKey::new(k, s)),
            Some(Bound::Excluded(IKey::new(k, s))),
        ),
    };
    match (reverse, seek) {
        (false, Seek::End) => None,
        (false, _) => Some(lo),
        (true, Seek::Start) => None,
        (true, _) => hi,
    }
}

/// The bound that continues a batch read after `last` was returned.
pub(crate) fn bound_after(last: &Entry) -> Bound<IKey> {
    Bound::Excluded(IKey::new(&last.ukey, last.seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem() -> Memtable {
        let m = Memtable::new(1);
        m.apply(
            Version::new(1, 10),
            [(&b"a"[..], Some(&b"1"[..])), (b"b", Some(b"x"))],
        );
        m.apply(Version::new(2, 20), [(&b"a"[..], None)]);
        m.apply(Version::new(3, 30), [(&b"a"[..], Some(&b"3"[..]))]);
        m
    }

    #[test]
    fn reads_by_version() {
        let m = mem();
        assert_eq!(m.get(b"a", 3).and_then(|e| e.value), Some(b"3".to_vec()));
        assert_eq!(m.get(b"a", 2).map(|e| e.value), Some(None));
        assert_eq!(m.get(b"a", 1).and_then(|e| e.value), Some(b"1".to_vec()));
        assert_eq!(m.get(b"a", 0), None);
        assert_eq!(m.get(b"c", 9), None);
        let mut v = Vec::new();
        m.versions(b"a", 2, &mut v);
        assert_eq!(v.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(m.get_exact(b"a", 2).map(|e| e.time_ms), Some(20));
        assert_eq!(m.last_version().seq(), 3);
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn batches_in_both_directions() {
        let m = mem();
        let seqs = |v: Vec<Entry>| v.into_iter().map(|e| (e.ukey, e.seq)).collect::<Vec<_>>();
        let from = bound_for(Seek::Start, false).expect("bound");
        assert_eq!(
            seqs(m.batch(&from, false, 10)),
            vec![
                (b"a".to_vec(), 3),
                (b"a".to_vec(), 2),
                (b"a".to_vec(), 1),
                (b"b".to_vec(), 1)
            ]
        );
        let from = bound_for(Seek::Gt(b"a"), true).expect("bound");
        assert_eq!(
            seqs(m.batch(&from, true, 2)),
            vec![(b"a".to_vec(), 1), (b"a".to_vec(), 2)]
        );
        let from = bound_for(Seek::Ge(b"b"), false).expect("bound");
        assert_eq!(seqs(m.batch(&from, false, 10)), vec![(b"b".to_vec(), 1)]);
        assert!(bound_for(Seek::End, false).is_none());
        assert!(bound_for(Seek::Start, true).is_none());
    }
}
