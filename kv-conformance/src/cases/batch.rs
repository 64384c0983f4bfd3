//! Batched point reads: `get_many` answers exactly what a loop of `get` does, on the typed
//! API, the untyped one and the engine, and records its reads for conflicts as `get` does.

use kv_api::{Engine, SlotDef, Tuning};

use super::prelude::*;

const SCORES: SlotDef<String, u32> = SlotDef::new(3, "scores");

fn key(i: u32) -> String {
    format!("key-{i:03}")
}

/// Key lists to read: present, absent and removed keys, duplicates, unsorted, empty.
fn key_lists() -> Vec<Vec<String>> {
    let mut all: Vec<String> = (0..130).rev().map(key).collect();
    all.extend((0..130).step_by(7).map(key));
    vec![
        Vec::new(),
        vec![key(5)],
        vec![key(999)],
        vec![key(3), key(3), key(3)],
        vec![key(90), key(1), key(120), key(1), key(64), key(200), key(0)],
        all,
    ]
}

/// `get_many` against `get` at every one of `key_lists` (untyped, typed and on the engine).
async fn check<T: Engine>(txn: &kv_api::Transaction<T>, what: &str) {
    for keys in key_lists() {
        let mut want = Vec::new();
        for k in &keys {
            want.push(must!(txn.get::<_, u32>(0, k).await));
        }
        let got = must!(txn.get_many::<_, u32>(0, &keys).await);
        assert_eq!(got, want, "{what}: untyped get_many of {} keys", keys.len());
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let scores = must!(txn.slot(&SCORES));
        let typed = must!(scores.get_many(&refs).await);
        let mut typed_want = Vec::new();
        for k in &refs {
            typed_want.push(must!(scores.get(k).await));
        }
        assert_eq!(typed, typed_want, "{what}: typed get_many");
    }
}

/// Raw bytes through [`Engine::get_many`] against [`Engine::get`], at `at`.
async fn check_engine<T: Engine>(engine: &T, at: u64, what: &str) {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for i in (0..140).rev() {
        keys.push(must!(kv_api::keycodec::encode(&key(i))));
    }
    keys.push(b"not a key-codec key".to_vec());
    keys.push(Vec::new());
    keys.push(keys[3].clone());
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let got = must!(engine.get_many(0, &refs, at).await);
    assert_eq!(got.len(), refs.len(), "{what}");
    for (k, v) in refs.iter().zip(&got) {
        assert_eq!(
            v,
            &must!(engine.get(0, k, at).await),
            "{what}: engine key {k:?}"
        );
    }
}

/// `get_many` equals a loop of `get`: in memory and in the engine's files, at the latest
/// commit and in old snapshots, with the transaction's own writes, after a merge and reopens.
pub async fn get_many_equals_gets<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    // Small knobs: the LSM flushes and compacts, so reads go to tables too.
    let tuning = <E::Engine as Engine>::Tuning::small();
    let store = env.open_tuned(Options::default(), tuning).await;
    let mut txn = store.current();
    for i in 0..120u32 {
        must!(txn.insert(0, &key(i), &i));
        must!(txn.slot_mut(&SCORES))
            .insert(&key(i), &(i * 2))
            .expect("insert");
    }
    let first = must!(txn.commit().await);
    for round in 1..4u32 {
        let mut txn = store.current();
        for i in (0..120u32).filter(|i| i.is_multiple_of(round + 2)) {
            if i.is_multiple_of(2) {
                must!(txn.remove(0, &key(i)));
                must!(txn.slot_mut(&SCORES))
                    .remove(&key(i))
                    .expect("remove");
            } else {
                must!(txn.insert(0, &key(i), &(i + 1000 * round)));
            }
        }
        must!(txn.commit().await);
    }
    let old = must!(store.snapshot_at(first).await);
    check(&old, "old snapshot").await;
    check(&store.snapshot(), "latest").await;
    check_engine(store.engine(), first.seq(), "engine, old").await;
    check_engine(store.engine(), u64::MAX, "engine, latest").await;

    // The transaction's own writes and removals answer as `get` answers them.
    let mut txn = store.current();
    must!(txn.insert(0, &key(1), &7u32));
    must!(txn.remove(0, &key(5)));
    must!(txn.insert(0, &key(125), &8u32));
    check(&txn, "own writes").await;
    assert_eq!(
        must!(
            txn.get_many::<_, u32>(0, &[key(5), key(1), key(125), key(1)])
                .await
        ),
        vec![None, Some(7), Some(8), Some(7)]
    );
    drop((txn, old));

    let store = env.reopen(store).await;
    check(&store.snapshot(), "reopened").await;
    must!(store.merge().await);
    check(&store.snapshot(), "merged").await;
    check_engine(store.engine(), u64::MAX, "engine, merged").await;
    let store = env.reopen(store).await;
    check(&store.snapshot(), "merged, reopened").await;
}

/// Every key `get_many` read is a read for conflicts, as `get`'s are: another commit of one
/// of them fails the transaction; of a key it did not read, does not.
pub async fn get_many_records_reads<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    for i in 0..10u32 {
        must!(txn.insert(0, &key(i), &i));
    }
    must!(txn.commit().await);
    for (written, conflicts) in [(key(7), true), (key(8), false), (key(50), true)] {
        let mut t1 = store.current();
        let read = must!(t1.get_many::<_, u32>(0, &[key(2), key(7), key(50)]).await);
        assert_eq!((read[0], read[1].is_some(), read[2]), (Some(2), true, None));
        must!(t1.insert(0, &"out", &1u32));
        let mut t2 = store.current();
        must!(t2.insert(0, &written, &99u32));
        must!(t2.commit().await);
        let result = t1.commit().await;
        if conflicts {
            assert_matches!(
                result,
                Err(Error::Conflict(_)),
                "after a write of {written}"
            );
        } else {
            assert_matches!(result, Ok(_), "after a write of {written}");
        }
    }
}
