//! The fixed-size table footer: where the filter and the index are, the entry count, the
//! format version and a magic number, with a CRC of its own.
//!
//! ```text
//! filter_offset u64 | filter_len u64 | index_offset u64 | index_len u64 | entries u64
//! | format_version u32 | crc32 u32 (of the 44 bytes before) | magic u64     (all LE)
//! ```

use kv_api::{Error, Result};
use kv_engine_kit::bytes;

/// Bytes of the footer.
pub(crate) const FOOTER_LEN: usize = 56;
/// "KVLSMTB1" read as a little-endian u64: the last 8 bytes of every table.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"KVLSMTB1");
/// Version of the table format this crate writes and reads (2: the file header first).
pub(crate) const FORMAT_VERSION: u32 = 2;

/// A location in a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handle {
    /// Offset of the first byte.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    /// The bloom filter.
    pub filter: Handle,
    /// The index block.
    pub index: Handle,
    /// Entries in the table.
    pub entries: u64,
}

impl Footer {
    /// Encodes the footer.
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut out = [0u8; FOOTER_LEN];
        let fields = [
            self.filter.offset,
            self.filter.len,
            self.index.offset,
            self.index.len,
            self.entries,
        ];
        for (slot, f) in out.chunks_exact_mut(8).zip(fields) {
            slot.copy_from_slice(&f.to_le_bytes());
        }
        out[40..44].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&out[..44]);
        out[44..48].copy_from_slice(&crc.to_le_bytes());
        out[48..56].copy_from_slice(&MAGIC.to_le_bytes());
        out
    }

    /// Decodes and checks the footer of a table of `file_len` bytes, read at its end.
    pub fn decode(raw: &[u8], file: &str, file_len: u64) -> Result<Footer> {
        let at = file_len.saturating_sub(FOOTER_LEN as u64);
        // `at` is inside the file and `off` inside the footer: the sum cannot saturate.
        let bad =
            |off: usize, why: &str| Error::corruption(file, at.saturating_add(off as u64), why);
        let short = || bad(0, "table shorter than its footer");
        let Ok(raw) = <&[u8; FOOTER_LEN]>::try_from(raw) else {
            return Err(short());
        };
        let u64_at = |off: usize| bytes::u64_at(raw, off).ok_or_else(short);
        if u64_at(48)? != MAGIC {
            return Err(bad(48, "bad magic number: not a table"));
        }
        let crc = bytes::u32_at(raw, 44).ok_or_else(short)?;
        if crc32fast::hash(&raw[..44]) != crc {
            return Err(bad(44, "footer crc mismatch"));
        }
        let version = bytes::u32_at(raw, 40).ok_or_else(short)?;
        if version != FORMAT_VERSION {
            return Err(bad(
                40,
                &format!("unsupported table format version {version}"),
            ));
        }
        let footer = Footer {
            filter: Handle {
                offset: u64_at(0)?,
                len: u64_at(8)?,
            },
            index: Handle {
                offset: u64_at(16)?,
                len: u64_at(24)?,
            },
            entries: u64_at(32)?,
        };
        for (h, off) in [(footer.filter, 0), (footer.index, 16)] {
            let end = h.offset.checked_add(h.len);
            if end.is_none_or(|e| e > at) {
                return Err(bad(off, "block location past the end of the table"));
            }
        }
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let f = Footer {
            filter: Handle {
                offset: 100,
                len: 20,
            },
            index: Handle {
                offset: 120,
                len: 30,
            },
            entries: 7,
        };
        let raw = f.encode();
        assert_eq!(
            Footer::decode(&raw, "t", 150 + FOOTER_LEN as u64).expect("decode"),
            f
        );
        for i in 0..FOOTER_LEN {
            let mut bad = raw;
            bad[i] ^= 4;
            assert!(
                matches!(
                    Footer::decode(&bad, "t", 206),
                    Err(Error::Corruption { .. })
                ),
                "byte {i}"
            );
        }
        // Handles past the data region are impossible lengths.
        assert!(matches!(
            Footer::decode(&raw, "t", 100),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            Footer::decode(&raw[..10], "t", 10),
            Err(Error::Corruption { .. })
        ));
    }
}
