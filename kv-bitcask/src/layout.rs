//! The store's current set of segments: sealed ones in replay order, the active one, the next
//! file id, and how that set is written down as a [`Meta`].

use std::sync::atomic::{AtomicU64, Ordering};

use kv_api::{Error, Result, Version};

use crate::keydir::MAX_FILE_ID;
use crate::meta::{Meta, SegmentRef};
use crate::pending::PendingEntries;

/// A sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegInfo {
    /// File id.
    pub id: u32,
    /// Written by merge (committed records).
    pub merged: bool,
    /// Length in bytes.
    pub len: u64,
}

/// An open segment: its handle and how many of its bytes can be read (what readers may find
/// in the keydir; bytes past it may be an append in progress).
pub(crate) struct SegFile<F> {
    /// Handle.
    pub file: F,
    readable: AtomicU64,
}

impl<F> SegFile<F> {
    /// A segment of which `readable` bytes can be read.
    pub fn new(file: F, readable: u64) -> Self {
        SegFile {
            file,
            readable: AtomicU64::new(readable),
        }
    }

    /// Bytes that can be read.
    pub fn readable(&self) -> u64 {
        self.readable.load(Ordering::Acquire)
    }

    /// Raises the readable length to `len` (after an append, before the keydir points there).
    pub fn extend(&self, len: u64) {
        self.readable.fetch_max(len, Ordering::Release);
    }
}

/// The segment commits are appended to.
pub(crate) struct Active<F> {
    /// File id.
    pub id: u32,
    /// Handle.
    pub file: F,
    /// Bytes appended so far.
    pub len: u64,
    /// Keydir entries of this segment, for its hint file when it is sealed. Bounded by the
    /// segment size, so it costs memory only in proportion to the active segment.
    pub pending: PendingEntries,
}

/// Segments of the store.
pub(crate) struct Layout<F> {
    /// Sealed segments in replay order (merged ones first).
    pub sealed: Vec<SegInfo>,
    /// The active segment; `None` only for a read-only view of an empty storage.
    pub active: Option<Active<F>>,
    /// The next unused file id.
    pub next_id: u32,
}

impl<F> Layout<F> {
    /// Takes a new file id.
    pub fn alloc_id(&mut self) -> Result<u32> {
        let id = self.next_id;
        if id > MAX_FILE_ID {
            return Err(Error::InvalidArgument("file ids exhausted".into()));
        }
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "id <= MAX_FILE_ID (2^31 - 1)"
        )]
        {
            self.next_id = id + 1;
        }
        Ok(id)
    }

    /// Bytes of all segments (a statistic: saturates rather than fail).
    pub fn segment_bytes(&self) -> u64 {
        self.sealed
            .iter()
            .map(|s| s.len)
            .chain(self.active.as_ref().map(|a| a.len))
            .fold(0, u64::saturating_add)
    }

    /// Number of segments.
    pub fn segment_count(&self) -> u64 {
        (self.sealed.len() as u64).saturating_add(u64::from(self.active.is_some()))
    }

    /// The manifest of this layout, with `sealed` and `active` replacing the current ones.
    pub fn meta_with(&self, sealed: &[SegInfo], active: u32, horizon: u64, last: Version) -> Meta {
        let mut segments: Vec<SegmentRef> = sealed
            .iter()
            .map(|s| SegmentRef {
                id: s.id,
                merged: s.merged,
            })
            .collect();
        segments.push(SegmentRef {
            id: active,
            merged: false,
        });
        Meta {
            segments,
            next_id: self.next_id,
            horizon,
            last_seq: last.seq(),
            last_time_ms: last.time_ms(),
        }
    }
}
