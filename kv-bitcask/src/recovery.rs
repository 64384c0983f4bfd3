//! Opening a store (after `IDENTITY` was checked, see [`kv_engine_kit::identity`]): read
//! `META` (or, without it, refuse anything but a new store: see [`check_without_meta`]),
//! clean up what a crash left behind, check every segment's header, rebuild the keydir from
//! hint files (sealed segments) and log replay (the active segment, or a segment whose hint is
//! missing or damaged), and cut a torn tail off the active segment. A segment `META` names
//! that storage lacks, or whose header names another store, another segment or another kind,
//! is [`Error::Corruption`], whatever the store's age.

use std::collections::{HashMap, HashSet};

use kv_api::{Error, RecoveryReport, Result, Storage, StorageFile, Version};
use kv_engine_kit::header::{self, FileHeader, StoreId};
use kv_engine_kit::identity::is_identity_file;
use kv_engine_kit::txlog::{self, Follows};

use crate::hint::{HintRun, Last};
use crate::key::Key;
use crate::keydir::{Keydir, Loc, Run};
use crate::layout::{Active, Layout, SegFile, SegInfo};
use crate::merged;
use crate::meta::Meta;
use crate::segment::{FileKind, META, hint_name, parse_name, segment_header, segment_name};
use kv_engine_kit::files::read_all;

/// Everything an engine needs to start serving.
pub(crate) struct Recovered<F> {
    pub layout: Layout<F>,
    pub keydir: Keydir,
    pub handles: HashMap<u32, SegFile<F>>,
    pub last: Version,
    pub horizon: u64,
    /// What recovery left out (a torn tail of the active segment).
    pub report: RecoveryReport,
}

pub(crate) type Entries = Vec<(Key, Loc)>;

/// Replays a log segment into `entries` (and `pending`, for the active one). `after` is the
/// last commit of the segments before it; `continues_log` says whether the segment before it
/// was a log segment too, whose last commit this one's first must follow without a gap (after
/// a merged segment, whose newest version need not be the newest commit, any later one will).
pub(crate) fn replay_log(
    buf: &[u8],
    name: &str,
    id: u32,
    is_last: bool,
    (after, continues_log): (Last, bool),
    entries: &mut Entries,
    mut pending: Option<&mut Entries>,
) -> Result<(Last, txlog::ReplayEnd)> {
    let mut last = after;
    let follows = if continues_log {
        Follows::Commit(after.0)
    } else {
        Follows::Above(after.0)
    };
    let end = txlog::replay(buf, header::LEN, name, is_last, follows, |txn| {
        // Bitcask never writes range removals (it removes a range key by key).
        if !txn.ranges.is_empty() {
            return Err(kv_api::Error::corruption(
                name,
                txn.end,
                "range removal record in a Bitcask log",
            ));
        }
        for w in &txn.writes {
            let key = Key::new(w.slot, w.key);
            let loc = Loc::new(
                txn.seq,
                txn.time_ms,
                id,
                w.loc.offset,
                w.loc.len,
                w.value.is_none(),
            );
            if let Some(p) = pending.as_deref_mut() {
                p.push((key.clone(), loc));
            }
            entries.push((key, loc));
        }
        last = (txn.seq, txn.time_ms);
        Ok(())
    })?;
    Ok((last, end))
}

/// Reads a merged segment into `entries`.
pub(crate) fn replay_merged(
    buf: &[u8],
    name: &str,
    id: u32,
    entries: &mut Entries,
) -> Result<Last> {
    let mut last = (0, 0);
    merged::replay(buf, header::LEN, name, |w| {
        let loc = Loc::new(
            w.seq,
            w.time_ms,
            id,
            w.loc.offset,
            w.loc.len,
            w.value.is_none(),
        );
        entries.push((Key::new(w.slot, w.key), loc));
        last = last.max((w.seq, w.time_ms));
        Ok(())
    })?;
    Ok(last)
}

/// The hint of segment `id`, `len` bytes long, if it can be trusted: its entries (decoded as
/// the keydir takes them) and the segment's last commit.
async fn load_hint<S: Storage>(
    storage: &S,
    store: StoreId,
    id: u32,
    len: u64,
) -> Option<(HintRun, Last)> {
    let name = hint_name(id);
    let file = storage.open(&name).await.ok()?;
    let buf = read_all(&file, &name).await.ok()?;
    HintRun::check(buf, store, id, len)
}

/// Creates segment file `header.file_id` holding only `header`, durable (file and namespace)
/// before any manifest names it.
pub(crate) async fn create_segment<S: Storage>(storage: &S, header: FileHeader) -> Result<S::File> {
    let id = u32::try_from(header.file_id)
        .map_err(|_| Error::InvalidArgument("segment id out of range".into()))?;
    let file = storage.create(&segment_name(id)).await?;
    file.append(&header.to_bytes()).await?;
    file.sync().await?;
    storage.sync().await?;
    Ok(file)
}

