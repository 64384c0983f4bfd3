//! Optimistic conflicts: write-write, read-write, ranges (phantoms); losers write nothing.

use super::prelude::*;

async fn seeded<E: Runs<F>, F: Place>(env: &Env<E, F>) -> StoreOn<E, F> {
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &"k", &0u32));
    must!(txn.insert(0, &"j", &0u32));
    must!(txn.commit().await);
    store
}

/// Two transactions write the same key: the second to commit conflicts and writes nothing.
pub async fn write_write<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut t1 = store.current();
    let mut t2 = store.current();
    must!(t1.insert(0, &"k", &1u32));
    must!(t2.insert(0, &"k", &2u32));
    must!(t2.insert(0, &"loser only", &2u32));
    let v1 = must!(t1.commit().await);
    assert_matches!(t2.commit().await, Err(Error::Conflict(_)));
    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        assert_eq!(must!(txn.get::<_, u32>(0, &"k").await), Some(1));
        assert_eq!(must!(txn.get::<_, u32>(0, &"loser only").await), None);
        assert_eq!(must!(txn.versions(0, &"k").await).last(), Some(&v1));
        assert_eq!(
            must!(store.version()),
            v1,
            "a conflicting commit took a version"
        );
    })
    .await;
}

/// A transaction read a key that another one then changed: it conflicts.
pub async fn read_write<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut t1 = store.current();
    let k = must!(t1.get::<_, u32>(0, &"k").await).unwrap_or_default();
    must!(t1.insert(0, &"j", &(k + 10)));
    let mut t2 = store.current();
    must!(t2.insert(0, &"k", &5u32));
    must!(t2.commit().await);
    assert_matches!(t1.commit().await, Err(Error::Conflict(_)));
    assert_eq!(must!(store.current().get::<_, u32>(0, &"j").await), Some(0));
}

/// Reading an absent key and then seeing it inserted by another commit is a conflict too.
pub async fn read_of_absent_key<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut t1 = store.current();
    assert_eq!(must!(t1.get::<_, u32>(0, &"absent").await), None);
    must!(t1.insert(0, &"j", &1u32));
    let mut t2 = store.current();
    must!(t2.insert(0, &"absent", &1u32));
    must!(t2.commit().await);
    assert_matches!(t1.commit().await, Err(Error::Conflict(_)));
}

/// A committed removal of a key another transaction read is a conflict.
pub async fn removal_conflicts<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut t1 = store.current();
    must!(t1.get::<_, u32>(0, &"k").await);
    must!(t1.insert(0, &"j", &1u32));
    let mut t2 = store.current();
    must!(t2.remove(0, &"k"));
    must!(t2.commit().await);
    assert_matches!(t1.commit().await, Err(Error::Conflict(_)));
}

/// Transactions writing different keys without reading them both commit.
pub async fn disjoint_writes_commit<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut t1 = store.current();
    let mut t2 = store.current();
    must!(t1.insert(0, &"a", &1u32));
    must!(t2.insert(0, &"b", &2u32));
    must!(t2.insert(1, &"k", &2u32));
    let v1 = must!(t1.commit().await);
    let v2 = must!(t2.commit().await);
    assert!(v2 > v1);
    let txn = store.current();
    assert_eq!(must!(txn.get::<_, u32>(0, &"a").await), Some(1));
    assert_eq!(must!(txn.get::<_, u32>(0, &"b").await), Some(2));
}

/// A transaction without writes never conflicts, whatever it read or scanned; snapshots too.
pub async fn read_only_never_conflicts<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let t1 = store.current();
    let snap = store.snapshot();
    must!(t1.get::<_, u32>(0, &"k").await);
    must!(t1.range::<String, u32>(0, ..).await);
    must!(snap.get::<_, u32>(0, &"k").await);
    let mut t2 = store.current();
    must!(t2.insert(0, &"k", &9u32));
    must!(t2.commit().await);
    let v = t1.version();
    assert_eq!(
        must!(t1.commit().await),
        v,
        "a read-only commit returns its snapshot's version"
    );
    must!(snap.commit().await);
}

