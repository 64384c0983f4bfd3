//! Removing a whole key prefix: `remove_prefix` in one transaction against the same keys
//! removed one by one (`remove` of each key, also in one transaction), on the LSM over files,
//! then reads of the removed and the kept keys, and a merge. Keys are `(prefix, u64)` tuples
//! with 100-byte values; the store also holds a tenth as many keys under another prefix,
//! which must survive.
//!
//! `cargo bench --bench range_removal` (scale by `KV_BENCH_SCALE`: `tiny` 2,000 removed keys,
//! `default` 100,000, `full` 1,000,000; `-- --test` runs `tiny` unless the scale is set).
//! Prints one line per measurement. Not a criterion suite: each run needs a freshly filled
//! store of up to a million keys, so every number is one timed run.

use std::time::{Duration, Instant};

use kv_db::backends::FileStorage;
use kv_db::{Durability, Options, Store};
use kv_lsm::Lsm;

type LsmStore<S> = Store<Lsm<S>>;
use serde_bytes::ByteBuf;

const SLOT: u8 = 0;
const BATCH: u64 = 10_000;

fn keys_for_scale() -> u64 {
    let smoke = std::env::args().any(|a| a == "--test");
    match std::env::var("KV_BENCH_SCALE").as_deref() {
        Ok("tiny") => 2_000,
        Ok("full") => 1_000_000,
        Ok("default") => 100_000,
        Err(_) | Ok("") if smoke => 2_000,
        Err(_) | Ok("") => 100_000,
        Ok(other) => {
            eprintln!("KV_BENCH_SCALE={other}: expected tiny, default or full");
            std::process::exit(2)
        }
    }
}

/// A store holding `n` keys under "doomed" and `n / 10` under "kept".
async fn filled(dir: &std::path::Path, n: u64) -> LsmStore<FileStorage> {
    let options = Options::default().durability(Durability::Buffered);
    let store = LsmStore::open_with(FileStorage::open(dir).await.expect("storage"), options)
        .await
        .expect("open");
    let value = ByteBuf::from(vec![7u8; 100]);
    for (prefix, count) in [("doomed", n), ("kept", n / 10)] {
        let mut i = 0;
        while i < count {
            let mut txn = store.current();
            for k in i..(i + BATCH).min(count) {
                txn.insert(SLOT, &(prefix, k), &value).expect("insert");
            }
            txn.commit().await.expect("commit");
            i += BATCH;
        }
    }
    store.flush().await.expect("flush");
    store
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

async fn check_and_merge(store: &LsmStore<FileStorage>, n: u64, how: &str) {
    let snap = store.snapshot();
    let start = Instant::now();
    let gone: Option<ByteBuf> = snap.get(SLOT, &("doomed", n / 2)).await.expect("get");
    let kept: Option<ByteBuf> = snap.get(SLOT, &("kept", n / 20)).await.expect("get");
    println!("{how}: point reads after: {:?}", start.elapsed());
    assert!(gone.is_none() && kept.is_some());
    let start = Instant::now();
    let doomed: Vec<((String, u64), ByteBuf)> = snap
        .prefix(SLOT, &("doomed",))
        .limit(10)
        .await
        .expect("scan");
    println!(
        "{how}: scan of the removed prefix (first 10): {}",
        ms(start.elapsed())
    );
    assert!(doomed.is_empty());
    drop(snap);
    let start = Instant::now();
    store.merge().await.expect("merge");
    println!("{how}: merge: {}", ms(start.elapsed()));
    let left: Vec<(String, u64)> = store.snapshot().keys(SLOT).await.expect("keys");
    assert_eq!(left.len() as u64, n / 10, "{how}: keys left after merge");
}

fn main() {
    let n = keys_for_scale();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!(
            "range_removal: LSM on files, {n} keys removed of {}",
            n + n / 10
        );
        let root = std::env::temp_dir();

        let dir = tempfile::tempdir_in(&root).expect("temp dir");
        let store = filled(dir.path(), n).await;
        let start = Instant::now();
        let mut txn = store.current();
        txn.remove_prefix(SLOT, &("doomed",))
            .await
            .expect("remove_prefix");
        let listed = start.elapsed();
        txn.commit().await.expect("commit");
        let total = start.elapsed();
        println!(
            "remove_prefix: {} (listing {}, commit {})",
            ms(total),
            ms(listed),
            ms(total - listed)
        );
        check_and_merge(&store, n, "remove_prefix").await;
        store.close().await.expect("close");

        let dir = tempfile::tempdir_in(&root).expect("temp dir");
        let store = filled(dir.path(), n).await;
        let start = Instant::now();
        let mut txn = store.current();
        for k in 0..n {
            txn.remove(SLOT, &("doomed", k)).expect("remove");
        }
        let listed = start.elapsed();
        txn.commit().await.expect("commit");
        let total = start.elapsed();
        println!(
            "single removals: {} (remove calls {}, commit {})",
            ms(total),
            ms(listed),
            ms(total - listed)
        );
        check_and_merge(&store, n, "single removals").await;
        store.close().await.expect("close");
    });
}
