//! Blob files: large values stored apart from their keys ([`crate::LsmOptions::blob_threshold`]).
//!
//! ```text
//! file header (kind KIND_BLOB, the store's id, the file's id)
//! frame* : crc32 u32 | len u32 | seq u64 | ukey_len u32 | ukey | value
//! ```
//!
//! A flush writes the values of at least the threshold into one blob file beside its table, in
//! key order, and the table holds a [`BlobRef`] (entry kind 2) instead of each value. Each
//! frame names its owner (user key and sequence number), so a read checks that it got the
//! record the reference names: a damaged, truncated or swapped blob file is
//! [`Error::Corruption`] naming it, never another value. Compaction copies references; merge
//! keeps the blob files of which every record is still needed and rewrites the values it
//! keeps from the others into new blob files, after which those are garbage (deleted once no
//! reader holds them, like compacted tables).

use std::sync::Arc;

use kv_api::{Error, Result, Storage, StorageFile, frame};
use kv_engine_kit::header::{self, FileHeader, StoreId};

use crate::names::KIND_BLOB;
use crate::sstable::varint::{get_varint, put_varint};

/// Bytes buffered before an append to a blob file.
const WRITE_CHUNK: usize = 1 << 20;
/// Frame payload bytes before the user key: `seq u64 | ukey_len u32`.
const OWNER_LEN: usize = 12;

/// The file name of blob file `id`.
pub(crate) fn blob_name(id: u64) -> String {
    format!("{id:08}.blob")
}

/// The id of a blob file name: only a name [`blob_name`] writes.
pub(crate) fn parse_blob_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".blob")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = digits.parse().ok()?;
    (blob_name(id) == name).then_some(id)
}

/// The header blob file `id` of `store` begins with.
pub(crate) fn blob_header(store: StoreId, id: u64) -> FileHeader {
    FileHeader {
        kind: KIND_BLOB,
        store,
        file_id: id,
    }
}

/// Where a value stored apart lies: the whole frame at `offset` (`len` bytes, frame header
/// included) of blob file `file`. Stored in a table entry of kind 2 as three varints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobRef {
    pub file: u64,
    pub offset: u64,
    pub len: u64,
}

impl BlobRef {
    /// Appends the reference's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.file);
        put_varint(out, self.offset);
        put_varint(out, self.len);
    }

    /// The reference in `raw` (exactly its bytes); `None` if malformed.
    pub fn decode(raw: &[u8]) -> Option<BlobRef> {
        let mut at = 0;
        let file = get_varint(raw, &mut at)?;
        let offset = get_varint(raw, &mut at)?;
        let len = get_varint(raw, &mut at)?;
        (at == raw.len()).then_some(BlobRef { file, offset, len })
    }

    /// Bytes of the value it names (the frame less its header and owner).
    pub fn value_len(&self, ukey: &[u8]) -> u64 {
        let overhead = (frame::HEADER_LEN + OWNER_LEN) as u64;
        self.len
            .saturating_sub(overhead)
            .saturating_sub(ukey.len() as u64)
    }
}

/// The value in `frame_bytes`, the frame a [`BlobRef`] of version `seq` of `ukey` names:
/// checked whole (CRC, length, owner). `Err` says what is wrong, for a corruption error.
pub(crate) fn decode_frame<'a>(
    frame_bytes: &'a [u8],
    ukey: &[u8],
    seq: u64,
) -> std::result::Result<&'a [u8], &'static str> {
    let payload = frame::decode_exact(frame_bytes)?;
    let (owner, rest) = payload
        .split_first_chunk::<OWNER_LEN>()
        .ok_or("blob record shorter than its owner")?;
    let (seq_bytes, len_bytes) = owner.split_at(8);
    let stored_seq = u64::from_le_bytes(seq_bytes.try_into().map_err(|_| "owner")?);
    let key_len = u32::from_le_bytes(len_bytes.try_into().map_err(|_| "owner")?);
    let key_len = usize::try_from(key_len).map_err(|_| "key length")?;
    let (key, value) = rest
        .split_at_checked(key_len)
        .ok_or("blob record key runs past the record")?;
    if key != ukey || stored_seq != seq {
        return Err("blob record of another key or version than its reference names");
    }
    Ok(value)
}

