//! What the cluster tests share: the endpoints of the test cluster and fresh prefixes.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use kv_etcd::EtcdConfig;

/// Why the cluster tests are ignored in a plain `cargo test`.
pub const NEEDS_CLUSTER: &str = "needs the etcd cluster: scripts/test-etcd.sh";

/// The test cluster's client endpoints: `KV_ETCD_ENDPOINTS` (comma-separated), or those of
/// `scripts/etcd-cluster.sh`.
pub fn endpoints() -> Vec<String> {
    match std::env::var("KV_ETCD_ENDPOINTS") {
        Ok(v) if !v.trim().is_empty() => v.split(',').map(|e| e.trim().to_owned()).collect(),
        _ => (0..3)
            .map(|n| format!("http://127.0.0.1:{}", 23790 + n))
            .collect(),
    }
}

/// A prefix no other test (of this run or an earlier one) uses.
pub fn fresh_prefix(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "kvtest/{what}/{}-{nanos}-{}/",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A config for a fresh store on the test cluster. `merge` does not compact the cluster
/// (compaction is cluster-wide, and the tests run side by side on one cluster); the test
/// `merge_compacts_the_cluster` checks compaction on its own.
pub fn fresh(what: &str) -> EtcdConfig {
    EtcdConfig::new(endpoints(), fresh_prefix(what))
        .compact_on_merge(false)
        .request_timeout(std::time::Duration::from_secs(10))
}
