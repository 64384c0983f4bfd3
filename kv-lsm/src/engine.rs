//! The engine: state shared by readers, the commit path and background work, recovery on open,
//! and the [`Engine`] implementation.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kv_api::{
    Engine, Error, KeyRange, LockGuard, MaybeSend, Options, ProgressFn, RecoveryReport, Result,
    Slot, Snapshot, Stats, Storage, StorageFile, VerifyReport, Version, Write, WriteBatch,
};
use kv_engine_kit::commit::CommitPipeline;
use kv_engine_kit::header::StoreId;
use kv_engine_kit::identity::{self, Found};
use kv_engine_kit::txlog;

use crate::blob::{BlobFile, BlobRef, blob_name};
use crate::cache::BlockCache;
use crate::key::ukey;
use crate::levels::LevelSet;
use crate::manifest::{MANIFEST, MANIFEST_TMP, Manifest};
use crate::memtable::Memtable;
use crate::names::{ENGINE, FILE_ID_LIMIT, Listing, check_identity, id_after};
use crate::options::LsmOptions;
use crate::rtomb::RangeTomb;
use crate::sstable::{Table, table_name};
use crate::wal::{self, ActiveWal, parse_wal_name, wal_name};

/// The largest WAL encode buffer kept for the next commit.
const WAL_BUF_KEEP: usize = 4 << 20;

/// What readers see: memtables and tables, swapped under one lock so a reader never misses data
/// moving from a memtable into a table.
pub(crate) struct State<S: Storage> {
    /// The memtable taking commits.
    pub active: Arc<Memtable>,
    /// Frozen memtables waiting for their flush, oldest first.
    pub immutables: Vec<Arc<Memtable>>,
    /// The tables.
    pub levels: Arc<LevelSet<S>>,
    /// Every range tombstone not merged away yet, oldest first ([`crate::rtomb`]): of
    /// commits in tables (listed in the manifest) and in memtables (in the WAL). Swapped with
    /// `levels` when a merge turns tombstones into per-key removals; a reader takes it before
    /// the memtables and tables.
    pub tombs: Arc<Vec<RangeTomb>>,
}

/// The manifest fields besides the tables; its lock also serializes manifest writes.
pub(crate) struct Persisted {
    /// Last commit whose writes are all in tables.
    pub last_flushed: Version,
    /// WAL files below this id are not needed.
    pub wal_floor: u64,
    /// The newest WAL file created, once the manifest names it (0: none).
    pub wal_newest: u64,
    /// Oldest readable sequence number (raised by merge).
    pub horizon: u64,
}

/// Everything the engine shares with its background tasks (which hold only a `Weak` to it).
///
/// Lock order (async locks): `compaction_lock` → `flush_lock` → `persisted`; the pipeline's
/// writer lock is taken alone, or by merge under `compaction_lock`, and a WAL roll under it
/// takes `persisted` (nothing holding `persisted` waits for the writer lock). The `std` locks
/// (`state`, `wal`, `obsolete`) are innermost and never held across an `.await`.
pub(crate) struct Inner<S: Storage> {
    pub storage: S,
    /// The store's id (from its `IDENTITY`), in the header of every file it writes.
    pub store: StoreId,
    /// Ordering, conflicts, group commit, visibility (shared with Bitcask).
    pub pipeline: CommitPipeline,
    /// The engine's own knobs.
    pub tuning: LsmOptions,
    pub state: RwLock<State<S>>,
    /// The WAL file being appended to (`None` when read-only).
    pub wal: Mutex<Option<ActiveWal<S::File>>>,
    /// The buffer commits encode their WAL records into, kept between commits.
    pub wal_buf: Mutex<Vec<u8>>,
    pub persisted: tokio::sync::Mutex<Persisted>,
    /// Tables and WAL files share one id space.
    pub next_file_id: AtomicU64,
    pub cache: Arc<BlockCache>,
    /// Serializes flushes.
    pub flush_lock: tokio::sync::Mutex<()>,
    /// Serializes compactions and merges; holds the round-robin pick position per level.
    pub compaction_lock: tokio::sync::Mutex<Vec<Vec<u8>>>,
    /// Tables compacted away, deleted once no reader holds them.
    pub obsolete: Mutex<Vec<Arc<Table<S>>>>,
    /// Blob files a merge replaced, deleted once no reader holds them (as `obsolete`).
    pub obsolete_blobs: Mutex<Vec<Arc<BlobFile<S>>>>,
    /// Signalled after each flush or compaction (writers waiting for room) and on close.
    pub work_done: tokio::sync::Notify,
    /// Set by `close` and by dropping the engine: background work stops.
    pub closing: AtomicBool,
    /// A background flush / compaction task is running (native only; wasm32 works inline).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub flush_running: AtomicBool,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub compaction_running: AtomicBool,
    /// The storage's writer lock (`None` when read-only or after close).
    pub writer_lock: Mutex<Option<LockGuard>>,
    /// What the open left out.
    pub recovery: RecoveryReport,
}

