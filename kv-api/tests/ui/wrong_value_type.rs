// A value of a `String` slot is neither read as nor written from another type.
use kv_api::{Engine, SlotDef, Transaction};

const USERS: SlotDef<(String, u32), String> = SlotDef::new(1, "users");

async fn read<E: Engine>(txn: &Transaction<E>) -> kv_api::Result<()> {
    let _: Option<(String, u32)> = txn.slot(&USERS)?.get(&("org1", 3)).await?;
    Ok(())
}

fn write<E: Engine>(txn: &mut Transaction<E>) -> kv_api::Result<()> {
    txn.slot_mut(&USERS)?.insert(&("org1", 3), &7u32)
}

fn main() {}
