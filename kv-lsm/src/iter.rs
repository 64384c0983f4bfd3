//! Iterators: one cursor per source (memtable, table, level of tables) and the merging
//! iterator over them, in either direction.
//!
//! Every cursor is positioned once with a [`Seek`] and then stands on an entry, which it lends
//! out as an [`EntryRef`] (`current`) until it is moved (`step`): nothing is copied on the
//! way, so a scan copies only the entries it returns and a compaction copies entries straight
//! from input blocks into its output. Table cursors decode the restart interval they stand in
//! into reused buffers ([`Run`]; forward, only as far as they get); a step inside the loaded
//! block is synchronous ([`Merger::advance_sync`]), only a step into another block awaits I/O.
//! Each source is positioned once per scan, whatever the scan's length.
//!
//! The [`Merger`] yields the smallest current entry of its sources (largest in reverse): every
//! version of every key, which [`Visible`] reduces to what one read sees and compactions copy as
//! they are. Readers' table cursors go through the block cache; compactions and `stats` read
//! tables sequentially in large chunks outside it.

use std::sync::Arc;

use kv_api::{Error, Result, Storage};

use crate::cache::BlockCache;
use crate::key::{EntryRef, Seek, cmp_ikey, prefix};
use crate::levels::{LevelSet, NUM_LEVELS};
use crate::memtable::{MemBatch, Memtable, ReadFrom};
use crate::sstable::Table;
use crate::sstable::block::{Block, Run};
use crate::sstable::table::{Readahead, TableReader};

/// Entries the first batch read of a memtable cursor copies; later batches double up to
/// [`MEM_BATCH_MAX`]. A scan mostly reads a few entries of the memtable (its share of the
/// keys), so it copies about twice what it uses; a long scan still takes few locks.
const MEM_BATCH_FIRST: usize = 2;
const MEM_BATCH_MAX: usize = 128;

/// A cursor over a memtable, copying it out in batches (see [`crate::memtable`]).
pub(crate) struct MemCursor {
    mem: Arc<Memtable>,
    batch: MemBatch,
    pos: usize,
    next_size: usize,
    max_size: usize,
    /// Internal key of the last entry of the batch, where the next batch starts.
    resume: Vec<u8>,
    resume_seq: u64,
}

impl MemCursor {
    /// A cursor over `mem`, not positioned yet.
    pub fn new(mem: Arc<Memtable>) -> Self {
        Self::with_batches(mem, MEM_BATCH_FIRST, MEM_BATCH_MAX)
    }

    /// A cursor whose batches start at `first` entries and grow up to `max`.
    pub fn with_batches(mem: Arc<Memtable>, first: usize, max: usize) -> Self {
        MemCursor {
            mem,
            batch: MemBatch::default(),
            pos: 0,
            next_size: first.max(1),
            max_size: max.max(first).max(1),
            resume: Vec::new(),
            resume_seq: 0,
        }
    }

    fn read(&mut self, from: ReadFrom<'_>, reverse: bool) {
        let size = self.next_size;
        self.next_size = (size * 2).min(self.max_size);
        self.mem.read_batch(from, reverse, size, &mut self.batch);
        self.pos = 0;
    }

    /// Positions the cursor on the first entry after `seek` (before it, in reverse).
    pub fn seek(&mut self, seek: Seek<'_>, reverse: bool) {
        self.read(ReadFrom::Seek(seek), reverse);
    }

    /// The entry the cursor stands on.
    pub fn current(&self) -> Option<EntryRef<'_>> {
        self.batch.get(self.pos)
    }

    /// Moves to the next entry in the cursor's direction.
    pub fn step(&mut self, reverse: bool) {
        self.pos += 1;
        if self.pos < self.batch.len() || !self.batch.more() {
            return;
        }
        let Some(last) = self.batch.get(self.batch.len().wrapping_sub(1)) else {
            return;
        };
        self.resume.clear();
        self.resume.extend_from_slice(last.ukey);
        self.resume_seq = last.seq;
        let resume = std::mem::take(&mut self.resume);
        self.read(ReadFrom::After(&resume, self.resume_seq), reverse);
        self.resume = resume;
    }
}

