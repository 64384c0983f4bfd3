//! Format 2: the store's `IDENTITY`, the header of every file, and the newest WAL file
//! recorded in the manifest. Files missing, swapped, copied over each other or brought from
//! another store are typed errors, and the open that finds them changes nothing.

mod common;

use std::collections::BTreeMap;

use common::{Mem, Opts, contents, copy, engine, files, small, tables, try_engine, wals};
use kv_api::{Engine, Error, KeyRange, Result, WriteBatch};
use kv_backends::MemoryStorage;
use kv_engine_kit::header::{self, FileHeader};
use kv_engine_kit::identity::Identity;

type Files = BTreeMap<String, Vec<u8>>;

/// The LSM's header kind of WAL files (see `names.rs`).
const KIND_WAL: u8 = 0x21;

async fn put(e: &Mem, key: &[u8], value: &[u8]) {
    let batch = WriteBatch::new(e.snapshot().expect("snapshot")).write(
        0,
        key.to_vec(),
        Some(value.to_vec()),
    );
    e.commit(batch).await.expect("commit");
}

/// A store whose WAL spans several files (small segments, no flush), closed; the newest WAL
/// file holds commits. Returns its files and the model.
async fn rolled() -> (Files, BTreeMap<Vec<u8>, Vec<u8>>) {
    let s = MemoryStorage::new();
    let e = engine(&s, rolling()).await;
    let mut model = BTreeMap::new();
    let mut i = 0u32;
    loop {
        let k = format!("k{i:03}").into_bytes();
        let v = vec![i as u8; 40];
        put(&e, &k, &v).await;
        model.insert(k, v);
        i += 1;
        let now = files(&s).await;
        let newest = wals(&now).pop().expect("a WAL file");
        if i >= 40 && now[&newest].len() > header::LEN {
            break;
        }
    }
    e.close().await.expect("close");
    let full = files(&s).await;
    assert!(wals(&full).len() > 5, "{:?}", wals(&full));
    (full, model)
}

fn rolling() -> Opts {
    Opts::default().segment_size(256)
}

/// A store with tables in several levels and WAL files, closed. Its clock stands still, so
/// two such stores differ only in their store ids.
async fn tree() -> (Files, BTreeMap<Vec<u8>, Vec<u8>>) {
    let s = MemoryStorage::new();
    let mut opts = small();
    opts.options.clock = kv_api::Clock::new(|| 1_700_000_000_000);
    let e = engine(&s, opts).await;
    let mut model = BTreeMap::new();
    for i in 0..1500u32 {
        let k = format!("key-{:05}", (i * 7919) % 1000).into_bytes();
        let v = vec![(i % 251) as u8; 20];
        put(&e, &k, &v).await;
        model.insert(k, v);
    }
    e.close().await.expect("close");
    let full = files(&s).await;
    assert!(tables(&full).len() >= 4, "{:?}", tables(&full));
    (full, model)
}

/// Opens `st` and reads every table and every version: the first error, or the contents.
async fn open_and_read(st: &MemoryStorage, opts: Opts) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let e = try_engine(st.clone(), opts).await?;
    let at = e.snapshot()?.seq();
    for reverse in [false, true] {
        for en in e.scan(0, &KeyRange::all(), at, reverse, usize::MAX).await? {
            e.versions(0, &en.key, at).await?;
        }
    }
    Ok(contents(&e).await)
}

/// Asserts that opening `damaged` (writable and read-only, reading everything) is
/// `Error::Corruption` naming one of `names` and saying `why`, and that nothing changed.
async fn assert_corruption(damaged: &Files, opts: Opts, names: &[&str], why: &str, what: &str) {
    let st = copy(damaged).await;
    for opts in [opts.clone(), opts.read_only(true)] {
        match open_and_read(&st, opts).await {
            Err(Error::Corruption { file, reason, .. }) => {
                assert!(names.contains(&file.as_str()), "{what}: {file}: {reason}");
                assert!(reason.contains(why), "{what}: {file}: {reason}");
            }
            other => panic!(
                "{what}: expected corruption, got {:?}",
                other.map(|m| m.len())
            ),
        }
    }
    let now = files(&st).await;
    // Reading a table never changes it; a writable open that failed deleted nothing.
    for (name, data) in damaged {
        assert_eq!(now.get(name), Some(data), "{what}: {name} changed");
    }
}

fn store_of(full: &Files) -> Identity {
    Identity::decode(&full["IDENTITY"]).expect("identity")
}

