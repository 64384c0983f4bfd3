//! Internal keys and entries: what every layer (memtable, tables, iterators) stores.
//!
//! A *user key* (`ukey`) is the slot byte followed by the encoded key, so byte order of user
//! keys is the order of `(slot, key)`. An *internal key* is `(ukey, seq)`, ordered by user key
//! ascending, then sequence number **descending**: the newest version of a key comes first, so
//! "the first entry at or after `(ukey, at)`" is the version a read at `at` sees.

use std::cmp::Ordering;

use kv_api::{KeyRange, Slot, Version};

/// One version of one key, as stored anywhere in the tree, owned: what [`EntryRef`] copies
/// out to (tests, version listings). Not the public scan row, [`kv_api::Entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedEntry {
    /// Slot byte + encoded key.
    pub ukey: Vec<u8>,
    /// Commit sequence number.
    pub seq: u64,
    /// Commit time in ms.
    pub time_ms: u64,
    /// The value, `None` for a removal.
    pub value: Option<Vec<u8>>,
    /// `value` is a blob reference ([`crate::blob::BlobRef`]), not the value itself.
    pub blob: bool,
}

impl OwnedEntry {
    /// The version this entry lists for its key.
    pub fn version(&self) -> Version {
        Version::new(self.seq, self.time_ms).with_removal(self.value.is_none())
    }
}

/// One version of one key, borrowed from where it is stored (a block, a memtable batch): what
/// iterators hand out, so nothing is copied until a scan emits the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryRef<'a> {
    /// Slot byte + encoded key.
    pub ukey: &'a [u8],
    /// Commit sequence number.
    pub seq: u64,
    /// Commit time in ms.
    pub time_ms: u64,
    /// The value, `None` for a removal; a blob reference's bytes if `blob`.
    pub value: Option<&'a [u8]>,
    /// `value` is a blob reference ([`crate::blob::BlobRef`]): whoever needs the value itself
    /// resolves it ([`crate::engine::Inner::resolve`]); key-only reads and compaction never do.
    pub blob: bool,
}

impl EntryRef<'_> {
    /// An owned copy.
    pub fn to_owned_entry(self) -> OwnedEntry {
        OwnedEntry {
            ukey: self.ukey.to_vec(),
            seq: self.seq,
            time_ms: self.time_ms,
            value: self.value.map(<[u8]>::to_vec),
            blob: self.blob,
        }
    }

    /// Bytes of key and value, the payload `stats` counts (a value in a blob file counted by
    /// the length its reference names).
    pub fn payload_len(&self) -> u64 {
        let value = match self.value {
            Some(raw) if self.blob => {
                crate::blob::BlobRef::decode(raw).map_or(0, |r| r.value_len(self.ukey))
            }
            Some(v) => v.len() as u64,
            None => 0,
        };
        (self.ukey.len() as u64).saturating_add(value)
    }
}

/// The first 8 bytes of `ukey`, zero-padded, as a big-endian integer: prefixes compare like
/// the keys they come from, except that equal prefixes need the whole keys.
#[inline]
pub(crate) fn prefix(ukey: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(ukey) {
        *d = *s;
    }
    u64::from_be_bytes(b)
}

/// Compares two user keys (byte order). Their first 8 bytes, compared as one integer, decide
/// most comparisons without a `memcmp` call: iterators and searches compare keys constantly.
#[inline]
pub(crate) fn cmp_ukey(a: &[u8], b: &[u8]) -> Ordering {
    if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
    }
    a.cmp(b)
}

/// An owned internal key: user key and sequence number (a table's first or last key).
pub(crate) type InternalKey = (Vec<u8>, u64);

/// Compares two internal keys: user key ascending, then sequence number descending.
#[inline]
pub(crate) fn cmp_ikey(a: &[u8], a_seq: u64, b: &[u8], b_seq: u64) -> Ordering {
    cmp_ukey(a, b).then(b_seq.cmp(&a_seq))
}

/// The user key of `key` in `slot`.
pub(crate) fn ukey(slot: Slot, key: &[u8]) -> Vec<u8> {
    [std::slice::from_ref(&slot), key].concat()
}

