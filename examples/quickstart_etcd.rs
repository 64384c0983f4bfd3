//! The quickstart (`examples/quickstart.rs`) on an etcd cluster: the same code, with the
//! store opened on `EtcdConfig` instead of `FileStorage` (the one changed line is marked).
//!
//! Run it against a running cluster (`scripts/etcd-cluster.sh start` gives one on loopback):
//!
//! ```text
//! KV_ETCD_ENDPOINTS=$(scripts/etcd-cluster.sh endpoints) cargo run --features etcd --example quickstart_etcd
//! ```
//!
//! Without `KV_ETCD_ENDPOINTS` it says so and exits with status 2.

use kv_db::{Etcd, EtcdConfig, SlotDef, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    age: u32,
}

/// Users by (organisation, number). The key and value types are part of the constant: a
/// read with another key type (`("org1", 3i32)`) or value type does not compile.
const USERS: SlotDef<(String, u32), User> = SlotDef::new(1, "users");
/// Page visits by path.
const VISITS: SlotDef<String, u64> = SlotDef::new(2, "visits");

#[tokio::main(flavor = "current_thread")]
async fn main() -> kv_db::Result<()> {
    // A fresh prefix per run, so that the example starts from an empty store.
    let prefix = format!(
        "quickstart/{}-{}/",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let config = match EtcdConfig::from_env("KV_ETCD_ENDPOINTS", &prefix) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}\n(start one with scripts/etcd-cluster.sh start)");
            std::process::exit(2);
        }
    };
    println!("store under prefix {prefix} on {:?}", config.endpoints());

    // The one changed line: `KvStore::open(FileStorage::open(&dir).await?)` on files.
    let store = Store::<Etcd>::open(config.clone()).await?;
    // Optional: check every definition against the store's catalog once, at startup.
    store.open_slot(&USERS).await?;
    store.open_slot(&VISITS).await?;

    // One transaction, two users; keys may be borrowed (`&str` for `String`).
    let mut txn = store.current();
    let mut users = txn.slot_mut(&USERS)?;
    users.insert(&("org1", 3), &user("Ada", 36))?;
    users.insert(&("org1", 10), &user("Bob", 41))?;
    let first = txn.commit().await?;
    println!("inserted two users at {first}");

    let mut txn = store.current();
    txn.slot_mut(&USERS)?
        .insert(&("org1", 3), &user("Ada", 37))?;
    txn.slot_mut(&USERS)?.remove(&("org1", 10))?;
    let second = txn.commit().await?;
    println!("updated Ada, removed Bob at {second}");

    // Every committed version stays readable until `merge`.
    let snap = store.snapshot();
    let users = snap.slot(&USERS)?;
    assert_eq!(users.get(&("org1", 3)).await?, Some(user("Ada", 37)));
    let versions = users.versions(&("org1", 3)).await?;
    assert_eq!(versions, vec![first, second]);
    assert_eq!(
        users.get_version(&("org1", 3), first).await?,
        Some(user("Ada", 36))
    );
    for v in &versions {
        println!("  Ada, version {} at {} ms", v.seq(), v.time_ms());
    }
    // Ranges in the key type's order (3 before 10), with borrowed bounds.
    let org1 = users.range(("org1", 0)..("org1", u32::MAX)).await?;
    assert_eq!(org1, vec![(("org1".to_string(), 3), user("Ada", 37))]);
    drop(snap);

    // A read-modify-write, retried if another transaction commits the same key meanwhile.
    let visits = store
        .transact(async |txn| {
            let n = txn.slot(&VISITS)?.get("/home").await?.unwrap_or(0);
            txn.slot_mut(&VISITS)?.insert("/home", &(n + 1))?;
            Ok(n + 1)
        })
        .await?;
    println!("/home visited {visits} time(s)");

    // The catalog: which slot holds what.
    for slot in store.slots().await? {
        println!(
            "slot {} {:?}: {} -> {}",
            slot.slot, slot.name, slot.key_type, slot.value_type
        );
    }

    let before = store.stats().await?.bytes_on_storage;
    store.merge().await?;
    println!(
        "merged: {before} bytes before, {} after",
        store.stats().await?.bytes_on_storage
    );
    drop(store);

    let store = Store::<Etcd>::open(config).await?;
    let snap = store.snapshot();
    let users = snap.slot(&USERS)?;
    assert_eq!(users.versions(&("org1", 3)).await?.len(), 1);
    assert_eq!(users.get(&("org1", 3)).await?, Some(user("Ada", 37)));
    assert_eq!(snap.slot(&VISITS)?.get("/home").await?, Some(1));
    println!("reopened: Ada is 37, one version left; {store:?}");
    Ok(())
}

fn user(name: &str, age: u32) -> User {
    User {
        name: name.into(),
        age,
    }
}
