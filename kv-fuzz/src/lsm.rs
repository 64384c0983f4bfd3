//! The LSM's files: `MANIFEST`, blob files, and the parts of a table (footer, index block,
//! data blocks, whose entries may be blob references, bloom filter).

use std::cmp::Ordering;

use kv_lsm::Compression;
use kv_lsm::fuzzing::{self as lsm, DataBlock, Entry, IndexBlock};

use crate::util::{both, fix_frames, fix_trailing_crc, header_ids};

/// A `MANIFEST` file of the store its header names: one encoding per manifest, so what
/// decodes re-encodes to the same bytes.
pub fn lsm_manifest(data: &[u8]) {
    both(data, fix_frames(data), |buf| {
        if let Ok(again) = lsm::manifest(buf, header_ids(buf).0) {
            assert_eq!(again, buf, "re-encoded MANIFEST");
        }
    });
}

/// The footer of a table made of the input (its last [`lsm::FOOTER_LEN`] bytes), also with
/// its CRC fixed: a footer re-encodes to the same bytes and locates blocks before itself.
pub fn sst_footer(data: &[u8]) {
    let at = data.len().saturating_sub(lsm::FOOTER_LEN);
    let raw = &data[at..];
    let mut fixed = raw.to_vec();
    if fixed.len() == lsm::FOOTER_LEN {
        let crc = crc32fast::hash(&fixed[..44]);
        fixed[44..48].copy_from_slice(&crc.to_le_bytes());
    }
    both(raw, fixed, |raw| {
        let Ok((again, handles)) = lsm::footer(raw, data.len() as u64) else {
            return;
        };
        assert_eq!(again, raw, "re-encoded footer");
        for (offset, len) in handles {
            assert!(offset.checked_add(len).is_some_and(|end| end <= at as u64));
        }
    });
}

/// A bloom filter: decoding checks its trailer; a decoded filter answers for any hash, all
/// yes when every bit is set and all no when none is.
pub fn bloom(data: &[u8]) {
    both(data, fix_trailing_crc(data), |buf| {
        let mut hashes: Vec<u64> = buf.chunks(8).map(lsm::bloom_hash).collect();
        hashes.extend([0, 1, u64::MAX, lsm::bloom_hash(b"")]);
        let Ok(answers) = lsm::bloom(buf.to_vec(), &hashes) else {
            return;
        };
        let bits = &buf[..buf.len() - 5];
        if bits.iter().all(|&b| b == 0xff) {
            assert!(answers.iter().all(|&a| a), "a full filter said no");
        }
        if bits.iter().all(|&b| b == 0) {
            assert!(answers.iter().all(|&a| !a), "an empty filter said yes");
        }
    });
}

/// An index block, decoded whole as a table keeps it: a lookup of each entry's user key lands
/// on that key's first entry, and values parse as block handles as a table's open does.
pub fn sst_index_block(data: &[u8]) {
    both(data, fix_trailing_crc(data), |buf| {
        let Ok(index) = IndexBlock::decode(buf.to_vec(), 0) else {
            return;
        };
        for i in 0..index.len() {
            let (ukey, value) = index.entry(i);
            let p = index.partition(ukey, u64::MAX);
            assert!(
                p <= i && index.entry(p).0 == ukey,
                "lookup of entry {i} found {p}"
            );
            assert!(
                p == 0 || index.entry(p - 1).0 < ukey,
                "lookup stopped short"
            );
            if let Some(v) = value {
                let mut at = 0;
                let _ = lsm::get_varint(v, &mut at).and_then(|_| lsm::get_varint(v, &mut at));
                assert!(at <= v.len());
            }
        }
        let _ = index.partition(b"", 0);
        let _ = index.partition(&[0xff; 9], u64::MAX);
    });
}

/// A data block, read as iterators (interval by interval) and point reads (in place) do.
/// When its entries are in order, a point read finds each of them, and the block built again
/// from them, with each codec, decodes to the same entries.
pub fn sst_data_block(data: &[u8]) {
    both(data, fix_trailing_crc(data), |buf| {
        let Ok(block) = DataBlock::load(buf.to_vec(), 0) else {
            return;
        };
        let mut entries = Vec::new();
        let mut whole = true;
        for r in 0..block.runs() {
            match block.run(r) {
                Ok(run) => entries.extend(run),
                Err(_) => whole = false,
            }
        }
        let _ = block.run(block.runs());
        for probe in [&b""[..], b"\x00", &[0xff; 9]] {
            let _ = block.find(probe, u64::MAX);
        }
        let sorted = entries
            .windows(2)
            .all(|w| lsm::cmp_internal(&w[0].0, w[0].1, &w[1].0, w[1].1) == Ordering::Less);
        if !(whole && sorted) {
            for e in &entries {
                let _ = block.find(&e.0, e.1);
            }
            return;
        }
        for e in &entries {
            let found = block
                .find(&e.0, e.1)
                .expect("a point read of a decodable block");
            assert_eq!(found.as_ref(), Some(e), "point read of an entry");
        }
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let rebuilt =
                lsm::encode_block(&entries, 8, c).expect("a decoded block's entries fit one");
            assert_eq!(decode_all(rebuilt), entries, "rebuilt block ({c:?})");
        }
    });
}

fn decode_all(raw: Vec<u8>) -> Vec<Entry> {
    let block = DataBlock::load(raw, 0).expect("a built block loads");
    (0..block.runs())
        .flat_map(|r| block.run(r).expect("a built block decodes"))
        .collect()
}

/// A blob file: its header, then one frame per value. Each frame is read as a reference to it
/// reads it, with the owner taken from its own payload (so that mutations get past the owner
/// check: then the value is the rest of the payload), with another version (refused) and cut
/// short (refused). The input's bytes as a blob reference re-encode to themselves.
pub fn lsm_blob_file(data: &[u8]) {
    if let Some(r) = lsm::blob_ref(data) {
        assert_eq!(lsm::encode_blob_ref(r), data, "re-encoded blob reference");
    }
    both(data, fix_frames(data), |buf| {
        let mut at = crate::util::records_from(buf);
        while let Some(len) = buf.get(at + 4..at + 8) {
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let Some(frame) = (at + 8).checked_add(len).and_then(|end| buf.get(at..end)) else {
                let _ = lsm::blob_frame(&buf[at..], b"", 0);
                break;
            };
            let payload = &frame[8..];
            let owner = payload.get(..12).map(|o| {
                let seq = u64::from_le_bytes(o[..8].try_into().expect("8 bytes"));
                let key_len = u32::from_le_bytes(o[8..12].try_into().expect("4 bytes")) as usize;
                (seq, payload.get(12..).and_then(|rest| rest.get(..key_len)))
            });
            if let Some((seq, Some(key))) = owner
                && let Ok(value) = lsm::blob_frame(frame, key, seq)
            {
                assert_eq!(value.len(), payload.len() - 12 - key.len(), "value bounds");
                assert!(lsm::blob_frame(frame, key, seq.wrapping_add(1)).is_err());
                assert!(lsm::blob_frame(&frame[..frame.len() - 1], key, seq).is_err());
            }
            at += 8 + len;
        }
    });
}
