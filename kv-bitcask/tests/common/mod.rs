//! Helpers shared by the integration tests: typed shorthands, copies of a storage's files,
//! and `Probe`, a storage wrapper that counts reads per file and can fail writes on demand.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use kv_api::{
    Engine, Error, LockGuard, Options, Result, Storage, StorageFile, Store, Version, WriteBatch,
};
use kv_backends::MemoryStorage;
use kv_bitcask::Bitcask;

pub type Mem = Bitcask<MemoryStorage>;

pub async fn open(s: &MemoryStorage) -> Result<Store<Mem>> {
    Store::open(s.clone()).await
}

pub async fn open_with(s: &MemoryStorage, options: Options) -> Result<Store<Mem>> {
    Store::open_with(s.clone(), options).await
}

/// Commits `key = value` in slot 0.
pub async fn put<E: Engine>(store: &Store<E>, key: &str, value: u64) -> Result<Version> {
    let mut txn = store.current();
    txn.insert(0, key, value)?;
    txn.commit().await
}

/// Commits the removal of `key` in slot 0.
pub async fn del<E: Engine>(store: &Store<E>, key: &str) -> Result<Version> {
    let mut txn = store.current();
    txn.remove(0, key)?;
    txn.commit().await
}

/// The latest value of `key` in slot 0.
pub async fn get<E: Engine>(store: &Store<E>, key: &str) -> Result<Option<u64>> {
    store.snapshot().get(0, key).await
}

/// Applies a history of `n` single-key commits to `store` and to `model`: commit `i` writes
/// `i` under `key(i)`, or removes that key where `removes(i)`.
pub async fn commit_history<E: Engine>(
    store: &Store<E>,
    model: &mut BTreeMap<String, u64>,
    n: u64,
    key: impl Fn(u64) -> String,
    removes: impl Fn(u64) -> bool,
) -> Result<()> {
    for i in 0..n {
        let key = key(i);
        if removes(i) {
            del(store, &key).await?;
            model.remove(&key);
        } else {
            put(store, &key, i).await?;
            model.insert(key, i);
        }
    }
    Ok(())
}

/// Checks that slot 0 of `store` holds exactly `model`, by a scan and by point reads.
pub async fn check<E: Engine>(store: &Store<E>, model: &BTreeMap<String, u64>) -> Result<()> {
    let snap = store.snapshot();
    let all: Vec<(String, u64)> = snap.range::<String, u64>(0, ..).await?;
    let expected: Vec<(String, u64)> = model.iter().map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(all, expected);
    for (k, v) in model {
        assert_eq!(snap.get::<_, u64>(0, k).await?, Some(*v), "{k}");
    }
    Ok(())
}

/// Every file's bytes.
pub async fn files<S: Storage>(s: &S) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for name in s.list().await? {
        let f = s.open(&name).await?;
        let len = f.len().await? as usize;
        let bytes = if len == 0 {
            Vec::new()
        } else {
            f.read_at(0, len).await?
        };
        out.insert(name, bytes);
    }
    Ok(out)
}

/// A new memory storage holding `files`.
pub async fn storage_from(files: &BTreeMap<String, Vec<u8>>) -> Result<MemoryStorage> {
    let s = MemoryStorage::new();
    for (name, bytes) in files {
        let f = s.create(name).await?;
        if !bytes.is_empty() {
            f.append(bytes).await?;
        }
    }
    Ok(s)
}

/// Names of segment files, in id order.
pub fn segments(files: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    files
        .keys()
        .filter(|n| n.ends_with(".log"))
        .cloned()
        .collect()
}

/// Replaces file `name` of `s` with `bytes`.
pub async fn overwrite(s: &MemoryStorage, name: &str, bytes: &[u8]) -> Result<()> {
    let f = s.create(name).await?;
    if !bytes.is_empty() {
        f.append(bytes).await?;
    }
    Ok(())
}

/// A byte-level batch writing `writes` at the latest snapshot of `engine`.
pub fn batch<E: Engine>(engine: &E, writes: &[(&[u8], Option<&[u8]>)]) -> Result<WriteBatch> {
    let mut b = WriteBatch::new(engine.snapshot()?);
    for (k, v) in writes {
        b = b.write(0, k.to_vec(), v.map(<[u8]>::to_vec));
    }
    Ok(b)
}

