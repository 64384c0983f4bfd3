//! Export, import and backup: every version (sequence number, time, removals, values, the
//! catalog) moves between stores through the portable stream or a direct copy; damage to the
//! stream is a typed error.

use std::ops::Bound;

use kv_api::{Engine, ExportScope, KeyRange, SlotDef, Store};

use super::prelude::*;

const USERS: SlotDef<String, u32> = SlotDef::new(1, "users");

/// Each version of one key: sequence number, time, removal, value.
pub type VersionRow = (u64, u64, bool, Option<Vec<u8>>);
/// Every key of every slot with its versions, at one version of a store.
pub type Dump = Vec<(u8, Vec<u8>, Vec<VersionRow>)>;

/// Every key of every slot (the catalog included) at `at`, with every version as
/// `scan_versions`, `versions` and `get_version` report it (the three must agree; panics
/// otherwise): what two stores holding the same versions have in common, whatever engine.
pub async fn dump_versions<E: Engine>(store: &Store<E>, at: u64) -> Dump {
    let engine = store.engine();
    let mut out = Vec::new();
    for slot in 0..=u8::MAX {
        let mut range = KeyRange::all();
        loop {
            let page = must!(engine.scan_versions(slot, &range, at, 7).await);
            let Some((last, _)) = page.last() else { break };
            range.start = Bound::Excluded(last.clone());
            let full = page.len() == 7;
            for (key, listed) in page {
                let versions = must!(engine.versions(slot, &key, at).await);
                let rows = |vs: &[Version]| -> Vec<(u64, u64, bool)> {
                    vs.iter()
                        .map(|v| (v.seq(), v.time_ms(), v.is_removal()))
                        .collect()
                };
                assert_eq!(rows(&listed), rows(&versions), "scan_versions vs versions");
                let mut rows = Vec::new();
                for v in versions {
                    let value = must!(engine.get_version(slot, &key, v).await);
                    assert_eq!(value.is_none(), v.is_removal(), "removal flag vs value");
                    rows.push((v.seq(), v.time_ms(), v.is_removal(), value));
                }
                out.push((slot, key, rows));
            }
            if !full {
                break;
            }
        }
    }
    out
}

/// A history over two slots (one typed, so the catalog has an entry): overwrites, removals, a
/// key whose newest version is a removal, a commit of several keys. Returns the store.
async fn history<E: Engine>(store: &Store<E>) {
    for round in 0..4u32 {
        let mut txn = store.current();
        for k in 0..5u32 {
            if (k + round) % 3 == 0 {
                must!(txn.remove(0, &k));
            } else {
                must!(txn.insert(0, &k, &format!("v{round}-{k}")));
            }
        }
        must!(txn.commit().await);
        let mut txn = store.current();
        let mut users = must!(txn.slot_mut(&USERS));
        must!(users.insert(&format!("u{round}"), &round));
        must!(txn.commit().await);
    }
    // Removed last: exported with all versions, left out of the latest.
    let mut txn = store.current();
    must!(txn.insert(2, &"gone", &1u8));
    must!(txn.commit().await);
    let mut txn = store.current();
    must!(txn.remove(2, &"gone"));
    must!(txn.commit().await);
}

/// Imports `stream` into `target` and checks, before and after a reopen, that it ends at
/// `at` and holds `want`. Returns the reopened store.
async fn import_and_check<E: Runs<F>, F: Place>(
    env: &Env<E, F>,
    target: StoreOn<E, F>,
    stream: &[u8],
    at: Version,
    want: &Dump,
) -> StoreOn<E, F> {
    must!(target.import(stream, &|_| {}).await);
    env.before_and_after_reopen(target, async |target| {
        assert_eq!(must!(target.version()), at);
        assert_eq!(must!(target.version()).time_ms(), at.time_ms());
        assert_eq!(&dump_versions(target, at.seq()).await, want);
    })
    .await
}

/// What a latest-values export of `dump` carries: each key's newest version if a value.
fn latest_of(dump: Dump) -> Dump {
    dump.into_iter()
        .filter_map(|(slot, key, rows)| {
            let last = rows.last().cloned()?;
            (!last.2).then(|| (slot, key, vec![last]))
        })
        .collect()
}

async fn export<E: Engine>(store: &Store<E>, scope: ExportScope) -> Vec<u8> {
    let mut stream = Vec::new();
    let summary = must!(store.export(&mut stream, scope, &|_| {}).await);
    assert_eq!(summary.bytes, stream.len() as u64);
    assert_eq!(summary.version, must!(store.version()));
    stream
}

/// An export of every version imports into a new store with the same versions (sequence
/// numbers, times, removals, values) and the same catalog, also after a reopen; the target
/// ends at the source's version.
pub async fn round_trip_all_versions<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let source = env.open().await;
    history(&source).await;
    let at = must!(source.version());
    let want = dump_versions(&source, at.seq()).await;
    let stream = export(&source, ExportScope::AllVersions).await;

    let env2 = Env::<E, F>::new();
    let target = env2.open().await;
    let summary = must!(target.import(stream.as_slice(), &|_| {}).await);
    assert_eq!(summary.version, at);
    assert_eq!(summary.bytes, stream.len() as u64);
    let slots = must!(source.slots().await);
    env2.before_and_after_reopen(target, async |target| {
        assert_eq!(must!(target.version()), at);
        assert_eq!(must!(target.version()).time_ms(), at.time_ms());
        assert_eq!(dump_versions(target, at.seq()).await, want);
        assert_eq!(must!(target.slots().await), slots);
        let users: Option<u32> = must!(must!(target.current().slot(&USERS)).get("u3").await);
        assert_eq!(users, Some(3));
    })
    .await;
}