/// Removes files of ours that `meta` does not name: leftovers of a crashed roll or merge,
/// stale hints of the active segment, a half-written `META.tmp`.
///
/// Only with a `META` that exists and decoded (CRC and all) is this proof of garbage: a roll
/// writes `META` naming the new segment before any commit is appended to it, and a merge
/// writes `META` naming its outputs before it deletes its inputs (see `merge`), so a
/// segment `META` does not name holds nothing the store still needs.
async fn clean_up<S: Storage>(storage: &S, meta: &Meta, ours: &[(String, FileKind)]) -> Result<()> {
    let listed: HashSet<u32> = meta.segments.iter().map(|s| s.id).collect();
    let active = meta.segments.last().map(|s| s.id);
    let mut removed = false;
    for (name, kind) in ours {
        let remove = match *kind {
            FileKind::Segment(id) => !listed.contains(&id),
            FileKind::Hint(id) => !listed.contains(&id) || Some(id) == active,
            FileKind::MetaTmp => true,
            FileKind::Meta => false,
        };
        if remove {
            storage.remove(name).await?;
            removed = true;
        }
    }
    if removed {
        storage.sync().await?;
    }
    Ok(())
}

/// The engine's name in errors and in `IDENTITY` ([`kv_api::Engine::NAME`]).
pub(crate) const ENGINE: &str = "bitcask";

/// The id of a new store's first segment (see [`Meta::fresh`]).
const FIRST_SEGMENT: u32 = 1;

/// Without `META`, `names` may hold nothing but what a crash while creating a store can leave:
/// `IDENTITY` (written first), a first segment holding at most its header (created and synced
/// before `META` is written, and no commit comes before `META`), a `META.tmp`. Else the open
/// would take a damaged store for a new one, or write into another store:
///
/// * a file this engine never writes: [`Error::Foreign`] naming them (another engine's store,
///   or a directory that is not a store);
/// * another segment, a non-empty first one, a hint: [`Error::Corruption`] naming `META`, the
///   only record of which segments are live. Nothing can prove any of them garbage, so
///   nothing may be deleted, and nothing is created.
///
/// With `META` there is nothing to check here.
pub(crate) async fn check_without_meta<S: Storage>(storage: &S, names: &[String]) -> Result<()> {
    if names.iter().any(|n| n == META) {
        return Ok(());
    }
    let foreign: Vec<&String> = names
        .iter()
        .filter(|n| parse_name(n).is_none() && !is_identity_file(n))
        .collect();
    if !foreign.is_empty() {
        return Err(Error::foreign(ENGINE, &foreign));
    }
    for name in names.iter().filter(|n| !is_identity_file(n)) {
        let crashed_creation = match parse_name(name) {
            Some(FileKind::Segment(FIRST_SEGMENT)) => {
                storage.open(name).await?.len().await? <= header::LEN as u64
            }
            Some(FileKind::MetaTmp) => true,
            _ => false,
        };
        if !crashed_creation {
            if storage.exists(META).await? {
                // Created since the listing, by a writer beside this read-only open (a
                // writer's first commit comes after META): not damage.
                return Ok(());
            }
            return Err(Error::corruption(
                META,
                0,
                format!("META is missing, but the storage holds {name}"),
            ));
        }
    }
    Ok(())
}

