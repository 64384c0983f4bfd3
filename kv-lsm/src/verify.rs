//! `Engine::verify` for the LSM: `IDENTITY`, `MANIFEST` (decoded, key ranges checked), every
//! table it lists read block by block (header, footer, index, filter, every data block's CRC
//! and entries, the range and counts the manifest records), and the WAL files from the floor
//! on (header, frames, continuity, a torn tail of the newest a note), and the blob files it
//! lists: each present, and every blob reference of the tables read and checked (CRC, owner).
//! Nothing is written.
//!
//! A writer may work beside it (in this process or another): a table that disappears is
//! damage only if the manifest still lists it, and a WAL check that finds damage while the
//! manifest changed (a flush raised the floor and deleted WAL files) is done again.

use kv_api::{ProgressFn, Result, Storage, VerifyReport, Version};
use kv_engine_kit::files::read_all;
use kv_engine_kit::header::{BadHeader, FileHeader};
use kv_engine_kit::txlog::Follows;
use kv_engine_kit::verify::{self, Meter, Read, read_file, torn_tail};

use crate::blob::{BlobFile, BlobMeta, BlobRef, blob_name};
use crate::engine::Inner;
use crate::manifest::{MANIFEST, Manifest};
use crate::names::{ENGINE, Listing, is_own};
use crate::sstable::table::TableReader;
use crate::sstable::{TableMeta, table_name};
use crate::wal::{replay_file, wal_name};

/// How many times the WAL check is done again while a writer changes the manifest.
const WAL_RETRIES: usize = 8;

/// What the WAL check needs from the manifest.
#[derive(Clone, Copy)]
struct WalFloor {
    floor: u64,
    newest: u64,
    flushed: u64,
}

impl WalFloor {
    fn of(m: &Manifest) -> Self {
        WalFloor {
            floor: m.wal_floor,
            newest: m.wal_newest,
            flushed: m.last_flushed_seq,
        }
    }
}

impl<S: Storage> Inner<S> {
    /// See the module docs and [`kv_api::Engine::verify`].
    pub async fn verify(&self, progress: &ProgressFn<'_>) -> Result<VerifyReport> {
        self.pipeline.check_open()?;
        let engine = (ENGINE, MANIFEST);
        let begun = verify::begin(&self.storage, progress, engine, is_own, self.store).await?;
        let (mut report, mut meter) = (begun.report, begun.meter);
        if !begun.found {
            return Ok(report);
        }

        // The manifest before the listing, as an open reads them.
        let (manifest, manifest_bytes) =
            match read_file(&self.storage, MANIFEST, &mut report, &mut meter).await? {
                Read::Bytes(buf) => (report.check(Manifest::decode(&buf, self.store))?, buf),
                Read::Missing => {
                    report.damaged(MANIFEST, None, "the manifest is missing");
                    (None, Vec::new())
                }
                Read::Damaged => (None, Vec::new()),
            };
        let listing = self.listing(&mut report).await?;
        // Without a readable manifest, what this engine holds in memory.
        let (tables, wal, blobs) = match &manifest {
            Some(m) => {
                let tables: Vec<TableMeta> = m.tables.iter().map(|(_, t)| t.clone()).collect();
                (tables, WalFloor::of(m), m.blobs.clone())
            }
            None => {
                let levels = self.read_state().levels.clone();
                let tables = levels.all().map(|(_, t)| t.meta.clone()).collect();
                let blobs: Vec<BlobMeta> = levels.blob_files().map(|b| b.meta.clone()).collect();
                let p = self.persisted.lock().await;
                let wal = WalFloor {
                    floor: p.wal_floor,
                    newest: p.wal_newest,
                    flushed: p.last_flushed.seq(),
                };
                (tables, wal, blobs)
            }
        };

        let mut refs = Vec::new();
        for meta in &tables {
            self.verify_table(meta, &mut report, &mut refs).await?;
            meter.add(meta.size);
        }
        self.verify_blobs(&blobs, &refs, &listing, &mut report)
            .await?;
        for b in &blobs {
            meter.add(b.size);
        }

        let mut wals = self.verify_wals(wal, &listing, &mut meter).await?;
        // Damage found while the manifest changed may be a writer's flush (the floor raised,
        // WAL files deleted) between reading the manifest and listing: look again.
        let mut seen = manifest_bytes;
        for _ in 0..WAL_RETRIES {
            if wals.is_clean() {
                break;
            }
            let buf = read_all(&self.storage.open(MANIFEST).await?, MANIFEST).await?;
            if buf == seen {
                break;
            }
            let Ok(now) = Manifest::decode(&buf, self.store) else {
                break;
            };
            seen = buf;
            let listing = self.listing(&mut VerifyReport::new(ENGINE)).await?;
            let floor = WalFloor::of(&now);
            wals = self.verify_wals(floor, &listing, &mut meter).await?;
        }
        report.files = report.files.saturating_add(wals.files);
        report.records = report.records.saturating_add(wals.records);
        report.bytes = report.bytes.saturating_add(wals.bytes);
        report.damage.extend(wals.damage);
        report.notes.extend(wals.notes);

        let listed: std::collections::HashSet<u64> = tables.iter().map(|t| t.id).collect();
        let mut leftovers: Vec<String> = listing
            .tables
            .iter()
            .filter(|id| !listed.contains(id))
            .map(|id| table_name(*id))
            .collect();
        let listed_blobs: std::collections::HashSet<u64> = blobs.iter().map(|b| b.id).collect();
        leftovers.extend(
            listing
                .blobs
                .iter()
                .filter(|id| !listed_blobs.contains(id))
                .map(|id| blob_name(*id)),
        );
        let below = listing.wals.iter().filter(|id| **id < wal.floor);
        leftovers.extend(below.map(|id| wal_name(*id)));
        if listing.manifest_tmp {
            leftovers.push(crate::manifest::MANIFEST_TMP.to_string());
        }
        leftovers.sort();
        for name in leftovers {
            report.note(format!(
                "{name}: a file the manifest does not need (a leftover, or new since the \
                 manifest was read); the next writable open removes leftovers"
            ));
        }
        Ok(report)
    }

