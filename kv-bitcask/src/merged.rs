//! Records of merged segments: self-contained committed versions, Bitcask's own record kinds
//! beside the shared transaction log's ([`kv_engine_kit::txlog`], kinds 1 to 3 and 6 to 8).
//!
//! | record | payload |
//! |--------|---------|
//! | committed put | `4 \| seq u64 \| time_ms u64 \| slot u8 \| key_len u32 \| key \| value` |
//! | committed remove | `5 \| seq u64 \| time_ms u64 \| slot u8 \| key_len u32 \| key` |
//!
//! All integers little-endian, each record in a CRC frame ([`kv_engine_kit::frame`]). A
//! committed record needs no commit record: `merge` writes these into segments that are sealed
//! and synced before `META` names them, so [`replay`] treats any damage there as corruption.
//! They never appear in a log segment, where the shared replay rejects them.

use kv_api::{Error, Result, Slot};
use kv_engine_kit::bytes::{u32_at, u64_at};
use kv_engine_kit::frame;
use kv_engine_kit::txlog::{self, Record, WriteLoc};

const COMMITTED_PUT: u8 = 4;
const COMMITTED_REMOVE: u8 = 5;
const HEADER: usize = 1 + 8 + 8 + 1 + 4;

/// A write record read back, from a log or a merged segment: sequence number, slot, key, value
/// (`None` for a removal).
pub(crate) type DecodedWrite<'a> = (u64, Slot, &'a [u8], Option<&'a [u8]>);

/// One record of a merged segment, found by [`replay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CommittedWrite<'a> {
    /// Commit sequence number of the version.
    pub seq: u64,
    /// Commit time of the version.
    pub time_ms: u64,
    /// Slot.
    pub slot: Slot,
    /// Encoded key.
    pub key: &'a [u8],
    /// Encoded value, `None` for a removal.
    pub value: Option<&'a [u8]>,
    /// Location of the record's frame in the replayed buffer.
    pub loc: WriteLoc,
}

/// Appends one committed record (`value: None` is a removal) and returns its location in `out`.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    seq: u64,
    time_ms: u64,
    slot: Slot,
    key: &[u8],
    value: Option<&[u8]>,
) -> WriteLoc {
    let start = frame::encode_with(out, |b| {
        b.push(if value.is_some() {
            COMMITTED_PUT
        } else {
            COMMITTED_REMOVE
        });
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&time_ms.to_le_bytes());
        txlog::put_write_body(b, slot, key, value);
    });
    WriteLoc::of_frame(out, start)
}

/// The length of the frame [`encode`] writes for a key (without its slot byte) and a value
/// (0 for a removal) of these lengths; `None` past what a frame holds (a log record read from
/// storage may be up to 8 bytes too long to become a committed one).
pub(crate) fn frame_len(key_len: usize, value_len: usize) -> Option<usize> {
    let payload = HEADER.checked_add(key_len)?.checked_add(value_len)?;
    (payload <= frame::MAX_PAYLOAD).then_some(payload.checked_add(frame::HEADER_LEN)?)
}

/// Decodes the payload of a committed record whose frame is at `loc`; `None` if it is not
/// one, or is malformed.
fn decode(p: &[u8], loc: WriteLoc) -> Option<CommittedWrite<'_>> {
    let kind = *p.first()?;
    if kind != COMMITTED_PUT && kind != COMMITTED_REMOVE {
        return None;
    }
    let seq = u64_at(p, 1)?;
    let time_ms = u64_at(p, 9)?;
    let slot = *p.get(17)?;
    let key_len = usize::try_from(u32_at(p, 18)?).ok()?;
    let key_end = HEADER.checked_add(key_len)?;
    let key = p.get(HEADER..key_end)?;
    let rest = p.get(key_end..)?;
    let value = match kind {
        COMMITTED_PUT => Some(rest),
        _ if rest.is_empty() => None,
        _ => return None,
    };
    Some(CommittedWrite {
        seq,
        time_ms,
        slot,
        key,
        value,
        loc,
    })
}

