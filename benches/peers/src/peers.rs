//! The peers, each with the setting closest to our durability levels:
//!
//! | peer | durable commit | buffered commit | merge counterpart |
//! |------|----------------|-----------------|-------------------|
//! | fjall 3 | `WriteBatch` with `PersistMode::SyncData` (fdatasync, like our file backend) | `PersistMode::Buffer` (OS buffers) | rotate memtable + `major_compact` |
//! | redb 4 | write txn with `Durability::Immediate` | `Durability::None` | `Database::compact` |
//! | sled 0.34 | `apply_batch` then `flush()` | `apply_batch` (sled flushes every 500 ms) | none (column left empty) |
//! | rocksdb | `WriteBatch`, `WriteOptions::set_sync(true)` | `set_sync(false)` (WAL in OS buffers) | `flush` + `compact_range(..)` |
//!
//! Codec and blob settings (issue #17; `KV_PEERS_CODEC`, `KV_PEERS_BLOB`, see `subject.rs`):
//! RocksDB `set_compression_type` (default Snappy) and BlobDB (`set_enable_blob_files`,
//! `set_min_blob_size(4096)`); fjall `data_block_compression_policy` (none or LZ4 in every
//! level; default: none in levels 0 - 1, LZ4 below; no zstd in fjall 3) and
//! `with_kv_separation` (its defaults: 1 KiB threshold, LZ4 blobs). fjall, redb and sled
//! have no batched point read: their `get_batched` is a loop of gets; RocksDB's is
//! `multi_get` (values copied into `Vec`s, as ours).
//!
//! Every store gets the same read-cache budget ([`workload::cache_bytes`], `KV_BENCH_CACHE_MB`):
//! fjall `cache_size`, redb `set_cache_size`, sled `cache_capacity`, RocksDB an LRU block cache.
//!
//! Every commit of a peer is atomic (a write batch or a write transaction) like ours; none
//! does our optimistic conflict check. Reads use one read view per reader (redb: one read
//! transaction; the others read the latest state) and do not copy values out where the API
//! allows it.

use std::ops::Range;

use crate::subject::{self, Db, Place};
use crate::workload::{self, SCAN_LEN};

/// Random keys of `0..n`, as `workload` makes them.
fn random_keys(n: usize, count: u64, seed: u64) -> impl Iterator<Item = (u64, [u8; 16])> {
    let mut rng = workload::Rng::new(seed);
    (0..count).map(move |_| {
        let i = rng.index(n) as u64;
        (i, workload::key(i))
    })
}

// ---------------------------------------------------------------------------------------------

/// fjall 3: one database, one keyspace.
pub struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

impl Db for Fjall {
    const ASYNC: bool = false;
    const OURS: Option<&'static str> = None;

    fn label() -> String {
        format!("fjall{}", subject::suffix(true, subject::blob()))
    }

    async fn open(place: &Place) -> Self {
        let mut builder = fjall::Database::builder(place.path().join("fjall"));
        if let Some(bytes) = workload::cache_bytes() {
            builder = builder.cache_size(bytes as u64);
        }
        let db = builder.open().expect("open fjall");
        let ks = db
            .keyspace("bench", || {
                let mut o = fjall::KeyspaceCreateOptions::default();
                match subject::codec() {
                    Some("none") => {
                        o = o.data_block_compression_policy(
                            fjall::config::CompressionPolicy::disabled(),
                        )
                    }
                    Some("lz4") => {
                        o = o.data_block_compression_policy(fjall::config::CompressionPolicy::all(
                            fjall::CompressionType::Lz4,
                        ))
                    }
                    Some(other) => {
                        eprintln!("fjall 3 has no {other} compression");
                        std::process::exit(2)
                    }
                    None => {}
                }
                if subject::blob() {
                    o = o.with_kv_separation(Some(fjall::KvSeparationOptions::default()));
                }
                o
            })
            .expect("fjall keyspace");
        Fjall { db, ks }
    }

    async fn put(&self, ids: Range<u64>, version: u64, len: usize, durable: bool) {
        let mode = if durable {
            fjall::PersistMode::SyncData
        } else {
            fjall::PersistMode::Buffer
        };
        let mut batch = self.db.batch().durability(Some(mode));
        for i in ids {
            batch.insert(&self.ks, workload::key(i), workload::value(i, version, len));
        }
        batch.commit().expect("fjall commit");
    }

