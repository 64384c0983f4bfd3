//! Hint files: the keydir entries of one sealed segment, so reopening reads keys, not values.
//!
//! A hint file is its header ([`kv_engine_kit::header`], kind `KIND_HINT`, the segment's id),
//! then a sequence of CRC frames ([`kv_engine_kit::frame`]): chunks of entries, then one
//! footer. Little-endian:
//!
//! * chunk: `1 | entries`, entry = `key_len u32 | key (slot byte + key) | seq u64 |
//!   time_ms u64 | offset u64 | frame_len u32 | flags u8` (flag bit 0 = removal);
//! * footer: `2 | segment id u32 | segment length u64 | entry count u64 | last seq u64 |
//!   last time_ms u64`.
//!
//! Entries are in key order, versions of a key oldest first. A hint is only trusted whole: a
//! header of another store or file, a missing footer, a segment length that differs from the
//! segment's, any damage, an implausible entry or one out of key order makes the caller
//! replay the segment instead. Hints are an optimisation and never the only copy of
//! anything.

use kv_api::{Error, Result};
use kv_engine_kit::bytes::{Reader, u32_at, u64_at};
use kv_engine_kit::frame;
use kv_engine_kit::header::{self, StoreId};

use crate::key::Key;
use crate::keydir::Loc;
use crate::segment::{KIND_HINT, header as file_header};

const CHUNK: u8 = 1;
const FOOTER: u8 = 2;
const REMOVAL: u8 = 1;
const ENTRY_FIXED: usize = 4 + 8 + 8 + 8 + 4 + 1;
const FOOTER_LEN: usize = 1 + 4 + 8 * 4;
const CHUNK_BYTES: usize = 64 << 10;

/// The newest commit a segment covers: sequence number and time.
pub(crate) type Last = (u64, u64);

/// Encodes the hint of segment `id` of store `store`, `segment_len` bytes long, whose entries
/// are `entries` (in key order, versions oldest first) and whose last commit is `last`. The
/// engine uses [`encode_yielding`]; this is for tests and the fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn encode(
    store: StoreId,
    id: u32,
    segment_len: u64,
    last: Last,
    entries: &[(Key, Loc)],
) -> Vec<u8> {
    let mut out = start(store, id, entries.len());
    let mut rest = entries;
    while !rest.is_empty() {
        encode_chunk(&mut out, &mut rest);
    }
    encode_footer(&mut out, id, segment_len, entries.len(), last);
    out
}

/// [`encode`], letting other tasks run after each chunk: the hint of a full segment (a
/// million entries, tens of milliseconds) is built inside a commit that seals it, on an
/// executor thread, which must not be held that long (#12).
pub(crate) async fn encode_yielding(
    store: StoreId,
    id: u32,
    segment_len: u64,
    last: Last,
    entries: &[(Key, Loc)],
) -> Vec<u8> {
    let mut out = start(store, id, entries.len());
    let mut rest = entries;
    while !rest.is_empty() {
        encode_chunk(&mut out, &mut rest);
        kv_api::yield_now().await;
    }
    encode_footer(&mut out, id, segment_len, entries.len(), last);
    out
}

/// The file header, in a buffer large enough for the whole hint of `count` entries.
fn start(store: StoreId, id: u32, count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        count
            .saturating_mul(ENTRY_FIXED + 24)
            .saturating_add(64 + header::LEN),
    );
    file_header(store, KIND_HINT, id).encode(&mut out);
    out
}