/// Reads the value of a write record, from a log (kinds 1, 2, 7 and 8) or a merged segment
/// (kinds 4 and 5), from the bytes of its whole frame as located by [`WriteLoc`]. `file`/`offset` name
/// the place for errors.
pub(crate) fn decode_write_frame<'a>(
    buf: &'a [u8],
    file: &str,
    offset: u64,
) -> Result<DecodedWrite<'a>> {
    let payload = frame::decode_exact(buf).map_err(|r| Error::corruption(file, offset, r))?;
    // Only carried through `decode`, whose location is not returned: never an answer.
    let loc = WriteLoc {
        offset,
        len: u32::try_from(buf.len()).unwrap_or(u32::MAX),
    };
    if let Some(w) = decode(payload, loc) {
        return Ok((w.seq, w.slot, w.key, w.value));
    }
    match Record::decode(payload) {
        Some(Record::Put {
            seq,
            slot,
            key,
            value,
        }) => Ok((seq, slot, key, Some(value))),
        Some(Record::Remove { seq, slot, key }) => Ok((seq, slot, key, None)),
        // A transaction of one write: the record holds its commit's sequence number too.
        Some(Record::Single {
            seq,
            slot,
            key,
            value,
            ..
        }) => Ok((seq, slot, key, value)),
        _ => Err(Error::corruption(file, offset, "expected a write record")),
    }
}

/// Reads a whole merged segment held in `buf`, calling `on_write` for each record in file
/// order. Any damage, a partial frame, or a record of another kind is [`Error::Corruption`].
pub(crate) fn replay<'a>(
    buf: &'a [u8],
    from: usize,
    file: &str,
    mut on_write: impl FnMut(CommittedWrite<'a>) -> Result<()>,
) -> Result<()> {
    let mut at = from;
    loop {
        let (payload, next) = match frame::decode(buf, at) {
            frame::Decoded::Frame { payload, next } => (payload, next),
            frame::Decoded::End => return Ok(()),
            frame::Decoded::Truncated => {
                return Err(Error::corruption(file, at as u64, "truncated record"));
            }
            frame::Decoded::BadCrc => {
                return Err(Error::corruption(file, at as u64, "crc mismatch"));
            }
        };
        let Some(loc) = frame_loc(at, next) else {
            return Err(Error::corruption(file, at as u64, "record too long"));
        };
        let Some(write) = decode(payload, loc) else {
            let reason = if txlog::Record::decode(payload).is_some() {
                "log record in a merged segment"
            } else {
                "malformed record"
            };
            return Err(Error::corruption(file, at as u64, reason));
        };
        on_write(write)?;
        at = next;
    }
}