    async fn get_random(&self, n: usize, count: u64, seed: u64) {
        for (i, key) in random_keys(n, count, seed) {
            let v = self.ks.get(key).expect("fjall get");
            assert!(v.is_some(), "fjall: key {i} missing");
        }
    }

    async fn scan_random(&self, n: usize, count: u64, seed: u64) {
        for (_, key) in random_keys(n, count, seed) {
            let mut rows = 0;
            for guard in self.ks.range(key..).take(SCAN_LEN) {
                guard.into_inner().expect("fjall scan");
                rows += 1;
            }
            assert!(rows > 0, "fjall: empty scan");
        }
    }

    async fn scan_all(&self) -> u64 {
        let mut rows = 0;
        for guard in self.ks.iter() {
            std::hint::black_box(guard.into_inner().expect("fjall scan"));
            rows += 1;
        }
        rows
    }

    async fn get_batched(&self, n: usize, count: u64, seed: u64, _batch: usize) {
        // fjall 3 has no batched point read: a loop of gets.
        self.get_random(n, count, seed).await;
    }

    async fn put_rows(&self, rows: Vec<(u64, Vec<u8>)>, durable: bool) {
        let mode = if durable {
            fjall::PersistMode::SyncData
        } else {
            fjall::PersistMode::Buffer
        };
        let mut batch = self.db.batch().durability(Some(mode));
        for (i, v) in rows {
            batch.insert(&self.ks, workload::key(i), v);
        }
        batch.commit().expect("fjall commit");
    }

    async fn flush(&self) {
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .expect("fjall persist");
    }

    async fn compact(&mut self) -> bool {
        self.ks.rotate_memtable_and_wait().expect("fjall rotate");
        self.ks.major_compact().expect("fjall major_compact");
        true
    }

    async fn bytes(&self, place: &Place) -> u64 {
        workload::dir_bytes(place.path())
    }

    async fn close(self) {
        self.flush().await;
    }
}

// ---------------------------------------------------------------------------------------------

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("bench");

/// redb 4: one file, one table.
pub struct Redb {
    db: redb::Database,
}

impl Redb {
    fn write(&self, durable: bool, f: impl FnOnce(&mut redb::Table<&[u8], &[u8]>)) {
        let mut tx = self.db.begin_write().expect("redb begin_write");
        tx.set_durability(if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        })
        .expect("redb durability");
        {
            let mut table = tx.open_table(REDB_TABLE).expect("redb table");
            f(&mut table);
        }
        tx.commit().expect("redb commit");
    }
}

impl Db for Redb {
    const ASYNC: bool = false;
    const OURS: Option<&'static str> = None;

    fn label() -> String {
        "redb".into()
    }

    async fn open(place: &Place) -> Self {
        let mut builder = redb::Builder::new();
        if let Some(bytes) = workload::cache_bytes() {
            builder.set_cache_size(bytes);
        }
        let db = builder
            .create(place.path().join("redb.db"))
            .expect("open redb");
        let redb = Redb { db };
        redb.write(true, |_| {});
        redb
    }

    async fn put(&self, ids: Range<u64>, version: u64, len: usize, durable: bool) {
        self.write(durable, |table| {
            for i in ids {
                let v = workload::value(i, version, len);
                table
                    .insert(workload::key(i).as_slice(), v.as_slice())
                    .expect("redb insert");
            }
        });
    }

    async fn get_random(&self, n: usize, count: u64, seed: u64) {
        use redb::ReadableDatabase;
        let tx = self.db.begin_read().expect("redb begin_read");
        let table = tx.open_table(REDB_TABLE).expect("redb table");
        for (i, key) in random_keys(n, count, seed) {
            let v = table.get(key.as_slice()).expect("redb get");
            assert!(v.is_some(), "redb: key {i} missing");
        }
    }

    async fn scan_random(&self, n: usize, count: u64, seed: u64) {
        use redb::ReadableDatabase;
        let tx = self.db.begin_read().expect("redb begin_read");
        let table = tx.open_table(REDB_TABLE).expect("redb table");
        for (_, key) in random_keys(n, count, seed) {
            let mut rows = 0;
            for row in table
                .range(key.as_slice()..)
                .expect("redb range")
                .take(SCAN_LEN)
            {
                row.expect("redb scan");
                rows += 1;
            }
            assert!(rows > 0, "redb: empty scan");
        }
    }