/// How a table cursor reads blocks.
enum Reads {
    /// Through the block cache (reads).
    Cached,
    /// In large sequential chunks, bypassing the cache (compactions, stats).
    Sequential(Readahead),
}

/// A cursor over one table: the block it stands in, one decoded restart interval (`run`) of it,
/// and a position in that interval.
pub(crate) struct TableCursor<S: Storage> {
    table: Arc<Table<S>>,
    reader: Option<Arc<TableReader<S::File>>>,
    cache: Arc<BlockCache>,
    reads: Reads,
    block_idx: usize,
    block: Option<Arc<Block>>,
    run_idx: usize,
    run: Run,
    /// The previous run while a neighbour is decoded (to check order across the boundary).
    spare: Run,
    pos: usize,
    valid: bool,
}

impl<S: Storage> TableCursor<S> {
    /// A cursor over `table`, not positioned yet; `sequential`: a compaction's or a full
    /// pass's reads, in large chunks and outside the cache, so it neither pays a syscall per
    /// block nor evicts the blocks readers use.
    pub fn new(table: Arc<Table<S>>, cache: Arc<BlockCache>, sequential: bool) -> Self {
        TableCursor {
            table,
            reader: None,
            cache,
            reads: if sequential {
                Reads::Sequential(Readahead::default())
            } else {
                Reads::Cached
            },
            block_idx: 0,
            block: None,
            run_idx: 0,
            run: Run::default(),
            spare: Run::default(),
            pos: 0,
            valid: false,
        }
    }

    /// Switches to another table, keeping the buffers. Not positioned.
    fn set_table(&mut self, table: Arc<Table<S>>) {
        self.table = table;
        self.reader = None;
        self.block = None;
        self.valid = false;
        if let Reads::Sequential(ra) = &mut self.reads {
            *ra = Readahead::default();
        }
    }

    async fn reader(&mut self) -> Result<Arc<TableReader<S::File>>> {
        if let Some(r) = &self.reader {
            return Ok(r.clone());
        }
        let r = self.table.reader().await?;
        self.reader = Some(r.clone());
        Ok(r)
    }

    /// Loads block `i` (replacing the current one).
    async fn load(&mut self, reader: &TableReader<S::File>, i: usize) -> Result<Arc<Block>> {
        let block = match &mut self.reads {
            Reads::Cached => reader.block(i, &self.cache).await?,
            Reads::Sequential(ra) => reader.block_sequential(i, &self.cache, ra).await?,
        };
        self.block_idx = i;
        self.block = Some(block.clone());
        Ok(block)
    }

    /// Makes interval `r` of `block` the current run: decoded whole in reverse, up to its first
    /// entry forward. `check`: the run follows the current one in the direction, and their
    /// order across the boundary is checked.
    fn enter_run(
        &mut self,
        block: &Block,
        r: usize,
        reverse: bool,
        check: bool,
        file: &str,
    ) -> Result<()> {
        self.spare.start(block, file, r)?;
        if reverse {
            while self.spare.decode_next(block, file)? {}
        } else {
            self.spare.decode_next(block, file)?;
        }
        if check {
            let (first, second) = if reverse {
                (
                    self.spare.ikey(self.spare.len().wrapping_sub(1)),
                    self.run.ikey(0),
                )
            } else {
                (
                    self.run.ikey(self.run.len().wrapping_sub(1)),
                    self.spare.ikey(0),
                )
            };
            if let (Some((a, aseq)), Some((b, bseq))) = (first, second)
                && cmp_ikey(a, aseq, b, bseq).is_ge()
            {
                return Err(Error::corruption(
                    file,
                    block.offset(),
                    "entries out of order across restart intervals",
                ));
            }
        }
        std::mem::swap(&mut self.run, &mut self.spare);
        self.run_idx = r;
        self.pos = if reverse {
            self.run.len().saturating_sub(1)
        } else {
            0
        };
        Ok(())
    }

