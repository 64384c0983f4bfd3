//! Cursors over one source each: a memtable ([`MemCursor`], copying it out in batches), one
//! table ([`TableCursor`], one decoded restart interval at a time) and one level of
//! non-overlapping tables ([`LevelCursor`], a table cursor moved from table to table).

use std::sync::Arc;

use kv_api::{Error, Result, Storage};

use crate::cache::BlockCache;
use crate::key::{EntryRef, Seek, cmp_ikey};
use crate::levels::LevelSet;
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
        self.next_size = size.saturating_mul(2).min(self.max_size);
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
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "one step per entry since the last read: `pos` stays near `batch.len()`"
        )]
        {
            self.pos += 1;
        }
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
    #[inline]
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
        } else {
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "`pos` indexes an entry of the run, a Vec: below usize::MAX"
            )]
            let next = self.pos + 1;
            if next < self.run.len() {
                self.pos = next;
                return Ok(true);
            }
        }
        if !reverse
            && let (Some(block), Some(reader)) = (self.block.as_deref(), self.reader.as_deref())
            && self.run.decode_next(block, reader.name())?
        {
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "the run just grew by the entry after `pos`"
            )]
            {
                self.pos += 1;
            }
            return Ok(true);
        }
        let (Some(block), Some(reader)) = (self.block.clone(), self.reader.clone()) else {
            return Ok(false);
        };
        let next_run = if reverse {
            self.run_idx.checked_sub(1)
        } else {
            self.run_idx.checked_add(1).filter(|r| *r < block.runs())
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
        // The blocks after this one.
        for b in (self.block_idx..reader.blocks()).skip(1) {
            let block = self.load(&reader, b).await?;
            if block.runs() > 0 {
                self.enter_run(&block, 0, false, true, reader.name())?;
                return Ok(());
            }
        }
        self.valid = false;
        Ok(())
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

    pub async fn seek(&mut self, seek: Seek<'_>, reverse: bool) -> Result<()> {
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
                #[expect(clippy::arithmetic_side_effects, reason = "`i < n`")]
                let after = i + 1;
                self.forward_from(after).await?;
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
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "the loop condition keeps `i` below the level's table count"
            )]
            {
                i += 1;
            }
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

    #[inline]
    pub fn current(&self) -> Option<EntryRef<'_>> {
        self.cur.as_ref()?.current()
    }

    pub fn step_in_block(&mut self, reverse: bool) -> Result<bool> {
        match &mut self.cur {
            Some(c) => c.step_in_block(reverse),
            None => Ok(true),
        }
    }

    pub async fn step(&mut self, reverse: bool) -> Result<()> {
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
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "`idx` is the index of the open table, below the level's table count"
            )]
            let after = self.idx + 1;
            self.forward_from(after).await
        }
    }
}
