//! etcd-specific behaviour: limits as typed errors, an unreachable cluster, a store of
//! another kind under the prefix, merge compacting the cluster, and authentication (on a
//! cluster of its own, so that enabling auth does not disturb the other tests).
//! `unreachable_cluster_is_a_typed_error` needs no cluster and runs in every `cargo test`;
//! the others are ignored there: `scripts/test-etcd.sh` runs them.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kv_api::{Engine, Error, Store, Version, WriteBatch};
use kv_etcd::{Etcd, EtcdConfig};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn unreachable_cluster_is_a_typed_error() {
    runtime().block_on(async {
        // Nothing listens on port 1; every call has a deadline.
        let config = EtcdConfig::new(["http://127.0.0.1:1"], "p/")
            .connect_timeout(Duration::from_millis(500))
            .request_timeout(Duration::from_millis(500));
        let started = Instant::now();
        let err = Store::<Etcd>::open(config).await.err();
        assert!(started.elapsed() < Duration::from_secs(10), "open hung");
        match err {
            Some(Error::Io { op, .. }) => assert!(op.contains("127.0.0.1:1"), "{op}"),
            other => panic!("expected Error::Io naming the endpoint, got {other:?}"),
        }
    });
}

#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn limits_are_typed_errors_before_sending() {
    runtime().block_on(async {
        let store = Store::<Etcd>::open(common::fresh("limits"))
            .await
            .expect("open");
        let engine = store.engine();
        // 128 writes + the head = 129 operations: over etcd's default --max-txn-ops.
        let mut batch = WriteBatch::new(engine.snapshot().expect("snapshot"));
        for i in 0..128u32 {
            batch = batch.write(0, i.to_be_bytes().to_vec(), Some(vec![1]));
        }
        match engine.commit(batch).await {
            Err(Error::TooLarge {
                what,
                size: 129,
                max: 128,
            }) => {
                assert!(what.contains("max-txn-ops"), "{what}")
            }
            other => panic!("expected TooLarge naming --max-txn-ops, got {other:?}"),
        }
        // 127 writes fit.
        let mut batch = WriteBatch::new(engine.snapshot().expect("snapshot"));
        for i in 0..127u32 {
            batch = batch.write(0, i.to_be_bytes().to_vec(), Some(vec![1]));
        }
        engine
            .commit(batch)
            .await
            .expect("127 writes fit in one Txn");
        // Two values of 1 MiB: over the 1.5 MiB request size.
        let batch = WriteBatch::new(engine.snapshot().expect("snapshot"))
            .write(0, b"a".to_vec(), Some(vec![0; 1 << 20]))
            .write(0, b"b".to_vec(), Some(vec![0; 1 << 20]));
        match engine.commit(batch).await {
            Err(Error::TooLarge { what, max, .. }) => {
                assert!(what.contains("max-request-bytes"), "{what}");
                assert_eq!(max, kv_etcd::DEFAULT_MAX_REQUEST_BYTES);
            }
            other => panic!("expected TooLarge naming --max-request-bytes, got {other:?}"),
        }
        // Nothing of the refused commits was written.
        assert_eq!(
            engine
                .get(0, b"a", engine.snapshot().expect("s").seq())
                .await
                .ok(),
            Some(None)
        );
        // One value of 1 MiB fits.
        let batch = WriteBatch::new(engine.snapshot().expect("snapshot")).write(
            0,
            b"a".to_vec(),
            Some(vec![7; 1 << 20]),
        );
        let v = engine.commit(batch).await.expect("1 MiB fits");
        let got = engine.get(0, b"a", v.seq()).await.expect("read");
        assert_eq!(got.map(|g| g.len()), Some(1 << 20));
    });
}

#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn foreign_keys_under_the_prefix_are_refused() {
    runtime().block_on(async {
        let config = common::fresh("foreign");
        let mut client = etcd_client::Client::connect(common::endpoints(), None)
            .await
            .expect("connect");
        let mut key = config.prefix().to_vec();
        key.extend_from_slice(b"someone-elses-key");
        client.put(key, "x", None).await.expect("put");
        match Store::<Etcd>::open(config.clone()).await {
            Err(Error::Foreign {
                engine: "etcd",
                found,
            }) => {
                assert!(found.contains("someone-elses-key"), "{found}")
            }
            other => panic!("expected Foreign, got {other:?}"),
        }
        // A metadata key that is not ours: Foreign too.
        let config = common::fresh("foreign-meta");
        let mut meta = config.prefix().to_vec();
        meta.push(b'm');
        client.put(meta, "{}", None).await.expect("put");
        assert!(matches!(
            Store::<Etcd>::open(config).await,
            Err(Error::Foreign { .. })
        ));
    });
}

