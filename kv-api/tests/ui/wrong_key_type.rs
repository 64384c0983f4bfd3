// A key written as ("org1", 3u32) cannot be read as ("org1", 3i32): it would be another key.
use kv_api::{Engine, SlotDef, Transaction};

const USERS: SlotDef<(String, u32), String> = SlotDef::new(1, "users");

async fn read<E: Engine>(txn: &Transaction<E>) -> kv_api::Result<()> {
    let _ = txn.slot(&USERS)?.get(&("org1", 3i32)).await?;
    Ok(())
}

fn main() {}
