//! The key codec (`kv_api::keycodec`), which reads keys back from every file of every engine.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Debug;

use kv_api::keycodec::{self, KeyValue};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// An enum and a struct with every variant kind, ordered as `derive(Ord)` orders them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Variants {
    Unit,
    Newtype(u8),
    Tuple(String, i32),
    Struct { x: Option<u16>, y: Vec<bool> },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<Variants>,
}

/// The input decoded as many key types, whole and split in two (at a point the first byte
/// chooses). Decoding never panics; a decoded key re-encodes to exactly the input (the codec
/// accepts only canonical encodings; maps too, whose entries must come sorted by encoded key,
/// once each: fuzz/regressions/keycodec/map-repeated-key), its prefix encoding is a prefix of
/// it, and two keys of one type compare as their encodings do.
///
/// Sets are not listed: serde serializes them as seqs, and the codec decodes a `BTreeSet`
/// from its elements in any order (see the `keycodec` module docs).
pub fn keycodec(data: &[u8]) {
    let split = data
        .first()
        .map_or(0, |&b| usize::from(b) % data.len().max(1));
    let (a, b) = data
        .get(1..)
        .unwrap_or_default()
        .split_at(split.saturating_sub(1));
    let parts = [data, a, b];
    check::<u8>(parts, Ord::cmp);
    check::<u32>(parts, Ord::cmp);
    check::<u128>(parts, Ord::cmp);
    check::<i64>(parts, Ord::cmp);
    check::<i128>(parts, Ord::cmp);
    check::<bool>(parts, Ord::cmp);
    check::<char>(parts, Ord::cmp);
    check::<()>(parts, Ord::cmp);
    check::<f32>(parts, f32::total_cmp);
    check::<f64>(parts, f64::total_cmp);
    check::<String>(parts, Ord::cmp);
    check::<ByteBuf>(parts, Ord::cmp);
    check::<Vec<u8>>(parts, Ord::cmp);
    check::<Vec<String>>(parts, Ord::cmp);
    check::<(String, u32)>(parts, Ord::cmp);
    // The shape of an expiry record's key in slot 255 (`kv_api::expiry`): name, slot, key bytes.
    check::<(String, u8, ByteBuf)>(parts, Ord::cmp);
    check::<(u8, (i16, String), Option<char>)>(parts, Ord::cmp);
    check::<Option<(i64, String)>>(parts, Ord::cmp);
    check::<Option<Option<u8>>>(parts, Ord::cmp);
    check::<BTreeMap<String, u8>>(parts, Ord::cmp);
    check::<Variants>(parts, Ord::cmp);
    check::<Record>(parts, Ord::cmp);
    // Self-describing decoding (`deserialize_any`), which untagged enums use.
    let _ = keycodec::decode::<IgnoredAny>(data);
}

fn check<T: Serialize + DeserializeOwned + Debug>(
    [whole, a, b]: [&[u8]; 3],
    cmp: fn(&T, &T) -> Ordering,
) {
    let decoded: [Option<T>; 3] = [whole, a, b].map(|bytes| {
        let v = keycodec::decode::<T>(bytes).ok()?;
        let again = keycodec::encode(&v).expect("a decoded key encodes");
        assert_eq!(again, bytes, "{v:?} re-encodes to other bytes");
        let prefix = keycodec::encode_prefix(&v).expect("a decoded key encodes as a prefix");
        assert!(again.starts_with(&prefix), "prefix encoding of {v:?}");
        Some(v)
    });
    if let [_, Some(x), Some(y)] = &decoded {
        assert_eq!(cmp(x, y), a.cmp(b), "order of {x:?} and {y:?}");
    }
}

/// The dynamic key decoder and the key text parser (`keycodec::KeyValue`, which the `kv-db` tool
/// shows and reads keys with). Neither panics; bytes the decoder accepts encode back to
/// themselves, also through their text (shaped by themselves too); text the parser accepts
/// encodes (or is refused, as a map with a repeated key is) and, where its bytes decode, shows
/// as text that parses to the same bytes; shaped parsing returns.
pub fn key_text(data: &[u8]) {
    if let Ok(value) = KeyValue::decode(data) {
        assert_eq!(value.encode().as_deref(), Ok(data), "{value:?}");
        let text = value.to_string();
        let parsed: KeyValue = text.parse().expect("shown keys parse");
        assert_eq!(parsed.encode().as_deref(), Ok(data), "{text}");
        // A key shaped by itself reads the same.
        let shaped = KeyValue::parse_shaped(&text, &value).expect("shown keys parse shaped");
        assert_eq!(shaped.encode().as_deref(), Ok(data), "{text}");
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Unsuffixed numbers take their type from a shape with numbers at every kind of place.
    let shape = "(\"\", 0u32, [0i8], Some(0.0f64), {0u16: 0i64}, struct(0u8), newtype(0i128))";
    if let Ok(shape) = shape.parse::<KeyValue>() {
        let _ = KeyValue::parse_shaped(text, &shape).map(|v| v.encode());
    }
    let Ok(Ok(bytes)) = text.parse::<KeyValue>().map(|v| v.encode()) else {
        return;
    };
    if let Ok(value) = KeyValue::decode(&bytes) {
        let again: KeyValue = value.to_string().parse().expect("shown keys parse");
        assert_eq!(again.encode(), Ok(bytes));
    }
}