impl<S: Storage> Inner<S> {
    pub fn options(&self) -> &Options {
        self.pipeline.options()
    }

    pub fn read_state(&self) -> RwLockReadGuard<'_, State<S>> {
        self.state.read()
    }

    pub fn write_state(&self) -> RwLockWriteGuard<'_, State<S>> {
        self.state.write()
    }

    /// Takes a new file id (checked: never at or past [`FILE_ID_LIMIT`], never wrapping).
    pub fn alloc_id(&self) -> Result<u64> {
        self.next_file_id
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |id| {
                id.checked_add(1).filter(|next| *next <= FILE_ID_LIMIT)
            })
            .map_err(|_| Error::InvalidArgument("file ids exhausted".into()))
    }

    /// The value a blob reference `raw` of version `seq` of `ukey` names, read from the blob
    /// files of `levels` (the view the reference was found in) and checked whole.
    pub async fn resolve(
        &self,
        levels: &LevelSet<S>,
        ukey: &[u8],
        seq: u64,
        raw: &[u8],
    ) -> Result<Vec<u8>> {
        let r = BlobRef::decode(raw).ok_or_else(|| {
            Error::corruption(
                "blob reference",
                0,
                format!("malformed blob reference of version {seq}"),
            )
        })?;
        let file = levels.blob(r.file).ok_or_else(|| {
            Error::corruption(
                blob_name(r.file),
                0,
                format!("version {seq} refers to a blob file the manifest does not list"),
            )
        })?;
        file.read(&r, ukey, seq).await
    }

    /// Writes the manifest for `persisted` and `levels`, with the range tombstones of flushed
    /// commits above `merged_to` (a merge that wrote those at or below it into `levels`
    /// passes its bound; others 0).
    pub async fn write_manifest(
        &self,
        persisted: &Persisted,
        levels: &LevelSet<S>,
        merged_to: u64,
    ) -> Result<()> {
        let flushed = persisted.last_flushed.seq();
        let tombs = self
            .read_state()
            .tombs
            .iter()
            .filter(|t| t.seq() > merged_to && t.seq() <= flushed)
            .cloned()
            .collect();
        let manifest = Manifest {
            next_file_id: self.next_file_id.load(Ordering::Acquire),
            last_flushed_seq: persisted.last_flushed.seq(),
            last_flushed_time: persisted.last_flushed.time_ms(),
            wal_floor: persisted.wal_floor,
            wal_newest: persisted.wal_newest,
            horizon: persisted.horizon,
            tables: levels.all().map(|(l, t)| (l, t.meta.clone())).collect(),
            tombs,
            blobs: levels.blob_files().map(|b| b.meta.clone()).collect(),
        };
        manifest.write(&self.storage, self.store).await
    }

    fn wal_file(&self) -> Option<S::File> {
        self.wal.lock().as_ref().map(|w| w.file.clone())
    }

    /// Syncs the current WAL file (the group commit's sync).
    pub async fn sync_wal(&self) -> Result<()> {
        match self.wal_file() {
            Some(f) => f.sync().await,
            None => Ok(()),
        }
    }

    /// Appends one encoded transaction to the WAL (caller holds the writer lock).
    async fn append_wal(&self, buf: &[u8]) -> Result<u64> {
        let file = self.wal_file().ok_or(Error::ReadOnly("commit"))?;
        file.append(buf).await?;
        let mut wal = self.wal.lock();
        let w = wal.as_mut().ok_or(Error::ReadOnly("commit"))?;
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "the append succeeded: `len + buf.len()` is the file's new length, a u64"
        )]
        {
            w.len += buf.len() as u64;
        }
        Ok(w.len)
    }

    /// Syncs the current WAL file and starts a new one; returns its id. Caller holds the
    /// writer lock. The new file (its header synced, its name too) is named in the manifest
    /// before any commit goes there (see `wal`).
    async fn roll_wal(&self) -> Result<u64> {
        if let Some(old) = self.wal_file() {
            old.sync().await?;
        }
        let id = self.alloc_id()?;
        let wal = wal::create(&self.storage, self.store, id).await?;
        self.storage.sync().await?;
        {
            let mut persisted = self.persisted.lock().await;
            let levels = self.read_state().levels.clone();
            let before = std::mem::replace(&mut persisted.wal_newest, id);
            if let Err(e) = self.write_manifest(&persisted, &levels, 0).await {
                persisted.wal_newest = before;
                return Err(e);
            }
        }
        *self.wal.lock() = Some(wal);
        Ok(id)
    }

    /// Freezes the active memtable behind a new WAL file. Caller holds the writer lock.
    pub async fn freeze(&self) -> Result<()> {
        let id = self.roll_wal().await?;
        let mut st = self.write_state();
        let old = std::mem::replace(&mut st.active, Arc::new(Memtable::new(id)));
        st.immutables.push(old);
        Ok(())
    }

    /// After a commit was appended to `mem`: freezes it if full (true), or rolls the WAL if the
    /// file is past the segment size.
    async fn after_append(&self, mem: &Memtable, wal_len: u64) -> Result<bool> {
        if mem.size() >= self.tuning.memtable_size {
            self.freeze().await?;
            Ok(true)
        } else {
            if wal_len >= self.options().segment_size {
                self.roll_wal().await?;
            }
            Ok(false)
        }
    }

    /// Deletes WAL files below the floor.
    pub async fn remove_old_wals(&self, floor: u64) -> Result<()> {
        for name in self.storage.list().await? {
            if parse_wal_name(&name).is_some_and(|id| id < floor) {
                self.storage.remove(&name).await?;
            }
        }
        Ok(())
    }
}

