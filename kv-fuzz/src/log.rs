//! The shared log format of `kv-engine-kit`: CRC frames, transaction log records, replay.

use kv_engine_kit::frame::{self, Decoded};
use kv_engine_kit::txlog::{self, Follows, Record, ReplayEnd, ReplayedTxn};

use crate::util::{both, fix_frames, records_from};

/// `frame::decode` at each of the first offsets of the input and frame by frame from the
/// start, and `frame::valid_frames_after` from a few offsets with a filter chosen by the first byte. A decoded frame lies inside
/// the buffer, re-encodes to the same bytes, and is what `decode_exact` sees in its place; a
/// scan finds frames in order, each one a frame that `decode` accepts there.
pub fn frame(data: &[u8]) {
    both(data, fix_frames(data), |buf| {
        // Every offset would make each input quadratic in its length (a CRC per offset).
        for at in 0..=buf.len().min(64) {
            check_frame_at(buf, at);
        }
        let mut at = 0;
        while let Decoded::Frame { next, .. } = frame::decode(buf, at) {
            check_frame_at(buf, next);
            at = next;
        }
        // A scan that checks every candidate is quadratic on garbage (what the filters of
        // recovery avoid): a few starting points only.
        let filter = buf.first().copied().unwrap_or(0);
        for from in [0, 1, usize::from(filter)] {
            check_scan(buf, from, filter);
        }
    });
}

fn check_frame_at(buf: &[u8], at: usize) {
    match frame::decode(buf, at) {
        Decoded::Frame { payload, next } => {
            assert!(
                at < next && next <= buf.len(),
                "frame {at}..{next} of {}",
                buf.len()
            );
            let mut again = Vec::new();
            frame::encode(payload, &mut again);
            assert_eq!(again, buf[at..next], "re-encoded frame at {at}");
            assert_eq!(frame::decode_exact(&buf[at..next]), Ok(payload));
        }
        Decoded::End => assert_eq!(at, buf.len()),
        Decoded::Truncated | Decoded::BadCrc => {
            assert!(frame::decode_exact(buf.get(at..).unwrap_or_default()).is_err());
        }
    }
}

fn check_scan(buf: &[u8], from: usize, filter: u8) {
    // Filters like recovery's: everything, a leading kind byte, or nothing.
    let worth = |p: &[u8]| match filter % 3 {
        0 => true,
        1 => p.first() == Some(&(filter >> 2)),
        _ => false,
    };
    let mut last_end = from;
    for (at, payload) in frame::valid_frames_after(buf, from, worth) {
        assert!(
            at >= last_end,
            "scan went back: frame at {at} before {last_end}"
        );
        assert!(worth(payload), "a filtered-out frame was returned");
        let Decoded::Frame { payload: p, next } = frame::decode(buf, at) else {
            panic!("scan returned a frame at {at} that decode rejects");
        };
        assert_eq!(p, payload);
        last_end = next;
    }
}

/// `txlog::Record::decode` of the input as a payload: a record re-encodes to the same bytes
/// (the format has one encoding per record), and its frame reads back the same record.
pub fn txlog_record(data: &[u8]) {
    let Some(record) = Record::decode(data) else {
        return;
    };
    let mut framed = Vec::new();
    match record {
        Record::Put {
            seq,
            slot,
            key,
            value,
        } => {
            txlog::encode_write(&mut framed, seq, slot, key, Some(value));
        }
        Record::Remove { seq, slot, key } => {
            txlog::encode_write(&mut framed, seq, slot, key, None);
        }
        Record::RemoveRange {
            seq,
            slot,
            start,
            end,
        } => {
            let range = kv_api::KeyRange {
                start: start.map(<[u8]>::to_vec),
                end: end.map(<[u8]>::to_vec),
            };
            txlog::encode_range_removal(&mut framed, seq, slot, &range);
        }
        Record::Single {
            seq,
            time_ms,
            slot,
            key,
            value,
        } => {
            txlog::encode_single(
                &mut framed,
                kv_api::Version::new(seq, time_ms),
                slot,
                key,
                value,
            );
        }
        Record::Commit {
            seq,
            time_ms,
            count,
            meta,
        } => txlog::encode_commit(&mut framed, seq, time_ms, count, meta),
    }
    let payload = frame::decode_exact(&framed).expect("a record just encoded decodes");
    assert_eq!(payload, data, "re-encoded {record:?}");
    assert_eq!(Record::decode(payload), Some(record));
}

