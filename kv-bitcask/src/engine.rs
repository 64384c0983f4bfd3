//! The Bitcask engine: commits appended to the active segment, reads through the keydir.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use kv_api::{
    Engine, Entry, Error, KeyRange, LockGuard, MaybeSend, Options, ProgressFn, RecoveryReport,
    Result, Slot, Snapshot, Stats, Storage, StorageFile, ValueVisitor, VerifyReport, Version,
    Write, WriteBatch,
};
use kv_engine_kit::commit::CommitPipeline;
use kv_engine_kit::txlog::{self, WriteLoc};

use crate::hint;
use crate::key::Key;
use crate::keydir::{Keydir, Loc};
use crate::layout::{Active, Layout, SegFile, SegInfo};
use crate::pages::PageCache;
use crate::pending::PendingEntries;
use crate::recovery;
use crate::segment::{hint_name, parse_name, segment_header, segment_name};
use kv_engine_kit::header::{self, StoreId};
use kv_engine_kit::identity::{self, Found};

/// A Bitcask store over any [`Storage`]: an append-only log of transactions in segments, every
/// key's versions in memory (the keydir), hint files for fast reopening, and `merge` to drop
/// old versions. See the crate docs.
pub struct Bitcask<S: Storage> {
    pub(crate) storage: S,
    pub(crate) pipeline: CommitPipeline,
    pub(crate) keydir: RwLock<Keydir>,
    /// Open segments by file id (sealed, merged and active), with their readable lengths.
    pub(crate) handles: RwLock<HashMap<u32, SegFile<S::File>>>,
    /// Cached segment pages, bounded by `Options::cache_size`.
    pub(crate) pages: PageCache,
    pub(crate) layout: Mutex<Layout<S::File>>,
    /// Bumped (under the keydir write lock) whenever a merge moves versions to other files,
    /// so a read that fails on a file merge deleted knows to look the version up again.
    pub(crate) generation: AtomicU64,
    /// One merge at a time; `close` waits for a running merge.
    pub(crate) merging: tokio::sync::Mutex<()>,
    writer_lock: Mutex<Option<LockGuard>>,
    /// The store's id (from `IDENTITY`), in the header of every file it writes.
    pub(crate) store: StoreId,
    /// What the open left out.
    recovery: RecoveryReport,
}

/// Active segments from this size on are sealed (and hinted) by a clean close: replaying 1 MiB
/// of records at open costs about what loading its hint does, and below it a new segment per
/// close would cost more than it saves.
const SEAL_ON_CLOSE: u64 = 1 << 20;

impl<S: Storage> Bitcask<S> {
    /// Reads `f` of the keydir, with the generation it was read at.
    pub(crate) fn lookup<T>(&self, f: impl FnOnce(&Keydir) -> T) -> (T, u64) {
        let kd = self.keydir.read();
        (f(&kd), self.generation.load(Ordering::Acquire))
    }

    /// Reads are clamped to what is published: versions above it may still be in flight.
    fn visible_at(&self, at: u64) -> u64 {
        at.min(self.pipeline.visible_seq())
    }

    /// Syncs the active segment (the group-commit leader's sync). Commits in segments sealed
    /// since were synced by the roll.
    async fn sync_active(&self) -> Result<()> {
        let file = self.layout.lock().active.as_ref().map(|a| a.file.clone());
        match file {
            Some(f) => f.sync().await,
            None => Ok(()),
        }
    }

