//! Range removal (`Transaction::remove_range`, `remove_prefix`): what is removed, the removal
//! versions, atomicity, conflicts with concurrent transactions, merge and reopen.

use kv_api::{Engine, Options, Store, Tuning};

use super::prelude::*;

/// Keys 0..40 in slot 0 and slot 1 (value `key * 10`), one commit.
async fn seeded<E: Runs<F>, F: Place>(env: &Env<E, F>) -> StoreOn<E, F> {
    let store = env.open().await;
    let mut txn = store.current();
    for k in 0u32..40 {
        must!(txn.insert(0, &k, &(k * 10)));
        must!(txn.insert(1, &k, &(k * 10)));
    }
    must!(txn.insert(0, &"a string key", &1u32));
    must!(txn.commit().await);
    store
}

async fn keys0<E: Engine>(store: &Store<E>) -> Vec<u32> {
    must!(store.snapshot().keys::<u32>(0).await)
}

/// Only the keys inside the range go, in that slot only; the count is of live keys; the
/// transaction's own inserts in the range go too; also after a reopen.
pub async fn removes_exactly_the_range<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut txn = store.current();
    must!(txn.insert(0, &100u32, &1u32));
    must!(txn.insert(0, &12u32, &1u32));
    must!(txn.remove(0, &11u32));
    // 10..20 holds 10 keys; 11 was already removed by the transaction itself.
    assert_eq!(must!(txn.remove_range(0, 10u32..20).await), 9);
    assert_eq!(
        must!(txn.get::<_, u32>(0, &12u32).await),
        None,
        "own insert removed"
    );
    assert_eq!(
        must!(txn.remove_range(0, 10u32..20).await),
        0,
        "nothing left"
    );
    // Inserted after the removal, in the same transaction: it stays.
    must!(txn.insert(0, &15u32, &7u32));
    assert_eq!(must!(txn.remove_range(0, 30u32..=30).await), 1);
    assert_eq!(
        must!(txn.remove_range(0, 50u32..60).await),
        0,
        "empty range"
    );
    // The transaction's own reads see the removals and the later insert.
    let inside: Vec<(u32, u32)> = must!(txn.range(0, 8u32..22).await);
    assert_eq!(inside, [(8, 80), (9, 90), (15, 7), (20, 200), (21, 210)]);
    let reversed: Vec<(u32, u32)> = must!(txn.range(0, 28u32..32).reverse().await);
    assert_eq!(reversed, [(31, 310), (29, 290), (28, 280)]);
    let many: Vec<Option<u32>> = must!(txn.get_many(0, &[13u32, 15, 30, 31]).await);
    assert_eq!(many, [None, Some(7), None, Some(310)]);
    must!(txn.commit().await);
    let want: Vec<u32> = (0u32..40)
        .filter(|k| !(10..20).contains(k) || *k == 15)
        .filter(|k| *k != 30)
        .chain([100])
        .collect();
    env.before_and_after_reopen(store, async |store| {
        assert_eq!(keys0(store).await, want);
        let snap = store.snapshot();
        assert_eq!(must!(snap.get::<_, u32>(0, &15u32).await), Some(7));
        assert_eq!(
            must!(snap.keys::<u32>(1).await).len(),
            40,
            "slot 1 untouched"
        );
        assert_eq!(
            must!(snap.get::<_, u32>(0, &"a string key").await),
            Some(1),
            "a key of another type outside the bounds"
        );
    })
    .await;
}

/// `remove_prefix` removes the keys with the prefix; an unbounded range clears the slot,
/// keys of every type; the catalog's slot and read-only views are refused.
pub async fn prefix_and_whole_slot<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for (org, id) in [("org1", 1u32), ("org1", 2), ("org10", 1), ("org2", 1)] {
        must!(txn.insert(2, &(org, id), &format!("{org}/{id}")));
    }
    must!(txn.commit().await);
    let mut txn = store.current();
    assert_eq!(
        must!(txn.remove_prefix(2, &("org1",)).await),
        3,
        "org1 and org10"
    );
    must!(txn.commit().await);
    let left: Vec<((String, u32), String)> = must!(store.snapshot().prefix(2, &("org",)).await);
    assert_eq!(left, [(("org2".to_string(), 1), "org2/1".to_string())]);

    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut txn = store.current();
    assert_eq!(must!(txn.remove_range::<u32>(0, ..).await), 41);
    must!(txn.commit().await);
    assert!(keys0(&store).await.is_empty());
    assert!(must!(store.snapshot().keys::<String>(0).await).is_empty());

    let mut txn = store.current();
    assert_matches!(
        txn.remove_range::<u32>(kv_api::CATALOG_SLOT, ..).await,
        Err(Error::InvalidArgument(_))
    );
    let mut snap = store.snapshot();
    assert_matches!(snap.remove_prefix(0, &"").await, Err(Error::ReadOnly(_)));
    let (hi, lo) = (5u32, 1u32);
    assert_matches!(
        txn.remove_range(0, hi..lo).await,
        Err(Error::InvalidArgument(_))
    );
}

