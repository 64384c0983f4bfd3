//! Change feeds (issue #18): a watcher sees exactly the committed changes of its range, in
//! commit order, while tasks commit and merge runs; it resumes after a reopen and after
//! falling behind, with no gap and no duplicate.

use kv_api::{BoxFuture, Change, ChangeKind, Engine, KeyRange, Watch};

use super::prelude::*;
use crate::runtime::{join_all, yield_now};

const TASKS: u32 = 8;
const COMMITS_PER_TASK: u32 = 20;

/// (key, value or removal, sequence number) of one change, as committed or as delivered.
type Seen = (u32, Option<u32>, u64);

/// The next change, which must come: the feed must not end here.
async fn next_change<E: Engine>(feed: &mut Watch<E>) -> Change {
    match feed.next().await {
        Some(Ok(change)) => change,
        other => panic!("the feed should deliver a change, got {other:?}"),
    }
}

/// (key, value or removal, sequence number) of a change of slot 0 with `u32` keys and values.
fn decoded(change: &Change) -> Seen {
    assert_eq!(change.slot, 0, "a change of another slot: {change:?}");
    let key = must!(change.key_as::<u32>());
    let value = must!(change.value_as::<u32>());
    assert_eq!(
        change.version.is_removal(),
        matches!(change.kind, ChangeKind::Remove),
        "{change:?}"
    );
    (key, value, change.version.seq())
}

/// 8 tasks commit (inserts and removals, inside and outside the watched range, in slot 0 and
/// slot 1) while another merges: the watcher gets exactly the committed changes of its
/// range, each once, in commit order, with the values committed.
pub async fn sees_commits_in_order_while_tasks_commit_and_merge<
    E: EngineFamily,
    F: StorageFactory,
>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    // Keys 1000.. of slot 0: every task writes some, and some outside it.
    let range = must!(KeyRange::of(1000u32..));
    let mut feed = must!(store.watch_with_capacity(0, range, must!(store.version()), 1 << 20));
    let mut tasks: Vec<BoxFuture<'static, Vec<Seen>>> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            let fut: BoxFuture<'static, Vec<Seen>> = Box::pin(async move {
                let mut committed = Vec::new();
                for i in 0..COMMITS_PER_TASK {
                    let key = 1000 + t * 100 + i % 7;
                    let remove = i % 5 == 4;
                    let mut txn = store.current();
                    if remove {
                        must!(txn.remove(0, &key));
                    } else {
                        must!(txn.insert(0, &key, &i));
                    }
                    must!(txn.insert(0, &(t * 100 + i), &i)); // outside the range
                    must!(txn.insert(1, &key, &i)); // another slot
                    let v = must!(txn.commit().await);
                    committed.push((key, (!remove).then_some(i), v.seq()));
                    yield_now().await;
                }
                committed
            });
            fut
        })
        .collect();
    {
        let store = store.clone();
        tasks.push(Box::pin(async move {
            for _ in 0..5 {
                must!(store.merge().await);
                yield_now().await;
            }
            Vec::new()
        }));
    }
    let mut want: Vec<Seen> = join_all(tasks).await.concat();
    want.sort_by_key(|(_, _, seq)| *seq);
    let mut got = Vec::new();
    for _ in 0..want.len() {
        got.push(decoded(&next_change(&mut feed).await));
    }
    assert!(
        got.windows(2).all(|w| w[0].2 < w[1].2),
        "changes out of commit order or repeated: {got:?}"
    );
    assert_eq!(got, want, "the feed differs from what was committed");
    // Nothing more was delivered: one more commit comes next, and nothing before it.
    let mut txn = store.current();
    must!(txn.insert(0, &5000u32, &1u32));
    let v = must!(txn.commit().await);
    let last = decoded(&next_change(&mut feed).await);
    assert_eq!(
        last,
        (5000, Some(1), v.seq()),
        "an extra change was delivered"
    );
}

