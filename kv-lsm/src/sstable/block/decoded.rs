//! Decoding a whole block: [`DecodedBlock`], the form in which a table keeps its index in memory
//! (keys in one arena, values read in place from the raw block).

use std::cmp::Ordering;
use std::sync::Arc;

use kv_api::{Error, Result};

use super::reader::{Block, Walker};
#[cfg(test)]
use crate::key::OwnedEntry;
use crate::key::cmp_ikey;

impl Block {
    /// Decodes every entry (checking order and restart points): the index block, which a
    /// table keeps decoded while it is open.
    pub fn decode(self: &Arc<Self>, file: &str) -> Result<DecodedBlock> {
        let data_len = self.data_end;
        // Capacity hints only: saturating is exact enough.
        let mut entries: Vec<DecodedEntry> = Vec::with_capacity(
            self.restart_count
                .saturating_mul(16)
                .min((data_len / 4).saturating_add(1)),
        );
        let mut keys = Vec::with_capacity(entries.capacity().saturating_mul(16));
        let mut walker = Walker::new(self, 0);
        let mut start = 0;
        // Keys and values are addressed by u32 offsets: past 4 GiB (keys with their shared
        // prefixes restored can outgrow the block) is refused, never cut.
        let offset = |n: usize, at: usize| {
            u32::try_from(n).map_err(|_| {
                Error::corruption(
                    file,
                    self.file_offset(at),
                    "block too large to decode whole (keys or values past 4 GiB)",
                )
            })
        };
        while let Some(h) = walker.next(file)? {
            if let Some(last) = entries.last() {
                let prev = keys
                    .get(last.key.0 as usize..last.key.1 as usize)
                    .ok_or_else(|| {
                        Error::corruption(
                            file,
                            self.file_offset(start),
                            "previous key outside the decoded keys",
                        )
                    })?;
                if cmp_ikey(prev, last.seq, &walker.key, walker.seq) != Ordering::Less {
                    return Err(Error::corruption(
                        file,
                        self.file_offset(start),
                        "entries out of order",
                    ));
                }
            }
            let key_start = offset(keys.len(), start)?;
            keys.extend_from_slice(&walker.key);
            let key = (key_start, offset(keys.len(), start)?);
            let value = match h.value_len {
                Some(_) => Some((offset(h.value_at, start)?, offset(h.end, start)?)),
                None => None,
            };
            entries.push(DecodedEntry {
                key,
                seq: walker.seq,
                time_ms: walker.time,
                value,
                blob: h.blob,
            });
            start = walker.at;
        }
        if walker.next_restart != self.restart_count {
            return Err(Error::corruption(
                file,
                self.file_offset(data_len),
                "restart points do not match the entries",
            ));
        }
        Ok(DecodedBlock {
            block: self.clone(),
            keys,
            entries,
        })
    }
}

/// One entry of a [`DecodedBlock`]: its whole key as `(start, end)` in the key arena, its value
/// as `(start, end)` in the raw block.
#[derive(Debug, Clone, Copy)]
struct DecodedEntry {
    key: (u32, u32),
    seq: u64,
    // Read by the tests, which compare whole entries.
    #[cfg_attr(not(test), allow(dead_code))]
    time_ms: u64,
    value: Option<(u32, u32)>,
    /// The value is a blob reference.
    blob: bool,
}

/// A block decoded whole (the index): keys in one arena (prefix compression undone), values
/// read in place from the raw block.
#[derive(Debug)]
pub(crate) struct DecodedBlock {
    block: Arc<Block>,
    keys: Vec<u8>,
    entries: Vec<DecodedEntry>,
}

impl DecodedBlock {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    // `key` and `raw` never fall back to the empty slice: `Block::decode`, the only maker of a
    // `DecodedBlock`, takes each key range from the arena it fills and each value range from
    // an entry that `Header::parse` found inside the block, and refuses offsets past u32.

    fn key(&self, (start, end): (u32, u32)) -> &[u8] {
        self.keys
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    fn raw(&self, (start, end): (u32, u32)) -> &[u8] {
        self.block
            .raw
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// User key of entry `i` (empty if out of range).
    pub fn ukey(&self, i: usize) -> &[u8] {
        self.entries.get(i).map_or(&[][..], |e| self.key(e.key))
    }

    /// Sequence number of entry `i`.
    pub fn seq(&self, i: usize) -> Option<u64> {
        self.entries.get(i).map(|e| e.seq)
    }

    /// True if the value of entry `i` is a blob reference.
    pub fn is_blob(&self, i: usize) -> bool {
        self.entries.get(i).is_some_and(|e| e.blob)
    }

    /// Value of entry `i` (`None` for a removal).
    pub fn value(&self, i: usize) -> Option<&[u8]> {
        self.entries
            .get(i)
            .and_then(|e| e.value)
            .map(|v| self.raw(v))
    }

    /// Entry `i`, owned.
    #[cfg(test)]
    pub fn entry(&self, i: usize) -> Option<OwnedEntry> {
        let e = self.entries.get(i)?;
        Some(OwnedEntry {
            ukey: self.key(e.key).to_vec(),
            seq: e.seq,
            time_ms: e.time_ms,
            value: e.value.map(|v| self.raw(v).to_vec()),
            blob: e.blob,
        })
    }

    /// Number of leading entries for which `before(ukey, seq)` holds (it must be monotone).
    #[cfg(test)]
    pub fn partition(&self, before: impl Fn(&[u8], u64) -> bool) -> usize {
        self.partition_in(0, self.entries.len(), before)
    }

    /// As [`DecodedBlock::partition`], knowing that every entry below `lo` is before the position
    /// and none from `hi` on is.
    pub fn partition_in(&self, lo: usize, hi: usize, before: impl Fn(&[u8], u64) -> bool) -> usize {
        let within = self.entries.get(lo..hi).unwrap_or_default();
        let n = within.partition_point(|e| before(self.key(e.key), e.seq));
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`n <= within.len()`, which is `hi - lo` or 0: `lo + n <= hi` or `lo`"
        )]
        let i = lo + n;
        i
    }
}
