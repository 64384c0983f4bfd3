//! `Engine::verify` for Bitcask: every file of the store read whole and checked, with the
//! decoders that opening uses (`IDENTITY`, `META`, segment replay, hints), plus what opening
//! trusts without reading: each hint against its segment's records, and the keydir against
//! the records it points at. Nothing is written; damage is reported and the check goes on.

use std::collections::{HashMap, HashSet};

use kv_api::{ProgressFn, Result, Storage, VerifyReport};
use kv_engine_kit::files::read_all;
use kv_engine_kit::verify::{self, Meter, Read, read_file, torn_tail};

use crate::Bitcask;
use crate::hint::{self, Last};
use crate::key::Key;
use crate::keydir::Loc;
use crate::meta::Meta;
use crate::recovery::{self, Entries};
use crate::segment::{FileKind, META, hint_name, parse_name, segment_header, segment_name};

/// The names this engine writes.
fn is_ours(name: &str) -> bool {
    parse_name(name).is_some()
}

/// How many disagreements of one kind are listed one by one before they are counted.
const LISTED: usize = 8;

/// The records of a segment as verify read them: by offset, the bytes read, and whether the
/// whole segment decoded (a damaged one is not compared with anything).
struct Checked {
    records: HashMap<u64, (Key, Loc)>,
    len: u64,
    whole: bool,
}

impl<S: Storage> Bitcask<S> {
    /// See the module docs and [`kv_api::Engine::verify`].
    pub(crate) async fn verify_files(&self, progress: &ProgressFn<'_>) -> Result<VerifyReport> {
        self.pipeline.check_open()?;
        // No merge of this engine deletes files while they are checked.
        let _one_merge = self.merging.lock().await;
        self.pipeline.check_open()?;
        let engine = (recovery::ENGINE, META);
        let begun = verify::begin(&self.storage, progress, engine, is_ours, self.store).await?;
        let (mut report, mut meter, names) = (begun.report, begun.meter, begun.names);
        if !begun.found {
            return Ok(report);
        }

        let meta = match read_file(&self.storage, META, &mut report, &mut meter).await? {
            Read::Bytes(buf) => report.check(Meta::decode(&buf, self.store))?,
            Read::Missing => {
                report.damaged(META, None, "the manifest is missing");
                None
            }
            Read::Damaged => None,
        };
        // Without a readable META, the segments this engine opened with.
        let segments: Vec<(u32, bool)> = match &meta {
            Some(m) => m.segments.iter().map(|s| (s.id, s.merged)).collect(),
            None => {
                let layout = self.layout.lock();
                let sealed = layout.sealed.iter().map(|s| (s.id, s.merged));
                sealed
                    .chain(layout.active.as_ref().map(|a| (a.id, false)))
                    .collect()
            }
        };
        let hints: HashSet<u32> = names
            .iter()
            .filter_map(|n| match parse_name(n) {
                Some(FileKind::Hint(id)) => Some(id),
                _ => None,
            })
            .collect();

        let mut checked: HashMap<u32, Checked> = HashMap::new();
        // As in recovery: the newest commit so far, and whether a log segment holds it (then
        // the next log segment must start right after it).
        let mut last: Last = (0, 0);
        let mut continues_log = false;
        let active = segments.last().map(|s| s.0);
        for &(id, merged) in &segments {
            let is_last = Some(id) == active;
            let name = segment_name(id);
            let buf = match read_file(&self.storage, &name, &mut report, &mut meter).await? {
                Read::Bytes(buf) => buf,
                Read::Missing => {
                    if self.still_listed(id).await? {
                        report.damaged(&name, None, "segment named by META is missing");
                    } else {
                        report.note(format!("{name}: merged away by a writer during verify"));
                    }
                    continues_log = false;
                    continue;
                }
                Read::Damaged => {
                    continues_log = false;
                    continue;
                }
            };
            let header = segment_header(self.store, id, merged);
            if report.check(header.check(&buf, &name))?.is_none() {
                continues_log = false;
                continue;
            }
            let mut entries = Entries::new();
            let seg_last = if merged {
                report.check(recovery::replay_merged(&buf, &name, id, &mut entries))?
            } else {
                let after = (last, continues_log);
                let replayed =
                    recovery::replay_log(&buf, &name, id, is_last, after, &mut entries, None);
                report.check(replayed)?.map(|(seg_last, end)| {
                    torn_tail(&mut report, &buf, &name, end.dropped.as_ref());
                    seg_last
                })
            };
            report.records = report.records.saturating_add(entries.len() as u64);
            match seg_last {
                Some(seg_last) => {
                    if seg_last.0 > last.0 {
                        continues_log = !merged;
                    }
                    last = last.max(seg_last);
                }
                None => continues_log = false,
            }
            let whole = seg_last.is_some();
            let len = buf.len() as u64;
            drop(buf);
            if !is_last && hints.contains(&id) {
                let entries = whole.then_some(entries.as_slice());
                self.verify_hint(&mut report, &mut meter, id, len, entries)
                    .await?;
            }
            let records = entries.into_iter().map(|(k, l)| (l.offset, (k, l)));
            checked.insert(
                id,
                Checked {
                    records: records.collect(),
                    len,
                    whole,
                },
            );
        }
        self.verify_keydir(&mut report, &checked);

        let listed: HashSet<u32> = segments.iter().map(|s| s.0).collect();
        for name in &names {
            let leftover = match parse_name(name) {
                Some(FileKind::Segment(id)) => !listed.contains(&id),
                Some(FileKind::Hint(id)) => !listed.contains(&id) || Some(id) == active,
                Some(FileKind::MetaTmp) => true,
                Some(FileKind::Meta) | None => false,
            };
            if leftover {
                report.note(format!(
                    "{name}: a file META does not name (a leftover, or new since META was \
                     read); the next writable open removes leftovers"
                ));
            }
        }
        Ok(report)
    }

