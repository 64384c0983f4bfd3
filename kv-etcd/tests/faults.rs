//! Faults of a real cluster, in place of the suite's `FaultyStorage` crash cases: a member
//! SIGKILLed while 8 tasks commit, the leader SIGKILLed, two OS processes incrementing the
//! same counters, and a client process SIGKILLed between building and committing.
//!
//! They kill members of the test cluster of `scripts/etcd-cluster.sh` (and restart them), so
//! they run one at a time (a lock) and only through `scripts/test-etcd.sh` (ignored in a
//! plain `cargo test`). The child processes are this test binary run again with one test
//! selected and an environment variable naming the prefix.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kv_api::{Error, Retry, Store};
use kv_etcd::{Etcd, EtcdConfig};

/// One fault test at a time: they kill members of the shared cluster.
static SERIAL: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn cluster_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/etcd-cluster.sh")
}

fn cluster(args: &[&str]) {
    let status = Command::new(cluster_script())
        .args(args)
        .status()
        .expect("run scripts/etcd-cluster.sh");
    assert!(status.success(), "etcd-cluster.sh {args:?} failed");
}

/// The member index (0..3) of the current leader.
async fn leader() -> usize {
    let endpoints = common::endpoints();
    for _ in 0..100 {
        let mut ids = Vec::new();
        let mut leader = None;
        for endpoint in &endpoints {
            let Ok(mut c) = etcd_client::Client::connect([endpoint], None).await else {
                ids.push(None);
                continue;
            };
            match c.status().await {
                Ok(s) => {
                    ids.push(s.header().map(|h| h.member_id()));
                    if s.leader() != 0 {
                        leader = Some(s.leader());
                    }
                }
                Err(_) => ids.push(None),
            }
        }
        if let Some(l) = leader
            && let Some(i) = ids.iter().position(|id| *id == Some(l))
        {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader found");
}

/// Waits until member `n` serves, from its own copy (a serializable read), a revision of at
/// least `revision`: it caught up after its restart.
async fn caught_up(n: usize, key: &[u8], revision: i64) {
    let endpoint = &common::endpoints()[n];
    let started = Instant::now();
    loop {
        if let Ok(mut c) = etcd_client::Client::connect([endpoint], None).await {
            let opts = etcd_client::GetOptions::new().with_serializable();
            if let Ok(r) = c.get(key, Some(opts)).await
                && r.header().is_some_and(|h| h.revision() >= revision)
            {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "member {n} did not catch up to revision {revision}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// 8 tasks commit keys (task, i) = i for a while; `fault` runs in the middle (kills a
/// member). Afterwards every commit that returned `Ok` is there with its value, and the
/// killed member, restarted, catches up.
fn commits_survive(fault: impl AsyncFnOnce() -> usize) {
    let _serial = SERIAL.lock();
    runtime().block_on(async {
        let config = common::fresh("faults").request_timeout(Duration::from_secs(15));
        let store = Store::<Etcd>::open(config.clone()).await.expect("open");
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for task in 0..8u32 {
            let store = store.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut failures = 0u32;
                let mut first_failure = None;
                let mut i = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let mut txn = store.current();
                    txn.insert(0, &(task, i), i).expect("insert");
                    match txn.commit().await {
                        Ok(v) => acked.push((i, v)),
                        Err(e @ Error::Io { .. }) => {
                            failures += 1;
                            first_failure.get_or_insert(e.to_string());
                        }
                        Err(e) => panic!("task {task}: unexpected {e:?}"),
                    }
                    i += 1;
                }
                (acked, failures, first_failure)
            }));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let killed = fault().await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        cluster(&["restart", &killed.to_string()]);
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        let mut acked = BTreeMap::new();
        let mut failures = 0;
        let mut messages = std::collections::BTreeSet::new();
        for (task, t) in tasks.into_iter().enumerate() {
            let (a, f, m) = t.await.expect("task");
            failures += f;
            messages.extend(m);
            acked.insert(task as u32, a);
        }
        // A fresh store (a fresh connection) reads everything back.
        let reader = Store::<Etcd>::open(config.clone()).await.expect("reopen");
        let snap = reader.snapshot();
        let mut total = 0;
        let mut newest = 0;
        for (task, list) in &acked {
            assert!(list.len() > 10, "task {task} committed only {} times", list.len());
            for (i, v) in list {
                let got: Option<u32> = snap.get(0, &(*task, *i)).await.expect("read back");
                assert_eq!(got, Some(*i), "acknowledged commit {v} of task {task} lost");
                newest = newest.max(v.seq());
                total += 1;
            }
        }
        println!(
            "member {killed} killed: {total} commits acknowledged, all present; {failures} failed with Io during the fault {messages:?}"
        );
        let mut head = config.prefix().to_vec();
        head.push(b'h');
        caught_up(killed, &head, i64::try_from(newest).expect("revision")).await;
    });
}

#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn member_killed_while_committing() {
    commits_survive(async || {
        // A follower: the leader has its own test.
        let l = leader().await;
        let victim = (l + 1) % 3;
        cluster(&["kill", &victim.to_string()]);
        victim
    });
}

#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn leader_killed_while_committing() {
    commits_survive(async || {
        let l = leader().await;
        cluster(&["kill", &l.to_string()]);
        l
    });
}

const COUNTER_PREFIX: &str = "KV_ETCD_FAULT_PREFIX";
const COUNTERS: u32 = 4;

/// Increments counter `i % COUNTERS` `n` times, retrying conflicts; returns how many
/// increments were acknowledged.
async fn increment(config: EtcdConfig, n: u32) -> u32 {
    let store = Store::<Etcd>::open(config).await.expect("open");
    let mut acked = 0;
    for i in 0..n {
        let key = i % COUNTERS;
        let done = store
            .transact_with(Retry::attempts(1000), async |txn| {
                let v: u64 = txn.get(0, &key).await?.unwrap_or(0);
                txn.insert(0, &key, v + 1)
            })
            .await;
        match done {
            Ok(_) => acked += 1,
            Err(e) => panic!("increment {i}: {e:?}"),
        }
    }
    acked
}

/// The child of `two_processes_increment_counters`: with the prefix in the environment it
/// increments that store's counters and prints how many increments were acknowledged. Run
/// on its own, it checks the same on a prefix of its own in one process.
#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn counter_child() {
    let _serial = SERIAL.lock();
    runtime().block_on(async {
        match std::env::var(COUNTER_PREFIX) {
            Ok(prefix) => {
                let config = EtcdConfig::new(common::endpoints(), prefix).compact_on_merge(false);
                let acked = increment(config, 100).await;
                println!("ACKED {acked}");
            }
            Err(_) => {
                let config = common::fresh("counter-alone");
                let acked = increment(config.clone(), 40).await;
                let sum = total(config).await;
                assert_eq!(sum, u64::from(acked));
            }
        }
    });
}

