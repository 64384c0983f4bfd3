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
//! | range removal | `6 \| seq u64 \| slot u8 \| start bound \| end bound` |
//! | single put | `7 \| seq varint \| time_ms varint \| slot u8 \| key_len varint \| key \| value` |
//! | single remove | `8 \| seq varint \| time_ms varint \| slot u8 \| key_len varint \| key` |
//!
//! A *single* record is a whole transaction of exactly one write and no range removal that
//! follows the commit before it (empty `meta`): the write and its commit in one frame, 20
//! bytes of framing for a typical one instead of 55. Every other transaction (several writes,
//! a range removal, an imported commit that skips numbers) takes the long form. Varints are
//! LEB128 in their shortest encoding ([`kv_api::bytes::Reader::varint`]); any other is
//! malformed. Each value still lies in a frame of its own, which is what a Bitcask keydir
//! entry points at.
//!
//! A bound is `tag u8 (0 unbounded, 1 included, 2 excluded) \| len u32 \| key` (`len` 0 and
//! no key when unbounded). A range removal (written only by an engine that keeps range
//! tombstones, the LSM) removes every key of the range that was live before its commit; the
//! commit's own put and remove records apply after it, whatever their place in the log. It
//! counts as one write record in the commit's `count`.
//!
//! All integers little-endian. `meta` is commit metadata: empty, except in an imported commit
//! that skips sequence numbers (`Engine::import_commit`), where it is `1 | follows u64`: the
//! commit before it in the log, so that [`replay`] can tell a gap an import made from a
//! missing file. [`replay`] hands any other `meta` over ([`ReplayedTxn::meta`]).
//!
//! Recovery ([`replay`]) yields only whole committed transactions. In the last file of a log a
//! damaged or incomplete tail after the last commit is a crash artefact and is cut off by the
//! caller (the returned `valid_len`), *including* the writes of an uncommitted transaction
//! before it: leaving them would corrupt the next commit appended after them. Damage inside
//! the last transaction is treated the same way, even if its commit record survived. Damage
//! followed by records of a later transaction, or any damage in a sealed file, is corruption.
//!
//! Kinds 1 to 3 and 6 to 8 belong to this format. An engine may frame records of its own with other
//! kinds in files that it reads itself (Bitcask's merged segments use kinds 4 and 5, see
//! `kv-bitcask`); [`replay`] treats any such record in a log as damage.

use crate::bytes::{Reader, put_varint, u32_at, u64_at};
use crate::frame;
use std::ops::Bound;

use kv_api::{Dropped, Error, KeyRange, Result, Slot, Version, Write};

const PUT: u8 = 1;
const REMOVE: u8 = 2;
const COMMIT: u8 = 3;
/// Kinds 4 and 5 are Bitcask's merged records.
const RANGE_REMOVE: u8 = 6;
const SINGLE_PUT: u8 = 7;
const SINGLE_REMOVE: u8 = 8;
/// The largest framing of a single record: kind, two 10-byte varints, slot, 5-byte key length.
const SINGLE_HEADER_MAX: usize = 1 + 10 + 10 + 1 + 5;
const BOUND_UNBOUNDED: u8 = 0;
const BOUND_INCLUDED: u8 = 1;
const BOUND_EXCLUDED: u8 = 2;
const BOUND_HEADER: usize = 1 + 4;
const WRITE_HEADER: usize = 1 + 8 + 1 + 4;
const COMMIT_HEADER: usize = 1 + 8 + 8 + 4 + 4;
/// The `meta` tag of a commit that names the commit it follows (an import's gap).
const META_FOLLOWS: u8 = 1;
const META_FOLLOWS_LEN: usize = 1 + 8;

/// The commit a commit record's `meta` says it follows, if it says so.
fn meta_follows(meta: &[u8]) -> Option<u64> {
    match meta.split_first() {
        Some((&META_FOLLOWS, prev)) if prev.len() == 8 => u64_at(prev, 0),
        _ => None,
    }
}

/// The largest key plus value of one write: what a frame holds beside the record's header.
pub const MAX_WRITE_LEN: usize = frame::MAX_PAYLOAD - WRITE_HEADER;

// Every key and value that validated options allow fits one record, of this log and of an
// engine's own kinds (Bitcask's merged records carry 8 bytes more header).
const _: () = assert!(kv_api::MAX_KEY_AND_VALUE + 64 <= MAX_WRITE_LEN);

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
    /// Every key of a range removed (applied before the transaction's own writes).
    RemoveRange {
        /// Commit sequence number of its transaction.
        seq: u64,
        /// Slot.
        slot: Slot,
        /// Lower bound (encoded key).
        start: Bound<&'a [u8]>,
        /// Upper bound (encoded key).
        end: Bound<&'a [u8]>,
    },
    /// A whole transaction of one write: the write and its commit (kinds 7 and 8).
    Single {
        /// Commit sequence number.
        seq: u64,
        /// Commit time, ms since the Unix epoch.
        time_ms: u64,
        /// Slot.
        slot: Slot,
        /// Encoded key.
        key: &'a [u8],
        /// Encoded value, `None` for a removal.
        value: Option<&'a [u8]>,
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
}

