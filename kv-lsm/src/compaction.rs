//! Flushes, leveled compaction and merge: everything that rewrites tables.
//!
//! * **Flush**: the oldest frozen memtable becomes a level-0 table. The table is synced, then
//!   the manifest records it (and raises the WAL floor), then readers switch to it, and only
//!   then are the WAL files it covers deleted.
//! * **Compaction** (leveled): level 0 is compacted into level 1 when it holds
//!   [`L0_COMPACTION_TRIGGER`] tables; level `n >= 1` into `n + 1` when its bytes exceed its
//!   target (level 1: 8 × `memtable_size`, ×10 per level). The level with the highest
//!   `size / target` score goes first; a table with nothing below it moves down without a
//!   rewrite. Ordinary compaction keeps **every** version: versions stay readable until merge.
//! * **Merge**: a full compaction of every table into the last level that keeps, per key, all
//!   versions newer than the merge horizon and the newest one at or below it if it is a value
//!   (a removal there is dropped with everything older), like Bitcask's merge. It is also the
//!   blob garbage collector: blob files of which it keeps every record stay, the values it
//!   keeps from the others are written into new blob files (see `Inner::run`).
//!
//! Outputs are split near the target table size, but only between user keys, so each key has
//! all its versions of a level in one table (see [`crate::levels`]). Inputs are read in 1 MiB
//! chunks outside the block cache, entries go from input blocks to output blocks without being
//! copied in between, and outputs are appended 1 MiB at a time. Inputs are deleted once no
//! reader holds them ([`Inner::gc`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use kv_api::{Error, ProgressFn, Result, Storage};
use kv_engine_kit::verify::Meter;

use crate::blob::{BlobFile, BlobMeta, BlobRef, BlobWriter, blob_name};
use crate::engine::Inner;
use crate::iter::{MemCursor, Merger, Source};
use crate::key::{OwnedEntry, Seek};
use crate::levels::{LevelSet, NUM_LEVELS};
use crate::rtomb::{self, RangeTomb};
use crate::sstable::{Table, TableMeta, TableWriter};

/// Entries merged between two progress reports.
const PROGRESS_EVERY: u64 = 4096;

/// Level-0 tables that trigger a compaction into level 1.
pub(crate) const L0_COMPACTION_TRIGGER: usize = 4;
/// Entries copied from a frozen memtable per lock acquisition during a flush.
const FLUSH_BATCH: usize = 1024;
/// Sources of a compaction never include memtables.
const NO_MEMTABLES: [Arc<crate::memtable::Memtable>; 0] = [];

/// A compaction to run: input tables (with their levels) and where the output goes.
pub(crate) struct Plan<S: Storage> {
    inputs: Vec<(usize, Arc<Table<S>>)>,
    output_level: usize,
    /// Merge: what is kept of each key (its horizon is persisted); `None` keeps everything.
    keep: Option<kv_engine_kit::retention::KeepRule>,
    /// Move the single input down without rewriting it.
    trivial_move: bool,
    /// Merge: the range tombstones written into the outputs as per-key removals (every
    /// tombstone of a commit in the inputs), and the last commit in the inputs.
    tombs: Vec<RangeTomb>,
    merged_to: u64,
    /// Merge: the blob files of the inputs, whose kept values the outputs hold anew (those
    /// found wholly live by [`Inner::run`]'s first pass are taken out: they stay as they are).
    replaced_blobs: HashSet<u64>,
}

/// What a pass over a compaction's inputs does with blob references.
enum BlobPass<'a> {
    /// Copies them (compaction).
    Copy,
    /// Writes nothing; adds up the frame bytes each blob file still holds for a kept version
    /// (a merge's first pass).
    Count,
    /// Copies references into these blob files, and reads every other kept value out of its
    /// blob file to place it anew (a merge).
    Rewrite(&'a HashSet<u64>),
}

impl<S: Storage> Inner<S> {
    // Sizes from the tuning saturate: a knob set past what fits (`usize::MAX` for "no limit")
    // means an unbounded target, as it says, rather than an overflow.

    /// Blob files a merge writes are rolled past this size: 8 tables' worth, at least 64 MiB.
    fn blob_file_target(&self) -> u64 {
        self.target_file_size().saturating_mul(8).max(64 << 20)
    }

    fn target_file_size(&self) -> u64 {
        (self.tuning.memtable_size as u64).max((self.tuning.block_size as u64).saturating_mul(4))
    }

