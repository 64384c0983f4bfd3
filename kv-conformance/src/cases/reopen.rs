//! Reopening: after every kind of operation, read-only, the writer lock, closed stores.

use kv_api::{Engine, KeyRange, Store, WriteBatch};

use super::prelude::*;
use crate::model::{Model, check_store};

const UNIVERSE: [(u8, u8); 6] = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 9)];

async fn check<E: Engine>(store: &Store<E>, model: &Model<u8, String>, after: &str) {
    if let Err(e) = check_store(store, model, &UNIVERSE, true).await {
        panic!("after {after}: {e}");
    }
}

async fn commit<E: Engine>(
    store: &Store<E>,
    model: &mut Model<u8, String>,
    writes: &[(u8, u8, Option<&str>)],
) {
    let mut txn = store.current();
    for (slot, key, value) in writes {
        match value {
            Some(v) => must!(txn.insert(*slot, key, v)),
            None => must!(txn.remove(*slot, key)),
        }
    }
    let v = must!(txn.commit().await);
    model.commit(
        v.seq(),
        writes
            .iter()
            .map(|(s, k, v)| ((*s, *k), v.map(str::to_string))),
    );
}

/// The state (values, versions, every snapshot) is the same after a reopen following each
/// kind of operation: insert, overwrite, remove, abort, empty commit, conflict, merge, close,
/// and a reopen with nothing in between.
pub async fn after_each_operation<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let mut model = Model::new();
    let store = env.open().await;
    check(&store, &model, "open").await;
    let store = env.reopen(store).await;
    check(&store, &model, "reopen of an empty store").await;

    commit(
        &store,
        &mut model,
        &[(0, 0, Some("a")), (0, 1, Some("b")), (1, 0, Some("c"))],
    )
    .await;
    let store = env.reopen(store).await;
    check(&store, &model, "insert").await;

    commit(&store, &mut model, &[(0, 0, Some("a2"))]).await;
    let store = env.reopen(store).await;
    check(&store, &model, "overwrite").await;

    commit(&store, &mut model, &[(0, 1, None), (1, 1, None)]).await;
    let store = env.reopen(store).await;
    check(&store, &model, "remove").await;

    let mut txn = store.current();
    must!(txn.insert(0, &2u8, &"aborted"));
    txn.abort();
    must!(store.current().commit().await);
    let store = env.reopen(store).await;
    check(&store, &model, "abort and empty commit").await;

    let mut loser = store.current();
    must!(loser.get::<_, String>(0, &0u8).await);
    must!(loser.insert(0, &2u8, &"loser"));
    commit(&store, &mut model, &[(0, 0, Some("winner"))]).await;
    assert_matches!(loser.commit().await, Err(Error::Conflict(_)));
    let store = env.reopen(store).await;
    check(&store, &model, "conflict").await;

    must!(store.merge().await);
    model.merge(model.last());
    let store = env.reopen(store).await;
    check(&store, &model, "merge").await;

    commit(
        &store,
        &mut model,
        &[(2, 9, Some("after merge")), (0, 0, None)],
    )
    .await;
    must!(store.close().await);
    let store = env.reopen(store).await;
    check(&store, &model, "close").await;

    let store = env.reopen(store).await;
    let store = env.reopen(store).await;
    check(&store, &model, "three reopens").await;
}

/// A read-only open sees the data, refuses every mutation with `Error::ReadOnly` (typed
/// layer and engine), and leaves the files untouched.
pub async fn read_only<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let mut model = Model::new();
    let store = env.open().await;
    commit(&store, &mut model, &[(0, 0, Some("a")), (1, 1, Some("b"))]).await;
    commit(&store, &mut model, &[(0, 0, Some("a2")), (1, 1, None)]).await;
    drop(store);
    let before = must!(dump(&env.storage().await).await);

    let ro = must!(Store::<E::Engine<F::Storage>>::open_read_only(env.storage().await).await);
    check(&ro, &model, "read-only open").await;
    let mut txn = ro.current();
    assert_matches!(txn.insert(0, &0u8, &"x"), Err(Error::ReadOnly(_)));
    assert_matches!(txn.remove(0, &0u8), Err(Error::ReadOnly(_)));
    assert_matches!(ro.merge().await, Err(Error::ReadOnly(_)));
    let batch =
        WriteBatch::new(must!(ro.engine().snapshot())).write(0, vec![0x10, 0], Some(vec![1]));
    assert_matches!(ro.engine().commit(batch).await, Err(Error::ReadOnly(_)));
    drop((txn, ro));
    let after = must!(dump(&env.storage().await).await);
    assert!(
        before == after,
        "a read-only open changed the files: {:?} -> {:?}",
        dump_summary(&before),
        dump_summary(&after)
    );
    let store = env.open().await;
    check(&store, &model, "reopen for writing").await;
}

