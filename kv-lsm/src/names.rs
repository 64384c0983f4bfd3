//! What the files of a storage are to the LSM: its own (tables, WAL files, the manifest), or
//! foreign; the ids their names carry; and the checks an open makes on them before it
//! creates or deletes anything.
//!
//! File ids (tables and WAL files share one id space) come from file names, so they are
//! checked like any stored data: an id the engine never allocates is
//! [`Error::Corruption`] naming the file, and the arithmetic on ids is checked.

use std::collections::HashSet;

use kv_api::{Error, Result};

use crate::manifest::{MANIFEST, MANIFEST_TMP};
use crate::sstable::parse_table_name;
use crate::wal::parse_wal_name;

/// The engine's name in errors ([`kv_api::Engine::NAME`]).
const ENGINE: &str = "lsm";

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
    /// The id after the largest id of any file (0 without any).
    pub next_id: u64,
    /// Names the LSM never writes.
    pub foreign: Vec<String>,
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
            } else {
                l.foreign.push(name.clone());
            }
        }
        Ok(l)
    }

    /// Without a `MANIFEST`, the storage must hold nothing but what a crash while creating a
    /// store can leave (nothing, or a `MANIFEST.tmp`: a new store writes its manifest before
    /// its first WAL file), or the open would take a damaged store for a new one, or write
    /// into another store:
    ///
    /// * files the LSM never writes: [`Error::Foreign`] naming them (another engine's store,
    ///   or a directory that is not a store);
    /// * tables or WAL files: [`Error::Corruption`] naming `MANIFEST`, the only record of
    ///   which tables are live and which WAL files are needed. Nothing can prove any of them
    ///   garbage, so nothing may be deleted, and nothing is created.
    pub fn check_without_manifest(&self) -> Result<()> {
        if self.manifest {
            return Ok(());
        }
        if !self.foreign.is_empty() {
            return Err(Error::foreign(ENGINE, &self.foreign));
        }
        if !self.tables.is_empty() || !self.wals.is_empty() {
            return Err(Error::corruption(
                MANIFEST,
                0,
                format!(
                    "MANIFEST is missing, but the storage holds {} tables and {} WAL files",
                    self.tables.len(),
                    self.wals.len()
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
        ]))
        .expect("listing");
        assert!(l.manifest && !l.manifest_tmp);
        assert_eq!(l.next_id, 10);
        assert_eq!(l.foreign, ["META", "00000001.log"]);
        l.check_without_manifest().expect("has a manifest");

        let new = Listing::of(&names(&["MANIFEST.tmp"])).expect("listing");
        new.check_without_manifest().expect("a crashed creation");
        let foreign = Listing::of(&names(&["META", "wal-00000002.log"])).expect("listing");
        assert!(matches!(
            foreign.check_without_manifest(),
            Err(Error::Foreign { engine: "lsm", found }) if found == "META"
        ));
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