    /// Whether the current `META` still names segment `id` (a damaged one counts as naming
    /// it: its damage is reported already).
    async fn still_listed(&self, id: u32) -> Result<bool> {
        let buf = read_all(&self.storage.open(META).await?, META).await?;
        Ok(Meta::decode(&buf, self.store).map_or(true, |m| m.segments.iter().any(|s| s.id == id)))
    }

    /// Checks the hint of sealed segment `id` (`segment_len` bytes): whole and sound, and,
    /// if the segment decoded (`entries`, its records), listing exactly its records.
    async fn verify_hint(
        &self,
        report: &mut VerifyReport,
        meter: &mut Meter<'_, '_>,
        id: u32,
        segment_len: u64,
        entries: Option<&[(Key, Loc)]>,
    ) -> Result<()> {
        let name = hint_name(id);
        // A hint is an optimisation: a missing one is no damage.
        let Read::Bytes(buf) = read_file(&self.storage, &name, report, meter).await? else {
            return Ok(());
        };
        let checked = hint::check(&buf, &name, self.store, id, segment_len);
        let Some((hinted, _)) = report.check(checked)? else {
            return Ok(());
        };
        report.records = report.records.saturating_add(hinted.len() as u64);
        let Some(entries) = entries else {
            return Ok(());
        };
        let by_offset: HashMap<u64, &(Key, Loc)> =
            entries.iter().map(|e| (e.1.offset, e)).collect();
        let wrong: Vec<&(Key, Loc)> = hinted
            .iter()
            .filter(|(k, l)| {
                !by_offset
                    .get(&l.offset)
                    .is_some_and(|e| e.0 == *k && e.1 == *l)
            })
            .collect();
        if let Some((key, loc)) = wrong.first() {
            report.damaged(
                &name,
                None,
                format!(
                    "{} of its {} entries disagree with {}; the first: key {key:?} sequence {} \
                     at offset {}",
                    wrong.len(),
                    hinted.len(),
                    segment_name(id),
                    loc.seq,
                    loc.offset
                ),
            );
        } else if hinted.len() != entries.len() {
            report.damaged(
                &name,
                None,
                format!(
                    "lists {} entries; {} holds {} records",
                    hinted.len(),
                    segment_name(id),
                    entries.len()
                ),
            );
        }
        Ok(())
    }

