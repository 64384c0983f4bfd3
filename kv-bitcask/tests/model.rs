//! Random histories of multi-key commits, merges (with and without an open snapshot), rolls
//! and reopens, checked against a model of every version of every key.

mod common;

use std::collections::BTreeMap;

use common::*;
use kv_api::{Options, Result, Store, Transaction, Version};
use kv_backends::MemoryStorage;
use kv_conformance::Rng;

/// Every version of every key: seq -> value (`None`: removal).
type Model = BTreeMap<String, BTreeMap<u64, Option<u64>>>;

async fn check_view(txn: &Transaction<Mem>, model: &Model, at: u64) -> Result<()> {
    let mut live = Vec::new();
    for (key, versions) in model {
        let seen: Vec<(u64, bool)> = txn
            .versions(0, key)
            .await?
            .iter()
            .map(|v| (v.seq(), v.is_removal()))
            .collect();
        let expected: Vec<(u64, bool)> = versions
            .range(..=at)
            .map(|(s, v)| (*s, v.is_none()))
            .collect();
        assert_eq!(seen, expected, "versions of {key} at {at}");
        let value = versions.range(..=at).next_back().and_then(|(_, v)| *v);
        assert_eq!(txn.get::<_, u64>(0, key).await?, value, "{key} at {at}");
        if let Some(v) = value {
            live.push((key.clone(), v));
        }
        for (seq, v) in versions.range(..=at) {
            let got = txn
                .get_version::<_, u64>(0, key, Version::new(*seq, 0))
                .await?;
            assert_eq!(got, *v, "{key} version {seq}");
        }
    }
    assert_eq!(txn.range::<String, u64>(0, ..).await?, live);
    Ok(())
}

/// What a merge leaves when the oldest open view is at `h`: every version above it, and the
/// newest at or below it if it is a value.
fn merged(model: &mut Model, h: u64) {
    for versions in model.values_mut() {
        let newest_old = versions.range(..=h).next_back().map(|(s, v)| (*s, *v));
        versions.retain(|s, _| *s > h);
        if let Some((s, Some(v))) = newest_old {
            versions.insert(s, Some(v));
        }
    }
    model.retain(|_, v| !v.is_empty());
}

#[tokio::test]
async fn random_histories_match_the_model() -> Result<()> {
    for seed in 1..=12u64 {
        let mut rng = Rng::new(seed);
        let storage = MemoryStorage::new();
        let options = || Options::default().segment_size(300 + 100 * (seed % 4));
        let mut store: Store<Mem> = open_with(&storage, options()).await?;
        let mut model = Model::new();
        let mut pinned: Option<Transaction<Mem>> = None;
        for step in 0..120 {
            match rng.below(20) {
                0 => {
                    // Merge; an open snapshot keeps what it sees.
                    let h = pinned
                        .as_ref()
                        .map_or(store.version()?.seq(), |p| p.version().seq());
                    store.merge().await?;
                    merged(&mut model, h);
                }
                1 => {
                    drop(pinned.take());
                    drop(store);
                    store = open_with(&storage, options()).await?;
                }
                2 => {
                    pinned = match pinned {
                        Some(_) => None,
                        None => Some(store.snapshot()),
                    };
                }
                _ => {
                    let mut txn = store.current();
                    let mut writes = Vec::new();
                    for _ in 0..=rng.below(3) {
                        let key = format!("k{}", rng.below(12));
                        let value = (rng.below(4) > 0).then(|| rng.below(1000));
                        match value {
                            Some(v) => txn.insert(0, &key, v)?,
                            None => txn.remove(0, &key)?,
                        }
                        writes.push((key, value));
                    }
                    let seq = txn.commit().await?.seq();
                    for (key, value) in writes {
                        model.entry(key).or_default().insert(seq, value);
                    }
                }
            }
            if step % 10 == 9 {
                let now = store.snapshot();
                check_view(&now, &model, now.version().seq()).await?;
                if let Some(p) = &pinned {
                    check_view(p, &model, p.version().seq()).await?;
                }
            }
        }
        drop(pinned);
        let at = store.version()?.seq();
        drop(store);
        let store = open_with(&storage, options()).await?;
        check_view(&store.snapshot(), &model, at).await?;
    }
    Ok(())
}
