//! Ordered range and prefix scans in the key type's order, streaming, own writes, snapshots.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::prelude::*;

/// Scans follow the key type's order (`2 < 10` for `u32`, negatives first for `i64`), with
/// every kind of bound.
pub async fn typed_order<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for k in [10u32, 2, 1000, 0, u32::MAX, 256, 255] {
        must!(txn.insert(0, &k, &k));
    }
    for k in [-5i64, 3, i64::MIN, 0, -1] {
        must!(txn.insert(1, &k, &k));
    }
    must!(txn.commit().await);
    env.before_and_after_reopen(store, async |store| {
        let txn = store.current();
        let keys = |rows: Vec<(u32, u32)>| rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(must!(txn.range(0, ..).await)),
            vec![0, 2, 10, 255, 256, 1000, u32::MAX]
        );
        assert_eq!(keys(must!(txn.range(0, 2..=10).await)), vec![2, 10]);
        assert_eq!(keys(must!(txn.range(0, 2..10).await)), vec![2]);
        assert_eq!(
            keys(must!(txn.range(0, 3..).await)),
            vec![10, 255, 256, 1000, u32::MAX]
        );
        assert_eq!(keys(must!(txn.range(0, ..256).await)), vec![0, 2, 10, 255]);
        let excluded = (Bound::Excluded(2u32), Bound::Excluded(1000u32));
        assert_eq!(
            keys(must!(txn.range(0, excluded).await)),
            vec![10, 255, 256]
        );
        assert!(must!(txn.range::<u32, u32>(0, 11..255).await).is_empty());
        let signed: Vec<i64> = must!(txn.range::<i64, i64>(1, ..).await)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(signed, vec![i64::MIN, -5, -1, 0, 3]);
    })
    .await;
}

/// String keys scan in `String` order; a string prefix matches longer strings only.
pub async fn strings_and_prefixes<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let words = [
        "b", "a", "ab", "", "é", "Z", "a\u{0}b", "user/1", "user/10", "user/2", "users", "user",
    ];
    let mut txn = store.current();
    for w in words {
        must!(txn.insert(0, &w, &w.len()));
    }
    must!(txn.commit().await);
    let txn = store.current();
    let mut sorted: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    sorted.sort();
    let all: Vec<String> = must!(txn.range::<String, usize>(0, ..).await)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(all, sorted);
    let txn = &txn;
    let prefix = |p: &'static str| async move {
        let rows = must!(txn.prefix::<_, String, usize>(0, &p).await);
        rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>()
    };
    assert_eq!(prefix("user/").await, vec!["user/1", "user/10", "user/2"]);
    assert_eq!(
        prefix("user").await,
        vec!["user", "user/1", "user/10", "user/2", "users"]
    );
    assert_eq!(prefix("a").await, vec!["a", "a\u{0}b", "ab"]);
    assert_eq!(prefix("").await.len(), words.len());
    assert!(prefix("x").await.is_empty());
    let reversed: Vec<String> = must!(txn.prefix::<_, String, usize>(0, &"user/").reverse().await)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(reversed, vec!["user/2", "user/10", "user/1"]);
}

/// Tuple keys: a one-field tuple prefix selects its sub-space, in order of the second field;
/// a tuple ending in a string selects the keys whose last field starts with it.
pub async fn tuple_prefix<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for (t, name) in [
        (7u32, "bob"),
        (7, "ann"),
        (70, "x"),
        (6, "zed"),
        (8, "a"),
        (7, "annie"),
    ] {
        must!(txn.insert(0, &(t, name.to_string()), &format!("{t}{name}")));
    }
    must!(txn.commit().await);
    let txn = store.current();
    let rows = must!(txn.prefix::<_, (u32, String), String>(0, &(7u32,)).await);
    let keys: Vec<(u32, String)> = rows.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        vec![(7, "ann".into()), (7, "annie".into()), (7, "bob".into())]
    );
    let rows = must!(
        txn.prefix::<_, (u32, String), String>(0, &(7u32, "ann"))
            .await
    );
    assert_eq!(
        rows,
        vec![
            ((7, "ann".into()), "7ann".into()),
            ((7, "annie".into()), "7annie".into())
        ]
    );
}