/// The LSM engine over storage `S`. See the crate docs.
pub struct Lsm<S: Storage> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S: Storage> Lsm<S> {
    /// Tables per level, level 0 first, down to the deepest level that has any: the LSM's own
    /// counter beside the common [`Stats`].
    pub fn tables_per_level(&self) -> Vec<u64> {
        let levels = self.inner.read_state().levels.clone();
        let deepest = (0..crate::levels::NUM_LEVELS)
            .rev()
            .find(|l| !levels.level(*l).is_empty())
            .unwrap_or(0);
        (0..=deepest)
            .map(|l| levels.level(l).len() as u64)
            .collect()
    }
}

impl<S: Storage> Drop for Lsm<S> {
    fn drop(&mut self) {
        // Background tasks hold only a `Weak`; this tells a running one to stop early.
        self.inner.closing.store(true, Ordering::Release);
        self.inner.work_done.notify_waiters();
    }
}

impl<S: Storage> Lsm<S> {
    /// A read-only open, which may run beside a writer of the same files: between its reading
    /// of the manifest and of the files it names, the writer can flush, compact and delete
    /// (a table gone, a WAL file below a raised floor, so a gap in the sequence). That is a
    /// manifest that moved on, not damage: the open starts over while the manifest changes,
    /// and what stays wrong under an unchanged manifest is reported.
    async fn open_beside_writer(
        storage: S,
        options: Options,
        tuning: LsmOptions,
    ) -> Result<Arc<Inner<S>>> {
        /// Enough for a writer that flushes while the open reads; a store whose manifest
        /// changes through every attempt gets the last attempt's error.
        const ATTEMPTS: usize = 16;
        let mut retries = 1..ATTEMPTS;
        loop {
            let before = Manifest::raw(&storage).await?;
            let result = Self::open_inner(storage.clone(), options.clone(), tuning.clone()).await;
            let moved_on = match &result {
                Err(Error::Corruption { .. }) => Manifest::raw(&storage).await? != before,
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    Manifest::raw(&storage).await? != before
                }
                _ => false,
            };
            if !moved_on || retries.next().is_none() {
                return result;
            }
        }
    }

    async fn open_inner(storage: S, options: Options, tuning: LsmOptions) -> Result<Arc<Inner<S>>> {
        let read_only = options.read_only;
        // Refused before the writer lock: on files, taking it creates a lock file, and nothing
        // is created in a storage that is not this engine's store.
        let names = storage.list().await?;
        let found = check_identity(&storage, &names).await?;
        let store = match &found {
            Found::Store(id) => id.store,
            // A new store: a read-only open is an empty view, a writable one creates it.
            Found::Empty if read_only => return Ok(Self::empty_view(storage, options, tuning)),
            // Given by `identity::establish` below.
            Found::Empty => StoreId::from_bytes([0; 16]),
        };
        if matches!(found, Found::Store(_)) {
            Listing::of(&names)?.check_without_manifest()?;
        }
        let guard = if read_only {
            None
        } else {
            Some(storage.lock().await?)
        };
        // The manifest before the listing (so the listing is the newer of the two), as a
        // read-only open beside a writer needs.
        let mut existing = match found {
            Found::Store(_) => Manifest::read(&storage, store).await?,
            Found::Empty => None,
        };
        let mut listing = Listing::of(&storage.list().await?)?;
        if existing.is_none() && listing.manifest && matches!(found, Found::Store(_)) {
            // Created in between, by a writer beside this read-only open.
            existing = Manifest::read(&storage, store).await?;
        }
        listing.manifest = existing.is_some();
        listing.check_without_manifest()?;
        let fresh = existing.is_none();
        let manifest = existing.unwrap_or_default();
        let impossible =
            |what: &str, id: u64| Error::corruption(MANIFEST, 0, format!("impossible {what} {id}"));
        if manifest.next_file_id > FILE_ID_LIMIT {
            return Err(impossible("next file id", manifest.next_file_id));
        }
        // The newest WAL file was taken below the next id and at or above the floor (every
        // memtable's first WAL file is at most the newest).
        let newest = manifest.wal_newest;
        if newest != 0 && (newest >= manifest.next_file_id || newest < manifest.wal_floor) {
            return Err(impossible("newest WAL file", newest));
        }

        let Listing {
            tables: tables_on_disk,
            blobs: blobs_on_disk,
            wals: mut wal_ids,
            next_id: next_on_disk,
            ..
        } = listing;
        let listed: HashSet<u64> = manifest.tables.iter().map(|(_, t)| t.id).collect();
        for (_, t) in &manifest.tables {
            if !tables_on_disk.contains(&t.id) {
                return Err(Error::corruption(
                    table_name(t.id),
                    0,
                    "table listed in the manifest is missing",
                ));
            }
        }
        let listed_blobs: HashSet<u64> = manifest.blobs.iter().map(|b| b.id).collect();
        for b in &manifest.blobs {
            if !blobs_on_disk.contains(&b.id) {
                return Err(Error::corruption(
                    blob_name(b.id),
                    0,
                    "blob file listed in the manifest is missing",
                ));
            }
        }
        // The one WAL file continuity cannot vouch for: commits in it follow nothing, so
        // without this its loss would go unnoticed.
        if newest != 0 && !wal_ids.contains(&newest) {
            return Err(Error::corruption(
                wal_name(newest),
                0,
                "WAL named by the manifest is missing",
            ));
        }
        // Only now, with everything checked, is anything created or deleted.
        let store = if read_only {
            store
        } else {
            identity::establish(&storage, ENGINE, found, options.clock.now_ms())
                .await?
                .store
        };
        if !read_only {
            if listing.manifest_tmp {
                storage.remove(MANIFEST_TMP).await?;
            }
            // Tables the manifest does not list are garbage, proven by the manifest: it is
            // this store's (its header says so) and it decoded, CRC and all. A table is listed
            // by the manifest edit of the flush or compaction that wrote it, written after the
            // table was synced, and unlisted by the edit of the compaction that consumed it,
            // so an unlisted table is either
            // * an input compacted away (id below the manifest's `next_file_id`): its data is
            //   in the listed outputs of that compaction, and only its deletion was lost; or
            // * the output of a flush or compaction that crashed before its edit (id at or
            //   above `next_file_id`, or below it if a later edit raised the counter): a
            //   flush's data is still in WAL files at or above the manifest's `wal_floor`
            //   (kept, and replayed below), a compaction's still in its listed inputs.
            for id in tables_on_disk.difference(&listed) {
                storage.remove(&table_name(*id)).await?;
            }
            // Blob files by the same rule: a blob file is listed in the same manifest edit as
            // the tables referring to it (a flush's or a merge's), and unlisted by the merge
            // that rewrote its live values; an unlisted one is an orphan of a crashed flush or
            // merge (its values still in WAL files or listed blob files) or a replaced input.
            for id in blobs_on_disk.difference(&listed_blobs) {
                storage.remove(&blob_name(*id)).await?;
            }
            // Below the floor: every commit in them is in a listed table.
            for id in wal_ids.iter().filter(|id| **id < manifest.wal_floor) {
                storage.remove(&wal_name(*id)).await?;
            }
        }
        wal_ids.retain(|id| *id >= manifest.wal_floor);
        wal_ids.sort_unstable();
        // Above the newest WAL file, what a crashed roll left (see `wal`).
        let wal_ids = wal::sort_out(&storage, store, &wal_ids, newest, read_only).await?;

        // Ids start at 1: 0 is the manifest's file id, and `wal_newest` 0 means none.
        let mut next_id = manifest.next_file_id.max(next_on_disk).max(1);
        let first_wal = match wal_ids.first() {
            Some(id) => *id,
            None => next_id,
        };
        let mem = Memtable::new(first_wal);
        let flushed = Version::new(manifest.last_flushed_seq, manifest.last_flushed_time);
        let replayed = wal::replay(&storage, store, &wal_ids, flushed, &mem, read_only).await?;
        let last = replayed.last.max(flushed);
        let last = Version::new(last.seq(), last.time_ms().max(flushed.time_ms()));

        let mut active = replayed.active;
        let mut tombs = manifest.tombs.clone();
        tombs.extend(replayed.tombs);
        let recovery = RecoveryReport {
            dropped: replayed.dropped,
        };
        let mut wal_newest = newest;
        if !read_only {
            if fresh {
                // A new store: its manifest is durable before its first WAL file exists, so a
                // crash in between leaves nothing the next open could take for a damaged
                // store (see `Listing::check_without_manifest`).
                Manifest {
                    next_file_id: next_id,
                    ..manifest.clone()
                }
                .write(&storage, store)
                .await?;
            }
            let wal = match active {
                // What recovery shows must survive a power loss right after it: the last WAL
                // file may hold appends a crashed process never synced, and the namespace
                // operations (a manifest rename, removals) may not be durable yet either.
                Some(wal) => {
                    wal.file.sync().await?;
                    storage.sync().await?;
                    wal
                }
                None => {
                    let id = next_id;
                    next_id = id_after(id, MANIFEST)?;
                    let wal = wal::create(&storage, store, id).await?;
                    storage.sync().await?;
                    wal
                }
            };
            // Commits go to a WAL file only once the manifest names it (see `wal`).
            if wal.id > wal_newest {
                wal_newest = wal.id;
                Manifest {
                    next_file_id: next_id,
                    wal_newest,
                    ..manifest.clone()
                }
                .write(&storage, store)
                .await?;
            }
            active = Some(wal);
        }

        let levels = LevelSet::from_tables(manifest.tables.iter().map(|(l, meta)| {
            (
                *l,
                Arc::new(Table::new(meta.clone(), storage.clone(), store)),
            )
        }))
        .with_blob_files(
            manifest
                .blobs
                .iter()
                .map(|b| Arc::new(BlobFile::new(b.clone(), storage.clone(), store))),
        );
        Ok(Self::assemble(
            storage,
            options,
            tuning,
            store,
            State {
                active: Arc::new(mem),
                immutables: Vec::new(),
                levels: Arc::new(levels),
                tombs: Arc::new(tombs),
            },
            active,
            Persisted {
                last_flushed: flushed,
                wal_floor: manifest.wal_floor,
                wal_newest,
                horizon: manifest.horizon,
            },
            last,
            next_id,
            guard,
            recovery,
        ))
    }

    /// A read-only open of a storage that holds no store yet: nothing to read.
    fn empty_view(storage: S, options: Options, tuning: LsmOptions) -> Arc<Inner<S>> {
        Self::assemble(
            storage,
            options,
            tuning,
            StoreId::from_bytes([0; 16]),
            State {
                active: Arc::new(Memtable::new(1)),
                immutables: Vec::new(),
                levels: Arc::new(LevelSet::from_tables(std::iter::empty())),
                tombs: Arc::new(Vec::new()),
            },
            None,
            Persisted {
                last_flushed: Version::new(0, 0),
                wal_floor: 0,
                wal_newest: 0,
                horizon: 0,
            },
            Version::new(0, 0),
            1,
            None,
            RecoveryReport::default(),
        )
    }

    /// The engine's shared state from what an open found.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        storage: S,
        options: Options,
        tuning: LsmOptions,
        store: StoreId,
        state: State<S>,
        wal: Option<ActiveWal<S::File>>,
        persisted: Persisted,
        last: Version,
        next_id: u64,
        guard: Option<LockGuard>,
        recovery: RecoveryReport,
    ) -> Arc<Inner<S>> {
        let cache = Arc::new(BlockCache::new(options.cache_size));
        let pipeline = CommitPipeline::new(last, persisted.horizon, options);
        Arc::new(Inner {
            storage,
            store,
            pipeline,
            tuning,
            state: RwLock::new(state),
            wal: Mutex::new(wal),
            wal_buf: Mutex::new(Vec::new()),
            persisted: tokio::sync::Mutex::new(persisted),
            next_file_id: AtomicU64::new(next_id),
            cache,
            flush_lock: tokio::sync::Mutex::new(()),
            compaction_lock: tokio::sync::Mutex::new(vec![Vec::new(); crate::levels::NUM_LEVELS]),
            obsolete: Mutex::new(Vec::new()),
            obsolete_blobs: Mutex::new(Vec::new()),
            work_done: tokio::sync::Notify::new(),
            closing: AtomicBool::new(false),
            flush_running: AtomicBool::new(false),
            compaction_running: AtomicBool::new(false),
            writer_lock: Mutex::new(guard),
            recovery,
        })
    }
}

