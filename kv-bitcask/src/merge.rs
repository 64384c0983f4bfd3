//! `merge`: rewrite what must stay readable into new merged segments, switch the manifest,
//! delete the old segments.
//!
//! 1. Under the writer lock: roll the active segment, so every older record is in a sealed
//!    segment (the *sealed set*); fix the horizon `h`. Commits then continue into the new
//!    active segment while the merge runs.
//! 2. Without the lock: walk the keydir in key order; for every key keep its sealed versions
//!    above `h` and its newest version at or below `h` if it is a value (see
//!    [`MergeRule`]), and write them as committed records into new merged segments (rolled
//!    at the segment size) with hint files; sync them.
//! 3. Under the writer lock: write `META` naming the merged segments first, then the segments
//!    rolled since step 1; point the keydir at the new records; raise the horizon.
//! 4. Delete the old segments and their hints.
//!
//! A crash before `META` is renamed leaves the old manifest (the new files are unlisted and
//! deleted on open); after it, the new one (the old files are unlisted and deleted on open).

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use kv_api::{Error, ProgressFn, Result, Storage, StorageFile};
use kv_engine_kit::verify::Meter;

use crate::engine::Bitcask;
use crate::hint::{self, Last};
use crate::key::Key;
use crate::keydir::{Loc, MergeRule};
use crate::layout::{SegFile, SegInfo};
use crate::merged;
use crate::read::{decode_record, frame_in, joined_read, span_len};
use crate::segment::{hint_name, segment_header, segment_name};
use kv_engine_kit::header;

/// Keys visited per keydir read lock.
const KEYS_PER_BATCH: usize = 4096;
/// Merge output is appended in chunks of about this size.
const WRITE_CHUNK: usize = 1 << 20;
/// Reads of nearby records are joined if the gap between them is at most this (about what a
/// separate read costs; keys written in key order are read in long runs)...
const READ_GAP: u64 = 4 << 10;
/// ...and the joined read at most this long.
const READ_SPAN: u64 = 1 << 20;

/// A merged segment being written.
struct OutSegment<F> {
    id: u32,
    file: F,
    flushed: u64,
    buf: Vec<u8>,
    hint: Vec<(Key, Loc)>,
    last: Last,
}

impl<F> OutSegment<F> {
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "bytes written to one file: a u64 of them cannot wrap"
    )]
    fn len(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }
}

/// The merged segments written so far.
struct MergeOutput<'e, S: Storage> {
    engine: &'e Bitcask<S>,
    current: Option<OutSegment<S::File>>,
    done: Vec<(SegInfo, S::File)>,
    created: Vec<u32>,
    /// The kept versions at their new places, in the order the keydir walk produced them.
    moved: Vec<Loc>,
}

impl<'e, S: Storage> MergeOutput<'e, S> {
    fn new(engine: &'e Bitcask<S>) -> Self {
        MergeOutput {
            engine,
            current: None,
            done: Vec::new(),
            created: Vec::new(),
            moved: Vec::new(),
        }
    }

