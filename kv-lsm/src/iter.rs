//! Iterators: one cursor per source (memtable, table, level of tables) and the merging
//! iterator over them, in either direction.
//!
//! Every cursor is positioned with a [`Seek`] and then yields entries after the position
//! (forward) or before it (reverse), in internal key order or its reverse. The [`Merger`] keeps
//! one head entry per source and yields the smallest (largest in reverse): all versions of all
//! keys, which scans reduce to the newest version per key and compactions copy as they are.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use kv_api::{Result, Storage};

use crate::cache::BlockCache;
use crate::key::{Entry, Seek, cmp_ikey};
use crate::memtable::{IKey, Memtable, bound_after, bound_for};
use crate::sstable::Table;
use crate::sstable::block::Decoded;
use crate::sstable::table::TableReader;

/// Entries read from a memtable per lock acquisition.
const MEM_BATCH: usize = 128;

/// A cursor over a memtable, reading it in batches.
pub(crate) struct MemCursor {
    mem: Arc<Memtable>,
    from: Option<Bound<IKey>>,
    reverse: bool,
    buf: VecDeque<Entry>,
}

impl MemCursor {
    fn new(mem: Arc<Memtable>, seek: Seek<'_>, reverse: bool) -> Self {
        MemCursor {
            mem,
            from: bound_for(seek, reverse),
            reverse,
            buf: VecDeque::new(),
        }
    }

    fn next(&mut self) -> Option<Entry> {
        if self.buf.is_empty() {
            let from = self.from.as_ref()?;
            let batch = self.mem.batch(from, self.reverse, MEM_BATCH);
            self.from = match batch.last() {
                Some(last) if batch.len() == MEM_BATCH => Some(bound_after(last)),
                _ => None,
            };
            self.buf.extend(batch);
        }
        self.buf.pop_front()
    }
}

/// A cursor over one table: a position `(block, pos)`; forward reads entry `pos` of the block,
/// reverse reads entry `pos - 1`.
pub(crate) struct TableCursor<S: Storage> {
    table: Arc<Table<S>>,
    reader: Option<Arc<TableReader<S::File>>>,
    cache: Arc<BlockCache>,
    fill: bool,
    block_idx: usize,
    block: Option<Arc<Decoded>>,
    pos: usize,
}

impl<S: Storage> TableCursor<S> {
    /// A cursor over `table`; `fill`: keep blocks read in the cache (false for compactions, so
    /// a compaction does not evict the blocks readers use).
    pub fn new(table: Arc<Table<S>>, cache: Arc<BlockCache>, fill: bool) -> Self {
        TableCursor {
            table,
            reader: None,
            cache,
            fill,
            block_idx: 0,
            block: None,
            pos: 0,
        }
    }

    async fn reader(&mut self) -> Result<Arc<TableReader<S::File>>> {
        match &self.reader {
            Some(r) => Ok(r.clone()),
            None => {
                let r = self.table.reader().await?;
                self.reader = Some(r.clone());
                Ok(r)
            }
        }
    }

    async fn load(&mut self, reader: &TableReader<S::File>, i: usize) -> Result<Arc<Decoded>> {
        let b = Arc::new(
            reader
                .block(i, &self.cache, self.fill)
                .await?
                .decode(reader.name())?,
        );
        self.block_idx = i;
        self.block = Some(b.clone());
        Ok(b)
    }

    /// Positions the cursor.
    pub async fn seek(&mut self, seek: Seek<'_>) -> Result<()> {
        let reader = self.reader().await?;
        let b = reader.block_for(seek);
        self.block = None;
        self.pos = 0;
        self.block_idx = b;
        if b < reader.blocks() {
            let block = self.load(&reader, b).await?;
            self.pos = block.partition(|u, s| seek.is_before(u, s));
        }
        Ok(())
    }

