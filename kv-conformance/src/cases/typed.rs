//! Typed slots (`SlotDef`), the catalog of slots, `Store::transact`, range argument checks
//! and the stream interface of range scans.

use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};

use futures_core::Stream;
use kv_api::{BoxFuture, CATALOG_SLOT, Retry, SlotDef, SlotInfo};
use serde::{Deserialize, Serialize};

use super::prelude::*;
use crate::runtime::{join_all, yield_now};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
}

const USERS: SlotDef<(String, u32), User> = SlotDef::new(1, "users");
const TAGS: SlotDef<String, Vec<String>> = SlotDef::new(2, "tags");
const COUNTER: SlotDef<String, u64> = SlotDef::new(3, "counter");

fn user(name: &str, age: u32) -> User {
    User {
        name: name.into(),
        age,
    }
}

/// Values written through a typed slot read back through it, in snapshots, versions, ranges
/// and streams, also after a reopen; the untyped API sees the same entries.
pub async fn round_trip<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    {
        let mut users = must!(txn.slot_mut(&USERS));
        must!(users.insert(&("org1".to_string(), 3), &user("ada", 36)));
        must!(users.insert(&("org1".to_string(), 10), &user("bob", 40)));
        must!(users.insert(&("org2".to_string(), 1), &user("cy", 20)));
        // Its own writes are visible through the handle.
        assert_eq!(
            must!(users.get(&("org1".to_string(), 3)).await),
            Some(user("ada", 36))
        );
    }
    must!(must!(txn.slot_mut(&TAGS)).insert(&"k".to_string(), &vec!["a".to_string()]));
    let v1 = must!(txn.commit().await);
    let mut txn = store.current();
    must!(must!(txn.slot_mut(&USERS)).insert(&("org1".to_string(), 3), &user("ada", 37)));
    must!(must!(txn.slot_mut(&USERS)).remove(&("org2".to_string(), 1)));
    let v2 = must!(txn.commit().await);

    env.before_and_after_reopen(store, async |store| {
        let snap = store.snapshot();
        let users = must!(snap.slot(&USERS));
        let key = ("org1".to_string(), 3u32);
        assert_eq!(must!(users.get(&key).await), Some(user("ada", 37)));
        let versions = must!(users.versions(&key).await);
        assert_eq!(versions, vec![v1, v2]);
        assert_eq!(
            must!(users.get_version(&key, v1).await),
            Some(user("ada", 36))
        );
        assert_eq!(must!(users.get(&("org2".to_string(), 1)).await), None);
        assert_eq!(
            must!(users.get_unremoved(&("org2".to_string(), 1)).await),
            Some(user("cy", 20))
        );
        // Typed order: 3 before 10 (not byte order of the decimal).
        let rows = must!(users.all().await);
        assert_eq!(
            rows,
            vec![
                (("org1".to_string(), 3), user("ada", 37)),
                (("org1".to_string(), 10), user("bob", 40)),
            ]
        );
        assert_eq!(
            must!(users.keys().await),
            vec![("org1".to_string(), 3), ("org1".to_string(), 10)]
        );
        assert_eq!(must!(users.prefix(&("org1",)).await).len(), 2);
        assert_eq!(
            must!(users.all().reverse().limit(1).await),
            vec![rows[1].clone()]
        );
        // The stream interface gives the same rows.
        let mut stream = users.all().stream();
        let mut streamed = Vec::new();
        while let Some(row) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
            streamed.push(must!(row));
        }
        assert_eq!(streamed, rows);
        // A snapshot at the first version sees the first values.
        let old = must!(store.snapshot_at(v1).await);
        assert_eq!(
            must!(must!(old.slot(&USERS)).get(&key).await),
            Some(user("ada", 36))
        );
        // Typed and untyped are one store.
        let untyped: Option<User> = must!(snap.get(1, &("org1", 10u32)).await);
        assert_eq!(untyped, Some(user("bob", 40)));
        assert_eq!(
            must!(must!(snap.slot(&TAGS)).get("k").await),
            Some(vec!["a".to_string()])
        );
    })
    .await;
}

