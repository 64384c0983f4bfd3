//! Version history and time travel: an audit log of account balances.
//!
//! Every commit is a version with a sequence number and a commit time, and the store keeps
//! every version of every key (removals too) until `merge`. So the history of a key is
//! `versions`, its value at one version is `get_version`, and the whole store as it was at a
//! version (or at a wall-clock time, through the version list) is `snapshot_at`. The history
//! survives a reopen; `merge` is what drops it.
//!
//! The clock is injected (`Options::clock`), so that the commit times are the example's days.
//!
//! Run it with `cargo run --example audit_log`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_db::backends::FileStorage;
use kv_db::{Clock, Error, KvStore, Options, SlotDef, Version};

/// Balances in cents, by account.
const BALANCES: SlotDef<String, i64> = SlotDef::new(1, "balances");

/// Milliseconds in a day: the commit times are day numbers times this.
const DAY: u64 = 86_400_000;

/// Moves `cents` from one account to the other in one transaction: one version of each.
async fn transfer(
    store: &KvStore<FileStorage>,
    from: &str,
    to: &str,
    cents: i64,
) -> kv_db::Result<Version> {
    let mut txn = store.current();
    let mut balances = txn.slot_mut(&BALANCES)?;
    let a = balances.get(from).await?.unwrap_or(0);
    let b = balances.get(to).await?.unwrap_or(0);
    balances.insert(from, &(a - cents))?;
    balances.insert(to, &(b + cents))?;
    txn.commit().await
}

/// The latest version committed at or before `time_ms`, among `versions` (oldest first).
fn as_of(versions: &[Version], time_ms: u64) -> Option<Version> {
    versions
        .iter()
        .rev()
        .find(|v| v.time_ms() <= time_ms)
        .copied()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> kv_db::Result<()> {
    let dir = tempfile::tempdir()?;
    let now = Arc::new(AtomicU64::new(DAY));
    let clock = {
        let now = now.clone();
        Clock::new(move || now.load(Ordering::Relaxed))
    };
    let options = Options::default().clock(clock);
    let store = KvStore::open_with(FileStorage::open(dir.path()).await?, options.clone()).await?;

    // Day 1: open two accounts. Day 2 and 3: transfers. Day 4: close Bob's account.
    let mut txn = store.current();
    txn.slot_mut(&BALANCES)?.insert("alice", &10_000)?;
    txn.slot_mut(&BALANCES)?.insert("bob", &5_000)?;
    let opened = txn.commit().await?;
    now.store(2 * DAY, Ordering::Relaxed);
    transfer(&store, "alice", "bob", 3_000).await?;
    now.store(3 * DAY, Ordering::Relaxed);
    let day3 = transfer(&store, "bob", "alice", 500).await?;
    now.store(4 * DAY, Ordering::Relaxed);
    let mut txn = store.current();
    let bob = txn.slot(&BALANCES)?.get("bob").await?.unwrap_or(0);
    let alice = txn.slot(&BALANCES)?.get("alice").await?.unwrap_or(0);
    txn.slot_mut(&BALANCES)?.insert("alice", &(alice + bob))?;
    txn.slot_mut(&BALANCES)?.remove("bob")?;
    let closed = txn.commit().await?;

    // The audit log of one key: every version, with its commit time and value.
    let snap = store.snapshot();
    let balances = snap.slot(&BALANCES)?;
    let history = balances.versions("bob").await?;
    println!("bob's account:");
    for v in &history {
        let value = balances.get_version("bob", *v).await?;
        println!(
            "  day {} (version {}): {value:?}",
            v.time_ms() / DAY,
            v.seq()
        );
    }
    let days: Vec<u64> = history.iter().map(|v| v.time_ms() / DAY).collect();
    assert_eq!(days, [1, 2, 3, 4]);
    assert_eq!(history.first(), Some(&opened));
    assert!(
        history
            .last()
            .is_some_and(|v| v.is_removal() && *v == closed)
    );
    let values = {
        let mut values = Vec::new();
        for v in &history {
            values.push(balances.get_version("bob", *v).await?);
        }
        values
    };
    assert_eq!(values, [Some(5_000), Some(8_000), Some(7_500), None]);
    // What was removed stays readable as the latest value that was not a removal.
    assert_eq!(balances.get("bob").await?, None);
    assert_eq!(balances.get_unremoved("bob").await?, Some(7_500));

    // Time travel: the whole store as of the end of day 3, found by commit time. Both
    // accounts come from the same commit, so their sum is what it was then.
    let at = as_of(&history, 3 * DAY + DAY / 2).expect("bob had versions on day 3");
    assert_eq!(at, day3);
    let then = store.snapshot_at(at).await?;
    let then_balances = then.slot(&BALANCES)?;
    let (alice_then, bob_then) = (
        then_balances.get("alice").await?,
        then_balances.get("bob").await?,
    );
    assert_eq!((alice_then, bob_then), (Some(7_500), Some(7_500)));
    assert_eq!(alice_then.unwrap_or(0) + bob_then.unwrap_or(0), 15_000);
    println!("as of day 3: alice {alice_then:?}, bob {bob_then:?}");

    // The history is on disk: it survives closing and reopening.
    store.close().await?;
    let store = KvStore::open_with(FileStorage::open(dir.path()).await?, options).await?;
    let reopened = store.snapshot().slot(&BALANCES)?.versions("bob").await?;
    assert_eq!(reopened, history);

    // `merge` keeps each key's latest value and drops the rest of the history: an audit log
    // that must keep it never merges (or copies the history elsewhere first).
    store.merge().await?;
    let snap = store.snapshot();
    let balances = snap.slot(&BALANCES)?;
    assert_eq!(balances.get("alice").await?, Some(15_000));
    assert!(matches!(
        store.snapshot_at(day3).await,
        Err(Error::VersionNotFound { .. })
    ));
    assert!(matches!(
        balances.get_version("alice", opened).await,
        Err(Error::VersionNotFound { .. })
    ));
    println!(
        "after merge: {} version(s) of alice",
        balances.versions("alice").await?.len()
    );
    store.close().await
}