/// A position between entries of a sorted source. Iterators read forward from it (entries
/// after the position) or backward (entries before it).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seek<'a> {
    /// Before every entry.
    Start,
    /// After every entry.
    End,
    /// Before the first entry of user key `>= ukey`.
    Ge(&'a [u8]),
    /// Before the first entry of user key `> ukey`.
    Gt(&'a [u8]),
    /// Before the first entry whose internal key is `>= (ukey, seq)`: the version of `ukey`
    /// that a read at `seq` sees, if it exists, comes right after.
    At(&'a [u8], u64),
}

impl Seek<'_> {
    /// True if an entry lies before the position. Monotone over sorted entries (true for a
    /// prefix), which is what binary searches over blocks and indexes rely on.
    pub fn is_before(&self, ukey: &[u8], seq: u64) -> bool {
        match *self {
            Seek::Start => false,
            Seek::End => true,
            Seek::Ge(k) => cmp_ukey(ukey, k).is_lt(),
            Seek::Gt(k) => cmp_ukey(ukey, k).is_le(),
            Seek::At(k, at) => cmp_ikey(ukey, seq, k, at) == Ordering::Less,
        }
    }
}

/// A range of user keys inside one slot, built from a [`KeyRange`].
#[derive(Debug, Clone)]
pub(crate) struct UkeyRange {
    slot: Slot,
    /// The first user key of the next slot, if there is a next slot.
    next_slot: Option<[u8; 1]>,
    range: KeyRange,
    start: Option<(Vec<u8>, bool)>,
    end: Option<(Vec<u8>, bool)>,
}

impl UkeyRange {
    /// The user keys of `range` in `slot`.
    pub fn new(slot: Slot, range: &KeyRange) -> Self {
        use std::ops::Bound;
        let conv = |b: &Bound<Vec<u8>>| match b {
            Bound::Included(k) => Some((ukey(slot, k), true)),
            Bound::Excluded(k) => Some((ukey(slot, k), false)),
            Bound::Unbounded => None,
        };
        UkeyRange {
            slot,
            next_slot: slot.checked_add(1).map(|n| [n]),
            range: range.clone(),
            start: conv(&range.start),
            end: conv(&range.end),
        }
    }

    /// Where a forward scan starts.
    pub fn seek_forward(&self) -> Seek<'_> {
        match &self.start {
            Some((k, true)) => Seek::Ge(k),
            Some((k, false)) => Seek::Gt(k),
            None => Seek::Ge(std::slice::from_ref(&self.slot)),
        }
    }

    /// Where a backward scan starts.
    pub fn seek_backward(&self) -> Seek<'_> {
        match &self.end {
            Some((k, true)) => Seek::Gt(k),
            Some((k, false)) => Seek::Ge(k),
            None => match &self.next_slot {
                Some(next) => Seek::Ge(next),
                None => Seek::End,
            },
        }
    }

    /// True if `ukey` is in the range.
    pub fn contains(&self, ukey: &[u8]) -> bool {
        match ukey.split_first() {
            Some((s, key)) => *s == self.slot && self.range.contains(key),
            None => false,
        }
    }

    /// True if `ukey` lies past the range in the scan direction (the scan can stop).
    pub fn is_past(&self, ukey: &[u8], reverse: bool) -> bool {
        let (slot, key) = match ukey.split_first() {
            Some((s, key)) => (*s, key),
            None => return reverse,
        };
        if reverse {
            slot < self.slot || (slot == self.slot && !self.above_start(key))
        } else {
            slot > self.slot || (slot == self.slot && !self.below_end(key))
        }
    }

    fn above_start(&self, key: &[u8]) -> bool {
        use std::ops::Bound;
        match &self.range.start {
            Bound::Included(s) => key >= s.as_slice(),
            Bound::Excluded(s) => key > s.as_slice(),
            Bound::Unbounded => true,
        }
    }

    fn below_end(&self, key: &[u8]) -> bool {
        use std::ops::Bound;
        match &self.range.end {
            Bound::Included(e) => key <= e.as_slice(),
            Bound::Excluded(e) => key < e.as_slice(),
            Bound::Unbounded => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_positions() {
        let entries: Vec<(&[u8], u64)> =
            vec![(b"a", 5), (b"a", 2), (b"b", 9), (b"b", 1), (b"c", 3)];
        let pos = |s: Seek| {
            entries
                .iter()
                .take_while(|(k, q)| s.is_before(k, *q))
                .count()
        };
        assert_eq!(pos(Seek::Start), 0);
        assert_eq!(pos(Seek::End), 5);
        assert_eq!(pos(Seek::Ge(b"b")), 2);
        assert_eq!(pos(Seek::Gt(b"b")), 4);
        assert_eq!(pos(Seek::At(b"b", 9)), 2);
        assert_eq!(pos(Seek::At(b"b", 5)), 3);
        assert_eq!(pos(Seek::At(b"b", 0)), 4);
    }

    /// Keys around the 8-byte boundary of [`prefix`]: shorter, longer, zero-padded lookalikes.
    const AROUND_PREFIX: [&[u8]; 13] = [
        b"",
        b"\0",
        b"\0\0",
        b"a",
        b"a\0",
        b"abcdefg",
        b"abcdefgh",
        b"abcdefgh\0",
        b"abcdefghi",
        b"abcdefgi",
        b"abcdefh",
        b"b",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    ];

    #[test]
    fn key_order_is_byte_order() {
        for x in AROUND_PREFIX {
            for y in AROUND_PREFIX {
                assert_eq!(cmp_ukey(x, y), x.cmp(y), "{x:?} {y:?}");
            }
        }
    }

    #[test]
    fn prefix_order_agrees_with_key_order() {
        for x in AROUND_PREFIX {
            for y in AROUND_PREFIX {
                let (px, py) = (prefix(x), prefix(y));
                if px != py {
                    assert_eq!(px.cmp(&py), x.cmp(y), "{x:?} {y:?}");
                }
            }
        }
    }

    #[test]
    fn slot_bounds() {
        let r = UkeyRange::new(3, &KeyRange::all());
        assert!(r.contains(&[3, 1]));
        assert!(!r.contains(&[4]));
        assert!(r.is_past(&[4], false));
        assert!(r.is_past(&[2, 9], true));
        assert!(!r.is_past(&[3], true));
        let (Seek::Ge(next), Seek::Ge(first)) = (r.seek_backward(), r.seek_forward()) else {
            panic!("unbounded slot range seeks by slot");
        };
        assert_eq!((next, first), (&[4u8][..], &[3u8][..]));
        let last = UkeyRange::new(255, &KeyRange::all());
        assert!(matches!(last.seek_backward(), Seek::End));
    }
}