/// Every removed key gets a removal version at the commit; keys outside the range and keys
/// already removed before it get none; older versions stay readable through snapshots.
pub async fn versions_of_removed_keys<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut txn = store.current();
    must!(txn.remove(0, &5u32));
    let v2 = must!(txn.commit().await);
    let mut txn = store.current();
    must!(txn.insert(0, &"other", &1u32));
    assert_eq!(must!(txn.remove_range(0, 0u32..10).await), 9);
    let v3 = must!(txn.commit().await);
    let before = must!(store.snapshot_at(v2).await);
    assert_eq!(must!(before.get::<_, u32>(0, &3u32).await), Some(30));
    assert_eq!(must!(before.keys::<u32>(0).await).len(), 39);
    drop(before);
    env.before_and_after_reopen(store, async |store| {
        let snap = store.snapshot();
        for k in 0u32..10 {
            let versions = must!(snap.versions(0, &k).await);
            let last = versions.last().copied();
            if k == 5 {
                assert_eq!(versions.len(), 2, "key 5: {versions:?}");
                assert_eq!(last, Some(v2), "already removed: no second removal");
            } else {
                assert_eq!(versions.len(), 2, "key {k}: {versions:?}");
                assert_eq!(last, Some(v3));
                assert!(
                    last.is_some_and(|v| v.is_removal()),
                    "key {k}: {versions:?}"
                );
                assert_eq!(must!(snap.get_version::<_, u32>(0, &k, v3).await), None);
                assert_eq!(
                    must!(snap.get_version::<_, u32>(0, &k, versions[0]).await),
                    Some(k * 10)
                );
            }
        }
        let outside = must!(snap.versions(0, &10u32).await);
        assert_eq!(outside.len(), 1, "outside the range: {outside:?}");
        let other_slot = must!(snap.versions(1, &3u32).await);
        assert_eq!(other_slot.len(), 1);
    })
    .await;
}

/// The removal is atomic with the transaction's other writes: a conflicting commit leaves
/// nothing of it, a committed one all of it.
pub async fn atomic_with_other_writes<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let mut t1 = store.current();
    must!(t1.remove_range(0, 0u32..20).await);
    must!(t1.insert(1, &"moved", &20u32));
    let mut t2 = store.current();
    must!(t2.insert(0, &3u32, &0u32));
    must!(t2.commit().await);
    assert_matches!(t1.commit().await, Err(Error::Conflict(_)));
    assert_eq!(keys0(&store).await.len(), 40, "nothing of the loser");
    assert_eq!(
        must!(store.snapshot().get::<_, u32>(1, &"moved").await),
        None
    );
    let mut t1 = store.current();
    must!(t1.remove_range(0, 0u32..20).await);
    must!(t1.insert(1, &"moved", &20u32));
    must!(t1.commit().await);
    let snap = store.snapshot();
    assert_eq!(
        must!(snap.keys::<u32>(0).await),
        (20u32..40).collect::<Vec<_>>()
    );
    assert_eq!(must!(snap.get::<_, u32>(1, &"moved").await), Some(20));
}

