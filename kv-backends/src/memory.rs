//! An in-memory backend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use kv_api::{Error, LockGuard, Result, Storage, StorageFile, not_found, read_past_end};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type Data = Arc<RwLock<Vec<u8>>>;

/// Files kept in memory. Clones share the same files, so dropping a store and opening a new
/// one on a clone sees everything the first one wrote (all of it: memory has no crash; use
/// `kv_conformance::FaultyStorage` to simulate one).
///
/// ```
/// let storage = kv_backends::MemoryStorage::new();
/// let same_data = storage.clone();
/// # drop(same_data);
/// ```
#[derive(Clone, Default)]
pub struct MemoryStorage {
    files: Arc<Mutex<HashMap<String, Data>>>,
    locked: Arc<AtomicBool>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Total bytes of all files.
    pub fn total_bytes(&self) -> u64 {
        lock(&self.files)
            .values()
            .map(|d| d.read().unwrap_or_else(PoisonError::into_inner).len() as u64)
            .sum()
    }
}

/// A file of a [`MemoryStorage`].
#[derive(Clone)]
pub struct MemoryFile {
    name: Arc<str>,
    data: Data,
}

impl MemoryFile {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<u8>> {
        self.data.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<u8>> {
        self.data.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl StorageFile for MemoryFile {
    async fn len(&self) -> Result<u64> {
        Ok(self.read().len() as u64)
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let data = self.read();
        let end = offset.checked_add(len as u64);
        match end {
            Some(end) if end <= data.len() as u64 => {
                Ok(data[offset as usize..end as usize].to_vec())
            }
            _ => Err(read_past_end(&self.name, offset, len, data.len() as u64)),
        }
    }

    async fn append(&self, bytes: &[u8]) -> Result<u64> {
        let mut data = self.write();
        let offset = data.len() as u64;
        data.extend_from_slice(bytes);
        Ok(offset)
    }

    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        let mut data = self.write();
        if len > data.len() as u64 {
            return Err(Error::InvalidArgument(format!(
                "truncate {} to {len} beyond its length {}",
                self.name,
                data.len()
            )));
        }
        data.truncate(len as usize);
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
        Ok(lock(&self.files).keys().cloned().collect())
    }

    async fn open(&self, name: &str) -> Result<MemoryFile> {
        let data = lock(&self.files)
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
        lock(&self.files).insert(name.to_string(), data.clone());
        Ok(MemoryFile {
            name: name.into(),
            data,
        })
    }

    async fn remove(&self, name: &str) -> Result<()> {
        lock(&self.files).remove(name);
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let mut files = lock(&self.files);
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
                "memory storage is already open for writing".into(),
            ));
        }
        Ok(LockGuard::new(MemoryLock(self.locked.clone())))
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        Ok(lock(&self.files).contains_key(name))
    }
}