impl<S: Storage> Lsm<S> {
    /// Commits `batch`: under the next version, or under `imported` (see
    /// [`Engine::import_commit`]).
    async fn commit_at(&self, mut batch: WriteBatch, imported: Option<Version>) -> Result<Version> {
        let inner = &self.inner;
        inner.throttle().await?;
        let mut ticket = match imported {
            Some(v) => inner.pipeline.begin_import(&batch, v).await?,
            None => inner.pipeline.begin(&batch).await?,
        };
        let version = ticket.version();
        let ranges = std::mem::take(&mut batch.range_tombstones);
        // A watcher of a removed range gets one removal per key it held live: listed only
        // then, under the writer lock (so at the state right before this commit).
        let feed = inner.pipeline.feed();
        let (watched, mark) = if ranges.is_empty() {
            (false, 0)
        } else {
            feed.watches(&ranges)
        };
        let mut removed = Vec::new();
        if watched {
            let before = version.seq().saturating_sub(1);
            for (slot, range) in &ranges {
                let key = |key: &[u8], _: &[u8], _| key.to_vec();
                let keys = inner.scan(*slot, range, before, (false, usize::MAX, false), key);
                for key in keys.await? {
                    removed.push(Write {
                        slot: *slot,
                        key,
                        value: None,
                    });
                }
            }
        }
        // The encode buffer is reused from commit to commit (commits are serialized by the
        // writer lock, so taking it out of its mutex never contends).
        let mut buf = std::mem::take(&mut *inner.wal_buf.lock());
        buf.clear();
        // Nothing is written yet if encoding fails: the error just releases the writer lock.
        let encoded = txlog::encode_txn_with_ranges(
            &mut buf,
            version,
            ticket.follows(),
            &ranges,
            &batch.writes,
            |_| {},
        );
        let appended = match encoded {
            Ok(()) => inner.append_wal(&buf).await,
            Err(e) => Err(e),
        };
        if buf.capacity() <= WAL_BUF_KEEP {
            *inner.wal_buf.lock() = buf;
        }
        let wal_len = match appended {
            Ok(len) => len,
            Err(e) => return Err(ticket.fail(e)),
        };
        // Invisible to readers until the pipeline publishes `version`. The values move into
        // the memtable: from here on the pipeline needs only the keys.
        if ranges.is_empty() {
            ticket.announce(&batch.writes);
        } else if !watched {
            ticket.announce_removing(&batch.writes, &ranges, mark);
        } else {
            // A key the commit writes after the removal is its write, not a removal.
            let written: HashSet<(Slot, &[u8])> = batch
                .writes
                .iter()
                .map(|w| (w.slot, w.key.as_slice()))
                .collect();
            removed.retain(|w| !written.contains(&(w.slot, w.key.as_slice())));
            removed.extend(batch.writes.iter().cloned());
            ticket.announce_removing(&removed, &ranges, mark);
        }
        drop(removed);
        let mem = inner.read_state().active.clone();
        mem.apply_writes(version, &mut batch.writes);
        if !ranges.is_empty() {
            let mut st = inner.write_state();
            let tombs = Arc::make_mut(&mut st.tombs);
            tombs.extend(ranges.into_iter().map(|(slot, range)| RangeTomb {
                slot,
                range,
                version,
            }));
        }
        let froze = match inner.after_append(&mem, wal_len).await {
            Ok(froze) => froze,
            Err(e) => return Err(ticket.fail(e)),
        };
        let result = ticket.finish(&batch, || inner.sync_wal()).await;
        if froze {
            inner.maintain().await;
        }
        result
    }
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl<S: Storage> Engine for Lsm<S> {
    type Storage = S;
    type Tuning = LsmOptions;

    const NAME: &'static str = crate::names::ENGINE;

    async fn open(storage: S, options: Options, tuning: LsmOptions) -> Result<Self> {
        options.validate()?;
        let inner = if options.read_only {
            Self::open_beside_writer(storage, options, tuning).await?
        } else {
            Self::open_inner(storage, options, tuning).await?
        };
        if !inner.options().read_only {
            // A WAL replayed into a memtable past its size: flush it now rather than at the
            // next commit.
            let full = inner.read_state().active.size() >= inner.tuning.memtable_size;
            if full {
                let _writer = inner.pipeline.lock_writer().await;
                inner.freeze().await?;
            }
            inner.maintain().await;
        }
        Ok(Lsm { inner })
    }

    fn options(&self) -> &Options {
        self.inner.options()
    }

    fn tuning(&self) -> &LsmOptions {
        &self.inner.tuning
    }

    fn snapshot(&self) -> Result<Snapshot> {
        self.inner.pipeline.snapshot()
    }

    fn snapshot_at(&self, version: Version) -> Result<Snapshot> {
        self.inner.pipeline.snapshot_at(version)
    }

    // Not `async fn`: `#[async_trait]` would box it, and the trait's signature is unboxed.
    #[allow(clippy::manual_async_fn)]
    fn get<'a>(
        &'a self,
        slot: Slot,
        key: &'a [u8],
        at: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + MaybeSend + 'a {
        async move {
            let inner = &self.inner;
            inner.pipeline.check_open()?;
            let at = inner.clamp(at);
            Ok(inner.newest(&ukey(slot, key), at).await?.flatten())
        }
    }