/// `reverse` and `limit`, alone and together, on ranges and the whole slot.
pub async fn reverse_and_limit<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for k in 0u32..100 {
        must!(txn.insert(0, &k, &k));
    }
    must!(txn.commit().await);
    let txn = store.current();
    let keys = |rows: Vec<(u32, u32)>| rows.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(must!(txn.range(0, ..).reverse().limit(5).await)),
        vec![99, 98, 97, 96, 95]
    );
    assert_eq!(
        keys(must!(txn.range(0, 10..20).reverse().await)),
        (10..20).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        keys(must!(txn.range(0, 10..20).limit(3).await)),
        vec![10, 11, 12]
    );
    assert_eq!(
        keys(must!(txn.range(0, 10..=20).reverse().limit(2).await)),
        vec![20, 19]
    );
    assert!(must!(txn.range::<u32, u32>(0, ..).limit(0).await).is_empty());
    assert_eq!(
        must!(txn.range::<u32, u32>(0, 95..).limit(1000).await).len(),
        5
    );
}

/// Streaming over more than a thousand keys (many engine pages), both ways, with limits.
pub async fn stream_many_keys<E: Runs<F>, F: Place>() {
    const N: u32 = 2_500;
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for k in 0..N {
        must!(txn.insert(0, &k, &format!("v{k}")));
    }
    must!(txn.insert(0, &"a string key", &"skipped"));
    must!(txn.commit().await);
    let store = env.reopen(store).await;
    let txn = store.current();
    let mut stream = txn.range::<u32, String>(0, ..).stream();
    let mut next = 0;
    while let Some((k, v)) = must!(stream.next().await) {
        assert_eq!((k, v), (next, format!("v{next}")));
        next += 1;
    }
    assert_eq!(next, N);
    let mut stream = txn.range::<u32, String>(0, ..).reverse().stream();
    let mut expect = N;
    while let Some((k, _)) = must!(stream.next().await) {
        expect -= 1;
        assert_eq!(k, expect);
    }
    assert_eq!(expect, 0);
    let mut stream = txn.range::<u32, String>(0, 500..1700).limit(1000).stream();
    let mut count = 0;
    while let Some((k, _)) = must!(stream.next().await) {
        assert_eq!(k, 500 + count);
        count += 1;
    }
    assert_eq!(count, 1000);
    assert_eq!(must!(txn.keys::<u32>(0).await).len(), N as usize);
}

/// Scans of a transaction merge its own inserts, overwrites and removals, across pages and
/// in both directions; a snapshot taken before does not see them.
pub async fn sees_own_writes<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut model = BTreeMap::new();
    let mut txn = store.current();
    for k in (0u32..3000).step_by(2) {
        must!(txn.insert(0, &k, &k));
        model.insert(k, k);
    }
    must!(txn.commit().await);
    let before = store.snapshot();
    let mut txn = store.current();
    for k in (1u32..3000).step_by(7) {
        must!(txn.insert(0, &k, &(k + 1_000_000)));
        model.insert(k, k + 1_000_000);
    }
    for k in (0u32..3000).step_by(6) {
        must!(txn.remove(0, &k));
        model.remove(&k);
    }
    must!(txn.insert(0, &5000u32, &1u32));
    model.insert(5000, 1);
    let want: Vec<(u32, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(must!(txn.range::<u32, u32>(0, ..).await), want);
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(must!(txn.range::<u32, u32>(0, ..).reverse().await), rev);
    let mid: Vec<(u32, u32)> = model.range(1000..2000).map(|(k, v)| (*k, *v)).collect();
    assert_eq!(must!(txn.range::<u32, u32>(0, 1000..2000).await), mid);
    assert_eq!(
        must!(txn.keys::<u32>(0).await),
        model.keys().copied().collect::<Vec<_>>()
    );
    assert_eq!(must!(before.range::<u32, u32>(0, ..).await).len(), 1500);
    must!(txn.commit().await);
    assert_eq!(must!(store.current().range::<u32, u32>(0, ..).await), want);
    assert_eq!(
        must!(before.range::<u32, u32>(0, ..).await).len(),
        1500,
        "snapshot saw a later commit"
    );
}

/// Keys of other types in the slot are skipped by typed scans.
pub async fn skips_other_key_types<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for k in 0u32..5 {
        must!(txn.insert(0, &k, &k));
        must!(txn.insert(0, &format!("s{k}"), &k));
        must!(txn.insert(0, &u64::from(k), &k));
    }
    must!(txn.commit().await);
    let txn = store.current();
    assert_eq!(must!(txn.range::<u32, u32>(0, ..).await).len(), 5);
    assert_eq!(must!(txn.range::<String, u32>(0, ..).await).len(), 5);
    assert_eq!(must!(txn.keys::<u64>(0).await), vec![0, 1, 2, 3, 4]);
}
