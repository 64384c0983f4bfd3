//! One file of an IndexedDB storage: durable chunks below, an in-memory tail above.

use std::cell::RefCell;
use std::rc::Rc;

use kv_api::{Error, Result, StorageFile, not_found, read_past_end};

use super::Shared;
use super::layout::CHUNK_SIZE;

/// The state of one file, shared by every handle on it from the same storage.
pub(super) struct FileShared {
    pub state: RefCell<FileState>,
    /// Serializes `sync` and `truncate` of this file; appends and reads go on meanwhile, so
    /// committers keep appending while a sync (group commit) is in flight.
    io: tokio::sync::Mutex<()>,
}

/// Invariant: `tail_start` is a multiple of [`CHUNK_SIZE`], `tail_start <= len`, every byte
/// below `tail_start` is durable in IndexedDB as full chunks (so they never change until a
/// truncation below them), and `tail` holds bytes `tail_start..len`: the partial last chunk
/// plus whatever was appended since the last sync.
pub(super) struct FileState {
    /// Current name, for messages (follows renames).
    pub name: String,
    pub id: u64,
    /// Set when the file is removed or replaced; the handle then fails.
    pub removed: bool,
    len: u64,
    tail_start: u64,
    tail: Vec<u8>,
    /// Bumped by every append and truncation; equal to `synced` when nothing is pending.
    changes: u64,
    synced: u64,
    /// A truncation since the last sync: chunks past the end must go at the next sync.
    cut: bool,
}

impl FileShared {
    /// The state of a file of durable length `len` whose last partial chunk is `partial`.
    pub fn new(name: &str, id: u64, len: u64, partial: Vec<u8>) -> Rc<Self> {
        Rc::new(FileShared {
            state: RefCell::new(FileState {
                name: name.to_string(),
                id,
                removed: false,
                len,
                tail_start: len - partial.len() as u64,
                tail: partial,
                changes: 0,
                synced: 0,
                cut: false,
            }),
            io: tokio::sync::Mutex::new(()),
        })
    }
}

/// A file of an [`super::IndexedDbStorage`]. Clones share the file's state.
#[derive(Clone)]
pub struct IndexedDbFile {
    pub(super) file: Rc<FileShared>,
    pub(super) storage: Rc<Shared>,
}

impl std::fmt::Debug for IndexedDbFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.file.state.borrow();
        f.debug_struct("IndexedDbFile")
            .field("name", &st.name)
            .field("len", &st.len)
            .field("pending", &(st.changes != st.synced))
            .finish()
    }
}

impl IndexedDbFile {
    fn live(&self, op: &str) -> Result<std::cell::RefMut<'_, FileState>> {
        let st = self.file.state.borrow_mut();
        if st.removed {
            return Err(not_found(op, &st.name));
        }
        Ok(st)
    }

    /// Full chunks `first..=last` (below the tail), from the cache or else IndexedDB.
    async fn chunks(&self, name: &str, id: u64, first: u64, last: u64) -> Result<Vec<Rc<[u8]>>> {
        let cache = &self.storage.cache;
        let mut found: Vec<Option<Rc<[u8]>>> =
            (first..=last).map(|i| cache.get(&(id, i))).collect();
        let missing_first = found.iter().position(Option::is_none);
        let missing_last = found.iter().rposition(Option::is_none);
        if let (Some(a), Some(b)) = (missing_first, missing_last) {
            let (a, b) = (first + a as u64, first + b as u64);
            let fetched = self.storage.db.read_chunks(name, id, a, b).await?;
            for (index, bytes) in (a..).zip(fetched) {
                let bytes: Rc<[u8]> = bytes.into();
                cache.insert((id, index), bytes.clone(), bytes.len());
                if let Some(slot) = found.get_mut((index - first) as usize) {
                    *slot = Some(bytes);
                }
            }
        }
        found
            .into_iter()
            .zip(first..)
            .map(|(c, i)| c.ok_or_else(|| Error::corruption(name, i * CHUNK_SIZE, "chunk missing")))
            .collect()
    }
}