    /// Positions the cursor on the first entry after `seek` (the last before it, in reverse).
    pub async fn seek(&mut self, seek: Seek<'_>, reverse: bool) -> Result<()> {
        self.valid = false;
        let reader = self.reader().await?;
        let before = |u: &[u8], s: u64| seek.is_before(u, s);
        // The first block whose last entry is not before the position.
        let b = reader.block_for(seek);
        if b >= reader.blocks() {
            if reverse {
                return self.enter_block_back(&reader, reader.blocks(), false).await;
            }
            return Ok(());
        }
        let block = self.load(&reader, b).await?;
        let lo = block.restarts_before(reader.name(), before)?;
        if reverse {
            let Some(r) = lo.checked_sub(1) else {
                // Nothing of this block is before the position: the last entry of the
                // previous block is.
                return self.enter_block_back(&reader, b, false).await;
            };
            self.enter_run(&block, r, true, false, reader.name())?;
            match self.run.partition(before).checked_sub(1) {
                Some(pos) => {
                    self.pos = pos;
                    self.valid = true;
                    Ok(())
                }
                None => self.enter_block_back(&reader, b, false).await,
            }
        } else {
            let r = lo.saturating_sub(1);
            self.run.start(&block, reader.name(), r)?;
            self.run_idx = r;
            self.pos = self.run.decode_until(&block, reader.name(), before)?;
            self.valid = true;
            if self.pos >= self.run.len() {
                // The interval ends before the position: the next one starts after it.
                self.step(false).await?;
            }
            Ok(())
        }
    }

    /// Stands on the last entry of the last non-empty block before block `b`.
    async fn enter_block_back(
        &mut self,
        reader: &TableReader<S::File>,
        mut b: usize,
        check: bool,
    ) -> Result<()> {
        loop {
            let Some(prev) = b.checked_sub(1) else {
                self.valid = false;
                return Ok(());
            };
            b = prev;
            let block = self.load(reader, b).await?;
            if let Some(r) = block.runs().checked_sub(1) {
                self.enter_run(&block, r, true, check, reader.name())?;
                self.valid = true;
                return Ok(());
            }
        }
    }

    /// The entry the cursor stands on.
    pub fn current(&self) -> Option<EntryRef<'_>> {
        if !self.valid {
            return None;
        }
        self.run.get(self.pos, self.block.as_deref()?)
    }

    /// Moves to the next entry in the direction if it is in the loaded block (decoding as
    /// needed); false if it is in another block (then call [`TableCursor::step`]).
    pub fn step_in_block(&mut self, reverse: bool) -> Result<bool> {
        if !self.valid {
            return Ok(true);
        }
        if reverse {
            if let Some(p) = self.pos.checked_sub(1) {
                self.pos = p;
                return Ok(true);
            }
        } else if self.pos + 1 < self.run.len() {
            self.pos += 1;
            return Ok(true);
        }
        if !reverse
            && let (Some(block), Some(reader)) = (self.block.as_deref(), self.reader.as_deref())
            && self.run.decode_next(block, reader.name())?
        {
            self.pos += 1;
            return Ok(true);
        }
        let (Some(block), Some(reader)) = (self.block.clone(), self.reader.clone()) else {
            return Ok(false);
        };
        let next_run = if reverse {
            self.run_idx.checked_sub(1)
        } else {
            Some(self.run_idx + 1).filter(|r| *r < block.runs())
        };
        let Some(r) = next_run else {
            return Ok(false);
        };
        self.enter_run(&block, r, reverse, true, reader.name())?;
        Ok(true)
    }

    /// Moves to the next entry in the direction.
    pub async fn step(&mut self, reverse: bool) -> Result<()> {
        if self.step_in_block(reverse)? {
            return Ok(());
        }
        let reader = self.reader().await?;
        if reverse {
            return self.enter_block_back(&reader, self.block_idx, true).await;
        }
        let mut b = self.block_idx;
        loop {
            b += 1;
            if b >= reader.blocks() {
                self.valid = false;
                return Ok(());
            }
            let block = self.load(&reader, b).await?;
            if block.runs() > 0 {
                self.enter_run(&block, 0, false, true, reader.name())?;
                return Ok(());
            }
        }
    }
}