    fn level_target(&self, level: usize) -> u64 {
        let l1 = (self.tuning.memtable_size as u64)
            .max(1 << 10)
            .saturating_mul(8);
        // A power past u32::MAX would saturate as well.
        let exp = u32::try_from(level.saturating_sub(1)).unwrap_or(u32::MAX);
        l1.saturating_mul(10u64.saturating_pow(exp))
    }

    /// Flushes the oldest frozen memtable to a level-0 table; false if there was none.
    pub async fn flush_one(&self) -> Result<bool> {
        let _flush = self.flush_lock.lock().await;
        // After a storage failure the memtables may hold commits that never became durable:
        // leave them to the WAL replay of the next open rather than making them durable now.
        if self.pipeline.check_writable("flush").is_err() {
            return Ok(false);
        }
        let (mem, floor) = {
            let st = self.read_state();
            let Some(mem) = st.immutables.first() else {
                return Ok(false);
            };
            let next = st.immutables.get(1).unwrap_or(&st.active);
            (mem.clone(), next.first_wal())
        };
        let table = if mem.is_empty() {
            None
        } else {
            let id = self.alloc_id()?;
            let mut w = TableWriter::create(
                &self.storage,
                self.store,
                id,
                self.tuning.block_size,
                self.tuning.compression,
            )
            .await?;
            let mut cursor = MemCursor::with_batches(mem.clone(), FLUSH_BATCH, FLUSH_BATCH);
            cursor.seek(Seek::Start, false);
            let mut pace = Pace::default();
            // Large values go to one blob file beside the table, in key order.
            let mut blobs = Blobs::new(self, u64::MAX);
            let mut reference = Vec::new();
            while let Some(e) = cursor.current() {
                match e.value {
                    Some(v) if self.tuning.is_blob(v.len()) => {
                        blobs.put(e.ukey, e.seq, v, &mut reference).await?;
                        w.add_entry(e.ukey, e.seq, e.time_ms, Some(&reference), true)?;
                    }
                    _ => w.add_entry(e.ukey, e.seq, e.time_ms, e.value, false)?,
                }
                cursor.step(false);
                if w.should_drain() {
                    w.drain().await?;
                }
                pace.step().await;
            }
            let meta = w.finish().await?;
            let blob = blobs.finish().await?.pop();
            self.storage.sync().await?;
            Some((
                Arc::new(Table::new(meta, self.storage.clone(), self.store)),
                blob.map(|b| Arc::new(BlobFile::new(b, self.storage.clone(), self.store))),
            ))
        };

        let mut persisted = self.persisted.lock().await;
        let levels = {
            let st = self.read_state();
            match &table {
                Some((t, blob)) => st.levels.with_flushed(t.clone(), blob.clone()),
                None => (*st.levels).clone(),
            }
        };
        let last = mem.last_version();
        if last > persisted.last_flushed {
            persisted.last_flushed = last;
        }
        persisted.wal_floor = persisted.wal_floor.max(floor);
        self.write_manifest(&persisted, &levels, 0).await?;
        {
            let mut st = self.write_state();
            st.levels = Arc::new(levels);
            if st.immutables.first().is_some_and(|m| Arc::ptr_eq(m, &mem)) {
                st.immutables.remove(0);
            }
        }
        let floor = persisted.wal_floor;
        drop(persisted);
        self.work_done.notify_waiters();
        self.remove_old_wals(floor).await?;
        Ok(true)
    }

    /// Flushes every frozen memtable.
    pub async fn flush_all(&self) -> Result<()> {
        while self.flush_one().await? {}
        Ok(())
    }

