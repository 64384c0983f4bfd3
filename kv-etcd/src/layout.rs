//! How a store's slots, keys, values and metadata map onto etcd keys and values under its
//! prefix `P` (see the crate docs for the whole mapping).

use std::ops::Bound;

use kv_api::{Error, KeyRange, Result, Slot, prefix_successor};

/// `P m`: the store's metadata (magic, format, store id, creation time).
const META: u8 = b'm';
/// `P h`: the head, written by every commit with its time; its `mod_revision` is the store's
/// newest version.
const HEAD: u8 = b'h';
/// `P z`: the merge horizon (the revision below which versions are merged away).
const HORIZON: u8 = b'z';
/// `P d <slot> <key>`: data.
const DATA: u8 = b'd';

/// Magic of the metadata value.
pub(crate) const MAGIC: &[u8; 8] = b"KVETCD\0\0";
/// The mapping's format; a store of a newer one is refused.
pub(crate) const FORMAT: u16 = 1;
/// Length of the metadata value: magic, format, store id, creation time.
const META_LEN: usize = 8 + 2 + 16 + 8;

/// Value kind: a value follows the header.
const KIND_VALUE: u8 = 1;
/// Value kind: a removal marker (nothing follows).
const KIND_REMOVAL: u8 = 2;
/// Bytes before the value: kind, commit time (u64 LE, ms).
pub(crate) const VALUE_HEADER: usize = 9;

/// The keys of one store.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    prefix: Vec<u8>,
}

/// The store's metadata record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub store_id: [u8; 16],
    pub created_ms: u64,
}

/// A decoded data value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The commit time (ms since the Unix epoch).
    pub time_ms: u64,
    /// The value, `None` for a removal marker.
    pub value: Option<Vec<u8>>,
}

impl Layout {
    pub fn new(prefix: &[u8]) -> Self {
        Layout {
            prefix: prefix.to_vec(),
        }
    }

    fn key(&self, tag: u8) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + 1);
        k.extend_from_slice(&self.prefix);
        k.push(tag);
        k
    }

    pub fn meta(&self) -> Vec<u8> {
        self.key(META)
    }

    pub fn head(&self) -> Vec<u8> {
        self.key(HEAD)
    }

    pub fn horizon(&self) -> Vec<u8> {
        self.key(HORIZON)
    }

    /// Every key of the store: `[P, successor(P))`. `None` if the prefix is all `0xff`.
    pub fn everything(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        (self.prefix.clone(), prefix_successor(&self.prefix))
    }

    fn slot_base(&self, slot: Slot) -> Vec<u8> {
        let mut k = self.key(DATA);
        k.push(slot);
        k
    }

    /// The etcd key of `key` in `slot`.
    pub fn data(&self, slot: Slot, key: &[u8]) -> Vec<u8> {
        let mut k = self.slot_base(slot);
        k.extend_from_slice(key);
        k
    }

    /// Every data key of every slot: `[P d, P e)`.
    pub fn all_data(&self) -> (Vec<u8>, Vec<u8>) {
        let start = self.key(DATA);
        let end = self.key(DATA + 1);
        (start, end)
    }

    /// The encoded key of a data key of `slot`, `None` if it is not one.
    pub fn strip<'k>(&self, slot: Slot, etcd_key: &'k [u8]) -> Option<&'k [u8]> {
        etcd_key
            .strip_prefix(self.prefix.as_slice())?
            .strip_prefix(&[DATA, slot][..])
    }

    /// `range` of `slot` as an etcd range `[start, end)`, `None` if it holds no key.
    pub fn range(&self, slot: Slot, range: &KeyRange) -> Option<(Vec<u8>, Vec<u8>)> {
        let base = self.slot_base(slot);
        let joined = |k: &[u8], zero: bool| {
            let mut v = base.clone();
            v.extend_from_slice(k);
            if zero {
                v.push(0);
            }
            v
        };
        let start = match &range.start {
            Bound::Included(s) => joined(s, false),
            Bound::Excluded(s) => joined(s, true),
            Bound::Unbounded => base.clone(),
        };
        // The data tag is below 0xff, so the slot's successor always exists.
        let end = match &range.end {
            Bound::Included(e) => joined(e, true),
            Bound::Excluded(e) => joined(e, false),
            Bound::Unbounded => prefix_successor(&base)?,
        };
        (start < end).then_some((start, end))
    }
}

/// A value as stored: kind, commit time, the value.
pub(crate) fn encode_value(time_ms: u64, value: Option<&[u8]>) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_HEADER + value.map_or(0, <[u8]>::len));
    v.push(if value.is_some() {
        KIND_VALUE
    } else {
        KIND_REMOVAL
    });
    v.extend_from_slice(&time_ms.to_le_bytes());
    if let Some(value) = value {
        v.extend_from_slice(value);
    }
    v
}

/// Reads a stored value; a damaged one is [`Error::Corruption`] naming its etcd key.
pub(crate) fn decode_value(etcd_key: &[u8], mut bytes: Vec<u8>) -> Result<Record> {
    let corrupt = |reason: String| Error::Corruption {
        file: format!("etcd key {}", String::from_utf8_lossy(etcd_key)),
        offset: 0,
        reason,
    };
    let (kind, time) = match bytes.get(..VALUE_HEADER) {
        Some([kind, time @ ..]) => (*kind, time),
        _ => {
            return Err(corrupt(format!(
                "value of {} bytes, shorter than its header",
                bytes.len()
            )));
        }
    };
    let time_ms = u64::from_le_bytes(
        time.try_into()
            .map_err(|_| corrupt("value header cut".into()))?,
    );
    match kind {
        KIND_VALUE => {
            bytes.drain(..VALUE_HEADER);
            Ok(Record {
                time_ms,
                value: Some(bytes),
            })
        }
        KIND_REMOVAL if bytes.len() == VALUE_HEADER => Ok(Record {
            time_ms,
            value: None,
        }),
        KIND_REMOVAL => Err(corrupt("removal marker with bytes after its header".into())),
        other => Err(corrupt(format!("unknown value kind {other}"))),
    }
}

