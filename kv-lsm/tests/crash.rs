//! Crashes at every storage mutation of a workload that flushes, compacts and merges: the
//! reopened store holds exactly the acknowledged commits (plus, possibly, the one in flight).
//! Half the values are past the blob threshold, so the crash points include every blob file
//! write of flushes and of merges (which rewrite the blob files).

#![allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than the MSRV

mod common;

use std::collections::BTreeMap;

use common::contents;
use kv_api::{Engine, Options, Storage, WriteBatch};
use kv_backends::MemoryStorage;
use kv_conformance::{CrashMode, FaultyStorage, Ops};
use kv_lsm::{Lsm, LsmOptions};

type Faulty = Lsm<FaultyStorage<MemoryStorage>>;
type State = BTreeMap<Vec<u8>, Vec<u8>>;
type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

const COMMITS: u32 = 100;

fn tuning() -> LsmOptions {
    LsmOptions::default()
        .memtable_size(2 << 10)
        .block_size(256)
        .background(false)
        .blob_threshold(Some(100))
}

fn writes(i: u32) -> Writes {
    [(i * 3) % 40, (i * 7 + 1) % 40]
        .iter()
        .map(|k| {
            let len = if i % 2 == 0 { 150 } else { 50 };
            let value = (i % 5 != 0).then(|| vec![i as u8; len]);
            (format!("key-{k:02}").into_bytes(), value)
        })
        .collect()
}

fn apply(state: &mut State, writes: &Writes) {
    for (k, v) in writes {
        match v {
            Some(v) => state.insert(k.clone(), v.clone()),
            None => state.remove(k),
        };
    }
}

/// Runs the workload until it fails; returns the acknowledged state and the commit in flight.
async fn workload(storage: FaultyStorage<MemoryStorage>) -> (State, Option<Writes>) {
    let mut state = State::new();
    let Ok(e) = Faulty::open(storage, Options::default(), tuning()).await else {
        return (state, None);
    };
    for i in 0..COMMITS {
        let w = writes(i);
        let Ok(snap) = e.snapshot() else { break };
        let mut batch = WriteBatch::new(snap);
        for (k, v) in &w {
            batch = batch.write(0, k.clone(), v.clone());
        }
        match e.commit(batch).await {
            Ok(_) => apply(&mut state, &w),
            Err(_) => return (state, Some(w)),
        }
        if i % 40 == 39 && e.merge().await.is_err() {
            break;
        }
    }
    (state, None)
}

/// True if `got` is the acknowledged state, or that state with the commit in flight applied.
fn acked_or_pending(got: &State, acked: &State, pending: Option<&Writes>) -> bool {
    if got == acked {
        return true;
    }
    let mut with_pending = acked.clone();
    if let Some(w) = pending {
        apply(&mut with_pending, w);
    }
    *got == with_pending
}

#[tokio::test]
async fn crash_at_every_mutation_during_flushes_compactions_and_merges() {
    let clean = FaultyStorage::wrap(MemoryStorage::new())
        .await
        .expect("wrap");
    let (full, _) = workload(clean.clone()).await;
    let e = Faulty::open(clean.restart(), Options::default(), tuning())
        .await
        .expect("reopen");
    let stats = e.stats().await.expect("stats");
    assert!(
        e.tables_per_level().len() > 2 && stats.files > 3,
        "the workload builds levels: {stats:?}"
    );
    drop(e);
    let names = clean.list().await.expect("list");
    assert!(
        names.iter().any(|n| n.ends_with(".blob")),
        "the workload writes blob files: {names:?}"
    );
    let mutations = clean.count(Ops::MUTATIONS).await;
    assert!(mutations > 200, "{mutations}");
    let mut runs = 0;
    for n in 0..mutations {
        for mode in [
            CrashMode::LoseUnsynced,
            CrashMode::KeepUnsynced,
            CrashMode::Random(n),
        ] {
            let faulty = FaultyStorage::wrap(MemoryStorage::new())
                .await
                .expect("wrap");
            faulty.crash_after(n, Ops::MUTATIONS, mode).await;
            let (acked, pending) = workload(faulty.clone()).await;
            if !faulty.disarm().await {
                assert_eq!(acked, full);
                continue;
            }
            runs += 1;
            let restarted = faulty.restart();
            let e = Faulty::open(restarted.clone(), Options::default(), tuning())
                .await
                .unwrap_or_else(|err| panic!("reopen after crash at {n} ({mode:?}): {err}"));
            let got = contents(&e).await;
            assert!(
                acked_or_pending(&got, &acked, pending.as_ref()),
                "crash at mutation {n} ({mode:?}): state differs"
            );
            // What recovery showed survives a power loss right after it.
            drop(e);
            restarted
                .crash(CrashMode::LoseUnsynced)
                .await
                .expect("crash");
            let restarted = restarted.restart();
            let e = Faulty::open(restarted.clone(), Options::default(), tuning())
                .await
                .expect("reopen");
            assert_eq!(
                contents(&e).await,
                got,
                "crash at {n} ({mode:?}): recovery was not durable"
            );
            // Recovery is stable, and the store takes new commits.
            e.close().await.expect("close");
            drop(e);
            let e = Faulty::open(restarted.restart(), Options::default(), tuning())
                .await
                .expect("second reopen");
            assert_eq!(
                contents(&e).await,
                got,
                "crash at {n} ({mode:?}): second reopen differs"
            );
            let batch = WriteBatch::new(e.snapshot().expect("snapshot")).write(
                0,
                b"after".to_vec(),
                Some(b"1".to_vec()),
            );
            e.commit(batch).await.expect("commit after recovery");
        }
    }
    println!("{runs} crash runs over {mutations} mutations");
}

#[tokio::test]
async fn io_error_at_every_mutation() {
    let clean = FaultyStorage::wrap(MemoryStorage::new())
        .await
        .expect("wrap");
    workload(clean.clone()).await;
    let mutations = clean.count(Ops::MUTATIONS).await;
    for n in 0..mutations {
        let faulty = FaultyStorage::wrap(MemoryStorage::new())
            .await
            .expect("wrap");
        faulty.fail_after(n, Ops::MUTATIONS).await;
        let (acked, pending) = workload(faulty.clone()).await;
        faulty.disarm().await;
        // No crash: the failed store is dropped and the same storage reopened.
        let e = Faulty::open(faulty.restart(), Options::default(), tuning())
            .await
            .unwrap_or_else(|err| panic!("reopen after a failure at {n}: {err}"));
        let got = contents(&e).await;
        assert!(
            acked_or_pending(&got, &acked, pending.as_ref()),
            "failure at mutation {n}: state differs"
        );
    }
}
