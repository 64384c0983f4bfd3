//! Blocks: runs of sorted internal entries with prefix-compressed keys and a CRC.
//!
//! Data blocks hold the entries of a table; the index block uses the same format (one entry per
//! data block: its last internal key, and the block's location as the value).
//!
//! ```text
//! body  = entry*  restart (u32 LE)*  restart_count (u32 LE)
//! block = body, or raw_len u32 | compressed body  then  codec u8 | crc32 (u32 LE)
//! entry = shared varint | unshared varint | kind u8 | seq varint | time varint
//!         | [value_len varint, if kind = value or blob] | key suffix (unshared bytes) | value
//! kind  = 0 removal | 1 value | 2 blob reference (the value is `file | offset | len`
//!         varints, [`crate::blob::BlobRef`]; only in data blocks)
//! ```
//!
//! Every `restart_interval`-th entry is a *restart point*: it stores its whole key (`shared` =
//! 0) and absolute `seq`/`time`. Other entries share a key prefix with the entry before and
//! store `seq`/`time` as zigzag deltas from it, which keeps neighbouring versions small. The
//! restart offsets allow a binary search without decoding: point lookups search the cached raw
//! block in place (restart points, then at most one interval of entries); iterators decode one
//! interval at a time into reused buffers ([`Run`]), so a short scan decodes only what it
//! reads. The CRC covers everything before it: the stored bytes, checked before the body is
//! decompressed (`codec`).
//!
//! * `codec`: storing a body with a codec byte and CRC, compressed if that pays, and back.
//! * `builder`: [`BlockBuilder`], which encodes entries into a block.
//! * `reader`: [`Block`], a loaded and checked block, searched in place by point lookups.
//! * `run`: [`Run`], one restart interval decoded on demand, for iterators.
//! * `decoded`: [`DecodedBlock`], a block decoded whole (the index).

mod builder;
mod codec;
mod decoded;
mod reader;
mod run;

pub(crate) use builder::BlockBuilder;
pub(crate) use decoded::DecodedBlock;
pub(crate) use reader::Block;
pub(crate) use run::Run;

const KIND_REMOVAL: u8 = 0;
const KIND_VALUE: u8 = 1;
/// A value stored in a blob file: the entry's value is a [`crate::blob::BlobRef`].
const KIND_BLOB: u8 = 2;
/// Bytes after the restarts of an uncompressed block: count, codec, CRC.
const TRAILER: usize = 4 + codec::SEAL_LEN;

/// Test fixtures shared by the block tests.
#[cfg(test)]
mod fixtures {
    use std::sync::Arc;

    use kv_api::Result;

    use super::{Block, BlockBuilder, DecodedBlock};

    /// Loads `raw` (read at `offset` of a file "t") and decodes it whole.
    pub(super) fn decode(raw: Vec<u8>, offset: u64) -> Result<DecodedBlock> {
        Arc::new(Block::load(raw, "t", offset)?).decode("t")
    }

    /// A block of `n` entries (up to three versions a key, some removals) with a restart
    /// point every `interval` entries, and the entries it holds.
    pub(super) fn sample(n: usize, interval: usize) -> (Vec<u8>, Vec<crate::key::OwnedEntry>) {
        let mut b = BlockBuilder::new(interval);
        let mut want = Vec::new();
        for i in 0..n {
            let ukey = format!("key-{:05}", i / 3).into_bytes();
            let seq = 1000 - (i % 3) as u64 * 7 + (i / 3) as u64;
            let value = (i % 4 != 0).then(|| vec![i as u8; i % 9]);
            // Some values are blob references (kind 2): every reader must keep the kind.
            let blob = value.is_some() && i % 5 == 1;
            b.add_entry(
                &ukey,
                seq,
                1_700_000_000_000 + (i as u64 * 13) % 50,
                value.as_deref(),
                blob,
            )
            .expect("add");
            want.push(crate::key::OwnedEntry {
                ukey,
                seq,
                time_ms: 1_700_000_000_000 + (i as u64 * 13) % 50,
                value,
                blob,
            });
        }
        (b.finish(), want)
    }

    /// The blocks that still load after one bit of `raw`'s body is flipped (bits 0x01, 0x40
    /// and 0x80 of each byte in turn) and its CRC is fixed: damage the CRC does not catch.
    pub(super) fn flipped_under_valid_crc(raw: &[u8]) -> impl Iterator<Item = Block> + '_ {
        let body = &raw[..raw.len() - 4];
        (0..body.len())
            .flat_map(|i| [0x01u8, 0x40, 0x80].map(|bit| (i, bit)))
            .filter_map(move |(i, bit)| {
                let mut bad = body.to_vec();
                bad[i] ^= bit;
                let crc = crc32fast::hash(&bad);
                bad.extend_from_slice(&crc.to_le_bytes());
                Block::load(bad, "t", 0).ok()
            })
    }
}
