//! Large values (issue #17): values on both sides of an engine's large-value threshold read
//! back the same through every read (point reads, batches, scans, key listings, versions,
//! snapshots, export), across flushes, compactions, reopens and merges, also from a snapshot
//! held across a merge. The LSM stores values from a threshold on in blob files apart from
//! their keys (256 bytes under `Tuning::small()`, 4 KiB by default: the sizes straddle both,
//! whatever the few bytes of a value's encoding); on Bitcask they are ordinary values.

use kv_api::{Engine, ExportScope, Store, Tuning};

use super::prelude::*;
use crate::model::{Model, check_store};

/// Value sizes: both sides of 256 and of 4 KiB (a value's encoding adds a few bytes), and
/// far above.
const SIZES: [usize; 16] = [
    0, 1, 200, 252, 253, 254, 255, 256, 257, 4090, 4093, 4094, 4095, 4096, 65_536, 300_000,
];
const KEYS: u16 = 2 * SIZES.len() as u16;

/// A value of key `k` in round `round`: at least `size` bytes, different in each round.
fn value(round: u32, k: u16) -> String {
    let size = SIZES[k as usize % SIZES.len()];
    let mut v = format!("{round}:{k}:");
    let mut x = (u64::from(round) << 16 | u64::from(k)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while v.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(char::from(b'a' + (x % 26) as u8));
    }
    v
}

/// Writes `rounds` rounds overwriting every key (every fifth key removed in round 2), from
/// round `from` on; one commit per round.
async fn write<E: Engine>(
    store: &Store<E>,
    model: &mut Model<u16, String>,
    from: u32,
    rounds: u32,
) {
    for round in from..from + rounds {
        let mut txn = store.current();
        let mut writes = Vec::new();
        for k in 0..KEYS {
            let v = (round != 2 || k % 5 != 0).then(|| value(round, k));
            match &v {
                Some(v) => must!(txn.insert(0, &k, v)),
                None => must!(txn.remove(0, &k)),
            }
            writes.push(((0u8, k), v));
        }
        let v = must!(txn.commit().await);
        model.commit(v.seq(), writes);
    }
}

/// Every read agrees with the model: `check_store` (gets, versions, each version's value,
/// scans, snapshots), plus `get_many`, key listings, `get_unremoved` and export.
async fn check<E: Engine>(store: &Store<E>, model: &Model<u16, String>, what: &str) {
    let universe: Vec<(u8, u16)> = (0..KEYS + 1).map(|k| (0, k)).collect();
    if let Err(e) = check_store(store, model, &universe, true).await {
        panic!("{what}: {e}");
    }
    let txn = store.snapshot();
    let keys: Vec<u16> = (0..KEYS + 1).collect();
    let many: Vec<Option<String>> = must!(txn.get_many(0, &keys).await);
    let want: Vec<Option<String>> = keys.iter().map(|k| model.get(0, k).cloned()).collect();
    assert!(many == want, "{what}: get_many differs from the model");
    let listed: Vec<u16> = must!(txn.keys(0).await);
    let live: Vec<u16> = keys
        .iter()
        .copied()
        .filter(|k| model.get(0, k).is_some())
        .collect();
    assert_eq!(listed, live, "{what}: keys");
    for k in (0..KEYS).filter(|k| k % 5 == 0) {
        let got: Option<String> = must!(txn.get_unremoved(0, &k).await);
        let newest = model
            .versions(0, &k)
            .iter()
            .rev()
            .find_map(|(_, v)| v.clone());
        assert!(got == newest, "{what}: get_unremoved({k})");
    }
}

/// An export of every version, imported into a new store of the same engine, holds the
/// model (every value resolved on the way out, placed by the target's own rules on the way in).
async fn check_export<E: Runs<F>, F: Place>(
    store: &StoreOn<E, F>,
    model: &Model<u16, String>,
    what: &str,
) {
    let mut stream = Vec::new();
    must!(
        store
            .export(&mut stream, ExportScope::AllVersions, &|_| {})
            .await
    );
    let env = Env::<E, F>::new();
    let target = env
        .open_tuned(Options::default(), <E::Engine as Engine>::Tuning::small())
        .await;
    must!(target.import(stream.as_slice(), &|_| {}).await);
    let universe: Vec<(u8, u16)> = (0..KEYS + 1).map(|k| (0, k)).collect();
    if let Err(e) = check_store(&target, model, &universe, false).await {
        panic!("{what}: imported export: {e}");
    }
}

/// Under the small tuning (blob files flushed and compacted after a few KiB) and the
/// default one: values on both sides of the threshold, read back after each commit round,
/// after a reopen, through a merge with a snapshot held across it (which keeps reading its
/// values and versions), after the merge (old versions gone) and after another reopen.
pub async fn round_trip<E: Runs<F>, F: Place>() {
    let tunings = [
        ("small", <E::Engine as Engine>::Tuning::small()),
        ("default", Default::default()),
    ];
    for (name, tuning) in tunings {
        let env = Env::<E, F>::new();
        let store = env.open_tuned(Options::default(), tuning).await;
        let mut model = Model::new();
        write(&store, &mut model, 0, 3).await;
        check(&store, &model, &format!("{name}: written")).await;
        let store = env.reopen(store).await;
        check(&store, &model, &format!("{name}: reopened")).await;
        check_export::<E, F>(&store, &model, name).await;

        // A snapshot before the merge, then more writes, then the merge.
        let pinned = store.snapshot();
        let pinned_at = pinned.version().seq();
        let rows: Vec<(u16, String)> = must!(pinned.range(0, ..).await);
        let versions = must!(pinned.versions(0, &1u16).await);
        write(&store, &mut model, 3, 2).await;
        must!(store.merge().await);
        model.merge(pinned_at);
        let again: Vec<(u16, String)> = must!(pinned.range(0, ..).await);
        assert!(
            again == rows,
            "{name}: a snapshot held across merge changed"
        );
        for v in must!(pinned.versions(0, &1u16).await) {
            assert!(
                versions.contains(&v),
                "{name}: new version {v} in the snapshot"
            );
            let got: Option<String> = must!(pinned.get_version(0, &1u16, v).await);
            assert!(
                got.is_some(),
                "{name}: version {v} of the snapshot unreadable"
            );
        }
        check(&store, &model, &format!("{name}: merged under a snapshot")).await;
        drop(pinned);

        // Nothing pins old versions now: a merge keeps only the latest.
        must!(store.merge().await);
        model.merge(model.last());
        check(&store, &model, &format!("{name}: merged")).await;
        let old = store.snapshot_at(Version::new(pinned_at, 0)).await;
        assert_matches!(
            old.map(|_| ()),
            Err(Error::VersionNotFound { .. }),
            "{name}"
        );
        let store = env.reopen(store).await;
        check(&store, &model, &format!("{name}: merged and reopened")).await;
        let report = must!(store.verify().await);
        assert!(report.is_clean(), "{name}: verify: {report:?}");
        write(&store, &mut model, 5, 1).await;
        let store = env.reopen(store).await;
        check(&store, &model, &format!("{name}: written after merge")).await;
    }
}
