//! The transaction log format shared by the Bitcask log and the LSM write-ahead log.
//!
//! A transaction is its write records followed by one commit record, each in a CRC frame
//! ([`crate::frame`]). Records carry the commit sequence number, so recovery can check that a
//! commit closes exactly the writes before it:
//!
//! | record | payload |
//! |--------|---------|
//! | put    | `1 \| seq u64 \| slot u8 \| key_len u32 \| key \| value` |
//! | remove | `2 \| seq u64 \| slot u8 \| key_len u32 \| key` |
//! | commit | `3 \| seq u64 \| time_ms u64 \| count u32 \| meta_len u32 \| meta` |
//! | committed put | `4 \| seq u64 \| time_ms u64 \| slot u8 \| key_len u32 \| key \| value` |
//! | committed remove | `5 \| seq u64 \| time_ms u64 \| slot u8 \| key_len u32 \| key` |
//!
//! All integers little-endian. `meta` is reserved for commit metadata (empty today), so later
//! features can ride on commit records without a format change: [`replay`] already accepts
//! any `meta` and hands it over ([`ReplayedTxn::meta`]).
//!
//! Recovery ([`replay`]) yields only whole committed transactions. In the last file of a log a
//! damaged or incomplete tail after the last commit is a crash artefact and is cut off by the
//! caller (the returned `valid_len`), *including* the writes of an uncommitted transaction
//! before it: leaving them would corrupt the next commit appended after them. Damage inside
//! the last transaction is treated the same way, even if its commit record survived. Damage
//! followed by records of a later transaction, or any damage in a sealed file, is corruption.
//!
//! Committed records (kinds 4 and 5) are self-contained versions that need no commit record:
//! compaction (Bitcask `merge`) writes them into files that are sealed and synced before
//! anything names them, so [`replay_committed`] treats any damage there as corruption. They
//! never appear in a log replayed by [`replay`].

use crate::bytes::{u32_at, u64_at};
use crate::frame;
use kv_api::{Error, Result, Slot};

const PUT: u8 = 1;
const REMOVE: u8 = 2;
const COMMIT: u8 = 3;
const COMMITTED_PUT: u8 = 4;
const COMMITTED_REMOVE: u8 = 5;
const WRITE_HEADER: usize = 1 + 8 + 1 + 4;
const COMMITTED_HEADER: usize = 1 + 8 + 8 + 1 + 4;

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// A key set to a value.
    Put {
        /// Commit sequence number of its transaction.
        seq: u64,
        /// Slot.
        slot: Slot,
        /// Encoded key.
        key: &'a [u8],
        /// Encoded value.
        value: &'a [u8],
    },
    /// A key removed.
    Remove {
        /// Commit sequence number of its transaction.
        seq: u64,
        /// Slot.
        slot: Slot,
        /// Encoded key.
        key: &'a [u8],
    },
    /// The end of a transaction.
    Commit {
        /// Commit sequence number.
        seq: u64,
        /// Commit time, ms since the Unix epoch.
        time_ms: u64,
        /// Number of write records of the transaction.
        count: u32,
        /// Reserved metadata.
        meta: &'a [u8],
    },
    /// A committed version of a key set to a value (compacted files; no commit record).
    CommittedPut {
        /// Commit sequence number of the version.
        seq: u64,
        /// Commit time of the version, ms since the Unix epoch.
        time_ms: u64,
        /// Slot.
        slot: Slot,
        /// Encoded key.
        key: &'a [u8],
        /// Encoded value.
        value: &'a [u8],
    },
    /// A committed removal of a key (compacted files; no commit record).
    CommittedRemove {
        /// Commit sequence number of the version.
        seq: u64,
        /// Commit time of the version, ms since the Unix epoch.
        time_ms: u64,
        /// Slot.
        slot: Slot,
        /// Encoded key.
        key: &'a [u8],
    },
}