    /// True if some level is past its trigger (asked by the native background tasks).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub fn needs_compaction(&self) -> bool {
        let levels = self.read_state().levels.clone();
        self.best_score(&levels)
            .is_some_and(|(_, score)| score >= 1.0)
    }

    fn best_score(&self, levels: &LevelSet<S>) -> Option<(usize, f64)> {
        let l0 = levels.level(0).len() as f64 / L0_COMPACTION_TRIGGER as f64;
        let deeper = (1..NUM_LEVELS - 1).map(|l| {
            (
                l,
                levels.level_bytes(l) as f64 / self.level_target(l) as f64,
            )
        });
        std::iter::once((0, l0))
            .chain(deeper)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    fn pick(&self, levels: &LevelSet<S>, pointers: &mut [Vec<u8>]) -> Option<Plan<S>> {
        let (level, score) = self.best_score(levels)?;
        if score < 1.0 {
            return None;
        }
        let inputs: Vec<Arc<Table<S>>> = if level == 0 {
            levels.level(0).to_vec()
        } else {
            // Round robin through the level's key space.
            let tables = levels.level(level);
            let pointer = pointers.get(level).cloned().unwrap_or_default();
            let t = tables
                .iter()
                .find(|t| t.meta.smallest.0 > pointer)
                .or_else(|| tables.first())?
                .clone();
            if let Some(p) = pointers.get_mut(level) {
                p.clone_from(&t.meta.largest.0);
            }
            vec![t]
        };
        let lo = inputs.iter().map(|t| t.meta.smallest.0.as_slice()).min()?;
        let hi = inputs.iter().map(|t| t.meta.largest.0.as_slice()).max()?;
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`best_score` picks a level below NUM_LEVELS - 1"
        )]
        let output_level = level + 1;
        let below = levels.overlapping(output_level, lo, hi);
        let trivial_move = level > 0 && below.is_empty();
        let mut all: Vec<(usize, Arc<Table<S>>)> = inputs.into_iter().map(|t| (level, t)).collect();
        all.extend(below.into_iter().map(|t| (output_level, t)));
        Some(Plan {
            inputs: all,
            output_level,
            keep: None,
            trivial_move,
            tombs: Vec::new(),
            merged_to: 0,
            replaced_blobs: HashSet::new(),
        })
    }

    /// Runs one compaction if a level needs one; false if none does.
    pub async fn compact_one(&self) -> Result<bool> {
        let mut pointers = self.compaction_lock.lock().await;
        if self.pipeline.check_writable("compaction").is_err() {
            return Ok(false);
        }
        let levels = self.read_state().levels.clone();
        let Some(plan) = self.pick(&levels, &mut pointers) else {
            return Ok(false);
        };
        drop(levels);
        self.run(plan, &|_| {}).await?;
        self.gc().await?;
        Ok(true)
    }

    /// Writes the merged inputs of `plan` into new tables and installs them.
    /// Reports the entries merged so far to `progress` (of the inputs' entries).
    async fn run(&self, mut plan: Plan<S>, progress: &ProgressFn<'_>) -> Result<()> {
        if plan.trivial_move {
            let tables: Vec<Arc<Table<S>>> = plan.inputs.iter().map(|(_, t)| t.clone()).collect();
            return self.install(&plan, tables, Vec::new()).await;
        }
        // The inputs as a level set of their own: one source per level-0 table and per level.
        let inputs = Arc::new(LevelSet::from_tables(plan.inputs.iter().cloned()));
        let mut created: Vec<String> = Vec::new();
        let total = plan.inputs.iter().map(|(_, t)| t.meta.entries).sum();
        // A merge over blob files first finds those whose every record is still kept: they
        // stay as they are (their references copied), only the others are rewritten. One more
        // pass over the tables (no blob file is read) to avoid rewriting live large values.
        let mut whole = HashSet::new();
        if plan.keep.is_some() && !plan.replaced_blobs.is_empty() {
            let sources = Source::all(NO_MEMTABLES, &inputs, &self.cache, true);
            let mut quiet = Meter::new(&|_| {}, "entries", total);
            let (_, _, live) = self
                .write_outputs(
                    sources,
                    (plan.keep.as_ref(), &plan.tombs),
                    BlobPass::Count,
                    &mut created,
                    &mut quiet,
                )
                .await?;
            let levels = self.read_state().levels.clone();
            whole = levels
                .blob_files()
                .filter(|b| plan.replaced_blobs.contains(&b.meta.id))
                .filter(|b| {
                    let records = b
                        .meta
                        .size
                        .saturating_sub(kv_engine_kit::header::LEN as u64);
                    live.get(&b.meta.id) == Some(&records)
                })
                .map(|b| b.meta.id)
                .collect();
            plan.replaced_blobs.retain(|id| !whole.contains(id));
        }
        let sources = Source::all(NO_MEMTABLES, &inputs, &self.cache, true);
        let mut meter = Meter::new(progress, "entries", total);
        let pass = if plan.keep.is_some() {
            BlobPass::Rewrite(&whole)
        } else {
            BlobPass::Copy
        };
        let outputs = match self
            .write_outputs(
                sources,
                (plan.keep.as_ref(), &plan.tombs),
                pass,
                &mut created,
                &mut meter,
            )
            .await
        {
            Ok(outputs) => outputs,
            Err(e) => {
                // Best effort: the files are orphans either way, deleted on the next open.
                for name in created {
                    let _ = self.storage.remove(&name).await;
                }
                return Err(e);
            }
        };
        self.storage.sync().await?;
        let (outputs, blobs, _) = outputs;
        let tables = outputs
            .into_iter()
            .map(|m| Arc::new(Table::new(m, self.storage.clone(), self.store)))
            .collect();
        let blobs = blobs
            .into_iter()
            .map(|m| Arc::new(BlobFile::new(m, self.storage.clone(), self.store)))
            .collect();
        self.install(&plan, tables, blobs).await
    }

    /// Writes the merged `sources` into tables of about the target size; `created` collects the
    /// names of the files made, for cleanup if this fails. What happens to blob references is
    /// `pass`'s: see [`BlobPass`]. The versions of each key pass
    /// `keep_rule` (a merge), after the removals the range tombstones `tombs` made are added
    /// to them (a merge turns the tombstones of its inputs into per-key removals, which the
    /// rule then drops at or below its horizon like any removal).
    async fn write_outputs(
        &self,
        sources: Vec<Source<S>>,
        (keep_rule, tombs): (Option<&kv_engine_kit::retention::KeepRule>, &[RangeTomb]),
        pass: BlobPass<'_>,
        created: &mut Vec<String>,
        meter: &mut Meter<'_, '_>,
    ) -> Result<(Vec<TableMeta>, Vec<BlobMeta>, HashMap<u64, u64>)> {
        // A merge resolves references against the blob files live now: compactions wait for
        // it, and flushes only add blob files of their own.
        let (rewrite, keep_blobs, live) = match pass {
            BlobPass::Copy => (None, HashSet::new(), None),
            BlobPass::Count => (None, HashSet::new(), Some(HashMap::new())),
            BlobPass::Rewrite(whole) => (
                Some((
                    self.read_state().levels.clone(),
                    Blobs::new(self, self.blob_file_target()),
                )),
                whole.clone(),
                None,
            ),
        };
        let mut out = Outputs {
            inner: self,
            target: self.target_file_size(),
            writer: None,
            outputs: Vec::new(),
            created,
            rewrite,
            keep_blobs,
            live,
            reference: Vec::new(),
            value: Vec::new(),
        };
        let mut merger = Merger::new(sources, Seek::Start, false).await?;
        let mut key: Vec<u8> = Vec::new();
        let mut rule = None;
        let (mut merged, mut reported) = (0u64, 0u64);
        let mut pace = Pace::default();
        let mut versions: Vec<OwnedEntry> = Vec::new();
        while let Some(e) = merger.current() {
            if self.closing.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            pace.step().await;
            if !tombs.is_empty() && tombs.iter().any(|t| t.covers(e.ukey)) {
                // Every version of the key, with the removals the tombstones made.
                versions.clear();
                let ukey = e.ukey.to_vec();
                while let Some(e) = merger.current() {
                    if e.ukey != ukey.as_slice() {
                        break;
                    }
                    if versions.last().is_none_or(|v| v.seq != e.seq) {
                        versions.push(e.to_owned_entry());
                    }
                    merger.next().await?;
                    merged = merged.saturating_add(1);
                }
                let asc: Vec<kv_api::Version> =
                    versions.iter().rev().map(OwnedEntry::version).collect();
                let all = rtomb::synthesize(&asc, tombs, &ukey, u64::MAX);
                let mut rule = keep_rule.map(|r| r.key(ukey.first().copied().unwrap_or(0)));
                for v in all.iter().rev() {
                    let (value, blob) = if v.is_removal() {
                        (None, false)
                    } else {
                        versions
                            .iter()
                            .find(|e| e.seq == v.seq())
                            .map_or((None, false), |e| (e.value.as_deref(), e.blob))
                    };
                    let keep = rule
                        .as_mut()
                        .is_none_or(|k| k.keep(v.seq(), v.time_ms(), value.is_some()));
                    if keep {
                        out.add(&ukey, v.seq(), v.time_ms(), value, blob).await?;
                    }
                }
                report(meter, merged, &mut reported);
                continue;
            }
            let keep = match keep_rule {
                None => true,
                Some(r) => {
                    // Versions of a key come newest first; the user key starts with its slot.
                    if e.ukey != key.as_slice() || rule.is_none() {
                        key.clear();
                        key.extend_from_slice(e.ukey);
                        rule = Some(r.key(e.ukey.first().copied().unwrap_or(0)));
                    }
                    rule.as_mut()
                        .is_none_or(|k| k.keep(e.seq, e.time_ms, e.value.is_some()))
                }
            };
            if keep {
                out.add(e.ukey, e.seq, e.time_ms, e.value, e.blob).await?;
            }
            merger.next().await?;
            merged = merged.saturating_add(1);
            report(meter, merged, &mut reported);
        }
        meter.add(merged.saturating_sub(reported));
        out.finish().await
    }

    /// Records the result of `plan` in the manifest, then switches readers to it.
    /// A merge's outputs come with their blob files (`blobs`), which replace those of its
    /// inputs (`plan.replaced_blobs`) in the same manifest write.
    async fn install(
        &self,
        plan: &Plan<S>,
        added: Vec<Arc<Table<S>>>,
        blobs: Vec<Arc<BlobFile<S>>>,
    ) -> Result<()> {
        let mut persisted = self.persisted.lock().await;
        let removed: HashSet<u64> = plan.inputs.iter().map(|(_, t)| t.meta.id).collect();
        let kept: HashSet<u64> = added.iter().map(|t| t.meta.id).collect();
        let (levels, replaced) = {
            let st = self.read_state();
            let replaced: Vec<Arc<BlobFile<S>>> = st
                .levels
                .blob_files()
                .filter(|b| plan.replaced_blobs.contains(&b.meta.id))
                .cloned()
                .collect();
            let levels = st
                .levels
                .with_compaction(&removed, plan.output_level, added)
                .with_blob_change(&plan.replaced_blobs, blobs);
            (levels, replaced)
        };
        if let Some(k) = &plan.keep {
            persisted.horizon = persisted.horizon.max(k.horizon());
        }
        self.write_manifest(&persisted, &levels, plan.merged_to)
            .await?;
        {
            // The tombstones the outputs hold as per-key removals go with the tables that
            // held what they removed: readers see both changes or neither.
            let mut st = self.write_state();
            st.levels = Arc::new(levels);
            if st.tombs.iter().any(|t| t.seq() <= plan.merged_to) {
                let left = st
                    .tombs
                    .iter()
                    .filter(|t| t.seq() > plan.merged_to)
                    .cloned()
                    .collect();
                st.tombs = Arc::new(left);
            }
        }
        drop(persisted);
        self.obsolete.lock().extend(
            plan.inputs
                .iter()
                .filter(|(_, t)| !kept.contains(&t.meta.id))
                .map(|(_, t)| t.clone()),
        );
        // Reachable from the views of readers that started before: deleted once none is left.
        self.obsolete_blobs.lock().extend(replaced);
        self.work_done.notify_waiters();
        Ok(())
    }

    /// Deletes compacted-away tables and merged-away blob files that no reader holds any
    /// more (a reader's view holds both through its level set).
    pub async fn gc(&self) -> Result<()> {
        let mut dead: Vec<String> = {
            let mut obsolete = self.obsolete.lock();
            let (dead, live): (Vec<_>, Vec<_>) =
                obsolete.drain(..).partition(|t| Arc::strong_count(t) == 1);
            *obsolete = live;
            dead.iter().map(|t| t.name()).collect()
        };
        {
            let mut obsolete = self.obsolete_blobs.lock();
            let (gone, live): (Vec<_>, Vec<_>) =
                obsolete.drain(..).partition(|b| Arc::strong_count(b) == 1);
            *obsolete = live;
            dead.extend(gone.iter().map(|b| b.name()));
        }
        for name in dead {
            self.storage.remove(&name).await?;
        }
        Ok(())
    }

    /// `Engine::merge`: see the module docs.
    pub async fn merge(&self, progress: &ProgressFn<'_>) -> Result<()> {
        self.pipeline.check_writable("merge")?;
        let _pointers = self.compaction_lock.lock().await;
        let horizon = {
            let _writer = self.pipeline.lock_writer().await;
            self.pipeline.check_writable("merge")?;
            let horizon = self.pipeline.retained_horizon();
            // Raised before anything is dropped, so `snapshot_at` below it fails from now on.
            self.pipeline.set_horizon(horizon);
            // The active memtable goes to a table if it holds writes, or commits with range
            // tombstones (which merge only once their commits are in tables).
            let flushed = self.persisted.lock().await.last_flushed.seq();
            let (active, tombs_unflushed) = {
                let st = self.read_state();
                let unflushed = st.tombs.last().is_some_and(|t| t.seq() > flushed);
                (st.active.clone(), unflushed)
            };
            if !active.is_empty() || tombs_unflushed {
                self.freeze().await.map_err(|e| self.pipeline.poison(e))?;
            }
            horizon
        };
        self.flush_all()
            .await
            .map_err(|e| self.pipeline.poison(e))?;
        // Flushes stop on a closed or poisoned store: then commits below the horizon may still
        // be in memtables only, and the merge must not run.
        self.pipeline.check_writable("merge")?;
        // The tables and the last commit in them, together (a flush changes both under
        // `persisted`): the tombstones of those commits are merged into the outputs.
        let (levels, merged_to, tombs) = {
            let persisted = self.persisted.lock().await;
            let st = self.read_state();
            let to = persisted.last_flushed.seq();
            let tombs: Vec<RangeTomb> =
                st.tombs.iter().filter(|t| t.seq() <= to).cloned().collect();
            (st.levels.clone(), to, tombs)
        };
        // Every blob file of the inputs: the merge rewrites what it keeps of them, but for
        // the files it keeps whole (`Inner::run` takes those out).
        let replaced_blobs = levels.blob_files().map(|b| b.meta.id).collect();
        let plan = Plan {
            inputs: levels.all().map(|(l, t)| (l, t.clone())).collect(),
            output_level: NUM_LEVELS - 1,
            keep: Some(kv_engine_kit::retention::KeepRule::new(
                horizon,
                self.pipeline.options(),
                self.pipeline.options().clock.now_ms(),
            )),
            trivial_move: false,
            tombs,
            merged_to,
            replaced_blobs,
        };
        drop(levels);
        self.run(plan, progress).await?;
        self.gc().await
    }
}