    /// Seals the active segment and starts a new one, for the caller's operation `what`
    /// (`"commit"` or `"merge"`). The caller holds the writer lock; `last` is the newest
    /// commit appended. Any error must poison the pipeline.
    ///
    /// There is no active segment only in a read-only view of an empty storage (see
    /// [`Layout::active`]), so the error then is [`Error::ReadOnly`] naming `what`. Commit and
    /// merge reject read-only stores before they get here: it is a guard, not a path.
    pub(crate) async fn roll(&self, last: Version, what: &'static str) -> Result<()> {
        let (old_id, old_file, old_len, pending) = {
            let mut layout = self.layout.lock();
            let a = layout.active.as_mut().ok_or(Error::ReadOnly(what))?;
            (a.id, a.file.clone(), a.len, std::mem::take(&mut a.pending))
        };
        old_file.sync().await?;
        // Sorting and encoding a full segment's entries takes tens of milliseconds: both
        // let other tasks run as they go (#12).
        let pending = pending.into_sorted().await;
        let hint = hint::encode_yielding(
            self.store,
            old_id,
            old_len,
            (last.seq(), last.time_ms()),
            &pending,
        )
        .await;
        // Tens of MiB each for a full segment: unmapping them held this thread for
        // milliseconds (#12).
        kv_api::drop_off_executor(pending);
        self.write_hint(old_id, &hint).await;
        kv_api::drop_off_executor(hint);

        let new_id = self.layout.lock().alloc_id()?;
        let new_file =
            recovery::create_segment(&self.storage, segment_header(self.store, new_id, false))
                .await?;
        self.handles
            .write()
            .insert(new_id, SegFile::new(new_file.clone(), header::LEN as u64));
        let sealed_now = SegInfo {
            id: old_id,
            merged: false,
            len: old_len,
        };
        let meta = {
            let layout = self.layout.lock();
            let mut sealed = layout.sealed.clone();
            sealed.push(sealed_now);
            layout.meta_with(&sealed, new_id, self.pipeline.horizon(), last)
        };
        meta.write(&self.storage, self.store).await?;
        let mut layout = self.layout.lock();
        layout.sealed.push(sealed_now);
        layout.active = Some(Active {
            id: new_id,
            file: new_file,
            len: header::LEN as u64,
            pending: PendingEntries::default(),
        });
        Ok(())
    }

    /// Seals the active segment at a clean close when replaying it at the next open would cost
    /// more than loading its hint: from [`SEAL_ON_CLOSE`] bytes on. Smaller ones stay active
    /// (their replay takes about a millisecond), so opening and closing a small store does not
    /// leave a trail of tiny segments.
    async fn seal_on_close(&self) -> Result<()> {
        if self.options().read_only {
            return Ok(());
        }
        let state = self.pipeline.lock_writer().await;
        let active_len = self.layout.lock().active.as_ref().map_or(0, |a| a.len);
        if active_len < SEAL_ON_CLOSE {
            return Ok(());
        }
        self.roll(state.last(), "close")
            .await
            .map_err(|e| self.pipeline.poison(e))
    }

    /// Writes a hint file. Best effort: a missing or partial hint only means that reopening
    /// replays the segment instead, so a failure here must not fail the commit.
    pub(crate) async fn write_hint(&self, id: u32, bytes: &[u8]) {
        let name = hint_name(id);
        let written = async {
            let f = self.storage.create(&name).await?;
            kv_engine_kit::files::append_in_pieces(&f, bytes).await?;
            f.sync().await
        }
        .await;
        if written.is_err() {
            let _ = self.storage.remove(&name).await;
        }
    }

    fn active_len(&self) -> Option<u64> {
        self.layout.lock().active.as_ref().map(|a| a.len)
    }