/// An export of the latest values carries each live key's newest version (same sequence
/// number, time and value) and nothing removed; the target reopens despite the skipped
/// sequence numbers, and takes new commits after the source's version.
pub async fn latest_scope<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let source = env.open().await;
    history(&source).await;
    let at = must!(source.version());
    let full = dump_versions(&source, at.seq()).await;
    let want = latest_of(full);
    let stream = export(&source, ExportScope::Latest).await;

    let env2 = Env::<E, F>::new();
    let target = import_and_check(&env2, env2.open().await, &stream, at, &want).await;
    let mut txn = target.current();
    must!(txn.insert(0, &"after", &1u8));
    let next = must!(txn.commit().await);
    assert_eq!(next.seq(), at.seq() + 1);
    let target = env2.reopen(target).await;
    assert_eq!(must!(target.version()), next);
}

/// A merged source (sequence numbers with gaps, versions only at the newest commit of each
/// key) copies to a new store with `copy_into`, which then reopens equal.
pub async fn copy_after_merge<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let source = env.open().await;
    history(&source).await;
    must!(source.merge().await);
    let at = must!(source.version());
    let want = dump_versions(&source, at.seq()).await;
    let env2 = Env::<E, F>::new();
    let target = env2.open().await;
    let summary = must!(
        source
            .copy_into(&target, ExportScope::AllVersions, &|_| {})
            .await
    );
    assert_eq!(summary.version, at);
    env2.before_and_after_reopen(target, async |target| {
        assert_eq!(must!(target.version()), at);
        assert_eq!(dump_versions(target, at.seq()).await, want);
    })
    .await;
}

/// A truncated or bit-flipped stream is `Corruption`, never a silent partial import; a target
/// that already has commits is `InvalidArgument`.
pub async fn damaged_stream_is_an_error<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let source = env.open().await;
    history(&source).await;
    let stream = export(&source, ExportScope::AllVersions).await;
    let n = stream.len();
    let cuts = [0, 5, 8, 40, n / 2, n - 9, n - 1];
    for cut in cuts {
        let env2 = Env::<E, F>::new();
        let target = env2.open().await;
        let got = target.import(&stream[..cut], &|_| {}).await;
        assert_matches!(got, Err(Error::Corruption { .. }));
    }
    let mut appended = stream.clone();
    appended.push(0);
    let flips = [3, 9, 20, n / 3, n / 2 + 1, n - 2];
    let damaged = flips.iter().map(|&at| {
        let mut s = stream.clone();
        s[at] ^= 0x10;
        s
    });
    for bad in damaged.chain([appended]) {
        let env2 = Env::<E, F>::new();
        let target = env2.open().await;
        let got = target.import(bad.as_slice(), &|_| {}).await;
        assert_matches!(got, Err(Error::Corruption { .. }));
    }
    // Into a store that has commits of its own.
    let got = source.import(stream.as_slice(), &|_| {}).await;
    assert_matches!(got, Err(Error::InvalidArgument(_)));
}

/// `backup_to` an empty storage makes a store that opens and equals a snapshot of the source
/// at the backup's version (later commits are not in it); a storage with files is refused.
pub async fn backup_equals_snapshot<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let source = env.open().await;
    history(&source).await;
    let env2 = Env::<E, F>::new();
    let backup = must!(source.backup_to(env2.storage().await, &|_| {}).await);
    let mut txn = source.current();
    must!(txn.insert(0, &"later", &1u8));
    must!(txn.commit().await);
    let want = dump_versions(&source, backup.version.seq()).await;
    let copy = env2.open().await;
    assert_eq!(must!(copy.version()), backup.version);
    assert_eq!(dump_versions(&copy, backup.version.seq()).await, want);
    drop(copy);
    let got = source.backup_to(env2.storage().await, &|_| {}).await;
    assert_matches!(got, Err(Error::InvalidArgument(_)));
}

/// An import with gaps into a store with small files (Bitcask segments roll, LSM WAL files
/// roll and memtables flush and compact) reopens equal, merges, takes new commits, and
/// reopens equal again: the logs hold the gaps where files begin too.
pub async fn import_crosses_file_boundaries<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let source = env.open().await;
    for round in 0..60u32 {
        let mut txn = source.current();
        for k in 0..3u32 {
            let key = (round * 3 + k) % 25;
            must!(txn.insert(0, &key, &format!("{round}-{}", "x".repeat(200))));
        }
        if round % 7 == 0 {
            must!(txn.remove(0, &((round + 11) % 25)));
        }
        must!(txn.commit().await);
        if round == 30 {
            // The first half keeps only its newest versions: the stream skips numbers.
            must!(source.merge().await);
        }
    }
    let at = must!(source.version());
    let stream = export(&source, ExportScope::AllVersions).await;
    let all = dump_versions(&source, at.seq()).await;

    let env2 = Env::<E, F>::new();
    let target = must!(
        crate::script::open_small::<E::Engine>(
            env2.storage().await,
            crate::script::crash_options(),
        )
        .await
    );
    let target = import_and_check(&env2, target, &stream, at, &all).await;
    let stats = must!(target.stats().await);
    assert!(
        stats.files > 2,
        "the import crossed file boundaries: {stats:?}"
    );
    must!(target.merge().await);
    let mut txn = target.current();
    must!(txn.insert(0, &"after", &1u8));
    let next = must!(txn.commit().await);
    let target = env2.reopen(target).await;
    assert_eq!(must!(target.version()), next);
    assert_eq!(dump_versions(&target, at.seq()).await, latest_of(all));
}