impl<'a> Record<'a> {
    /// Decodes a frame payload. `None` if it is not a well-formed record.
    pub fn decode(p: &'a [u8]) -> Option<Self> {
        match *p.first()? {
            kind @ (PUT | REMOVE) => {
                let seq = u64_at(p, 1)?;
                let slot = *p.get(9)?;
                let key_len = u32_at(p, 10)? as usize;
                let key = p.get(WRITE_HEADER..WRITE_HEADER.checked_add(key_len)?)?;
                let rest = &p[WRITE_HEADER + key_len..];
                if kind == PUT {
                    Some(Record::Put {
                        seq,
                        slot,
                        key,
                        value: rest,
                    })
                } else if rest.is_empty() {
                    Some(Record::Remove { seq, slot, key })
                } else {
                    None
                }
            }
            COMMIT => {
                let seq = u64_at(p, 1)?;
                let time_ms = u64_at(p, 9)?;
                let count = u32_at(p, 17)?;
                let meta_len = u32_at(p, 21)? as usize;
                let meta = p.get(25..25usize.checked_add(meta_len)?)?;
                (p.len() == 25 + meta_len).then_some(Record::Commit {
                    seq,
                    time_ms,
                    count,
                    meta,
                })
            }
            kind @ (COMMITTED_PUT | COMMITTED_REMOVE) => {
                let seq = u64_at(p, 1)?;
                let time_ms = u64_at(p, 9)?;
                let slot = *p.get(17)?;
                let key_len = u32_at(p, 18)? as usize;
                let key = p.get(COMMITTED_HEADER..COMMITTED_HEADER.checked_add(key_len)?)?;
                let rest = &p[COMMITTED_HEADER + key_len..];
                if kind == COMMITTED_PUT {
                    Some(Record::CommittedPut {
                        seq,
                        time_ms,
                        slot,
                        key,
                        value: rest,
                    })
                } else if rest.is_empty() {
                    Some(Record::CommittedRemove {
                        seq,
                        time_ms,
                        slot,
                        key,
                    })
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// The sequence number of the record's transaction.
    pub fn seq(&self) -> u64 {
        match *self {
            Record::Put { seq, .. }
            | Record::Remove { seq, .. }
            | Record::Commit { seq, .. }
            | Record::CommittedPut { seq, .. }
            | Record::CommittedRemove { seq, .. } => seq,
        }
    }
}

/// Where one write of an encoded transaction landed, relative to the start of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLoc {
    /// Offset of the record's frame.
    pub offset: u64,
    /// Length of the whole frame.
    pub len: u32,
}

/// Appends one write record (`value: None` is a removal) and returns its location in `out`.
pub fn encode_write(
    out: &mut Vec<u8>,
    seq: u64,
    slot: Slot,
    key: &[u8],
    value: Option<&[u8]>,
) -> WriteLoc {
    let start = frame::encode_with(out, |b| {
        b.push(if value.is_some() { PUT } else { REMOVE });
        b.extend_from_slice(&seq.to_le_bytes());
        b.push(slot);
        b.extend_from_slice(&(key.len() as u32).to_le_bytes());
        b.extend_from_slice(key);
        if let Some(v) = value {
            b.extend_from_slice(v);
        }
    });
    WriteLoc {
        offset: start as u64,
        len: (out.len() - start) as u32,
    }
}

/// Appends the commit record closing `count` writes of transaction `seq`.
pub fn encode_commit(out: &mut Vec<u8>, seq: u64, time_ms: u64, count: u32, meta: &[u8]) {
    frame::encode_with(out, |b| {
        b.push(COMMIT);
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&time_ms.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        b.extend_from_slice(meta);
    });
}

/// A write record read back: slot, key, value (`None` for a removal).
pub type DecodedWrite<'a> = (Slot, &'a [u8], Option<&'a [u8]>);

/// Appends one committed record (a self-contained version: `value: None` is a removal) and
/// returns its location in `out`. Used by compaction; no commit record follows.
pub fn encode_committed(
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
        b.push(slot);
        b.extend_from_slice(&(key.len() as u32).to_le_bytes());
        b.extend_from_slice(key);
        if let Some(v) = value {
            b.extend_from_slice(v);
        }
    });
    WriteLoc {
        offset: start as u64,
        len: (out.len() - start) as u32,
    }
}

/// Reads the value of a put record (log or committed) from the bytes of its whole frame (as
/// located by [`WriteLoc`]); `Ok(None)` for a removal. `file`/`offset` name the place for errors.
pub fn decode_write_frame<'a>(buf: &'a [u8], file: &str, offset: u64) -> Result<DecodedWrite<'a>> {
    let payload = frame::decode_exact(buf).map_err(|r| Error::corruption(file, offset, r))?;
    match Record::decode(payload) {
        Some(
            Record::Put {
                slot, key, value, ..
            }
            | Record::CommittedPut {
                slot, key, value, ..
            },
        ) => Ok((slot, key, Some(value))),
        Some(Record::Remove { slot, key, .. } | Record::CommittedRemove { slot, key, .. }) => {
            Ok((slot, key, None))
        }
        _ => Err(Error::corruption(file, offset, "expected a write record")),
    }
}