/// A transaction that read, wrote or scanned inside a range removed after it started
/// conflicts; one that touched only keys outside it commits; and a range removal conflicts
/// with commits into its range made after it started, also of keys it did not hold.
pub async fn conflicts<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let range = 10u32..20;

    // Each of these starts before the removal commits and touches the range.
    let mut reader = store.current();
    let _: Option<u32> = must!(reader.get(0, &12u32).await);
    must!(reader.insert(1, &"reader", &1u32));
    let mut absent_reader = store.current();
    let _: Option<u32> = must!(absent_reader.get(0, &10_000u32).await);
    must!(absent_reader.insert(1, &"absent reader", &1u32));
    let mut blind_writer = store.current();
    must!(blind_writer.insert(0, &15u32, &1u32));
    // A key the range did not hold: a write into the range all the same.
    let mut new_key_writer = store.current();
    must!(new_key_writer.insert(0, &9_999u32, &1u32));
    let mut scanner = store.current();
    let _: Vec<(u32, u32)> = must!(scanner.range(0, 18u32..25).await);
    must!(scanner.insert(1, &"scanner", &1u32));
    let mut outside = store.current();
    let _: Option<u32> = must!(outside.get(0, &25u32).await);
    must!(outside.insert(0, &30u32, &1u32));
    must!(outside.insert(1, &"outside", &1u32));
    let mut other_slot = store.current();
    must!(other_slot.insert(1, &15u32, &1u32));

    let mut remover = store.current();
    must!(remover.remove_range(0, range.clone()).await);
    // The absent reader's key: the range removal writes it too, though it held no value.
    must!(remover.remove_range(0, 9_999u32..=10_000).await);
    must!(remover.commit().await);

    for (name, txn) in [
        ("reader", reader),
        ("absent reader", absent_reader),
        ("blind writer", blind_writer),
        ("scanner", scanner),
        ("writer of a new key", new_key_writer),
    ] {
        assert_matches!(txn.commit().await, Err(Error::Conflict(_)), "{name}");
    }
    must!(outside.commit().await);
    must!(other_slot.commit().await);

    // The other way round: a commit into the range (of a key it did not hold) after the
    // removal started makes the removal conflict.
    let mut remover = store.current();
    must!(remover.remove_range(0, 0u32..10).await);
    let mut writer = store.current();
    must!(writer.insert(0, &5u32, &55u32));
    must!(writer.commit().await);
    assert_matches!(remover.commit().await, Err(Error::Conflict(_)));
    assert_eq!(
        must!(store.snapshot().get::<_, u32>(0, &5u32).await),
        Some(55)
    );

    // Two overlapping range removals: the second to commit conflicts.
    let mut a = store.current();
    let mut b = store.current();
    must!(a.remove_range(0, 0u32..8).await);
    must!(b.remove_range(0, 6u32..9).await);
    must!(a.commit().await);
    assert_matches!(b.commit().await, Err(Error::Conflict(_)));
    assert_eq!(keys0(&store).await.first(), Some(&8));
}

/// Removed keys stay removed through a merge and a reopen; the removal versions go with the
/// merge (as every removal does when no snapshot needs it); the rest survives.
pub async fn through_merge<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let before = store.snapshot();
    let mut txn = store.current();
    must!(txn.remove_range(0, 0u32..30).await);
    must!(txn.commit().await);
    must!(store.merge().await);
    assert_eq!(
        must!(before.get::<_, u32>(0, &3u32).await),
        Some(30),
        "an open snapshot keeps what it sees"
    );
    assert_eq!(must!(before.keys::<u32>(0).await).len(), 40);
    drop(before);
    must!(store.merge().await);
    let store = env.reopen(store).await;
    let snap = store.snapshot();
    assert_eq!(keys0(&store).await, (30u32..40).collect::<Vec<_>>());
    assert!(must!(snap.versions(0, &3u32).await).is_empty());
    assert_eq!(must!(snap.get::<_, u32>(0, &35u32).await), Some(350));
    assert_eq!(must!(snap.keys::<u32>(1).await).len(), 40);
}

/// What a removal leaves, as `keys`, point reads, a batch read, a reverse scan and the
/// versions of every key show it: `want` holds the live keys (value `key * 10`, or `key + 1`
/// for keys written again after the removal at `removed`).
async fn check_removed<E: Engine>(
    store: &Store<E>,
    want: &[u32],
    again: &[u32],
    removed: kv_api::Version,
    what: &str,
) {
    let snap = store.snapshot();
    assert_eq!(must!(snap.keys::<u32>(0).await), want, "{what}: keys");
    let value = |k: u32| if again.contains(&k) { k + 1 } else { k * 10 };
    let all: Vec<u32> = (0..SPREAD).collect();
    let got: Vec<Option<u32>> = must!(snap.get_many(0, &all).await);
    for (k, v) in all.iter().zip(got) {
        let expect = want.contains(k).then(|| value(*k));
        assert_eq!(v, expect, "{what}: get_many of {k}");
        assert_eq!(
            must!(snap.get::<_, u32>(0, k).await),
            expect,
            "{what}: get of {k}"
        );
    }
    let reverse: Vec<(u32, u32)> = must!(snap.range(0, 0u32..SPREAD).reverse().await);
    let mut rev_want: Vec<(u32, u32)> = want.iter().map(|k| (*k, value(*k))).collect();
    rev_want.reverse();
    assert_eq!(reverse, rev_want, "{what}: reverse scan");
    for k in [0u32, 99, 100, 150, 160, 399, 400, 599] {
        let versions = must!(snap.versions(0, &k).await);
        let removals: Vec<_> = versions.iter().filter(|v| v.is_removal()).collect();
        if (100..400).contains(&k) && !versions.is_empty() {
            assert_eq!(removals.len(), 1, "{what}: versions of {k}: {versions:?}");
            assert_eq!(removals[0].seq(), removed.seq(), "{what}: {k}");
            assert_eq!(removals[0].time_ms(), removed.time_ms(), "{what}: {k}");
        } else {
            assert!(removals.is_empty(), "{what}: versions of {k}: {versions:?}");
        }
    }
}