/// Finding: the newest WAL file was recorded nowhere, so deleting it dropped its commits
/// without a word (continuity checks every WAL file against the one before, and nothing
/// comes after the newest). The manifest now names it: its loss, or its being emptied, is
/// corruption naming it, for a writer and a reader, and nothing is created or deleted.
#[tokio::test]
async fn a_missing_newest_wal_is_corruption() {
    let (full, model) = rolled().await;
    let st = copy(&full).await;
    assert_eq!(open_and_read(&st, rolling()).await.expect("whole"), model);
    let newest = wals(&full).pop().expect("newest");
    assert!(full[&newest].len() > header::LEN, "it holds commits");

    let mut missing = full.clone();
    missing.remove(&newest);
    let st = copy(&missing).await;
    for opts in [rolling(), rolling().read_only(true)] {
        match try_engine(st.clone(), opts).await {
            Err(Error::Corruption { file, reason, .. }) => {
                assert_eq!(file, newest);
                assert!(reason.contains("missing"), "{reason}");
            }
            other => panic!("expected corruption, got {:?}", other.map(|_| ())),
        }
        assert_eq!(files(&st).await, missing, "the open changed files");
    }

    let mut emptied = full.clone();
    emptied.get_mut(&newest).expect("newest").clear();
    assert_corruption(
        &emptied,
        rolling(),
        &[&newest],
        "shorter than its header",
        "emptied",
    )
    .await;

    // A WAL file in the middle, missing: the gap shows (continuity, as before).
    let names = wals(&full);
    let middle = &names[names.len() / 2];
    let mut gap = full.clone();
    gap.remove(middle);
    let next = &names[names.len() / 2 + 1];
    assert_corruption(
        &gap,
        rolling(),
        &[next],
        "out of order",
        "a middle WAL missing",
    )
    .await;
}

/// Files swapped, copied over each other, or brought from another store (the same workload,
/// so the same names): each is corruption naming the file, at the open or at the first read
/// of the table, and nothing changes.
#[tokio::test]
async fn swapped_copied_and_foreign_files_are_corruption() {
    let (full, _) = rolled().await;
    let (other, _) = rolled().await;
    assert_ne!(store_of(&full).store, store_of(&other).store);
    let names = wals(&full);

    let (a, b) = (&names[1], &names[2]);
    let mut swapped = full.clone();
    swapped.insert(a.clone(), full[b].clone());
    swapped.insert(b.clone(), full[a].clone());
    assert_corruption(
        &swapped,
        rolling(),
        &[a, b],
        "file id",
        "two WAL files swapped",
    )
    .await;

    for name in [&names[0], names.last().expect("newest")] {
        let mut foreign = full.clone();
        foreign.insert(name.clone(), other[name].clone());
        assert_corruption(
            &foreign,
            rolling(),
            &[name],
            "another store",
            "a WAL of another store",
        )
        .await;
    }

    let mut manifest = full.clone();
    manifest.insert("MANIFEST".into(), other["MANIFEST"].clone());
    assert_corruption(
        &manifest,
        rolling(),
        &["MANIFEST"],
        "another store",
        "another MANIFEST",
    )
    .await;

    let (full, _) = tree().await;
    let (other, _) = tree().await;
    let names = tables(&full);
    let (a, b) = (&names[0], &names[1]);
    let mut swapped = full.clone();
    swapped.insert(a.clone(), full[b].clone());
    swapped.insert(b.clone(), full[a].clone());
    // The sizes usually differ from the manifest's too, which is found first.
    assert_corruption(&swapped, small(), &[a, b], "", "two tables swapped").await;

    let mut copied = full.clone();
    copied.insert(b.clone(), full[a].clone());
    assert_corruption(&copied, small(), &[b], "", "a table copied over another").await;

    // Tables of the same size (all of them, with the clocks standing still): only the
    // header tells them apart.
    let mut same_size = 0;
    for name in &names {
        if other.get(name).map(Vec::len) != Some(full[name].len()) {
            continue;
        }
        same_size += 1;
        let mut foreign = full.clone();
        foreign.insert(name.clone(), other[name].clone());
        assert_corruption(
            &foreign,
            small(),
            &[name],
            "another store",
            "a table of another store",
        )
        .await;
    }
    assert!(same_size > 0, "no table of the same size in both stores");
    let name = &names[0];
    let mut foreign = full.clone();
    foreign.insert(name.clone(), other[name].clone());
    assert_corruption(&foreign, small(), &[name], "", "a table of another store").await;
}