/// A read-only open beside a live writer works (it takes no lock) and sees what was
/// committed before it opened.
pub async fn read_only_beside_writer<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let mut model = Model::new();
    let writer = env.open().await;
    commit(&writer, &mut model, &[(0, 0, Some("a")), (0, 1, Some("b"))]).await;
    let ro = must!(Store::<E::Engine>::open_read_only(env.storage().await).await);
    check(&ro, &model, "read-only open beside a writer").await;
    let mut more = model.clone();
    commit(&writer, &mut more, &[(0, 2, Some("c"))]).await;
    let txn = ro.current();
    let seen: Option<String> = must!(txn.get(0, &0u8).await);
    assert_eq!(seen.as_deref(), Some("a"));
    check(&writer, &more, "the writer's own view").await;
}

/// A second writer on the same storage gets `Error::Locked` until the first is dropped.
pub async fn second_writer_locked<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let first = env.open().await;
    let mut txn = first.current();
    must!(txn.insert(0, &"k", &1u8));
    must!(txn.commit().await);
    assert_matches!(
        env.try_open_with(Options::default()).await.map(|_| ()),
        Err(Error::Locked(_))
    );
    // The refused open must not have disturbed the first writer.
    let mut txn = first.current();
    must!(txn.insert(0, &"k", &2u8));
    must!(txn.commit().await);
    let clone = first.clone();
    drop(first);
    assert_matches!(
        env.try_open_with(Options::default()).await.map(|_| ()),
        Err(Error::Locked(_)),
        "a clone of the store still holds the lock"
    );
    drop(clone);
    let second = env.open().await;
    assert_eq!(must!(second.current().get::<_, u8>(0, &"k").await), Some(2));
}

/// After `close`, every operation of the store, its clones and its transactions is
/// `Error::Closed`; the data is intact after a reopen.
pub async fn closed_store<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &"k", &1u8));
    must!(txn.commit().await);
    let mut open_txn = store.current();
    must!(open_txn.insert(0, &"pending", &1u8));
    let clone = store.clone();
    must!(store.close().await);
    assert_matches!(
        clone.current().get::<_, u8>(0, &"k").await,
        Err(Error::Closed)
    );
    assert_matches!(
        store.snapshot().get::<_, u8>(0, &"k").await,
        Err(Error::Closed)
    );
    assert_matches!(
        store.snapshot_at(Version::ZERO).await.map(|_| ()),
        Err(Error::Closed)
    );
    assert_matches!(open_txn.get::<_, u8>(0, &"k").await, Err(Error::Closed));
    assert_matches!(open_txn.commit().await, Err(Error::Closed));
    let mut late = store.current();
    assert_matches!(late.insert(0, &"late", &1u8), Err(Error::Closed));
    assert_matches!(late.range::<String, u8>(0, ..).await, Err(Error::Closed));
    assert_matches!(store.merge().await, Err(Error::Closed));
    assert_matches!(store.flush().await, Err(Error::Closed));
    assert_matches!(store.version(), Err(Error::Closed));
    let engine = store.engine();
    let key = must!(kv_api::codec::encode_key(&"k"));
    assert_matches!(engine.get(0, &key, 1).await, Err(Error::Closed));
    let batch =
        WriteBatch::new(kv_api::Snapshot::unpinned(Version::ZERO)).write(0, key, Some(vec![2]));
    assert_matches!(engine.commit(batch).await, Err(Error::Closed));
    drop((clone, late));
    let store = env.reopen(store).await;
    let txn = store.current();
    assert_eq!(must!(txn.get::<_, u8>(0, &"k").await), Some(1));
    assert_eq!(must!(txn.get::<_, u8>(0, &"pending").await), None);
}

/// `close` is idempotent: closing a closed store (or a clone of it) returns `Ok(())` and
/// changes nothing, on every engine. Every other call, on the store, a clone, a transaction
/// opened before the close, one opened after, and the engine underneath, is
/// `Error::Closed`, before and after the second `close`. `close` releases the writer lock:
/// the storage opens again for writing while the closed store is still alive, with the data
/// intact.
pub async fn close_twice<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &"k", &1u8));
    let v1 = must!(txn.commit().await);
    let mut open_txn = store.current();
    must!(open_txn.insert(0, &"pending", &1u8));
    let clone = store.clone();
    must!(store.close().await);
    assert_matches!(store.close().await, Ok(()), "a second close");
    all_calls_closed(&store, &open_txn, v1).await;
    assert_matches!(
        clone.close().await,
        Ok(()),
        "closing a clone of a closed store"
    );
    assert_matches!(store.close().await, Ok(()), "a third close");
    all_calls_closed(&clone, &open_txn, v1).await;
    assert_matches!(open_txn.commit().await, Err(Error::Closed));

    // The writer lock went with the first close: a new writer opens beside the closed store.
    let reopened = env.open().await;
    let txn = reopened.current();
    assert_eq!(must!(txn.get::<_, u8>(0, &"k").await), Some(1));
    assert_eq!(must!(txn.get::<_, u8>(0, &"pending").await), None);
    drop(txn);
    must!(reopened.close().await);
    drop((store, clone));
}

