//! What the files of a storage are to the LSM: its own (tables, WAL files, the manifest), the
//! store's `IDENTITY` (every engine's), or foreign; the ids their names carry; the kinds their
//! headers carry; and the checks an open makes on them before it creates or deletes anything.
//!
//! File ids (tables and WAL files share one id space) come from file names, so they are
//! checked like any stored data: an id the engine never allocates is
//! [`Error::Corruption`] naming the file, and the arithmetic on ids is checked. Every file
//! repeats its id, its kind and the store's id in its header
//! ([`kv_engine_kit::header::FileHeader`]), so a file renamed, copied over another or brought
//! from another store is found before its contents are trusted.

use std::collections::HashSet;

use kv_api::{Error, Result, Storage};
use kv_engine_kit::header::{FileHeader, StoreId};
use kv_engine_kit::identity::{self, Found};

use crate::manifest::{MANIFEST, MANIFEST_TMP};
use crate::sstable::parse_table_name;
use crate::wal::parse_wal_name;

/// The engine's name in errors and in `IDENTITY` ([`kv_api::Engine::NAME`]).
pub(crate) const ENGINE: &str = "lsm";

/// The header kind of a WAL file (Bitcask's kinds are `0x1_`).
pub(crate) const KIND_WAL: u8 = 0x21;
/// The header kind of a table.
pub(crate) const KIND_TABLE: u8 = 0x22;
/// The header kind of the manifest (whose file id is 0).
pub(crate) const KIND_MANIFEST: u8 = 0x23;
/// The header kind of a blob file (values stored apart from their keys).
pub(crate) const KIND_BLOB: u8 = 0x24;

/// The header WAL file `id` of `store` begins with.
pub(crate) fn wal_header(store: StoreId, id: u64) -> FileHeader {
    FileHeader {
        kind: KIND_WAL,
        store,
        file_id: id,
    }
}

/// The header table `id` of `store` begins with.
pub(crate) fn table_header(store: StoreId, id: u64) -> FileHeader {
    FileHeader {
        kind: KIND_TABLE,
        store,
        file_id: id,
    }
}

/// The header the manifest of `store` begins with.
pub(crate) fn manifest_header(store: StoreId) -> FileHeader {
    FileHeader {
        kind: KIND_MANIFEST,
        store,
        file_id: 0,
    }
}

/// True for the names the LSM writes (the identity files are the kit's, see
/// [`identity::check`]).
pub(crate) fn is_own(name: &str) -> bool {
    name == MANIFEST
        || name == MANIFEST_TMP
        || parse_table_name(name).is_some()
        || parse_wal_name(name).is_some()
        || crate::blob::parse_blob_name(name).is_some()
}

/// The identity check of an open ([`identity::check`]), which runs before the writer lock.
///
/// A `MANIFEST` without `IDENTITY` is a store of format 1 ([`Error::Incompatible`]) unless
/// the manifest begins with a file header, which only format 2 writes: then `IDENTITY` was
/// lost, and that is [`Error::Corruption`] naming it (`identity::check` tells the two apart).
pub(crate) async fn check_identity<S: Storage>(storage: &S, names: &[String]) -> Result<Found> {
    identity::check(storage, ENGINE, names, is_own, MANIFEST).await
}

/// File ids are below this. One id is taken per WAL roll and per table written: 2^63 of
/// them is out of reach, so a name with a larger id is damage, and `id + 1` never overflows.
pub(crate) const FILE_ID_LIMIT: u64 = 1 << 63;

/// The id after `id`, for an id read from storage (`file` names where it came from).
pub(crate) fn id_after(id: u64, file: &str) -> Result<u64> {
    id.checked_add(1)
        .filter(|next| *next <= FILE_ID_LIMIT)
        .ok_or_else(|| Error::corruption(file, 0, format!("impossible file id {id}")))
}

/// A storage's file names, sorted out.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// `MANIFEST` exists.
    pub manifest: bool,
    /// `MANIFEST.tmp` exists (a manifest write that did not finish).
    pub manifest_tmp: bool,
    /// Ids of the tables.
    pub tables: HashSet<u64>,
    /// Ids of the WAL files, in no particular order.
    pub wals: Vec<u64>,
    /// Ids of the blob files.
    pub blobs: HashSet<u64>,
    /// The id after the largest id of any file (0 without any).
    pub next_id: u64,
}

