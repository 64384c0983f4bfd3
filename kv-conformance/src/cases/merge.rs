//! Merge: latest values survive, old versions and removals go, storage shrinks, open
//! snapshots keep what they see.

use kv_api::{Engine, Store};

use super::prelude::*;
use crate::model::{Model, check_store};

/// Writes `rounds` overwrites of `keys` keys (values of `size` bytes), removing every third
/// key in the last round; returns the model.
async fn churn<E: Engine>(
    store: &Store<E>,
    keys: u16,
    rounds: u32,
    size: usize,
) -> Model<u16, String> {
    let mut model = Model::new();
    for round in 0..rounds {
        let mut txn = store.current();
        let mut writes = Vec::new();
        for k in 0..keys {
            let value = (round + 1 < rounds || k % 3 != 0)
                .then(|| format!("{round}:{k}:{}", "x".repeat(size)));
            match &value {
                Some(v) => must!(txn.insert(0, &k, v)),
                None => must!(txn.remove(0, &k)),
            }
            writes.push(((0u8, k), value));
        }
        let v = must!(txn.commit().await);
        model.commit(v.seq(), writes);
    }
    model
}

fn universe(keys: u16) -> Vec<(u8, u16)> {
    (0..keys + 2).map(|k| (0, k)).collect()
}

async fn check<E: Engine>(store: &Store<E>, model: &Model<u16, String>, keys: u16) {
    if let Err(e) = check_store(store, model, &universe(keys), true).await {
        panic!("store differs from the model: {e}");
    }
}

/// Latest values survive a merge; removed keys stay removed; also after a reopen.
pub async fn latest_values_survive<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut model = churn(&store, 30, 5, 10).await;
    must!(store.merge().await);
    model.merge(model.last());
    check(&store, &model, 30).await;
    let store = env.reopen(store).await;
    check(&store, &model, 30).await;
}

/// After a merge each key has only its latest version (same sequence number and time); old
/// versions are `VersionNotFound`; removed keys have no version and no "unremoved" value.
pub async fn drops_old_versions<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    churn(&store, 6, 4, 10).await;
    let before = store.current();
    let old = must!(before.versions(0, &1u16).await);
    let latest_of_removed = must!(before.versions(0, &0u16).await);
    drop(before);
    must!(store.merge().await);
    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        assert_eq!(must!(txn.versions(0, &1u16).await), vec![old[3]]);
        let kept = must!(txn.versions(0, &1u16).await)[0];
        assert_eq!(
            kept.time_ms(),
            old[3].time_ms(),
            "merge changed a version's time"
        );
        assert_matches!(
            txn.get_version::<_, String>(0, &1u16, old[0]).await,
            Err(Error::VersionNotFound { .. })
        );
        assert!(
            must!(txn.versions(0, &0u16).await).is_empty(),
            "a removed key kept versions"
        );
        assert_matches!(
            txn.get_version::<_, String>(0, &0u16, latest_of_removed[3])
                .await,
            Err(Error::VersionNotFound { .. })
        );
        assert_eq!(
            must!(txn.get_unremoved::<_, String>(0, &0u16).await),
            None,
            "trash survived merge"
        );
        let stats = must!(store.stats().await);
        assert_eq!(
            stats.versions, stats.live_keys,
            "only latest live versions after merge: {stats:?}"
        );
        assert_eq!(stats.live_keys, 4);
    })
    .await;
}

/// Merging a store full of superseded versions shrinks `bytes_on_storage`.
pub async fn shrinks_storage<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let model = churn(&store, 20, 40, 1000).await;
    let before = must!(store.stats().await);
    must!(store.merge().await);
    let after = must!(store.stats().await);
    assert!(
        after.bytes_on_storage * 4 < before.bytes_on_storage,
        "merge of 40 rounds of overwrites should reclaim most space: {} -> {} bytes",
        before.bytes_on_storage,
        after.bytes_on_storage
    );
    assert!(after.garbage_bytes <= before.garbage_bytes);
    let store = env.reopen(store).await;
    let reopened = must!(store.stats().await);
    assert!(
        reopened.bytes_on_storage <= after.bytes_on_storage + 4096,
        "reopen grew storage: {reopened:?}"
    );
    let mut model = model;
    model.merge(model.last());
    check(&store, &model, 20).await;
}

