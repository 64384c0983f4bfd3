//! Decoding for iterators: [`Run`] holds the entries of one restart interval, decoded on
//! demand into reused buffers.

use std::cmp::Ordering;

use kv_api::{Error, Result};

use super::reader::{Block, Header};
use crate::key::{EntryRef, cmp_ikey};
use crate::sstable::varint::unzigzag;

impl Block {
    /// Decodes restart interval `r` into `out` whole (replacing what it held).
    #[cfg(test)]
    pub fn decode_run(&self, file: &str, r: usize, out: &mut Run) -> Result<()> {
        out.start(self, file, r)?;
        while out.decode_next(self, file)? {}
        Ok(())
    }
}

/// Initial capacities of a [`Run`]'s buffers (a restart interval of data blocks is 8 entries;
/// the key arena stays below the allocator's large-request size).
const RUN_KEY_BYTES: usize = 512;
const RUN_ENTRIES: usize = 16;

/// One entry of a [`Run`].
#[derive(Debug, Clone, Copy)]
struct RunEntry {
    /// Its key in the run's arena.
    key: (usize, usize),
    seq: u64,
    time_ms: u64,
    /// Its value as a range of the raw block.
    value: Option<(usize, usize)>,
    /// The value is a blob reference.
    blob: bool,
}

/// The entries of one restart interval of a block, decoded on demand: whole keys in a reused
/// arena, values left in the block. A forward cursor decodes only the entries it reaches (a
/// seek stops at its target, a short scan at its last entry), a reverse one decodes the
/// interval whole. Iterators keep one per cursor, so walking a block allocates nothing once
/// the buffers have grown. Decoding checks that entries are in order and that the interval
/// ends exactly at the next restart point.
#[derive(Debug, Default)]
pub(crate) struct Run {
    keys: Vec<u8>,
    entries: Vec<RunEntry>,
    /// Offset of the next entry to decode, and where the interval ends.
    at: usize,
    end: usize,
    /// `seq`/`time` of the last entry decoded (the base of the next one's deltas).
    seq: u64,
    time: u64,
}

impl Run {
    /// Starts decoding interval `r` of `block` (nothing decoded yet).
    pub fn start(&mut self, block: &Block, file: &str, r: usize) -> Result<()> {
        self.keys.clear();
        self.entries.clear();
        // First use: room for a typical interval at once rather than growing step by step.
        self.keys.reserve(RUN_KEY_BYTES);
        self.entries.reserve(RUN_ENTRIES);
        let Some(start) = block.restart(r) else {
            return Err(Error::corruption(
                file,
                block.offset,
                format!("restart interval {r} out of range"),
            ));
        };
        self.at = start;
        // `restart(r)` is `Some`: `r < restart_count`, so `r + 1` cannot overflow.
        self.end = r
            .checked_add(1)
            .and_then(|next| block.restart(next))
            .unwrap_or(block.data_end);
        Ok(())
    }

    /// Decodes the next entry of the interval; false if there is none.
    pub fn decode_next(&mut self, block: &Block, file: &str) -> Result<bool> {
        let at = self.at;
        if at >= self.end {
            if at > self.end {
                return Err(Error::corruption(
                    file,
                    block.file_offset(self.end),
                    "restart points do not match the entries",
                ));
            }
            return Ok(false);
        }
        let data = block.data(file)?;
        let bad = |why: &str| Error::corruption(file, block.file_offset(at), why);
        let h = Header::parse(data, at).ok_or_else(|| bad("malformed entry"))?;
        let prev = self.entries.last().copied();
        let (seq, time) = match prev {
            None => {
                if h.shared != 0 {
                    return Err(bad("restart entry shares a key prefix"));
                }
                (h.seq, h.time)
            }
            Some(_) => (
                self.seq.wrapping_add(unzigzag(h.seq) as u64),
                self.time.wrapping_add(unzigzag(h.time) as u64),
            ),
        };
        let (prev_start, prev_end) = prev.map_or((0, 0), |p| p.key);
        // The previous key's range lies in the arena (`prev_start <= prev_end`), so the shared
        // prefix does too once it is no longer than that key.
        let shared_end = prev_start
            .checked_add(h.shared)
            .filter(|e| *e <= prev_end)
            .ok_or_else(|| bad("shared prefix longer than the previous key"))?;
        let key_start = self.keys.len();
        self.keys.extend_from_within(prev_start..shared_end);
        self.keys.extend_from_slice(h.suffix);
        let key = (key_start, self.keys.len());
        if let Some(p) = prev {
            // Both are ranges of the arena that this run filled.
            let lost = || bad("decoded key outside the run's keys");
            let pk = self.keys.get(p.key.0..p.key.1).ok_or_else(lost)?;
            let k = self.keys.get(key.0..key.1).ok_or_else(lost)?;
            if cmp_ikey(pk, p.seq, k, seq) != Ordering::Less {
                return Err(bad("entries out of order"));
            }
        }
        self.entries.push(RunEntry {
            key,
            seq,
            time_ms: time,
            value: h.value_len.map(|_| (h.value_at, h.end)),
            blob: h.blob,
        });
        (self.seq, self.time) = (seq, time);
        self.at = h.end;
        if self.at > self.end {
            return Err(Error::corruption(
                file,
                block.file_offset(self.end),
                "restart points do not match the entries",
            ));
        }
        Ok(true)
    }