/// Reports the entries merged since the last report, every [`PROGRESS_EVERY`].
fn report(meter: &mut Meter<'_, '_>, merged: u64, reported: &mut u64) {
    let new = merged.saturating_sub(*reported);
    if new >= PROGRESS_EVERY {
        meter.add(new);
        *reported = merged;
    }
}

/// The tables a compaction writes, split near the target size between user keys.
struct Outputs<'a, S: Storage> {
    inner: &'a Inner<S>,
    target: u64,
    writer: Option<TableWriter<S::File>>,
    outputs: Vec<TableMeta>,
    created: &'a mut Vec<String>,
    /// Merge: the level set references are resolved against, and the new blob files.
    rewrite: Option<(Arc<LevelSet<S>>, Blobs<'a, S>)>,
    /// Merge: blob files kept as they are (references into them copied).
    keep_blobs: HashSet<u64>,
    /// A counting pass: frame bytes still referenced per blob file; nothing is written.
    live: Option<HashMap<u64, u64>>,
    /// Scratch: an encoded reference, a resolved value.
    reference: Vec<u8>,
    value: Vec<u8>,
}

impl<S: Storage> Outputs<'_, S> {
    /// Adds one entry (in merged order), starting a new table first if the current one is
    /// past the target and the entry starts a new key.
    async fn add(
        &mut self,
        ukey: &[u8],
        seq: u64,
        time_ms: u64,
        value: Option<&[u8]>,
        blob: bool,
    ) -> Result<()> {
        if let Some(live) = &mut self.live {
            if blob && let Some(r) = value.and_then(BlobRef::decode) {
                let n = live.entry(r.file).or_default();
                *n = n.saturating_add(r.len);
            }
            return Ok(());
        }
        // A merge places each value it keeps anew (but for references into blob files it
        // keeps); a compaction copies entries as they are.
        let kept_ref = blob
            && value
                .and_then(BlobRef::decode)
                .is_some_and(|r| self.keep_blobs.contains(&r.file));
        let (value, blob) = match (&mut self.rewrite, value) {
            (Some(_), Some(v)) if kept_ref => (Some(v), true),
            (Some((levels, blobs)), Some(v)) => {
                let v = if blob {
                    self.value = self.inner.resolve(levels, ukey, seq, v).await?;
                    self.value.as_slice()
                } else {
                    v
                };
                if self.inner.tuning.is_blob(v.len()) {
                    blobs.put(ukey, seq, v, &mut self.reference).await?;
                    self.created.append(&mut blobs.created);
                    (Some(self.reference.as_slice()), true)
                } else {
                    (Some(v), false)
                }
            }
            _ => (value, blob),
        };
        if let Some(w) = &self.writer
            && w.size() >= self.target
            && w.last_ukey() != Some(ukey)
            && let Some(w) = self.writer.take()
        {
            self.outputs.push(w.finish().await?);
        }
        let w = match &mut self.writer {
            Some(w) => w,
            None => {
                let inner = self.inner;
                let id = inner.alloc_id()?;
                self.created.push(crate::sstable::table_name(id));
                self.writer.insert(
                    TableWriter::create(
                        &inner.storage,
                        inner.store,
                        id,
                        inner.tuning.block_size,
                        inner.tuning.compression,
                    )
                    .await?,
                )
            }
        };
        w.add_entry(ukey, seq, time_ms, value, blob)?;
        if w.should_drain() {
            w.drain().await?;
        }
        Ok(())
    }

    /// Finishes the last table and blob file; returns every table and blob file written (and
    /// what a counting pass counted).
    async fn finish(mut self) -> Result<(Vec<TableMeta>, Vec<BlobMeta>, HashMap<u64, u64>)> {
        if let Some(w) = self.writer.take() {
            self.outputs.push(w.finish().await?);
        }
        let blobs = match self.rewrite.take() {
            Some((_, b)) => b.finish().await?,
            None => Vec::new(),
        };
        Ok((self.outputs, blobs, self.live.take().unwrap_or_default()))
    }
}