/// A merge with nothing to drop keeps every key and version.
pub async fn without_garbage<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut model = churn(&store, 25, 1, 100).await;
    must!(store.merge().await);
    model.merge(model.last());
    check(&store, &model, 25).await;
    let store = env.reopen(store).await;
    check(&store, &model, 25).await;
}

/// Merging twice in a row is harmless.
pub async fn twice<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut model = churn(&store, 10, 5, 100).await;
    must!(store.merge().await);
    let once = must!(store.stats().await).bytes_on_storage;
    must!(store.merge().await);
    let twice = must!(store.stats().await).bytes_on_storage;
    assert!(
        twice <= once + 4096,
        "a second merge grew storage: {once} -> {twice}"
    );
    model.merge(model.last());
    check(&store, &model, 10).await;
    let store = env.reopen(store).await;
    check(&store, &model, 10).await;
}

/// Writes after a merge (including to merged and removed keys) commit and survive reopens.
pub async fn then_write_and_reopen<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut model = churn(&store, 10, 3, 50).await;
    must!(store.merge().await);
    model.merge(model.last());
    let mut txn = store.current();
    must!(txn.insert(0, &0u16, &"back".to_string()));
    must!(txn.insert(0, &11u16, &"new".to_string()));
    must!(txn.remove(0, &1u16));
    let v = must!(txn.commit().await);
    model.commit(
        v.seq(),
        [
            ((0, 0), Some("back".to_string())),
            ((0, 11), Some("new".to_string())),
            ((0, 1), None),
        ],
    );
    check(&store, &model, 12).await;
    let store = env.reopen(store).await;
    check(&store, &model, 12).await;
    must!(store.merge().await);
    model.merge(model.last());
    let store = env.reopen(store).await;
    check(&store, &model, 12).await;
}

/// A snapshot open during a merge keeps reading what it saw: values, scans and versions.
pub async fn keeps_open_snapshot<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut model = churn(&store, 8, 3, 20).await;
    let pinned_at = model.last() - 1;
    let old = must!(store.snapshot_at(Version::new(pinned_at, 0)).await);
    let latest = store.snapshot();
    let old_rows = must!(old.range::<u16, String>(0, ..).await);
    let latest_rows = must!(latest.range::<u16, String>(0, ..).await);
    let old_versions = must!(old.versions(0, &2u16).await);
    // More commits, then merge while both views are open.
    let mut txn = store.current();
    must!(txn.insert(0, &2u16, &"after".to_string()));
    let v = must!(txn.commit().await);
    model.commit(v.seq(), [((0, 2), Some("after".to_string()))]);
    must!(store.merge().await);
    model.merge(pinned_at);
    assert_eq!(
        must!(old.range::<u16, String>(0, ..).await),
        old_rows,
        "old snapshot changed by merge"
    );
    assert_eq!(
        must!(latest.range::<u16, String>(0, ..).await),
        latest_rows,
        "snapshot changed by merge"
    );
    assert_eq!(
        must!(old.versions(0, &2u16).await).last(),
        old_versions.last()
    );
    for v in must!(old.versions(0, &2u16).await) {
        must!(old.get_version::<_, String>(0, &2u16, v).await);
    }
    must!(store.snapshot_at(Version::new(pinned_at, 0)).await);
    check(&store, &model, 8).await;
    drop((old, latest));
    must!(store.merge().await);
    model.merge(model.last());
    check(&store, &model, 8).await;
}

/// Without open snapshots, versions before the merge are gone: `snapshot_at` of them is
/// `VersionNotFound`, the latest still opens, also after a reopen.
pub async fn drops_old_snapshots<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let model = churn(&store, 5, 4, 10).await;
    must!(store.merge().await);
    env.before_and_after_reopen(store, async |store| {
        for seq in 0..model.last() {
            assert_matches!(
                store.snapshot_at(Version::new(seq, 0)).await.map(|_| ()),
                Err(Error::VersionNotFound { .. }),
                "snapshot_at({seq}) after a merge at {}",
                model.last()
            );
        }
        let latest = must!(store.snapshot_at(Version::new(model.last(), 0)).await);
        assert_eq!(must!(latest.range::<u16, String>(0, ..).await).len(), 3);
    })
    .await;
}
