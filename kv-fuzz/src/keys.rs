//! The key codec (`kv_api::keycodec`), which reads keys back from every file of every engine.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Debug;

use kv_api::keycodec;
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
/// accepts only canonical encodings), its prefix encoding is a prefix of it, and two keys of
/// one type compare as their encodings do.
///
/// Except maps (and sets, not listed): the codec decodes map entries in any order and with
/// repeated keys, which a `BTreeMap` sorts and merges, so several encodings decode to one
/// map (fuzz/regressions/keycodec/map-repeated-key). For them only the re-encoding must be
/// stable, and order is checked for canonical inputs only.
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
    check::<(u8, (i16, String), Option<char>)>(parts, Ord::cmp);
    check::<Option<(i64, String)>>(parts, Ord::cmp);
    check::<Option<Option<u8>>>(parts, Ord::cmp);
    check_map::<BTreeMap<String, u8>>(parts);
    check::<Variants>(parts, Ord::cmp);
    check::<Record>(parts, Ord::cmp);
    // Self-describing decoding (`deserialize_any`), which untagged enums use.
    let _ = keycodec::decode::<IgnoredAny>(data);
}

fn check<T: Serialize + DeserializeOwned + Debug>(parts: [&[u8]; 3], cmp: fn(&T, &T) -> Ordering) {
    check_with(parts, cmp, true);
}

fn check_map<T: Serialize + DeserializeOwned + Debug + Ord>(parts: [&[u8]; 3]) {
    check_with::<T>(parts, Ord::cmp, false);
}

/// `canonical`: every accepted encoding is the one `encode` writes.
fn check_with<T: Serialize + DeserializeOwned + Debug>(
    [whole, a, b]: [&[u8]; 3],
    cmp: fn(&T, &T) -> Ordering,
    canonical: bool,
) {
    let decoded: [Option<(T, bool)>; 3] = [whole, a, b].map(|bytes| {
        let v = keycodec::decode::<T>(bytes).ok()?;
        let again = keycodec::encode(&v).expect("a decoded key encodes");
        if canonical {
            assert_eq!(again, bytes, "{v:?} re-encodes to other bytes");
        } else {
            let w = keycodec::decode::<T>(&again).expect("an encoded key decodes");
            let third = keycodec::encode(&w).expect("a decoded key encodes");
            assert_eq!(third, again, "{v:?}: re-encoding is not stable");
        }
        let prefix = keycodec::encode_prefix(&v).expect("a decoded key encodes as a prefix");
        assert!(again.starts_with(&prefix), "prefix encoding of {v:?}");
        Some((v, again == bytes))
    });
    if let [_, Some((x, x_canonical)), Some((y, y_canonical))] = &decoded
        && *x_canonical
        && *y_canonical
    {
        assert_eq!(cmp(x, y), a.cmp(b), "order of {x:?} and {y:?}");
    }
}