/// A cursor over the tables of one level ≥ 1: sorted, non-overlapping, read one after another.
pub(crate) struct LevelCursor<S: Storage> {
    levels: Arc<LevelSet<S>>,
    level: usize,
    cache: Arc<BlockCache>,
    sequential: bool,
    idx: usize,
    /// The cursor of table `idx` (`None` before the first seek or past the tables); moving to
    /// another table reuses it and its buffers.
    cur: Option<TableCursor<S>>,
}

impl<S: Storage> LevelCursor<S> {
    /// A cursor over level `level` of `levels`.
    pub fn new(
        levels: Arc<LevelSet<S>>,
        level: usize,
        cache: Arc<BlockCache>,
        sequential: bool,
    ) -> Self {
        LevelCursor {
            levels,
            level,
            cache,
            sequential,
            idx: 0,
            cur: None,
        }
    }

    /// Opens table `idx` positioned at `seek`; false if there is no such table.
    async fn open(&mut self, idx: usize, seek: Seek<'_>, reverse: bool) -> Result<bool> {
        self.idx = idx;
        let Some(t) = self.levels.level(self.level).get(idx).cloned() else {
            if let Some(c) = &mut self.cur {
                c.valid = false;
            }
            return Ok(false);
        };
        let cur = match &mut self.cur {
            Some(c) => {
                c.set_table(t);
                c
            }
            None => self
                .cur
                .insert(TableCursor::new(t, self.cache.clone(), self.sequential)),
        };
        cur.seek(seek, reverse).await?;
        Ok(cur.valid)
    }

    fn invalidate(&mut self) {
        if let Some(c) = &mut self.cur {
            c.valid = false;
        }
    }

    async fn seek(&mut self, seek: Seek<'_>, reverse: bool) -> Result<()> {
        let tables = self.levels.level(self.level);
        // The first table whose last entry is not before the position.
        let i = tables.partition_point(|t| seek.is_before(&t.meta.largest.0, t.meta.largest.1));
        let n = tables.len();
        self.invalidate();
        if reverse {
            if i < n && self.open(i, seek, true).await? {
                return Ok(());
            }
            self.back_from(i).await
        } else {
            if i < n && !self.open(i, seek, false).await? {
                self.forward_from(i + 1).await?;
            }
            Ok(())
        }
    }

    /// Stands on the first entry of the first non-empty table from `i` on.
    async fn forward_from(&mut self, mut i: usize) -> Result<()> {
        while i < self.levels.level(self.level).len() {
            if self.open(i, Seek::Start, false).await? {
                return Ok(());
            }
            i += 1;
        }
        self.invalidate();
        Ok(())
    }

    /// Stands on the last entry of the last non-empty table before `i`.
    async fn back_from(&mut self, mut i: usize) -> Result<()> {
        while let Some(prev) = i.checked_sub(1) {
            i = prev;
            if self.open(i, Seek::End, true).await? {
                return Ok(());
            }
        }
        self.invalidate();
        Ok(())
    }

    fn current(&self) -> Option<EntryRef<'_>> {
        self.cur.as_ref()?.current()
    }

    fn step_in_block(&mut self, reverse: bool) -> Result<bool> {
        match &mut self.cur {
            Some(c) => c.step_in_block(reverse),
            None => Ok(true),
        }
    }

    async fn step(&mut self, reverse: bool) -> Result<()> {
        let Some(c) = &mut self.cur else {
            return Ok(());
        };
        if !c.valid {
            return Ok(());
        }
        c.step(reverse).await?;
        if c.valid {
            return Ok(());
        }
        if reverse {
            self.back_from(self.idx).await
        } else {
            self.forward_from(self.idx + 1).await
        }
    }
}

