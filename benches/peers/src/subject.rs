//! What every store in the comparison does ([`Db`]), the place it lives ([`Place`]), and our
//! engines as such a store ([`Ours`]).

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Range;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use kv_db::backends::{FileStorage, MemoryStorage};
use kv_db::engine::KeyRange;
use kv_db::{Bitcask, Compression, Durability, Engine, Lsm, LsmOptions, Storage, Store};
use serde_bytes::ByteBuf;

use crate::ours::{self, Api};
use crate::workload;

/// A fresh temporary directory (for file-backed stores) and a fresh memory storage; or
/// ([`Place::at`]) an existing directory that is left in place.
pub struct Place {
    path: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
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
            path: dir.path().into(),
            _dir: Some(dir),
            mem: MemoryStorage::new(),
        }
    }

    /// The store at `path`, which outlives this value (a reopen in another process).
    pub fn at(path: &std::path::Path) -> Self {
        Place {
            path: path.into(),
            _dir: None,
            mem: MemoryStorage::new(),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
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
    /// One ordered scan of the whole store (values read); returns the entries seen.
    fn scan_all(&self) -> impl Future<Output = u64> + Send;
    /// `count` random point reads of keys `0..n` in batches of `batch` keys, through the
    /// store's batched read (`get_many`, `multi_get`) if it has one, else a loop of gets;
    /// panics if a key is missing.
    fn get_batched(
        &self,
        n: usize,
        count: u64,
        seed: u64,
        batch: usize,
    ) -> impl Future<Output = ()> + Send;
    /// Writes the given `(key id, value)` rows in one atomic commit (values chosen by the
    /// caller: the compressible-text workload).
    fn put_rows(&self, rows: Vec<(u64, Vec<u8>)>, durable: bool)
    -> impl Future<Output = ()> + Send;
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

/// The codec asked for by `KV_PEERS_CODEC` (`none`, `lz4`, `zstd`): our LSM's
/// `LsmOptions::compression`, RocksDB's compression type, fjall's data-block policy (fjall 3
/// has no zstd: the run stops). Unset: every store's default (ours LZ4, RocksDB Snappy,
/// fjall LZ4 from level 2 on). Bitcask does not compress; the variable does not apply.
pub fn codec() -> Option<&'static str> {
    match std::env::var("KV_PEERS_CODEC").as_deref() {
        Err(_) | Ok("") => None,
        Ok("none") => Some("none"),
        Ok("lz4") => Some("lz4"),
        Ok("zstd") => Some("zstd"),
        Ok(other) => {
            eprintln!("KV_PEERS_CODEC={other}: expected none, lz4 or zstd");
            std::process::exit(2)
        }
    }
}

/// `KV_PEERS_BLOB=1`: the peers separate large values from their trees (RocksDB BlobDB with
/// `min_blob_size` 4 KiB, fjall's KV separation with its 1 KiB default threshold). Ours:
/// see [`lsm_blob_threshold`].
pub fn blob() -> bool {
    matches!(
        std::env::var("KV_PEERS_BLOB").as_deref(),
        Ok("1") | Ok("true")
    )
}

/// `KV_PEERS_LSM_BLOB_THRESHOLD`: our LSM's blob threshold (`LsmOptions::blob_threshold`):
/// `off` keeps every value in the tables, a number of bytes sets the threshold; unset, the
/// engine's default (4 KiB) applies. `Some(setting)` when the variable is set.
pub fn lsm_blob_threshold() -> Option<Option<usize>> {
    let v = std::env::var("KV_PEERS_LSM_BLOB_THRESHOLD").ok()?;
    match v.trim() {
        "off" | "none" => Some(None),
        n => match n.parse() {
            Ok(bytes) => Some(Some(bytes)),
            Err(_) => {
                eprintln!("KV_PEERS_LSM_BLOB_THRESHOLD={v}: expected a number of bytes or off");
                std::process::exit(2);
            }
        },
    }
}

/// The suffix of a column label that names the codec and blob settings of the run.
pub fn suffix(codec_applies: bool, blob_applies: bool) -> String {
    let mut s = String::new();
    if codec_applies && let Some(c) = codec() {
        s.push('+');
        s.push_str(c);
    }
    if blob_applies {
        s.push_str("+blob");
    }
    s
}

/// Our engines' own knobs for the run.
pub trait Tuned: Engine {
    /// The engine's tuning from the run's environment (codec, blob threshold).
    fn run_tuning() -> Self::Tuning;
    /// The label suffix of those settings.
    fn suffix() -> String;
}

impl<S: Storage> Tuned for Bitcask<S> {
    fn run_tuning() {}
    fn suffix() -> String {
        String::new()
    }
}

impl<S: Storage> Tuned for Lsm<S> {
    fn run_tuning() -> LsmOptions {
        let mut t = LsmOptions::default();
        match codec() {
            Some("none") => t = t.compression(Compression::None),
            Some("lz4") => t = t.compression(Compression::Lz4),
            Some("zstd") => t = t.compression(Compression::Zstd),
            _ => {}
        }
        if let Some(threshold) = lsm_blob_threshold() {
            t = t.blob_threshold(threshold);
        }
        t
    }
    fn suffix() -> String {
        suffix(true, lsm_blob_threshold().is_some_and(|t| t.is_some()))
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
        FileStorage::open(place.path())
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

impl<E: Tuned<Storage = B::S>, B: OurBackend> Db for Ours<E, B> {
    const ASYNC: bool = true;
    const OURS: Option<&'static str> = if B::IS_FILE { Some(E::NAME) } else { None };

    fn label() -> String {
        format!("{}/{}{}", E::NAME, B::NAME, E::suffix())
    }

    async fn open(place: &Place) -> Self {
        let store = Store::open_tuned(B::storage(place).await, ours::options(), E::run_tuning())
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

    async fn scan_all(&self) -> u64 {
        const PAGE: usize = 1_000;
        let mut rows = 0u64;
        match self.api {
            Api::Typed => {
                let snap = self.store.snapshot();
                let mut stream = snap.range::<u128, ByteBuf>(ours::SLOT, ..).stream();
                while let Some((_, v)) = stream.next().await.expect("scan") {
                    std::hint::black_box(&v);
                    rows += 1;
                }
            }
            Api::Bytes => {
                let engine = self.store.engine();
                let snap = engine.snapshot().expect("snapshot");
                let mut range = KeyRange::all();
                loop {
                    let page = engine
                        .scan(ours::SLOT, &range, snap.seq(), false, PAGE)
                        .await
                        .expect("scan");
                    rows += page.len() as u64;
                    match page.last() {
                        Some(last) if page.len() == PAGE => {
                            range.start = std::ops::Bound::Excluded(last.key.clone());
                        }
                        _ => break,
                    }
                }
            }
        }
        rows
    }

    async fn get_batched(&self, n: usize, count: u64, seed: u64, batch: usize) {
        let mut rng = workload::Rng::new(seed);
        let mut left = count;
        match self.api {
            Api::Typed => {
                let snap = self.store.snapshot();
                while left > 0 {
                    let k = (batch as u64).min(left);
                    left -= k;
                    let keys: Vec<u128> = (0..k)
                        .map(|_| workload::key_u128(rng.index(n) as u64))
                        .collect();
                    let vals: Vec<Option<ByteBuf>> =
                        snap.get_many(ours::SLOT, &keys).await.expect("get_many");
                    assert!(vals.iter().all(Option::is_some), "get_many: a key missing");
                }
            }
            Api::Bytes => {
                let engine = self.store.engine();
                let snap = engine.snapshot().expect("snapshot");
                while left > 0 {
                    let k = (batch as u64).min(left);
                    left -= k;
                    let keys: Vec<[u8; workload::KEY_LEN]> =
                        (0..k).map(|_| workload::key(rng.index(n) as u64)).collect();
                    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
                    let vals = engine
                        .get_many(ours::SLOT, &refs, snap.seq())
                        .await
                        .expect("get_many");
                    assert!(vals.iter().all(Option::is_some), "get_many: a key missing");
                }
            }
        }
    }

    async fn put_rows(&self, rows: Vec<(u64, Vec<u8>)>, durable: bool) {
        let d = if durable {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        match self.api {
            Api::Typed => {
                let mut txn = self.store.current();
                txn.set_durability(d);
                for (i, v) in rows {
                    txn.insert(ours::SLOT, &workload::key_u128(i), ByteBuf::from(v))
                        .expect("insert");
                }
                txn.commit().await.expect("commit");
            }
            Api::Bytes => {
                let engine = self.store.engine();
                let mut batch =
                    kv_db::engine::WriteBatch::new(engine.snapshot().expect("snapshot"));
                batch.durability = Some(d);
                for (i, v) in rows {
                    batch = batch.write(ours::SLOT, workload::key(i).to_vec(), Some(v));
                }
                engine.commit(batch).await.expect("commit");
            }
        }
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
            workload::dir_bytes(place.path())
        } else {
            self.store.stats().await.expect("stats").bytes_on_storage
        }
    }

    async fn close(self) {
        self.store.close().await.expect("close");
    }
}