/// Shared state of a [`Probe`].
#[derive(Default)]
pub struct ProbeState {
    /// Bytes read per file name.
    pub reads: Mutex<HashMap<String, u64>>,
    /// Mutating operations allowed before every further one fails; negative: unlimited.
    pub budget: AtomicI64,
    /// Files removed: reading them through an old handle fails (as on IndexedDB).
    pub removed: Mutex<HashSet<String>>,
    /// Reads that failed because the file was removed.
    pub stale_reads: AtomicI64,
}

impl ProbeState {
    fn spend(&self, what: &str) -> Result<()> {
        let left = self.budget.load(Ordering::SeqCst);
        if left < 0 {
            return Ok(());
        }
        if left == 0 {
            return Err(Error::io(what, std::io::Error::other("injected fault")));
        }
        self.budget.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    /// Bytes read from files whose names end with `suffix`.
    pub fn read_bytes(&self, suffix: &str) -> u64 {
        let reads = self.reads.lock().expect("reads");
        reads
            .iter()
            .filter(|(n, _)| n.ends_with(suffix))
            .map(|(_, b)| b)
            .sum()
    }
}

/// Wraps a storage: counts bytes read per file, fails mutations once the budget is spent.
#[derive(Clone)]
pub struct Probe<S> {
    pub inner: S,
    pub state: Arc<ProbeState>,
}

impl<S> Probe<S> {
    pub fn new(inner: S) -> Self {
        let state = ProbeState::default();
        state.budget.store(-1, Ordering::SeqCst);
        Probe {
            inner,
            state: Arc::new(state),
        }
    }
}

#[derive(Clone)]
pub struct ProbeFile<F> {
    inner: F,
    name: String,
    state: Arc<ProbeState>,
}

#[kv_api::async_trait]
impl<F: StorageFile> StorageFile for ProbeFile<F> {
    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if self
            .state
            .removed
            .lock()
            .expect("removed")
            .contains(&self.name)
        {
            self.state.stale_reads.fetch_add(1, Ordering::SeqCst);
            return Err(kv_api::not_found("read", &self.name));
        }
        *self
            .state
            .reads
            .lock()
            .expect("reads")
            .entry(self.name.clone())
            .or_default() += len as u64;
        self.inner.read_at(offset, len).await
    }

    async fn append(&self, bytes: &[u8]) -> Result<u64> {
        self.state.spend("append")?;
        self.inner.append(bytes).await
    }

    async fn sync(&self) -> Result<()> {
        self.state.spend("sync")?;
        self.inner.sync().await
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        self.state.spend("truncate")?;
        self.inner.truncate(len).await
    }
}

#[kv_api::async_trait]
impl<S: Storage> Storage for Probe<S> {
    type File = ProbeFile<S::File>;

    async fn list(&self) -> Result<Vec<String>> {
        self.inner.list().await
    }

    async fn open(&self, name: &str) -> Result<Self::File> {
        Ok(ProbeFile {
            inner: self.inner.open(name).await?,
            name: name.to_string(),
            state: self.state.clone(),
        })
    }

    async fn create(&self, name: &str) -> Result<Self::File> {
        self.state.spend("create")?;
        self.state.removed.lock().expect("removed").remove(name);
        Ok(ProbeFile {
            inner: self.inner.create(name).await?,
            name: name.to_string(),
            state: self.state.clone(),
        })
    }

    async fn remove(&self, name: &str) -> Result<()> {
        self.state.spend("remove")?;
        self.state
            .removed
            .lock()
            .expect("removed")
            .insert(name.to_string());
        self.inner.remove(name).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.state.spend("rename")?;
        self.inner.rename(from, to).await
    }

    async fn sync(&self) -> Result<()> {
        self.state.spend("sync dir")?;
        self.inner.sync().await
    }

    async fn lock(&self) -> Result<LockGuard> {
        self.inner.lock().await
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        self.inner.exists(name).await
    }
}