/// Encodes one chunk frame of the entries at the front of `rest` (at most [`CHUNK_BYTES`]),
/// and moves `rest` past them.
fn encode_chunk(out: &mut Vec<u8>, rest: &mut &[(Key, Loc)]) {
    frame::encode_with(out, |b| {
        b.push(CHUNK);
        let start = b.len();
        while let Some(((key, loc), tail)) = (*rest).split_first() {
            // A chunk ends before the entry that would take it past CHUNK_BYTES, so a
            // frame holds at most one key of the largest size: never past MAX_PAYLOAD.
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "`b` only grew since `start`; a chunk is under CHUNK_BYTES plus \
                          one entry, an entry a slice's length plus ENTRY_FIXED"
            )]
            let full = b.len() > start && b.len() - start + ENTRY_FIXED + key.len() > CHUNK_BYTES;
            if full {
                break;
            }
            #[expect(
                clippy::cast_possible_truncation,
                reason = "a keydir key is at most 1 + kv_api::MAX_KEY_AND_VALUE bytes \
                          (validated options), or was read back with a u32 length"
            )]
            b.extend_from_slice(&(key.len() as u32).to_le_bytes());
            b.extend_from_slice(key);
            b.extend_from_slice(&loc.seq.to_le_bytes());
            b.extend_from_slice(&loc.time_ms.to_le_bytes());
            b.extend_from_slice(&loc.offset.to_le_bytes());
            b.extend_from_slice(&loc.len.to_le_bytes());
            b.push(if loc.is_removal() { REMOVAL } else { 0 });
            *rest = tail;
        }
    });
}

/// The footer frame.
fn encode_footer(out: &mut Vec<u8>, id: u32, segment_len: u64, count: usize, last: Last) {
    frame::encode_with(out, |b| {
        b.push(FOOTER);
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&segment_len.to_le_bytes());
        b.extend_from_slice(&(count as u64).to_le_bytes());
        b.extend_from_slice(&last.0.to_le_bytes());
        b.extend_from_slice(&last.1.to_le_bytes());
    });
}

/// A hint checked whole, whose entries are decoded from its bytes as they are taken: the
/// keydir is built from them at open without a vector of every entry in between (56 bytes
/// per key, and a pass over them).
pub(crate) struct HintRun {
    buf: Vec<u8>,
    id: u32,
    segment_len: u64,
    /// The next frame.
    next_frame: usize,
    /// The entries of the chunk being read: from `at` to `end`.
    at: usize,
    end: usize,
    /// Entries not taken yet.
    left: usize,
    /// The last entry's key.
    last_key: Option<Key>,
}

impl HintRun {
    /// Checks `buf` as the hint of segment `id` of store `store`, which is `segment_len` bytes
    /// long: the run of its entries and the segment's last commit, or
    /// `None` if the hint cannot be trusted.
    pub fn check(buf: Vec<u8>, store: StoreId, id: u32, segment_len: u64) -> Option<(Self, Last)> {
        file_header(store, KIND_HINT, id).check(&buf, "hint").ok()?;
        let (mut count, mut last_key) = (0usize, None);
        let last = decode_into(
            &buf,
            id,
            segment_len,
            &mut |key, _| {
                count = count.saturating_add(1);
                last_key = Some(key);
            },
            &mut 0,
        )?;
        let last_key = last_key.map(Key::from_bytes);
        let run = HintRun {
            buf,
            id,
            segment_len,
            next_frame: header::LEN,
            at: 0,
            end: 0,
            left: count,
            last_key,
        };
        Some((run, last))
    }

    /// Entries not taken yet.
    pub fn len(&self) -> usize {
        self.left
    }

    /// The key of the last entry.
    pub fn last_key(&self) -> Option<&Key> {
        self.last_key.as_ref()
    }
}

impl Iterator for HintRun {
    type Item = (Key, Loc);

