//! A secondary index kept in the same transactions as its rows: users by id, an index of
//! users by city, and a unique index of emails. Each write changes a row and its index
//! entries in one transaction, so no reader ever sees one without the other, and two
//! concurrent writers of the same user or the same email conflict instead of corrupting the
//! index (the loser is retried by `Store::transact`, and sees the winner's write).
//!
//! Run it with `cargo run --example secondary_index`.

use kv_db::backends::MemoryStorage;
use kv_db::{Engine, Error, KvStore, Result, SlotDef, Store, Transaction};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    email: String,
    city: String,
}

/// The rows: users by id.
const USERS: SlotDef<u64, User> = SlotDef::new(1, "users");
/// Index: (city, id) -> (). Keys are ordered by city, then id: a city is a key range.
const BY_CITY: SlotDef<(String, u64), ()> = SlotDef::new(2, "users_by_city");
/// Unique index: email -> id.
const BY_EMAIL: SlotDef<String, u64> = SlotDef::new(3, "users_by_email");

/// Inserts or replaces user `id`, moving its index entries. Fails (writing nothing, since the
/// caller's transaction is not committed) if another user has the email.
async fn put_user<E: Engine>(txn: &mut Transaction<E>, id: u64, user: &User) -> Result<()> {
    // Reading the email's owner makes a concurrent claim of the same email a conflict.
    if let Some(owner) = txn.slot(&BY_EMAIL)?.get(&user.email).await?
        && owner != id
    {
        return Err(Error::InvalidArgument(format!(
            "{} is the email of user {owner}",
            user.email
        )));
    }
    if let Some(old) = txn.slot(&USERS)?.get(&id).await? {
        txn.slot_mut(&BY_CITY)?.remove(&(old.city.as_str(), id))?;
        txn.slot_mut(&BY_EMAIL)?.remove(&old.email)?;
    }
    txn.slot_mut(&USERS)?.insert(&id, user)?;
    txn.slot_mut(&BY_CITY)?
        .insert(&(user.city.as_str(), id), &())?;
    txn.slot_mut(&BY_EMAIL)?.insert(&user.email, &id)?;
    Ok(())
}

/// Removes user `id` and its index entries.
async fn remove_user<E: Engine>(txn: &mut Transaction<E>, id: u64) -> Result<()> {
    if let Some(old) = txn.slot(&USERS)?.get(&id).await? {
        txn.slot_mut(&USERS)?.remove(&id)?;
        txn.slot_mut(&BY_CITY)?.remove(&(old.city.as_str(), id))?;
        txn.slot_mut(&BY_EMAIL)?.remove(&old.email)?;
    }
    Ok(())
}

/// The ids of the users in `city`, through the index: one key range, no scan of the rows.
async fn users_in<E: Engine>(txn: &Transaction<E>, city: &str) -> Result<Vec<u64>> {
    let entries = txn
        .slot(&BY_CITY)?
        .range((city, 0)..=(city, u64::MAX))
        .await?;
    Ok(entries.into_iter().map(|((_, id), ())| id).collect())
}

/// Checks, in one snapshot, that the indexes hold exactly one entry per row, and no other.
async fn check_indexes<E: Engine>(store: &Store<E>) -> Result<usize> {
    let snap = store.snapshot();
    let users = snap.slot(&USERS)?.all().await?;
    let mut by_city: Vec<(String, u64)> =
        users.iter().map(|(id, u)| (u.city.clone(), *id)).collect();
    by_city.sort();
    let index: Vec<(String, u64)> = snap.slot(&BY_CITY)?.keys().await?;
    assert_eq!(index, by_city, "the city index and the rows disagree");
    let mut by_email: Vec<(String, u64)> =
        users.iter().map(|(id, u)| (u.email.clone(), *id)).collect();
    by_email.sort();
    let emails = snap.slot(&BY_EMAIL)?.all().await?;
    assert_eq!(emails, by_email, "the email index and the rows disagree");
    Ok(users.len())
}