    async fn scan_all(&self) -> u64 {
        use redb::{ReadableDatabase, ReadableTable};
        let tx = self.db.begin_read().expect("redb begin_read");
        let table = tx.open_table(REDB_TABLE).expect("redb table");
        let mut rows = 0;
        for row in table.iter().expect("redb iter") {
            let (k, v) = row.expect("redb scan");
            std::hint::black_box((k.value(), v.value()));
            rows += 1;
        }
        rows
    }

    async fn get_batched(&self, n: usize, count: u64, seed: u64, _batch: usize) {
        // redb has no batched point read: a loop of gets.
        self.get_random(n, count, seed).await;
    }

    async fn put_rows(&self, rows: Vec<(u64, Vec<u8>)>, durable: bool) {
        self.write(durable, |table| {
            for (i, v) in rows {
                table
                    .insert(workload::key(i).as_slice(), v.as_slice())
                    .expect("redb insert");
            }
        });
    }

    async fn flush(&self) {
        self.write(true, |_| {});
    }

    async fn compact(&mut self) -> bool {
        self.flush().await;
        // Each call compacts what it can; it returns false once nothing is left to gain.
        for _ in 0..32 {
            if !self.db.compact().expect("redb compact") {
                break;
            }
        }
        true
    }

    async fn bytes(&self, place: &Place) -> u64 {
        workload::dir_bytes(place.path())
    }

    async fn close(self) {
        self.flush().await;
    }
}

// ---------------------------------------------------------------------------------------------

/// sled 0.34: the default tree.
pub struct Sled {
    db: sled::Db,
}

impl Db for Sled {
    const ASYNC: bool = false;
    const OURS: Option<&'static str> = None;

    fn label() -> String {
        "sled".into()
    }

    async fn open(place: &Place) -> Self {
        let mut config = sled::Config::new().path(place.path().join("sled"));
        if let Some(bytes) = workload::cache_bytes() {
            config = config.cache_capacity(bytes as u64);
        }
        let db = config.open().expect("open sled");
        Sled { db }
    }

    async fn put(&self, ids: Range<u64>, version: u64, len: usize, durable: bool) {
        let mut batch = sled::Batch::default();
        for i in ids {
            batch.insert(&workload::key(i)[..], workload::value(i, version, len));
        }
        self.db.apply_batch(batch).expect("sled apply_batch");
        if durable {
            self.db.flush().expect("sled flush");
        }
    }

    async fn get_random(&self, n: usize, count: u64, seed: u64) {
        for (i, key) in random_keys(n, count, seed) {
            let v = self.db.get(key).expect("sled get");
            assert!(v.is_some(), "sled: key {i} missing");
        }
    }

    async fn scan_random(&self, n: usize, count: u64, seed: u64) {
        for (_, key) in random_keys(n, count, seed) {
            let mut rows = 0;
            for row in self.db.range(key..).take(SCAN_LEN) {
                row.expect("sled scan");
                rows += 1;
            }
            assert!(rows > 0, "sled: empty scan");
        }
    }

    async fn scan_all(&self) -> u64 {
        let mut rows = 0;
        for row in self.db.iter() {
            std::hint::black_box(row.expect("sled scan"));
            rows += 1;
        }
        rows
    }

    async fn get_batched(&self, n: usize, count: u64, seed: u64, _batch: usize) {
        // sled has no batched point read: a loop of gets.
        self.get_random(n, count, seed).await;
    }

    async fn put_rows(&self, rows: Vec<(u64, Vec<u8>)>, durable: bool) {
        let mut batch = sled::Batch::default();
        for (i, v) in rows {
            batch.insert(&workload::key(i)[..], v);
        }
        self.db.apply_batch(batch).expect("sled apply_batch");
        if durable {
            self.db.flush().expect("sled flush");
        }
    }

    async fn flush(&self) {
        self.db.flush().expect("sled flush");
    }

    async fn compact(&mut self) -> bool {
        false
    }

    async fn bytes(&self, place: &Place) -> u64 {
        workload::dir_bytes(place.path())
    }