/// A watcher that stopped after some changes resumes after a reopen with `watch_from` its last
/// version: it replays the rest (removals too), then goes live, with no gap and no
/// duplicate. A version merged away is `VersionNotFound`.
pub async fn resumes_after_reopen<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let start = must!(store.version());
    let mut want = Vec::new();
    for i in 0..12u32 {
        let key = i % 4;
        let mut txn = store.current();
        if i % 3 == 2 {
            must!(txn.remove(0, &key));
        } else {
            must!(txn.insert(0, &key, &i));
        }
        let v = must!(txn.commit().await);
        want.push((key, (i % 3 != 2).then_some(i), v.seq()));
    }
    let mut feed = must!(store.watch_from(0, KeyRange::all(), start));
    let mut got = Vec::new();
    let mut last = start;
    for _ in 0..5 {
        let change = next_change(&mut feed).await;
        last = change.version;
        got.push(decoded(&change));
    }
    drop(feed);
    let store = env.reopen(store).await;
    let mut feed = must!(store.watch_from(0, KeyRange::all(), last));
    for _ in 5..want.len() {
        got.push(decoded(&next_change(&mut feed).await));
    }
    assert_eq!(got, want, "replay after reopen");
    // Live after the replay.
    let mut txn = store.current();
    must!(txn.insert(0, &9u32, &99u32));
    let v = must!(txn.commit().await);
    assert_eq!(
        decoded(&next_change(&mut feed).await),
        (9, Some(99), v.seq())
    );
    drop(feed);

    // After a merge (no watcher holds them), old versions are gone for feeds too.
    must!(store.merge().await);
    assert_matches!(
        store.watch_from(0, KeyRange::all(), start).err(),
        Some(Error::VersionNotFound { .. })
    );
    // The latest version is always a valid start.
    let now = must!(store.version());
    must!(store.watch_from(0, KeyRange::all(), now));
}

/// A watcher that does not read falls behind without blocking writers: it gets what its
/// buffer held, then `Lagged` naming the last commit it got whole; `watch_from` that version
/// delivers the rest, with no gap and no duplicate, then goes live.
pub async fn lagging_watcher_resumes<E: EngineFamily, F: StorageFactory>() {
    let env = Env::<E, F>::new();
    let store = env.open().await;
    let mut feed = must!(store.watch_with_capacity(0, KeyRange::all(), must!(store.version()), 4));
    let mut want = Vec::new();
    for i in 0..20u32 {
        let mut txn = store.current();
        must!(txn.insert(0, &i, &i));
        let v = must!(txn.commit().await);
        want.push((i, Some(i), v.seq()));
    }
    let mut got = Vec::new();
    let resume_from = loop {
        match feed.next().await {
            Some(Ok(change)) => got.push(decoded(&change)),
            Some(Err(Error::Lagged { resume_from })) => break resume_from,
            other => panic!("expected changes, then Lagged: got {other:?}"),
        }
    };
    assert!(feed.next().await.is_none(), "a lagged feed ends");
    assert_eq!(got.len(), 4, "the buffer held 4 changes: {got:?}");
    assert_eq!(
        resume_from.seq(),
        got[3].2,
        "Lagged names the last change delivered"
    );
    let mut feed = must!(store.watch_from(0, KeyRange::all(), resume_from));
    while got.len() < want.len() {
        got.push(decoded(&next_change(&mut feed).await));
    }
    assert_eq!(got, want, "resumed feed");
    let mut txn = store.current();
    must!(txn.insert(0, &100u32, &100u32));
    let v = must!(txn.commit().await);
    assert_eq!(
        decoded(&next_change(&mut feed).await),
        (100, Some(100), v.seq())
    );
}

/// Feeds see commits of every handle: clones, the byte-level engine; and a prefix range of a
/// typed slot sees only its keys.
pub async fn sees_every_handle_and_only_its_range<E: EngineFamily, F: StorageFactory>() {
    const USERS: kv_api::SlotDef<(String, u32), u32> = kv_api::SlotDef::new(3, "users");
    let env = Env::<E, F>::new();
    let store = env.open().await;
    must!(store.open_slot(&USERS).await);
    let mut feed = must!(store.watch(&USERS, must!(KeyRange::prefix_of(&("eu",)))));
    let clone = store.clone();
    must!(
        clone
            .transact(async |txn| {
                txn.slot_mut(&USERS)?.insert(&("us", 1), &1)?;
                txn.slot_mut(&USERS)?.insert(&("eu", 2), &2)
            })
            .await
    );
    let key = must!(kv_api::codec::encode_key(&("eu".to_string(), 3u32)));
    let batch = kv_api::WriteBatch::new(must!(store.engine().snapshot())).write(
        3,
        key,
        Some(must!(kv_api::codec::encode_value(&3u32))),
    );
    let engine_version = must!(store.engine().commit(batch).await);
    let first = next_change(&mut feed).await;
    assert_eq!(
        must!(first.key_as::<(String, u32)>()),
        ("eu".to_string(), 2)
    );
    let second = next_change(&mut feed).await;
    assert_eq!(
        must!(second.key_as::<(String, u32)>()),
        ("eu".to_string(), 3)
    );
    assert_eq!(second.version, engine_version);
    assert_eq!(must!(second.value_as::<u32>()), Some(3));
}
