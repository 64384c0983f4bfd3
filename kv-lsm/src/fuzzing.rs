//! Entry points into the file decoders for the `kv-fuzz` crate (cargo feature `fuzzing`, off
//! by default). Each is a thin call into the crate-private decoder; values come back as plain
//! tuples, as their canonical re-encoding, or behind opaque wrappers, so no internal type
//! becomes public.
//!
//! Files begin with a header ([`kv_engine_kit::header`]) naming their store: decoders that
//! check it take the store id expected (a fuzz target takes it from the input's own header,
//! so that mutations get past the header into the records). Table parts (footer, blocks,
//! filter) are decoded apart from the table's header, as a table's open reads them.

use std::cmp::Ordering;
use std::sync::Arc;

use kv_api::Result;
use kv_engine_kit::header::StoreId;

use crate::blob::BlobRef;
use crate::key::{Seek, cmp_ikey};
use crate::manifest::Manifest;
use crate::options::Compression;
use crate::sstable::block::{Block, BlockBuilder, DecodedBlock, Run};
use crate::sstable::bloom::{self, Bloom};
use crate::sstable::footer::Footer;
use crate::sstable::varint;

/// One decoded block entry: `(user key, seq, time_ms, value, blob)`; `None` is a removal,
/// and `blob` says the value is a blob reference (entry kind 2).
pub type Entry = (Vec<u8>, u64, u64, Option<Vec<u8>>, bool);

/// Bytes of a table footer.
pub const FOOTER_LEN: usize = crate::sstable::footer::FOOTER_LEN;

/// A blob reference (`file, offset, len`) decoded from exactly `raw`.
pub fn blob_ref(raw: &[u8]) -> Option<(u64, u64, u64)> {
    BlobRef::decode(raw).map(|r| (r.file, r.offset, r.len))
}

/// The bytes of a blob reference.
pub fn encode_blob_ref((file, offset, len): (u64, u64, u64)) -> Vec<u8> {
    let mut out = Vec::new();
    BlobRef { file, offset, len }.encode(&mut out);
    out
}

/// The value in `frame`, a blob file's record a reference names as version `seq` of `ukey`
/// (CRC, length and owner checked); `Err` says what is wrong.
pub fn blob_frame<'a>(
    frame: &'a [u8],
    ukey: &[u8],
    seq: u64,
) -> std::result::Result<&'a [u8], &'static str> {
    crate::blob::decode_frame(frame, ukey, seq)
}

/// The header kind of a blob file.
pub const KIND_BLOB: u8 = crate::names::KIND_BLOB;

/// Decodes `buf` as the `MANIFEST` file of store `store` and re-encodes it.
pub fn manifest(buf: &[u8], store: StoreId) -> Result<Vec<u8>> {
    Manifest::decode(buf, store)?.encode(store)
}

/// The block locations of a footer: `[(filter offset, len), (index offset, len)]`.
pub type FooterHandles = [(u64, u64); 2];

/// Decodes the footer `raw` of a table of `file_len` bytes; returns its re-encoding and its
/// handles.
pub fn footer(raw: &[u8], file_len: u64) -> Result<(Vec<u8>, FooterHandles)> {
    let f = Footer::decode(raw, "fuzz", file_len)?;
    let handles = [
        (f.filter.offset, f.filter.len),
        (f.index.offset, f.index.len),
    ];
    Ok((f.encode().to_vec(), handles))
}

/// Decodes the bloom filter `raw` and asks it about each of `hashes`.
pub fn bloom(raw: Vec<u8>, hashes: &[u64]) -> Result<Vec<bool>> {
    let b = Bloom::decode(raw, "fuzz", 0)?;
    Ok(hashes.iter().map(|&h| b.may_contain(h)).collect())
}

/// The filter's hash of a user key.
pub fn bloom_hash(ukey: &[u8]) -> u64 {
    bloom::hash(ukey)
}

/// The internal key order (user key ascending, then seq descending).
pub fn cmp_internal(a: &[u8], a_seq: u64, b: &[u8], b_seq: u64) -> Ordering {
    cmp_ikey(a, a_seq, b, b_seq)
}

/// Reads a LEB128 varint at `*at`, advancing it (the block handles of index values).
pub fn get_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    varint::get_varint(buf, at)
}

/// Encodes `entries` (in internal key order) as one block with a restart point every
/// `restart_interval` entries, stored with `compression` where it pays
/// ([`kv_api::Error::TooLarge`] past what a block holds).
pub fn encode_block(
    entries: &[Entry],
    restart_interval: usize,
    compression: Compression,
) -> Result<Vec<u8>> {
    let mut b = BlockBuilder::compressed(restart_interval, compression);
    for (k, seq, time, value, blob) in entries {
        b.add_entry(k, *seq, *time, value.as_deref(), *blob)?;
    }
    Ok(b.finish())
}

/// A block decoded whole, as a table keeps its index.
pub struct IndexBlock(DecodedBlock);

impl IndexBlock {
    /// Loads (CRC, restarts) and decodes `raw`, read at file offset `offset`.
    pub fn decode(raw: Vec<u8>, offset: u64) -> Result<IndexBlock> {
        Arc::new(Block::load(raw, "fuzz", offset)?)
            .decode("fuzz")
            .map(IndexBlock)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True without entries.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// User key and value of entry `i`.
    pub fn entry(&self, i: usize) -> (&[u8], Option<&[u8]>) {
        (self.0.ukey(i), self.0.value(i))
    }

    /// Number of entries before the position `(ukey, seq)`, as a table lookup searches it.
    pub fn partition(&self, ukey: &[u8], seq: u64) -> usize {
        self.0
            .partition_in(0, self.0.len(), |u, s| Seek::At(ukey, seq).is_before(u, s))
    }
}

/// A data block as loaded for reads: searched in place or decoded interval by interval.
pub struct DataBlock(Block);

impl DataBlock {
    /// Loads (CRC, restarts) `raw`, read at file offset `offset`.
    pub fn load(raw: Vec<u8>, offset: u64) -> Result<DataBlock> {
        Block::load(raw, "fuzz", offset).map(DataBlock)
    }

    /// Number of restart intervals.
    pub fn runs(&self) -> usize {
        self.0.runs()
    }

    /// The entries of restart interval `r`, decoded as iterators do.
    pub fn run(&self, r: usize) -> Result<Vec<Entry>> {
        let mut run = Run::default();
        run.start(&self.0, "fuzz", r)?;
        while run.decode_next(&self.0, "fuzz")? {}
        Ok((0..run.len())
            .filter_map(|i| run.get(i, &self.0))
            .map(|e| {
                (
                    e.ukey.to_vec(),
                    e.seq,
                    e.time_ms,
                    e.value.map(<[u8]>::to_vec),
                    e.blob,
                )
            })
            .collect())
    }

    /// The first entry at or after `(ukey, seq)`, found as a point read finds it.
    pub fn find(&self, ukey: &[u8], seq: u64) -> Result<Option<Entry>> {
        self.0.find_with(
            "fuzz",
            |u, s| Seek::At(ukey, seq).is_before(u, s),
            |e| {
                (
                    e.ukey.to_vec(),
                    e.seq,
                    e.time_ms,
                    e.value.map(<[u8]>::to_vec),
                    e.blob,
                )
            },
        )
    }
}