impl<'a> Record<'a> {
    /// Decodes a frame payload. `None` if it is not a well-formed record.
    pub fn decode(p: &'a [u8]) -> Option<Self> {
        match *p.first()? {
            kind @ (PUT | REMOVE) => {
                let seq = u64_at(p, 1)?;
                let slot = *p.get(9)?;
                let key_len = usize::try_from(u32_at(p, 10)?).ok()?;
                let key_end = WRITE_HEADER.checked_add(key_len)?;
                let key = p.get(WRITE_HEADER..key_end)?;
                let rest = p.get(key_end..)?;
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
            RANGE_REMOVE => {
                let seq = u64_at(p, 1)?;
                let slot = *p.get(9)?;
                let mut r = crate::bytes::Reader::new(p.get(10..)?);
                let (start, end) = read_range(&mut r)?;
                r.is_empty().then_some(Record::RemoveRange {
                    seq,
                    slot,
                    start,
                    end,
                })
            }
            kind @ (SINGLE_PUT | SINGLE_REMOVE) => {
                let mut r = Reader::new(p.get(1..)?);
                let seq = r.varint()?;
                let time_ms = r.varint()?;
                let slot = r.u8()?;
                let key_len = usize::try_from(r.varint()?).ok()?;
                let key = r.take(key_len)?;
                let rest = r.rest();
                let value = match kind {
                    SINGLE_PUT => Some(rest),
                    _ if rest.is_empty() => None,
                    _ => return None,
                };
                Some(Record::Single {
                    seq,
                    time_ms,
                    slot,
                    key,
                    value,
                })
            }
            COMMIT => {
                let seq = u64_at(p, 1)?;
                let time_ms = u64_at(p, 9)?;
                let count = u32_at(p, 17)?;
                let meta_len = usize::try_from(u32_at(p, 21)?).ok()?;
                let meta_end = 25usize.checked_add(meta_len)?;
                let meta = p.get(25..meta_end)?;
                (p.len() == meta_end).then_some(Record::Commit {
                    seq,
                    time_ms,
                    count,
                    meta,
                })
            }
            _ => None,
        }
    }

    /// The sequence number of the record's transaction.
    pub fn seq(&self) -> u64 {
        match *self {
            Record::Put { seq, .. }
            | Record::Remove { seq, .. }
            | Record::RemoveRange { seq, .. }
            | Record::Single { seq, .. }
            | Record::Commit { seq, .. } => seq,
        }
    }
}

/// The two bounds of a removed range, borrowed from a record.
pub type RangeBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// Reads the two bounds of a removed range (`tag u8 | len u32 | key` each, see the module
/// docs), as a range removal record and the LSM's manifest store them.
pub fn read_range<'a>(r: &mut crate::bytes::Reader<'a>) -> Option<RangeBounds<'a>> {
    let mut bound = || {
        let tag = r.u8()?;
        let key = r.len_prefixed()?;
        match tag {
            BOUND_UNBOUNDED if key.is_empty() => Some(Bound::Unbounded),
            BOUND_INCLUDED => Some(Bound::Included(key)),
            BOUND_EXCLUDED => Some(Bound::Excluded(key)),
            _ => None,
        }
    };
    let start = bound()?;
    Some((start, bound()?))
}

/// Appends the two bounds of a removed range, as [`read_range`] reads them. The caller
/// checked their lengths (each below `u32::MAX`).
pub fn put_range(b: &mut Vec<u8>, range: &KeyRange) {
    for bound in [&range.start, &range.end] {
        let (tag, key): (u8, &[u8]) = match bound {
            Bound::Unbounded => (BOUND_UNBOUNDED, &[]),
            Bound::Included(k) => (BOUND_INCLUDED, k),
            Bound::Excluded(k) => (BOUND_EXCLUDED, k),
        };
        b.push(tag);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "callers refuse a bound past MAX_WRITE_LEN"
        )]
        b.extend_from_slice(&(key.len() as u32).to_le_bytes());
        b.extend_from_slice(key);
    }
}

/// The bytes of a range's bounds.
pub fn range_len(range: &KeyRange) -> usize {
    let len = |b: &Bound<Vec<u8>>| match b {
        Bound::Included(k) | Bound::Excluded(k) => k.len(),
        Bound::Unbounded => 0,
    };
    len(&range.start).saturating_add(len(&range.end))
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
        put_write_body(b, slot, key, value);
    });
    WriteLoc::of_frame(out, start)
}

/// Appends the single record of a transaction of one write (`value: None` is a removal) and
/// returns its location in `out`. The caller checked the key's and value's lengths (as
/// [`encode_txn`] does) and that the commit follows the one before it.
pub fn encode_single(
    out: &mut Vec<u8>,
    version: Version,
    slot: Slot,
    key: &[u8],
    value: Option<&[u8]>,
) -> WriteLoc {
    let start = frame::encode_with(out, |b| {
        b.push(if value.is_some() {
            SINGLE_PUT
        } else {
            SINGLE_REMOVE
        });
        put_varint(b, version.seq());
        put_varint(b, version.time_ms());
        b.push(slot);
        put_varint(b, key.len() as u64);
        b.extend_from_slice(key);
        if let Some(v) = value {
            b.extend_from_slice(v);
        }
    });
    WriteLoc::of_frame(out, start)
}

/// Appends `slot u8 | key_len u32 | key | value`: how every write record (this log's and an
/// engine's own kinds) ends, inside [`frame::encode_with`]. The caller checked the key's
/// length against the format's limits.
pub fn put_write_body(b: &mut Vec<u8>, slot: Slot, key: &[u8], value: Option<&[u8]>) {
    b.push(slot);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a key past u32::MAX makes a payload longer than frame::encode_with takes"
    )]
    b.extend_from_slice(&(key.len() as u32).to_le_bytes());
    b.extend_from_slice(key);
    if let Some(v) = value {
        b.extend_from_slice(v);
    }
}

impl WriteLoc {
    /// The location of the frame that starts at `start` and ends where `out` ends.
    pub fn of_frame(out: &[u8], start: usize) -> WriteLoc {
        WriteLoc {
            offset: start as u64,
            // Never saturates for a frame of `frame::encode_with`: at most
            // `MAX_PAYLOAD + HEADER_LEN` bytes.
            len: u32::try_from(out.len().saturating_sub(start)).unwrap_or(u32::MAX),
        }
    }
}

