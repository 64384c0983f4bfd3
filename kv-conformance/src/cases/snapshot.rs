//! Snapshots: read-only views at the latest commit or at any earlier version.

use super::prelude::*;
use crate::model::{Model, check_store};

/// A snapshot keeps showing the same state while other transactions commit.
pub async fn stable_under_commits<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for k in 0u32..50 {
        must!(txn.insert(0, &k, &0u32));
    }
    must!(txn.commit().await);
    let snap = store.snapshot();
    let version = snap.version();
    let rows = must!(snap.range::<u32, u32>(0, ..).await);
    for round in 1u32..=20 {
        let mut txn = store.current();
        must!(txn.insert(0, &(round % 50), &round));
        must!(txn.remove(0, &(round + 20)));
        must!(txn.insert(0, &(100 + round), &round));
        must!(txn.commit().await);
        assert_eq!(snap.version(), version);
        assert_eq!(must!(snap.get::<_, u32>(0, &(round % 50)).await), Some(0));
        assert_eq!(must!(snap.get::<_, u32>(0, &(100 + round)).await), None);
        assert_eq!(must!(snap.versions(0, &(round % 50)).await).len(), 1);
    }
    assert_eq!(must!(snap.range::<u32, u32>(0, ..).await), rows);
    assert_eq!(must!(snap.keys::<u32>(0).await).len(), 50);
}

/// `snapshot_at` of every version of a history shows exactly the state after that commit.
pub async fn at_every_version<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut model: Model<u8, u32> = Model::new();
    let mut rng = crate::Rng::new(42);
    for i in 0..40u32 {
        let mut txn = store.current();
        let mut writes = Vec::new();
        for _ in 0..=rng.below(3) {
            let slot = rng.below(2) as u8;
            let key = rng.below(8) as u8;
            let value = (rng.below(4) != 0).then_some(i);
            match value {
                Some(v) => must!(txn.insert(slot, &key, &v)),
                None => must!(txn.remove(slot, &key)),
            }
            writes.retain(|(k, _)| k != &(slot, key));
            writes.push(((slot, key), value));
        }
        let v = must!(txn.commit().await);
        model.commit(v.seq(), writes);
    }
    let universe: Vec<(u8, u8)> = (0..2).flat_map(|s| (0..8).map(move |k| (s, k))).collect();
    if let Err(e) = check_store(&store, &model, &universe, true).await {
        panic!("{e}");
    }
    let store = env.reopen(store).await;
    if let Err(e) = check_store(&store, &model, &universe, true).await {
        panic!("after reopen: {e}");
    }
}

/// `snapshot_at` of a version not committed yet is `VersionNotFound`; of `Version::ZERO`, the
/// empty store (before any merge).
pub async fn at_unknown_version<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    assert_matches!(
        store.snapshot_at(Version::new(1, 0)).await.map(|_| ()),
        Err(Error::VersionNotFound { .. })
    );
    let mut txn = store.current();
    must!(txn.insert(0, &"k", &1u8));
    let v = must!(txn.commit().await);
    assert_matches!(
        store
            .snapshot_at(Version::new(v.seq() + 1, 0))
            .await
            .map(|_| ()),
        Err(Error::VersionNotFound { .. })
    );
    let zero = must!(store.snapshot_at(Version::ZERO).await);
    assert_eq!(must!(zero.get::<_, u8>(0, &"k").await), None);
    assert_eq!(zero.version(), Version::ZERO);
    let at = must!(store.snapshot_at(v).await);
    assert_eq!(must!(at.get::<_, u8>(0, &"k").await), Some(1));
}

/// Snapshots refuse writes with `Error::ReadOnly`; committing one (nothing) is fine.
pub async fn is_read_only<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut snap = store.snapshot();
    assert!(snap.is_read_only());
    assert_matches!(snap.insert(0, &"k", &1u8), Err(Error::ReadOnly(_)));
    assert_matches!(snap.remove(0, &"k"), Err(Error::ReadOnly(_)));
    must!(snap.commit().await);
    let mut at = must!(store.snapshot_at(Version::ZERO).await);
    assert_matches!(at.insert(0, &"k", &1u8), Err(Error::ReadOnly(_)));
    assert!(!store.current().is_read_only());
}
