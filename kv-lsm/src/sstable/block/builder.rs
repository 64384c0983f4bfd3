//! Encoding: [`BlockBuilder`] appends entries (prefix-compressed keys, delta-encoded
//! `seq`/`time`, a restart point every `restart_interval` entries) and finishes the block with
//! its restart array, count and CRC.

use std::cmp::Ordering;

use kv_api::{Error, Result};

use super::codec::Compressor;
use super::{KIND_BLOB, KIND_REMOVAL, KIND_VALUE, TRAILER};
use crate::key::cmp_ikey;
use crate::options::Compression;
use crate::sstable::varint::{put_varint, zigzag};

/// Builds one block.
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    last_seq: u64,
    last_time: u64,
    count: usize,
    compressor: Compressor,
}

impl BlockBuilder {
    /// A builder with a restart point every `restart_interval` entries (at least 1), whose
    /// blocks are stored uncompressed.
    pub fn new(restart_interval: usize) -> Self {
        Self::compressed(restart_interval, Compression::None)
    }

    /// A builder whose blocks are stored with `compression` where it pays.
    pub fn compressed(restart_interval: usize, compression: Compression) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval: restart_interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            last_seq: 0,
            last_time: 0,
            count: 0,
            compressor: Compressor::new(compression),
        }
    }

    /// True if no entry was added since the last `finish`.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size of the block if finished now, uncompressed.
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "every restart is an entry of at least 5 bytes of `buf`, a Vec (at most \
                  isize::MAX bytes): `4 * restarts < buf.len()`, and the sum stays below usize::MAX"
    )]
    pub fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + TRAILER
    }

    /// Adds an entry; entries must come in internal key order. A restart point past 4 GiB
    /// into the block (restart offsets are u32) is [`Error::TooLarge`], never cut.
    pub fn add(&mut self, ukey: &[u8], seq: u64, time_ms: u64, value: Option<&[u8]>) -> Result<()> {
        self.add_entry(ukey, seq, time_ms, value, false)
    }

    /// [`BlockBuilder::add`] of an entry whose value may be a blob reference (`blob`).
    pub fn add_entry(
        &mut self,
        ukey: &[u8],
        seq: u64,
        time_ms: u64,
        value: Option<&[u8]>,
        blob: bool,
    ) -> Result<()> {
        debug_assert!(
            self.count == 0 || cmp_ikey(&self.last_key, self.last_seq, ukey, seq) == Ordering::Less,
            "block entries out of order"
        );
        let restart = self.since_restart == 0;
        let shared = if restart {
            let at = u32::try_from(self.buf.len()).map_err(|_| Error::TooLarge {
                what: "table block",
                size: self.buf.len(),
                max: u32::MAX as usize,
            })?;
            self.restarts.push(at);
            0
        } else {
            self.last_key
                .iter()
                .zip(ukey)
                .take_while(|(a, b)| a == b)
                .count()
        };
        put_varint(&mut self.buf, shared as u64);
        // `shared` counts common leading bytes of `ukey` and the last key (0 at a restart):
        // at most `ukey.len()`, so the split cannot fail.
        let (_, suffix) = ukey.split_at(shared);
        put_varint(&mut self.buf, suffix.len() as u64);
        self.buf.push(match value {
            None => KIND_REMOVAL,
            Some(_) if blob => KIND_BLOB,
            Some(_) => KIND_VALUE,
        });
        if restart {
            put_varint(&mut self.buf, seq);
            put_varint(&mut self.buf, time_ms);
        } else {
            put_varint(
                &mut self.buf,
                zigzag(seq.wrapping_sub(self.last_seq) as i64),
            );
            put_varint(
                &mut self.buf,
                zigzag(time_ms.wrapping_sub(self.last_time) as i64),
            );
        }
        if let Some(v) = value {
            put_varint(&mut self.buf, v.len() as u64);
        }
        self.buf.extend_from_slice(suffix);
        if let Some(v) = value {
            self.buf.extend_from_slice(v);
        }
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(suffix);
        self.last_seq = seq;
        self.last_time = time_ms;
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`count` entries of at least 5 bytes each lie in `buf`, a Vec; \
                      `since_restart < restart_interval`, which is at least 1"
        )]
        {
            self.count += 1;
            self.since_restart = (self.since_restart + 1) % self.restart_interval;
        }
        Ok(())
    }

    /// Returns the encoded block and resets the builder.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.estimated_size());
        self.finish_into(&mut out);
        out
    }

    /// Appends the encoded block to `out` and resets the builder (keeping its buffers, so a
    /// table writer reuses them block after block).
    pub fn finish_into(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "each restart is an entry of at least 5 bytes starting below u32::MAX \
                      (checked by `add`): fewer than u32::MAX of them"
        )]
        let count = self.restarts.len() as u32;
        out.extend_from_slice(&count.to_le_bytes());
        self.compressor.seal(out, start);
        self.buf.clear();
        self.restarts.clear();
        self.since_restart = 0;
        self.last_key.clear();
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::Block;
    use super::super::fixtures::{decode, sample};
    use super::*;

    #[test]
    fn round_trip() {
        for interval in [1, 2, 16] {
            let (raw, want) = sample(100, interval);
            let block = decode(raw.clone(), 0).expect("decode");
            assert_eq!(block.len(), want.len());
            for (i, w) in want.iter().enumerate() {
                assert_eq!(block.entry(i).as_ref(), Some(w), "entry {i}");
            }
            let k = b"key-00010";
            let first = block.partition(|u, _| u < &k[..]);
            assert_eq!(block.ukey(first), k);
        }
        let empty = BlockBuilder::new(16).finish();
        assert_eq!(decode(empty.clone(), 0).expect("empty").len(), 0);
        let block = Block::load(empty, "t", 0).expect("load");
        assert_eq!(block.find("t", |_, _| false).expect("find"), None);
    }
}
