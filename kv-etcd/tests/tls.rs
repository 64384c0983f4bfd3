//! TLS to the cluster (feature `tls`): a one-member etcd of this test's own serving clients
//! over `https` with a certificate of a throwaway CA (made with the `openssl` command). The
//! suite's smoke cases run through it; a client that does not trust the CA gets a typed
//! error, never a panic or a hang. Ignored in a plain `cargo test`: `scripts/test-etcd.sh`
//! runs it.
#![cfg(all(not(target_arch = "wasm32"), feature = "tls"))]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kv_api::{Error, Store};
use kv_etcd::{Etcd, EtcdConfig};

const TLS_ENDPOINT: &str = "https://127.0.0.1:23891";

/// The CA the test cluster's certificate is signed with (PEM), for the places below.
static CA: OnceLock<String> = OnceLock::new();

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA `name`.crt / `name`.key in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN={name}"),
    );
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt,
            "-days", "2", "-subj", &subj,
        ],
    );
}

/// The cluster's own etcd process and files; killed and removed on drop.
struct TlsCluster {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes the certificates (a CA, a server certificate for 127.0.0.1 signed by it, and an
/// unrelated CA) and starts etcd serving clients over TLS.
fn start_tls_cluster() -> TlsCluster {
    let dir = std::env::temp_dir().join(format!("kv-etcd-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    make_ca(&dir, "ca");
    make_ca(&dir, "other-ca");
    std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("san.cnf");
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ],
    );
    let data = dir.join("data");
    let log = std::fs::File::create(dir.join("etcd.log")).expect("log");
    let child = Command::new(std::env::var("ETCD_BIN").unwrap_or_else(|_| "etcd".into()))
        .args(["--name", "tls0", "--data-dir"])
        .arg(&data)
        .args([
            "--listen-client-urls",
            TLS_ENDPOINT,
            "--advertise-client-urls",
            TLS_ENDPOINT,
            "--cert-file",
        ])
        .arg(dir.join("server.crt"))
        .arg("--key-file")
        .arg(dir.join("server.key"))
        .args([
            "--listen-peer-urls",
            "http://127.0.0.1:23991",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:23991",
            "--initial-cluster",
            "tls0=http://127.0.0.1:23991",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start etcd (Debian: apt-get install etcd-server)");
    TlsCluster { child, dir }
}

/// TLS options trusting the CA in `pem`.
fn trusting(pem: &str) -> kv_etcd::TlsOptions {
    kv_etcd::TlsOptions::new().ca_certificate(kv_etcd::Certificate::from_pem(pem))
}

/// A fresh prefix on the TLS cluster, trusting its CA.
struct TlsPlace(EtcdConfig);

#[kv_conformance::kv_api::async_trait]
impl kv_conformance::Place for TlsPlace {
    type Location = EtcdConfig;
    const NAME: &'static str = "etcd-tls";

    fn new() -> Self {
        let ca = CA.get().expect("the CA is made before the cases run");
        TlsPlace(
            EtcdConfig::new([TLS_ENDPOINT], common::fresh_prefix("tls"))
                .tls(trusting(ca))
                .compact_on_merge(false),
        )
    }

    async fn location(&self) -> kv_api::Result<EtcdConfig> {
        Ok(self.0.clone())
    }
}

struct TlsFamily;

impl kv_conformance::Runs<TlsPlace> for TlsFamily {
    type Engine = Etcd;
}

#[test]
#[ignore = "needs etcd and openssl installed: scripts/test-etcd.sh"]
fn tls_smoke_and_untrusted_ca() {
    let cluster = start_tls_cluster();
    let ca = std::fs::read_to_string(cluster.dir.join("ca.crt")).expect("ca.crt");
    let other = std::fs::read_to_string(cluster.dir.join("other-ca.crt")).expect("other-ca.crt");
    let _ = CA.set(ca.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        // Up: a store opens over TLS (retried while etcd starts).
        let started = Instant::now();
        let store = loop {
            let config = EtcdConfig::new([TLS_ENDPOINT], common::fresh_prefix("tls-up"))
                .tls(trusting(&ca))
                .connect_timeout(Duration::from_secs(2));
            match Store::<Etcd>::open(config).await {
                Ok(store) => break store,
                Err(_) if started.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("the TLS cluster did not come up: {e}"),
            }
        };
        store
            .transact(async |txn| txn.insert(0, &"over", "tls"))
            .await
            .expect("a commit over TLS");
        let read: Option<String> = store.snapshot().get(0, &"over").await.expect("a read");
        assert_eq!(read.as_deref(), Some("tls"));
        store.close().await.expect("close");

        // A client that trusts another CA: a typed error naming the endpoint, in time.
        let untrusting = EtcdConfig::new([TLS_ENDPOINT], common::fresh_prefix("tls-other"))
            .tls(trusting(&other))
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(5));
        let t = Instant::now();
        match Store::<Etcd>::open(untrusting).await {
            Err(Error::Io { op, .. }) => assert!(op.contains("127.0.0.1:23891"), "{op}"),
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());

        // Plain http to a TLS endpoint: a typed error too.
        let plain = EtcdConfig::new(["http://127.0.0.1:23891"], common::fresh_prefix("plain"))
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(5));
        match Store::<Etcd>::open(plain).await {
            Err(Error::Io { .. }) => {}
            other => panic!("expected an I/O error, got {other:?}"),
        }
    });
    drop(runtime);
    // The suite's smoke cases over TLS (each case builds its own runtime).
    kv_conformance::block_on(kv_conformance::cases::crud::insert_get_remove::<
        TlsFamily,
        TlsPlace,
    >());
    kv_conformance::block_on(kv_conformance::cases::crud::overwrite::<TlsFamily, TlsPlace>());
    kv_conformance::block_on(kv_conformance::cases::conflicts::write_write::<
        TlsFamily,
        TlsPlace,
    >());
    kv_conformance::block_on(kv_conformance::cases::versions::order_and_values::<
        TlsFamily,
        TlsPlace,
    >());
    kv_conformance::block_on(kv_conformance::cases::scan::reverse_and_limit::<
        TlsFamily,
        TlsPlace,
    >());
    kv_conformance::block_on(
        kv_conformance::cases::concurrency::counters_no_lost_update::<TlsFamily, TlsPlace>(),
    );
    drop(cluster);
}
