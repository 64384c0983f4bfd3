//! The etcd engine's overhead over plain etcd-client: commits/s (1 and 64 concurrent
//! committers) and point reads/s (1 and 64 concurrent readers), each next to a plain
//! etcd-client program doing the same puts and gets of the same keys and value sizes on the
//! same cluster. Prints a markdown table (`docs/benchmarks.md`).
//!
//! ```text
//! scripts/etcd-cluster.sh start
//! KV_ETCD_ENDPOINTS=$(scripts/etcd-cluster.sh endpoints) cargo run --release -p kv-etcd --example etcd_bench
//! ```
//!
//! `KV_ETCD_BENCH_OPS` scales the operation counts (default 2000 commits per run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_api::{Options, Store};
use kv_etcd::{Etcd, EtcdConfig};

const VALUE_LEN: usize = 100;

fn prefix(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench/{what}/{nanos}/")
}

fn key(i: u64) -> String {
    format!("key{i:08}")
}

/// Runs `ops` operations split over `tasks` tasks; returns operations per second.
async fn rate<F, Fut>(ops: u64, tasks: u64, op: F) -> f64
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let op = op.clone();
        handles.push(tokio::spawn(async move {
            let mut i = t;
            while i < ops {
                op(i).await;
                i += tasks;
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    ops as f64 / start.elapsed().as_secs_f64().max(f64::MIN_POSITIVE)
}

#[tokio::main]
async fn main() {
    let endpoints: Vec<String> = match std::env::var("KV_ETCD_ENDPOINTS") {
        Ok(v) if !v.trim().is_empty() => v.split(',').map(str::to_owned).collect(),
        _ => {
            eprintln!(
                "set KV_ETCD_ENDPOINTS (scripts/etcd-cluster.sh start; scripts/etcd-cluster.sh endpoints)"
            );
            std::process::exit(2);
        }
    };
    let ops: u64 = std::env::var("KV_ETCD_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let value = vec![7u8; VALUE_LEN];

    let client = etcd_client::Client::connect(&endpoints, None)
        .await
        .expect("connect");
    let config = EtcdConfig::new(&endpoints, prefix("ours"))
        .compact_on_merge(false)
        .request_timeout(Duration::from_secs(30));
    let store = Store::<Etcd>::open_with(config, Options::default())
        .await
        .expect("open");

    println!(
        "| workload | plain etcd-client (ops/s) | kv-etcd `Store` (ops/s) | overhead (plain / ours) |"
    );
    println!("|---|---|---|---|");
    let row = |name: &str, plain: f64, ours: f64| {
        println!("| {name} | {plain:.0} | {ours:.0} | {:.2}x |", plain / ours);
    };

    for committers in [1u64, 64] {
        let n = if committers == 1 { ops / 4 } else { ops };
        let plain_prefix = prefix(&format!("plain{committers}"));
        let c = client.clone();
        let v = value.clone();
        let p = plain_prefix.clone();
        let plain = rate(n, committers, move |i| {
            let mut kv = c.kv_client();
            let (k, v) = (format!("{p}{}", key(i)), v.clone());
            async move {
                kv.put(k, v, None).await.expect("put");
            }
        })
        .await;
        // What etcd itself charges for the shape of our commit: a Txn with a compare and two
        // puts (the key and the store's head key), written with plain etcd-client.
        let c = client.clone();
        let v = value.clone();
        let p = prefix(&format!("txn{committers}"));
        let plain_txn = rate(n, committers, move |i| {
            let mut kv = c.kv_client();
            let k = format!("{p}{}", key(i));
            let head = format!("{p}head");
            let txn = etcd_client::Txn::new()
                .when([etcd_client::Compare::mod_revision(
                    k.clone(),
                    etcd_client::CompareOp::Less,
                    i64::MAX,
                )])
                .and_then([
                    etcd_client::TxnOp::put(k, v.clone(), None),
                    etcd_client::TxnOp::put(head, vec![0u8; 8], None),
                ]);
            async move {
                assert!(kv.txn(txn).await.expect("txn").succeeded());
            }
        })
        .await;
        let s = store.clone();
        let v = value.clone();
        let base = committers * 1_000_000;
        let ours = rate(n, committers, move |i| {
            let s = s.clone();
            let v = v.clone();
            async move {
                let mut txn = s.current();
                txn.insert(0, &key(base + i), serde_bytes::ByteBuf::from(v))
                    .expect("insert");
                txn.commit().await.expect("commit");
            }
        })
        .await;
        row(
            &format!("commits, {committers} committer(s), one {VALUE_LEN}-byte value each"),
            plain,
            ours,
        );
        row(
            "(the same, plain etcd-client Txn of our commit's shape: compare + 2 puts)",
            plain_txn,
            ours,
        );
        if committers == 64 {
            for readers in [1u64, 64] {
                let n = if readers == 1 { ops / 2 } else { ops * 2 };
                let c = client.clone();
                let p = plain_prefix.clone();
                let plain = rate(n, readers, move |i| {
                    let mut kv = c.kv_client();
                    let k = format!("{p}{}", key((i * 7919) % ops));
                    async move {
                        let r = kv.get(k, None).await.expect("get");
                        assert_eq!(r.kvs().len(), 1);
                    }
                })
                .await;
                let s = store.clone();
                let ours = rate(n, readers, move |i| {
                    let snap = s.snapshot();
                    let k = key(base + (i * 7919) % ops);
                    async move {
                        let v: Option<serde_bytes::ByteBuf> = snap.get(0, &k).await.expect("get");
                        assert!(v.is_some());
                    }
                })
                .await;
                row(&format!("point reads, {readers} reader(s)"), plain, ours);
            }
        }
    }
}