/// The location of the frame `at .. next`; `None` if its length does not fit the `u32` of a
/// location (a frame's `u32` payload length plus its header may not).
fn frame_loc(at: usize, next: usize) -> Option<WriteLoc> {
    Some(WriteLoc {
        offset: at as u64,
        len: u32::try_from(next.checked_sub(at)?).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(buf: &[u8], l: WriteLoc) -> &[u8] {
        &buf[l.offset as usize..(l.offset + l.len as u64) as usize]
    }

    #[test]
    fn log_records_round_trip() {
        let mut buf = Vec::new();
        let loc = txlog::encode_write(&mut buf, 9, 3, b"key", Some(b"value"));
        assert_eq!(
            decode_write_frame(frame_of(&buf, loc), "f", 0).expect("decode"),
            (9, 3, &b"key"[..], Some(&b"value"[..]))
        );
        let loc = txlog::encode_write(&mut buf, 9, 3, b"key", None);
        assert_eq!(
            decode_write_frame(frame_of(&buf, loc), "f", 0).expect("decode"),
            (9, 3, &b"key"[..], None)
        );
    }

    #[test]
    fn committed_records_round_trip() {
        let mut buf = Vec::new();
        let put = encode(&mut buf, 7, 1234, 2, b"k1", Some(b"value"));
        let rem = encode(&mut buf, 9, 1300, 2, b"k2", None);
        assert_eq!(
            decode_write_frame(frame_of(&buf, put), "f", 0).expect("put"),
            (7, 2, &b"k1"[..], Some(&b"value"[..]))
        );
        assert_eq!(
            decode_write_frame(frame_of(&buf, rem), "f", 0).expect("rem"),
            (9, 2, &b"k2"[..], None)
        );
        let payload = frame::decode_exact(frame_of(&buf, put)).expect("frame");
        assert_eq!(
            decode(payload, put),
            Some(CommittedWrite {
                seq: 7,
                time_ms: 1234,
                slot: 2,
                key: b"k1",
                value: Some(b"value"),
                loc: put,
            })
        );
        let mut seen = Vec::new();
        replay(&buf, 0, "f", |w| {
            seen.push((
                w.seq,
                w.time_ms,
                w.key.to_vec(),
                w.value.map(<[u8]>::to_vec),
                w.loc,
            ));
            Ok(())
        })
        .expect("replay");
        assert_eq!(
            seen,
            vec![
                (7, 1234, b"k1".to_vec(), Some(b"value".to_vec()), put),
                (9, 1300, b"k2".to_vec(), None, rem),
            ]
        );
        // A committed removal with trailing bytes is malformed.
        let mut bad = Vec::new();
        frame::encode_with(&mut bad, |b| {
            b.push(COMMITTED_REMOVE);
            b.extend_from_slice(&[0; 17]);
            b.extend_from_slice(&0u32.to_le_bytes());
            b.push(1);
        });
        assert!(matches!(
            replay(&bad, 0, "f", |_| Ok(())),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn merged_segments_allow_no_damage() {
        let mut buf = Vec::new();
        let first = encode(&mut buf, 1, 10, 0, b"a", Some(b"x"));
        encode(&mut buf, 2, 11, 0, b"b", Some(b"y"));
        let boundary = first.len as usize;
        for cut in 1..buf.len() {
            let r = replay(&buf[..cut], 0, "f", |_| Ok(()));
            if cut == boundary {
                assert!(
                    r.is_ok(),
                    "a cut between frames is only detectable by the caller"
                );
            } else {
                assert!(matches!(r, Err(Error::Corruption { .. })), "cut {cut}");
            }
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(
                matches!(
                    replay(&bad, 0, "f", |_| Ok(())),
                    Err(Error::Corruption { .. })
                ),
                "flip {i}"
            );
        }
        // Log records are not accepted in a merged segment, nor committed ones in a log.
        let mut log = Vec::new();
        txlog::encode_write(&mut log, 1, 1, b"a", Some(b"v"));
        txlog::encode_commit(&mut log, 1, 1001, 1, b"");
        assert!(matches!(
            replay(&log, 0, "f", |_| Ok(())),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            txlog::replay(&buf, 0, "f", true, txlog::Follows::Above(0), |_| Ok(())),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn frame_len_is_what_encode_writes_or_none() {
        let mut buf = Vec::new();
        let put = encode(&mut buf, 7, 1234, 2, b"k1", Some(b"value"));
        assert_eq!(frame_len(2, 5), Some(put.len as usize));
        let rem = encode(&mut buf, 8, 1234, 2, b"k1", None);
        assert_eq!(frame_len(2, 0), Some(rem.len as usize));
        // Past MAX_PAYLOAD, `encode` would panic: the largest log record read back (a u32
        // payload) is 8 bytes short of becoming a committed one.
        assert_eq!(
            frame_len(0, frame::MAX_PAYLOAD - HEADER),
            Some(u32::MAX as usize - 1016)
        );
        assert_eq!(frame_len(0, frame::MAX_PAYLOAD - HEADER + 1), None);
        assert_eq!(frame_len(usize::MAX, 1), None);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_frame_longer_than_a_u32_location_is_not_cut() {
        // A frame's length field is a u32 and its header 8 bytes more: the largest frames do
        // not fit a location's u32 length, which `as u32` cut to a few bytes. (Too large to
        // build in a test: the location is checked on its own.)
        let longest = frame::HEADER_LEN + u32::MAX as usize;
        assert_eq!(frame_loc(43, 43 + longest), None);
        assert_eq!(
            frame_loc(43, 43 + u32::MAX as usize).map(|l| l.len),
            Some(u32::MAX)
        );
        assert_eq!(frame_loc(43, 60).map(|l| (l.offset, l.len)), Some((43, 17)));
    }
}
