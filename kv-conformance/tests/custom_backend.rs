//! A backend written the way a user would write one (a `HashMap` of byte vectors behind a
//! mutex), proven by the whole conformance suite with one `suite!` line at the bottom.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kv_api::{Error, LockGuard, Result, Storage, StorageFile, async_trait};

/// The bytes of one file, shared by its handles.
type Data = Arc<Mutex<Vec<u8>>>;

/// The user's storage: named files in a shared map. Clones share the data.
#[derive(Clone, Default)]
pub struct HashMapStorage {
    files: Arc<Mutex<HashMap<String, Data>>>,
    locked: Arc<AtomicBool>,
}

/// A file of a [`HashMapStorage`].
#[derive(Clone)]
pub struct HashMapFile {
    name: String,
    data: Data,
}

fn poisoned<T>(_: T) -> Error {
    Error::io("lock", std::io::Error::other("poisoned mutex"))
}

#[async_trait]
impl StorageFile for HashMapFile {
    async fn len(&self) -> Result<u64> {
        Ok(self.data.lock().map_err(poisoned)?.len() as u64)
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let data = self.data.lock().map_err(poisoned)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(len).and_then(|end| data.get(start..end)) {
            Some(bytes) => Ok(bytes.to_vec()),
            None => Err(kv_api::read_past_end(
                &self.name,
                offset,
                len,
                data.len() as u64,
            )),
        }
    }

    async fn append(&self, bytes: &[u8]) -> Result<u64> {
        let mut data = self.data.lock().map_err(poisoned)?;
        let offset = data.len() as u64;
        data.extend_from_slice(bytes);
        Ok(offset)
    }

    async fn sync(&self) -> Result<()> {
        Ok(()) // memory: nothing to make durable
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        let mut data = self.data.lock().map_err(poisoned)?;
        if len > data.len() as u64 {
            return Err(Error::InvalidArgument(format!(
                "truncate {} beyond its end",
                self.name
            )));
        }
        data.truncate(len as usize);
        Ok(())
    }
}

/// Releases the writer lock when dropped.
struct Unlock(Arc<AtomicBool>);

impl Drop for Unlock {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[async_trait]
impl Storage for HashMapStorage {
    type File = HashMapFile;

    async fn list(&self) -> Result<Vec<String>> {
        Ok(self
            .files
            .lock()
            .map_err(poisoned)?
            .keys()
            .cloned()
            .collect())
    }

    async fn open(&self, name: &str) -> Result<HashMapFile> {
        let files = self.files.lock().map_err(poisoned)?;
        let data = files
            .get(name)
            .cloned()
            .ok_or_else(|| kv_api::not_found("open", name))?;
        Ok(HashMapFile {
            name: name.to_string(),
            data,
        })
    }

    async fn create(&self, name: &str) -> Result<HashMapFile> {
        let data = Data::default();
        self.files
            .lock()
            .map_err(poisoned)?
            .insert(name.to_string(), data.clone());
        Ok(HashMapFile {
            name: name.to_string(),
            data,
        })
    }

    async fn remove(&self, name: &str) -> Result<()> {
        self.files.lock().map_err(poisoned)?.remove(name);
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let mut files = self.files.lock().map_err(poisoned)?;
        let data = files
            .remove(from)
            .ok_or_else(|| kv_api::not_found("rename", from))?;
        files.insert(to.to_string(), data);
        Ok(())
    }

    async fn sync(&self) -> Result<()> {
        Ok(())
    }

    async fn lock(&self) -> Result<LockGuard> {
        if self.locked.swap(true, Ordering::AcqRel) {
            return Err(Error::Locked("HashMapStorage is open for writing".into()));
        }
        Ok(LockGuard::new(Unlock(self.locked.clone())))
    }
}

/// How the suite gets a fresh storage, and the same one again to reopen.
pub struct HashMapFactory(HashMapStorage);

#[async_trait]
impl kv_conformance::StorageFactory for HashMapFactory {
    type Storage = HashMapStorage;
    const NAME: &'static str = "hashmap";

    fn new() -> Self {
        HashMapFactory(HashMapStorage::default())
    }

    async fn storage(&self) -> Result<HashMapStorage> {
        Ok(self.0.clone())
    }
}

// The one line that runs the whole suite on this backend.
kv_conformance::suite!(
    hashmap_bitcask,
    engine = kv_bitcask::Bitcask,
    factory = HashMapFactory
);
