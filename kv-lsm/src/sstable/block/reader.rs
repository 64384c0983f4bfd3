//! Reading a block in place: [`Block`] checks the CRC and the restart array once, then point
//! lookups binary-search the restart points and walk at most one interval of raw entries.

use kv_api::{Error, Result};
use kv_engine_kit::bytes::u32_at;

use super::codec::unseal;
use super::{KIND_BLOB, KIND_REMOVAL, KIND_VALUE};
#[cfg(test)]
use crate::key::OwnedEntry;
use crate::key::{EntryRef, InternalKey};
use crate::sstable::varint::{get_varint, unzigzag};

/// File offset of byte `at` of a block read at `offset`, for errors. Saturating: it only names
/// a place, and a block's bytes were read from the file there, so it cannot saturate.
pub(super) fn file_offset(offset: u64, at: usize) -> u64 {
    offset.saturating_add(at as u64)
}

/// The fixed fields of one entry, and where its key suffix and value lie (checked to be inside
/// the entries).
pub(super) struct Header<'a> {
    pub(super) shared: usize,
    /// `seq` and `time` as stored: absolute at restart points, zigzag deltas elsewhere.
    pub(super) seq: u64,
    pub(super) time: u64,
    pub(super) value_len: Option<usize>,
    /// Offset of the value (right after the key suffix).
    pub(super) value_at: usize,
    /// Offset of the next entry.
    pub(super) end: usize,
    /// The key suffix (`unshared` bytes).
    pub(super) suffix: &'a [u8],
    /// The value (`value_len` bytes), `None` for a removal.
    pub(super) value: Option<&'a [u8]>,
    /// The value is a blob reference (kind 2).
    pub(super) blob: bool,
}

impl<'a> Header<'a> {
    /// The entry at `at` of `data`; `None` if it is malformed or runs past `data`.
    pub(super) fn parse(data: &'a [u8], mut at: usize) -> Option<Header<'a>> {
        let shared = usize::try_from(get_varint(data, &mut at)?).ok()?;
        let unshared = usize::try_from(get_varint(data, &mut at)?).ok()?;
        let kind = *data.get(at)?;
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`at` indexes the byte just read: `at + 1 <= data.len()`"
        )]
        {
            at += 1;
        }
        let seq = get_varint(data, &mut at)?;
        let time = get_varint(data, &mut at)?;
        let value_len = match kind {
            KIND_VALUE | KIND_BLOB => Some(usize::try_from(get_varint(data, &mut at)?).ok()?),
            KIND_REMOVAL => None,
            _ => return None,
        };
        // Key and value must lie inside the entries region.
        let value_at = at.checked_add(unshared)?;
        let suffix = data.get(at..value_at)?;
        let (value, end) = match value_len {
            Some(n) => {
                let end = value_at.checked_add(n)?;
                (Some(data.get(value_at..end)?), end)
            }
            None => (None, value_at),
        };
        Some(Header {
            shared,
            seq,
            time,
            value_len,
            value_at,
            end,
            suffix,
            value,
            blob: kind == KIND_BLOB,
        })
    }
}

/// Decodes entries one after another from a restart point, undoing prefix compression and the
/// delta encoding of `seq`/`time` (point lookups).
pub(super) struct Walker<'a> {
    block: &'a Block,
    pub(super) at: usize,
    pub(super) next_restart: usize,
    pub(super) key: Vec<u8>,
    pub(super) seq: u64,
    pub(super) time: u64,
}

impl<'a> Walker<'a> {
    pub(super) fn new(block: &'a Block, restart: usize) -> Self {
        let at = block.restart(restart).unwrap_or(block.data_end);
        Walker {
            block,
            at,
            next_restart: restart,
            key: Vec::with_capacity(64),
            seq: 0,
            time: 0,
        }
    }

    /// Decodes the next entry, with the key in `self.key`.
    pub(super) fn next(&mut self, file: &str) -> Result<Option<Header<'a>>> {
        let data = self.block.data(file)?;
        let start = self.at;
        if start >= data.len() {
            return Ok(None);
        }
        let bad = |why: &str| Error::corruption(file, self.block.file_offset(start), why);
        let h = Header::parse(data, start).ok_or_else(|| bad("malformed entry"))?;
        if self.block.restart(self.next_restart) == Some(start) {
            if h.shared != 0 {
                return Err(bad("restart entry shares a key prefix"));
            }
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "`restart(next_restart)` is `Some`: `next_restart < restart_count`"
            )]
            {
                self.next_restart += 1;
            }
            (self.seq, self.time) = (h.seq, h.time);
        } else {
            if start == 0 {
                return Err(bad("block does not start at a restart point"));
            }
            self.seq = self.seq.wrapping_add(unzigzag(h.seq) as u64);
            self.time = self.time.wrapping_add(unzigzag(h.time) as u64);
        }
        if h.shared > self.key.len() {
            return Err(bad("shared prefix longer than the previous key"));
        }
        self.key.truncate(h.shared);
        self.key.extend_from_slice(h.suffix);
        self.at = h.end;
        Ok(Some(h))
    }
}