async fn total(config: EtcdConfig) -> u64 {
    let store = Store::<Etcd>::open(config).await.expect("open");
    let snap = store.snapshot();
    let mut sum = 0;
    for key in 0..COUNTERS {
        sum += snap.get::<_, u64>(0, &key).await.expect("get").unwrap_or(0);
    }
    sum
}

fn child(test: &str, prefix: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(COUNTER_PREFIX, prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child test")
}

#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn two_processes_increment_counters() {
    let _serial = SERIAL.lock();
    let config = common::fresh("two-processes");
    let prefix = String::from_utf8(config.prefix().to_vec()).expect("utf-8 prefix");
    let children = [
        child("counter_child", &prefix),
        child("counter_child", &prefix),
    ];
    let mut acked = 0u64;
    for c in children {
        let out = c.wait_with_output().expect("child output");
        assert!(out.status.success(), "child failed: {:?}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        let n: u64 = text
            .lines()
            .find_map(|l| l.split("ACKED ").nth(1))
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no ACKED line in {text}"));
        acked += n;
    }
    let sum = runtime().block_on(total(config));
    println!("two processes: {acked} increments acknowledged, counters sum to {sum}");
    assert_eq!(acked, 200);
    assert_eq!(sum, acked, "lost updates");
}

const KEYS_PER_TXN: u32 = 20;

/// The child of `client_killed_between_build_and_commit`: commits transactions that write
/// the same number to 20 keys, printing `BUILT n` before and `COMMITTED n` after each
/// commit. Run on its own it commits 10 and checks every key holds 10.
#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn txn_child() {
    let _serial = SERIAL.lock();
    runtime().block_on(async {
        let (config, rounds) = match std::env::var(COUNTER_PREFIX) {
            Ok(prefix) => (
                EtcdConfig::new(common::endpoints(), prefix).compact_on_merge(false),
                u32::MAX,
            ),
            Err(_) => (common::fresh("txn-alone"), 10),
        };
        let store = Store::<Etcd>::open(config).await.expect("open");
        for n in 1..=rounds {
            let mut txn = store.current();
            for k in 0..KEYS_PER_TXN {
                txn.insert(0, &k, n).expect("insert");
            }
            println!("BUILT {n}");
            tokio::time::sleep(Duration::from_millis(3)).await;
            txn.commit().await.expect("commit");
            println!("COMMITTED {n}");
        }
        let values = all_keys(&store).await;
        assert!(values.iter().all(|v| *v == Some(10)), "{values:?}");
    });
}

async fn all_keys(store: &Store<Etcd>) -> Vec<Option<u32>> {
    let snap = store.snapshot();
    let mut out = Vec::new();
    for k in 0..KEYS_PER_TXN {
        out.push(snap.get(0, &k).await.expect("get"));
    }
    out
}

#[test]
#[ignore = "needs the etcd cluster: scripts/test-etcd.sh"]
fn client_killed_between_build_and_commit() {
    let _serial = SERIAL.lock();
    for round in 0..3u32 {
        let config = common::fresh("killed-client");
        let prefix = String::from_utf8(config.prefix().to_vec()).expect("utf-8 prefix");
        let mut c = child("txn_child", &prefix);
        let stdout = c.stdout.take().expect("piped stdout");
        let mut last_built = 0;
        let mut last_committed = 0;
        // Kill right after a `BUILT` line: the transaction is built, its commit not sent
        // (or in flight). Rounds kill after 5, 17 and 29 builds.
        let kill_after = 5 + 12 * round;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("child stdout");
            if let Some(n) = line.split("BUILT ").nth(1) {
                last_built = n.parse().expect("number");
                if last_built >= kill_after {
                    c.kill().expect("SIGKILL the child");
                    break;
                }
            } else if let Some(n) = line.split("COMMITTED ").nth(1) {
                last_committed = n.parse().expect("number");
            }
        }
        let _ = c.wait();
        let values = runtime().block_on(async {
            let store = Store::<Etcd>::open(config).await.expect("open");
            all_keys(&store).await
        });
        let first = values[0].expect("the committed transactions are there");
        assert!(
            values.iter().all(|v| *v == Some(first)),
            "a transaction was applied in part: {values:?}"
        );
        assert!(
            first >= last_committed && first <= last_built,
            "value {first}, committed {last_committed}, built {last_built}"
        );
        println!(
            "client killed after building {last_built} (acknowledged {last_committed}): all {KEYS_PER_TXN} keys hold {first}"
        );
    }
}