#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn merge_compacts_the_cluster() {
    runtime().block_on(async {
        let config = common::fresh("compact").compact_on_merge(true);
        let store = Store::<Etcd>::open(config.clone()).await.expect("open");
        let mut versions = Vec::new();
        for i in 0..5u32 {
            let mut txn = store.current();
            txn.insert(0, &"k", i).expect("insert");
            versions.push(txn.commit().await.expect("commit"));
        }
        let last = store.version().expect("version");
        store.merge().await.expect("merge");
        // The cluster itself refuses reads below the horizon now.
        let mut client = etcd_client::Client::connect(common::endpoints(), None)
            .await
            .expect("connect");
        let old = i64::try_from(versions[0].seq()).expect("revision");
        let mut key = config.prefix().to_vec();
        key.extend_from_slice(b"d\x00");
        let below = client
            .get(key, Some(etcd_client::GetOptions::new().with_revision(old)))
            .await;
        assert!(
            below.is_err(),
            "etcd still serves revision {old}: {below:?}"
        );
        // Through the store: the merged-away version is VersionNotFound, the latest stays.
        let snap = store.snapshot();
        assert!(matches!(
            snap.get_version::<_, u32>(0, &"k", versions[0]).await,
            Err(Error::VersionNotFound { .. })
        ));
        assert!(matches!(
            store.snapshot_at(versions[1]).await,
            Err(Error::VersionNotFound { .. })
        ));
        assert_eq!(snap.get::<_, u32>(0, &"k").await.expect("get"), Some(4));
        assert_eq!(
            snap.versions(0, &"k").await.expect("versions"),
            vec![Version::new(last.seq(), 0)]
        );
        // Reopened: the horizon is read back.
        drop(snap);
        store.close().await.expect("close");
        let store = Store::<Etcd>::open(config).await.expect("reopen");
        assert!(store.engine().horizon() >= last.seq());
        assert!(matches!(
            store.snapshot_at(versions[0]).await,
            Err(Error::VersionNotFound { .. })
        ));
    });
}