    /// Adds the writes of a commit appended at `offset` of segment `id` to the keydir.
    /// `offset .. end` are the bytes of the commit's append; `locs` are relative to `offset`.
    fn index(
        &self,
        id: u32,
        (offset, end): (u64, u64),
        batch: &WriteBatch,
        locs: &[WriteLoc],
        v: Version,
    ) {
        let mut layout = self.layout.lock();
        let mut kd = self.keydir.write();
        // Readable before the keydir points there.
        if let Some(seg) = self.handles.read().get(&id) {
            seg.extend(end);
        }
        let pending = layout.active.as_mut().filter(|a| a.id == id).map(|a| {
            a.len = a.len.max(end);
            &mut a.pending
        });
        let entries = batch.writes.iter().zip(locs).map(|(w, l)| {
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "`l` lies in the appended bytes: `offset + l.offset` is below `end`, \
                          which the caller checked"
            )]
            let at = offset + l.offset;
            let loc = Loc::new(v.seq(), v.time_ms(), id, at, l.len, w.value.is_none());
            (Key::new(w.slot, &w.key), loc)
        });
        let entries: Vec<(Key, Loc)> = entries.collect();
        kd.insert_all(&entries);
        if let Some(p) = pending {
            p.extend(entries);
        }
    }

    /// Commits `batch`: under the next version, or under `imported` (see
    /// [`Engine::import_commit`]).
    async fn commit_at(&self, batch: WriteBatch, imported: Option<Version>) -> Result<Version> {
        // Bitcask removes ranges key by key (`Engine::range_tombstones` is false).
        if !batch.range_tombstones.is_empty() {
            return Err(kv_api::Error::InvalidArgument(
                "the bitcask engine does not take range tombstones".into(),
            ));
        }
        let mut ticket = match imported {
            Some(v) => self.pipeline.begin_import(&batch, v).await?,
            None => self.pipeline.begin(&batch).await?,
        };
        let version = ticket.version();
        // Nothing is written yet: errors here just release the writer lock.
        let mut buf = Vec::new();
        let mut locs = Vec::with_capacity(batch.writes.len());
        txlog::encode_txn(&mut buf, version, ticket.follows(), &batch.writes, |l| {
            locs.push(l)
        })?;
        let len = buf.len() as u64;
        let needs_roll = self
            .active_len()
            .is_some_and(|n| n > 0 && n.saturating_add(len) > self.options().segment_size);
        if needs_roll {
            let last = ticket.state().last();
            if let Err(e) = self.roll(last, "commit").await {
                return Err(ticket.fail(e));
            }
        }
        let Some((id, file)) = self
            .layout
            .lock()
            .active
            .as_ref()
            .map(|a| (a.id, a.file.clone()))
        else {
            // Only a read-only view of an empty storage has no active segment (see `roll`).
            return Err(Error::ReadOnly("commit"));
        };
        let offset = match file.append(&buf).await {
            Ok(offset) => offset,
            Err(e) => return Err(ticket.fail(e)),
        };
        let Some(end) = offset.checked_add(len) else {
            let e = Error::corruption(segment_name(id), offset, "append past u64::MAX bytes");
            return Err(ticket.fail(e));
        };
        self.index(id, (offset, end), &batch, &locs, version);
        ticket.finish(&batch, || self.sync_active()).await
    }
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl<S: Storage> Engine for Bitcask<S> {
    type Storage = S;
    type Tuning = ();

    const NAME: &'static str = "bitcask";

    async fn open(storage: S, options: Options, _tuning: ()) -> Result<Self> {
        options.validate()?;
        // Refused before the lock: on files, taking it creates a lock file, and nothing is
        // created in a storage that is not this engine's.
        let names = storage.list().await?;
        let found = identity::check(
            &storage,
            recovery::ENGINE,
            &names,
            |n| parse_name(n).is_some(),
            crate::segment::META,
        )
        .await?;
        let (guard, store) = if options.read_only {
            let store = match found {
                Found::Store(id) => Some(id.store),
                Found::Empty => None,
            };
            (None, store)
        } else {
            recovery::check_without_meta(&storage, &names).await?;
            let guard = storage.lock().await?;
            let now = options.clock.now_ms();
            let id = identity::establish(&storage, recovery::ENGINE, found, now).await?;
            (Some(guard), Some(id.store))
        };
        let rec = recovery::recover(&storage, store, options.read_only).await?;
        let cache_size = options.cache_size;
        Ok(Bitcask {
            storage,
            pipeline: CommitPipeline::new(rec.last, rec.horizon, options),
            keydir: RwLock::new(rec.keydir),
            handles: RwLock::new(rec.handles),
            pages: PageCache::new(cache_size),
            layout: Mutex::new(rec.layout),
            generation: AtomicU64::new(0),
            merging: tokio::sync::Mutex::new(()),
            writer_lock: Mutex::new(guard),
            store: store.unwrap_or(StoreId::from_bytes([0; 16])),
            recovery: rec.report,
        })
    }

    fn feed(&self) -> Option<&kv_api::watch::Feed> {
        Some(self.pipeline.feed())
    }

    fn recovery(&self) -> RecoveryReport {
        self.recovery.clone()
    }

    fn tuning(&self) -> &() {
        &()
    }

    fn options(&self) -> &Options {
        self.pipeline.options()
    }

    fn snapshot(&self) -> Result<Snapshot> {
        self.pipeline.snapshot()
    }

    fn snapshot_at(&self, version: Version) -> Result<Snapshot> {
        self.pipeline.snapshot_at(version)
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
            let mut value = None;
            self.get_with(slot, key, at, &mut |v| value = v.map(<[u8]>::to_vec))
                .await?;
            Ok(value)
        }
    }

    // Not `async fn`: `#[async_trait]` would box it, and the trait's signature is unboxed.
    #[allow(clippy::manual_async_fn)]
    fn get_with<'a>(
        &'a self,
        slot: Slot,
        key: &'a [u8],
        at: u64,
        f: &'a mut ValueVisitor<'_>,
    ) -> impl Future<Output = Result<()>> + MaybeSend + 'a {
        async move {
            self.pipeline.check_open()?;
            let at = self.visible_at(at);
            let key = Key::new(slot, key);
            let guess = self.keydir.read().newest_guess(&key, at);
            if let Some(loc) = guess {
                // The record names its key: a guess of another key (or gone with a merge)
                // fails here and the read goes through the keydir's map.
                if self
                    .read_frame_with(slot, key.user_key(), &loc, &mut *f)
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
            }
            match self.lookup(|kd| kd.get(&key, at)) {
                (Some(loc), generation) if !loc.is_removal() => {
                    self.read_value_with(slot, key.user_key(), loc, generation, &mut *f)
                        .await
                }
                _ => {
                    f(None);
                    Ok(())
                }
            }
        }
    }

    /// One keydir read lock for every key, then the live versions read as a scan reads
    /// them: cached pages first, the rest in file order, nearby records joined into one read.
    /// Keys are located as `get` locates them, through the newest-version table's guesses;
    /// if a record read does not check (a guess of another key), the batch is located again
    /// through the keydir's map alone.
    async fn get_many(&self, slot: Slot, keys: &[&[u8]], at: u64) -> Result<Vec<Option<Vec<u8>>>> {
        self.pipeline.check_open()?;
        let at = self.visible_at(at);
        let mut guess = true;
        loop {
            let (locs, generation) = self.lookup(|kd| {
                keys.iter()
                    .map(|k| {
                        let key = Key::new(slot, k);
                        let guessed = guess.then(|| kd.newest_guess(&key, at)).flatten();
                        guessed.or_else(|| kd.get(&key, at).filter(|l| !l.is_removal()))
                    })
                    .collect::<Vec<_>>()
            });
            let found: Vec<(&[u8], Loc)> = keys
                .iter()
                .zip(&locs)
                .filter_map(|(k, l)| l.map(|l| (*k, l)))
                .collect();
            let mut values = match self.read_live_values(slot, &found, generation).await {
                Ok(values) => values.into_iter(),
                Err(_) if guess => {
                    guess = false;
                    continue;
                }
                Err(e) => return Err(e),
            };
            return Ok(locs.iter().map(|l| l.and_then(|_| values.next())).collect());
        }
    }

    async fn get_unremoved(
        &self,
        slot: Slot,
        key: &[u8],
        at: u64,
    ) -> Result<Option<(Version, Vec<u8>)>> {
        self.pipeline.check_open()?;
        let at = self.visible_at(at);
        let key = Key::new(slot, key);
        let (loc, generation) = self.lookup(|kd| kd.get_unremoved(&key, at));
        let Some(loc) = loc else {
            return Ok(None);
        };
        Ok(self
            .read_value(slot, key.user_key(), loc, generation)
            .await?
            .map(|v| (loc.version(), v)))
    }

    async fn versions(&self, slot: Slot, key: &[u8], at: u64) -> Result<Vec<Version>> {
        self.pipeline.check_open()?;
        let at = self.visible_at(at);
        let key = Key::new(slot, key);
        let kd = self.keydir.read();
        Ok(kd
            .all(&key)
            .iter()
            .filter(|l| l.seq <= at)
            .map(Loc::version)
            .collect())
    }

    async fn get_version(
        &self,
        slot: Slot,
        key: &[u8],
        version: Version,
    ) -> Result<Option<Vec<u8>>> {
        self.pipeline.check_open()?;
        let seq = version.seq();
        if seq > self.pipeline.visible_seq() {
            return Err(Error::VersionNotFound {
                seq,
                reason: "not committed yet",
            });
        }
        let key = Key::new(slot, key);
        match self.lookup(|kd| kd.exact(&key, seq)) {
            (None, _) => Err(Error::VersionNotFound {
                seq,
                reason: "the key has no such version (or merge dropped it)",
            }),
            (Some(loc), _) if loc.is_removal() => Ok(None),
            (Some(loc), generation) => self.read_value(slot, key.user_key(), loc, generation).await,
        }
    }

    async fn scan(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        self.pipeline.check_open()?;
        let at = self.visible_at(at);
        let (found, generation) = self.lookup(|kd| kd.scan(slot, range, at, reverse, limit));
        let values = self.read_live_values(slot, &found, generation).await?;
        Ok(found
            .into_iter()
            .zip(values)
            .map(|((key, loc), value)| Entry {
                key,
                value,
                version: Version::new(loc.seq, loc.time_ms),
            })
            .collect())
    }

    /// From the keydir alone: no record is read.
    async fn scan_keys(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Version)>> {
        self.pipeline.check_open()?;
        let at = self.visible_at(at);
        let found = self.keydir.read().scan(slot, range, at, reverse, limit);
        Ok(found
            .into_iter()
            .map(|(key, loc)| (key, loc.version()))
            .collect())
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
        self.pipeline.check_open()?;
        let at = self.visible_at(at);
        Ok(self.keydir.read().scan_versions(slot, range, at, limit))
    }

    async fn import_commit(&self, version: Version, writes: Vec<Write>) -> Result<()> {
        let batch = kv_engine_kit::commit::import_batch(writes);
        self.commit_at(batch, Some(version)).await.map(|_| ())
    }

    fn store_id(&self) -> Option<[u8; 16]> {
        Some(self.store.bytes())
    }

    async fn merge(&self) -> Result<()> {
        self.merge_segments(&|_| {}).await
    }

    async fn merge_with(&self, progress: &ProgressFn<'_>) -> Result<()> {
        self.merge_segments(progress).await
    }

    async fn verify(&self, progress: &ProgressFn<'_>) -> Result<VerifyReport> {
        self.verify_files(progress).await
    }

    async fn flush(&self) -> Result<()> {
        self.pipeline.check_open()?;
        if self.options().read_only {
            return Ok(());
        }
        self.pipeline.flush(|| self.sync_active()).await
    }

    async fn stats(&self) -> Result<Stats> {
        self.pipeline.check_open()?;
        let counts = self.keydir.read().counts();
        let (cache_hits, cache_misses) = self.pages.counters();
        let (segment_bytes, files) = {
            let layout = self.layout.lock();
            (layout.segment_bytes(), layout.segment_count())
        };
        let mut bytes_on_storage: u64 = 0;
        for name in self.storage.list().await? {
            if parse_name(&name).is_some() {
                // A file may vanish under a concurrent merge: count what is there.
                if let Ok(f) = self.storage.open(&name).await {
                    let len = f.len().await.unwrap_or(0);
                    bytes_on_storage = bytes_on_storage.saturating_add(len);
                }
            }
        }
        Ok(Stats {
            engine: Self::NAME,
            live_keys: counts.live_keys,
            versions: counts.versions,
            bytes_on_storage,
            // Headers are neither live data nor anything a merge could drop.
            garbage_bytes: segment_bytes
                .saturating_sub(counts.live_bytes)
                .saturating_sub(files.saturating_mul(header::LEN as u64)),
            files,
            last_version: self.pipeline.visible(),
            cache_hits,
            cache_misses,
            ..Stats::default()
        })
    }

    async fn close(&self) -> Result<()> {
        // Closing a closed store does nothing (see `Engine::close`).
        if self.pipeline.check_open().is_err() {
            return Ok(());
        }
        let _merge = self.merging.lock().await;
        // A concurrent `close` may have finished while this one waited for the merge.
        if self.pipeline.check_open().is_err() {
            return Ok(());
        }
        let flushed = self.flush().await;
        // A clean close seals a large active segment, which writes its hint: the next open
        // then loads hints only and replays no segment (reopen after a crash still replays the
        // active segment, bounded by `segment_size`).
        let sealed = match flushed {
            Ok(()) => self.seal_on_close().await,
            Err(_) => Ok(()),
        };
        self.pipeline.close();
        self.handles.write().clear();
        self.writer_lock.lock().take();
        flushed.and(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::segment_name;
    use kv_backends::MemoryStorage;

    fn put(engine: &Bitcask<MemoryStorage>, key: &[u8], value: &[u8]) -> Result<WriteBatch> {
        Ok(WriteBatch::new(engine.snapshot()?).write(0, key.to_vec(), Some(value.to_vec())))
    }

    /// A key-only scan answers from the keydir: after a reopen (an empty page cache) it
    /// lists what `scan` lists without a single page lookup, while `scan` reads records.
    #[tokio::test]
    async fn key_only_scans_read_no_record() -> Result<()> {
        let storage = MemoryStorage::new();
        let engine = Bitcask::open(storage.clone(), Options::default(), ()).await?;
        for i in 0..50u32 {
            let value = vec![b'v'; 300];
            engine
                .commit(put(&engine, format!("k{i:02}").as_bytes(), &value)?)
                .await?;
        }
        engine.close().await?;
        let engine = Bitcask::open(storage, Options::default(), ()).await?;
        let at = engine.snapshot()?.seq();
        let before = engine.pages.counters();
        let range = KeyRange::prefix(b"k1");
        let keys = engine.scan_keys(0, &range, at, true, 100).await?;
        assert_eq!(engine.pages.counters(), before, "no page looked up");
        let full = engine.scan(0, &range, at, true, 100).await?;
        assert_ne!(engine.pages.counters(), before, "scan reads records");
        let want: Vec<(Vec<u8>, u64)> =
            full.into_iter().map(|e| (e.key, e.version.seq())).collect();
        let got: Vec<(Vec<u8>, u64)> = keys.into_iter().map(|(k, v)| (k, v.seq())).collect();
        assert_eq!(got.len(), 10);
        assert_eq!(got, want);
        Ok(())
    }

    /// A clean close seals (and hints) an active segment of `SEAL_ON_CLOSE` bytes or more, so
    /// that the next open replays nothing; a smaller one stays active.
    #[tokio::test]
    async fn clean_close_hints_a_large_active_segment() -> Result<()> {
        use crate::segment::hint_name;
        let storage = MemoryStorage::new();
        let engine = Bitcask::open(storage.clone(), Options::default(), ()).await?;
        engine.commit(put(&engine, b"small", b"v")?).await?;
        engine.close().await?;
        assert!(
            !storage.list().await?.contains(&hint_name(1)),
            "small: no roll"
        );

        let engine = Bitcask::open(storage.clone(), Options::default(), ()).await?;
        let value = vec![7u8; 4096];
        for i in 0..(SEAL_ON_CLOSE / 4096 + 1) {
            engine
                .commit(put(&engine, format!("k{i}").as_bytes(), &value)?)
                .await?;
        }
        engine.close().await?;
        let files = storage.list().await?;
        assert!(
            files.contains(&hint_name(1)),
            "sealed and hinted: {files:?}"
        );

        let engine = Bitcask::open(storage, Options::default(), ()).await?;
        let at = engine.snapshot()?.version().seq();
        assert_eq!(engine.get(0, b"small", at).await?, Some(b"v".to_vec()));
        assert_eq!(engine.get(0, b"k0", at).await?, Some(value));
        engine.close().await
    }

    #[tokio::test]
    async fn a_read_that_loses_its_file_to_merge_looks_again() -> Result<()> {
        let engine = Bitcask::open(MemoryStorage::new(), Options::default(), ()).await?;
        engine.commit(put(&engine, b"k", b"old")?).await?;
        engine.commit(put(&engine, b"k", b"v")?).await?;
        let key = Key::new(0, b"k");
        let (loc, generation) = engine.lookup(|kd| kd.get(&key, u64::MAX));
        let loc = loc.expect("indexed");
        engine.merge().await?;
        // The old segment is gone: reading the old location alone fails...
        let mut ignore = |_: Option<&[u8]>| {};
        let read = engine.read_frame_with(0, b"k", &loc, &mut ignore).await;
        assert!(read.is_err());
        // ...but the read notices the merge and finds the version at its new place.
        let (moved, now) = engine.lookup(|kd| kd.get(&key, u64::MAX));
        assert_ne!(moved.map(|l| l.file()), Some(loc.file()));
        assert_ne!(now, generation);
        assert_eq!(
            engine.read_value(0, b"k", loc, generation).await?,
            Some(b"v".to_vec())
        );
        // A version merge dropped is reported as such.
        let (first, _) = engine.lookup(|kd| kd.exact(&key, 1));
        assert_eq!(first, None);
        let dropped = Loc::new(1, 0, loc.file(), 0, loc.len, false);
        let err = engine.read_value(0, b"k", dropped, generation).await.err();
        assert!(
            matches!(err, Some(Error::VersionNotFound { seq: 1, .. })),
            "{err:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn no_active_segment_means_read_only_and_names_the_operation() -> Result<()> {
        let options = Options::default().read_only(true);
        let engine = Bitcask::open(MemoryStorage::new(), options, ()).await?;
        assert!(
            engine.layout.lock().active.is_none(),
            "read-only view of nothing"
        );
        for what in ["commit", "merge"] {
            let err = engine.roll(Version::ZERO, what).await.err();
            assert!(
                matches!(err, Some(Error::ReadOnly(w)) if w == what),
                "{err:?}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn commits_are_one_append_and_never_span_segments() -> Result<()> {
        let storage = MemoryStorage::new();
        let options = Options::default().segment_size(300);
        let engine = Bitcask::open(storage.clone(), options, ()).await?;
        for i in 0..20u8 {
            let batch = put(&engine, &[i], &[i; 40])?.write(1, vec![i], Some(vec![i; 30]));
            engine.commit(batch).await?;
        }
        // Every segment replays as whole transactions, on its own.
        let layout_ids: Vec<u32> = engine.layout.lock().sealed.iter().map(|s| s.id).collect();
        assert!(layout_ids.len() >= 5);
        for id in layout_ids {
            let f = storage.open(&segment_name(id)).await?;
            let buf = kv_engine_kit::files::read_all(&f, "seg").await?;
            let end = txlog::replay(
                &buf,
                header::LEN,
                "seg",
                false,
                txlog::Follows::Above(0),
                |_| Ok(()),
            )?;
            assert_eq!(end.valid_len, buf.len() as u64);
            assert!(buf.len() <= 300 + header::LEN);
        }
        Ok(())
    }
}