/// Without its `IDENTITY` a store is corruption naming it (its manifest has a file header, so
/// it is not a store of format 1); a store of another engine, or of format 1, is
/// `Error::Incompatible`. None of these opens creates or deletes anything.
#[tokio::test]
async fn identity_missing_foreign_or_old() {
    let (full, _) = tree().await;
    let unchanged = |st: MemoryStorage, before: Files| async move {
        assert_eq!(files(&st).await, before, "the open changed files");
    };

    let mut gone = full.clone();
    gone.remove("IDENTITY");
    let st = copy(&gone).await;
    for opts in [small(), small().read_only(true)] {
        match try_engine(st.clone(), opts).await {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, "IDENTITY"),
            other => panic!("expected corruption, got {:?}", other.map(|_| ())),
        }
    }
    unchanged(st, gone).await;

    let mut bitcask = full.clone();
    let id = Identity {
        engine: "bitcask".into(),
        ..store_of(&full)
    };
    bitcask.insert("IDENTITY".into(), id.encode());
    let st = copy(&bitcask).await;
    for opts in [small(), small().read_only(true)] {
        match try_engine(st.clone(), opts).await {
            Err(Error::Incompatible { engine, found }) => {
                assert_eq!(engine, "lsm");
                assert!(found.contains("bitcask"), "{found}");
            }
            other => panic!("expected incompatible, got {:?}", other.map(|_| ())),
        }
    }
    unchanged(st, bitcask).await;

    // Format 1: a manifest frame without a file header, and WAL files, no IDENTITY.
    let mut manifest = Vec::new();
    kv_engine_kit::frame::encode_with(&mut manifest, |b| {
        b.extend_from_slice(b"KVLSMMF1");
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&[0; 44]);
    });
    let old: Files = [
        ("MANIFEST".to_string(), manifest),
        ("wal-00000000.log".to_string(), Vec::new()),
    ]
    .into();
    let st = copy(&old).await;
    for opts in [small(), small().read_only(true)] {
        match try_engine(st.clone(), opts).await {
            Err(Error::Incompatible { engine, found }) => {
                assert_eq!(engine, "lsm");
                assert!(found.contains("format 1"), "{found}");
            }
            other => panic!("expected incompatible, got {:?}", other.map(|_| ())),
        }
    }
    unchanged(st, old).await;
}

/// A crash in a WAL roll after the new file was created, before the manifest named it, leaves
/// a WAL file above the manifest's newest that holds no commit: empty, with a torn header, or
/// with its whole header. Every commit is there after a reopen (read-only too, which changes
/// nothing); a writable open removes a torn file and keeps a whole one, which it records, and
/// the store takes commits and keeps them.
#[tokio::test]
async fn a_crashed_roll_reopens_with_every_commit() {
    let (full, model) = rolled().await;
    let store = store_of(&full).store;
    let next = full
        .keys()
        .filter_map(|n| {
            let digits = n.strip_prefix("wal-")?.strip_suffix(".log")?;
            digits.parse::<u64>().ok()
        })
        .max()
        .expect("a WAL")
        + 1;
    let name = format!("wal-{next:08}.log");
    let whole = FileHeader {
        kind: KIND_WAL,
        store,
        file_id: next,
    }
    .to_bytes();
    for (what, left, kept) in [
        ("empty", Vec::new(), false),
        ("torn header", whole[..20].to_vec(), false),
        (
            "header short by a byte",
            whole[..header::LEN - 1].to_vec(),
            false,
        ),
        ("whole header", whole.clone(), true),
    ] {
        let mut crashed = full.clone();
        crashed.insert(name.clone(), left);
        let st = copy(&crashed).await;
        assert_eq!(
            open_and_read(&st, rolling().read_only(true))
                .await
                .expect(what),
            model,
            "{what}: read-only"
        );
        assert_eq!(files(&st).await, crashed, "{what}: a read-only open wrote");
        let e = engine(&st, rolling()).await;
        assert_eq!(contents(&e).await, model, "{what}");
        drop(e);
        let after = files(&st).await;
        assert_eq!(after.contains_key(&name), kept, "{what}");
        // Recorded as the newest: removing it now is the corruption of a missing newest WAL.
        if kept {
            let mut gone = after.clone();
            gone.remove(&name);
            assert!(
                matches!(
                    try_engine(copy(&gone).await, rolling()).await,
                    Err(Error::Corruption { file, .. }) if file == name
                ),
                "{what}: the open did not record it"
            );
        }
        let e = engine(&st, rolling()).await;
        let mut model = model.clone();
        for i in 0..10u32 {
            let k = format!("after{i}").into_bytes();
            put(&e, &k, b"v").await;
            model.insert(k, b"v".to_vec());
        }
        drop(e);
        assert_eq!(
            open_and_read(&st, rolling()).await.expect(what),
            model,
            "{what}: after new commits"
        );
    }
    // A roll writes nothing but a prefix of the header: a whole but wrong one is not a crash.
    let mut damaged = whole.clone();
    damaged[10] ^= 1;
    let other = FileHeader {
        kind: KIND_WAL,
        store: header::StoreId::from_bytes([7; 16]),
        file_id: next,
    }
    .to_bytes();
    for (what, left, why) in [
        ("a damaged header", damaged, "no valid file header"),
        ("another store's header", other, "another store"),
    ] {
        let mut crashed = full.clone();
        crashed.insert(name.clone(), left);
        assert_corruption(&crashed, rolling(), &[&name], why, what).await;
    }
}