async fn seeded_u32<E: Runs<F>, F: Place>(env: &Env<E, F>) -> StoreOn<E, F> {
    let store = env.open().await;
    let mut txn = store.current();
    for i in (0u32..40).step_by(5) {
        must!(txn.insert(0, &i, &i));
    }
    must!(txn.commit().await);
    store
}

/// A transaction that scanned a range conflicts when another commits a key inside it, an
/// insert (phantom), an update or a removal.
pub async fn range_inside<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded_u32(&env).await;
    for (key, value) in [
        (12u32, Some(1u32)),
        (10, Some(2)),
        (15, None),
        (19, Some(3)),
    ] {
        let mut t1 = store.current();
        let rows = must!(t1.range::<u32, u32>(0, 10..20).await);
        must!(t1.insert(1, &"summary", &(rows.len() as u32)));
        let mut t2 = store.current();
        match value {
            Some(v) => must!(t2.insert(0, &key, &v)),
            None => must!(t2.remove(0, &key)),
        }
        must!(t2.commit().await);
        assert_matches!(
            t1.commit().await,
            Err(Error::Conflict(_)),
            "commit of key {key} inside 10..20"
        );
    }
    assert_eq!(
        must!(store.current().get::<_, u32>(1, &"summary").await),
        None
    );
}

/// Commits outside a scanned range (just below, at the excluded end, above, another slot)
/// do not conflict.
pub async fn range_outside<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded_u32(&env).await;
    let mut t1 = store.current();
    must!(t1.range::<u32, u32>(0, 10..20).await);
    must!(t1.range::<u32, u32>(0, 30..=30).await);
    must!(t1.insert(1, &"summary", &1u32));
    let mut t2 = store.current();
    for k in [9u32, 20, 29, 31, 100] {
        must!(t2.insert(0, &k, &0u32));
    }
    must!(t2.insert(2, &15u32, &0u32));
    must!(t2.commit().await);
    must!(t1.commit().await);
}

/// Prefix scans conflict with commits under the prefix only.
pub async fn prefix_phantom<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut seed = store.current();
    must!(seed.insert(0, &"user/ann", &1u32));
    must!(seed.commit().await);

    let mut t1 = store.current();
    must!(t1.prefix::<_, String, u32>(0, &"user/").await);
    must!(t1.insert(1, &"count", &1u32));
    let mut t2 = store.current();
    must!(t2.insert(0, &"usex", &1u32));
    must!(t2.insert(0, &"user", &1u32));
    must!(t2.commit().await);
    must!(t1.commit().await);

    let mut t1 = store.current();
    must!(t1.prefix::<_, String, u32>(0, &"user/").await);
    must!(t1.insert(1, &"count", &2u32));
    let mut t2 = store.current();
    must!(t2.insert(0, &"user/zed", &1u32));
    must!(t2.commit().await);
    assert_matches!(t1.commit().await, Err(Error::Conflict(_)));
}

/// After a conflict, the same work in a fresh transaction commits.
pub async fn retry_after_conflict<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut t1 = store.current();
    let k = must!(t1.get::<_, u32>(0, &"k").await).unwrap_or_default();
    must!(t1.insert(0, &"k", &(k + 1)));
    let mut t2 = store.current();
    must!(t2.insert(0, &"k", &100u32));
    must!(t2.commit().await);
    assert_matches!(t1.commit().await, Err(Error::Conflict(_)));
    let mut retry = store.current();
    let k = must!(retry.get::<_, u32>(0, &"k").await).unwrap_or_default();
    must!(retry.insert(0, &"k", &(k + 1)));
    must!(retry.commit().await);
    assert_eq!(
        must!(store.current().get::<_, u32>(0, &"k").await),
        Some(101)
    );
}
