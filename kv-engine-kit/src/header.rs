//! The header every file of a store begins with: which store, which file, what kind.
//!
//! One CRC frame ([`crate::frame`]) whose payload is, little-endian:
//!
//! `magic "KVSTORE\0" (8) | format u16 | kind u8 | store id (16) | file id u64`
//!
//! 43 bytes in all ([`LEN`]). The store id comes from the store's `IDENTITY` file
//! ([`crate::identity`]); the file id is the one in the file's name (0 for a manifest), and the
//! kind is the engine's own number for what the file holds. So a file of another store, a file
//! copied or renamed over another, or a segment in place of a hint, is found by one read of
//! 43 bytes, before anything in it is trusted.
//!
//! ```
//! use kv_engine_kit::header::{FileHeader, LEN, StoreId};
//! let h = FileHeader { kind: 7, store: StoreId::from_bytes([1; 16]), file_id: 42 };
//! let mut file = Vec::new();
//! h.encode(&mut file);
//! assert_eq!(file.len(), LEN);
//! assert!(h.check(&file, "00000042.log").is_ok());
//! let other = FileHeader { file_id: 43, ..h };
//! assert!(other.check(&file, "00000043.log").is_err());
//! ```

use std::fmt;

use kv_api::{Error, Result, StorageFile};

use crate::bytes::Reader;
use crate::frame;

/// What every file and the `IDENTITY` record start with.
pub const MAGIC: [u8; 8] = *b"KVSTORE\0";

/// The on-disk format this build writes and reads. Format 1 was the format without
/// `IDENTITY` and file headers (refused, see `docs/format.md`).
pub const FORMAT: u16 = 2;

const PAYLOAD_LEN: usize = 8 + 2 + 1 + 16 + 8;

/// Bytes of a file header: where a file's records begin.
pub const LEN: usize = frame::HEADER_LEN + PAYLOAD_LEN;

/// A store's random 128-bit id, written in its `IDENTITY` and in every file's header.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId([u8; 16]);

impl StoreId {
    /// The id made of these bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        StoreId(bytes)
    }

    /// The id's bytes.
    pub const fn bytes(&self) -> [u8; 16] {
        self.0
    }

    /// A new id, different for every store: 128 bits from the platform's randomness (natively
    /// the OS-seeded keys of `std`'s `RandomState`, in the browser JavaScript's `Math.random`),
    /// mixed with the time. It tells stores apart; it is not a secret.
    pub fn generate(now_ms: u64) -> Self {
        let (lo, hi) = random_pair();
        StoreId((u128::from(hi) << 64 | u128::from(lo ^ now_ms)).to_le_bytes())
    }
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn random_pair() -> (u64, u64) {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    // Each `RandomState` is seeded from the OS once per thread and then stepped; the counter
    // and the thread keep two ids made in one process apart.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let word = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u64(n);
        h.write(format!("{:?}", std::thread::current().id()).as_bytes());
        h.finish()
    };
    (word(1), word(2))
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn random_pair() -> (u64, u64) {
    // A double in [0, 1) from `Math.random` carries 52 random mantissa bits; two per word.
    let word =
        || js_sys::Math::random().to_bits() ^ js_sys::Math::random().to_bits().rotate_left(32);
    (word(), word())
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreId({self})")
    }
}

/// The header of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    /// What the file holds, in the engine's own numbering.
    pub kind: u8,
    /// The store it belongs to.
    pub store: StoreId,
    /// The id in its name (0 for a file without one).
    pub file_id: u64,
}

/// What [`FileHeader::decode`] found instead of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadHeader {
    /// The file is shorter than a header: a file whose creation a crash interrupted, if the
    /// engine's protocol allows one there.
    Short,
    /// Not a header: a CRC mismatch, another magic, or a malformed payload.
    Damaged,
    /// A header of a format this build does not read.
    Format(u16),
}

