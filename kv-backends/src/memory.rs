//! An in-memory backend.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};

use kv_api::{Error, LockGuard, Result, Storage, StorageFile, not_found, read_past_end};

type Data = Arc<RwLock<Bytes>>;

/// Most bytes one chunk of a [`Bytes`] holds: 1 MiB.
const CHUNK: usize = 1 << 20;

/// The bytes of a memory file, in chunks of at most [`CHUNK`] bytes that are never moved once
/// full: a file in one `Vec` copied itself whole whenever it doubled, a pause of milliseconds
/// for the append that did it (a 64 MiB segment; #12).
#[derive(Default)]
struct Bytes {
    /// All full but the last, which is not empty.
    chunks: Vec<Vec<u8>>,
    len: u64,
}

impl Bytes {
    fn len(&self) -> u64 {
        self.len
    }

    fn append(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.chunks.last().is_none_or(|last| last.len() >= CHUNK) {
                // A file past one chunk is large: its chunks get their full size at once.
                let size = if self.chunks.is_empty() { 0 } else { CHUNK };
                self.chunks.push(Vec::with_capacity(size));
            }
            let Some(last) = self.chunks.last_mut() else {
                return;
            };
            let n = bytes.len().min(CHUNK - last.len());
            let (head, rest) = bytes.split_at(n);
            last.extend_from_slice(head);
            self.len += n as u64;
            bytes = rest;
        }
    }

    /// The bytes at `offset..offset + len`, which the caller checked lie in the file.
    fn copy(&self, offset: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut chunk = (offset / CHUNK as u64) as usize;
        let mut at = (offset % CHUNK as u64) as usize;
        while out.len() < len {
            let from = &self.chunks[chunk][at..];
            let n = from.len().min(len - out.len());
            out.extend_from_slice(&from[..n]);
            chunk += 1;
            at = 0;
        }
        out
    }

    fn truncate(&mut self, len: u64) {
        let keep = len.div_ceil(CHUNK as u64) as usize;
        self.chunks.truncate(keep);
        if let Some(last) = self.chunks.last_mut() {
            last.truncate((len - (keep as u64 - 1) * CHUNK as u64) as usize);
        }
        self.len = len;
    }
}

/// Files kept in memory. Clones share the same files, so dropping a store and opening a new
/// one on a clone sees everything the first one wrote (all of it: memory has no crash; use
/// `kv_conformance::FaultyStorage` to simulate one).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_db::Result<()> {
/// use kv_db::{KvStore, backends::MemoryStorage};
/// let storage = MemoryStorage::new();
/// let store = KvStore::open(storage.clone()).await?; // a clone: the same files
/// store.transact(async |txn| txn.insert(0, &"k", 1u8)).await?;
/// store.close().await?;
/// let again = KvStore::open(storage).await?;
/// assert_eq!(again.snapshot().get::<_, u8>(0, &"k").await?, Some(1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStorage {
    files: Arc<Mutex<HashMap<String, Data>>>,
    locked: Arc<AtomicBool>,
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files = self.files.lock().len();
        f.debug_struct("MemoryStorage")
            .field("files", &files)
            .field("bytes", &self.total_bytes())
            .field("locked", &self.locked.load(Ordering::Acquire))
            .finish()
    }
}

impl MemoryStorage {
    /// An empty storage.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{KvStore, backends::MemoryStorage};
    /// let storage = MemoryStorage::new();
    /// assert_eq!(storage.total_bytes(), 0);
    /// let store = KvStore::open(storage).await?;
    /// assert_eq!(store.version()?, kv_db::Version::ZERO);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Total bytes of all files: what the store would take on a disk, handy in tests of
    /// space use.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> kv_db::Result<()> {
    /// use kv_db::{KvStore, backends::MemoryStorage};
    /// let storage = MemoryStorage::new();
    /// let store = KvStore::open(storage.clone()).await?;
    /// let empty = storage.total_bytes();
    /// store.transact(async |txn| txn.insert(0, &"blob", vec![7u8; 10_000])).await?;
    /// assert!(storage.total_bytes() >= empty + 10_000);
    /// # Ok(())
    /// # }
    /// ```
    pub fn total_bytes(&self) -> u64 {
        self.files.lock().values().map(|d| d.read().len()).sum()
    }
}

/// A file of a [`MemoryStorage`].
#[derive(Clone)]
pub struct MemoryFile {
    name: Arc<str>,
    data: Data,
}

