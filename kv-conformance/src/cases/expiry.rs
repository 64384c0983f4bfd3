//! Expiry (`Transaction::insert_with_ttl`) under a test clock: reads from the expiry time
//! on, stable views, `snapshot_at`, version metadata, overwrites and removals, merge.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kv_api::{Clock, Engine, Store};

use super::prelude::*;

const T0: u64 = 1_700_000_000_000;

/// A store whose clock the case moves, starting at `T0`.
async fn open<E: Runs<F>, F: Place>(env: &Env<E, F>) -> (StoreOn<E, F>, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(T0));
    let clock = {
        let now = now.clone();
        Clock::new(move || now.load(Ordering::SeqCst))
    };
    (env.open_with(Options::default().clock(clock)).await, now)
}

async fn live<E: Engine>(store: &Store<E>) -> Vec<String> {
    must!(store.snapshot().keys::<String>(0).await)
}

/// A value written with a time to live reads as absent from its expiry time on, in every
/// read (get, get_many, range, keys), and its expiry is in its version; a view keeps the
/// time it started at; `snapshot_at` judges at the version's commit time; also after reopen.
pub async fn reads_absent_from_expiry_time<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let (store, now) = open(&env).await;
    let mut txn = store.current();
    must!(txn.insert_with_ttl(0, &"short", &1u32, Duration::from_secs(10)));
    must!(txn.insert_with_ttl(0, &"long", &2u32, Duration::from_secs(100)));
    must!(txn.insert(0, &"forever", &3u32));
    let v1 = must!(txn.commit().await);

    now.store(T0 + 9_999, Ordering::SeqCst);
    assert_eq!(live(&store).await, ["forever", "long", "short"]);
    now.store(T0 + 10_000, Ordering::SeqCst);
    // A commit after the expiry, so that `snapshot_at` has a later version to compare.
    let mut txn = store.current();
    must!(txn.insert(0, &"later", &4u32));
    let v2 = must!(txn.commit().await);

    env.before_and_after_reopen(store, async |store| {
        let snap = store.snapshot();
        assert_eq!(must!(snap.get::<_, u32>(0, &"short").await), None);
        assert_eq!(must!(snap.get::<_, u32>(0, &"long").await), Some(2));
        let many: Vec<Option<u32>> = must!(snap.get_many(0, &["short", "long", "forever"]).await);
        assert_eq!(many, [None, Some(2), Some(3)]);
        assert_eq!(live(store).await, ["forever", "later", "long"]);
        let rows: Vec<(String, u32)> = must!(snap.range(0, "a".to_string()..).await);
        assert_eq!(rows.len(), 3, "{rows:?}");
        let versions = must!(snap.versions(0, &"short").await);
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0], v1);
        assert!(!versions[0].is_removal());
        let expires = versions[0].expires_ms();
        assert!(
            expires.is_some_and(|e| (T0 + 10_000..=T0 + 10_000 + 5).contains(&e)),
            "{expires:?}"
        );
        let forever = must!(snap.versions(0, &"forever").await);
        assert_eq!(forever[0].expires_ms(), None);
        // A named version still reads.
        assert_eq!(
            must!(snap.get_version::<_, u32>(0, &"short", v1).await),
            Some(1)
        );
        // What was live at v1's commit time, and at v2's.
        let at_v1 = must!(store.snapshot_at(v1).await);
        assert_eq!(must!(at_v1.get::<_, u32>(0, &"short").await), Some(1));
        let at_v2 = must!(store.snapshot_at(v2).await);
        assert_eq!(must!(at_v2.get::<_, u32>(0, &"short").await), None);
    })
    .await;
}

/// A view keeps the time it started at: a value expiring while a transaction runs stays
/// readable in it, and vanishes for the next one.
pub async fn stable_view<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let (store, now) = open(&env).await;
    let mut txn = store.current();
    must!(txn.insert_with_ttl(0, &"k", &1u32, Duration::from_millis(500)));
    must!(txn.commit().await);
    let running = store.current();
    now.store(T0 + 1_000, Ordering::SeqCst);
    assert_eq!(must!(running.get::<_, u32>(0, &"k").await), Some(1));
    assert_eq!(must!(running.keys::<String>(0).await), ["k"]);
    assert_eq!(must!(store.current().get::<_, u32>(0, &"k").await), None);
    // Within one transaction, its own write with a time to live already over.
    let mut txn = store.current();
    must!(txn.insert_with_ttl(0, &"gone", &1u32, Duration::ZERO));
    assert_eq!(must!(txn.get::<_, u32>(0, &"gone").await), None);
}