/// Keys written, spread over several commits.
const SPREAD: u32 = 600;

/// A range removal over many keys on small engine knobs (files roll, memtables flush, tables
/// compact after a few KiB): reads are right before and after the removal's commit moves from
/// the log into tables and through compactions, after reopens, and after a merge, which
/// drops what it removed; a snapshot from before the removal sees every value until then,
/// and keys written into the range afterwards are live.
pub async fn across_flushes_and_compactions<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let tuning = <E::Engine as Engine>::Tuning::small();
    let store = env
        .open_tuned(Options::default().segment_size(4096), tuning)
        .await;
    for chunk in (0..SPREAD).collect::<Vec<_>>().chunks(50) {
        let mut txn = store.current();
        for k in chunk {
            must!(txn.insert(0, k, &(k * 10)));
        }
        must!(txn.commit().await);
    }
    let before = must!(store.version());
    let mut txn = store.current();
    assert_eq!(must!(txn.remove_range(0, 100u32..400).await), 300);
    let removed = must!(txn.commit().await);
    let pinned = must!(store.snapshot_at(before).await);
    let mut want: Vec<u32> = (0..SPREAD).filter(|k| !(100..400).contains(k)).collect();
    check_removed(&store, &want, &[], removed, "right after the removal").await;

    // Later commits push the removal's commit into tables and through compactions; keys
    // written into the range after it are live.
    let again = [150u32, 160];
    for round in 0..6u32 {
        let mut txn = store.current();
        for k in (400..SPREAD).step_by(3) {
            must!(txn.insert(0, &k, &(k * 10)));
        }
        if round == 2 {
            for k in again {
                must!(txn.insert(0, &k, &(k + 1)));
            }
        }
        must!(txn.insert(1, &round, &format!("{round:0>200}")));
        must!(txn.commit().await);
    }
    want.extend(again);
    want.sort();
    check_removed(&store, &want, &again, removed, "after flushes").await;
    assert_eq!(
        must!(pinned.keys::<u32>(0).await).len(),
        SPREAD as usize,
        "a snapshot from before the removal"
    );
    assert_eq!(must!(pinned.get::<_, u32>(0, &200u32).await), Some(2000));
    drop(pinned);
    let at = must!(store.snapshot_at(before).await);
    assert_eq!(must!(at.get::<_, u32>(0, &399u32).await), Some(3990));
    drop(at);
    let store = env.reopen(store).await;
    check_removed(&store, &want, &again, removed, "after a reopen").await;

    must!(store.merge().await);
    let snap = store.snapshot();
    assert_eq!(must!(snap.keys::<u32>(0).await), want, "after the merge");
    assert!(must!(snap.versions(0, &200u32).await).is_empty());
    assert_eq!(must!(snap.versions(0, &150u32).await).len(), 1);
    drop(snap);
    let store = env.reopen(store).await;
    assert_eq!(keys0(&store).await, want, "after the merge and a reopen");
    let report = must!(store.verify().await);
    assert!(report.is_clean(), "{report:?}");
}

/// A watcher of a range sees one removal per key the range held live, at the removal's
/// commit, and none for keys it did not hold; a replay from before the removal sees the same.
pub async fn watchers_see_each_removed_key<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = seeded(&env).await;
    let from = must!(store.version());
    let range = must!(kv_api::KeyRange::of(5u32..15));
    let mut live = must!(store.watch(0, range.clone()));
    let mut txn = store.current();
    must!(txn.remove(0, &7u32));
    must!(txn.commit().await);
    let mut txn = store.current();
    assert_eq!(must!(txn.remove_range(0, 0u32..10).await), 9);
    must!(txn.insert(0, &8u32, &1u32));
    let removed = must!(txn.commit().await);
    let mut replay = must!(store.watch_from(0, range, from));
    for feed in [&mut live, &mut replay] {
        let first = match feed.next().await {
            Some(Ok(c)) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(must!(first.key_as::<u32>()), 7);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let change = match feed.next().await {
                Some(Ok(c)) => c,
                other => panic!("{other:?}"),
            };
            assert_eq!(change.version.seq(), removed.seq(), "{change:?}");
            seen.push((
                must!(change.key_as::<u32>()),
                must!(change.value_as::<u32>()),
            ));
        }
        // Keys 5, 6 and 9 removed, 7 was already gone, 8 written again.
        seen.sort();
        assert_eq!(seen, [(5, None), (6, None), (8, Some(1)), (9, None)]);
    }
}
