//! IndexedDB (wasm32, feature `indexeddb`): files as 64 KiB chunks, appends buffered in memory.
//!
//! * One IndexedDB database per storage name; its layout is described in `layout.rs`:
//!   a `files` store (name → id), `lengths` (id → durable length), `chunks` (`[id, index]`
//!   → bytes) and a `meta` store for the id counter.
//! * Appends go to an in-memory tail shared by every handle of the file in this storage
//!   (and its clones), so they are readable at once. [`kv_api::StorageFile::sync`] writes
//!   the tail's chunks and the new length in **one** readwrite transaction with `strict`
//!   durability: a crash or a closed tab leaves the old or the new state, never a mix.
//! * `create`, `remove` and `rename` each run in one transaction and are durable when they
//!   return (so [`Storage::sync`] has nothing left to do). `rename` moves a name → id entry and
//!   drops the replaced target's chunks; it copies no data.
//! * Reads take bytes from the tail or from full chunks, through a bounded cache of chunks
//!   shared by the storage's files (the engines' read cache, `kv_engine_kit::cache::Cache`).
//! * [`Storage::lock`] takes a Web Lock named after the database, exclusive across the tabs
//!   and workers of the origin; see `lock.rs` for the fallback where Web Locks are missing.

mod file;
mod layout;
mod lock;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use kv_api::{LockGuard, Result, Storage, not_found};
use kv_engine_kit::cache::Cache;

use file::FileShared;
pub use file::IndexedDbFile;
pub use layout::CHUNK_SIZE;
use layout::Db;

/// Default chunk cache of a storage: 256 chunks (16 MiB).
const DEFAULT_CACHE_BYTES: usize = 16 << 20;

/// A storage in one IndexedDB database (wasm32 only, cargo feature `indexeddb`).
///
/// * Clones share the same connection, open files and chunk cache. Two separate
///   [`IndexedDbStorage::open`] calls on the same name share only what is durable, like two
///   processes opening the same directory.
/// * Appends stay in memory until the file's `sync`, which writes them and the new length in
///   one IndexedDB transaction with `strict` durability. Closing the tab before that loses
///   them (and only them); the file is never left half-written.
/// * `create`, `remove` and `rename` are atomic and durable when they return.
/// * [`Storage::lock`] uses the Web Locks API, exclusive across the origin's tabs and
///   workers. Where a browser lacks Web Locks it falls back to a registry in the current page
///   or worker, which does **not** stop a writer in another tab.
///
/// ```ignore
/// let storage = kv_backends::IndexedDbStorage::open("my-app").await?;
/// let store = kv_db::KvStore::open(storage).await?;
/// ```
#[derive(Clone)]
pub struct IndexedDbStorage {
    shared: Rc<Shared>,
}

/// What clones of a storage and its file handles share.
pub(crate) struct Shared {
    name: String,
    db: Db,
    /// Files opened through this storage, by current name: one state per file.
    open: RefCell<HashMap<String, Rc<FileShared>>>,
    /// Full chunks by `(file id, chunk index)`, charged their length. Only chunks below a
    /// file's in-memory tail are cached: those are full and never change until a truncation
    /// below them, which forgets them, so a cached chunk is never stale.
    cache: Cache<(u64, u64), Rc<[u8]>>,
}

impl Shared {
    /// Forgets the cached chunks of file `id` from chunk `from_index` on.
    fn forget_chunks(&self, id: u64, from_index: u64) {
        self.cache
            .retain(|&(file, index)| file != id || index < from_index);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.db.close();
    }
}