/// One input of a [`Merger`].
pub(crate) enum Source<S: Storage> {
    /// A memtable.
    Mem(MemCursor),
    /// One table (level 0, where tables overlap).
    Table(TableCursor<S>),
    /// One level of non-overlapping tables.
    Level(LevelCursor<S>),
}

impl<S: Storage> Source<S> {
    /// One source per memtable (newest first), per level-0 table and per deeper level of
    /// `levels`; `sequential`: read tables in large chunks outside the cache.
    pub fn all(
        mems: impl IntoIterator<Item = Arc<Memtable>>,
        levels: &Arc<LevelSet<S>>,
        cache: &Arc<BlockCache>,
        sequential: bool,
    ) -> Vec<Source<S>> {
        let mems = mems.into_iter();
        let mut sources: Vec<Source<S>> =
            Vec::with_capacity(mems.size_hint().0 + levels.level(0).len() + NUM_LEVELS);
        sources.extend(mems.map(|m| Source::Mem(MemCursor::new(m))));
        for t in levels.level(0) {
            sources.push(Source::Table(TableCursor::new(
                t.clone(),
                cache.clone(),
                sequential,
            )));
        }
        for level in 1..NUM_LEVELS {
            if !levels.level(level).is_empty() {
                sources.push(Source::Level(LevelCursor::new(
                    levels.clone(),
                    level,
                    cache.clone(),
                    sequential,
                )));
            }
        }
        sources
    }

    async fn seek(&mut self, seek: Seek<'_>, reverse: bool) -> Result<()> {
        match self {
            Source::Mem(m) => m.seek(seek, reverse),
            Source::Table(t) => t.seek(seek, reverse).await?,
            Source::Level(l) => l.seek(seek, reverse).await?,
        }
        Ok(())
    }

    fn current(&self) -> Option<EntryRef<'_>> {
        match self {
            Source::Mem(m) => m.current(),
            Source::Table(t) => t.current(),
            Source::Level(l) => l.current(),
        }
    }

    /// Steps without I/O if possible; false if [`Source::step`] must do it.
    fn step_sync(&mut self, reverse: bool) -> Result<bool> {
        match self {
            Source::Mem(m) => {
                m.step(reverse);
                Ok(true)
            }
            Source::Table(t) => t.step_in_block(reverse),
            Source::Level(l) => l.step_in_block(reverse),
        }
    }

    async fn step(&mut self, reverse: bool) -> Result<()> {
        match self {
            Source::Mem(m) => m.step(reverse),
            Source::Table(t) => t.step(reverse).await?,
            Source::Level(l) => l.step(reverse).await?,
        }
        Ok(())
    }
}

/// Merges sources into one stream of every entry, in internal key order (or its reverse).
pub(crate) struct Merger<S: Storage> {
    sources: Vec<Source<S>>,
    /// The sources standing on an entry, ordered by that entry (the next one out first), with
    /// the [`prefix`] of its key. A step changes only the first source's entry, which then
    /// sinks to its place: usually an integer comparison or two, not a key comparison per
    /// source.
    order: Vec<(u64, usize)>,
    reverse: bool,
}