/// Appends one range removal record of transaction `seq` (the caller checked the bounds'
/// lengths, as [`encode_txn_with_ranges`] does).
pub fn encode_range_removal(out: &mut Vec<u8>, seq: u64, slot: Slot, range: &KeyRange) {
    frame::encode_with(out, |b| {
        b.push(RANGE_REMOVE);
        b.extend_from_slice(&seq.to_le_bytes());
        b.push(slot);
        put_range(b, range);
    });
}

/// Appends the commit record closing `count` writes of transaction `seq`.
pub fn encode_commit(out: &mut Vec<u8>, seq: u64, time_ms: u64, count: u32, meta: &[u8]) {
    frame::encode_with(out, |b| {
        b.push(COMMIT);
        b.extend_from_slice(&seq.to_le_bytes());
        b.extend_from_slice(&time_ms.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a meta past u32::MAX makes a payload longer than frame::encode_with takes"
        )]
        b.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        b.extend_from_slice(meta);
    });
}

/// Encodes a whole transaction into `out` (appending): one write record per write, then the
/// commit record; a transaction of one write that follows the commit before it as one single
/// record instead. `on_write` learns where each write's frame landed in `out`. `follows` is
/// the commit before it in the log (`CommitTicket::follows`): when it is not `seq - 1` (an
/// imported commit skipping numbers) the commit record says so in its `meta`.
///
/// The format's limits are checked here, once for every engine, before anything is appended:
/// a key plus value larger than [`MAX_WRITE_LEN`], or more writes than the commit record's
/// `u32` count, is [`Error::TooLarge`] and leaves `out` as it was.
pub fn encode_txn(
    out: &mut Vec<u8>,
    version: Version,
    follows: u64,
    writes: &[Write],
    on_write: impl FnMut(WriteLoc),
) -> Result<()> {
    encode_txn_with_ranges(out, version, follows, &[], writes, on_write)
}

/// [`encode_txn`] of a transaction that also removes `ranges` (range removal records, written
/// before the write records; `on_write` learns only the writes' places). For an engine that
/// keeps range tombstones: the ranges' keys are not in `writes`.
pub fn encode_txn_with_ranges(
    out: &mut Vec<u8>,
    version: Version,
    follows: u64,
    ranges: &[(Slot, KeyRange)],
    writes: &[Write],
    mut on_write: impl FnMut(WriteLoc),
) -> Result<()> {
    let mut size = frame::HEADER_LEN + COMMIT_HEADER + META_FOLLOWS_LEN;
    for (_, range) in ranges {
        let n = range_len(range);
        if n > MAX_WRITE_LEN - 2 * BOUND_HEADER {
            return Err(Error::TooLarge {
                what: "removed range",
                size: n,
                max: MAX_WRITE_LEN - 2 * BOUND_HEADER,
            });
        }
        size = size
            .saturating_add(n)
            .saturating_add(frame::HEADER_LEN + WRITE_HEADER);
    }
    for w in writes {
        let n = w
            .key
            .len()
            .saturating_add(w.value.as_ref().map_or(0, Vec::len));
        if n > MAX_WRITE_LEN {
            return Err(Error::TooLarge {
                what: "value",
                size: n,
                max: MAX_WRITE_LEN,
            });
        }
        size = size
            .saturating_add(n)
            .saturating_add(frame::HEADER_LEN + WRITE_HEADER);
    }
    let records = writes.len().saturating_add(ranges.len());
    let count = u32::try_from(records).map_err(|_| Error::TooLarge {
        what: "transaction",
        size: records,
        max: u32::MAX as usize,
    })?;
    out.reserve(size);
    let follows_previous = follows.checked_add(1) == Some(version.seq());
    // A write within a few bytes of the largest takes the long form, whose header is fixed.
    let fits_single = |w: &Write| {
        w.key
            .len()
            .saturating_add(w.value.as_ref().map_or(0, Vec::len))
            <= frame::MAX_PAYLOAD - SINGLE_HEADER_MAX
    };
    if let ([w], true, true) = (writes, ranges.is_empty(), follows_previous)
        && fits_single(w)
    {
        on_write(encode_single(
            out,
            version,
            w.slot,
            &w.key,
            w.value.as_deref(),
        ));
        return Ok(());
    }
    for (slot, range) in ranges {
        encode_range_removal(out, version.seq(), *slot, range);
    }
    for w in writes {
        on_write(encode_write(
            out,
            version.seq(),
            w.slot,
            &w.key,
            w.value.as_deref(),
        ));
    }
    let mut meta = [0u8; META_FOLLOWS_LEN];
    let meta: &[u8] = if follows_previous {
        b""
    } else {
        let (tag, prev) = meta.split_at_mut(1);
        tag.copy_from_slice(&[META_FOLLOWS]);
        prev.copy_from_slice(&follows.to_le_bytes());
        &meta
    };
    encode_commit(out, version.seq(), version.time_ms(), count, meta);
    Ok(())
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
    /// The ranges it removed (range removal records), applied before its writes. Always
    /// empty in a log of an engine that never writes them (Bitcask refuses such a log).
    pub ranges: Vec<(Slot, KeyRange)>,
    /// Offset just after its commit record.
    pub end: u64,
}

/// How a replay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEnd {
    /// Length of the valid prefix: the end of the last whole transaction. If smaller than the
    /// buffer, the caller truncates the file to it (only ever in the last file).
    pub valid_len: u64,
    /// Sequence number of the last whole transaction (or the one the file follows).
    pub last_seq: u64,
    /// What recovery leaves out after `valid_len`, and why: a torn or damaged last
    /// transaction, or writes whose commit record never came. `None` if the file is whole.
    pub dropped: Option<Dropped>,
}

/// Where the first transaction of a replayed file stands. Within a file every transaction is
/// the one after the previous (each commit takes the next sequence number, and every commit
/// of a log goes to its newest file), so a gap there is always damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follows {
    /// Exactly the commit after this sequence number: the file continues a log, or a
    /// manifest's last commit, without a gap. A missing file in between is corruption.
    Commit(u64),
    /// Any commit after this sequence number: the file follows compacted data, whose newest
    /// version need not be the newest commit.
    Above(u64),
}