/// Borrowed keys (`&str` for `String`, `(&str, u32)` for `(String, u32)`) read and write the
/// same entries as owned keys, in point reads, removals and range bounds.
pub async fn borrowed_keys<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(must!(txn.slot_mut(&USERS)).insert(&("org1", 3), &user("ada", 36)));
    must!(must!(txn.slot_mut(&USERS)).insert(&("org1", 4), &user("bob", 40)));
    must!(must!(txn.slot_mut(&TAGS)).insert("k", &vec!["x".to_string()]));
    must!(txn.commit().await);

    let snap = store.snapshot();
    let users = must!(snap.slot(&USERS));
    let owned = ("org1".to_string(), 3u32);
    assert_eq!(must!(users.get(&owned).await), Some(user("ada", 36)));
    assert_eq!(must!(users.get(&("org1", 3)).await), Some(user("ada", 36)));
    let name = String::from("org1");
    assert_eq!(
        must!(users.get(&(name.as_str(), 4)).await),
        Some(user("bob", 40))
    );
    let rows = must!(users.range(("org1", 0)..("org1", 4)).await);
    assert_eq!(rows, vec![(owned.clone(), user("ada", 36))]);
    assert_eq!(
        must!(must!(snap.slot(&TAGS)).get(&"k".to_string()).await),
        Some(vec!["x".to_string()])
    );
    drop(snap);

    let mut txn = store.current();
    must!(must!(txn.slot_mut(&USERS)).remove(&("org1", 3)));
    must!(txn.commit().await);
    assert_eq!(
        must!(must!(store.snapshot().slot(&USERS)).get(&owned).await),
        None
    );
}

/// The catalog lists every slot opened through a definition, with its name and type names,
/// durably; the catalog slot is readable but refused to untyped writes and to definitions.
pub async fn catalog_listing<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    assert_eq!(must!(store.slots().await), vec![]);
    must!(store.open_slot(&USERS).await);
    let mut txn = store.current();
    must!(must!(txn.slot_mut(&TAGS)).insert("k", &vec![]));
    // Opening a known slot again records nothing new.
    must!(txn.slot_mut(&USERS));
    must!(txn.commit().await);
    let v = must!(store.version());
    must!(store.open_slot(&USERS).await);
    assert_eq!(
        must!(store.version()),
        v,
        "reopening a known slot committed"
    );

    let want = vec![
        SlotInfo {
            slot: 1,
            name: "users".into(),
            key_type: std::any::type_name::<(String, u32)>().into(),
            value_type: std::any::type_name::<User>().into(),
        },
        SlotInfo {
            slot: 2,
            name: "tags".into(),
            key_type: std::any::type_name::<String>().into(),
            value_type: std::any::type_name::<Vec<String>>().into(),
        },
    ];
    env.before_and_after_reopen(store, async |store| {
        assert_eq!(must!(store.slots().await), want);
        // The catalog slot holds one entry per slot, readable with the untyped API.
        assert_eq!(
            must!(store.snapshot().keys::<u8>(CATALOG_SLOT).await),
            vec![1, 2]
        );
    })
    .await;
}

