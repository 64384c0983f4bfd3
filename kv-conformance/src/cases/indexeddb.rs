//! IndexedDB only (wasm32, feature `indexeddb`): what a page that goes away leaves behind.
//! Not part of [`crate::suite!`] (on other backends a new handle also sees unsynced data);
//! the browser tests call it once per engine.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::Poll;

use kv_api::Durability;
use kv_backends::IndexedDbStorage;

use super::prelude::*;
use crate::IndexedDbFactory;
use crate::model::Model;
use crate::script::{self, ScriptModel, Step};

type IdbStore<E> = StoreOf<E, IndexedDbStorage>;

/// Polls `fut` once: `Some` if it finished, `None` if it is waiting (on IndexedDB).
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Option<F::Output> {
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// The writes of commit `k`: key `k` of slot 0, and a counter in slot 1.
fn writes(k: u16, what: &str) -> Step {
    Step::Commit(vec![
        (0, k, Some(format!("{what} {k}"))),
        (1, 0, Some(format!("count {k}"))),
    ])
}

/// A transaction holding the writes of `step`, to be committed with `durability`.
async fn prepare<E: EngineFamily>(
    store: &IdbStore<E>,
    step: &Step,
    durability: Durability,
) -> kv_api::Transaction<E::Engine<IndexedDbStorage>> {
    let mut txn = store.current();
    txn.set_durability(durability);
    if let Step::Commit(w) = step {
        for (slot, key, value) in w {
            match value {
                Some(v) => must!(txn.insert(*slot, key, v)),
                None => must!(txn.remove(*slot, key)),
            }
        }
    }
    txn
}

/// Commits `keys` with `durability`, applying each to `model`.
async fn commit_all<E: EngineFamily>(
    store: &IdbStore<E>,
    model: &mut ScriptModel,
    keys: std::ops::Range<u16>,
    durability: Durability,
) {
    for k in keys {
        let step = writes(k, &format!("{durability:?}"));
        let v = must!(prepare::<E>(store, &step, durability).await.commit().await);
        script::apply(model, &step, Some(v));
    }
}

/// Checks `store` against the candidates (first match wins) and returns the one it matched.
async fn check<E: EngineFamily>(
    store: &IdbStore<E>,
    candidates: &[ScriptModel],
    when: &str,
) -> ScriptModel {
    let universe: Vec<(u8, u16)> = (0..24).map(|k| (0, k)).chain([(1, 0)]).collect();
    match script::check_either(store, candidates, &universe, true).await {
        Ok(i) => candidates[i].clone(),
        Err(e) => panic!("{when}: {e}"),
    }
}

/// A page commits some transactions durably (`Durability::Sync`), then more with
/// [`Durability::Buffered`] (readable at once, never synced), and goes away with a
/// transaction half written and a snapshot open, without `flush` or `close`. A new connection
/// to the database (a reloaded page, through the factory) shows exactly the synced
/// transactions, each whole, at every version. Then twice more with the page going away in
/// the middle of a sync (a `Sync` commit, then a `flush`, cut off after their first poll):
/// the sync's one IndexedDB transaction makes every commit before it durable or none. The
/// store accepts commits after each.
pub async fn page_gone_keeps_synced<E: EngineFamily>() {
    let env = Env::<E, IndexedDbFactory>::new();
    let options = Options::default();

    let store = env.open_with(options.clone()).await;
    let mut live: ScriptModel = Model::new();
    commit_all::<E>(&store, &mut live, 0..4, Durability::Sync).await;
    let synced = live.clone();
    commit_all::<E>(&store, &mut live, 4..8, Durability::Buffered).await;
    check::<E>(&store, &[live], "buffered commits, live").await;
    let half_written = prepare::<E>(&store, &writes(8, "never"), Durability::Sync).await;
    let snapshot = store.snapshot();
    drop((half_written, snapshot, store));

    let store = env.open_with(options.clone()).await;
    let mut live = check::<E>(&store, &[synced], "after the page went away").await;

    // A `Sync` commit cut off while its sync (covering the buffered commits) is in flight.
    commit_all::<E>(&store, &mut live, 9..11, Durability::Sync).await;
    let synced = live.clone();
    commit_all::<E>(&store, &mut live, 11..14, Durability::Buffered).await;
    let last = writes(14, "cut off");
    let txn = prepare::<E>(&store, &last, Durability::Sync).await;
    {
        let commit = pin!(txn.commit());
        let done = poll_once(commit).await.map(|r| must!(r));
        script::apply(&mut live, &last, done);
    }
    drop(store);
    let store = env.open_with(options.clone()).await;
    let mut live = check::<E>(&store, &[live, synced], "after a Sync commit was cut off").await;

    // A `flush` cut off.
    commit_all::<E>(&store, &mut live, 15..17, Durability::Sync).await;
    let synced = live.clone();
    commit_all::<E>(&store, &mut live, 17..20, Durability::Buffered).await;
    {
        let flush = pin!(store.flush());
        if let Some(result) = poll_once(flush).await {
            must!(result);
        }
    }
    drop(store);
    let store = env.open_with(options).await;
    let mut model = check::<E>(&store, &[live, synced], "after a flush was cut off").await;

    commit_all::<E>(&store, &mut model, 20..24, Durability::Sync).await;
    must!(store.close().await);
    drop(store);
    let store = env.open().await;
    check::<E>(&store, &[model], "final reopen").await;
}