/// What the manifest records about a blob file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobMeta {
    /// File id: the file is [`blob_name`]`(id)`.
    pub id: u64,
    /// Bytes of the file.
    pub size: u64,
    /// Values it holds.
    pub values: u64,
    /// Bytes of those values.
    pub value_bytes: u64,
}

/// Writes one blob file; [`BlobWriter::finish`] syncs it.
pub(crate) struct BlobWriter<F: StorageFile> {
    file: F,
    id: u64,
    out: Vec<u8>,
    written: u64,
    values: u64,
    value_bytes: u64,
}

impl<F: StorageFile> BlobWriter<F> {
    /// Creates blob file `id` of `store`; its header is the first thing buffered.
    pub async fn create<S: Storage<File = F>>(
        storage: &S,
        store: StoreId,
        id: u64,
    ) -> Result<Self> {
        let file = storage.create(&blob_name(id)).await?;
        let mut out = Vec::with_capacity(WRITE_CHUNK);
        blob_header(store, id).encode(&mut out);
        Ok(BlobWriter {
            file,
            id,
            out,
            written: 0,
            values: 0,
            value_bytes: 0,
        })
    }

    /// Buffers version `seq` of `ukey` with `value`; returns its reference. Appends once the
    /// buffer holds a chunk.
    pub async fn add(&mut self, ukey: &[u8], seq: u64, value: &[u8]) -> Result<BlobRef> {
        let payload = OWNER_LEN
            .checked_add(ukey.len())
            .and_then(|n| n.checked_add(value.len()))
            .filter(|n| *n <= frame::MAX_PAYLOAD)
            .ok_or(Error::TooLarge {
                what: "value",
                size: value.len(),
                max: frame::MAX_PAYLOAD,
            })?;
        let key_len = u32::try_from(ukey.len()).map_err(|_| Error::TooLarge {
            what: "key",
            size: ukey.len(),
            max: u32::MAX as usize,
        })?;
        let offset = self
            .written
            .checked_add(self.out.len() as u64)
            .ok_or_else(|| Error::InvalidArgument("blob file offset overflow".into()))?;
        frame::encode_with(&mut self.out, |b| {
            b.reserve(payload);
            b.extend_from_slice(&seq.to_le_bytes());
            b.extend_from_slice(&key_len.to_le_bytes());
            b.extend_from_slice(ukey);
            b.extend_from_slice(value);
        });
        let len = (frame::HEADER_LEN as u64).saturating_add(payload as u64);
        self.values = self.values.saturating_add(1);
        self.value_bytes = self.value_bytes.saturating_add(value.len() as u64);
        if self.out.len() >= WRITE_CHUNK {
            self.drain().await?;
        }
        Ok(BlobRef {
            file: self.id,
            offset,
            len,
        })
    }

    async fn drain(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.file.append(&self.out).await?;
            self.written = self.written.saturating_add(self.out.len() as u64);
            self.out.clear();
        }
        Ok(())
    }

    /// Appends what is buffered and syncs the file.
    pub async fn finish(mut self) -> Result<BlobMeta> {
        self.drain().await?;
        self.file.sync().await?;
        Ok(BlobMeta {
            id: self.id,
            size: self.written,
            values: self.values,
            value_bytes: self.value_bytes,
        })
    }
}

/// A live blob file, opened (and its header checked) on first read. Held by the level sets
/// that list it, so a reader's view keeps it from deletion like its tables.
pub(crate) struct BlobFile<S: Storage> {
    pub meta: BlobMeta,
    storage: S,
    store: StoreId,
    file: tokio::sync::OnceCell<Arc<S::File>>,
}