#[kv_api::async_trait(?Send)]
impl StorageFile for IndexedDbFile {
    async fn len(&self) -> Result<u64> {
        Ok(self.live("len")?.len)
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        // Copy what the tail holds now; chunks below the tail are immutable, so they can be
        // fetched after this borrow ends even if a sync moves the tail meanwhile.
        let (name, id, below) = {
            let st = self.live("read")?;
            let end = match offset.checked_add(len as u64) {
                Some(end) if end <= st.len => end,
                _ => return Err(read_past_end(&st.name, offset, len, st.len)),
            };
            // Only now: a corrupt length must not allocate before the bounds check.
            out.resize(len, 0);
            let from = offset.max(st.tail_start);
            if from < end {
                let src = (from - st.tail_start) as usize..(end - st.tail_start) as usize;
                let dst = (from - offset) as usize..len;
                match (out.get_mut(dst), st.tail.get(src)) {
                    (Some(dst), Some(src)) => dst.copy_from_slice(src),
                    _ => return Err(Error::corruption(&st.name, from, "tail out of range")),
                }
            }
            (st.name.clone(), st.id, end.min(st.tail_start))
        };
        if offset < below {
            let (first, last) = (offset / CHUNK_SIZE, (below - 1) / CHUNK_SIZE);
            let chunks = self.chunks(&name, id, first, last).await?;
            for (index, chunk) in (first..).zip(chunks) {
                let at = index * CHUNK_SIZE;
                let (from, to) = (offset.max(at), below.min(at + CHUNK_SIZE));
                let src = (from - at) as usize..(to - at) as usize;
                let dst = (from - offset) as usize..(to - offset) as usize;
                match (out.get_mut(dst), chunk.get(src)) {
                    (Some(dst), Some(src)) => dst.copy_from_slice(src),
                    _ => return Err(Error::corruption(&name, at, "chunk too short")),
                }
            }
        }
        Ok(out)
    }

    async fn append(&self, bytes: &[u8]) -> Result<u64> {
        let mut st = self.live("append")?;
        let offset = st.len;
        if bytes.is_empty() {
            return Ok(offset);
        }
        st.tail.extend_from_slice(bytes);
        st.len += bytes.len() as u64;
        st.changes += 1;
        Ok(offset)
    }

    async fn sync(&self) -> Result<()> {
        let _io = self.file.io.lock().await;
        let (id, tail_start, tail, len, changes, cut) = {
            let st = self.live("sync")?;
            if st.changes == st.synced {
                return Ok(());
            }
            let tail = st.tail.clone();
            (st.id, st.tail_start, tail, st.len, st.changes, st.cut)
        };
        self.storage
            .db
            .write_tail(id, tail_start, &tail, len, cut)
            .await?;
        // Full chunks are durable now: move them from the tail to the cache. Appends made
        // during the write stay in the tail; truncations could not run (they take `io`).
        let mut st = self.file.state.borrow_mut();
        st.synced = changes;
        st.cut = false;
        let new_start = len / CHUNK_SIZE * CHUNK_SIZE;
        let full = ((new_start - tail_start) as usize).min(st.tail.len());
        let written = tail.get(..full).unwrap_or_default();
        for (index, chunk) in (tail_start / CHUNK_SIZE..).zip(written.chunks(CHUNK_SIZE as usize)) {
            self.storage
                .cache
                .insert((id, index), chunk.into(), chunk.len());
        }
        st.tail.drain(..full);
        st.tail_start += full as u64;
        Ok(())
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        let _io = self.file.io.lock().await;
        let (name, id, tail_start) = {
            let mut st = self.live("truncate")?;
            if len > st.len {
                return Err(Error::InvalidArgument(format!(
                    "truncate {} to {len} beyond its length {}",
                    st.name, st.len
                )));
            }
            if len >= st.tail_start {
                let keep = (len - st.tail_start) as usize;
                st.tail.truncate(keep);
                st.len = len;
                st.changes += 1;
                st.cut = true;
                return Ok(());
            }
            (st.name.clone(), st.id, st.tail_start)
        };
        // Cutting below the tail: the chunk holding the new end becomes the tail again.
        let new_start = len / CHUNK_SIZE * CHUNK_SIZE;
        let keep = (len - new_start) as usize;
        let mut partial = Vec::new();
        if keep > 0 && new_start < tail_start {
            let index = new_start / CHUNK_SIZE;
            let chunk = self.chunks(&name, id, index, index).await?;
            let bytes = chunk.first().and_then(|c| c.get(..keep));
            let bytes =
                bytes.ok_or_else(|| Error::corruption(&name, new_start, "chunk too short"))?;
            partial.extend_from_slice(bytes);
        }
        self.storage.forget_chunks(id, new_start / CHUNK_SIZE);
        let mut st = self.live("truncate")?;
        st.tail_start = new_start;
        st.tail = partial;
        st.len = len;
        st.changes += 1;
        st.cut = true;
        Ok(())
    }
}
