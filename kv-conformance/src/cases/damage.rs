//! Damage: nothing committed is ever lost and no damage is silent. A missing file is a typed
//! error (never an empty or partial store), a storage holding files the engine did not write
//! is refused when it has no manifest of the engine, and a failed open creates and deletes
//! nothing.
//!
//! Cases here are engine-neutral: they know no file names. Engine-specific damage (a crashed
//! creation, impossible file ids) is tested in each engine's crate; a store of one engine
//! opened by the other in the root crate's `tests/wrong_engine.rs`.

use std::collections::BTreeMap;

use kv_api::{Engine, Storage, StorageFile, Store};

use super::prelude::*;
use crate::model::{Model, check_store};
use crate::script;
use crate::{CrashMode, FaultyStorage, Ops};

/// The name of the file the foreign-file case drops into the storage. Not a name any engine
/// of the workspace writes.
const FOREIGN: &str = "notes.txt";

const KEYS: u16 = 40;

fn universe() -> Vec<(u8, u16)> {
    (0..KEYS + 2).map(|k| (0, k)).collect()
}

async fn check<E: Engine>(store: &Store<E>, model: &Model<u16, String>, after: &str) {
    if let Err(e) = check_store(store, model, &universe(), true).await {
        panic!("{after}: {e}");
    }
}

/// Commits `rounds` overwrites of every key; returns the model.
async fn fill<E: Engine>(store: &Store<E>, model: &mut Model<u16, String>, rounds: u32) {
    for round in 0..rounds {
        let mut txn = store.current();
        let mut writes = Vec::new();
        for k in 0..KEYS {
            let v = format!("{round}:{k}:{}", "v".repeat(24));
            must!(txn.insert(0, &k, &v));
            writes.push(((0u8, k), Some(v)));
        }
        let v = must!(txn.commit().await);
        model.commit(v.seq(), writes);
    }
}

/// Replaces every file of `storage` with the files of `files` (a restore from a backup).
async fn restore<S: Storage>(storage: &S, files: &BTreeMap<String, Vec<u8>>) {
    for name in must!(storage.list().await) {
        must!(storage.remove(&name).await);
    }
    for (name, bytes) in files {
        let f = must!(storage.create(name).await);
        if !bytes.is_empty() {
            must!(f.append(bytes).await);
        }
        must!(f.sync().await);
    }
    must!(storage.sync().await);
}

/// Asserts that `storage` still holds exactly `files`.
async fn assert_untouched<S: Storage>(storage: &S, files: &BTreeMap<String, Vec<u8>>, what: &str) {
    let now = must!(dump(storage).await);
    assert!(
        &now == files,
        "{what} changed the files: {:?} -> {:?}",
        dump_summary(files),
        dump_summary(&now)
    );
}

/// Every file of a store, deleted in turn: reopening is either an `Error::Corruption` that
/// created and deleted nothing (read-only too), or the whole store, every committed version
/// included. Never an empty or partial store. The store is merged first, so every committed
/// write is in files the engine's manifest names (a log holding commits not yet in any
/// manifest cannot be missed by an engine without an identity in the log: not checked here).
/// The manifest is among the files, so at least one deletion must be an error.
pub async fn missing_file_is_an_error<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let options = Options::default().segment_size(1 << 10);
    let store = env.open_with(options.clone()).await;
    let mut model = Model::new();
    fill(&store, &mut model, 6).await;
    must!(store.merge().await);
    model.merge(model.last());
    fill(&store, &mut model, 1).await;
    must!(store.merge().await);
    model.merge(model.last());
    must!(store.close().await);
    drop(store);

    let storage = env.storage().await;
    let full = must!(dump(&storage).await);
    assert!(full.len() >= 2, "{:?}", dump_summary(&full));
    let mut errors = Vec::new();
    for gone in full.keys() {
        restore(&storage, &full).await;
        must!(storage.remove(gone).await);
        must!(storage.sync().await);
        let damaged = must!(dump(&storage).await);
        match env.try_open_with(options.clone()).await {
            Ok(store) => {
                check(&store, &model, &format!("opened without {gone}")).await;
                must!(store.close().await);
            }
            Err(Error::Corruption { .. }) => {
                assert_untouched(&storage, &damaged, &format!("a failed open without {gone}"))
                    .await;
                let ro = env.try_open_with(options.clone().read_only(true)).await;
                assert_matches!(
                    ro.as_ref().map(|_| ()),
                    Err(Error::Corruption { .. }),
                    "read-only open without {gone}"
                );
                drop(ro);
                assert_untouched(
                    &storage,
                    &damaged,
                    &format!("a read-only open without {gone}"),
                )
                .await;
                errors.push(gone.clone());
            }
            Err(e) => panic!("open without {gone}: expected Corruption or the store, got {e:?}"),
        }
    }
    assert!(
        !errors.is_empty(),
        "no file of {:?} was missed: is there no manifest?",
        dump_summary(&full)
    );
}