    /// Adds version `old` of `key` (`slot byte + key`) with its value.
    async fn add(&mut self, key: &Key, old: &Loc, value: Option<&[u8]>) -> Result<()> {
        let Some((&slot, k)) = key.split_first() else {
            return Err(Error::corruption("keydir", 0, "empty keydir key"));
        };
        let Some(record_len) = merged::frame_len(k.len(), value.map_or(0, <[u8]>::len)) else {
            return Err(Error::corruption(
                segment_name(old.file()),
                old.offset,
                "record too long to rewrite",
            ));
        };
        let segment_size = self.engine.pipeline.options().segment_size;
        if self.current.as_ref().is_some_and(|c| {
            c.len() > header::LEN as u64 && c.len().saturating_add(record_len as u64) > segment_size
        }) {
            self.seal().await?;
        }
        let cur = match &mut self.current {
            Some(cur) => cur,
            None => {
                let id = self.engine.layout.lock().alloc_id()?;
                self.created.push(id);
                let file = self.engine.storage.create(&segment_name(id)).await?;
                let mut buf = Vec::with_capacity(WRITE_CHUNK.saturating_add(record_len));
                segment_header(self.engine.store, id, true).encode(&mut buf);
                self.current.insert(OutSegment {
                    id,
                    file,
                    flushed: 0,
                    buf,
                    hint: Vec::new(),
                    last: (0, 0),
                })
            }
        };
        let at = merged::encode(&mut cur.buf, old.seq, old.time_ms, slot, k, value);
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "bytes written to one file: a u64 of them cannot wrap"
        )]
        let loc = old.moved(cur.id, cur.flushed + at.offset, at.len);
        cur.hint.push((key.clone(), loc));
        cur.last = cur.last.max((old.seq, old.time_ms));
        self.moved.push(loc);
        if cur.buf.len() >= WRITE_CHUNK {
            Self::flush(cur).await?;
        }
        Ok(())
    }

    async fn flush(cur: &mut OutSegment<S::File>) -> Result<()> {
        if cur.buf.is_empty() {
            return Ok(());
        }
        let at = cur.file.append(&cur.buf).await?;
        if at != cur.flushed {
            return Err(Error::corruption(
                segment_name(cur.id),
                at,
                format!("merge output appended at {at}, expected {}", cur.flushed),
            ));
        }
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "bytes written to one file: a u64 of them cannot wrap"
        )]
        {
            cur.flushed += cur.buf.len() as u64;
        }
        cur.buf.clear();
        Ok(())
    }

    /// Finishes the current segment: all of it synced, then its hint.
    async fn seal(&mut self) -> Result<()> {
        let Some(mut cur) = self.current.take() else {
            return Ok(());
        };
        Self::flush(&mut cur).await?;
        cur.file.sync().await?;
        let hint =
            hint::encode_yielding(self.engine.store, cur.id, cur.flushed, cur.last, &cur.hint)
                .await;
        self.engine.write_hint(cur.id, &hint).await;
        let info = SegInfo {
            id: cur.id,
            merged: true,
            len: cur.flushed,
        };
        self.done.push((info, cur.file));
        // As a roll does (`Bitcask::roll`): a full segment's entries and hint are MiBs.
        kv_api::drop_off_executor((hint, cur.hint));
        Ok(())
    }

    /// Removes every file written (after a failure, before the manifest names them).
    async fn discard(self) {
        for id in &self.created {
            let _ = self.engine.storage.remove(&segment_name(*id)).await;
            let _ = self.engine.storage.remove(&hint_name(*id)).await;
        }
    }
}

impl<S: Storage> Bitcask<S> {
    /// Reads the frames at `locs`, joining reads of nearby records. Returns them in order.
    async fn read_frames(&self, locs: &[&Loc]) -> Result<Vec<Vec<u8>>> {
        let mut order: Vec<(usize, &Loc)> = locs.iter().copied().enumerate().collect();
        order.sort_by_key(|(_, l)| (l.file(), l.offset));
        let mut frames = vec![Vec::new(); locs.len()];
        let mut rest = order.as_slice();
        while let Some(&(_, first)) = rest.first() {
            let (file_id, start) = (first.file(), first.offset);
            let (n, end) = joined_read(rest.iter().map(|(_, l)| *l), READ_GAP, READ_SPAN)?;
            let (group, after) = rest.split_at(n);
            rest = after;
            let file = self
                .handles
                .read()
                .get(&file_id)
                .map(|s| s.file.clone())
                .ok_or_else(|| {
                    Error::corruption(segment_name(file_id), start, "segment is not open")
                })?;
            let span = file.read_at(start, span_len(file_id, start, end)?).await?;
            for &(k, l) in group {
                let frame = frame_in(&span, start, l)?;
                if let Some(out) = frames.get_mut(k) {
                    *out = frame.to_vec();
                }
            }
        }
        Ok(frames)
    }

    /// Step 2: writes the kept versions of the sealed set into `out`.
    async fn rewrite(
        &self,
        rule: &MergeRule<'_>,
        out: &mut MergeOutput<'_, S>,
        meter: &mut Meter<'_, '_>,
    ) -> Result<()> {
        let mut cursor: Option<Key> = None;
        loop {
            let (batch, last) =
                self.keydir
                    .read()
                    .merge_batch(cursor.as_deref(), rule, KEYS_PER_BATCH);
            let locs: Vec<&Loc> = batch.iter().map(|(_, l)| l).collect();
            let frames = self.read_frames(&locs).await?;
            for ((key, loc), frame) in batch.iter().zip(&frames) {
                let Some((&slot, k)) = key.split_first() else {
                    return Err(Error::corruption("keydir", 0, "empty keydir key"));
                };
                let value = decode_record(frame, slot, k, loc)?;
                out.add(key, loc, value).await?;
            }
            meter.add(locs.iter().map(|l| u64::from(l.len)).sum());
            match last {
                Some(k) => cursor = Some(k),
                None => return Ok(()),
            }
        }
    }