/// `txlog::replay` of the input as a log file, from the end of its header (from 0 if it is
/// shorter than a header; the header itself is the engines' to check): as the last file and
/// as a sealed one, after commit 0, after any commit above 0, and right after the commit
/// before its first record. Transactions come in sequence (skipping numbers only where the
/// commit record names the commit before it: an import's gap), their writes' locations hold those
/// writes, and the valid prefix replays again to the same transactions, whole (what recovery
/// relies on after it cut the file there).
pub fn txlog_replay(data: &[u8]) {
    both(data, fix_frames(data), |buf| {
        let from = records_from(buf);
        let first_seq = match frame::decode(buf, from) {
            Decoded::Frame { payload, .. } => Record::decode(payload).map(|r| r.seq()),
            _ => None,
        };
        let mut follows = vec![Follows::Commit(0), Follows::Above(0)];
        if let Some(prev) = first_seq.and_then(|s| s.checked_sub(1)) {
            follows.push(Follows::Commit(prev));
        }
        for f in follows {
            for is_last in [true, false] {
                check_replay(buf, from, is_last, f);
            }
        }
    });
}

/// A replayed transaction, owned: `(seq, time_ms, meta, writes, end)`.
type Txn = (u64, u64, Vec<u8>, Vec<(u8, Vec<u8>, Option<Vec<u8>>)>, u64);

fn replay(
    buf: &[u8],
    from: usize,
    is_last: bool,
    follows: Follows,
) -> kv_api::Result<(Vec<Txn>, ReplayEnd)> {
    let mut txns = Vec::new();
    let end = txlog::replay(buf, from, "fuzz", is_last, follows, |t: ReplayedTxn<'_>| {
        for w in &t.writes {
            let (at, len) = (w.loc.offset as usize, w.loc.len as usize);
            let frame_bytes = buf
                .get(at..at + len)
                .expect("write location inside the file");
            let payload = frame::decode_exact(frame_bytes).expect("write location is a frame");
            let same = match Record::decode(payload) {
                Some(Record::Put {
                    seq,
                    slot,
                    key,
                    value,
                }) => seq == t.seq && slot == w.slot && key == w.key && Some(value) == w.value,
                Some(Record::Remove { seq, slot, key }) => {
                    seq == t.seq && slot == w.slot && key == w.key && w.value.is_none()
                }
                // A single record holds its transaction's only write.
                Some(Record::Single {
                    seq,
                    time_ms,
                    slot,
                    key,
                    value,
                }) => {
                    t.writes.len() == 1
                        && (seq, time_ms) == (t.seq, t.time_ms)
                        && slot == w.slot
                        && key == w.key
                        && value == w.value
                }
                _ => false,
            };
            assert!(same, "write location does not hold the write replayed");
        }
        let writes = t
            .writes
            .iter()
            .map(|w| (w.slot, w.key.to_vec(), w.value.map(<[u8]>::to_vec)))
            .collect();
        txns.push((t.seq, t.time_ms, t.meta.to_vec(), writes, t.end));
        Ok(())
    })?;
    Ok((txns, end))
}

fn check_replay(buf: &[u8], from: usize, is_last: bool, follows: Follows) {
    let Ok((txns, end)) = replay(buf, from, is_last, follows) else {
        return;
    };
    let len = buf.len() as u64;
    assert!(end.valid_len <= len);
    assert_eq!(
        end.valid_len,
        txns.last().map_or(from as u64, |t| t.4),
        "valid length"
    );
    let mut prev = match follows {
        Follows::Commit(s) | Follows::Above(s) => s,
    };
    for (i, t) in txns.iter().enumerate() {
        // An imported commit may skip numbers, naming the one before it in its meta.
        let named = t.2.first() == Some(&1) && t.2.get(1..) == Some(&prev.to_le_bytes()[..]);
        let ok = match follows {
            Follows::Above(_) if i == 0 => t.0 > prev,
            _ => Some(t.0) == prev.checked_add(1) || (t.0 > prev && named),
        };
        assert!(ok, "transaction {} after {prev}", t.0);
        prev = t.0;
    }
    assert_eq!(end.last_seq, prev, "last sequence number");
    assert_eq!(
        end.dropped.is_some(),
        end.valid_len < len,
        "dropped bytes reported"
    );
    if !is_last {
        assert_eq!(
            end.valid_len, len,
            "a sealed file replays whole or not at all"
        );
    }
    // What recovery keeps after cutting the file replays to the same, whole.
    let kept = &buf[..end.valid_len as usize];
    for again_last in [true, false] {
        let (again, again_end) =
            replay(kept, from, again_last, follows).expect("the valid prefix replays");
        assert_eq!(
            again, txns,
            "the valid prefix replays the same transactions"
        );
        assert_eq!(again_end.valid_len, end.valid_len);
        assert!(again_end.dropped.is_none());
    }
}