impl Listing {
    /// Sorts out `names`; an impossible id is corruption naming its file.
    pub fn of(names: &[String]) -> Result<Listing> {
        let mut l = Listing::default();
        for name in names {
            if name == MANIFEST {
                l.manifest = true;
            } else if name == MANIFEST_TMP {
                l.manifest_tmp = true;
            } else if let Some(id) = parse_table_name(name) {
                l.tables.insert(id);
                l.next_id = l.next_id.max(id_after(id, name)?);
            } else if let Some(id) = parse_wal_name(name) {
                l.wals.push(id);
                l.next_id = l.next_id.max(id_after(id, name)?);
            } else if let Some(id) = crate::blob::parse_blob_name(name) {
                l.blobs.insert(id);
                l.next_id = l.next_id.max(id_after(id, name)?);
            }
            // Anything else is the store's identity (checked by `check_identity`) or a file
            // the LSM leaves alone.
        }
        Ok(l)
    }

    /// In a store (its `IDENTITY` checked) without a `MANIFEST`, the storage must hold nothing
    /// of the LSM's but what a crash while creating the store can leave: a new store writes
    /// `IDENTITY`, then `MANIFEST`, then its first WAL file, so that is nothing, or a
    /// `MANIFEST.tmp`. Otherwise the open would take a damaged store for a new one: tables or
    /// WAL files are [`Error::Corruption`] naming `MANIFEST`, the only record of which tables
    /// are live and which WAL files are needed. Nothing can prove any of them garbage, so
    /// nothing may be deleted, and nothing is created. (Files the LSM never writes are
    /// refused by the identity check if there is no `IDENTITY`, and left alone if there is.)
    pub fn check_without_manifest(&self) -> Result<()> {
        if self.manifest {
            return Ok(());
        }
        if !self.tables.is_empty() || !self.wals.is_empty() || !self.blobs.is_empty() {
            return Err(Error::corruption(
                MANIFEST,
                0,
                format!(
                    "MANIFEST is missing, but the storage holds {} tables, {} WAL files and {} \
                     blob files",
                    self.tables.len(),
                    self.wals.len(),
                    self.blobs.len()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listing() {
        let l = Listing::of(&names(&[
            "MANIFEST",
            "00000007.sst",
            "wal-00000009.log",
            "META",
            "00000001.log",
            "IDENTITY",
        ]))
        .expect("listing");
        assert!(l.manifest && !l.manifest_tmp);
        assert_eq!(l.next_id, 10);
        assert_eq!(l.wals, [9]);
        l.check_without_manifest().expect("has a manifest");
        for own in [
            "MANIFEST",
            "MANIFEST.tmp",
            "00000007.sst",
            "wal-00000009.log",
        ] {
            assert!(is_own(own), "{own}");
        }
        for other in ["META", "00000001.log", "IDENTITY", "7.sst", "notes.txt"] {
            assert!(!is_own(other), "{other}");
        }

        let new = Listing::of(&names(&["IDENTITY", "MANIFEST.tmp", "notes.txt"])).expect("listing");
        new.check_without_manifest().expect("a crashed creation");
        let lost = Listing::of(&names(&["wal-00000002.log"])).expect("listing");
        assert!(matches!(
            lost.check_without_manifest(),
            Err(Error::Corruption { file, .. }) if file == MANIFEST
        ));
    }

    #[test]
    fn impossible_ids() {
        assert_eq!(
            id_after(FILE_ID_LIMIT - 1, "x").expect("last id"),
            FILE_ID_LIMIT
        );
        for id in [FILE_ID_LIMIT, u64::MAX - 1, u64::MAX] {
            assert!(matches!(
                id_after(id, "x"),
                Err(Error::Corruption { file, .. }) if file == "x"
            ));
        }
        let stray = "wal-18446744073709551614.log";
        assert!(matches!(
            Listing::of(&names(&["MANIFEST", stray])),
            Err(Error::Corruption { file, .. }) if file == stray
        ));
    }
}
