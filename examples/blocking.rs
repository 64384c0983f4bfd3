//! The blocking API, for a program without an async runtime: a plain `fn main`, the same
//! typed slots and transactions as the quickstart, every wait made blocking by `.wait()`
//! (`kv_db::blocking`; no runtime inside: the calling thread polls and parks).
//!
//! Run it with `cargo run --example blocking`.

use kv_db::backends::FileStorage;
use kv_db::blocking::{KvStore, Wait};
use kv_db::{Retry, SlotDef, Transaction};

/// Page visits by path.
const VISITS: SlotDef<String, u64> = SlotDef::new(1, "visits");

fn visit<E: kv_db::Engine>(txn: &mut Transaction<E>, page: &str) -> kv_db::Result<u64> {
    let n = txn.slot(&VISITS)?.get(page).wait()?.unwrap_or(0) + 1;
    txn.slot_mut(&VISITS)?.insert(page, &n)?;
    Ok(n)
}

fn main() -> kv_db::Result<()> {
    let dir = tempfile::tempdir()?;
    println!("store directory: {}", dir.path().display());
    let store = KvStore::open(FileStorage::open(dir.path()).wait()?)?;
    store.open_slot(&VISITS)?;

    // Read-modify-write of one key from four threads at once, retried on conflict (the
    // blocking `transact` sleeps a jittered, growing time between attempts).
    std::thread::scope(|s| -> kv_db::Result<()> {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| -> kv_db::Result<()> {
                    for _ in 0..25 {
                        store.transact_with(Retry::attempts(100), |txn| visit(txn, "/"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join()
                .map_err(|_| std::io::Error::other("a thread panicked"))??;
        }
        Ok(())
    })?;
    let snap = store.snapshot();
    let visits = snap.slot(&VISITS)?;
    let home = visits.get("/").wait()?;
    println!("visits of /: {home:?}");
    assert_eq!(home, Some(100));

    // A plain transaction, committed with `.wait()`; its versions stay readable.
    let mut txn = store.current();
    visit(&mut txn, "/about")?;
    let version = txn.commit().wait()?;
    println!("committed at {version}");
    let versions = store.snapshot().slot(&VISITS)?.versions("/").wait()?;
    println!("/ has {} versions", versions.len());

    // Close, then reopen read-only: the data is on disk.
    store.close()?;
    let ro = KvStore::open_read_only(FileStorage::open(dir.path()).wait()?)?;
    let about = ro.snapshot().slot(&VISITS)?.get("/about").wait()?;
    assert_eq!(about, Some(1));
    println!(
        "reopened read-only: /about = {about:?}, {} slot(s)",
        ro.slots()?.len()
    );
    Ok(())
}