impl<S: Storage> Merger<S> {
    /// Positions every source at `seek`.
    pub async fn new(mut sources: Vec<Source<S>>, seek: Seek<'_>, reverse: bool) -> Result<Self> {
        for s in &mut sources {
            s.seek(seek, reverse).await?;
        }
        let mut order: Vec<(u64, usize)> = sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((prefix(s.current()?.ukey), i)))
            .collect();
        order.sort_by(|a, b| {
            let ord = match (
                sources.get(a.1).and_then(Source::current),
                sources.get(b.1).and_then(Source::current),
            ) {
                (Some(x), Some(y)) => cmp_ikey(x.ukey, x.seq, y.ukey, y.seq),
                _ => std::cmp::Ordering::Equal,
            };
            if reverse { ord.reverse() } else { ord }
        });
        Ok(Merger {
            sources,
            order,
            reverse,
        })
    }

    /// Puts the first source, which just stepped, back in order: its new entry is compared
    /// with the next sources' until one comes out first (by the keys' cached prefixes, which
    /// decide nearly always, else by the entries).
    fn resort(&mut self) {
        let Some(&(_, first)) = self.order.first() else {
            return;
        };
        let Some(x) = self.sources.get(first).and_then(Source::current) else {
            self.order.remove(0);
            return;
        };
        let px = prefix(x.ukey);
        let mut k = 1;
        while let Some(&(py, b)) = self.order.get(k) {
            let ord = if py != px {
                py.cmp(&px)
            } else {
                match self.sources.get(b).and_then(Source::current) {
                    Some(y) => cmp_ikey(y.ukey, y.seq, x.ukey, x.seq),
                    None => break,
                }
            };
            let y_first = if self.reverse {
                ord.is_gt()
            } else {
                ord.is_lt()
            };
            if !y_first {
                break;
            }
            k += 1;
        }
        if let Some(moved) = self.order.get_mut(..k) {
            moved.rotate_left(1);
        }
        if let Some(slot) = self.order.get_mut(k - 1) {
            *slot = (px, first);
        }
    }

    /// The current entry of the merged stream (`None` at its end).
    pub fn current(&self) -> Option<EntryRef<'_>> {
        self.sources.get(self.order.first()?.1)?.current()
    }

    /// Moves past the current entry without I/O if possible; false if
    /// [`Merger::advance`] must be awaited instead.
    pub fn advance_sync(&mut self) -> Result<bool> {
        let Some(s) = self
            .order
            .first()
            .and_then(|(_, i)| self.sources.get_mut(*i))
        else {
            return Ok(true);
        };
        if s.step_sync(self.reverse)? {
            self.resort();
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Moves past the current entry.
    pub async fn advance(&mut self) -> Result<()> {
        if let Some(s) = self
            .order
            .first()
            .and_then(|(_, i)| self.sources.get_mut(*i))
        {
            s.step(self.reverse).await?;
            self.resort();
        }
        Ok(())
    }

    /// Moves past the current entry, synchronously when the step stays in loaded data.
    pub async fn next(&mut self) -> Result<()> {
        if !self.advance_sync()? {
            self.advance().await?;
        }
        Ok(())
    }
}

/// Reduces a merged stream to what a read at `at` sees: per user key, the newest version with
/// `seq <= at`, removals included (callers skip them as needed). Shadowed versions are passed
/// over without being copied; in reverse, where a key's newest version comes last, the
/// candidate is copied into reused buffers.
pub(crate) struct Visible<S: Storage> {
    merger: Merger<S>,
    at: u64,
    /// The key being reduced.
    key: Vec<u8>,
    has_key: bool,
    /// Forward: the key's visible version was found (its older ones are skipped).
    decided: bool,
    /// Forward: the merger's current entry is the one last returned.
    returned: bool,
    /// Reverse: the candidate of `key`, then the entry returned.
    rev: Candidate,
}

/// A version copied out of the merged stream.
#[derive(Default)]
struct Copied {
    key: Vec<u8>,
    seq: u64,
    time_ms: u64,
    is_value: bool,
    value: Vec<u8>,
}

impl Copied {
    fn entry(&self) -> EntryRef<'_> {
        EntryRef {
            ukey: &self.key,
            seq: self.seq,
            time_ms: self.time_ms,
            value: self.is_value.then_some(self.value.as_slice()),
        }
    }
}

/// Reverse reduction state.
#[derive(Default)]
struct Candidate {
    /// The newest version `<= at` seen so far of the current key (its `key` is unused).
    cand: Copied,
    has_cand: bool,
    /// The entry returned last.
    out: Copied,
    has_out: bool,
}

impl Candidate {
    /// Makes the candidate of `key` the entry returned; false if there is none.
    fn emit(&mut self, key: &mut Vec<u8>, has_key: &mut bool) -> bool {
        if !std::mem::take(&mut self.has_cand) {
            return false;
        }
        std::mem::swap(&mut self.out, &mut self.cand);
        std::mem::swap(&mut self.out.key, key);
        self.has_out = true;
        // `key` now holds an old buffer: the next entry starts a new key.
        *has_key = false;
        true
    }
}