/// A storage holding a file the engine did not write, and no store: opening it (for writing or
/// read-only) is `Error::Foreign` naming the file, and creates nothing. Once the file is
/// gone a store is created; a foreign file dropped into an existing store is left alone.
pub async fn foreign_files_are_refused<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let storage = env.storage().await;
    let f = must!(storage.create(FOREIGN).await);
    must!(f.append(b"not a store").await);
    must!(f.sync().await);
    must!(storage.sync().await);
    drop(f);
    let before = must!(dump(&storage).await);

    for options in [Options::default(), Options::default().read_only(true)] {
        let what = if options.read_only {
            "read-only open"
        } else {
            "open"
        };
        match env.try_open_with(options).await {
            Err(Error::Foreign { engine, found }) => {
                assert_eq!(engine, E::Engine::<F::Storage>::NAME, "{what}");
                assert!(found.contains(FOREIGN), "{what}: {found:?}");
            }
            other => panic!("{what}: expected Foreign, got {:?}", other.map(|_| ())),
        }
        assert_untouched(&storage, &before, &format!("a refused {what}")).await;
    }

    // Without it: a new store.
    must!(storage.remove(FOREIGN).await);
    let store = env.open().await;
    let mut model = Model::new();
    fill(&store, &mut model, 2).await;
    must!(store.close().await);
    drop(store);

    // Dropped into the store: ignored and kept, through commits, a merge and reopens.
    restore(
        &storage,
        &must!(dump(&storage).await)
            .into_iter()
            .chain(before.clone())
            .collect(),
    )
    .await;
    let store = env.open().await;
    check(&store, &model, "reopen beside a foreign file").await;
    fill(&store, &mut model, 1).await;
    must!(store.merge().await);
    model.merge(model.last());
    let store = env.reopen(store).await;
    check(&store, &model, "merge and reopen beside a foreign file").await;
    drop(store);
    let ro = must!(Store::<E::Engine<F::Storage>>::open_read_only(env.storage().await).await);
    check(&ro, &model, "read-only open beside a foreign file").await;
    drop(ro);
    let after = must!(dump(&storage).await);
    assert_eq!(
        after.get(FOREIGN),
        before.get(FOREIGN),
        "the foreign file was changed or deleted"
    );
}

/// A crash at every storage mutation of the first open (power loss, process crash, torn
/// writes): what it leaves opens as a new, empty store that takes commits (never an error,
/// never `Foreign`), so the steps of a store's creation are ordered such that no crash can
/// leave a state the stricter open checks refuse (a manifest without its first data file, a
/// data file without the manifest that proves it is garbage).
pub async fn crashed_creation_opens_empty<E: EngineFamily, F: StorageFactory>() {
    let mutations = {
        let env = Env::<E, F>::new();
        let faulty = must!(FaultyStorage::wrap(env.storage().await).await);
        let store =
            must!(script::open_small::<E::Engine<_>>(faulty.restart(), Options::default()).await);
        drop(store);
        faulty.count(Ops::MUTATIONS).await
    };
    assert!(
        mutations >= 2,
        "creating a store made {mutations} mutations"
    );
    for n in 0..mutations {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Random(n + 1),
        ] {
            let env = Env::<E, F>::new();
            let faulty = must!(FaultyStorage::wrap(env.storage().await).await);
            faulty.crash_after(n, Ops::MUTATIONS, mode).await;
            let first =
                script::open_small::<E::Engine<_>>(faulty.restart(), Options::default()).await;
            assert!(
                faulty.disarm().await,
                "no crash at mutation {n} of {mutations}"
            );
            drop(first);
            let what = format!("crash at mutation {n} of creating a store ({mode:?})");
            let store = script::open_small::<E::Engine<_>>(faulty.restart(), Options::default())
                .await
                .unwrap_or_else(|e| panic!("{what}: reopen failed: {e:?}"));
            let mut model = Model::new();
            check(&store, &model, &what).await;
            fill(&store, &mut model, 1).await;
            drop(store);
            let store = must!(
                script::open_small::<E::Engine<_>>(faulty.restart(), Options::default()).await
            );
            check(
                &store,
                &model,
                &format!("{what}, then a commit and a reopen"),
            )
            .await;
        }
    }
}
