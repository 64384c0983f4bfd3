//! `Engine::verify` for Bitcask: every file of the store read whole and checked, with the
//! decoders that opening uses (`IDENTITY`, `META`, segment replay, hints), plus what opening
//! trusts without reading: each hint against its segment's records, and the keydir against
//! the records it points at. Nothing is written; damage is reported and the check goes on.

use std::collections::{HashMap, HashSet};

use kv_api::{ProgressFn, Result, Storage, VerifyReport};
use kv_engine_kit::files::read_all;
use kv_engine_kit::identity::{self, Found, IDENTITY};
use kv_engine_kit::verify::{Meter, Read, read_file, torn_tail, total_len};

use crate::Bitcask;
use crate::hint::{self, Last};
use crate::key::Key;
use crate::keydir::Loc;
use crate::meta::Meta;
use crate::recovery::{self, Entries};
use crate::segment::{FileKind, META, hint_name, parse_name, segment_header, segment_name};

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
        let mut report = VerifyReport::new(recovery::ENGINE);
        let names = self.storage.list().await?;
        let ours: Vec<String> = names
            .iter()
            .filter(|n| parse_name(n).is_some())
            .cloned()
            .collect();
        let mut meter = Meter::new(progress, total_len(&self.storage, &ours).await?);
        let found = identity::check(
            &self.storage,
            recovery::ENGINE,
            &names,
            |n| parse_name(n).is_some(),
            META,
        )
        .await;
        match report.check(found)? {
            Some(Found::Store(id)) => {
                report.files = report.files.saturating_add(1);
                if id.store != self.store {
                    report.damaged(
                        IDENTITY,
                        Some(0),
                        format!(
                            "names store {}, the store opened is {}",
                            id.store, self.store
                        ),
                    );
                }
            }
            Some(Found::Empty) => {
                report.note("no store in this storage yet: nothing to check");
                return Ok(report);
            }
            None => {}
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
        let hints: HashSet<u32> = ours
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
        for name in &ours {
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