/// A one-member cluster of this test's own with authentication on.
struct AuthCluster {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for AuthCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const AUTH_ENDPOINT: &str = "http://127.0.0.1:23890";

fn start_auth_cluster() -> AuthCluster {
    let dir = std::env::temp_dir().join(format!("kv-etcd-auth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = std::fs::File::create(std::env::temp_dir().join("kv-etcd-auth.log")).expect("log");
    let child = Command::new(std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into()))
        .args([
            "--name",
            "auth0",
            "--data-dir",
            dir.to_str().expect("utf-8 temp dir"),
            "--listen-client-urls",
            AUTH_ENDPOINT,
            "--advertise-client-urls",
            AUTH_ENDPOINT,
            "--listen-peer-urls",
            "http://127.0.0.1:23990",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:23990",
            "--initial-cluster",
            "auth0=http://127.0.0.1:23990",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start etcd (Debian: apt-get install etcd-server)");
    AuthCluster { child, dir }
}

macro_rules! smoke {
    ($($group:ident :: $case:ident),* $(,)?) => {
        $(
            kv_conformance::block_on(
                kv_conformance::cases::$group::$case::<AuthFamily, AuthPlace>(),
            );
        )*
    };
}

/// A fresh prefix on the authenticated cluster, as user `app`.
struct AuthPlace(EtcdConfig);

#[kv_conformance::kv_api::async_trait]
impl kv_conformance::Place for AuthPlace {
    type Location = EtcdConfig;
    const NAME: &'static str = "etcd-auth";

    fn new() -> Self {
        AuthPlace(
            EtcdConfig::new([AUTH_ENDPOINT], common::fresh_prefix("auth"))
                .user("app", "app-password")
                .compact_on_merge(false),
        )
    }

    async fn location(&self) -> kv_api::Result<EtcdConfig> {
        Ok(self.0.clone())
    }
}

struct AuthFamily;

impl kv_conformance::Runs<AuthPlace> for AuthFamily {
    type Engine = Etcd;
}

#[test]
#[ignore = "needs etcd installed: scripts/test-etcd.sh"]
fn authentication_smoke_and_wrong_password() {
    let _cluster = start_auth_cluster();
    runtime().block_on(async {
        // Up, then users, roles and auth on (as root, which etcd requires for auth enable).
        let started = Instant::now();
        let mut client = loop {
            let up = match etcd_client::Client::connect([AUTH_ENDPOINT], None).await {
                Ok(mut c) => match c.status().await {
                    Ok(_) => Ok(c),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match up {
                Ok(c) => break c,
                Err(_) if started.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("the auth cluster did not come up: {e}"),
            }
        };
        client
            .user_add("root", "root-password", None)
            .await
            .expect("root");
        client
            .user_grant_role("root", "root")
            .await
            .expect("root role");
        client
            .user_add("app", "app-password", None)
            .await
            .expect("app user");
        client.role_add("app").await.expect("app role");
        let perm = etcd_client::Permission::read_write("kvtest/").with_prefix();
        client
            .role_grant_permission("app", perm)
            .await
            .expect("grant");
        client
            .user_grant_role("app", "app")
            .await
            .expect("app's role");
        client.auth_enable().await.expect("auth enable");

        // Without credentials: a typed error.
        let anonymous = EtcdConfig::new([AUTH_ENDPOINT], common::fresh_prefix("anon"));
        match Store::<Etcd>::open(anonymous).await {
            Err(Error::Io { source, op }) => {
                assert_eq!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied,
                    "{op}: {source}"
                )
            }
            other => panic!("expected a permission error, got {other:?}"),
        }
        // A wrong password: a typed error naming the endpoint.
        let wrong = EtcdConfig::new([AUTH_ENDPOINT], common::fresh_prefix("wrong"))
            .user("app", "not-the-password");
        match Store::<Etcd>::open(wrong).await {
            Err(Error::Io { source, op }) => {
                assert_eq!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied,
                    "{op}: {source}"
                );
                assert!(op.contains("127.0.0.1:23890"), "{op}");
            }
            other => panic!("expected a permission error, got {other:?}"),
        }
        // Outside the role's prefix: refused.
        let outside = EtcdConfig::new([AUTH_ENDPOINT], "elsewhere/").user("app", "app-password");
        match Store::<Etcd>::open(outside).await {
            Err(Error::Io { source, .. }) => {
                assert_eq!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied,
                    "{source}"
                )
            }
            other => panic!("expected a permission error, got {other:?}"),
        }
    });
    // The suite's smoke cases, authenticated (each case builds its own runtime).
    smoke!(
        crud::insert_get_remove,
        crud::overwrite,
        conflicts::write_write,
        conflicts::prefix_phantom,
        versions::order_and_values,
        merge::latest_values_survive,
        scan::reverse_and_limit,
        snapshot::at_every_version,
        concurrency::counters_no_lost_update,
    );
}

#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn verify_clean_and_copy_into_a_local_store() {
    runtime().block_on(async {
        let store = Store::<Etcd>::open(common::fresh("copy"))
            .await
            .expect("open");
        for round in 0..4u32 {
            let mut txn = store.current();
            for k in 0..10u32 {
                if (k + round) % 3 == 0 {
                    txn.remove(0, &k).expect("remove");
                } else {
                    txn.insert(0, &k, round * 100 + k).expect("insert");
                }
            }
            txn.insert(1, &"round", round).expect("insert");
            txn.commit().await.expect("commit");
        }
        let report = store.verify().await.expect("verify");
        assert!(report.is_clean(), "{report:#?}");
        // Every version, each at its etcd revision and time, into a local Bitcask store.
        let local = Store::<kv_bitcask::Bitcask<kv_backends::MemoryStorage>>::open(
            kv_backends::MemoryStorage::new(),
        )
        .await
        .expect("local store");
        store
            .copy_into(&local, kv_api::ExportScope::AllVersions, &|_| {})
            .await
            .expect("copy");
        let at = store.version().expect("version").seq();
        let theirs = kv_conformance::cases::export::dump_versions(&store, at).await;
        let ours = kv_conformance::cases::export::dump_versions(&local, at).await;
        assert_eq!(theirs, ours);
        assert!(!theirs.is_empty());
    });
}

#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn snapshots_follow_another_clients_commits() {
    runtime().block_on(async {
        let config = common::fresh("follow");
        let a = Store::<Etcd>::open(config.clone()).await.expect("open a");
        let b = Store::<Etcd>::open(config).await.expect("open b");
        let mut txn = a.current();
        txn.insert(0, &"k", 1u32).expect("insert");
        let v = txn.commit().await.expect("commit");
        // b learns of a's commit through its watch on the head, without committing itself.
        let started = Instant::now();
        loop {
            let got: Option<u32> = b.snapshot().get(0, &"k").await.expect("get");
            if got == Some(1) {
                assert_eq!(b.version().expect("version"), v);
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "b never saw a's commit {v}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}