/// Writing the key again without a time to live makes it permanent, in a later commit or
/// the same one; a longer time to live replaces a shorter one; a removed key re-inserted
/// keeps no old expiry (also after a range removal).
pub async fn overwrite_and_remove<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let (store, now) = open(&env).await;
    let ttl = Duration::from_secs(1);
    let mut txn = store.current();
    for k in [
        "later plain",
        "same txn plain",
        "longer",
        "removed",
        "range removed",
    ] {
        must!(txn.insert_with_ttl(0, &k, &1u32, ttl));
    }
    must!(txn.insert(0, &"same txn plain", &2u32));
    must!(txn.commit().await);
    let mut txn = store.current();
    must!(txn.insert(0, &"later plain", &2u32));
    must!(txn.insert_with_ttl(0, &"longer", &2u32, Duration::from_secs(60)));
    must!(txn.remove(0, &"removed"));
    must!(txn.remove_prefix(0, &"range").await);
    must!(txn.commit().await);
    let mut txn = store.current();
    must!(txn.insert(0, &"removed", &2u32));
    must!(txn.insert(0, &"range removed", &2u32));
    must!(txn.commit().await);
    now.store(T0 + 2_000, Ordering::SeqCst);
    env.before_and_after_reopen(store, async |store| {
        let snap = store.snapshot();
        for k in [
            "later plain",
            "same txn plain",
            "longer",
            "removed",
            "range removed",
        ] {
            assert_eq!(must!(snap.get::<_, u32>(0, &k).await), Some(2), "{k}");
        }
        let versions = must!(snap.versions(0, &"later plain").await);
        assert!(versions[0].expires_ms().is_some() && versions[1].expires_ms().is_none());
        assert_eq!(
            must!(snap.versions(0, &"same txn plain").await)[0].expires_ms(),
            None
        );
    })
    .await;
}

/// `merge` reclaims expired values: before it they are still stored (`get_unremoved` reads
/// them), after it they are gone with their versions, also after reopen, while a snapshot
/// open across the merge keeps what it saw; live keys survive.
pub async fn merge_reclaims<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let (store, now) = open(&env).await;
    let big = "x".repeat(4096);
    let mut txn = store.current();
    for i in 0u32..50 {
        must!(txn.insert_with_ttl(0, &format!("tmp{i:02}"), &big, Duration::from_secs(5)));
    }
    must!(txn.insert(0, &"keep", &big));
    must!(txn.commit().await);
    let old_view = store.snapshot();
    now.store(T0 + 5_000, Ordering::SeqCst);
    assert_eq!(live(&store).await, ["keep"]);
    assert_eq!(
        must!(
            store
                .snapshot()
                .get_unremoved::<_, String>(0, &"tmp00")
                .await
        )
        .as_deref(),
        Some(big.as_str()),
        "expired, not reclaimed yet"
    );
    let before = must!(store.engine().stats().await).live_keys;
    must!(store.merge().await);
    assert_eq!(
        must!(old_view.get::<_, String>(0, &"tmp07").await).as_deref(),
        Some(big.as_str()),
        "a snapshot open across the merge keeps what it saw"
    );
    drop(old_view);
    must!(store.merge().await);
    let after = must!(store.engine().stats().await);
    assert!(
        after.live_keys < before,
        "live keys {before} -> {}",
        after.live_keys
    );
    assert!(
        after.bytes_on_storage < 50 * 4096,
        "expired values still stored: {} bytes",
        after.bytes_on_storage
    );
    env.before_and_after_reopen(store, async |store| {
        let snap = store.snapshot();
        assert_eq!(live(store).await, ["keep"]);
        assert_eq!(
            must!(snap.get_unremoved::<_, String>(0, &"tmp00").await),
            None
        );
        assert!(must!(snap.versions(0, &"tmp00").await).is_empty());
        assert_eq!(
            must!(snap.get::<_, String>(0, &"keep").await).as_deref(),
            Some(big.as_str())
        );
    })
    .await;
}

/// Expiry travels with a copy (`copy_into`, the export stream's route): the copy reads the
/// value as absent from the same expiry time on, at once and after a reopen.
pub async fn survives_copy<E: Runs<F>, F: Place>() {
    let env = Env::<E, F>::new();
    let (source, now) = open(&env).await;
    let mut txn = source.current();
    must!(txn.insert_with_ttl(0, &"ttl", &1u32, Duration::from_secs(10)));
    must!(txn.insert(0, &"plain", &2u32));
    must!(txn.commit().await);
    let env2 = Env::<E, F>::new();
    let clock = {
        let now = now.clone();
        Clock::new(move || now.load(Ordering::SeqCst))
    };
    let target = env2.open_with(Options::default().clock(clock)).await;
    must!(
        source
            .copy_into(&target, kv_api::export::ExportScope::AllVersions, &|_| {})
            .await
    );
    assert_eq!(live(&target).await, ["plain", "ttl"]);
    now.store(T0 + 10_000, Ordering::SeqCst);
    env2.before_and_after_reopen(target, async |target| {
        assert_eq!(live(target).await, ["plain"]);
        let versions = must!(target.snapshot().versions(0, &"ttl").await);
        assert!(versions[0].expires_ms().is_some(), "{versions:?}");
    })
    .await;
}