impl FileHeader {
    /// Appends the header's bytes (exactly [`LEN`]) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        frame::encode_with(out, |b| {
            b.extend_from_slice(&MAGIC);
            b.extend_from_slice(&FORMAT.to_le_bytes());
            b.push(self.kind);
            b.extend_from_slice(&self.store.0);
            b.extend_from_slice(&self.file_id.to_le_bytes());
        });
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        self.encode(&mut out);
        out
    }

    /// Decodes the header at the start of `buf` (the file's first bytes, at least [`LEN`] of
    /// them if the file has that many).
    pub fn decode(buf: &[u8]) -> Result<FileHeader, BadHeader> {
        let Some(head) = buf.get(..LEN) else {
            return Err(BadHeader::Short);
        };
        let frame::Decoded::Frame { payload, .. } = frame::decode(head, 0) else {
            return Err(BadHeader::Damaged);
        };
        let mut r = Reader::new(payload);
        if r.take(8) != Some(MAGIC.as_slice()) {
            return Err(BadHeader::Damaged);
        }
        let format = r.u16().ok_or(BadHeader::Damaged)?;
        if format != FORMAT {
            return Err(BadHeader::Format(format));
        }
        let kind = r.u8().ok_or(BadHeader::Damaged)?;
        let store = r
            .take(16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or(BadHeader::Damaged)?;
        let file_id = r.u64().ok_or(BadHeader::Damaged)?;
        if r.remaining() != 0 {
            return Err(BadHeader::Damaged);
        }
        Ok(FileHeader {
            kind,
            store: StoreId(store),
            file_id,
        })
    }

    /// Checks that `buf` (the start of file `name`) begins with exactly this header. Anything
    /// else is [`Error::Corruption`] at offset 0 saying what was found: no header, another
    /// format, a file of another store, of another kind, or under another file's name.
    pub fn check(&self, buf: &[u8], name: &str) -> Result<()> {
        let bad = |reason: String| Err(Error::corruption(name, 0, reason));
        let found = match FileHeader::decode(buf) {
            Ok(found) => found,
            Err(BadHeader::Short) => {
                return bad(format!(
                    "file of {} bytes is shorter than its header",
                    buf.len()
                ));
            }
            Err(BadHeader::Damaged) => return bad("no valid file header".into()),
            Err(BadHeader::Format(f)) => {
                return bad(format!(
                    "file of format {f}; this build reads format {FORMAT}"
                ));
            }
        };
        if found.store != self.store {
            return bad(format!(
                "file of another store (store id {}, this store is {})",
                found.store, self.store
            ));
        }
        if found.kind != self.kind {
            return bad(format!(
                "file of kind {} where kind {} belongs",
                found.kind, self.kind
            ));
        }
        if found.file_id != self.file_id {
            return bad(format!(
                "the header names file id {}, the file name {} (a file copied or renamed over another)",
                found.file_id, self.file_id
            ));
        }
        Ok(())
    }

    /// [`FileHeader::check`] on the first bytes of an open file: one read of [`LEN`] bytes (or
    /// of the whole file, if it is shorter), for a file whose records are not read now.
    pub async fn check_file<F: StorageFile>(&self, file: &F, name: &str) -> Result<()> {
        let len = file.len().await?;
        let n = usize::try_from(len).map_or(LEN, |len| len.min(LEN));
        let head = if n == 0 {
            Vec::new()
        } else {
            file.read_at(0, n).await?
        };
        self.check(&head, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileHeader {
        FileHeader {
            kind: 3,
            store: StoreId([9; 16]),
            file_id: 77,
        }
    }

    #[test]
    fn round_trip() {
        let h = sample();
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), LEN);
        assert_eq!(FileHeader::decode(&bytes), Ok(h));
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"records follow");
        assert_eq!(FileHeader::decode(&longer), Ok(h));
        assert!(h.check(&longer, "f").is_ok());
    }

    #[test]
    fn every_damage_and_mismatch_is_named() {
        let h = sample();
        let bytes = h.to_bytes();
        for cut in 0..LEN {
            assert_eq!(FileHeader::decode(&bytes[..cut]), Err(BadHeader::Short));
            assert!(h.check(&bytes[..cut], "f").is_err());
        }
        for i in 0..LEN {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(FileHeader::decode(&bad).is_err(), "flip at {i}");
            assert!(h.check(&bad, "f").is_err());
        }
        let reason = |other: FileHeader| match other.check(&bytes, "f") {
            Err(Error::Corruption { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason(FileHeader { kind: 4, ..h }).contains("kind"));
        assert!(reason(FileHeader { file_id: 78, ..h }).contains("file id"));
        assert!(
            reason(FileHeader {
                store: StoreId([8; 16]),
                ..h
            })
            .contains("another store")
        );
    }

    #[test]
    fn ids_differ() {
        let a = StoreId::generate(5);
        let b = StoreId::generate(5);
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), 32);
    }
}
