//! Knob settings that change what the engine writes (the LSM's block codecs,
//! [`kv_api::Tuning::variants`]): data written under each reads back the same after reopens
//! and merges, and after the setting changes on an existing store.

use std::collections::BTreeMap;

use kv_api::{Engine, Tuning};

use super::prelude::*;

/// A JSON-like text value (compressible), or random bytes (not).
fn value(rng: &mut crate::Rng, i: u32, round: u32) -> Vec<u8> {
    if i.is_multiple_of(3) {
        (0..200).map(|_| rng.below(256) as u8).collect()
    } else {
        format!(
            "{{\"id\":{i},\"round\":{round},\"name\":\"user number {i}\",\"tags\":[\"alpha\",\
             \"beta\",\"gamma\"],\"active\":true,\"note\":\"{}\"}}",
            "lorem ipsum dolor sit amet ".repeat((i % 5) as usize)
        )
        .into_bytes()
    }
}

async fn check<T: Engine>(store: &kv_api::Store<T>, model: &BTreeMap<String, Vec<u8>>, what: &str) {
    let txn = store.snapshot();
    let keys: Vec<String> = (0..330).map(|i| format!("key-{i:04}")).collect();
    let got = must!(txn.get_many::<_, Vec<u8>>(0, &keys).await);
    for (k, v) in keys.iter().zip(got) {
        assert_eq!(v.as_ref(), model.get(k), "{what}: {k}");
        assert_eq!(
            must!(txn.get::<_, Vec<u8>>(0, k).await),
            v,
            "{what}: get {k}"
        );
    }
    let all: Vec<(String, Vec<u8>)> = must!(txn.range(0, ..).await);
    let want: Vec<(String, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(all, want, "{what}: scan");
}

/// Under each variant: compressible and random values, overwrites and removals, read back
/// before and after a reopen and a merge; then the store reopened under the next variant,
/// written, merged and read back (tables of both settings together).
pub async fn variants_round_trip<E: Runs<F>, F: Place>() {
    let variants = <E::Engine as Engine>::Tuning::variants();
    for (n, (name, tuning)) in variants.iter().enumerate() {
        let env = Env::<E, F>::new();
        let mut rng = crate::Rng::new(17 + n as u64);
        let mut model = BTreeMap::new();
        let store = env.open_tuned(Options::default(), tuning.clone()).await;
        for round in 0..3u32 {
            let mut txn = store.current();
            for i in (0..300u32).filter(|i| round == 0 || i.is_multiple_of(round + 3)) {
                let k = format!("key-{i:04}");
                if round == 2 && i.is_multiple_of(2) {
                    must!(txn.remove(0, &k));
                    model.remove(&k);
                } else {
                    let v = value(&mut rng, i, round);
                    must!(txn.insert(0, &k, &v));
                    model.insert(k, v);
                }
            }
            must!(txn.commit().await);
        }
        check(&store, &model, name).await;
        let store = env.reopen(store).await;
        check(&store, &model, name).await;
        must!(store.merge().await);
        check(&store, &model, name).await;

        let (next, next_tuning) = &variants[(n + 1) % variants.len()];
        let what = format!("{name}, then {next}");
        let options = store.engine().options().clone();
        drop(store);
        let store = env.open_tuned(options, next_tuning.clone()).await;
        check(&store, &model, &what).await;
        let mut txn = store.current();
        for i in (0..330u32).step_by(4) {
            let k = format!("key-{i:04}");
            let v = value(&mut rng, i, 9);
            must!(txn.insert(0, &k, &v));
            model.insert(k, v);
        }
        must!(txn.commit().await);
        must!(store.merge().await);
        check(&store, &model, &what).await;
        let store = env.reopen(store).await;
        check(&store, &model, &what).await;
    }
}