/// One record of a file of committed records, found by [`replay_committed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedWrite<'a> {
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

/// Reads a whole file of committed records (kinds 4 and 5) held in `buf`, calling `on_write`
/// for each in file order. Such files are sealed and synced before anything refers to them, so
/// any damage, a partial frame, or a record of another kind is [`Error::Corruption`].
pub fn replay_committed<'a>(
    buf: &'a [u8],
    file: &str,
    mut on_write: impl FnMut(CommittedWrite<'a>) -> Result<()>,
) -> Result<()> {
    let mut at = 0usize;
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
        let loc = WriteLoc {
            offset: at as u64,
            len: (next - at) as u32,
        };
        let (seq, time_ms, slot, key, value) = match Record::decode(payload) {
            Some(Record::CommittedPut {
                seq,
                time_ms,
                slot,
                key,
                value,
            }) => (seq, time_ms, slot, key, Some(value)),
            Some(Record::CommittedRemove {
                seq,
                time_ms,
                slot,
                key,
            }) => (seq, time_ms, slot, key, None),
            Some(_) => {
                return Err(Error::corruption(
                    file,
                    at as u64,
                    "log record in a file of committed records",
                ));
            }
            None => return Err(Error::corruption(file, at as u64, "malformed record")),
        };
        on_write(CommittedWrite {
            seq,
            time_ms,
            slot,
            key,
            value,
            loc,
        })?;
        at = next;
    }
}

/// One write of a replayed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayedWrite<'a> {
    /// Slot.
    pub slot: Slot,
    /// Encoded key.
    pub key: &'a [u8],
    /// Encoded value, `None` for a removal.
    pub value: Option<&'a [u8]>,
    /// Location of the record's frame in the replayed buffer.
    pub loc: WriteLoc,
}

/// A whole committed transaction found by [`replay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedTxn<'a> {
    /// Commit sequence number.
    pub seq: u64,
    /// Commit time.
    pub time_ms: u64,
    /// The commit record's reserved metadata (empty as written today).
    pub meta: &'a [u8],
    /// Its writes, in log order.
    pub writes: Vec<ReplayedWrite<'a>>,
    /// Offset just after its commit record.
    pub end: u64,
}

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEnd {
    /// Length of the valid prefix: the end of the last whole transaction. If smaller than the
    /// buffer, the caller truncates the file to it (only ever in the last file).
    pub valid_len: u64,
    /// Sequence number of the last whole transaction (or the `after` given).
    pub last_seq: u64,
}

