// `slot` opens a slot for reading only: writing needs `slot_mut`.
use kv_api::{Engine, SlotDef, Transaction};

const USERS: SlotDef<(String, u32), String> = SlotDef::new(1, "users");

fn write<E: Engine>(txn: &Transaction<E>) -> kv_api::Result<()> {
    txn.slot(&USERS)?.insert(&("org1", 3), &"ada".to_string())
}

fn main() {}