/// Opens store `store` on `storage`; see the module docs. `read_only` writes nothing at all.
/// `store` is `None` only for a read-only open of a storage without `IDENTITY` (and so
/// without a store): an empty view.
pub(crate) async fn recover<S: Storage>(
    storage: &S,
    store: Option<StoreId>,
    read_only: bool,
) -> Result<Recovered<S::File>> {
    let names = storage.list().await?;
    check_without_meta(storage, &names).await?;
    let ours: Vec<(String, FileKind)> = names
        .iter()
        .filter_map(|n| parse_name(n).map(|k| (n.clone(), k)))
        .collect();
    let mut present: HashSet<String> = names.iter().cloned().collect();

    let meta = match store {
        Some(store) if present.contains(META) => {
            let file = storage.open(META).await?;
            Some((store, Meta::decode(&read_all(&file, META).await?, store)?))
        }
        _ => None,
    };
    let (store, meta) = if let Some(found) = meta {
        found
    } else {
        // A new store, or what a crash while creating one left (`check_without_meta`).
        let Some(store) = store.filter(|_| !read_only) else {
            return Ok(Recovered {
                layout: Layout {
                    sealed: Vec::new(),
                    active: None,
                    next_id: 1,
                },
                keydir: Keydir::default(),
                handles: HashMap::new(),
                last: Version::ZERO,
                horizon: 0,
                report: RecoveryReport::default(),
            });
        };
        let fresh = Meta::fresh();
        debug_assert_eq!(fresh.segments.last().map(|s| s.id), Some(FIRST_SEGMENT));
        // The first segment is durable before META names it: a crash in between leaves a
        // segment of at most its header without META (a new store again, and `create`
        // replaces it), never META naming a missing segment, which is damage.
        create_segment(storage, segment_header(store, FIRST_SEGMENT, false)).await?;
        fresh.write(storage, store).await?;
        present.insert(segment_name(FIRST_SEGMENT));
        present.insert(META.to_string());
        (store, fresh)
    };
    if !read_only {
        clean_up(storage, &meta, &ours).await?;
    }
    let hints: HashSet<u32> = ours
        .iter()
        .filter_map(|(_, k)| match k {
            FileKind::Hint(id) => Some(*id),
            _ => None,
        })
        .collect();

    let Some((active_ref, sealed_refs)) = meta.segments.split_last() else {
        return Err(Error::corruption(META, 0, "no active segment"));
    };
    // One run of keydir entries per segment, in replay order.
    let mut runs: Vec<Run> = Vec::with_capacity(meta.segments.len());
    let mut handles = HashMap::new();
    let mut sealed = Vec::with_capacity(sealed_refs.len());
    let mut last: Last = (0, 0);
    // Whether the newest commit so far came from a log segment: then the next log segment's
    // first commit must be the one after it (a missing segment shows as a gap).
    let mut continues_log = false;
    let mut report = RecoveryReport::default();
    for s in sealed_refs {
        let name = segment_name(s.id);
        if !present.contains(name.as_str()) {
            return Err(Error::corruption(
                &name,
                0,
                "segment named by META is missing",
            ));
        }
        let file = storage.open(&name).await?;
        let len = file.len().await?;
        let head = segment_header(store, s.id, s.merged);
        let hinted = if hints.contains(&s.id) {
            load_hint(storage, store, s.id, len).await
        } else {
            None
        };
        let seg_last = match hinted {
            Some((hint, l)) => {
                head.check_file(&file, &name).await?;
                runs.push(Run::Hint(hint));
                l
            }
            None => {
                let mut entries = Entries::new();
                let buf = read_all(&file, &name).await?;
                head.check(&buf, &name)?;
                let seg_last = if s.merged {
                    replay_merged(&buf, &name, s.id, &mut entries)?
                } else {
                    replay_log(
                        &buf,
                        &name,
                        s.id,
                        false,
                        (last, continues_log),
                        &mut entries,
                        None,
                    )?
                    .0
                };
                runs.push(Run::sorted(entries));
                seg_last
            }
        };
        if seg_last.0 > last.0 {
            continues_log = !s.merged;
        }
        last = last.max(seg_last);
        sealed.push(SegInfo {
            id: s.id,
            merged: s.merged,
            len,
        });
        handles.insert(s.id, SegFile::new(file, len));
    }

    let name = segment_name(active_ref.id);
    if !present.contains(name.as_str()) {
        return Err(Error::corruption(
            &name,
            0,
            "active segment named by META is missing",
        ));
    }
    let file = storage.open(&name).await?;
    let buf = read_all(&file, &name).await?;
    // The active segment's header was synced before META named it: damage, not a torn tail.
    segment_header(store, active_ref.id, false).check(&buf, &name)?;
    let mut pending = Vec::new();
    let mut entries = Entries::new();
    let (active_last, end) = replay_log(
        &buf,
        &name,
        active_ref.id,
        true,
        (last, continues_log),
        &mut entries,
        Some(&mut pending),
    )?;
    let valid_len = end.valid_len;
    report.dropped.extend(end.dropped);
    runs.push(Run::sorted(entries));
    if !read_only {
        if valid_len < buf.len() as u64 {
            // A torn tail: the uncommitted transaction goes, write records included, so the
            // next commit appended here is not glued to its remains.
            file.truncate(valid_len).await?;
        }
        // What recovery serves must survive a power loss right after: the tail may have been
        // written but never synced by the process that crashed.
        file.sync().await?;
        storage.sync().await?;
    }
    last = last.max(active_last);
    handles.insert(active_ref.id, SegFile::new(file.clone(), valid_len));
    let active = Some(Active {
        id: active_ref.id,
        file,
        len: valid_len,
        pending: pending.into(),
    });

    let last = Version::new(last.0.max(meta.last_seq), last.1.max(meta.last_time_ms));
    Ok(Recovered {
        layout: Layout {
            sealed,
            active,
            next_id: meta.next_id,
        },
        keydir: Keydir::from_runs(runs),
        handles,
        last,
        horizon: meta.horizon,
        report,
    })
}