    /// The storage's files, sorted out; an impossible file id is damage (then nothing is).
    async fn listing(&self, report: &mut VerifyReport) -> Result<Listing> {
        let names = self.storage.list().await?;
        Ok(report.check(Listing::of(&names))?.unwrap_or_default())
    }

    /// Checks table `meta` whole. A table the current manifest no longer lists was compacted
    /// away by a writer during verify: not damage.
    /// Its blob references go to `refs` (table id, user key, seq, reference).
    async fn verify_table(
        &self,
        meta: &TableMeta,
        report: &mut VerifyReport,
        refs: &mut Vec<(u64, Vec<u8>, u64, Vec<u8>)>,
    ) -> Result<()> {
        let name = table_name(meta.id);
        let checked = async {
            let reader = TableReader::open(&self.storage, self.store, meta).await?;
            reader
                .verify(meta, |k, seq, r| {
                    refs.push((meta.id, k.to_vec(), seq, r.to_vec()));
                })
                .await
        }
        .await;
        let err = match checked {
            Ok(entries) => {
                report.files = report.files.saturating_add(1);
                report.bytes = report.bytes.saturating_add(meta.size);
                report.records = report.records.saturating_add(entries);
                return Ok(());
            }
            Err(e) => e,
        };
        let buf = read_all(&self.storage.open(MANIFEST).await?, MANIFEST).await?;
        let listed = Manifest::decode(&buf, self.store)
            .map_or(true, |m| m.tables.iter().any(|(_, t)| t.id == meta.id));
        if !listed {
            report.note(format!("{name}: compacted away by a writer during verify"));
        } else if !self.storage.exists(&name).await? {
            report.damaged(&name, None, "table listed in the manifest is missing");
        } else {
            report.files = report.files.saturating_add(1);
            report.check::<()>(Err(err))?;
        }
        Ok(())
    }

