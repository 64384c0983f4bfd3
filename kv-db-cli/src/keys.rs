//! Slots by number or catalog name, keys as typed literals (`("org1", 3u32)`) or raw hex.

use std::fmt::Write as _;

use kv_api::keycodec::{self, KeyValue};
use kv_db::{Engine, SlotInfo, Store};

use crate::usage;
use crate::values::ValueType;

/// How a key that [`KeyValue`] cannot show is printed and taken: its bytes in hex.
const RAW: &str = "raw:";

/// A slot argument: a number, or a name the catalog records. Returns the slot and its catalog
/// entry, if any.
pub async fn slot<E: Engine>(
    store: &Store<E>,
    arg: &str,
) -> anyhow::Result<(u8, Option<SlotInfo>)> {
    let catalog = store.slots().await?;
    let number = match arg.parse::<u8>() {
        Ok(n) => n,
        Err(_) => catalog
            .iter()
            .find(|s| s.name == arg)
            .map(|s| s.slot)
            .ok_or_else(|| {
                let names: Vec<&str> = catalog.iter().map(|s| s.name.as_str()).collect();
                usage(format!(
                    "no slot named {arg:?} (a number 0-254, or one of: {})",
                    if names.is_empty() {
                        "none, the catalog is empty".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            })?,
    };
    if number == kv_db::CATALOG_SLOT {
        return Err(usage(format!(
            "slot {number} is the catalog: see `kv slots`"
        )));
    }
    Ok((number, catalog.into_iter().find(|s| s.slot == number)))
}

/// The bytes of a key argument: a [`KeyValue`] literal, or `raw:HEX`. `slot` (its catalog
/// entry) names the key type in the error when the text is not a key.
pub fn parse(arg: &str, slot: Option<&SlotInfo>) -> anyhow::Result<Vec<u8>> {
    if let Some(hex) = arg.strip_prefix(RAW) {
        return from_hex(hex).ok_or_else(|| usage(format!("bad hex in key {arg:?}")));
    }
    let value = literal(arg, "key", slot)?;
    value
        .encode()
        .map_err(|e| usage(format!("bad key: {}", e.message())))
}

/// The encoded prefix of a `--prefix` argument: the key's bytes, without a final string or
/// seq terminator if `partial`.
pub fn parse_prefix(arg: &str, partial: bool, slot: Option<&SlotInfo>) -> anyhow::Result<Vec<u8>> {
    if !partial || arg.starts_with(RAW) {
        return parse(arg, slot);
    }
    let value = literal(arg, "prefix", slot)?;
    keycodec::encode_prefix(&value).map_err(|e| usage(format!("bad prefix: {}", e.message())))
}

/// A key literal; where the catalog's key type of the slot is one the tool knows, numbers
/// may leave out their suffix (`("org1", 3)` for a `(String, u32)` key).
fn literal(arg: &str, what: &str, slot: Option<&SlotInfo>) -> anyhow::Result<KeyValue> {
    let shape = slot.and_then(|s| ValueType::parse(&s.key_type));
    let parsed = match &shape {
        Some(shape) => KeyValue::parse_shaped(arg, &shape.shape()),
        None => arg.parse(),
    };
    parsed.map_err(|e: keycodec::KeyError| {
        let hint = slot.map_or(String::new(), |s| {
            format!(
                " (the catalog's key type of slot {}: {})",
                s.name, s.key_type
            )
        });
        usage(format!("bad {what}: {}{hint}", e.message()))
    })
}

/// A key for display: its literal, or `raw:HEX` when its tags do not delimit it.
pub fn show(key: &[u8]) -> String {
    match KeyValue::decode(key) {
        Ok(value) => value.to_string(),
        Err(_) => format!("{RAW}{}", hex(key)),
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text
        .chars()
        .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
        .collect::<Option<_>>()?;
    let pairs = digits.chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| match pair {
            [hi, lo] => hi.checked_mul(16).and_then(|h| h.checked_add(*lo)),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keys_round_trip() {
        let bytes = vec![0x40, 0x00, 0xff];
        assert_eq!(
            parse(&format!("raw:{}", hex(&bytes)), None).ok(),
            Some(bytes)
        );
        assert!(parse("raw:abc", None).is_err());
        assert!(parse("raw:zz", None).is_err());
    }

    #[test]
    fn undecodable_keys_show_raw() {
        assert_eq!(show(&[0xee]), "raw:ee");
        let key = keycodec::encode(&("a", 1u8)).ok().unwrap_or_default();
        assert_eq!(show(&key), r#"("a", 1u8)"#);
        assert_eq!(parse(&show(&key), None).ok(), Some(key));
    }
}