    /// The entry after the position, moving past it.
    pub async fn next(&mut self) -> Result<Option<Entry>> {
        let reader = self.reader().await?;
        loop {
            if self.block_idx >= reader.blocks() {
                return Ok(None);
            }
            let block = match &self.block {
                Some(b) => b.clone(),
                None => self.load(&reader, self.block_idx).await?,
            };
            if let Some(e) = block.entry(self.pos) {
                self.pos += 1;
                return Ok(Some(e));
            }
            self.block_idx += 1;
            self.block = None;
            self.pos = 0;
        }
    }

    /// The entry before the position, moving before it.
    pub async fn prev(&mut self) -> Result<Option<Entry>> {
        let reader = self.reader().await?;
        loop {
            if self.block_idx >= reader.blocks() {
                // At the end: continue from the end of the last block.
                let Some(last) = reader.blocks().checked_sub(1) else {
                    return Ok(None);
                };
                let block = self.load(&reader, last).await?;
                self.pos = block.len();
            }
            let block = match &self.block {
                Some(b) => b.clone(),
                None => self.load(&reader, self.block_idx).await?,
            };
            if self.pos > 0 {
                self.pos -= 1;
                return Ok(block.entry(self.pos));
            }
            let Some(prev) = self.block_idx.checked_sub(1) else {
                return Ok(None);
            };
            let block = self.load(&reader, prev).await?;
            self.pos = block.len();
        }
    }
}

/// A cursor over the tables of one level ≥ 1: sorted, non-overlapping, read one after another.
pub(crate) struct LevelCursor<S: Storage> {
    tables: Vec<Arc<Table<S>>>,
    cache: Arc<BlockCache>,
    fill: bool,
    idx: usize,
    cur: Option<TableCursor<S>>,
}

impl<S: Storage> LevelCursor<S> {
    /// A cursor over `tables` (sorted by key, non-overlapping).
    pub fn new(tables: Vec<Arc<Table<S>>>, cache: Arc<BlockCache>, fill: bool) -> Self {
        LevelCursor {
            tables,
            cache,
            fill,
            idx: 0,
            cur: None,
        }
    }

    fn cursor(&self, i: usize) -> Option<TableCursor<S>> {
        let t = self.tables.get(i)?;
        Some(TableCursor::new(t.clone(), self.cache.clone(), self.fill))
    }