impl<S: Storage> BlobFile<S> {
    /// A blob file of `store`, not opened yet.
    pub fn new(meta: BlobMeta, storage: S, store: StoreId) -> Self {
        BlobFile {
            meta,
            storage,
            store,
            file: tokio::sync::OnceCell::new(),
        }
    }

    /// The file name.
    pub fn name(&self) -> String {
        blob_name(self.meta.id)
    }

    async fn file(&self) -> Result<Arc<S::File>> {
        if let Some(f) = self.file.get() {
            return Ok(f.clone());
        }
        self.file
            .get_or_try_init(|| async {
                let name = self.name();
                let f = self.storage.open(&name).await?;
                let len = f.len().await?;
                if len != self.meta.size {
                    return Err(Error::corruption(
                        &name,
                        len.min(self.meta.size),
                        format!(
                            "blob file of {len} bytes, the manifest records {}",
                            self.meta.size
                        ),
                    ));
                }
                blob_header(self.store, self.meta.id)
                    .check_file(&f, &name)
                    .await?;
                Ok(Arc::new(f))
            })
            .await
            .cloned()
    }

    /// The value `r` names, of version `seq` of `ukey`: one read, checked whole. A reference
    /// outside the file (a forged length or offset) is corruption before anything is read or
    /// allocated.
    pub async fn read(&self, r: &BlobRef, ukey: &[u8], seq: u64) -> Result<Vec<u8>> {
        let name = self.name();
        let end = r.offset.checked_add(r.len);
        let min = (frame::HEADER_LEN + OWNER_LEN) as u64;
        if r.offset < header::LEN as u64 || r.len < min || end.is_none_or(|e| e > self.meta.size) {
            return Err(Error::corruption(
                &name,
                r.offset,
                format!(
                    "blob reference of {} bytes at {} outside the file ({} bytes)",
                    r.len, r.offset, self.meta.size
                ),
            ));
        }
        let len = usize::try_from(r.len)
            .map_err(|_| Error::corruption(&name, r.offset, "blob reference too long"))?;
        let bytes = self.file().await?.read_at(r.offset, len).await?;
        decode_frame(&bytes, ukey, seq)
            .map(<[u8]>::to_vec)
            .map_err(|why| Error::corruption(&name, r.offset, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_backends::MemoryStorage;

    /// A reader's view holds the blob files of its level set: a merge that replaces them
    /// leaves them on storage, still readable through the view, until the view is dropped;
    /// the next `gc` deletes them then (the mechanism that keeps compacted tables).
    #[tokio::test]
    async fn merged_away_blob_files_outlive_the_views_that_hold_them() {
        use kv_api::{Engine, Options, Tuning, WriteBatch};

        let storage = MemoryStorage::new();
        let e = crate::Lsm::open(
            storage.clone(),
            Options::default(),
            crate::LsmOptions::small(),
        )
        .await
        .unwrap();
        for round in 0..2u8 {
            for k in 0..20u8 {
                let batch = WriteBatch::new(e.snapshot().unwrap()).write(
                    0,
                    vec![k],
                    Some(vec![round; 1000]),
                );
                e.commit(batch).await.unwrap();
            }
        }
        let view = e.inner.view();
        let old: Vec<u64> = view.levels.blob_files().map(|b| b.meta.id).collect();
        assert!(!old.is_empty());
        e.merge().await.unwrap();
        let exists = async |id: u64| storage.exists(&blob_name(id)).await.unwrap();
        let now: Vec<u64> = e
            .inner
            .read_state()
            .levels
            .blob_files()
            .map(|b| b.meta.id)
            .collect();
        let replaced: Vec<u64> = old.iter().copied().filter(|id| !now.contains(id)).collect();
        assert!(!replaced.is_empty(), "the merge replaced blob files");
        for id in &replaced {
            assert!(exists(*id).await, "blob file {id} deleted under a view");
            // Still whole: opened and its header checked through the view.
            view.levels.blob(*id).unwrap().file().await.unwrap();
        }
        let at = e.snapshot().unwrap().seq();
        drop(view);
        e.inner.gc().await.unwrap();
        for id in &replaced {
            assert!(
                !exists(*id).await,
                "blob file {id} left after the view went"
            );
        }
        assert_eq!(e.get(0, &[3], at).await.unwrap(), Some(vec![1u8; 1000]));
    }

    #[test]
    fn names() {
        assert_eq!(blob_name(42), "00000042.blob");
        assert_eq!(parse_blob_name("00000042.blob"), Some(42));
        assert_eq!(parse_blob_name("42.blob"), None);
        assert_eq!(parse_blob_name("00000042.sst"), None);
    }

    #[test]
    fn reference_round_trip_and_malformed() {
        let r = BlobRef {
            file: 7,
            offset: 1 << 40,
            len: 70_000,
        };
        let mut raw = Vec::new();
        r.encode(&mut raw);
        assert_eq!(BlobRef::decode(&raw), Some(r));
        assert_eq!(BlobRef::decode(&raw[..raw.len() - 1]), None);
        raw.push(0);
        assert_eq!(BlobRef::decode(&raw), None, "trailing byte");
        assert_eq!(BlobRef::decode(&[0xff; 11]), None, "overlong varint");
    }

    #[tokio::test]
    async fn write_read_and_damage() {
        let storage = MemoryStorage::new();
        let store = StoreId::from_bytes([3; 16]);
        let mut w = BlobWriter::create(&storage, store, 5).await.unwrap();
        let a = w.add(b"\0a", 10, &[1u8; 5000]).await.unwrap();
        let b = w.add(b"\0b", 11, b"").await.unwrap();
        let meta = w.finish().await.unwrap();
        assert_eq!((meta.values, meta.value_bytes), (2, 5000));
        assert_eq!(a.value_len(b"\0a"), 5000);
        let f = BlobFile::new(meta.clone(), storage.clone(), store);
        assert_eq!(f.read(&a, b"\0a", 10).await.unwrap(), vec![1u8; 5000]);
        assert_eq!(f.read(&b, b"\0b", 11).await.unwrap(), b"");
        // Another owner, a forged length, a reference past the end.
        for (r, k, s) in [
            (a, &b"\0b"[..], 10),
            (a, &b"\0a"[..], 11),
            (
                BlobRef {
                    len: a.len - 1,
                    ..a
                },
                &b"\0a"[..],
                10,
            ),
            (BlobRef { len: u64::MAX, ..a }, &b"\0a"[..], 10),
            (BlobRef { offset: 0, ..a }, &b"\0a"[..], 10),
        ] {
            let e = f.read(&r, k, s).await.unwrap_err();
            assert!(matches!(e, Error::Corruption { .. }), "{e}");
        }
        // A flipped byte in the value.
        let bytes = storage.open(&blob_name(5)).await.unwrap();
        let all = bytes.read_at(0, meta.size as usize).await.unwrap();
        let mut bad = all.clone();
        bad[a.offset as usize + 100] ^= 1;
        storage.remove(&blob_name(5)).await.unwrap();
        storage
            .create(&blob_name(5))
            .await
            .unwrap()
            .append(&bad)
            .await
            .unwrap();
        let f = BlobFile::new(meta.clone(), storage.clone(), store);
        assert!(matches!(
            f.read(&a, b"\0a", 10).await.unwrap_err(),
            Error::Corruption { .. }
        ));
        // A blob file of another id under this name.
        let f = BlobFile::new(BlobMeta { id: 6, ..meta }, storage.clone(), store);
        storage.rename(&blob_name(5), &blob_name(6)).await.unwrap();
        assert!(matches!(
            f.read(&a, b"\0a", 10).await.unwrap_err(),
            Error::Corruption { .. }
        ));
    }
}