/// An 8-byte little-endian number (the head's commit time, the horizon).
pub(crate) fn encode_u64(n: u64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// Reads an 8-byte number written by [`encode_u64`].
pub(crate) fn decode_u64(etcd_key: &[u8], bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| Error::Corruption {
        file: format!("etcd key {}", String::from_utf8_lossy(etcd_key)),
        offset: 0,
        reason: format!("{} bytes where an 8-byte number belongs", bytes.len()),
    })?;
    Ok(u64::from_le_bytes(arr))
}

impl Meta {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(META_LEN);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&FORMAT.to_le_bytes());
        v.extend_from_slice(&self.store_id);
        v.extend_from_slice(&self.created_ms.to_le_bytes());
        v
    }

    /// Reads the metadata: not ours is [`Error::Foreign`], a newer format
    /// [`Error::Incompatible`].
    pub fn decode(bytes: &[u8]) -> Result<Meta> {
        let foreign = || Error::Foreign {
            engine: crate::NAME,
            found: format!(
                "a metadata key that is not kv-etcd's ({} bytes)",
                bytes.len()
            ),
        };
        if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
            return Err(foreign());
        }
        let format = bytes
            .get(8..10)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
            .ok_or_else(foreign)?;
        if format != FORMAT {
            return Err(Error::Incompatible {
                engine: crate::NAME,
                found: format!("a kv-etcd store of format {format} (this build reads {FORMAT})"),
            });
        }
        if bytes.len() != META_LEN {
            return Err(foreign());
        }
        let store_id = bytes
            .get(10..26)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(foreign)?;
        let created_ms = bytes
            .get(26..34)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(foreign)?;
        Ok(Meta {
            store_id,
            created_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_removals_round_trip() {
        let k = b"p/d\x00k";
        let v = encode_value(42, Some(b"hello"));
        assert_eq!(
            decode_value(k, v).ok(),
            Some(Record {
                time_ms: 42,
                value: Some(b"hello".to_vec())
            })
        );
        let empty = encode_value(7, Some(b""));
        assert_eq!(
            decode_value(k, empty).ok().and_then(|r| r.value),
            Some(vec![])
        );
        let removal = encode_value(9, None);
        assert_eq!(
            decode_value(k, removal).ok(),
            Some(Record {
                time_ms: 9,
                value: None
            })
        );
    }

    #[test]
    fn damaged_values_are_corruption() {
        let k = b"p/d\x00k";
        for bad in [
            vec![],
            vec![1, 0, 0],
            vec![3, 0, 0, 0, 0, 0, 0, 0, 0],
            [encode_value(1, None), vec![5]].concat(),
        ] {
            assert!(
                matches!(decode_value(k, bad.clone()), Err(Error::Corruption { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn meta_round_trips_and_refuses_others() {
        let meta = Meta {
            store_id: [7; 16],
            created_ms: 99,
        };
        assert_eq!(Meta::decode(&meta.encode()).ok(), Some(meta));
        assert!(matches!(
            Meta::decode(b"{\"x\":1}"),
            Err(Error::Foreign { .. })
        ));
        let mut newer = meta.encode();
        newer[8] = 2;
        assert!(matches!(
            Meta::decode(&newer),
            Err(Error::Incompatible { .. })
        ));
        let cut = &meta.encode()[..20];
        assert!(matches!(Meta::decode(cut), Err(Error::Foreign { .. })));
    }

    #[test]
    fn ranges_map_bounds_and_stay_in_their_slot() {
        let l = Layout::new(b"p/");
        let (s, e) = l.range(3, &KeyRange::all()).unwrap_or_default();
        assert_eq!(s, b"p/d\x03".to_vec());
        assert_eq!(e, b"p/d\x04".to_vec());
        let r = KeyRange {
            start: Bound::Excluded(b"a".to_vec()),
            end: Bound::Included(b"c".to_vec()),
        };
        let (s, e) = l.range(0, &r).unwrap_or_default();
        assert_eq!(s, b"p/d\x00a\x00".to_vec());
        assert_eq!(e, b"p/d\x00c\x00".to_vec());
        let inverted = KeyRange {
            start: Bound::Included(b"c".to_vec()),
            end: Bound::Excluded(b"a".to_vec()),
        };
        assert_eq!(l.range(0, &inverted), None);
        let slot_255 = l.range(255, &KeyRange::all());
        assert_eq!(slot_255.map(|r| r.1), Some(b"p/e".to_vec()));
        assert_eq!(l.strip(3, b"p/d\x03key"), Some(&b"key"[..]));
        assert_eq!(l.strip(3, b"p/d\x04key"), None);
        assert_eq!(l.strip(3, b"q/d\x03key"), None);
        let (a, b) = l.all_data();
        assert!(a <= l.data(0, b"") && l.data(255, b"\xff\xff") < b);
    }

    #[test]
    fn numbers_round_trip_and_refuse_wrong_lengths() {
        assert_eq!(decode_u64(b"k", &encode_u64(123)).ok(), Some(123));
        assert!(matches!(
            decode_u64(b"k", b"123"),
            Err(Error::Corruption { .. })
        ));
    }
}
