//! The k-way merge: the [`Source`]s of a read (memtables, level-0 tables, deeper levels) and
//! the [`Merger`] that yields their entries as one stream in internal key order (or its
//! reverse), every version of every key.

use std::sync::Arc;

use kv_api::{Result, Storage};

use super::cursor::{LevelCursor, MemCursor, TableCursor};
use crate::cache::BlockCache;
use crate::key::{EntryRef, Seek, cmp_ikey, prefix};
use crate::levels::{LevelSet, NUM_LEVELS};
use crate::memtable::Memtable;

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
        let mut sources: Vec<Source<S>> = Vec::with_capacity(
            mems.size_hint()
                .0
                .saturating_add(levels.level(0).len())
                .saturating_add(NUM_LEVELS),
        );
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

    #[inline]
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
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "`order.get(k)` is `Some`: `k < order.len()`"
            )]
            {
                k += 1;
            }
        }
        if let Some(moved) = self.order.get_mut(..k) {
            moved.rotate_left(1);
            if let Some(slot) = moved.last_mut() {
                *slot = (px, first);
            }
        }
    }

    /// True if the stream runs in reverse internal key order.
    #[inline]
    pub fn is_reverse(&self) -> bool {
        self.reverse
    }

    /// The current entry of the merged stream (`None` at its end).
    #[inline]
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