impl<S: Storage> Visible<S> {
    /// Reads at `at` from `merger`.
    pub fn new(merger: Merger<S>, at: u64) -> Self {
        Visible {
            merger,
            at,
            key: Vec::new(),
            has_key: false,
            decided: false,
            returned: false,
            rev: Candidate::default(),
        }
    }

    /// Moves to the next key's visible version; false at the end. See [`Visible::entry`].
    pub async fn next(&mut self) -> Result<bool> {
        if self.merger.reverse {
            self.next_reverse().await
        } else {
            self.next_forward().await
        }
    }

    /// The version [`Visible::next`] moved to.
    pub fn entry(&self) -> Option<EntryRef<'_>> {
        if self.merger.reverse {
            self.rev.has_out.then(|| self.rev.out.entry())
        } else {
            self.merger.current()
        }
    }

    async fn next_forward(&mut self) -> Result<bool> {
        if std::mem::take(&mut self.returned) {
            self.merger.next().await?;
        }
        loop {
            let Some(e) = self.merger.current() else {
                return Ok(false);
            };
            let same = self.has_key && e.ukey == self.key.as_slice();
            if !(same && self.decided) {
                if !same {
                    self.key.clear();
                    self.key.extend_from_slice(e.ukey);
                    self.has_key = true;
                    self.decided = false;
                }
                if e.seq <= self.at {
                    self.decided = true;
                    self.returned = true;
                    return Ok(true);
                }
            }
            self.merger.next().await?;
        }
    }

    async fn next_reverse(&mut self) -> Result<bool> {
        self.rev.has_out = false;
        loop {
            let Some(e) = self.merger.current() else {
                return Ok(self.rev.emit(&mut self.key, &mut self.has_key));
            };
            let same = self.has_key && e.ukey == self.key.as_slice();
            if !same {
                if self.rev.emit(&mut self.key, &mut self.has_key) {
                    // `e` starts the next key: the next call handles it.
                    return Ok(true);
                }
                self.key.clear();
                self.key.extend_from_slice(e.ukey);
                self.has_key = true;
            }
            // A key's versions come oldest first: the last one `<= at` wins.
            if e.seq <= self.at {
                let c = &mut self.rev.cand;
                (c.seq, c.time_ms, c.is_value) = (e.seq, e.time_ms, e.value.is_some());
                c.value.clear();
                c.value.extend_from_slice(e.value.unwrap_or_default());
                self.rev.has_cand = true;
            }
            self.merger.next().await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Entry;
    use crate::sstable::table::tests::{rt, write};
    use kv_api::Version;
    use kv_backends::MemoryStorage;

    /// Keys that often share their first 8 bytes (or are short), so that comparisons need
    /// more than the cached prefixes.
    fn key(i: u64) -> Vec<u8> {
        match i % 3 {
            0 => format!("\x01common-{i:05}").into_bytes(),
            1 => format!("\x01c{i}").into_bytes(),
            _ => {
                let mut k = format!("\x01common-{:05}", i - 2).into_bytes();
                k.push(0);
                k
            }
        }
    }

    async fn table(storage: &MemoryStorage, id: u64, es: &[Entry]) -> Arc<Table<MemoryStorage>> {
        let meta = write(storage, id, es, 200).await;
        Arc::new(Table::new(meta, storage.clone()))
    }

    /// Merging and reducing versions spread over a memtable, two overlapping tables and a level
    /// of three tables agrees with a model, from any position, in both directions, at any
    /// read version.
    #[test]
    fn merged_reads_agree_with_a_model() {
        rt().block_on(async {
            let mut rng = kv_conformance::Rng::new(7);
            let mut all: Vec<Entry> = Vec::new();
            let mut seq = 0;
            for i in 0..120u64 {
                for _ in 0..=rng.below(3) {
                    seq += 1 + rng.below(3);
                    all.push(Entry {
                        ukey: key(i),
                        seq,
                        time_ms: 1000 + seq,
                        value: (rng.below(4) != 0).then(|| vec![i as u8; rng.below(30) as usize]),
                    });
                }
            }
            all.sort_by(|a, b| cmp_ikey(&a.ukey, a.seq, &b.ukey, b.seq));
            // Spread the versions: the level gets whole keys (its tables split between keys).
            let (mut mem, mut l0a, mut l0b, mut l1) = (vec![], vec![], vec![], vec![]);
            for e in &all {
                match (rng.below(4), e.ukey.len() % 2) {
                    (0, _) => mem.push(e.clone()),
                    (1, _) => l0a.push(e.clone()),
                    (2, _) => l0b.push(e.clone()),
                    _ => l1.push(e.clone()),
                }
            }
            let storage = MemoryStorage::new();
            let memtable = Memtable::new(1);
            for e in &mem {
                let (slot, k) = e.ukey.split_first().expect("slot");
                memtable.apply(
                    Version::new(e.seq, e.time_ms),
                    [(*slot, k, e.value.as_deref())],
                );
            }
            let third = l1.len() / 3;
            let cut = |at: usize| {
                let mut at = at;
                while at > 0 && at < l1.len() && l1[at].ukey == l1[at - 1].ukey {
                    at += 1;
                }
                at.min(l1.len())
            };
            let (c1, c2) = (cut(third), cut(2 * third));
            let mut tables = vec![
                (0, table(&storage, 1, &l0a).await),
                (0, table(&storage, 2, &l0b).await),
            ];
            let mut id = 3;
            for part in [&l1[..c1], &l1[c1..c2], &l1[c2..]] {
                if !part.is_empty() {
                    tables.push((1, table(&storage, id, part).await));
                    id += 1;
                }
            }
            let levels = Arc::new(LevelSet::from_tables(tables));
            let mem = Arc::new(memtable);
            let cache = Arc::new(BlockCache::new(1 << 20));

            let mut targets: Vec<Vec<u8>> = (0..125u64).step_by(4).map(key).collect();
            targets.push(b"\x01".to_vec());
            targets.push(b"\x02".to_vec());
            for (n, target) in targets.iter().enumerate() {
                let ats = [0, seq / 3, seq / 2, seq, u64::MAX];
                let at = ats[n % ats.len()];
                for seek in [Seek::Start, Seek::End, Seek::Ge(target), Seek::Gt(target)] {
                    for reverse in [false, true] {
                        for sequential in [false, true] {
                            let mut want: Vec<&Entry> = all
                                .iter()
                                .filter(|e| seek.is_before(&e.ukey, e.seq) == reverse)
                                .collect();
                            if reverse {
                                want.reverse();
                            }
                            // Every entry, in order.
                            let sources = Source::all([mem.clone()], &levels, &cache, sequential);
                            let mut m = Merger::new(sources, seek, reverse).await.expect("seek");
                            let mut got = Vec::new();
                            while let Some(e) = m.current() {
                                got.push(e.to_entry());
                                m.next().await.expect("next");
                            }
                            let want_all: Vec<Entry> = want.iter().map(|e| (*e).clone()).collect();
                            assert_eq!(got, want_all, "{seek:?} reverse {reverse}");
                            // What a read at `at` sees.
                            let mut visible: Vec<Entry> = Vec::new();
                            for e in want.iter().filter(|e| e.seq <= at) {
                                match visible.last_mut() {
                                    Some(last) if last.ukey == e.ukey => {
                                        if e.seq > last.seq {
                                            *last = (*e).clone();
                                        }
                                    }
                                    _ => visible.push((*e).clone()),
                                }
                            }
                            let sources = Source::all([mem.clone()], &levels, &cache, sequential);
                            let m = Merger::new(sources, seek, reverse).await.expect("seek");
                            let mut v = Visible::new(m, at);
                            let mut got = Vec::new();
                            while v.next().await.expect("next") {
                                got.push(v.entry().expect("entry").to_entry());
                            }
                            assert_eq!(got, visible, "{seek:?} reverse {reverse} at {at}");
                        }
                    }
                }
            }
        });
    }
}