fn user(name: &str, city: &str) -> User {
    User {
        name: name.into(),
        email: format!("{}@example.org", name.to_lowercase()),
        city: city.into(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let store = KvStore::open(MemoryStorage::new()).await?;
    store.open_slot(&USERS).await?;
    store.open_slot(&BY_CITY).await?;
    store.open_slot(&BY_EMAIL).await?;
    for def in store.slots().await? {
        println!(
            "slot {} {}: {} -> {}",
            def.slot, def.name, def.key_type, def.value_type
        );
    }

    // Rows and index entries, written together.
    let people = [
        (1, user("Ada", "Paris")),
        (2, user("Grace", "Lyon")),
        (3, user("Edsger", "Paris")),
        (4, user("Barbara", "Parisville")),
    ];
    store
        .transact(async |txn| {
            for (id, u) in &people {
                put_user(txn, *id, u).await?;
            }
            Ok(())
        })
        .await?;
    let before = store.snapshot();
    assert_eq!(users_in(&before, "Paris").await?, [1, 3]); // not Parisville
    assert_eq!(check_indexes(&store).await?, 4);

    // Updates move the index entries; a removal removes them.
    store
        .transact(async |txn| put_user(txn, 1, &user("Ada", "Lyon")).await)
        .await?;
    store
        .transact(async |txn| remove_user(txn, 3).await)
        .await?;
    let snap = store.snapshot();
    assert_eq!(users_in(&snap, "Lyon").await?, [1, 2]);
    assert!(users_in(&snap, "Paris").await?.is_empty());
    assert_eq!(check_indexes(&store).await?, 3);
    // The snapshot taken before still sees rows and index as they were, together.
    assert_eq!(users_in(&before, "Paris").await?, [1, 3]);
    let ada = before.slot(&USERS)?.get(&1).await?;
    assert_eq!(ada.map(|u| u.city).as_deref(), Some("Paris"));

    // Two concurrent moves of the same user: the second commit conflicts (it read the row
    // the first one changed), so the index never keeps a stale entry.
    let mut a = store.current();
    let mut b = store.current();
    put_user(&mut a, 2, &user("Grace", "Nice")).await?;
    put_user(&mut b, 2, &user("Grace", "Brest")).await?;
    a.commit().await?;
    let lost = b.commit().await;
    assert!(matches!(lost, Err(ref e) if e.is_conflict()), "{lost:?}");
    assert_eq!(users_in(&store.snapshot(), "Nice").await?, [2]);
    assert!(users_in(&store.snapshot(), "Brest").await?.is_empty());
    assert_eq!(check_indexes(&store).await?, 3);
    // Retried in a fresh transaction, the second move applies on top of the first.
    store
        .transact(async |txn| put_user(txn, 2, &user("Grace", "Brest")).await)
        .await?;
    assert!(users_in(&store.snapshot(), "Nice").await?.is_empty());

    // Two users claiming one email at once: both read "free", the second commit conflicts,
    // and its retry sees the email taken.
    let mut a = store.current();
    let mut b = store.current();
    let mut alan = user("Alan", "Paris");
    let mut alan2 = user("Alan", "Lyon");
    alan.email = "turing@example.org".into();
    alan2.email = alan.email.clone();
    put_user(&mut a, 10, &alan).await?;
    put_user(&mut b, 11, &alan2).await?;
    a.commit().await?;
    assert!(b.commit().await.is_err_and(|e| e.is_conflict()));
    let retry = store
        .transact(async |txn| put_user(txn, 11, &alan2).await)
        .await;
    assert!(matches!(retry, Err(Error::InvalidArgument(_))), "{retry:?}");
    let n = check_indexes(&store).await?;
    assert_eq!(n, 4);
    println!("{n} users; the rows and both indexes agree after every step");
    store.close().await
}