/// Every call but `close` on a closed store is `Error::Closed`.
async fn all_calls_closed<E: Engine>(
    store: &Store<E>,
    open_txn: &kv_api::Transaction<E>,
    v1: Version,
) {
    // The store.
    assert_matches!(store.version(), Err(Error::Closed));
    assert_matches!(store.snapshot_at(v1).await.map(|_| ()), Err(Error::Closed));
    assert_matches!(store.merge().await, Err(Error::Closed));
    assert_matches!(store.flush().await, Err(Error::Closed));
    assert_matches!(store.stats().await.map(|_| ()), Err(Error::Closed));
    // A transaction begun after the close.
    let mut late = store.current();
    assert_matches!(late.get::<_, u8>(0, &"k").await, Err(Error::Closed));
    assert_matches!(late.insert(0, &"late", &1u8), Err(Error::Closed));
    assert_matches!(late.remove(0, &"k"), Err(Error::Closed));
    assert_matches!(late.range::<String, u8>(0, ..).await, Err(Error::Closed));
    assert_matches!(late.commit().await, Err(Error::Closed));
    let snap = store.snapshot();
    assert_matches!(snap.get::<_, u8>(0, &"k").await, Err(Error::Closed));
    // A transaction begun before it: every read goes to the closed engine.
    assert_matches!(open_txn.get::<_, u8>(0, &"k").await, Err(Error::Closed));
    assert_matches!(
        open_txn.get_unremoved::<_, u8>(0, &"k").await,
        Err(Error::Closed)
    );
    assert_matches!(open_txn.versions(0, &"k").await, Err(Error::Closed));
    assert_matches!(
        open_txn.get_version::<_, u8>(0, &"k", v1).await,
        Err(Error::Closed)
    );
    assert_matches!(
        open_txn.range::<String, u8>(0, ..).await,
        Err(Error::Closed)
    );
    assert_matches!(open_txn.keys::<String>(0).await, Err(Error::Closed));
    // The engine underneath.
    let engine = store.engine();
    let key = must!(kv_api::codec::encode_key(&"k"));
    assert_matches!(engine.snapshot().map(|_| ()), Err(Error::Closed));
    assert_matches!(engine.snapshot_at(v1).map(|_| ()), Err(Error::Closed));
    assert_matches!(engine.get(0, &key, v1.seq()).await, Err(Error::Closed));
    let mut seen = false;
    assert_matches!(
        engine
            .get_with(0, &key, v1.seq(), &mut |_| seen = true)
            .await,
        Err(Error::Closed)
    );
    assert!(!seen, "get_with on a closed engine called its visitor");
    assert_matches!(
        engine.get_unremoved(0, &key, v1.seq()).await,
        Err(Error::Closed)
    );
    assert_matches!(engine.versions(0, &key, v1.seq()).await, Err(Error::Closed));
    assert_matches!(engine.get_version(0, &key, v1).await, Err(Error::Closed));
    assert_matches!(
        engine
            .scan(0, &KeyRange::all(), v1.seq(), false, 10)
            .await
            .map(|_| ()),
        Err(Error::Closed)
    );
    let batch = WriteBatch::new(kv_api::Snapshot::unpinned(v1)).write(0, key, Some(vec![2]));
    assert_matches!(engine.commit(batch).await, Err(Error::Closed));
    assert_matches!(engine.merge().await, Err(Error::Closed));
    assert_matches!(engine.flush().await, Err(Error::Closed));
    assert_matches!(engine.stats().await.map(|_| ()), Err(Error::Closed));
}

/// The writer lock is held while the store, a clone, or a transaction of it is alive, and
/// released when the last of them drops.
pub async fn lock_held_by_live_transactions<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut txn = store.current();
    must!(txn.insert(0, &"k", &1u8));
    let snap = store.snapshot();
    drop(store);
    assert_matches!(
        env.try_open_with(Options::default()).await.map(|_| ()),
        Err(Error::Locked(_)),
        "a live transaction keeps its store open"
    );
    // It can still commit.
    must!(txn.commit().await);
    assert_matches!(
        env.try_open_with(Options::default()).await.map(|_| ()),
        Err(Error::Locked(_)),
        "a live snapshot keeps its store open"
    );
    drop(snap);
    let store = env.open().await;
    assert_eq!(must!(store.snapshot().get::<_, u8>(0, &"k").await), Some(1));
}