    /// The next entry: the checks of [`HintRun::check`] passed, so this reads what they read
    /// (and stops, were the bytes to differ).
    fn next(&mut self) -> Option<(Key, Loc)> {
        loop {
            if self.at < self.end {
                let mut r = Reader::new(self.buf.get(self.at..self.end)?);
                let Some((key, loc)) = entry(&mut r, self.id, self.segment_len) else {
                    // Never: `check` read these very bytes.
                    debug_assert!(false, "a checked hint no longer decodes");
                    return None;
                };
                self.at = self.at.checked_add(r.position())?;
                self.left = self.left.saturating_sub(1);
                return Some((Key::from_bytes(key), loc));
            }
            let frame::Decoded::Frame { payload, next } = frame::decode(&self.buf, self.next_frame)
            else {
                return None;
            };
            if payload.first() != Some(&CHUNK) {
                return None;
            }
            // The payload ends where the next frame begins; its entries follow its kind byte.
            self.at = next.checked_sub(payload.len())?.checked_add(1)?;
            self.end = next;
            self.next_frame = next;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// One entry of a chunk, checked: its key (slot byte + key) and place in segment `id` of
/// `segment_len` bytes. `None` if it is cut short or implausible.
fn entry<'a>(r: &mut Reader<'a>, id: u32, segment_len: u64) -> Option<(&'a [u8], Loc)> {
    let key = r.len_prefixed()?;
    let seq = r.u64()?;
    let time_ms = r.u64()?;
    let offset = r.u64()?;
    let len = r.u32()?;
    let flags = r.u8()?;
    if key.is_empty()
        || offset < header::LEN as u64
        || flags & !REMOVAL != 0
        || offset.checked_add(u64::from(len))? > segment_len
    {
        return None;
    }
    Some((
        key,
        Loc::new(seq, time_ms, id, offset, len, flags & REMOVAL != 0),
    ))
}

/// [`HintRun::check`] for `verify`: the entries and last commit of hint `name`, or
/// [`Error::Corruption`] naming the offset of the frame that cannot be trusted, and why.
pub(crate) fn check(
    buf: &[u8],
    name: &str,
    store: StoreId,
    id: u32,
    segment_len: u64,
) -> Result<(Vec<(Key, Loc)>, Last)> {
    file_header(store, KIND_HINT, id).check(buf, name)?;
    let mut out = Vec::new();
    let mut at = header::LEN;
    let decoded = decode_into(
        buf,
        id,
        segment_len,
        &mut |key, loc| out.push((Key::from_bytes(key), loc)),
        &mut at,
    );
    match decoded {
        Some(last) => Ok((out, last)),
        None => {
            let why = match frame::decode(buf, at) {
                frame::Decoded::Frame { .. } => {
                    "implausible entry or footer (another segment length, an entry outside it)"
                }
                frame::Decoded::BadCrc => "CRC mismatch",
                frame::Decoded::Truncated => "truncated frame",
                frame::Decoded::End => "no footer",
            };
            Err(Error::corruption(name, at as u64, why))
        }
    }
}

/// Decodes the frames after the header, handing each entry to `out`; `at` follows the frame
/// being decoded, so that on `None` it is where the hint stopped being trustworthy.
fn decode_into<'a>(
    buf: &'a [u8],
    id: u32,
    segment_len: u64,
    out: &mut impl FnMut(&'a [u8], Loc),
    at: &mut usize,
) -> Option<Last> {
    let mut count = 0u64;
    // The open merges hints as they are decoded, so one out of key order is not trusted.
    let mut prev: &[u8] = &[];
    *at = header::LEN;
    loop {
        let frame::Decoded::Frame { payload, next } = frame::decode(buf, *at) else {
            return None;
        };
        match *payload.first()? {
            CHUNK => {
                let mut r = Reader::new(payload.get(1..)?);
                while !r.is_empty() {
                    let (key, loc) = entry(&mut r, id, segment_len)?;
                    if key < prev {
                        return None;
                    }
                    prev = key;
                    out(key, loc);
                    count = count.checked_add(1)?;
                }
            }
            FOOTER => {
                let ok = payload.len() == FOOTER_LEN
                    && u32_at(payload, 1)? == id
                    && u64_at(payload, 5)? == segment_len
                    && u64_at(payload, 13)? == count
                    && next == buf.len();
                return ok.then_some((u64_at(payload, 21)?, u64_at(payload, 29)?));
            }
            _ => return None,
        }
        *at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: StoreId = StoreId::from_bytes([3; 16]);

    /// The entries of a trusted hint appended to `out`, as the open reads them.
    fn decode(
        buf: &[u8],
        store: StoreId,
        id: u32,
        len: u64,
        out: &mut Vec<(Key, Loc)>,
    ) -> Option<Last> {
        let (run, last) = HintRun::check(buf.to_vec(), store, id, len)?;
        out.extend(run);
        Some(last)
    }

    fn entries(n: usize) -> Vec<(Key, Loc)> {
        (0..n)
            .map(|i| {
                let key = Key::new(1, format!("key{i:06}").as_bytes());
                (
                    key,
                    Loc::new(i as u64 + 1, 99, 3, 43 + i as u64 * 40, 40, i % 3 == 0),
                )
            })
            .collect()
    }

    #[test]
    fn round_trip_over_several_chunks() {
        let e = entries(5000);
        let buf = encode(S, 3, 300_000, (5000, 99), &e);
        let mut out = vec![(Key::new(0, b"x"), e[0].1)];
        assert_eq!(decode(&buf, S, 3, 300_000, &mut out), Some((5000, 99)));
        assert_eq!(&out[1..], &e[..]);
        let empty = encode(S, 3, 0, (0, 0), &[]);
        assert_eq!(decode(&empty, S, 3, 0, &mut Vec::new()), Some((0, 0)));
    }

    /// The yielding encoder (sealing a segment) writes the very bytes of the plain one.
    #[tokio::test]
    async fn yielding_encoder_writes_the_same_bytes() {
        for n in [0, 1, 5000] {
            let e = entries(n);
            let plain = encode(S, 3, 300_000, (7, 99), &e);
            assert!(
                encode_yielding(S, 3, 300_000, (7, 99), &e).await == plain,
                "{n} entries"
            );
        }
    }

    /// A checked run yields what `decode` does, in order, and says how many are left.
    #[test]
    fn a_run_yields_the_decoded_entries() {
        for n in [0, 1, 50, 5000] {
            let e = entries(n);
            let buf = encode(S, 3, 300_000, (n as u64, 99), &e);
            let (mut run, last) = HintRun::check(buf.clone(), S, 3, 300_000).expect("trusted");
            assert_eq!(last, (n as u64, 99));
            assert_eq!(run.len(), n);
            assert_eq!(run.last_key(), e.last().map(|(k, _)| k));
            let first = run.next();
            assert_eq!(run.len(), n.saturating_sub(1));
            let all: Vec<(Key, Loc)> = first.into_iter().chain(run).collect();
            assert_eq!(all, e);
            // Anything `decode` refuses, `check` refuses.
            for cut in (0..buf.len()).step_by(97) {
                assert!(HintRun::check(buf[..cut].to_vec(), S, 3, 300_000).is_none());
            }
            assert!(HintRun::check(buf, S, 3, 300_001).is_none());
        }
    }

    #[test]
    fn anything_odd_is_rejected() {
        let e = entries(50);
        let buf = encode(S, 3, 2100, (50, 99), &e);
        let mut out = Vec::new();
        // Wrong segment, wrong length, entry past the end of the segment.
        assert_eq!(decode(&buf, S, 4, 2100, &mut out), None);
        assert_eq!(decode(&buf, S, 3, 2101, &mut out), None);
        let short = encode(S, 3, 100, (50, 99), &e);
        assert_eq!(decode(&short, S, 3, 100, &mut out), None);
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut], S, 3, 2100, &mut out), None, "cut {cut}");
        }
        for i in (0..buf.len()).step_by(7) {
            let mut bad = buf.clone();
            bad[i] ^= 0x20;
            assert_eq!(decode(&bad, S, 3, 2100, &mut out), None, "flip {i}");
        }
        // Entries out of key order (a well-framed hint, but not one this engine writes).
        let mut swapped = e.clone();
        swapped.swap(3, 4);
        let unsorted = encode(S, 3, 2100, (50, 99), &swapped);
        assert_eq!(decode(&unsorted, S, 3, 2100, &mut out), None);
        assert!(check(&unsorted, "h", S, 3, 2100).is_err());
        // Another store's hint, or another segment's.
        let other = StoreId::from_bytes([4; 16]);
        assert_eq!(decode(&buf, other, 3, 2100, &mut out), None);
        assert!(out.is_empty(), "nothing is left behind by a rejected hint");
    }
}
