//! How a block is stored: its encoded body, compressed or not, then a codec byte and a CRC.
//!
//! ```text
//! codec 0 (none):          body                              | codec u8 | crc32 u32
//! codec 1 (lz4), 2 (zstd): raw_len u32 | compressed body      | codec u8 | crc32 u32
//! body = entry* | restart u32* | restart_count u32
//! ```
//!
//! The CRC covers every byte before it (the stored, compressed bytes) and is checked before
//! anything is decompressed; `raw_len` is checked against [`MAX_RAW`] before the buffer it
//! decompresses into is allocated, and the output must be exactly `raw_len` bytes. So a
//! damaged or forged block is [`Error::Corruption`], never a panic or a huge allocation.

use kv_api::{Error, Result};
use kv_engine_kit::bytes::u32_at;

use crate::options::Compression;

const CODEC_NONE: u8 = 0;
const CODEC_LZ4: u8 = 1;
const CODEC_ZSTD: u8 = 2;
/// Bytes after the body: codec and CRC.
pub(super) const SEAL_LEN: usize = 5;
/// The largest body stored compressed (larger ones, a block holding a value of many MiB,
/// are stored as is): the most a block's declared `raw_len` may allocate.
pub(super) const MAX_RAW: usize = 16 << 20;
/// zstd's level: its default, a good ratio at a write speed close to LZ4's.
#[cfg(not(target_arch = "wasm32"))]
const ZSTD_LEVEL: i32 = 3;

/// Compresses block bodies for one writer, reusing its output buffer.
#[derive(Default)]
pub(super) struct Compressor {
    compression: Option<Compression>,
    scratch: Vec<u8>,
}

impl Compressor {
    /// A compressor for `compression` (on wasm32, zstd is written as LZ4).
    pub(super) fn new(compression: Compression) -> Self {
        let compression = match compression {
            Compression::None => None,
            #[cfg(target_arch = "wasm32")]
            Compression::Zstd => Some(Compression::Lz4),
            c => Some(c),
        };
        Compressor {
            compression,
            scratch: Vec::new(),
        }
    }