    /// Checks the blob files `blobs` (each present, its header) and reads every reference of
    /// `refs` from them (frame CRC, owner). A blob file a writer's merge replaced meanwhile is
    /// a note, not damage.
    async fn verify_blobs(
        &self,
        blobs: &[BlobMeta],
        refs: &[(u64, Vec<u8>, u64, Vec<u8>)],
        listing: &Listing,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let files: std::collections::BTreeMap<u64, BlobFile<S>> = blobs
            .iter()
            .map(|b| {
                (
                    b.id,
                    BlobFile::new(b.clone(), self.storage.clone(), self.store),
                )
            })
            .collect();
        let mut bad: std::collections::HashSet<u64> = std::collections::HashSet::new();
        for b in blobs {
            if !listing.blobs.contains(&b.id) {
                report.damaged(
                    blob_name(b.id),
                    None,
                    "blob file listed in the manifest is missing",
                );
                bad.insert(b.id);
            } else {
                report.files = report.files.saturating_add(1);
                report.bytes = report.bytes.saturating_add(b.size);
            }
        }
        for (table, ukey, seq, raw) in refs {
            let Some(r) = BlobRef::decode(raw) else {
                report.damaged(
                    table_name(*table),
                    None,
                    format!("malformed blob reference of version {seq}"),
                );
                continue;
            };
            if bad.contains(&r.file) {
                continue;
            }
            let Some(file) = files.get(&r.file) else {
                report.damaged(
                    table_name(*table),
                    None,
                    format!(
                        "version {seq} refers to blob file {}, which the manifest does not list",
                        r.file
                    ),
                );
                continue;
            };
            match file.read(&r, ukey, *seq).await {
                Ok(_) => report.records = report.records.saturating_add(1),
                Err(e) => {
                    let buf = read_all(&self.storage.open(MANIFEST).await?, MANIFEST).await?;
                    let listed = Manifest::decode(&buf, self.store)
                        .map_or(true, |m| m.blobs.iter().any(|b| b.id == r.file));
                    if listed {
                        report.check::<()>(Err(e))?;
                        // One damage report per file is enough.
                        bad.insert(r.file);
                    } else {
                        report.note(format!(
                            "{}: merged away by a writer during verify",
                            blob_name(r.file)
                        ));
                        bad.insert(r.file);
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks the WAL files of `listing` from `wal.floor` on, in a report of their own.
    async fn verify_wals(
        &self,
        wal: WalFloor,
        listing: &Listing,
        meter: &mut Meter<'_, '_>,
    ) -> Result<VerifyReport> {
        let mut report = VerifyReport::new(ENGINE);
        let mut ids: Vec<u64> = listing
            .wals
            .iter()
            .copied()
            .filter(|id| *id >= wal.floor)
            .collect();
        ids.sort_unstable();
        if wal.newest != 0 && !ids.contains(&wal.newest) {
            let name = wal_name(wal.newest);
            report.damaged(&name, None, "WAL named by the manifest is missing");
        }
        let newest_listed = ids.last().copied();
        // Each WAL file continues the one before, the first the manifest's last flushed commit.
        let mut last = Version::new(wal.flushed, 0);
        let mut follows = Follows::Commit(wal.flushed);
        for id in ids {
            let name = wal_name(id);
            let buf = match read_file(&self.storage, &name, &mut report, meter).await? {
                Read::Bytes(buf) => buf,
                Read::Missing => {
                    report.damaged(&name, None, "WAL file is missing");
                    follows = Follows::Above(last.seq());
                    continue;
                }
                Read::Damaged => {
                    follows = Follows::Above(last.seq());
                    continue;
                }
            };
            if id > wal.newest && FileHeader::decode(&buf) == Err(BadHeader::Short) {
                report.note(format!(
                    "{name}: a WAL file without its header above the newest, as a crash while \
                     starting it leaves"
                ));
                continue;
            }
            let is_last = Some(id) == newest_listed;
            let before = last.seq();
            let replayed = replay_file(&buf, self.store, id, is_last, follows, None, &mut last);
            match report.check(replayed)? {
                Some(end) => {
                    torn_tail(&mut report, &buf, &name, end.dropped.as_ref());
                    follows = Follows::Commit(last.seq());
                }
                None => follows = Follows::Above(last.seq()),
            }
            // Commits replayed.
            report.records = report
                .records
                .saturating_add(last.seq().saturating_sub(before));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use kv_api::{Engine, Error, Options, StorageFile, Tuning, WriteBatch};
    use kv_backends::MemoryStorage;
    use kv_conformance::{flip_bit, verify_clean};
    use kv_engine_kit::header;

    use super::*;
    use crate::Lsm;
    use crate::options::LsmOptions;
    use crate::sstable::footer::{FOOTER_LEN, Footer};

    const FIRST_BLOCK: u64 = header::LEN as u64;

    /// A store with tables (flushed and compacted, several blocks each) and commits in its
    /// WAL.
    async fn store(storage: &MemoryStorage) -> Lsm<MemoryStorage> {
        let e = Lsm::open(storage.clone(), Options::default(), LsmOptions::small())
            .await
            .unwrap();
        for i in 0..300u32 {
            let key = (i % 97).to_be_bytes().to_vec();
            let batch =
                WriteBatch::new(e.snapshot().unwrap()).write(1, key, Some(vec![i as u8; 60]));
            e.commit(batch).await.unwrap();
        }
        e
    }

    async fn read_only(storage: &MemoryStorage) -> Result<Lsm<MemoryStorage>> {
        let options = Options::default().read_only(true);
        Lsm::open(storage.clone(), options, LsmOptions::small()).await
    }

    fn a_table(e: &Lsm<MemoryStorage>) -> TableMeta {
        let levels = e.inner.read_state().levels.clone();
        let meta = levels
            .all()
            .map(|(_, t)| t.meta.clone())
            .max_by_key(|m| m.size);
        meta.expect("a table")
    }

    fn newest_wal(e: &Lsm<MemoryStorage>) -> u64 {
        e.inner.wal.lock().as_ref().expect("a WAL").id
    }

    async fn footer(storage: &MemoryStorage, meta: &TableMeta) -> Footer {
        let name = table_name(meta.id);
        let file = storage.open(&name).await.unwrap();
        let raw = file
            .read_at(meta.size - FOOTER_LEN as u64, FOOTER_LEN)
            .await
            .unwrap();
        Footer::decode(&raw, &name, meta.size).unwrap()
    }

    /// The only damage of `report`: its file, and its offset (which must be known).
    fn only_damage(report: &VerifyReport) -> (&str, u64) {
        assert_eq!(report.damage.len(), 1, "{report:#?}");
        let d = &report.damage[0];
        (d.file.as_str(), d.offset.expect("an offset"))
    }

    #[tokio::test]
    async fn a_sound_store_is_clean_and_counted() {
        let storage = MemoryStorage::new();
        let e = store(&storage).await;
        let report = verify_clean(&e, "writer").await;
        assert!(report.notes.is_empty(), "{report:#?}");
        let tables = e.inner.read_state().levels.all().count() as u64;
        assert!(tables >= 2 && report.files >= tables + 3, "{report:#?}");
        verify_clean(&read_only(&storage).await.unwrap(), "read-only").await;
        // Merge reports the entries it merged.
        let seen = parking_lot::Mutex::new(Vec::new());
        e.merge_with(&|p| seen.lock().push(p)).await.unwrap();
        let seen = seen.into_inner();
        assert!(seen.iter().all(|p| p.stage == "entries"), "{seen:?}");
        let last = seen.last().unwrap();
        assert!(last.done == last.total && last.total >= 300, "{seen:?}");
        verify_clean(&e, "after a merge").await;
    }

    /// Flips a bit of the largest table at the offset `at` picks (from its footer), opens the
    /// store read-only (which reads no table: tables open at their first read) and verifies;
    /// returns the footer and the offset of the one damage, which must name the table.
    async fn damaged_table(at: impl Fn(&Footer) -> u64) -> (Footer, u64, String) {
        let storage = MemoryStorage::new();
        let e = store(&storage).await;
        let meta = a_table(&e);
        let f = footer(&storage, &meta).await;
        let name = table_name(meta.id);
        flip_bit(&storage, &name, at(&f)).await.unwrap();
        let ro = read_only(&storage).await.expect("open reads no table");
        let report = ro.verify(&|_| {}).await.unwrap();
        let (file, offset) = only_damage(&report);
        assert_eq!(file, name);
        (f, offset, report.damage[0].what.clone())
    }

    #[tokio::test]
    async fn a_data_block() {
        let (f, offset, what) = damaged_table(|_| FIRST_BLOCK + 10).await;
        assert!((FIRST_BLOCK..f.filter.offset.min(f.index.offset)).contains(&offset));
        assert!(what.contains("crc"), "{what}");
    }

    #[tokio::test]
    async fn the_index_block() {
        let (f, offset, _) = damaged_table(|f| f.index.offset + 2).await;
        assert!((f.index.offset..f.index.offset + f.index.len).contains(&offset));
    }

    /// A whole last frame of the newest WAL with a wrong CRC: open rolls it back as a torn
    /// tail, verify reports it. Earlier in the WAL, before later commits, open refuses it
    /// (`Error::Corruption`), and verify on the store opened before reports it.
    #[tokio::test]
    async fn a_wal_frame() {
        let storage = MemoryStorage::new();
        let e = store(&storage).await;
        let name = wal_name(newest_wal(&e));
        let len = storage.open(&name).await.unwrap().len().await.unwrap();
        assert!(len > FIRST_BLOCK + 200, "commits in the WAL");
        let last = kv_conformance::last_frame(&storage, &name).await.unwrap();
        flip_bit(&storage, &name, len - 5).await.unwrap();
        let ro = read_only(&storage)
            .await
            .expect("rolled back as a torn tail");
        assert_eq!(ro.recovery().dropped.len(), 1);
        assert_eq!(
            only_damage(&ro.verify(&|_| {}).await.unwrap()),
            (name.as_str(), last.expect("a frame"))
        );
        flip_bit(&storage, &name, len - 5).await.unwrap();

        flip_bit(&storage, &name, FIRST_BLOCK + 20).await.unwrap();
        assert!(matches!(
            read_only(&storage).await,
            Err(Error::Corruption { .. })
        ));
        let report = e.verify(&|_| {}).await.unwrap();
        assert_eq!(only_damage(&report), (name.as_str(), FIRST_BLOCK));
    }

    /// A cut last transaction of the newest WAL is what a crash leaves: a note.
    #[tokio::test]
    async fn a_torn_wal_tail_is_a_note() {
        let storage = MemoryStorage::new();
        let e = store(&storage).await;
        let name = wal_name(newest_wal(&e));
        let file = storage.open(&name).await.unwrap();
        file.truncate(file.len().await.unwrap() - 3).await.unwrap();
        let report = e.verify(&|_| {}).await.unwrap();
        assert!(report.is_clean(), "{report:#?}");
        assert_eq!(report.notes.len(), 1, "{report:#?}");
        assert!(report.notes[0].starts_with(&name));
    }

    /// Open refuses a damaged MANIFEST; verify on the store opened before reports it and goes
    /// on with the tables it holds.
    #[tokio::test]
    async fn the_manifest() {
        let storage = MemoryStorage::new();
        let e = store(&storage).await;
        flip_bit(&storage, MANIFEST, FIRST_BLOCK + 12)
            .await
            .unwrap();
        assert!(matches!(
            read_only(&storage).await,
            Err(Error::Corruption { .. })
        ));
        let report = e.verify(&|_| {}).await.unwrap();
        assert_eq!(only_damage(&report), (MANIFEST, FIRST_BLOCK));
        let tables = e.inner.read_state().levels.all().count() as u64;
        assert!(report.files >= tables + 2, "went on: {report:#?}");
    }

    /// A listed table that is gone is damage (open refuses it); an unlisted one is a note.
    #[tokio::test]
    async fn missing_and_leftover_tables() {
        let storage = MemoryStorage::new();
        let e = store(&storage).await;
        let meta = a_table(&e);
        storage.remove(&table_name(meta.id)).await.unwrap();
        assert!(matches!(
            read_only(&storage).await,
            Err(Error::Corruption { .. })
        ));
        storage.create(&table_name(99_999)).await.unwrap();
        let report = e.verify(&|_| {}).await.unwrap();
        assert_eq!(report.damage.len(), 1, "{report:#?}");
        assert_eq!(report.damage[0].file, table_name(meta.id));
        assert_eq!(report.notes.len(), 1, "{report:#?}");
        assert!(report.notes[0].starts_with(&table_name(99_999)));
        e.close().await.unwrap();
        assert!(matches!(e.verify(&|_| {}).await, Err(Error::Closed)));
    }
}