impl MemoryFile {
    fn read(&self) -> parking_lot::RwLockReadGuard<'_, Bytes> {
        self.data.read()
    }

    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, Bytes> {
        self.data.write()
    }
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl StorageFile for MemoryFile {
    async fn len(&self) -> Result<u64> {
        Ok(self.read().len())
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let data = self.read();
        let end = offset.checked_add(len as u64);
        match end {
            Some(end) if end <= data.len() => Ok(data.copy(offset, len)),
            _ => Err(read_past_end(&self.name, offset, len, data.len())),
        }
    }

    async fn append(&self, bytes: &[u8]) -> Result<u64> {
        let mut data = self.write();
        let offset = data.len();
        data.append(bytes);
        Ok(offset)
    }

    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        let mut data = self.write();
        if len > data.len() {
            return Err(Error::InvalidArgument(format!(
                "truncate {} to {len} beyond its length {}",
                self.name,
                data.len()
            )));
        }
        data.truncate(len);
        Ok(())
    }
}

struct MemoryLock(Arc<AtomicBool>);

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl Storage for MemoryStorage {
    type File = MemoryFile;

    async fn list(&self) -> Result<Vec<String>> {
        Ok(self.files.lock().keys().cloned().collect())
    }

    async fn open(&self, name: &str) -> Result<MemoryFile> {
        let data = self
            .files
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| not_found("open", name))?;
        Ok(MemoryFile {
            name: name.into(),
            data,
        })
    }

    async fn create(&self, name: &str) -> Result<MemoryFile> {
        let data = Data::default();
        self.files.lock().insert(name.to_string(), data.clone());
        Ok(MemoryFile {
            name: name.into(),
            data,
        })
    }

    async fn remove(&self, name: &str) -> Result<()> {
        self.files.lock().remove(name);
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let mut files = self.files.lock();
        let data = files
            .remove(from)
            .ok_or_else(|| not_found("rename", from))?;
        files.insert(to.to_string(), data);
        Ok(())
    }

    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    async fn lock(&self) -> Result<LockGuard> {
        if self.locked.swap(true, Ordering::AcqRel) {
            return Err(Error::Locked(
                "this memory storage is open for writing by another store in this process (a \
                 store stays open while any clone of it, or any transaction or snapshot taken \
                 from it, is alive; or call `Store::close`)"
                    .into(),
            ));
        }
        Ok(LockGuard::new(MemoryLock(self.locked.clone())))
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.files.lock().contains_key(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends, reads and truncations across chunk boundaries agree with one flat `Vec`.
    #[tokio::test]
    async fn chunked_files_read_back_what_was_appended() -> Result<()> {
        let storage = MemoryStorage::new();
        let f = storage.create("f").await?;
        let mut model = Vec::new();
        for (i, n) in [10, CHUNK - 10, 1, 3 * CHUNK + 7, 5, CHUNK]
            .into_iter()
            .enumerate()
        {
            let bytes: Vec<u8> = (0..n).map(|j| (i * 31 + j) as u8).collect();
            assert_eq!(f.append(&bytes).await?, model.len() as u64);
            model.extend_from_slice(&bytes);
        }
        assert_eq!(f.len().await?, model.len() as u64);
        let total = model.len();
        for (offset, len) in [
            (0, total),
            (CHUNK - 3, 7),
            (5, 2 * CHUNK + 9),
            (total - 1, 1),
        ] {
            let got = f.read_at(offset as u64, len).await?;
            assert!(
                got == model[offset..offset + len],
                "read at {offset}, {len}"
            );
        }
        assert!(f.read_at(total as u64 - 1, 2).await.is_err());
        for len in [3 * CHUNK + 5, 2 * CHUNK, CHUNK + 1, 7, 0] {
            f.truncate(len as u64).await?;
            model.truncate(len);
            assert_eq!(f.len().await?, len as u64);
            assert!(
                f.read_at(0, len).await? == model,
                "after truncating to {len}"
            );
            f.append(b"tail").await?;
            model.extend_from_slice(b"tail");
            assert!(
                f.read_at(0, model.len()).await? == model,
                "after {len} and an append"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn second_writer_is_locked_until_the_first_drops() -> Result<()> {
        let a = MemoryStorage::new();
        let guard = a.lock().await?;
        let Err(Error::Locked(why)) = a.clone().lock().await else {
            panic!("a second lock was not refused");
        };
        assert!(why.contains("another store in this process"), "{why}");
        assert!(format!("{a:?}").contains("locked: true"));
        drop(guard);
        a.lock().await?;
        Ok(())
    }
}