    /// The whole merge: see the module docs.
    pub(crate) async fn merge_segments(&self, progress: &ProgressFn<'_>) -> Result<()> {
        self.pipeline.check_writable("merge")?;
        let _one_merge = self.merging.lock().await;

        // 1. Seal everything written so far and fix the horizon.
        let (sealed, horizon) = {
            let state = self.pipeline.lock_writer().await;
            self.pipeline.check_writable("merge")?;
            let active_len = self.layout.lock().active.as_ref().map_or(0, |a| a.len);
            if active_len > 0 {
                self.roll(state.last(), "merge")
                    .await
                    .map_err(|e| self.pipeline.poison(e))?;
            }
            // Raise the horizon before reading the snapshot pins a second time: a
            // `snapshot_at` that passed the old horizon has pinned by then, and one that comes
            // later is refused. So no open view is older than `h`.
            let first = self.pipeline.retained_horizon();
            self.pipeline.set_horizon(first);
            let h = first.min(self.pipeline.retained_horizon());
            let sealed: HashSet<u32> = self.layout.lock().sealed.iter().map(|s| s.id).collect();
            (sealed, h)
        };
        if sealed.is_empty() {
            return Ok(());
        }
        let options = self.pipeline.options();
        let rule = MergeRule {
            sealed: &sealed,
            keep: kv_engine_kit::retention::KeepRule::new(horizon, options, options.clock.now_ms()),
        };
        // Progress: bytes of the kept records rewritten, of the sealed set's bytes.
        let input = self.layout.lock().sealed.iter().map(|s| s.len).sum();
        let mut meter = Meter::new(progress, "bytes", input);

        // 2. Rewrite.
        let mut out = MergeOutput::new(self);
        let written = match self.rewrite(&rule, &mut out, &mut meter).await {
            Ok(()) => out.seal().await,
            Err(e) => Err(e),
        };
        let written = match written {
            Ok(()) => self.storage.sync().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            out.discard().await;
            return Err(e);
        }

        // 3. Switch.
        let state = self.pipeline.lock_writer().await;
        if let Err(e) = self.pipeline.check_writable("merge") {
            drop(state);
            out.discard().await;
            return Err(e);
        }
        let merged: Vec<SegInfo> = out.done.iter().map(|(info, _)| *info).collect();
        let (meta, new_sealed) = {
            let layout = self.layout.lock();
            let mut new_sealed = merged.clone();
            new_sealed.extend(layout.sealed.iter().filter(|s| !sealed.contains(&s.id)));
            let active = layout.active.as_ref().map_or(0, |a| a.id);
            let meta = layout.meta_with(&new_sealed, active, self.pipeline.horizon(), state.last());
            (meta, new_sealed)
        };
        {
            let mut handles = self.handles.write();
            for (info, file) in &out.done {
                handles.insert(info.id, SegFile::new(file.clone(), info.len));
            }
        }
        if let Err(e) = meta.write(&self.storage, self.store).await {
            // Which manifest is durable is unknown now: keep every file, refuse writes, and
            // let reopening sort it out.
            return Err(self.pipeline.poison(e));
        }
        {
            let mut layout = self.layout.lock();
            let mut kd = self.keydir.write();
            if let Err(reason) = kd.apply_merge(&rule, &out.moved) {
                return Err(self.pipeline.poison(Error::corruption("keydir", 0, reason)));
            }
            self.generation.fetch_add(1, Ordering::AcqRel);
            layout.sealed = new_sealed;
        }
        drop(state);

        // 4. Delete the old files. Failures leave garbage that the next open removes.
        let gone: Vec<(u32, u64)> = {
            let mut handles = self.handles.write();
            sealed
                .iter()
                .filter_map(|id| handles.remove(id).map(|s| (*id, s.readable())))
                .collect()
        };
        for (id, len) in gone {
            self.pages.forget(id, len);
        }
        for id in &sealed {
            let _ = self.storage.remove(&segment_name(*id)).await;
            let _ = self.storage.remove(&hint_name(*id)).await;
        }
        let _ = self.storage.sync().await;
        meter.finish();
        Ok(())
    }
}