    /// Number of entries decoded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i`; `block` must be the block the run was decoded from (`None` if its value
    /// does not lie inside `block`, as for a key outside the run).
    #[inline]
    pub fn get<'a>(&'a self, i: usize, block: &'a Block) -> Option<EntryRef<'a>> {
        let e = self.entries.get(i)?;
        let value = match e.value {
            Some((s, end)) => Some(block.raw.get(s..end)?),
            None => None,
        };
        Some(EntryRef {
            ukey: self.keys.get(e.key.0..e.key.1)?,
            seq: e.seq,
            time_ms: e.time_ms,
            value,
            blob: e.blob,
        })
    }

    /// `(ukey, seq)` of entry `i`, without the value.
    pub fn ikey(&self, i: usize) -> Option<(&[u8], u64)> {
        let e = self.entries.get(i)?;
        Some((self.keys.get(e.key.0..e.key.1)?, e.seq))
    }

    /// Number of leading decoded entries for which `before(ukey, seq)` holds (it must be
    /// monotone).
    pub fn partition(&self, before: impl Fn(&[u8], u64) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.entries.len());
        while lo < hi {
            let mid = lo.midpoint(hi);
            match self.ikey(mid) {
                #[expect(clippy::arithmetic_side_effects, reason = "`mid < hi`")]
                Some((k, s)) if before(k, s) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo
    }

    /// Decodes entries until one for which `before(ukey, seq)` is false; returns its index
    /// (`len()` if the interval ends first).
    pub fn decode_until(
        &mut self,
        block: &Block,
        file: &str,
        before: impl Fn(&[u8], u64) -> bool,
    ) -> Result<usize> {
        loop {
            let n = self.entries.len();
            if let Some(last) = n.checked_sub(1)
                && let Some((k, s)) = self.ikey(last)
                && !before(k, s)
            {
                return Ok(last);
            }
            if !self.decode_next(block, file)? {
                return Ok(self.entries.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{flipped_under_valid_crc, sample};
    use super::*;

    /// Decoding run by run yields the entries in order, and a damaged run is corruption.
    #[test]
    fn runs_cover_the_block() {
        for interval in [1, 3, 16] {
            let (raw, want) = sample(100, interval);
            let block = Block::load(raw, "t", 0).expect("load");
            let mut run = Run::default();
            let mut got = Vec::new();
            for r in 0..block.runs() {
                block.decode_run("t", r, &mut run).expect("run");
                assert!(run.len() <= interval);
                got.extend(
                    (0..run.len())
                        .filter_map(|i| run.get(i, &block))
                        .map(|e| e.to_owned_entry()),
                );
            }
            assert_eq!(got, want);
            assert!(block.decode_run("t", block.runs(), &mut run).is_err());
        }
        // Under a valid CRC: decoding either works or is corruption, never a panic.
        let (raw, _) = sample(60, 4);
        for block in flipped_under_valid_crc(&raw) {
            let mut run = Run::default();
            for r in 0..block.runs() {
                let _ = block.decode_run("t", r, &mut run);
                let _ = run.partition(|u, _| u < &b"key-00005"[..]);
            }
            let _ = block.restarts_before("t", |u, _| u < &b"key-00005"[..]);
        }
    }

    /// Reading a run's entry from a block that does not hold its value (a block other than the
    /// one decoded, cut short) is no entry, not the entry with an empty value.
    #[test]
    fn a_value_outside_the_block_is_no_entry() {
        let (raw, _) = sample(40, 4);
        let block = Block::load(raw, "t", 0).expect("load");
        let mut run = Run::default();
        block.decode_run("t", 0, &mut run).expect("run");
        let (i, start) = (0..run.len())
            .find_map(|i| Some((i, run.entries[i].value.filter(|(s, e)| s < e)?.0)))
            .expect("an entry with a value in the first run");
        assert!(run.get(i, &block).is_some());
        let short = Block {
            raw: block.raw[..start].to_vec(),
            data_end: start,
            restart_count: 0,
            offset: 0,
            compressed: false,
        };
        assert!(run.get(i, &short).is_none());
    }
}
