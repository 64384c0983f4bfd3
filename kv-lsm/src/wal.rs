//! The write-ahead log: commits not yet in tables, in the shared transaction-log format.
//!
//! Files are `wal-NNNNNNNN.log`, one id space with tables. Each begins with its file header
//! (kind [`KIND_WAL`], the store's id, its own id), so a WAL file swapped with another, or
//! brought from another store, is corruption at open instead of commits replayed out of place.
//! A transaction is its write records and a commit record, or one single record if it has one
//! write ([`kv_engine_kit::txlog`], each in a [`kv_engine_kit::frame`]), encoded into one buffer and appended with **one** `append` call;
//! it is durable once the file is synced (the commit pipeline's group commit does that). A new
//! file is started when the current one passes `Options::segment_size` and whenever the
//! memtable is frozen, so each WAL file belongs to one memtable and can be deleted once that
//! memtable's table is in the manifest. Before switching, the old file is synced, so only the
//! newest file can ever have a torn tail.
//!
//! **A roll** creates the new file, appends its header, syncs it and the storage, then writes
//! the manifest naming it as `wal_newest`, and only then appends commits to it. So the newest
//! WAL file is always known (its loss is corruption, not silently lost commits), and a file
//! above the manifest's `wal_newest` holds no commit: it is what a crash in a roll left. With a
//! torn header it is removed (a writable open) or ignored (read-only); with a whole one it is
//! replayed (nothing) and kept, and the open records it in the manifest before any commit.
//! (Records in such a file, which the protocol never leaves, are replayed all the same, under
//! the usual continuity checks.)

use crate::rtomb::RangeTomb;
use kv_api::{Dropped, Result, Storage, StorageFile, Version};
use kv_engine_kit::files;
use kv_engine_kit::header::{self, BadHeader, FileHeader, StoreId};
use kv_engine_kit::txlog::{self, Follows};

use crate::memtable::Memtable;
#[cfg(doc)]
use crate::names::KIND_WAL;
use crate::names::wal_header;

/// The file name of WAL file `id`.
pub(crate) fn wal_name(id: u64) -> String {
    format!("wal-{id:08}.log")
}

/// The id of a WAL file name: only a name [`wal_name`] writes.
pub(crate) fn parse_wal_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = digits.parse().ok()?;
    (wal_name(id) == name).then_some(id)
}

/// The WAL file being appended to.
pub(crate) struct ActiveWal<F: StorageFile> {
    /// Its id.
    pub id: u64,
    /// Its handle.
    pub file: F,
    /// Its length.
    pub len: u64,
}

/// Creates WAL file `id` of `store` holding just its header, synced (the storage is not).
pub(crate) async fn create<S: Storage>(
    storage: &S,
    store: StoreId,
    id: u64,
) -> Result<ActiveWal<S::File>> {
    let file = storage.create(&wal_name(id)).await?;
    file.append(&wal_header(store, id).to_bytes()).await?;
    file.sync().await?;
    Ok(ActiveWal {
        id,
        file,
        len: header::LEN as u64,
    })
}

/// Sorts out the WAL files `ids` (ascending) of `store` before a replay: returns those to
/// replay, without what a crashed roll left above `newest` (the manifest's `wal_newest`): a
/// file shorter than its header, removed unless `read_only`. Every other file must begin
/// with its header: anything else is corruption naming it. One read of a header per file.
pub(crate) async fn sort_out<S: Storage>(
    storage: &S,
    store: StoreId,
    ids: &[u64],
    newest: u64,
    read_only: bool,
) -> Result<Vec<u64>> {
    let mut kept = Vec::with_capacity(ids.len());
    for &id in ids {
        let name = wal_name(id);
        let file = storage.open(&name).await?;
        let len = file.len().await?;
        let n = usize::try_from(len).map_or(header::LEN, |len| len.min(header::LEN));
        let head = if n == 0 {
            Vec::new()
        } else {
            file.read_at(0, n).await?
        };
        drop(file);
        if id > newest && FileHeader::decode(&head) == Err(BadHeader::Short) {
            if !read_only {
                storage.remove(&name).await?;
            }
            continue;
        }
        wal_header(store, id).check(&head, &name)?;
        kept.push(id);
    }
    Ok(kept)
}

