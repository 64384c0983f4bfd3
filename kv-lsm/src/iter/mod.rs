//! Iterators: one cursor per source (memtable, table, level of tables) and the merging
//! iterator over them, in either direction.
//!
//! Every cursor is positioned once with a [`Seek`](crate::key::Seek) and then stands on an
//! entry, which it lends out as an [`EntryRef`](crate::key::EntryRef) (`current`) until it is
//! moved (`step`): nothing is copied on the way, so a scan copies only the entries it returns
//! and a compaction copies entries straight from input blocks into its output. Table cursors
//! decode the restart interval they stand in into reused buffers
//! ([`Run`](crate::sstable::block::Run); forward, only as far as they get); a step inside the
//! loaded block is synchronous ([`Merger::advance_sync`]), only a step into another block
//! awaits I/O. Each source is positioned once per scan, whatever the scan's length.
//!
//! The [`Merger`] yields the smallest current entry of its sources (largest in reverse): every
//! version of every key, which [`Visible`] reduces to what one read sees and compactions copy as
//! they are. Readers' table cursors go through the block cache; compactions and `stats` read
//! tables sequentially in large chunks outside it.
//!
//! * `cursor`: the cursors over one source each ([`MemCursor`], [`TableCursor`], and the
//!   cursor over a level of tables).
//! * `merge`: the [`Source`]s of a read and the k-way [`Merger`] over them.
//! * `visibility`: [`Visible`], the MVCC reduction of the merged stream to one read version.

mod cursor;
mod merge;
mod visibility;

#[cfg(test)]
mod tests;

pub(crate) use cursor::{MemCursor, TableCursor};
pub(crate) use merge::{Merger, Source};
pub(crate) use visibility::Visible;