impl std::fmt::Debug for IndexedDbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexedDbStorage")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl IndexedDbStorage {
    /// Opens (creating it on first use) the IndexedDB database `name`.
    pub async fn open(name: &str) -> Result<Self> {
        Self::open_with_cache(name, DEFAULT_CACHE_BYTES).await
    }

    /// Like [`IndexedDbStorage::open`], caching up to `cache_bytes` of file chunks in memory
    /// (default 16 MiB; 0 reads every chunk from IndexedDB each time).
    ///
    /// The cache is charged the bytes of the [`CHUNK_SIZE`] chunks it holds, so it holds at
    /// most `cache_bytes / CHUNK_SIZE` of them (none below one chunk). It is the engines' read
    /// cache (`kv_engine_kit::cache`): above 2 MiB it is split by key hash into up to 16
    /// parts of at least 1 MiB, each evicting on its own (CLOCK, close to least recently
    /// used), so a part may evict while another has room.
    pub async fn open_with_cache(name: &str, cache_bytes: usize) -> Result<Self> {
        let db = Db::open(name).await?;
        Ok(IndexedDbStorage {
            shared: Rc::new(Shared {
                name: name.to_string(),
                db,
                open: RefCell::new(HashMap::new()),
                cache: Cache::new(cache_bytes),
            }),
        })
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Deletes the database `name` and everything in it. The browser waits until every
    /// connection to it (handles of this storage in any tab) is closed.
    pub async fn delete(name: &str) -> Result<()> {
        let op = || format!("delete IndexedDB database {name}");
        indexed_db_futures::database::Database::delete_by_name(name)
            .map_err(|e| layout::idb_err(op(), e))?
            .await
            .map_err(|e| layout::idb_err(op(), e))
    }

    fn handle(&self, file: Rc<FileShared>) -> IndexedDbFile {
        IndexedDbFile {
            file,
            storage: self.shared.clone(),
        }
    }

    /// Marks a file state dropped from the namespace and forgets its cached chunks.
    fn retire(&self, file: &FileShared) {
        let mut st = file.state.borrow_mut();
        st.removed = true;
        self.shared.forget_chunks(st.id, 0);
    }

    fn evict(&self, id: Option<u64>) {
        if let Some(id) = id {
            self.shared.forget_chunks(id, 0);
        }
    }
}

#[kv_api::async_trait(?Send)]
impl Storage for IndexedDbStorage {
    type File = IndexedDbFile;

    async fn list(&self) -> Result<Vec<String>> {
        self.shared.db.list().await
    }

    async fn open(&self, name: &str) -> Result<IndexedDbFile> {
        if let Some(file) = self.shared.open.borrow().get(name) {
            return Ok(self.handle(file.clone()));
        }
        let loaded = self
            .shared
            .db
            .load(name)
            .await?
            .ok_or_else(|| not_found("open", name))?;
        // Another `open` of the same name may have finished while this one loaded.
        let file = self
            .shared
            .open
            .borrow_mut()
            .entry(name.to_string())
            .or_insert_with(|| FileShared::new(name, loaded.id, loaded.len, loaded.partial))
            .clone();
        Ok(self.handle(file))
    }

    async fn create(&self, name: &str) -> Result<IndexedDbFile> {
        let (id, replaced) = self.shared.db.create(name).await?;
        self.evict(replaced);
        let file = FileShared::new(name, id, 0, Vec::new());
        let old = self
            .shared
            .open
            .borrow_mut()
            .insert(name.to_string(), file.clone());
        if let Some(old) = old {
            self.retire(&old);
        }
        Ok(self.handle(file))
    }

    async fn remove(&self, name: &str) -> Result<()> {
        let removed = self.shared.db.remove(name).await?;
        self.evict(removed);
        let old = self.shared.open.borrow_mut().remove(name);
        if let Some(old) = old {
            self.retire(&old);
        }
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (_, replaced) = self
            .shared
            .db
            .rename(from, to)
            .await?
            .ok_or_else(|| not_found("rename", from))?;
        if from == to {
            return Ok(());
        }
        self.evict(replaced);
        let mut open = self.shared.open.borrow_mut();
        let moved = open.remove(from);
        let old = open.remove(to);
        if let Some(moved) = moved {
            moved.state.borrow_mut().name = to.to_string();
            open.insert(to.to_string(), moved);
        }
        drop(open);
        if let Some(old) = old {
            self.retire(&old);
        }
        Ok(())
    }

    async fn sync(&self) -> Result<()> {
        // Every namespace operation committed its own strict transaction before returning.
        Ok(())
    }

    async fn lock(&self) -> Result<LockGuard> {
        lock::acquire(&format!("kv-indexeddb:{}", self.shared.name)).await
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        if self.shared.open.borrow().contains_key(name) {
            return Ok(true);
        }
        self.shared.db.exists(name).await
    }
}