    /// Seals the body `out[start..]` in place: compressed if that saves an eighth of it,
    /// then the codec byte and the CRC of the stored bytes.
    pub(super) fn seal(&mut self, out: &mut Vec<u8>, start: usize) {
        let body = out.get(start..).unwrap_or_default();
        let raw_len = u32::try_from(body.len())
            .ok()
            .filter(|_| body.len() <= MAX_RAW);
        let codec = match (self.compression, raw_len) {
            (Some(c), Some(raw_len)) => self
                .compress(c, body)
                .filter(|n| {
                    // Worth it only if it saves an eighth, its `raw_len` field included.
                    n.checked_add(4)
                        .is_some_and(|stored| stored <= body.len().saturating_sub(body.len() / 8))
                })
                .map(|n| (c, raw_len, n)),
            _ => None,
        };
        let code = match codec {
            Some((c, raw_len, n)) => {
                out.truncate(start);
                out.extend_from_slice(&raw_len.to_le_bytes());
                out.extend_from_slice(self.scratch.get(..n).unwrap_or_default());
                match c {
                    Compression::Zstd => CODEC_ZSTD,
                    _ => CODEC_LZ4,
                }
            }
            None => CODEC_NONE,
        };
        out.push(code);
        let crc = crc32fast::hash(out.get(start..).unwrap_or_default());
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// Compresses `body` into `scratch`; its length, or `None` if the codec failed.
    fn compress(&mut self, c: Compression, body: &[u8]) -> Option<usize> {
        match c {
            Compression::None => None,
            Compression::Lz4 => {
                self.scratch
                    .resize(lz4_flex::block::get_maximum_output_size(body.len()), 0);
                lz4_flex::block::compress_into(body, &mut self.scratch).ok()
            }
            #[cfg(not(target_arch = "wasm32"))]
            Compression::Zstd => {
                self.scratch = zstd::bulk::compress(body, ZSTD_LEVEL).ok()?;
                Some(self.scratch.len())
            }
            #[cfg(target_arch = "wasm32")]
            Compression::Zstd => None,
        }
    }
}

/// Checks the CRC of a block stored as `raw` (read from `file` at `offset`) and returns its
/// body, and whether it was compressed (offsets into it are then not file offsets).
pub(super) fn unseal(mut raw: Vec<u8>, file: &str, offset: u64) -> Result<(Vec<u8>, bool)> {
    let bad = |why: String| Error::corruption(file, offset, why);
    let body_len = raw
        .len()
        .checked_sub(SEAL_LEN)
        .ok_or_else(|| bad("block shorter than its trailer".into()))?;
    let crc_at = raw.len().saturating_sub(4);
    let stored = u32_at(&raw, crc_at).ok_or_else(|| bad("truncated block".into()))?;
    let covered = raw.get(..crc_at).unwrap_or_default();
    if crc32fast::hash(covered) != stored {
        return Err(Error::corruption(
            file,
            offset.saturating_add(crc_at as u64),
            "block crc mismatch",
        ));
    }
    let code = raw.get(body_len).copied().unwrap_or(CODEC_NONE);
    if code == CODEC_NONE {
        raw.truncate(body_len);
        return Ok((raw, false));
    }
    let raw_len = u32_at(&raw, 0)
        .filter(|_| body_len >= 4)
        .ok_or_else(|| bad("compressed block shorter than its length".into()))?
        as usize;
    if raw_len > MAX_RAW {
        return Err(bad(format!(
            "compressed block declares {raw_len} bytes, more than the {MAX_RAW} a block may hold"
        )));
    }
    let compressed = raw.get(4..body_len).unwrap_or_default();
    let body = match code {
        CODEC_LZ4 => {
            let mut body = vec![0; raw_len];
            let n = lz4_flex::block::decompress_into(compressed, &mut body)
                .map_err(|e| bad(format!("lz4 block does not decompress: {e}")))?;
            (n == raw_len).then_some(body)
        }
        #[cfg(not(target_arch = "wasm32"))]
        CODEC_ZSTD => Some(
            zstd::bulk::decompress(compressed, raw_len)
                .map_err(|e| bad(format!("zstd block does not decompress: {e}")))?,
        )
        .filter(|body| body.len() == raw_len),
        #[cfg(target_arch = "wasm32")]
        CODEC_ZSTD => {
            return Err(Error::Incompatible {
                engine: "lsm",
                found: format!(
                    "table {file}: a block compressed with zstd (written natively), a codec \
                     this build (wasm32) does not have"
                ),
            });
        }
        other => return Err(bad(format!("unknown block codec {other}"))),
    };
    let body = body.ok_or_else(|| {
        bad(format!(
            "compressed block decompresses to another length than its {raw_len} bytes"
        ))
    })?;
    Ok((body, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(body: &[u8], c: Compression) -> Vec<u8> {
        let mut out = b"before".to_vec();
        out.extend_from_slice(body);
        Compressor::new(c).seal(&mut out, 6);
        out.split_off(6)
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                format!("{{\"id\":{i},\"name\":\"user {}\",\"ok\":true}}", i % 17).into_bytes()
            })
            .collect()
    }

    fn random(n: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn round_trip_per_codec() {
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            for body in [Vec::new(), text(1), text(200), random(3000)] {
                let stored = sealed(&body, c);
                let code = stored[stored.len() - SEAL_LEN];
                let want = if c == Compression::None || body.len() < 100 || body[0] != b'{' {
                    CODEC_NONE
                } else if c == Compression::Lz4 {
                    CODEC_LZ4
                } else {
                    CODEC_ZSTD
                };
                assert_eq!(code, want, "{c:?} {}", body.len());
                if want != CODEC_NONE {
                    assert!(stored.len() < body.len() / 2, "{c:?}");
                }
                let (back, compressed) = unseal(stored, "t", 0).expect("unseal");
                assert_eq!(back, body);
                assert_eq!(compressed, want != CODEC_NONE);
            }
        }
    }

    /// Every flipped byte of a compressed block, and every forged length, is corruption.
    #[test]
    fn damaged_compressed_blocks_are_corruption() {
        for c in [Compression::Lz4, Compression::Zstd] {
            let stored = sealed(&text(100), c);
            for i in 0..stored.len() {
                let mut bad = stored.clone();
                bad[i] ^= 0x10;
                let r = unseal(bad.clone(), "t", 0);
                assert!(matches!(r, Err(Error::Corruption { .. })), "{c:?} flip {i}");
                // The same damage under a valid CRC: still never a panic, and a success
                // only with the declared length.
                let crc_at = bad.len() - 4;
                let crc = crc32fast::hash(&bad[..crc_at]);
                bad[crc_at..].copy_from_slice(&crc.to_le_bytes());
                if let Ok((body, _)) = unseal(bad, "t", 0) {
                    assert!(body.len() <= MAX_RAW);
                }
            }
            // A forged huge length under a valid CRC: refused before any allocation.
            for forged in [u32::MAX, MAX_RAW as u32 + 1, 1 << 30] {
                let mut bad = stored.clone();
                bad[..4].copy_from_slice(&forged.to_le_bytes());
                let crc_at = bad.len() - 4;
                let crc = crc32fast::hash(&bad[..crc_at]);
                bad[crc_at..].copy_from_slice(&crc.to_le_bytes());
                match unseal(bad, "t", 0) {
                    Err(Error::Corruption { reason, .. }) => {
                        assert!(reason.contains("declares"), "{reason}")
                    }
                    other => panic!("{other:?}"),
                }
            }
            // A length off by one, under a valid CRC: decompresses to another length.
            let mut bad = stored.clone();
            let n = u32::from_le_bytes(bad[..4].try_into().expect("4")) + 1;
            bad[..4].copy_from_slice(&n.to_le_bytes());
            let crc_at = bad.len() - 4;
            let crc = crc32fast::hash(&bad[..crc_at]);
            bad[crc_at..].copy_from_slice(&crc.to_le_bytes());
            assert!(matches!(unseal(bad, "t", 0), Err(Error::Corruption { .. })));
        }
        assert!(matches!(
            unseal(vec![1, 2, 3], "t", 0),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn incompressible_blocks_are_stored_as_is() {
        for c in [Compression::Lz4, Compression::Zstd] {
            let body = random(4096);
            let stored = sealed(&body, c);
            assert_eq!(stored.len(), body.len() + SEAL_LEN);
            assert_eq!(&stored[..body.len()], &body[..]);
        }
    }
}