    /// The keys sorted and deduplicated, then one pass over the memtables and the tables in
    /// key order.
    async fn get_many(&self, slot: Slot, keys: &[&[u8]], at: u64) -> Result<Vec<Option<Vec<u8>>>> {
        let inner = &self.inner;
        inner.pipeline.check_open()?;
        let at = inner.clamp(at);
        // The user keys (slot byte + key) in one buffer: a batch is not a thousand allocations.
        let total = keys
            .iter()
            .fold(0, |n: usize, k| n.saturating_add(k.len()).saturating_add(1));
        let mut buf = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(keys.len());
        for k in keys {
            buf.push(slot);
            buf.extend_from_slice(k);
            ends.push(buf.len());
        }
        let ukeys: Vec<&[u8]> = ends
            .iter()
            .scan(0, |start, &end| {
                let k = buf.get(*start..end).unwrap_or_default();
                *start = end;
                Some(k)
            })
            .collect();
        let mut order: Vec<(&[u8], usize)> = ukeys.iter().copied().zip(0..).collect();
        order.sort_unstable();
        // The distinct keys in order, and for each key, which of them it is.
        let mut distinct: Vec<&[u8]> = Vec::with_capacity(ukeys.len());
        let mut which = vec![0; ukeys.len()];
        for (k, i) in order {
            if distinct.last() != Some(&k) {
                distinct.push(k);
            }
            if let Some(w) = which.get_mut(i) {
                *w = distinct.len().saturating_sub(1);
            }
        }
        let unique = distinct.len() == ukeys.len();
        let mut values = inner.newest_many(&distinct, at).await?;
        Ok(which
            .iter()
            .map(|w| {
                let v = values.get_mut(*w)?;
                // Without duplicates each value is taken once; with them, copied.
                if unique { v.take() } else { v.clone() }.flatten()
            })
            .collect())
    }

