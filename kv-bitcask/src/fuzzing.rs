//! Entry points into the file decoders for the `kv-fuzz` crate (cargo feature `fuzzing`, off
//! by default). Each is a thin call into the crate-private decoder; values come back as plain
//! tuples or as their canonical re-encoding, so no internal type becomes public.
//!
//! Files begin with a header ([`kv_engine_kit::header`]) naming their store: decoders that
//! check it take the store id expected (a fuzz target takes it from the input's own header,
//! so that mutations get past the header into the records).

use kv_api::{Result, Slot};
use kv_engine_kit::header::{self, StoreId};

use crate::keydir::MAX_FILE_ID;
use crate::{hint, merged, meta};

/// The largest segment id a keydir location can hold.
pub const MAX_SEGMENT_ID: u32 = MAX_FILE_ID;

/// The header kind of a merged segment.
pub const KIND_MERGED: u8 = crate::segment::KIND_MERGED;

/// Decodes `buf` as the hint file of segment `id` (at most [`MAX_SEGMENT_ID`]) of
/// `segment_len` bytes in store `store`; returns the canonical encoding of what it holds and
/// the number of entries, or `None` if the hint is not trusted.
///
/// The open's decoder (a checked run, decoded as its entries are taken) and `verify`'s must
/// trust the same hints and read the same entries from them: this panics if they do not.
pub fn hint(buf: &[u8], store: StoreId, id: u32, segment_len: u64) -> Option<(Vec<u8>, usize)> {
    let run = hint::HintRun::check(buf.to_vec(), store, id, segment_len);
    let checked = hint::check(buf, "hint", store, id, segment_len).ok();
    let (run, last) = match (run, checked) {
        (Some((run, last)), Some((entries, checked_last))) => {
            let from_run: Vec<_> = run.collect();
            assert!(
                from_run == entries && last == checked_last,
                "the open and verify read a hint differently"
            );
            (from_run, last)
        }
        (None, None) => return None,
        _ => panic!("the open and verify disagree on whether a hint is trusted"),
    };
    Some((hint::encode(store, id, segment_len, last, &run), run.len()))
}

/// Decodes `buf` as the `META` file of store `store` and re-encodes it.
pub fn meta(buf: &[u8], store: StoreId) -> Result<Vec<u8>> {
    meta::Meta::decode(buf, store).map(|m| m.encode(store))
}

/// One record of a merged segment: `(seq, time_ms, slot, key, value, frame offset, frame len)`.
pub type MergedRecord = (u64, u64, Slot, Vec<u8>, Option<Vec<u8>>, u64, u32);

/// Replays `buf` as a merged segment, from the end of its header as recovery does (which
/// checks the header apart, [`kv_engine_kit::header::FileHeader::check`]).
pub fn merged_replay(buf: &[u8]) -> Result<Vec<MergedRecord>> {
    let mut out = Vec::new();
    merged::replay(buf, header::LEN, "fuzz", |w| {
        out.push((
            w.seq,
            w.time_ms,
            w.slot,
            w.key.to_vec(),
            w.value.map(<[u8]>::to_vec),
            w.loc.offset,
            w.loc.len,
        ));
        Ok(())
    })?;
    Ok(out)
}

/// Encodes one committed record (what `merge` writes) at the end of `out`.
pub fn merged_encode(
    out: &mut Vec<u8>,
    seq: u64,
    time_ms: u64,
    slot: Slot,
    key: &[u8],
    value: Option<&[u8]>,
) {
    merged::encode(out, seq, time_ms, slot, key, value);
}

/// A write record read back: `(seq, slot, key, value)`; `None` is a removal.
pub type Write = (u64, Slot, Vec<u8>, Option<Vec<u8>>);

/// Decodes one whole write frame as a read does.
pub fn write_frame(buf: &[u8]) -> Result<Write> {
    let (seq, slot, key, value) = merged::decode_write_frame(buf, "fuzz", 0)?;
    Ok((seq, slot, key.to_vec(), value.map(<[u8]>::to_vec)))
}