/// A definition whose key type, value type or name differs from the recorded one is
/// `SlotTypeMismatch` (also after a reopen, and in read-only views); `redefine_slot` records
/// the new definition, after which the old one is the mismatch.
pub async fn type_mismatch_and_redefine<E: Runs<F>, F: Place>() {
    const WRONG_KEY: SlotDef<(String, i32), User> = SlotDef::new(1, "users");
    const WRONG_VALUE: SlotDef<(String, u32), (String, u32)> = SlotDef::new(1, "users");
    const RENAMED: SlotDef<(String, u32), User> = SlotDef::new(1, "people");
    const USERS_V2: SlotDef<(String, u32), (String, u64)> = SlotDef::new(1, "users");

    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(must!(txn.slot_mut(&USERS)).insert(&("org1", 3), &user("ada", 36)));
    // Within the transaction that records it, too.
    assert_matches!(
        txn.slot_mut(&WRONG_VALUE).map(|_| ()),
        Err(Error::SlotTypeMismatch {
            what: "value type",
            ..
        })
    );
    must!(txn.commit().await);
    let store = env.reopen(store).await;

    let mut txn = store.current();
    assert_matches!(
        txn.slot_mut(&WRONG_KEY).map(|_| ()),
        Err(Error::SlotTypeMismatch {
            slot: 1,
            what: "key type",
            ..
        })
    );
    assert_matches!(
        store.snapshot().slot(&WRONG_VALUE).map(|_| ()),
        Err(Error::SlotTypeMismatch {
            what: "value type",
            ..
        })
    );
    assert_matches!(
        store.open_slot(&RENAMED).await,
        Err(Error::SlotTypeMismatch { what: "name", .. })
    );
    match store.open_slot(&WRONG_VALUE).await {
        Err(Error::SlotTypeMismatch {
            recorded,
            requested,
            ..
        }) => {
            assert_eq!(recorded, std::any::type_name::<User>());
            assert_eq!(requested, std::any::type_name::<(String, u32)>());
        }
        other => panic!("expected SlotTypeMismatch, got {other:?}"),
    }
    drop(txn);

    // A deliberate migration: read with the old definition, redefine, rewrite.
    let mut txn = store.current();
    let old = must!(must!(txn.slot(&USERS)).all().await);
    must!(txn.redefine_slot(&USERS_V2));
    {
        let mut users = must!(txn.slot_mut(&USERS_V2));
        for (k, u) in old {
            must!(users.insert(&k, &(u.name, u64::from(u.age))));
        }
    }
    assert_matches!(
        txn.slot(&USERS).map(|_| ()),
        Err(Error::SlotTypeMismatch { .. })
    );
    must!(txn.commit().await);
    env.before_and_after_reopen(store, async |store| {
        let snap = store.snapshot();
        assert_eq!(
            must!(must!(snap.slot(&USERS_V2)).get(&("org1", 3)).await),
            Some(("ada".to_string(), 36))
        );
        assert_matches!(
            snap.slot(&USERS).map(|_| ()),
            Err(Error::SlotTypeMismatch { .. })
        );
        let slots = must!(store.slots().await);
        assert_eq!(
            slots.first().map(|s| s.value_type.as_str()),
            Some(std::any::type_name::<(String, u64)>())
        );
    })
    .await;
    // And back, with Store::redefine_slot.
    let store = env.open().await;
    must!(store.redefine_slot(&USERS).await);
    must!(store.open_slot(&USERS).await);
}

/// Slot 255 is the catalog's: untyped writes and definitions of it are `InvalidArgument`,
/// and nothing is written.
pub async fn reserved_slot_refused<E: Runs<F>, F: Place>() {
    const BAD: SlotDef<u8, u8> = SlotDef::new(CATALOG_SLOT, "mine");
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    assert_matches!(
        txn.insert(CATALOG_SLOT, &1u8, &1u8),
        Err(Error::InvalidArgument(_))
    );
    assert_matches!(
        txn.remove(CATALOG_SLOT, &1u8),
        Err(Error::InvalidArgument(_))
    );
    assert_matches!(
        txn.slot_mut(&BAD).map(|_| ()),
        Err(Error::InvalidArgument(_))
    );
    assert_matches!(txn.slot(&BAD).map(|_| ()), Err(Error::InvalidArgument(_)));
    assert_matches!(txn.redefine_slot(&BAD), Err(Error::InvalidArgument(_)));
    assert_matches!(store.open_slot(&BAD).await, Err(Error::InvalidArgument(_)));
    assert_eq!(
        must!(txn.commit().await),
        Version::ZERO,
        "something was written"
    );
    assert_eq!(must!(store.slots().await), vec![]);
    // Every other slot is the user's.
    let mut txn = store.current();
    must!(txn.insert(CATALOG_SLOT - 1, &1u8, &1u8));
    must!(txn.commit().await);
}