impl Follows {
    fn last(self) -> u64 {
        match self {
            Follows::Commit(seq) | Follows::Above(seq) => seq,
        }
    }
}

/// How far past the expected sequence number the damage scan looks for a later transaction.
/// Several thousand whole transactions damaged in a row after a torn one is not a crash; it
/// is corruption either way, caught when the damaged file is not the last or by the window.
const LATER_TXN_WINDOW: u64 = 1 << 16;

/// The kind and sequence number a record payload starts with, without decoding the rest.
fn peek(p: &[u8]) -> Option<(u8, u64)> {
    let kind = *p.first()?;
    match kind {
        PUT | REMOVE | RANGE_REMOVE | COMMIT => Some((kind, u64_at(p, 1)?)),
        SINGLE_PUT | SINGLE_REMOVE => Some((kind, Reader::new(p.get(1..)?).varint()?)),
        _ => None,
    }
}

/// Replays the transactions of one log file held in `buf`, from offset `from` (where its
/// records begin, after the file's header), calling `on_txn` for each whole one. Offsets
/// (record locations, `valid_len`, errors) are offsets in `buf`.
///
/// `follows` says where the file's first transaction stands; after it, each transaction must
/// be the next sequence number. `is_last` says whether this is the newest file of the log
/// (where a torn tail is expected after a crash); elsewhere any damage is
/// [`Error::Corruption`]. A damaged last transaction is left out (see [`ReplayEnd::dropped`])
/// only if no later transaction follows the damage.
pub fn replay<'a>(
    buf: &'a [u8],
    from: usize,
    file: &str,
    is_last: bool,
    follows: Follows,
    mut on_txn: impl FnMut(ReplayedTxn<'a>) -> Result<()>,
) -> Result<ReplayEnd> {
    let mut end = ReplayEnd {
        valid_len: from as u64,
        last_seq: follows.last(),
        dropped: None,
    };
    let mut strict = matches!(follows, Follows::Commit(_));
    let mut pending: Vec<ReplayedWrite<'a>> = Vec::new();
    let mut pending_ranges: Vec<(Slot, KeyRange)> = Vec::new();
    // Records of an open transaction were read (writes or range removals).
    let open =
        |w: &Vec<ReplayedWrite<'a>>, r: &Vec<(Slot, KeyRange)>| !(w.is_empty() && r.is_empty());
    let mut pending_seq = 0u64;
    // The offset and expected sequence number of an open transaction that skipped numbers.
    let mut gap: Option<(usize, u64)> = None;
    let mut at = from;
    // The end of the valid prefix: in the last file, what follows is dropped and reported.
    let cut = |end: ReplayEnd, reason: &str| -> ReplayEnd {
        let bytes = (buf.len() as u64).saturating_sub(end.valid_len);
        if bytes > 0 {
            log::warn!(
                target: "kv",
                "recovery: {file}: {bytes} bytes at offset {} left out ({reason})",
                end.valid_len
            );
        }
        ReplayEnd {
            dropped: (bytes > 0).then(|| Dropped {
                file: file.to_string(),
                offset: end.valid_len,
                bytes,
                reason: reason.to_string(),
            }),
            ..end
        }
    };
    // `open` is the sequence number of the damaged transaction when it is an import that
    // skipped numbers (its own records may follow the damage), else 0.
    let damage = |at: usize, reason: &str, last_seq: u64, open: u64| -> Result<()> {
        // A torn or damaged last transaction (seq `last_seq + 1`, even with its own commit
        // record intact) is rolled back. Records of any later transaction after the damage
        // mean committed data would be lost: that is corruption, not a torn tail. Only
        // candidates with a later transaction's sequence number are CRC-checked, which keeps
        // the scan linear in the damaged bytes.
        let first_later = last_seq.saturating_add(2).max(open.saturating_add(1));
        let last_later = first_later.saturating_add(LATER_TXN_WINDOW);
        // An imported commit may lie any distance ahead: it is known by its `meta` (and its
        // exact length, so damage rarely forges one), not by the window.
        let later = |p: &[u8]| {
            peek(p).is_some_and(|(kind, s)| {
                (first_later..last_later).contains(&s)
                    || (kind == COMMIT
                        && s >= first_later
                        && p.len() == COMMIT_HEADER + META_FOLLOWS_LEN
                        && p.get(COMMIT_HEADER) == Some(&META_FOLLOWS))
            })
        };
        let later_commit = frame::valid_frames_after(buf, at.saturating_add(1), later)
            .next()
            .is_some();
        if !is_last || later_commit {
            return Err(Error::corruption(file, at as u64, reason));
        }
        Ok(())
    };
    loop {
        let (payload, next) = match frame::decode(buf, at) {
            frame::Decoded::Frame { payload, next } => (payload, next),
            frame::Decoded::End => {
                if open(&pending, &pending_ranges) && !is_last {
                    return Err(Error::corruption(
                        file,
                        at as u64,
                        "sealed file ends inside a transaction",
                    ));
                }
                return Ok(cut(end, "writes without their commit record"));
            }
            frame::Decoded::Truncated => {
                let open = if gap.is_some() { pending_seq } else { 0 };
                damage(at, "truncated record", end.last_seq, open)?;
                return Ok(cut(end, "torn or damaged last transaction"));
            }
            frame::Decoded::BadCrc => {
                let open = if gap.is_some() { pending_seq } else { 0 };
                damage(at, "crc mismatch", end.last_seq, open)?;
                return Ok(cut(end, "torn or damaged last transaction"));
            }
        };
        let Some(record) = Record::decode(payload) else {
            return Err(Error::corruption(file, at as u64, "malformed record"));
        };
        let seq = record.seq();
        let Some(expected) = end.last_seq.checked_add(1) else {
            return Err(Error::corruption(
                file,
                at as u64,
                "a record follows the largest sequence number",
            ));
        };
        // A transaction that skips numbers is taken on trust until its commit record, which
        // must then name the commit before it (an import's gap, see `encode_txn`).
        let in_order = if open(&pending, &pending_ranges) {
            seq == pending_seq
        } else if strict && seq > expected {
            gap.get_or_insert((at, expected));
            true
        } else if strict {
            seq == expected
        } else {
            seq >= expected
        };
        if !in_order {
            return Err(Error::corruption(
                file,
                at as u64,
                format!(
                    "sequence {seq} out of order (expected {}{expected}, open {pending_seq})",
                    if strict || open(&pending, &pending_ranges) {
                        ""
                    } else {
                        ">= "
                    }
                ),
            ));
        }
        let Some(len) = next.checked_sub(at).and_then(|n| u32::try_from(n).ok()) else {
            return Err(Error::corruption(
                file,
                at as u64,
                "record longer than the format allows",
            ));
        };
        let loc = WriteLoc {
            offset: at as u64,
            len,
        };
        // A commit record, or a single record (a write and its commit): (time, count, meta).
        let commit = match record {
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
                None
            }
            Record::Remove { slot, key, .. } => {
                pending_seq = seq;
                pending.push(ReplayedWrite {
                    slot,
                    key,
                    value: None,
                    loc,
                });
                None
            }
            Record::RemoveRange {
                slot, start, end, ..
            } => {
                pending_seq = seq;
                pending_ranges.push((
                    slot,
                    KeyRange {
                        start: start.map(<[u8]>::to_vec),
                        end: end.map(<[u8]>::to_vec),
                    },
                ));
                None
            }
            Record::Single {
                time_ms,
                slot,
                key,
                value,
                ..
            } => {
                // A whole transaction cannot lie inside another one.
                if open(&pending, &pending_ranges) {
                    return Err(Error::corruption(
                        file,
                        at as u64,
                        format!("transaction {seq} inside the open transaction {pending_seq}"),
                    ));
                }
                pending.push(ReplayedWrite {
                    slot,
                    key,
                    value,
                    loc,
                });
                Some((time_ms, 1, &[][..]))
            }
            Record::Commit {
                time_ms,
                count,
                meta,
                ..
            } => Some((time_ms, count, meta)),
        };
        if let Some((time_ms, count, meta)) = commit {
            if let Some((first, expected)) = gap.take()
                && meta_follows(meta) != Some(end.last_seq)
            {
                return Err(Error::corruption(
                    file,
                    first as u64,
                    format!("sequence {seq} out of order (expected {expected})"),
                ));
            }
            let found = pending.len().saturating_add(pending_ranges.len());
            if usize::try_from(count).ok() != Some(found) {
                return Err(Error::corruption(
                    file,
                    at as u64,
                    format!("commit {seq} closes {count} writes, found {found}"),
                ));
            }
            on_txn(ReplayedTxn {
                seq,
                time_ms,
                meta,
                writes: std::mem::take(&mut pending),
                ranges: std::mem::take(&mut pending_ranges),
                end: next as u64,
            })?;
            end = ReplayEnd {
                valid_len: next as u64,
                last_seq: seq,
                dropped: None,
            };
            strict = true;
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
        encode_commit(out, seq, seq.wrapping_add(1000), keys.len() as u32, b"");
    }

    fn seqs(buf: &[u8], is_last: bool) -> Result<(Vec<u64>, ReplayEnd)> {
        let mut seen = Vec::new();
        let end = replay(buf, 0, "f", is_last, Follows::Commit(0), |t| {
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
            let end = replay(buf, 0, "f", is_last, Follows::Commit(0), |t| {
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

    /// A range removal record round-trips through replay (before the writes, counted with
    /// them); a bound of an unknown kind, an unbounded bound with a key, trailing bytes or a
    /// count that leaves it out are damage.
    #[test]
    fn range_removals_replay_with_their_commit() {
        use std::ops::Bound;
        let range = KeyRange {
            start: Bound::Included(b"a".to_vec()),
            end: Bound::Unbounded,
        };
        let other = KeyRange {
            start: Bound::Excluded(b"".to_vec()),
            end: Bound::Excluded(b"zz".to_vec()),
        };
        let ranges = [(3, range.clone()), (4, other.clone())];
        let writes = [put(0, b"k")];
        let mut buf = Vec::new();
        encode_txn_with_ranges(&mut buf, Version::new(1, 9), 0, &ranges, &writes, |_| {})
            .expect("encode");
        let mut seen = Vec::new();
        let end = replay(&buf, 0, "f", false, Follows::Commit(0), |t| {
            seen.push((t.ranges.clone(), t.writes.len()));
            Ok(())
        })
        .expect("replay");
        assert_eq!(end.valid_len, buf.len() as u64);
        assert_eq!(seen, vec![(ranges.to_vec(), 1)]);

        let mut one = Vec::new();
        encode_range_removal(&mut one, 1, 3, &range);
        let payload = frame::decode_exact(&one).expect("frame").to_vec();
        let decoded = Record::decode(&payload);
        assert!(matches!(
            decoded,
            Some(Record::RemoveRange {
                seq: 1,
                slot: 3,
                start: Bound::Included(b"a"),
                end: Bound::Unbounded
            })
        ));
        // Start bound tag at offset 10, end bound tag after `tag | len | "a"`, at 16.
        for (at, byte) in [(10, 7u8), (16, 3)] {
            let mut bad = payload.clone();
            bad[at] = byte;
            assert!(Record::decode(&bad).is_none(), "tag {byte} at {at}");
        }
        // An unbounded end that carries a key.
        let mut keyed = payload.clone();
        keyed[17] = 1;
        keyed.push(b'z');
        assert!(Record::decode(&keyed).is_none(), "unbounded with a key");
        let mut long = payload.clone();
        long.push(0);
        assert!(Record::decode(&long).is_none(), "trailing byte");
        // A commit record that counts only the writes: corruption.
        let mut short = Vec::new();
        encode_range_removal(&mut short, 1, 3, &range);
        encode_write(&mut short, 1, 0, b"k", Some(b"v"));
        encode_commit(&mut short, 1, 9, 1, b"");
        assert!(matches!(
            replay(&short, 0, "f", false, Follows::Commit(0), |_| Ok(())),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn sequence_gaps_are_corruption() {
        let replay_from = |buf: &[u8], follows| replay(buf, 0, "f", true, follows, |_| Ok(()));
        // Within a file every transaction is the next one.
        let mut buf = Vec::new();
        txn(&mut buf, 1, &[b"a"]);
        txn(&mut buf, 3, &[b"b"]);
        assert!(matches!(seqs(&buf, true), Err(Error::Corruption { .. })));
        // Across files: a file that continues a log starts at the next commit.
        let mut buf = Vec::new();
        txn(&mut buf, 5, &[b"a"]);
        txn(&mut buf, 6, &[b"b"]);
        assert!(matches!(
            replay_from(&buf, Follows::Commit(3)),
            Err(Error::Corruption { .. })
        ));
        assert_eq!(
            replay_from(&buf, Follows::Commit(4))
                .expect("next")
                .last_seq,
            6
        );
        assert_eq!(
            replay_from(&buf, Follows::Above(3))
                .expect("above")
                .last_seq,
            6
        );
        assert!(matches!(
            replay_from(&buf, Follows::Above(5)),
            Err(Error::Corruption { .. })
        ));
        // Nothing follows the largest sequence number, and nothing wraps.
        let mut buf = Vec::new();
        txn(&mut buf, u64::MAX, &[b"a"]);
        let end = replay_from(&buf, Follows::Commit(u64::MAX - 1)).expect("max");
        assert_eq!(end.last_seq, u64::MAX);
        txn(&mut buf, 0, &[b"b"]);
        assert!(matches!(
            replay_from(&buf, Follows::Commit(u64::MAX - 1)),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn what_recovery_leaves_out_is_reported() {
        let mut buf = Vec::new();
        txn(&mut buf, 1, &[b"a"]);
        let whole = buf.len();
        txn(&mut buf, 2, &[b"b", b"c"]);
        assert_eq!(seqs(&buf, true).expect("whole").1.dropped, None);
        for cut in whole + 1..buf.len() {
            let (seen, end) = seqs(&buf[..cut], true).expect("torn tail");
            assert_eq!(seen, vec![1]);
            let dropped = end.dropped.expect("reported");
            assert_eq!(
                (dropped.file.as_str(), dropped.offset, dropped.bytes),
                ("f", whole as u64, (cut - whole) as u64),
                "cut {cut}"
            );
        }
    }

    fn put(slot: Slot, key: &[u8]) -> Write {
        Write {
            slot,
            key: key.to_vec(),
            value: Some(b"v".to_vec()),
        }
    }

    /// An imported commit that skips sequence numbers names the commit it follows; replay
    /// accepts exactly that gap, in a file and where a file continues a log.
    #[test]
    fn an_import_gap_replays_only_where_the_commit_names_it() {
        let mut buf = Vec::new();
        encode_txn(&mut buf, Version::new(1, 10), 0, &[put(0, b"a")], |_| {}).unwrap();
        encode_txn(&mut buf, Version::new(7, 20), 1, &[put(0, b"b")], |_| {}).unwrap();
        encode_txn(&mut buf, Version::new(8, 20), 7, &[], |_| {}).unwrap();
        let plain = buf.len();
        encode_txn(
            &mut buf,
            Version::new(1_000_000, 30),
            8,
            &[put(1, b"c")],
            |_| {},
        )
        .unwrap();
        let (seen, end) = seqs(&buf, false).unwrap();
        assert_eq!(seen, vec![1, 7, 8, 1_000_000]);
        assert_eq!(end.valid_len, buf.len() as u64);
        // A commit right after its predecessor carries no meta: logs are as before (one write:
        // a single record, which has none).
        let writes = [put(0, b"a"), put(0, b"b")];
        let mut one = Vec::new();
        encode_txn(&mut one, Version::new(2, 1), 1, &writes, |_| {}).unwrap();
        let mut bare = Vec::new();
        encode_write(&mut bare, 2, 0, b"a", Some(b"v"));
        encode_write(&mut bare, 2, 0, b"b", Some(b"v"));
        encode_commit(&mut bare, 2, 1, 2, b"");
        assert_eq!(one, bare);
        let mut single = Vec::new();
        encode_txn(&mut single, Version::new(2, 1), 1, &writes[..1], |_| {}).unwrap();
        let mut bare = Vec::new();
        encode_single(&mut bare, Version::new(2, 1), 0, b"a", Some(b"v"));
        assert_eq!(single, bare);
        // A file that continues a log at commit 7: the gap named from 1 does not fit.
        let err = replay(&buf[..plain], 0, "f", false, Follows::Commit(3), |_| Ok(())).err();
        assert!(matches!(err, Some(Error::Corruption { .. })), "{err:?}");
    }

    /// A gap without the commit naming its predecessor (or naming another) is corruption at
    /// the transaction's first record: what a missing log file looks like.
    #[test]
    fn an_unnamed_or_misnamed_gap_is_corruption() {
        for follows in [1, 5] {
            let mut buf = Vec::new();
            encode_txn(&mut buf, Version::new(1, 10), 0, &[put(0, b"a")], |_| {}).unwrap();
            let second = buf.len();
            if follows == 1 {
                // Written as if it followed 5: carries `follows 5`, but the log holds 1.
                encode_txn(&mut buf, Version::new(7, 20), 5, &[put(0, b"b")], |_| {}).unwrap();
            } else {
                // No meta at all.
                encode_write(&mut buf, 7, 0, b"b", Some(b"v"));
                encode_commit(&mut buf, 7, 20, 1, b"");
            }
            for is_last in [false, true] {
                match seqs(&buf, is_last) {
                    Err(Error::Corruption { offset, .. }) => assert_eq!(offset, second as u64),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    /// Damage in the newest file followed by an imported commit far beyond the damage scan's
    /// window is corruption, not a torn tail: the scan knows imported commits by their meta.
    #[test]
    fn damage_before_a_distant_imported_commit_is_corruption() {
        let mut buf = Vec::new();
        encode_txn(&mut buf, Version::new(1, 10), 0, &[put(0, b"a")], |_| {}).unwrap();
        let damaged = buf.len();
        encode_txn(&mut buf, Version::new(2, 10), 1, &[put(0, b"b")], |_| {}).unwrap();
        encode_txn(
            &mut buf,
            Version::new(1 << 40, 10),
            2,
            &[put(0, b"c")],
            |_| {},
        )
        .unwrap();
        buf[damaged + 12] ^= 0xff;
        let err = seqs(&buf, true).err();
        assert!(matches!(err, Some(Error::Corruption { .. })), "{err:?}");
    }

    /// A damaged imported transaction that skipped numbers, last in the newest file, is
    /// rolled back like any torn last transaction, even with its own commit record intact.
    #[test]
    fn a_damaged_last_import_is_rolled_back() {
        let mut buf = Vec::new();
        encode_txn(&mut buf, Version::new(1, 10), 0, &[put(0, b"a")], |_| {}).unwrap();
        let good = buf.len();
        let writes = [put(0, b"b"), put(0, b"c")];
        encode_txn(&mut buf, Version::new(50, 10), 1, &writes, |_| {}).unwrap();
        let second_write = good + (buf.len() - good - 8 - 34) / 2;
        buf[second_write + 12] ^= 0xff;
        let (seen, end) = seqs(&buf, true).unwrap();
        assert_eq!(seen, vec![1]);
        assert_eq!(end.valid_len, good as u64);
        assert!(end.dropped.is_some());
    }

    /// A transaction of one write is one single record: its byte format, its framing (18
    /// bytes with a one-byte sequence number and a time of today; 20 up to 2^21 commits), and
    /// its round trip.
    #[test]
    fn a_single_write_transaction_is_one_record() {
        let time = 1_765_000_000_000u64;
        let key = [0xAAu8; 16];
        let value = [0x55u8; 100];
        for (seq, value) in [
            (1u64, Some(&value[..])),
            (3_000_000, None),
            (u64::MAX, Some(b"")),
        ] {
            let w = Write {
                slot: 9,
                key: key.to_vec(),
                value: value.map(<[u8]>::to_vec),
            };
            let mut buf = Vec::new();
            let mut locs = Vec::new();
            encode_txn(&mut buf, Version::new(seq, time), seq - 1, &[w], |l| {
                locs.push(l)
            })
            .unwrap();
            assert_eq!(locs, vec![WriteLoc::of_frame(&buf, 0)]);
            let payload = frame::decode_exact(&buf).expect("one frame");
            let mut want = vec![if value.is_some() {
                SINGLE_PUT
            } else {
                SINGLE_REMOVE
            }];
            put_varint(&mut want, seq);
            put_varint(&mut want, time);
            want.push(9);
            want.push(16);
            want.extend_from_slice(&key);
            want.extend_from_slice(value.unwrap_or_default());
            assert_eq!(payload, &want[..], "seq {seq}");
            let framing = buf.len() - key.len() - value.map_or(0, <[u8]>::len);
            // Frame, kind, seq (one byte below 128), time (6), slot, key length.
            if seq < 128 {
                assert_eq!(framing, 8 + 1 + 1 + 6 + 1 + 1, "seq {seq}");
            }
            let record = Record::decode(payload).expect("decodes");
            assert_eq!(
                record,
                Record::Single {
                    seq,
                    time_ms: time,
                    slot: 9,
                    key: &key,
                    value,
                }
            );
            assert_eq!(record.seq(), seq);
            let mut seen = Vec::new();
            let end = replay(&buf, 0, "f", false, Follows::Commit(seq - 1), |t| {
                seen.push((t.seq, t.time_ms, t.meta.len(), t.writes.clone(), t.end));
                Ok(())
            })
            .expect("replay");
            let write = ReplayedWrite {
                slot: 9,
                key: &key,
                value,
                loc: locs[0],
            };
            let len = buf.len() as u64;
            assert_eq!(seen, vec![(seq, time, 0, vec![write], len)]);
            assert_eq!((end.valid_len, end.last_seq), (len, seq));
        }
    }

    /// A single record decodes only in its one encoding: an overlong varint, a removal with a
    /// value, a key past the end, or a missing field is malformed.
    #[test]
    fn malformed_single_records_do_not_decode() {
        let mut ok = Vec::new();
        encode_single(&mut ok, Version::new(5, 7), 1, b"k", None);
        let p = frame::decode_exact(&ok).unwrap().to_vec();
        assert_eq!(p, [SINGLE_REMOVE, 5, 7, 1, 1, b'k']);
        let bad: [&[u8]; 6] = [
            &[SINGLE_REMOVE, 0x85, 0x00, 7, 1, 1, b'k'],
            &[SINGLE_REMOVE, 5, 7, 1, 1, b'k', b'v'],
            &[SINGLE_REMOVE, 5, 7, 1, 2, b'k'],
            &[SINGLE_PUT, 5, 7, 1],
            &[SINGLE_PUT, 5, 0x80],
            &[SINGLE_PUT],
        ];
        for b in bad {
            assert_eq!(Record::decode(b), None, "{b:?}");
        }
    }

    /// Single records replay in sequence with long-form transactions; one inside an open
    /// transaction, or one that skips numbers (it has no meta to name a gap), is corruption;
    /// a torn or damaged last one is rolled back, one before a later transaction is
    /// corruption.
    #[test]
    fn single_records_in_a_log() {
        let v = |s| Version::new(s, 100 + s);
        let mut buf = Vec::new();
        encode_txn(&mut buf, v(1), 0, &[put(0, b"a")], |_| {}).unwrap();
        let one = buf.len();
        encode_txn(&mut buf, v(2), 1, &[put(0, b"b"), put(1, b"c")], |_| {}).unwrap();
        let two = buf.len();
        encode_txn(&mut buf, v(3), 2, &[put(2, b"d")], |_| {}).unwrap();
        let three = buf.len();
        assert_eq!(seqs(&buf, false).unwrap().0, vec![1, 2, 3]);
        for cut in two..three {
            let (seen, end) = seqs(&buf[..cut], true).expect("torn tail");
            assert_eq!((seen, end.valid_len), (vec![1, 2], two as u64), "cut {cut}");
            assert!(seqs(&buf[..cut], false).is_err() || cut == two);
        }
        for at in two..three {
            let mut bad = buf.clone();
            bad[at] ^= 0x10;
            assert_eq!(
                seqs(&bad, true).expect("damaged tail").0,
                vec![1, 2],
                "flip {at}"
            );
        }
        for at in 0..one {
            let mut bad = buf.clone();
            bad[at] ^= 0x10;
            let err = seqs(&bad, true).err();
            assert!(
                matches!(err, Some(Error::Corruption { .. })),
                "flip {at}: {err:?}"
            );
        }
        // Inside an open transaction (its writes, then a single record of the same seq).
        let mut open = Vec::new();
        encode_write(&mut open, 1, 0, b"a", Some(b"v"));
        encode_single(&mut open, v(1), 0, b"b", Some(b"v"));
        encode_commit(&mut open, 1, 101, 1, b"");
        let err = seqs(&open, false).err();
        assert!(matches!(err, Some(Error::Corruption { .. })), "{err:?}");
        // Skipping numbers.
        let mut gap = Vec::new();
        encode_single(&mut gap, v(1), 0, b"a", Some(b"v"));
        let second = gap.len();
        encode_single(&mut gap, v(3), 0, b"b", Some(b"v"));
        match seqs(&gap, true) {
            Err(Error::Corruption { offset, .. }) => assert_eq!(offset, second as u64),
            other => panic!("{other:?}"),
        }
        // An import that skips numbers keeps the long form, with its meta.
        let mut import = Vec::new();
        encode_txn(&mut import, v(9), 1, &[put(0, b"a")], |_| {}).unwrap();
        let (payload, _) = match frame::decode(&import, 0) {
            frame::Decoded::Frame { payload, next } => (payload, next),
            _ => panic!("frame"),
        };
        assert_eq!(payload.first(), Some(&PUT));
    }

    /// A transaction of the property test: (number of writes, key byte, value length).
    type Shape = (usize, u8, usize);

    /// Encodes transactions 1.. of these shapes (one write: a single record; several: the
    /// long form; none: a long-form empty commit) and returns the buffer and each end.
    fn encode_shapes(shapes: &[Shape]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for (i, &(n, k, len)) in shapes.iter().enumerate() {
            let seq = i as u64 + 1;
            let writes: Vec<Write> = (0..n)
                .map(|j| Write {
                    slot: j as u8,
                    key: vec![k; j + 1],
                    value: (len % 5 != 0).then(|| vec![k ^ 0x5a; len]),
                })
                .collect();
            let v = Version::new(seq, 1_765_000_000_000 + seq);
            encode_txn(&mut buf, v, seq - 1, &writes, |_| {}).unwrap();
            ends.push(buf.len());
        }
        (buf, ends)
    }

    proptest::proptest! {
        /// Any mix of single and long-form transactions replays whole; a cut anywhere in the
        /// newest file gives exactly the transactions before the cut, reported; a flipped byte
        /// gives a prefix of the transactions (a rolled-back last one, reported) or corruption,
        /// never another transaction and never a panic.
        #[test]
        fn mixed_logs_replay_whole_cut_or_flipped(
            shapes in proptest::collection::vec((0usize..4, proptest::num::u8::ANY, 0usize..300), 1..12),
            cut in proptest::num::usize::ANY,
            flip in proptest::num::usize::ANY,
            bit in 0u8..8,
        ) {
            let (buf, ends) = encode_shapes(&shapes);
            let all: Vec<u64> = (1..=shapes.len() as u64).collect();
            let (seen, end) = seqs(&buf, false).unwrap();
            proptest::prop_assert_eq!(&seen, &all);
            proptest::prop_assert_eq!(end.valid_len, buf.len() as u64);

            let cut = cut % (buf.len() + 1);
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            let (seen, end) = seqs(&buf[..cut], true).unwrap();
            proptest::prop_assert_eq!(&seen[..], &all[..whole]);
            let kept = if whole == 0 { 0 } else { ends[whole - 1] };
            proptest::prop_assert_eq!(end.valid_len, kept as u64);
            proptest::prop_assert_eq!(end.dropped.is_some(), cut > kept);

            let mut bad = buf.clone();
            let at = flip % bad.len();
            bad[at] ^= 1 << bit;
            let damaged = ends.iter().position(|&e| e > at).unwrap();
            match seqs(&bad, true) {
                Ok((seen, end)) => {
                    // Only the damaged transaction, the last one, may be rolled back.
                    proptest::prop_assert_eq!(damaged, shapes.len() - 1);
                    proptest::prop_assert_eq!(&seen[..], &all[..damaged]);
                    proptest::prop_assert!(end.dropped.is_some());
                }
                Err(Error::Corruption { .. }) => {}
                Err(e) => proptest::prop_assert!(false, "{e:?}"),
            }
        }
    }
}