    async fn close(self) {
        self.flush().await;
    }
}

// ---------------------------------------------------------------------------------------------

/// RocksDB (the `rocksdb` crate): default options plus `create_if_missing` and the block cache
/// budget.
#[cfg(feature = "rocksdb")]
pub struct Rocks {
    db: rocksdb::DB,
}

#[cfg(feature = "rocksdb")]
impl Db for Rocks {
    const ASYNC: bool = false;
    const OURS: Option<&'static str> = None;

    fn label() -> String {
        format!("rocksdb{}", subject::suffix(true, subject::blob()))
    }

    async fn open(place: &Place) -> Self {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        match subject::codec() {
            Some("none") => opts.set_compression_type(rocksdb::DBCompressionType::None),
            Some("lz4") => opts.set_compression_type(rocksdb::DBCompressionType::Lz4),
            Some("zstd") => opts.set_compression_type(rocksdb::DBCompressionType::Zstd),
            _ => {}
        }
        if subject::blob() {
            opts.set_enable_blob_files(true);
            opts.set_min_blob_size(4096);
        }
        if let Some(bytes) = workload::cache_bytes() {
            let mut table = rocksdb::BlockBasedOptions::default();
            table.set_block_cache(&rocksdb::Cache::new_lru_cache(bytes));
            opts.set_block_based_table_factory(&table);
        }
        let db = rocksdb::DB::open(&opts, place.path().join("rocksdb")).expect("open rocksdb");
        Rocks { db }
    }

    async fn put(&self, ids: Range<u64>, version: u64, len: usize, durable: bool) {
        let mut batch = rocksdb::WriteBatch::default();
        for i in ids {
            batch.put(workload::key(i), workload::value(i, version, len));
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(durable);
        self.db.write_opt(batch, &wo).expect("rocksdb write");
    }

    async fn get_random(&self, n: usize, count: u64, seed: u64) {
        for (i, key) in random_keys(n, count, seed) {
            let v = self.db.get_pinned(key).expect("rocksdb get");
            assert!(v.is_some(), "rocksdb: key {i} missing");
        }
    }

    async fn scan_random(&self, n: usize, count: u64, seed: u64) {
        let mut it = self.db.raw_iterator();
        for (_, key) in random_keys(n, count, seed) {
            it.seek(key);
            let mut rows = 0;
            while rows < SCAN_LEN && it.valid() {
                std::hint::black_box((it.key(), it.value()));
                rows += 1;
                it.next();
            }
            it.status().expect("rocksdb scan");
            assert!(rows > 0, "rocksdb: empty scan");
        }
    }

    async fn scan_all(&self) -> u64 {
        let mut it = self.db.raw_iterator();
        it.seek_to_first();
        let mut rows = 0;
        while it.valid() {
            std::hint::black_box((it.key(), it.value()));
            rows += 1;
            it.next();
        }
        it.status().expect("rocksdb scan");
        rows
    }

    async fn get_batched(&self, n: usize, count: u64, seed: u64, batch: usize) {
        let mut keys = random_keys(n, count, seed).map(|(_, k)| k).peekable();
        while keys.peek().is_some() {
            let chunk: Vec<[u8; 16]> = keys.by_ref().take(batch).collect();
            for v in self.db.multi_get(&chunk) {
                assert!(
                    v.expect("rocksdb multi_get").is_some(),
                    "rocksdb: key missing"
                );
            }
        }
    }

    async fn put_rows(&self, rows: Vec<(u64, Vec<u8>)>, durable: bool) {
        let mut batch = rocksdb::WriteBatch::default();
        for (i, v) in rows {
            batch.put(workload::key(i), v);
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(durable);
        self.db.write_opt(batch, &wo).expect("rocksdb write");
    }

    async fn flush(&self) {
        self.db.flush_wal(true).expect("rocksdb flush_wal");
    }

    async fn compact(&mut self) -> bool {
        self.db.flush().expect("rocksdb flush");
        self.db.compact_range(None::<&[u8]>, None::<&[u8]>);
        true
    }

    async fn bytes(&self, place: &Place) -> u64 {
        workload::dir_bytes(place.path())
    }

    async fn close(self) {
        self.flush().await;
    }
}