/// `transact` retries a transaction that lost a real conflict and returns its value; it
/// gives up with `Conflict` after its attempts; other errors are returned at once.
pub async fn transact_retries_conflicts<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    must!(store.open_slot(&COUNTER).await);

    // A competing commit inside the first attempt, after it read the key: that attempt
    // conflicts, the second commits.
    let runs = AtomicU32::new(0);
    let got = must!(
        store
            .transact(async |txn| {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                let n = txn.slot(&COUNTER)?.get("n").await?.unwrap_or(0);
                if run == 0 {
                    let mut rival = store.current();
                    rival.slot_mut(&COUNTER)?.insert("n", &100)?;
                    rival.commit().await?;
                }
                txn.slot_mut(&COUNTER)?.insert("n", &(n + 1))?;
                Ok(n + 1)
            })
            .await
    );
    assert_eq!((got, runs.load(Ordering::SeqCst)), (101, 2));

    // Always losing: Conflict after exactly the allowed attempts.
    let runs = AtomicU32::new(0);
    let outcome = store
        .transact_with(Retry::attempts(3), async |txn| {
            runs.fetch_add(1, Ordering::SeqCst);
            let n = txn.slot(&COUNTER)?.get("n").await?.unwrap_or(0);
            let mut rival = store.current();
            rival.slot_mut(&COUNTER)?.insert("n", &(n + 10))?;
            rival.commit().await?;
            txn.slot_mut(&COUNTER)?.insert("n", &(n + 1))?;
            Ok(())
        })
        .await;
    assert_matches!(outcome, Err(Error::Conflict(_)));
    assert_eq!(runs.load(Ordering::SeqCst), 3);

    // Another error is not retried.
    let runs = AtomicU32::new(0);
    let outcome: Result<(), Error> = store
        .transact(async |_txn| {
            runs.fetch_add(1, Ordering::SeqCst);
            Err(Error::InvalidArgument("no".into()))
        })
        .await;
    assert_matches!(outcome, Err(Error::InvalidArgument(_)));
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // Concurrent increments through transact: none lost.
    const TASKS: u64 = 6;
    const EACH: u64 = 10;
    let before = must!(must!(store.snapshot().slot(&COUNTER)).get("n").await).unwrap_or(0);
    let tasks: Vec<BoxFuture<'static, ()>> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            let fut: BoxFuture<'static, ()> = Box::pin(async move {
                for _ in 0..EACH {
                    must!(
                        store
                            .transact_with(Retry::attempts(10_000), async move |txn| {
                                let n = txn.slot(&COUNTER)?.get("n").await?.unwrap_or(0);
                                yield_now().await;
                                txn.slot_mut(&COUNTER)?.insert("n", &(n + 1))
                            })
                            .await
                    );
                }
            });
            fut
        })
        .collect();
    join_all(tasks).await;
    let after = must!(must!(store.snapshot().slot(&COUNTER)).get("n").await);
    assert_eq!(after, Some(before + TASKS * EACH), "an increment was lost");
}

/// A range whose start is after its end is `InvalidArgument`, typed or untyped, awaited or
/// streamed; an empty range is not.
pub async fn inverted_range_is_an_error<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &7u32, &"x"));
    must!(must!(txn.slot_mut(&USERS)).insert(&("a", 1), &user("a", 1)));
    must!(txn.commit().await);
    let (hi, lo) = (10u32, 5u32);
    let snap = store.snapshot();
    assert_matches!(
        snap.range::<u32, String>(0, hi..lo).await,
        Err(Error::InvalidArgument(_))
    );
    assert_matches!(
        snap.range::<u32, String>(0, hi..=lo).reverse().await,
        Err(Error::InvalidArgument(_))
    );
    let mut stream = snap.range::<u32, String>(0, hi..lo).stream();
    assert_matches!(stream.next().await, Err(Error::InvalidArgument(_)));
    assert_matches!(stream.next().await, Ok(None));
    let users = must!(snap.slot(&USERS));
    assert_matches!(
        users.range(("b", 0)..("a", 0)).await,
        Err(Error::InvalidArgument(_))
    );
    assert_eq!(must!(snap.range::<u32, String>(0, lo..lo).await), vec![]);
    assert_eq!(
        must!(snap.range::<u32, String>(0, lo..hi).await),
        vec![(7, "x".to_string())]
    );
}
