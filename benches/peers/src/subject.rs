//! What every store in the comparison does ([`Db`]), the place it lives ([`Place`]), and our
//! engines as such a store ([`Ours`]).

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Range;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use kv_db::backends::{FileStorage, MemoryStorage};
use kv_db::{Durability, Engine, Storage, Store};

use crate::ours::{self, Api};
use crate::workload;

/// A fresh temporary directory (for file-backed stores) and a fresh memory storage.
pub struct Place {
    pub dir: tempfile::TempDir,
    pub mem: MemoryStorage,
}

impl Place {
    pub fn new() -> Self {
        let root = workload::temp_root();
        let dir = tempfile::Builder::new()
            .prefix("kv-peers-")
            .tempdir_in(&root)
            .unwrap_or_else(|e| panic!("temp dir in {}: {e}", root.display()));
        Place {
            dir,
            mem: MemoryStorage::new(),
        }
    }
}

/// A store under test. Methods are async so that ours run natively; a peer's are blocking
/// calls wrapped in a future that is ready at its first poll.
pub trait Db: Send + Sync + Sized + 'static {
    /// True for our engines: workers are tokio tasks. False: workers are OS threads.
    const ASYNC: bool;
    /// Our engine on the file backend: which one (for the ratio columns).
    const OURS: Option<&'static str>;
    /// Column label.
    fn label() -> String;
    /// Opens (or reopens) the store at `place`.
    fn open(place: &Place) -> impl Future<Output = Self> + Send;
    /// Writes keys `ids` (the `version`-th value of each, `len` bytes) in one atomic commit,
    /// synced before returning if `durable`.
    fn put(
        &self,
        ids: Range<u64>,
        version: u64,
        len: usize,
        durable: bool,
    ) -> impl Future<Output = ()> + Send;
    /// `count` random point reads of keys `0..n` (one read view); panics if a key is missing.
    fn get_random(&self, n: usize, count: u64, seed: u64) -> impl Future<Output = ()> + Send;
    /// `count` scans of [`workload::SCAN_LEN`] entries from random keys of `0..n`.
    fn scan_random(&self, n: usize, count: u64, seed: u64) -> impl Future<Output = ()> + Send;
    /// Makes every commit so far durable.
    fn flush(&self) -> impl Future<Output = ()> + Send;
    /// Drops old versions and compacts (ours: `merge`); false if the store has no such call.
    fn compact(&mut self) -> impl Future<Output = bool> + Send;
    /// Bytes the store occupies.
    fn bytes(&self, place: &Place) -> impl Future<Output = u64> + Send;
    /// Closes the store (its files stay).
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// Runs a future that completes without waiting (a peer's blocking call).
pub fn ready<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a blocking store's future must be ready at once"),
    }
}

/// The API our engines are driven through: `KV_PEERS_API=store` (typed) or `engine` (default).
pub fn api_from_env() -> Api {
    match std::env::var("KV_PEERS_API").as_deref() {
        Ok("store") => Api::Typed,
        Ok("engine") | Ok("") | Err(_) => Api::Bytes,
        Ok(other) => {
            eprintln!("KV_PEERS_API={other}: expected store or engine");
            std::process::exit(2)
        }
    }
}

/// Which backend of ours a column uses.
pub trait OurBackend: Send + Sync + 'static {
    type S: Storage;
    const NAME: &'static str;
    /// True for the file backend (the one the ratio columns compare).
    const IS_FILE: bool;
    fn storage(place: &Place) -> impl Future<Output = Self::S> + Send;
}

pub struct OnFile;
pub struct OnMemory;

impl OurBackend for OnFile {
    type S = FileStorage;
    const NAME: &'static str = "file";
    const IS_FILE: bool = true;
    async fn storage(place: &Place) -> FileStorage {
        FileStorage::open(place.dir.path())
            .await
            .expect("open FileStorage")
    }
}

impl OurBackend for OnMemory {
    type S = MemoryStorage;
    const NAME: &'static str = "memory";
    const IS_FILE: bool = false;
    async fn storage(place: &Place) -> MemoryStorage {
        place.mem.clone()
    }
}

/// One of our engines on one backend, with default options and the run's cache budget.
pub struct Ours<E: Engine, B> {
    store: Store<E>,
    api: Api,
    _backend: PhantomData<fn() -> B>,
}

impl<E: Engine<Storage = B::S>, B: OurBackend> Db for Ours<E, B> {
    const ASYNC: bool = true;
    const OURS: Option<&'static str> = if B::IS_FILE { Some(E::NAME) } else { None };

    fn label() -> String {
        format!("{}/{}", E::NAME, B::NAME)
    }

    async fn open(place: &Place) -> Self {
        let store = Store::open_with(B::storage(place).await, ours::options())
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", Self::label()));
        Ours {
            store,
            api: api_from_env(),
            _backend: PhantomData,
        }
    }

    async fn put(&self, ids: Range<u64>, version: u64, len: usize, durable: bool) {
        let d = if durable {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        ours::put(&self.store, self.api, ids, version, len, d).await;
    }

    async fn get_random(&self, n: usize, count: u64, seed: u64) {
        ours::read_random(&self.store, self.api, n, count, seed).await;
    }

    async fn scan_random(&self, n: usize, count: u64, seed: u64) {
        ours::scan_random(&self.store, self.api, n, count, seed).await;
    }

    async fn flush(&self) {
        self.store.flush().await.expect("flush");
    }

    async fn compact(&mut self) -> bool {
        self.store.merge().await.expect("merge");
        true
    }

    async fn bytes(&self, place: &Place) -> u64 {
        if B::IS_FILE {
            workload::dir_bytes(place.dir.path())
        } else {
            self.store.stats().await.expect("stats").bytes_on_storage
        }
    }

    async fn close(self) {
        self.store.close().await.expect("close");
    }
}