/// The blob files a flush or a merge writes: started on the first large value, rolled past
/// `target` bytes.
struct Blobs<'a, S: Storage> {
    inner: &'a Inner<S>,
    target: u64,
    writer: Option<BlobWriter<S::File>>,
    written: Vec<BlobMeta>,
    bytes: u64,
    /// Names of the files created (for cleanup after a failed merge).
    created: Vec<String>,
}

impl<'a, S: Storage> Blobs<'a, S> {
    fn new(inner: &'a Inner<S>, target: u64) -> Self {
        Blobs {
            inner,
            target,
            writer: None,
            written: Vec::new(),
            bytes: 0,
            created: Vec::new(),
        }
    }

    /// Writes version `seq` of `ukey` with `value`; its reference's bytes go to `reference`.
    async fn put(
        &mut self,
        ukey: &[u8],
        seq: u64,
        value: &[u8],
        reference: &mut Vec<u8>,
    ) -> Result<()> {
        if self.bytes >= self.target
            && let Some(w) = self.writer.take()
        {
            self.written.push(w.finish().await?);
            self.bytes = 0;
        }
        let w = match &mut self.writer {
            Some(w) => w,
            None => {
                let id = self.inner.alloc_id()?;
                self.created.push(blob_name(id));
                self.writer
                    .insert(BlobWriter::create(&self.inner.storage, self.inner.store, id).await?)
            }
        };
        let r: BlobRef = w.add(ukey, seq, value).await?;
        self.bytes = self.bytes.saturating_add(r.len);
        reference.clear();
        r.encode(reference);
        Ok(())
    }

    /// Finishes (syncs) the last file; every file written.
    async fn finish(mut self) -> Result<Vec<BlobMeta>> {
        if let Some(w) = self.writer.take() {
            self.written.push(w.finish().await?);
        }
        Ok(self.written)
    }
}

/// Entries a flush or a compaction handles between two yields to the executor: about 100 µs
/// of work, so that background work, which runs in tasks of the store's runtime, never holds
/// a worker thread for milliseconds (a ticker beside 64 committers saw 5 ms stalls, #12).
const YIELD_EVERY: u32 = 256;

/// Counts a loop's steps and yields every [`YIELD_EVERY`], natively. Not on wasm32, where a
/// yield is a trip through the browser's event loop (`setTimeout`, clamped to milliseconds),
/// far too slow for a loop, and background work runs inline anyway.
#[derive(Default)]
struct Pace(u32);

impl Pace {
    async fn step(&mut self) {
        self.0 = self.0.saturating_add(1);
        if self.0 >= YIELD_EVERY {
            self.0 = 0;
            #[cfg(not(target_arch = "wasm32"))]
            kv_api::yield_now().await;
        }
    }
}