    async fn get_unremoved(
        &self,
        slot: Slot,
        key: &[u8],
        at: u64,
    ) -> Result<Option<(Version, Vec<u8>)>> {
        let inner = &self.inner;
        inner.pipeline.check_open()?;
        let at = inner.clamp(at);
        let versions = inner.versions_desc(&ukey(slot, key), at, true).await?;
        Ok(versions
            .into_iter()
            .find_map(|e| e.value.map(|v| (Version::new(e.seq, e.time_ms), v))))
    }

    async fn versions(&self, slot: Slot, key: &[u8], at: u64) -> Result<Vec<Version>> {
        let inner = &self.inner;
        inner.pipeline.check_open()?;
        let at = inner.clamp(at);
        inner.versions(&ukey(slot, key), at).await
    }

    async fn get_version(
        &self,
        slot: Slot,
        key: &[u8],
        version: Version,
    ) -> Result<Option<Vec<u8>>> {
        let inner = &self.inner;
        inner.pipeline.check_open()?;
        let seq = version.seq();
        if seq > inner.pipeline.visible().seq() {
            return Err(Error::VersionNotFound {
                seq,
                reason: "not committed yet",
            });
        }
        let ukey = ukey(slot, key);
        match inner.exact(&ukey, seq).await? {
            Some(value) => Ok(value),
            // A removal a range tombstone made.
            None if inner
                .versions(&ukey, seq)
                .await?
                .last()
                .is_some_and(|v| v.seq() == seq && v.is_removal()) =>
            {
                Ok(None)
            }
            None => Err(Error::VersionNotFound {
                seq,
                reason: if seq < inner.pipeline.horizon() {
                    "dropped by merge"
                } else {
                    "this key has no such version"
                },
            }),
        }
    }