    async fn seek(&mut self, seek: Seek<'_>) -> Result<()> {
        self.idx = self
            .tables
            .partition_point(|t| seek.is_before(&t.meta.largest.0, t.meta.largest.1));
        self.cur = None;
        if let Some(mut c) = self.cursor(self.idx) {
            c.seek(seek).await?;
            self.cur = Some(c);
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Entry>> {
        while self.idx < self.tables.len() {
            if self.cur.is_none() {
                let mut c = self.cursor(self.idx);
                if let Some(c) = &mut c {
                    c.seek(Seek::Start).await?;
                }
                self.cur = c;
            }
            if let Some(c) = &mut self.cur
                && let Some(e) = c.next().await?
            {
                return Ok(Some(e));
            }
            self.cur = None;
            self.idx += 1;
        }
        Ok(None)
    }

    async fn prev(&mut self) -> Result<Option<Entry>> {
        loop {
            if self.idx < self.tables.len() {
                if self.cur.is_none() {
                    let mut c = self.cursor(self.idx);
                    if let Some(c) = &mut c {
                        c.seek(Seek::End).await?;
                    }
                    self.cur = c;
                }
                if let Some(c) = &mut self.cur
                    && let Some(e) = c.prev().await?
                {
                    return Ok(Some(e));
                }
            }
            self.cur = None;
            match self.idx.checked_sub(1) {
                Some(i) => self.idx = i,
                None => return Ok(None),
            }
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
    /// A memtable source.
    pub fn mem(mem: Arc<Memtable>) -> Self {
        // Positioned by `Merger::new`.
        Source::Mem(MemCursor::new(mem, Seek::End, false))
    }

    async fn seek(&mut self, seek: Seek<'_>, reverse: bool) -> Result<()> {
        match self {
            Source::Mem(m) => *m = MemCursor::new(m.mem.clone(), seek, reverse),
            Source::Table(t) => t.seek(seek).await?,
            Source::Level(l) => l.seek(seek).await?,
        }
        Ok(())
    }

    async fn step(&mut self, reverse: bool) -> Result<Option<Entry>> {
        match (self, reverse) {
            (Source::Mem(m), _) => Ok(m.next()),
            (Source::Table(t), false) => t.next().await,
            (Source::Table(t), true) => t.prev().await,
            (Source::Level(l), false) => l.next().await,
            (Source::Level(l), true) => l.prev().await,
        }
    }
}

/// Merges sources into one stream of every entry, in internal key order (or its reverse).
pub(crate) struct Merger<S: Storage> {
    sources: Vec<Source<S>>,
    heads: Vec<Option<Entry>>,
    reverse: bool,
}

impl<S: Storage> Merger<S> {
    /// Positions every source at `seek` and reads their first entries.
    pub async fn new(mut sources: Vec<Source<S>>, seek: Seek<'_>, reverse: bool) -> Result<Self> {
        let mut heads = Vec::with_capacity(sources.len());
        for s in &mut sources {
            s.seek(seek, reverse).await?;
            heads.push(s.step(reverse).await?);
        }
        Ok(Merger {
            sources,
            heads,
            reverse,
        })
    }

    /// The next entry of the merged stream.
    pub async fn next(&mut self) -> Result<Option<Entry>> {
        let mut best: Option<usize> = None;
        for (i, h) in self.heads.iter().enumerate() {
            let Some(h) = h else { continue };
            let better = match best
                .and_then(|b| self.heads.get(b))
                .and_then(Option::as_ref)
            {
                None => true,
                Some(b) => {
                    let ord = cmp_ikey(&h.ukey, h.seq, &b.ukey, b.seq);
                    if self.reverse {
                        ord.is_gt()
                    } else {
                        ord.is_lt()
                    }
                }
            };
            if better {
                best = Some(i);
            }
        }
        let Some(i) = best else { return Ok(None) };
        let next = match self.sources.get_mut(i) {
            Some(s) => s.step(self.reverse).await?,
            None => None,
        };
        Ok(self
            .heads
            .get_mut(i)
            .and_then(|h| std::mem::replace(h, next)))
    }
}

/// Reduces a merged stream to what a read at `at` sees: per user key, the newest version with
/// `seq <= at`, removals included (callers skip them as needed).
pub(crate) struct Visible<S: Storage> {
    merger: Merger<S>,
    at: u64,
    pending: Option<Entry>,
}

impl<S: Storage> Visible<S> {
    /// Reads at `at` from `merger`.
    pub fn new(merger: Merger<S>, at: u64) -> Self {
        Visible {
            merger,
            at,
            pending: None,
        }
    }

    /// The next key's visible version.
    pub async fn next(&mut self) -> Result<Option<Entry>> {
        loop {
            let first = match self.pending.take() {
                Some(e) => e,
                None => match self.merger.next().await? {
                    Some(e) => e,
                    None => return Ok(None),
                },
            };
            // One key's versions are adjacent (newest first forward, oldest first in reverse):
            // keep the newest one at or below `at`.
            let at = self.at;
            let mut best: Option<Entry> = None;
            let consider = |e: Entry, best: &mut Option<Entry>| {
                if e.seq <= at && best.as_ref().is_none_or(|b| e.seq > b.seq) {
                    *best = Some(e);
                }
            };
            let key = first.ukey.clone();
            consider(first, &mut best);
            loop {
                match self.merger.next().await? {
                    Some(n) if n.ukey == key => consider(n, &mut best),
                    other => {
                        self.pending = other;
                        break;
                    }
                }
            }
            if best.is_some() {
                return Ok(best);
            }
        }
    }
}
