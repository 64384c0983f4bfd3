//! Storage factories: how a case gets a fresh, empty storage and later reopens the same data.

use kv_api::{MaybeSend, MaybeSync, Result, Storage};
use kv_backends::MemoryStorage;

/// Makes the storage a case runs on. One factory is one "disk": [`StorageFactory::storage`]
/// returns a handle on the same data every time it is called, so a case can drop a store and
/// open a new one on what the first one left behind (a restart).
///
/// Implement it for your own backend to run the whole suite on it (see the crate docs):
///
/// ```ignore
/// struct MyFactory(MyStorage);
///
/// #[kv_conformance::kv_api::async_trait]
/// impl kv_conformance::StorageFactory for MyFactory {
///     type Storage = MyStorage;
///     const NAME: &'static str = "mine";
///     fn new() -> Self { MyFactory(MyStorage::default()) }
///     async fn storage(&self) -> kv_api::Result<MyStorage> { Ok(self.0.clone()) }
/// }
/// ```
#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
pub trait StorageFactory: Sized + MaybeSend + MaybeSync + 'static {
    /// The backend.
    type Storage: Storage;

    /// The backend's name, as listed in `kv_backends::BACKENDS` for the workspace's own.
    const NAME: &'static str;

    /// A factory over fresh, empty storage.
    fn new() -> Self;

    /// A handle on this factory's data: called again, it "reopens" the same data.
    async fn storage(&self) -> Result<Self::Storage>;
}

/// [`MemoryStorage`]: every call to `storage` returns a clone sharing the same files.
pub struct MemoryFactory(MemoryStorage);

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl StorageFactory for MemoryFactory {
    type Storage = MemoryStorage;
    const NAME: &'static str = "memory";

    fn new() -> Self {
        MemoryFactory(MemoryStorage::new())
    }

    async fn storage(&self) -> Result<MemoryStorage> {
        Ok(self.0.clone())
    }
}

/// `FileStorage` in a temporary directory that lives as long as the factory; every call to
/// `storage` opens the directory again, as a restarted process would.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub struct TempFileFactory(tempfile::TempDir);

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
impl TempFileFactory {
    /// The directory holding the files.
    pub fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl StorageFactory for TempFileFactory {
    type Storage = kv_backends::FileStorage;
    const NAME: &'static str = "file";

    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kv-conformance-")
            .tempdir_in(temp_base())
            .expect("cannot create a temporary directory");
        TempFileFactory(dir)
    }

    async fn storage(&self) -> Result<kv_backends::FileStorage> {
        kv_backends::FileStorage::open(self.0.path()).await
    }
}

/// Where temporary directories go: the OS's natively; on WASI, which has no such notion
/// (`std::env::temp_dir` panics there), `$TMPDIR` or `/tmp` (the runner preopens it).
#[cfg(not(target_arch = "wasm32"))]
fn temp_base() -> std::path::PathBuf {
    std::env::temp_dir()
}

#[cfg(target_os = "wasi")]
fn temp_base() -> std::path::PathBuf {
    std::env::var_os("TMPDIR").map_or_else(|| "/tmp".into(), Into::into)
}

/// `IndexedDbStorage` (wasm32, feature `indexeddb`): a new database with a unique name per
/// factory; every call to `storage` opens a new connection to it (as a reloaded page would),
/// so a reopen reads back only what reached IndexedDB. The database is deleted when the
/// factory drops (in the background, once every connection to it has closed).
#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
pub struct IndexedDbFactory {
    name: String,
}

#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
impl IndexedDbFactory {
    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
#[kv_api::async_trait(?Send)]
impl StorageFactory for IndexedDbFactory {
    type Storage = kv_backends::IndexedDbStorage;
    const NAME: &'static str = "indexeddb";

    fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // Unique within the page (the counter) and across runs in the same browser profile.
        let name = format!(
            "kv-conformance-{}-{}-{}",
            js_sys::Date::now() as u64,
            (js_sys::Math::random() * 1e9) as u64,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        IndexedDbFactory { name }
    }

    async fn storage(&self) -> Result<kv_backends::IndexedDbStorage> {
        kv_backends::IndexedDbStorage::open(&self.name).await
    }
}

#[cfg(all(target_arch = "wasm32", feature = "indexeddb"))]
impl Drop for IndexedDbFactory {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Deletion waits for open connections to close; a failure only leaves a database of
        // test data behind in the throwaway browser profile.
        wasm_bindgen_futures::spawn_local(async move {
            let _ = kv_backends::IndexedDbStorage::delete(&name).await;
        });
    }
}