    async fn scan(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<kv_api::Entry>> {
        let inner = &self.inner;
        inner.pipeline.check_open()?;
        let at = inner.clamp(at);
        let entry = |key: &[u8], value: &[u8], version| kv_api::Entry {
            key: key.to_vec(),
            value: value.to_vec(),
            version,
        };
        inner
            .scan(slot, range, at, (reverse, limit, true), entry)
            .await
    }

    /// The merging pass of `scan`, copying keys only: value bytes stay in their blocks.
    async fn scan_keys(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Version)>> {
        let inner = &self.inner;
        inner.pipeline.check_open()?;
        let at = inner.clamp(at);
        let key = |key: &[u8], _: &[u8], version| (key.to_vec(), version);
        inner
            .scan(slot, range, at, (reverse, limit, false), key)
            .await
    }

    async fn commit(&self, batch: WriteBatch) -> Result<Version> {
        self.commit_at(batch, None).await
    }

    async fn scan_versions(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<Version>)>> {
        let inner = &self.inner;
        inner.pipeline.check_open()?;
        let at = inner.clamp(at);
        inner.scan_versions(slot, range, at, limit).await
    }

    async fn import_commit(&self, version: Version, writes: Vec<Write>) -> Result<()> {
        let batch = kv_engine_kit::commit::import_batch(writes);
        self.commit_at(batch, Some(version)).await.map(|_| ())
    }

    fn store_id(&self) -> Option<[u8; 16]> {
        Some(self.inner.store.bytes())
    }

    async fn merge(&self) -> Result<()> {
        self.inner.merge(&|_| {}).await
    }

    async fn merge_with(&self, progress: &ProgressFn<'_>) -> Result<()> {
        self.inner.merge(progress).await
    }

    async fn verify(&self, progress: &ProgressFn<'_>) -> Result<VerifyReport> {
        self.inner.verify(progress).await
    }

    async fn flush(&self) -> Result<()> {
        let inner = &self.inner;
        inner.pipeline.check_open()?;
        if inner.options().read_only {
            return Ok(());
        }
        inner.pipeline.flush(|| inner.sync_wal()).await
    }

    /// While fewer than 64 tombstones (`rtomb::MAX_HELD`) wait for a merge.
    fn range_tombstones(&self) -> bool {
        self.inner.read_state().tombs.len() < crate::rtomb::MAX_HELD
    }

    fn feed(&self) -> Option<&kv_api::watch::Feed> {
        Some(self.inner.pipeline.feed())
    }

    fn recovery(&self) -> RecoveryReport {
        self.inner.recovery.clone()
    }

    async fn stats(&self) -> Result<Stats> {
        self.inner.pipeline.check_open()?;
        self.inner.stats().await
    }

    async fn close(&self) -> Result<()> {
        let inner = &self.inner;
        // Closing a closed store does nothing (see `Engine::close`).
        if inner.pipeline.check_open().is_err() {
            return Ok(());
        }
        let read_only = inner.options().read_only;
        let flushed = if read_only {
            Ok(())
        } else {
            inner.pipeline.flush(|| inner.sync_wal()).await
        };
        inner.closing.store(true, Ordering::Release);
        inner.pipeline.close();
        inner.work_done.notify_waiters();
        let mut result = flushed;
        {
            // A commit that began before `close` finishes its append under this lock; sync it.
            let _writer = inner.pipeline.lock_writer().await;
            if !read_only {
                result = result.and(inner.sync_wal().await);
            }
        }
        // Wait for a running flush or compaction to stop (in the order merge takes them).
        let _compaction = inner.compaction_lock.lock().await;
        let _flush = inner.flush_lock.lock().await;
        if !read_only {
            result = result.and(inner.gc().await);
        }
        *inner.writer_lock.lock() = None;
        result
    }
}
