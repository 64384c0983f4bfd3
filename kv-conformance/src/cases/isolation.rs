//! Snapshot isolation: a transaction reads the state at its start plus its own writes.

use super::prelude::*;

/// Commits after a transaction started are invisible to it: point reads, scans, versions.
pub async fn later_commits_invisible<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut seed = store.current();
    must!(seed.insert(0, &"k", &1u32));
    let v1 = must!(seed.commit().await);

    let t1 = store.current();
    let mut t2 = store.current();
    must!(t2.insert(0, &"k", &2u32));
    must!(t2.insert(0, &"new", &3u32));
    must!(t2.remove(0, &"gone"));
    let v2 = must!(t2.commit().await);

    assert_eq!(t1.version(), v1);
    assert_eq!(must!(t1.get::<_, u32>(0, &"k").await), Some(1));
    assert_eq!(must!(t1.get::<_, u32>(0, &"new").await), None);
    assert_eq!(
        must!(t1.range::<String, u32>(0, ..).await),
        vec![("k".to_string(), 1)]
    );
    assert_eq!(must!(t1.versions(0, &"k").await), vec![v1]);
    assert_matches!(
        t1.get_version::<_, u32>(0, &"k", v2).await,
        Err(Error::VersionNotFound { .. })
    );
    let t3 = store.current();
    assert_eq!(must!(t3.get::<_, u32>(0, &"k").await), Some(2));
    assert_eq!(must!(t3.get::<_, u32>(0, &"new").await), Some(3));
}

/// A transaction sees its own inserts and overwrites, in reads and in scans.
pub async fn own_writes_visible<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut seed = store.current();
    for i in [1u32, 3, 5] {
        must!(seed.insert(0, &i, &format!("committed {i}")));
    }
    must!(seed.commit().await);
    let mut txn = store.current();
    must!(txn.insert(0, &2u32, &"own 2"));
    must!(txn.insert(0, &3u32, &"own 3"));
    assert_eq!(
        must!(txn.get::<_, String>(0, &2u32).await).as_deref(),
        Some("own 2")
    );
    assert_eq!(
        must!(txn.get::<_, String>(0, &3u32).await).as_deref(),
        Some("own 3")
    );
    let rows = must!(txn.range::<u32, String>(0, ..).await);
    let want: Vec<(u32, String)> = vec![
        (1, "committed 1".into()),
        (2, "own 2".into()),
        (3, "own 3".into()),
        (5, "committed 5".into()),
    ];
    assert_eq!(rows, want);
    let other = store.current();
    assert_eq!(
        must!(other.get::<_, String>(0, &2u32).await),
        None,
        "uncommitted write leaked"
    );
}

/// After its own removal a transaction reads nothing there (get, scans, keys).
pub async fn own_removal<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut seed = store.current();
    must!(seed.insert(0, &1u32, &10u32));
    must!(seed.insert(0, &2u32, &20u32));
    must!(seed.commit().await);
    let mut txn = store.current();
    must!(txn.remove(0, &1u32));
    must!(txn.insert(0, &3u32, &30u32));
    must!(txn.remove(0, &3u32));
    assert_eq!(must!(txn.get::<_, u32>(0, &1u32).await), None);
    assert_eq!(must!(txn.get::<_, u32>(0, &3u32).await), None);
    assert_eq!(must!(txn.range::<u32, u32>(0, ..).await), vec![(2, 20)]);
    assert_eq!(must!(txn.keys::<u32>(0).await), vec![2]);
    assert_eq!(
        must!(store.current().get::<_, u32>(0, &1u32).await),
        Some(10)
    );
    must!(txn.commit().await);
    assert_eq!(must!(store.current().get::<_, u32>(0, &1u32).await), None);
}

/// Writes of a transaction that is dropped or aborted never become visible.
pub async fn uncommitted_invisible<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut dropped = store.current();
    must!(dropped.insert(0, &"a", &1u8));
    drop(dropped);
    let mut aborted = store.current();
    must!(aborted.insert(0, &"b", &1u8));
    aborted.abort();
    assert_eq!(must!(store.version()), Version::ZERO);
    let store = env.reopen(store).await;
    let txn = store.current();
    assert!(must!(txn.range::<String, u8>(0, ..).await).is_empty());
    assert_eq!(must!(store.version()), Version::ZERO);
}