    /// Checks that every keydir entry in a segment that decoded whole is the record there
    /// (key, sequence number, time, length, kind). Entries in bytes verify did not read
    /// (appended since, or in a file merged away) are skipped.
    fn verify_keydir(&self, report: &mut VerifyReport, checked: &HashMap<u32, Checked>) {
        let mut wrong: Vec<(u32, Key, Loc)> = Vec::new();
        let mut count = 0usize;
        {
            let kd = self.keydir.read();
            for (key, loc) in kd.entries() {
                let Some(seg) = checked.get(&loc.file()) else {
                    continue;
                };
                let end = loc.offset.saturating_add(u64::from(loc.len));
                if !seg.whole || end > seg.len {
                    continue;
                }
                let agrees = seg
                    .records
                    .get(&loc.offset)
                    .is_some_and(|(k, l)| k == key && l == loc);
                if !agrees {
                    count = count.saturating_add(1);
                    if wrong.len() < LISTED {
                        wrong.push((loc.file(), key.clone(), *loc));
                    }
                }
            }
        }
        for (file, key, loc) in &wrong {
            report.damaged(
                segment_name(*file),
                Some(loc.offset),
                format!(
                    "the index's version {} of key {key:?} is not the record there",
                    loc.seq
                ),
            );
        }
        if count > wrong.len() {
            report.damaged(
                "keydir",
                None,
                format!(
                    "{} more index entries disagree with their records",
                    count.saturating_sub(wrong.len())
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use kv_api::{Engine, Error, Options, StorageFile, WriteBatch};
    use kv_backends::MemoryStorage;
    use kv_conformance::{flip_bit, verify_clean};
    use kv_engine_kit::header;

    use super::*;

    /// A store of several sealed log segments with hints (and merged ones if `merge`), and an
    /// active segment with commits in it.
    async fn store(storage: &MemoryStorage, merge: bool) -> Bitcask<MemoryStorage> {
        let options = Options::default().segment_size(400);
        let e = Bitcask::open(storage.clone(), options, ()).await.unwrap();
        for round in 0..2 {
            for i in 0..20u8 {
                let batch =
                    WriteBatch::new(e.snapshot().unwrap()).write(0, vec![i % 7], Some(vec![i; 50]));
                e.commit(batch).await.unwrap();
            }
            if merge && round == 0 {
                e.merge().await.unwrap();
            }
        }
        e
    }

    async fn read_only(storage: &MemoryStorage) -> Result<Bitcask<MemoryStorage>> {
        Bitcask::open(storage.clone(), Options::default().read_only(true), ()).await
    }

    fn sealed(e: &Bitcask<MemoryStorage>, merged: bool) -> u32 {
        let layout = e.layout.lock();
        let s = layout.sealed.iter().find(|s| s.merged == merged);
        s.expect("a sealed segment of that kind").id
    }

    fn active(e: &Bitcask<MemoryStorage>) -> u32 {
        e.layout.lock().active.as_ref().expect("active").id
    }

    /// The only damage of `report`, as (file, offset).
    fn only_damage(report: &VerifyReport) -> (&str, Option<u64>) {
        assert_eq!(report.damage.len(), 1, "{report:#?}");
        (report.damage[0].file.as_str(), report.damage[0].offset)
    }

    const FIRST_RECORD: u64 = header::LEN as u64;

    #[tokio::test]
    async fn a_sound_store_is_clean_and_counted() {
        let storage = MemoryStorage::new();
        let e = store(&storage, true).await;
        let report = verify_clean(&e, "writer").await;
        assert!(report.notes.is_empty(), "{report:#?}");
        assert!(report.files >= 6 && report.records > 40, "{report:#?}");
        verify_clean(&read_only(&storage).await.unwrap(), "read-only").await;
    }

    /// Open lets it through (the segment is loaded from its hint, never read): verify finds it.
    #[tokio::test]
    async fn a_value_in_a_sealed_segment() {
        let storage = MemoryStorage::new();
        let e = store(&storage, false).await;
        let id = sealed(&e, false);
        flip_bit(&storage, &segment_name(id), FIRST_RECORD + 30)
            .await
            .unwrap();
        let ro = read_only(&storage)
            .await
            .expect("open does not read the segment");
        // The trait's default check, through reads, meets it too (the key's value is read).
        let logical = kv_api::verify::logical_verify(&ro, &|_| {}).await.unwrap();
        assert!(
            logical.damage.iter().any(|d| d.file == segment_name(id)),
            "{logical:#?}"
        );
        for e in [&e, &ro] {
            let report = e.verify(&|_| {}).await.unwrap();
            assert_eq!(
                only_damage(&report),
                (segment_name(id).as_str(), Some(FIRST_RECORD))
            );
            assert!(
                report.damage[0].to_string().contains("crc mismatch"),
                "{report:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_record_in_a_merged_segment() {
        let storage = MemoryStorage::new();
        let e = store(&storage, true).await;
        let id = sealed(&e, true);
        flip_bit(&storage, &segment_name(id), FIRST_RECORD + 30)
            .await
            .unwrap();
        let ro = read_only(&storage)
            .await
            .expect("open loads the merged segment's hint");
        let report = ro.verify(&|_| {}).await.unwrap();
        assert_eq!(
            only_damage(&report),
            (segment_name(id).as_str(), Some(FIRST_RECORD))
        );
    }

    /// Open replays the segment instead of a damaged hint: only verify reports the hint.
    #[tokio::test]
    async fn a_hint() {
        let storage = MemoryStorage::new();
        let e = store(&storage, false).await;
        let id = sealed(&e, false);
        flip_bit(&storage, &hint_name(id), FIRST_RECORD + 20)
            .await
            .unwrap();
        let ro = read_only(&storage).await.expect("open replays the segment");
        let report = ro.verify(&|_| {}).await.unwrap();
        assert_eq!(
            only_damage(&report),
            (hint_name(id).as_str(), Some(FIRST_RECORD))
        );
    }

    /// A hint whose CRCs hold but whose entry names another version: open trusts it, so both
    /// the hint and the keydir built from it disagree with the segment.
    #[tokio::test]
    async fn a_hint_that_lies_and_the_keydir_it_built() {
        let storage = MemoryStorage::new();
        let e = store(&storage, false).await;
        let id = sealed(&e, false);
        let (name, seg) = (hint_name(id), segment_name(id));
        let len = storage.open(&seg).await.unwrap().len().await.unwrap();
        let file = storage.open(&name).await.unwrap();
        let buf = read_all(&file, &name).await.unwrap();
        let (mut entries, last) = hint::check(&buf, &name, e.store, id, len).unwrap();
        let (_, loc) = entries[0];
        entries[0].1 = Loc::new(loc.seq + 1, loc.time_ms, id, loc.offset, loc.len, false);
        file.truncate(0).await.unwrap();
        file.append(&hint::encode(e.store, id, len, last, &entries))
            .await
            .unwrap();
        let ro = read_only(&storage).await.expect("the hint is trusted");
        let report = ro.verify(&|_| {}).await.unwrap();
        let found: Vec<(&str, Option<u64>)> = report
            .damage
            .iter()
            .map(|d| (d.file.as_str(), d.offset))
            .collect();
        assert_eq!(
            found,
            vec![(name.as_str(), None), (seg.as_str(), Some(loc.offset))]
        );
    }

    /// Open refuses a damaged META (`Error::Corruption`); verify on the store opened before
    /// reports it and goes on to check every segment (with the layout it opened with).
    #[tokio::test]
    async fn meta() {
        let storage = MemoryStorage::new();
        let e = store(&storage, true).await;
        flip_bit(&storage, META, FIRST_RECORD + 12).await.unwrap();
        assert!(matches!(
            read_only(&storage).await,
            Err(Error::Corruption { .. })
        ));
        let report = e.verify(&|_| {}).await.unwrap();
        assert_eq!(only_damage(&report), (META, Some(FIRST_RECORD)));
        assert!(report.files >= 6, "went on: {report:#?}");
    }

    /// In the newest segment, a whole last frame with a wrong CRC is damage (open rolls the
    /// transaction back as a torn tail); a cut last frame is a note.
    #[tokio::test]
    async fn the_newest_segment_tail() {
        let storage = MemoryStorage::new();
        let e = store(&storage, false).await;
        let name = segment_name(active(&e));
        let len = storage.open(&name).await.unwrap().len().await.unwrap();
        let commit_frame = kv_conformance::last_frame(&storage, &name)
            .await
            .unwrap()
            .expect("a frame");
        flip_bit(&storage, &name, len - 5).await.unwrap();
        let ro = read_only(&storage)
            .await
            .expect("rolled back as a torn tail");
        assert_eq!(ro.recovery().dropped.len(), 1);
        let report = ro.verify(&|_| {}).await.unwrap();
        assert_eq!(only_damage(&report), (name.as_str(), Some(commit_frame)));

        storage
            .open(&name)
            .await
            .unwrap()
            .truncate(len - 3)
            .await
            .unwrap();
        let report = ro.verify(&|_| {}).await.unwrap();
        assert!(report.is_clean(), "{report:#?}");
        assert_eq!(report.notes.len(), 1, "{report:#?}");
        assert!(report.notes[0].starts_with(&name), "{report:?}");
    }

    /// Several damaged files: each is reported, the check goes on.
    #[tokio::test]
    async fn every_damaged_file_is_reported() {
        let storage = MemoryStorage::new();
        let e = store(&storage, false).await;
        let ids: Vec<u32> = e.layout.lock().sealed.iter().map(|s| s.id).collect();
        assert!(ids.len() >= 3);
        for id in &ids {
            flip_bit(&storage, &segment_name(*id), FIRST_RECORD + 30)
                .await
                .unwrap();
        }
        let report = e.verify(&|_| {}).await.unwrap();
        let files: Vec<String> = report.damage.iter().map(|d| d.file.clone()).collect();
        let want: Vec<String> = ids.iter().map(|id| segment_name(*id)).collect();
        assert_eq!(files, want, "{report:#?}");
        e.close().await.unwrap();
        assert!(matches!(e.verify(&|_| {}).await, Err(Error::Closed)));
    }
}