/// A block as read from a table: CRC and restart array checked. The cache holds these; point
/// lookups search them in place ([`Block::find_with`]), iterators decode one restart interval
/// at a time ([`Block::decode_run`]), the index is decoded whole ([`Block::decode`]).
#[derive(Debug)]
pub(crate) struct Block {
    pub(super) raw: Vec<u8>,
    /// End of the entries; the restart array follows.
    pub(super) data_end: usize,
    pub(super) restart_count: usize,
    /// File offset of the block, for error messages.
    pub(super) offset: u64,
    /// Stored compressed: offsets into `raw` are not file offsets.
    pub(super) compressed: bool,
}

impl Block {
    /// Checks the CRC of a block read from `file` at `offset`, decompresses it if it is
    /// stored compressed, and checks its restart array. Damage is [`Error::Corruption`]
    /// naming the byte where it was found (the block's offset inside a compressed block).
    pub fn load(raw: Vec<u8>, file: &str, offset: u64) -> Result<Block> {
        let (raw, compressed) = unseal(raw, file, offset)?;
        let at_file = |at: usize| {
            if compressed {
                offset
            } else {
                file_offset(offset, at)
            }
        };
        let bad = |at: usize, why: &str| Error::corruption(file, at_file(at), why);
        let count_at = raw
            .len()
            .checked_sub(4)
            .ok_or_else(|| bad(0, "block shorter than its restart count"))?;
        let count =
            u32_at(&raw, count_at).ok_or_else(|| bad(count_at, "truncated block"))? as usize;
        let data_end = count
            .checked_mul(4)
            .and_then(|n| count_at.checked_sub(n))
            .ok_or_else(|| bad(count_at, "impossible restart count"))?;
        let mut prev: Option<u32> = None;
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`i < count` and `data_end + 4 * count == count_at`: no restart offset overflows"
        )]
        for i in 0..count {
            let r =
                u32_at(&raw, data_end + 4 * i).ok_or_else(|| bad(count_at, "truncated block"))?;
            let ok = match prev {
                None => r == 0,
                Some(p) => r > p,
            };
            if !ok || r as usize >= data_end {
                return Err(bad(data_end + 4 * i, "impossible restart point"));
            }
            prev = Some(r);
        }
        if data_end > 0 && count == 0 {
            return Err(bad(count_at, "entries without restart points"));
        }
        Ok(Block {
            raw,
            data_end,
            restart_count: count,
            offset,
            compressed,
        })
    }

    /// The entries (checked by `load` to lie inside the block).
    pub(super) fn data(&self, file: &str) -> Result<&[u8]> {
        self.raw.get(..self.data_end).ok_or_else(|| {
            Error::corruption(file, self.offset, "entries end past the end of the block")
        })
    }

    /// Offset of restart point `i` (checked by `load`: increasing, inside the entries).
    /// Reads (and discards) a byte of the restart array and of the middle restart entry,
    /// where a search of the block starts: a batch touching its blocks before searching them
    /// has their memory reads overlap instead of waiting one after the other.
    pub fn touch(&self) {
        let mid = self.restart(self.restart_count / 2).unwrap_or(0);
        std::hint::black_box(self.raw.get(self.data_end).copied());
        std::hint::black_box(self.raw.get(mid).copied());
    }

    pub(super) fn restart(&self, i: usize) -> Option<usize> {
        if i >= self.restart_count {
            return None;
        }
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`i < restart_count`, and `load` made `data_end + 4 * restart_count` the \
                      offset of the count, inside the block"
        )]
        let at = self.data_end + 4 * i;
        u32_at(&self.raw, at).map(|r| r as usize)
    }

    /// File offset of byte `at` of the block, for errors (saturating: it names a place, and
    /// the block's bytes were read from the file at `offset`, so it cannot saturate).
    pub(super) fn file_offset(&self, at: usize) -> u64 {
        if self.compressed {
            return self.offset;
        }
        file_offset(self.offset, at)
    }

    /// The internal key (user key, sequence number) of the block's first and last entries;
    /// `None` for an empty block. Walks the last restart interval only.
    pub fn bounds(&self, file: &str) -> Result<Option<[InternalKey; 2]>> {
        let mut first = Walker::new(self, 0);
        if first.next(file)?.is_none() {
            return Ok(None);
        }
        let first = (first.key, first.seq);
        let mut last = Walker::new(self, self.restart_count.saturating_sub(1));
        while last.next(file)?.is_some() {}
        Ok(Some([first, (last.key, last.seq)]))
    }

    /// File offset of the block.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of restart intervals ([`Run`](super::Run)s).
    pub fn runs(&self) -> usize {
        self.restart_count
    }

    /// Memory held, for the cache's accounting.
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "a Vec's capacity is at most isize::MAX bytes"
    )]
    pub fn charge(&self) -> usize {
        self.raw.capacity() + 64
    }

    /// The number of restart entries that lie before the position (`before` must be monotone
    /// over the entries): a binary search that decodes only restart entries.
    pub fn restarts_before(
        &self,
        file: &str,
        before: impl Fn(&[u8], u64) -> bool,
    ) -> Result<usize> {
        let data = self.data(file)?;
        let restart_key = |i: usize| -> Result<(&[u8], u64)> {
            let at = self.restart(i).ok_or_else(|| {
                Error::corruption(file, self.offset, format!("restart point {i} missing"))
            })?;
            let h = Header::parse(data, at)
                .filter(|h| h.shared == 0)
                .ok_or_else(|| {
                    Error::corruption(file, self.file_offset(at), "malformed restart entry")
                })?;
            Ok((h.suffix, h.seq))
        };
        let (mut lo, mut hi) = (0, self.restart_count);
        while lo < hi {
            let mid = lo.midpoint(hi);
            let (k, seq) = restart_key(mid)?;
            if before(k, seq) {
                #[expect(clippy::arithmetic_side_effects, reason = "`mid < hi`")]
                {
                    lo = mid + 1;
                }
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The first entry for which `before(ukey, seq)` is false, passed to `f`: a binary search
    /// over the restart points, then a short walk.
    pub fn find_with<T>(
        &self,
        file: &str,
        before: impl Fn(&[u8], u64) -> bool,
        f: impl FnOnce(EntryRef<'_>) -> T,
    ) -> Result<Option<T>> {
        // Restart points whose entry lies before the position: the answer is in the interval
        // after the last of them (or is the next restart entry).
        let lo = self.restarts_before(file, &before)?;
        let mut walker = Walker::new(self, lo.saturating_sub(1));
        while let Some(h) = walker.next(file)? {
            if !before(&walker.key, walker.seq) {
                return Ok(Some(f(EntryRef {
                    ukey: &walker.key,
                    seq: walker.seq,
                    time_ms: walker.time,
                    value: h.value,
                    blob: h.blob,
                })));
            }
        }
        Ok(None)
    }

    /// The first entry for which `before(ukey, seq)` is false, owned.
    #[cfg(test)]
    pub fn find(
        &self,
        file: &str,
        before: impl Fn(&[u8], u64) -> bool,
    ) -> Result<Option<OwnedEntry>> {
        self.find_with(file, before, |e| e.to_owned_entry())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::fixtures::{decode, flipped_under_valid_crc, sample};
    use super::*;
    use crate::key::Seek;

    /// `find` on the raw block agrees with a search over the decoded entries, for every
    /// position kind and restart interval.
    #[test]
    fn find_agrees_with_decoded_search() {
        for interval in [1, 3, 16] {
            let (raw, want) = sample(120, interval);
            let block = Block::load(raw, "t", 0).expect("load");
            let mut targets: Vec<(Vec<u8>, u64)> =
                want.iter().map(|e| (e.ukey.clone(), e.seq)).collect();
            targets.push((b"key-".to_vec(), 0));
            targets.push((b"key-99999".to_vec(), 0));
            targets.push((b"key-00007x".to_vec(), 5));
            for (k, seq) in &targets {
                for seek in [
                    Seek::Ge(k),
                    Seek::Gt(k),
                    Seek::At(k, *seq),
                    Seek::At(k, seq + 3),
                    Seek::At(k, seq.saturating_sub(3)),
                ] {
                    let expected = want.iter().find(|e| !seek.is_before(&e.ukey, e.seq));
                    let got = block.find("t", |u, s| seek.is_before(u, s)).expect("find");
                    assert_eq!(got.as_ref(), expected, "interval {interval}, {seek:?}");
                }
            }
        }
    }

    #[test]
    fn every_flipped_byte_and_cut_is_corruption() {
        let (raw, _) = sample(40, 4);
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = raw.clone();
                bad[i] ^= bit;
                assert!(
                    matches!(decode(bad, 100), Err(Error::Corruption { offset, .. }) if offset >= 100),
                    "flip at {i}"
                );
            }
        }
        for cut in 0..raw.len() {
            assert!(matches!(
                decode(raw[..cut].to_vec(), 0),
                Err(Error::Corruption { .. })
            ));
        }
    }

    #[test]
    fn damage_under_a_valid_crc_is_still_caught() {
        // Garbage with a correct CRC (a bug or a forged block) must not panic either.
        for seed in 0..2000u32 {
            let mut body: Vec<u8> = (0..(seed % 64))
                .map(|i| (seed.wrapping_mul(2654435761) >> (i % 24)) as u8)
                .collect();
            body.extend_from_slice(&(seed % 3).to_le_bytes());
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            let _ = decode(body, 0);
        }
        // Valid blocks with bytes flipped and the CRC fixed: decoding and searching either
        // succeed or report corruption, never panic.
        let (raw, want) = sample(60, 4);
        for block in flipped_under_valid_crc(&raw) {
            let block = Arc::new(block);
            let _ = block.decode("t");
            for e in want.iter().step_by(7) {
                let _ = block.find("t", |u, s| Seek::At(&e.ukey, e.seq).is_before(u, s));
            }
        }
    }

    /// A length past 4 GiB is corruption on every target. It was cast with `as usize`, which
    /// on 32-bit targets (wasm32) cut `2^32 + 1` to 1 and served the one byte that follows as
    /// the value instead of reporting the block.
    #[test]
    fn a_length_past_u32_is_corruption_not_cut() {
        use crate::sstable::varint::put_varint;
        for (unshared, value_len) in [(1u64, (1u64 << 32) + 1), ((1 << 32) + 1, 1)] {
            let mut raw = Vec::new();
            put_varint(&mut raw, 0); // shared
            put_varint(&mut raw, unshared);
            raw.push(super::super::KIND_VALUE);
            put_varint(&mut raw, 7); // seq
            put_varint(&mut raw, 9); // time
            put_varint(&mut raw, value_len);
            raw.extend_from_slice(b"kx");
            raw.extend_from_slice(&0u32.to_le_bytes()); // restart 0
            raw.extend_from_slice(&1u32.to_le_bytes()); // restart count
            raw.push(0); // codec: none
            let crc = crc32fast::hash(&raw);
            raw.extend_from_slice(&crc.to_le_bytes());
            let block = Block::load(raw.clone(), "t", 100).expect("load");
            assert!(matches!(
                block.find("t", |_, _| false),
                Err(Error::Corruption { offset: 100, .. })
            ));
            assert!(matches!(
                decode(raw, 100),
                Err(Error::Corruption { offset: 100, .. })
            ));
        }
    }

    /// A block whose fields disagree with its bytes (what `load` rules out) is corruption,
    /// never an empty key, an empty block or another entry in place of a missing one.
    #[test]
    fn a_broken_block_is_corruption_not_empty_data() {
        let (raw, want) = sample(40, 4);
        let good = Block::load(raw, "t", 100).expect("load");
        let last = want.last().expect("entries");
        let find_last =
            |b: &Block| b.find("t", |u, s| Seek::At(&last.ukey, last.seq).is_before(u, s));
        assert_eq!(find_last(&good).expect("find").as_ref(), Some(last));
        // More restart points than the block holds: the binary search used to read a missing
        // one as offset 0 (the first key) and answer "not found".
        let more_restarts = Block {
            raw: good.raw.clone(),
            data_end: good.data_end,
            restart_count: good.restart_count + 1000,
            offset: 100,
            compressed: false,
        };
        assert!(matches!(
            find_last(&more_restarts),
            Err(Error::Corruption { offset: 100, .. })
        ));
        // Entries said to end past the block's bytes.
        let past_the_end = Block {
            raw: good.raw.clone(),
            data_end: good.raw.len() + 1,
            restart_count: good.restart_count,
            offset: 100,
            compressed: false,
        };
        assert!(matches!(
            find_last(&past_the_end),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            Arc::new(past_the_end).decode("t"),
            Err(Error::Corruption { offset: 100, .. })
        ));
    }
}