/// Replays the transactions of one log file held in `buf`, calling `on_txn` for each whole one.
///
/// `after` is the last sequence number of earlier files: sequence numbers must grow. `is_last`
/// says whether this is the newest file of the log (where a torn tail is expected after a
/// crash); elsewhere any damage is [`Error::Corruption`].
pub fn replay<'a>(
    buf: &'a [u8],
    file: &str,
    is_last: bool,
    after: u64,
    mut on_txn: impl FnMut(ReplayedTxn<'a>) -> Result<()>,
) -> Result<ReplayEnd> {
    let mut end = ReplayEnd {
        valid_len: 0,
        last_seq: after,
    };
    let mut pending: Vec<ReplayedWrite<'a>> = Vec::new();
    let mut pending_seq = 0u64;
    let mut at = 0usize;
    let damage = |at: usize, reason: &str, last_seq: u64| -> Result<()> {
        // A torn or damaged last transaction (seq `last_seq + 1`, even with its own commit
        // record intact) is rolled back. Records of any later transaction after the damage
        // mean committed data would be lost: that is corruption, not a torn tail.
        let later_commit = frame::valid_frames_after(buf, at + 1)
            .filter_map(|(_, p)| Record::decode(p))
            .any(|r| r.seq() > last_seq + 1);
        if !is_last || later_commit {
            return Err(Error::corruption(file, at as u64, reason));
        }
        Ok(())
    };
    loop {
        let (payload, next) = match frame::decode(buf, at) {
            frame::Decoded::Frame { payload, next } => (payload, next),
            frame::Decoded::End => {
                if !pending.is_empty() && !is_last {
                    return Err(Error::corruption(
                        file,
                        at as u64,
                        "sealed file ends inside a transaction",
                    ));
                }
                return Ok(end);
            }
            frame::Decoded::Truncated => {
                damage(at, "truncated record", end.last_seq)?;
                return Ok(end);
            }
            frame::Decoded::BadCrc => {
                damage(at, "crc mismatch", end.last_seq)?;
                return Ok(end);
            }
        };
        let Some(record) = Record::decode(payload) else {
            return Err(Error::corruption(file, at as u64, "malformed record"));
        };
        let seq = record.seq();
        if seq <= end.last_seq || (!pending.is_empty() && seq != pending_seq) {
            return Err(Error::corruption(
                file,
                at as u64,
                format!(
                    "sequence {seq} out of order (last commit {}, open {pending_seq})",
                    end.last_seq
                ),
            ));
        }
        let loc = WriteLoc {
            offset: at as u64,
            len: (next - at) as u32,
        };
        match record {
            Record::Put {
                slot, key, value, ..
            } => {
                pending_seq = seq;
                pending.push(ReplayedWrite {
                    slot,
                    key,
                    value: Some(value),
                    loc,
                });
            }
            Record::Remove { slot, key, .. } => {
                pending_seq = seq;
                pending.push(ReplayedWrite {
                    slot,
                    key,
                    value: None,
                    loc,
                });
            }
            Record::Commit {
                time_ms,
                count,
                meta,
                ..
            } => {
                if count as usize != pending.len() {
                    return Err(Error::corruption(
                        file,
                        at as u64,
                        format!(
                            "commit {seq} closes {count} writes, found {}",
                            pending.len()
                        ),
                    ));
                }
                on_txn(ReplayedTxn {
                    seq,
                    time_ms,
                    meta,
                    writes: std::mem::take(&mut pending),
                    end: next as u64,
                })?;
                end = ReplayEnd {
                    valid_len: next as u64,
                    last_seq: seq,
                };
            }
            Record::CommittedPut { .. } | Record::CommittedRemove { .. } => {
                return Err(Error::corruption(
                    file,
                    at as u64,
                    "committed record in a log file",
                ));
            }
        }
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(out: &mut Vec<u8>, seq: u64, keys: &[&[u8]]) {
        for k in keys {
            encode_write(out, seq, 1, k, Some(b"v"));
        }
        encode_commit(out, seq, 1000 + seq, keys.len() as u32, b"");
    }

    fn seqs(buf: &[u8], is_last: bool) -> Result<(Vec<u64>, ReplayEnd)> {
        let mut seen = Vec::new();
        let end = replay(buf, "f", is_last, 0, |t| {
            seen.push(t.seq);
            Ok(())
        })?;
        Ok((seen, end))
    }

    #[test]
    fn whole_transactions_only() {
        let mut buf = Vec::new();
        txn(&mut buf, 1, &[b"a", b"b"]);
        let one = buf.len();
        txn(&mut buf, 2, &[b"c"]);
        let two = buf.len();
        let (s, end) = seqs(&buf, true).expect("replay");
        assert_eq!((s, end.valid_len), (vec![1, 2], two as u64));
        // Every cut inside transaction 2 (including right before its commit) rolls it back.
        for cut in one..two {
            let (s, end) = seqs(&buf[..cut], true).expect("torn tail is not corruption");
            assert_eq!((s, end.valid_len), (vec![1], one as u64), "cut {cut}");
        }
        // The same cut in a sealed file is corruption.
        assert!(matches!(
            seqs(&buf[..two - 1], false),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn flipped_byte_before_a_later_commit_is_corruption() {
        let mut buf = Vec::new();
        txn(&mut buf, 1, &[b"a"]);
        let one = buf.len();
        txn(&mut buf, 2, &[b"b"]);
        txn(&mut buf, 3, &[b"c"]);
        let mut bad = buf.clone();
        bad[one + 3] ^= 1;
        assert!(matches!(seqs(&bad, true), Err(Error::Corruption { .. })));
        // A flip in the first write of a multi-write transaction whose commit is intact:
        // the frame right after the damage is a write, the commit comes later.
        let mut multi = Vec::new();
        txn(&mut multi, 1, &[b"a"]);
        let one = multi.len();
        txn(&mut multi, 2, &[b"b", b"c", b"d"]);
        let two = multi.len();
        txn(&mut multi, 3, &[b"e"]);
        for at in [one, one + 9, two - 1 - 33] {
            let mut bad = multi.clone();
            bad[at] ^= 1;
            assert!(
                matches!(seqs(&bad, true), Err(Error::Corruption { .. })),
                "flip {at}"
            );
            // Without transaction 3 after it, the damaged transaction is the last one: it is
            // rolled back like a torn tail, even though its commit record survived.
            assert_eq!(
                seqs(&bad[..two], true).expect("last txn").0,
                vec![1],
                "flip {at}"
            );
        }
        // Flipped in the last transaction only: a torn tail, rolled back.
        let mut tail = buf.clone();
        let n = tail.len();
        tail[n - 3] ^= 1;
        assert_eq!(seqs(&tail, true).expect("tail").0, vec![1, 2]);
    }

    #[test]
    fn commit_meta_round_trips_in_the_reserved_bytes() {
        let long: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        for meta in [&b""[..], b"m", b"\x00\xffmeta", &long] {
            let mut buf = Vec::new();
            encode_commit(&mut buf, 7, 1234, 2, meta);
            let payload = frame::decode_exact(&buf).expect("one frame");
            // The byte format: `3 | seq u64 | time_ms u64 | count u32 | meta_len u32 | meta`.
            let mut want = vec![COMMIT];
            want.extend_from_slice(&7u64.to_le_bytes());
            want.extend_from_slice(&1234u64.to_le_bytes());
            want.extend_from_slice(&2u32.to_le_bytes());
            want.extend_from_slice(&(meta.len() as u32).to_le_bytes());
            want.extend_from_slice(meta);
            assert_eq!(payload, &want[..], "meta of {} bytes", meta.len());
            assert_eq!(
                Record::decode(payload),
                Some(Record::Commit {
                    seq: 7,
                    time_ms: 1234,
                    count: 2,
                    meta,
                })
            );
            // A meta_len that disagrees with the payload is malformed, either way.
            let mut longer = payload.to_vec();
            longer.push(0);
            assert_eq!(Record::decode(&longer), None);
            assert_eq!(Record::decode(&payload[..payload.len() - 1]), None);
        }
    }

    #[test]
    fn replay_accepts_and_returns_commit_meta() {
        let metas: [&[u8]; 3] = [b"first", b"", &[0xAB; 300]];
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for (i, meta) in metas.iter().enumerate() {
            let seq = i as u64 + 1;
            encode_write(&mut buf, seq, 1, &[i as u8], Some(b"v"));
            encode_write(&mut buf, seq, 1, b"gone", None);
            encode_commit(&mut buf, seq, 1000 + seq, 2, meta);
            ends.push(buf.len() as u64);
        }
        // (seq, meta, number of writes) of each transaction, and the valid length.
        type Replayed = (Vec<(u64, Vec<u8>, usize)>, u64);
        let replayed = |buf: &[u8], is_last: bool| -> Result<Replayed> {
            let mut seen = Vec::new();
            let end = replay(buf, "f", is_last, 0, |t| {
                seen.push((t.seq, t.meta.to_vec(), t.writes.len()));
                Ok(())
            })?;
            Ok((seen, end.valid_len))
        };
        let want: Vec<(u64, Vec<u8>, usize)> = metas
            .iter()
            .enumerate()
            .map(|(i, m)| (i as u64 + 1, m.to_vec(), 2))
            .collect();
        for is_last in [true, false] {
            assert_eq!(
                replayed(&buf, is_last).expect("replay"),
                (want.clone(), ends[2])
            );
        }
        // A tail torn inside the last commit's meta rolls that transaction back, as any torn
        // tail; the earlier ones keep their meta.
        let cut = buf.len() - 100;
        assert_eq!(
            replayed(&buf[..cut], true).expect("torn tail"),
            (want[..2].to_vec(), ends[1])
        );
        assert!(matches!(
            replayed(&buf[..cut], false),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        let loc = encode_write(&mut buf, 9, 3, b"key", Some(b"value"));
        let frame = &buf[loc.offset as usize..(loc.offset + loc.len as u64) as usize];
        assert_eq!(
            decode_write_frame(frame, "f", 0).expect("decode"),
            (3, &b"key"[..], Some(&b"value"[..]))
        );
        let loc = encode_write(&mut buf, 9, 3, b"key", None);
        let frame = &buf[loc.offset as usize..(loc.offset + loc.len as u64) as usize];
        assert_eq!(
            decode_write_frame(frame, "f", 0).expect("decode"),
            (3, &b"key"[..], None)
        );
    }

    #[test]
    fn committed_records_round_trip() {
        let mut buf = Vec::new();
        let put = encode_committed(&mut buf, 7, 1234, 2, b"k1", Some(b"value"));
        let rem = encode_committed(&mut buf, 9, 1300, 2, b"k2", None);
        let frame_of = |l: WriteLoc| &buf[l.offset as usize..(l.offset + l.len as u64) as usize];
        assert_eq!(
            decode_write_frame(frame_of(put), "f", 0).expect("put"),
            (2, &b"k1"[..], Some(&b"value"[..]))
        );
        assert_eq!(
            decode_write_frame(frame_of(rem), "f", 0).expect("rem"),
            (2, &b"k2"[..], None)
        );
        let payload = frame::decode_exact(frame_of(put)).expect("frame");
        assert_eq!(
            Record::decode(payload),
            Some(Record::CommittedPut {
                seq: 7,
                time_ms: 1234,
                slot: 2,
                key: b"k1",
                value: b"value"
            })
        );
        assert_eq!(Record::decode(payload).map(|r| r.seq()), Some(7));
        let mut seen = Vec::new();
        replay_committed(&buf, "f", |w| {
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
            replay_committed(&bad, "f", |_| Ok(())),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn committed_files_allow_no_damage() {
        let mut buf = Vec::new();
        let first = encode_committed(&mut buf, 1, 10, 0, b"a", Some(b"x"));
        encode_committed(&mut buf, 2, 11, 0, b"b", Some(b"y"));
        let boundary = first.len as usize;
        for cut in 1..buf.len() {
            let r = replay_committed(&buf[..cut], "f", |_| Ok(()));
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
                    replay_committed(&bad, "f", |_| Ok(())),
                    Err(Error::Corruption { .. })
                ),
                "flip {i}"
            );
        }
        // Log records are not accepted in a committed file, nor committed ones in a log.
        let mut log = Vec::new();
        txn(&mut log, 1, &[b"a"]);
        assert!(matches!(
            replay_committed(&log, "f", |_| Ok(())),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(seqs(&buf, true), Err(Error::Corruption { .. })));
    }
}