/// What replaying the WAL recovered.
pub(crate) struct Replayed<F: StorageFile> {
    /// The last commit replayed (or `after` if none).
    pub last: Version,
    /// The newest WAL file, to keep appending to (writable stores only).
    pub active: Option<ActiveWal<F>>,
    /// What replay left out (a torn tail of the newest file).
    pub dropped: Vec<Dropped>,
    /// The range tombstones of the replayed commits, oldest first.
    pub tombs: Vec<RangeTomb>,
}

/// Replays WAL files `ids` of `store` (ascending, all at or above the manifest's floor, sorted
/// out by [`sort_out`]) into `mem`. Their commits follow `after`, the last commit already in
/// tables, without a gap. Each file's header is checked again (the records are trusted only
/// under it) and its records start after it.
///
/// A torn tail of the last file (a crash mid-append) is cut at the end of the last whole
/// transaction and synced, so the next append starts on a clean boundary and a second reopen
/// changes nothing; `read_only` leaves the file alone and just ignores the tail.
pub(crate) async fn replay<S: Storage>(
    storage: &S,
    store: StoreId,
    ids: &[u64],
    after: Version,
    mem: &Memtable,
    read_only: bool,
) -> Result<Replayed<S::File>> {
    let mut last = after;
    let mut active = None;
    let mut dropped = Vec::new();
    let mut tombs = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let name = wal_name(id);
        let is_last = ids.len().checked_sub(1) == Some(i);
        let file = storage.open(&name).await?;
        let buf = files::read_all(&file, &name).await?;
        let len = buf.len() as u64;
        // Each WAL file continues the one before, and the first continues the manifest's last
        // flushed commit: a missing or emptied file shows as a gap.
        let follows = Follows::Commit(last.seq());
        let into = Some((mem, &mut tombs));
        let end = replay_file(&buf, store, id, is_last, follows, into, &mut last)?;
        dropped.extend(end.dropped);
        let mut len = len;
        if end.valid_len < len && !read_only {
            file.truncate(end.valid_len).await?;
            file.sync().await?;
            len = end.valid_len;
        }
        if is_last && !read_only {
            active = Some(ActiveWal { id, file, len });
        }
    }
    Ok(Replayed {
        last,
        active,
        dropped,
        tombs,
    })
}

/// Replays WAL file `id` of `store`, held in `buf`: checks its header, then its transactions
/// after `follows` (writes into the memtable and range removals into the tombstone list, if
/// given), raising `last` to each commit. For `replay` and `verify`.
pub(crate) fn replay_file(
    buf: &[u8],
    store: StoreId,
    id: u64,
    is_last: bool,
    follows: Follows,
    mut into: Option<(&Memtable, &mut Vec<RangeTomb>)>,
    last: &mut Version,
) -> Result<txlog::ReplayEnd> {
    let name = wal_name(id);
    wal_header(store, id).check(buf, &name)?;
    txlog::replay(buf, header::LEN, &name, is_last, follows, |txn| {
        let version = Version::new(txn.seq, txn.time_ms);
        if let Some((mem, tombs)) = &mut into {
            mem.apply(version, txn.writes.iter().map(|w| (w.slot, w.key, w.value)));
            tombs.extend(txn.ranges.into_iter().map(|(slot, range)| RangeTomb {
                slot,
                range,
                version,
            }));
        }
        *last = (*last).max(version);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_api::Write;

    #[test]
    fn names() {
        assert_eq!(wal_name(3), "wal-00000003.log");
        assert_eq!(parse_wal_name("wal-00000003.log"), Some(3));
        assert_eq!(parse_wal_name("wal-.log"), None);
        assert_eq!(parse_wal_name("00000003.sst"), None);
        assert_eq!(parse_wal_name("wal-3.log"), None);
    }

    #[test]
    fn a_transaction_is_writes_then_commit() {
        let writes = vec![
            Write {
                slot: 1,
                key: b"k".to_vec(),
                value: Some(b"v".to_vec()),
            },
            Write {
                slot: 2,
                key: b"r".to_vec(),
                value: None,
            },
        ];
        let mut buf = Vec::new();
        txlog::encode_txn(&mut buf, Version::new(5, 99), 4, &writes, |_| {}).expect("encode");
        let mut seen = Vec::new();
        let end = txlog::replay(&buf, 0, "w", true, Follows::Commit(4), |t| {
            seen.push((t.seq, t.time_ms, t.writes.len()));
            Ok(())
        })
        .expect("replay");
        assert_eq!(seen, vec![(5, 99, 2)]);
        assert_eq!(end.valid_len, buf.len() as u64);
    }
}
