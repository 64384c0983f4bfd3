//! Unit and property tests of the key codec: round trips, byte order against `Ord`,
//! type separation, strict decoding of malformed input and [`encode_prefix`](super::encode_prefix).

use super::*;
use proptest::prelude::*;
use serde::de::{DeserializeOwned, IgnoredAny, Visitor};
use serde::{Deserialize, Serialize, de, ser};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fmt::Debug;

/// Byte string that serializes with `serialize_bytes`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    Empty,
    Circle(u32),
    Rect(u32, u32),
    Named { name: String, sides: u8 },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Marker;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Id(u64);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Pair(String, i32);

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Record {
    table: String,
    id: u64,
    flag: Option<char>,
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T) {
    let bytes = encode(&value).unwrap();
    assert_eq!(decode::<T>(&bytes).unwrap(), value, "bytes {bytes:02x?}");
}

/// Round trip, and also decodable without its type (`deserialize_any`).
fn round_trip_untyped<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T) {
    let bytes = encode(&value).unwrap();
    decode::<IgnoredAny>(&bytes).unwrap();
    round_trip(value);
}

/// Asserts `values` are strictly increasing, natively and encoded.
fn assert_increasing<T: Serialize + PartialOrd + Debug>(values: &[T]) {
    for pair in values.windows(2) {
        let [a, b] = pair else { unreachable!() };
        assert!(a < b, "test data not sorted: {a:?} !< {b:?}");
        let (ea, eb) = (encode(a).unwrap(), encode(b).unwrap());
        assert!(ea < eb, "{a:?} ({ea:02x?}) !< {b:?} ({eb:02x?})");
    }
}

fn assert_truncations_fail<T: Serialize + DeserializeOwned + Debug>(value: &T) {
    let bytes = encode(value).unwrap();
    for len in 0..bytes.len() {
        let prefix = bytes.get(..len).unwrap();
        assert!(decode::<T>(prefix).is_err(), "{value:?} cut at {len}");
        assert!(
            decode::<IgnoredAny>(prefix).is_err(),
            "{value:?} cut at {len}"
        );
    }
}

fn sample_shapes() -> Vec<Shape> {
    vec![
        Shape::Empty,
        Shape::Circle(0),
        Shape::Circle(5),
        Shape::Rect(1, 2),
        Shape::Rect(2, 0),
        Shape::Named {
            name: "a".into(),
            sides: 9,
        },
        Shape::Named {
            name: "b".into(),
            sides: 0,
        },
    ]
}

#[test]
fn round_trips_primitives() {
    round_trip(());
    round_trip(false);
    round_trip(true);
    for v in [0u8, 1, 127, 128, u8::MAX] {
        round_trip(v);
    }
    round_trip(u16::MAX);
    round_trip(0xDEAD_BEEFu32);
    round_trip(u64::MAX);
    round_trip(u128::MAX);
    for v in [i8::MIN, -1, 0, 1, i8::MAX] {
        round_trip(v);
    }
    round_trip(i16::MIN);
    round_trip(-7i32);
    round_trip(i64::MIN);
    round_trip(i64::MAX);
    round_trip(i128::MIN);
    round_trip(-1.5f32);
    round_trip(f64::MIN_POSITIVE);
    round_trip(f64::NEG_INFINITY);
    for c in ['\0', 'a', 'é', '😀', char::MAX] {
        round_trip(c);
    }
}

#[test]
fn round_trips_nan_bit_exact() {
    for bits in [
        f64::NAN.to_bits(),
        (-f64::NAN).to_bits(),
        0x7FF0_0000_0000_0001,
    ] {
        let back: f64 = decode(&encode(&f64::from_bits(bits)).unwrap()).unwrap();
        assert_eq!(back.to_bits(), bits);
    }
    let back: f32 = decode(&encode(&f32::NAN).unwrap()).unwrap();
    assert_eq!(back.to_bits(), f32::NAN.to_bits());
}

#[test]
fn round_trips_strings_and_bytes() {
    for s in [
        "",
        "\0",
        "a\0b",
        "\0\0",
        "key foo",
        "ünï\u{1F600}",
        "\u{FF}\u{1}",
    ] {
        round_trip(s.to_string());
    }
    round_trip(Bytes(vec![]));
    round_trip(Bytes(vec![0, 0xFF, 0, 1, 0]));
    round_trip(vec![0u8, 1, 2]);
    round_trip(Vec::<u8>::new());
    // A key written as &str reads back as String.
    assert_eq!(
        encode("key").unwrap(),
        encode(&String::from("key")).unwrap()
    );
    assert_eq!(decode::<String>(&encode("key").unwrap()).unwrap(), "key");
}

#[test]
fn round_trips_compounds() {
    round_trip(None::<u32>);
    round_trip(Some(Some(3u32)));
    round_trip(Some(None::<u32>));
    round_trip((1u32, String::from("x"), -2i8));
    round_trip([7u16; 3]);
    round_trip(vec![String::new(), "a\0".into(), "b".into()]);
    round_trip(vec![vec![1u64], vec![], vec![2, 3]]);
    round_trip(BTreeMap::from([(String::from("a"), 1u8), ("b".into(), 2)]));
    round_trip(Marker);
    round_trip(Id(42));
    round_trip(Pair("p".into(), -9));
    round_trip(Record {
        table: "users".into(),
        id: 7,
        flag: Some('x'),
    });
    for shape in sample_shapes() {
        round_trip(shape);
    }
    round_trip(vec![(Shape::Rect(1, 2), Some(Id(1)))]);
}

#[test]
fn order_integers() {
    assert_increasing(&[0u32, 1, 2, 10, 255, 256, u32::MAX]);
    assert_increasing(&[i64::MIN, -5, -1, 0, 3, i64::MAX]);
    assert_increasing(&[i128::MIN, -1, 0, 1, i128::MAX]);
    assert_increasing(&(i8::MIN..=i8::MAX).collect::<Vec<_>>());
    assert_increasing(&(0..=u16::MAX).collect::<Vec<_>>());
    assert_increasing(&[false, true]);
    assert_increasing(&['\0', 'a', 'b', 'é', '😀']);
}

#[test]
fn order_strings_and_bytes() {
    let strings = [
        "", "\0", "\0\0", "\0a", "a", "a\0", "a\u{1}", "ab", "b", "é",
    ];
    assert_increasing(&strings.map(String::from));
    assert_increasing(&[
        Bytes(vec![]),
        Bytes(vec![0]),
        Bytes(vec![0, 0]),
        Bytes(vec![0, 0xFF]),
        Bytes(vec![1]),
        Bytes(vec![0xFF]),
    ]);
    assert_increasing(&[vec![], vec![0u8], vec![1], vec![1, 2], vec![2]]);
    let lists: [&[&str]; 6] = [&[], &[""], &["", "a"], &["a"], &["a", ""], &["ab"]];
    assert_increasing(&lists.map(|l| l.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
}

#[test]
fn order_floats_is_total_order() {
    let values = [
        f64::NEG_INFINITY,
        f64::MIN,
        -1.5,
        -1e-300,
        -0.0,
        0.0,
        1e-300,
        1.0,
        2.5,
        f64::MAX,
        f64::INFINITY,
    ];
    for pair in values.windows(2) {
        let [a, b] = pair else { unreachable!() };
        assert!(a.total_cmp(b).is_lt());
        assert!(encode(a).unwrap() < encode(b).unwrap(), "{a} !< {b}");
    }
    let small = [f32::NEG_INFINITY, -2.0f32, -0.0, 0.0, 0.5, f32::INFINITY];
    for pair in small.windows(2) {
        let [a, b] = pair else { unreachable!() };
        assert!(encode(a).unwrap() < encode(b).unwrap(), "{a} !< {b}");
    }
}

#[test]
fn order_compounds() {
    assert_increasing(&[None, Some(0u32), Some(1)]);
    assert_increasing(&[
        (1u32, String::from("b")),
        (2, "a".into()),
        (2, "ab".into()),
        (10, String::new()),
    ]);
    assert_increasing(&sample_shapes());
    assert_increasing(&[
        Record {
            table: "a".into(),
            id: 9,
            flag: None,
        },
        Record {
            table: "a".into(),
            id: 10,
            flag: None,
        },
        Record {
            table: "a".into(),
            id: 10,
            flag: Some('a'),
        },
        Record {
            table: "b".into(),
            id: 0,
            flag: None,
        },
    ]);
    assert_increasing(&[
        BTreeMap::new(),
        BTreeMap::from([(1u8, 5u8)]),
        BTreeMap::from([(1, 5), (2, 0)]),
        BTreeMap::from([(1, 6)]),
        BTreeMap::from([(2, 0)]),
    ]);
}

#[test]
fn different_types_never_collide() {
    let encodings = [
        encode(&3u8),
        encode(&3u16),
        encode(&3u32),
        encode(&3u64),
        encode(&3u128),
        encode(&3i8),
        encode(&3i64),
        encode(&3.0f32),
        encode(&3.0f64),
        encode(&'3'),
        encode("key foo"),
        encode("3"),
        encode(&Bytes(b"key foo".to_vec())),
        encode(&vec![1u8, 2]),
        encode(&(1u8, 2u8)),
        encode(&Bytes(vec![1, 2])),
        encode(&()),
        encode(&Marker),
        encode(&Id(3)),
        encode(&Some(3u8)),
        encode(&None::<u8>),
        encode(&true),
        encode(&Shape::Circle(3)),
        encode(&BTreeMap::from([(1u8, 2u8)])),
    ]
    .map(Result::unwrap);
    let distinct: HashSet<_> = encodings.iter().collect();
    assert_eq!(distinct.len(), encodings.len());
}

#[test]
fn tag_mismatch_is_an_error() {
    let err = decode::<u16>(&encode(&3u8).unwrap()).unwrap_err();
    assert!(err.message().contains("expected u16"), "{err}");
    assert!(decode::<u8>(&encode(&3u16).unwrap()).is_err());
    assert!(decode::<i32>(&encode(&3u32).unwrap()).is_err());
    assert!(decode::<String>(&encode(&Bytes(vec![97])).unwrap()).is_err());
    assert!(decode::<Bytes>(&encode("a").unwrap()).is_err());
    assert!(decode::<Vec<u8>>(&encode(&Bytes(vec![1])).unwrap()).is_err());
    assert!(decode::<Option<u8>>(&encode(&3u8).unwrap()).is_err());
    assert!(decode::<(u32, u32)>(&encode(&(1u32, 2u32, 3u32)).unwrap()).is_err());
    assert!(decode::<Pair>(&encode(&(String::new(), 1i32)).unwrap()).is_err());
    assert!(decode::<Id>(&encode(&3u64).unwrap()).is_err());
    assert!(decode::<Marker>(&encode(&()).unwrap()).is_err());
    assert!(decode::<Shape>(&encode(&3u32).unwrap()).is_err());
    // Variant index out of range, and wrong variant kind.
    assert!(decode::<Shape>(&[tag::ENUM, 0, 0, 0, 9, kind::UNIT]).is_err());
    assert!(decode::<Shape>(&[tag::ENUM, 0, 0, 0, 0, kind::NEWTYPE]).is_err());
}

#[test]
fn malformed_bodies_are_errors() {
    assert!(decode::<bool>(&[tag::BOOL, 2]).is_err());
    assert!(decode::<char>(&[tag::CHAR, 0, 0, 0xD8, 0]).is_err());
    assert!(decode::<String>(&[tag::STR, 0xC3, 0x28, 0, 1]).is_err());
    assert!(decode::<String>(&[tag::STR, b'a', 0, 2]).is_err());
    assert!(decode::<Vec<u8>>(&[tag::SEQ, 2]).is_err());
    assert!(decode::<IgnoredAny>(&[0xEE]).is_err());
    assert!(decode::<IgnoredAny>(&[]).is_err());
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut bytes = encode(&3u8).unwrap();
    bytes.push(0);
    assert!(
        decode::<u8>(&bytes)
            .unwrap_err()
            .message()
            .contains("trailing")
    );
    let mut bytes = encode("a").unwrap();
    bytes.push(1);
    assert!(decode::<String>(&bytes).is_err());
    assert!(decode::<IgnoredAny>(&bytes).is_err());
}

#[test]
fn every_truncation_is_an_error() {
    assert_truncations_fail(&u128::MAX);
    assert_truncations_fail(&-3.5f64);
    assert_truncations_fail(&'é');
    assert_truncations_fail(&String::from("a\0b"));
    assert_truncations_fail(&Bytes(vec![0, 1, 0xFF]));
    assert_truncations_fail(&vec![Some(1u16), None]);
    assert_truncations_fail(&(String::from("users"), 42u32, vec![String::from("x\0")]));
    assert_truncations_fail(&Record {
        table: "t".into(),
        id: 1,
        flag: Some('z'),
    });
    assert_truncations_fail(&BTreeMap::from([(Id(1), Shape::Rect(3, 4))]));
    for shape in sample_shapes() {
        assert_truncations_fail(&shape);
    }
}

#[test]
fn encode_into_appends() {
    let mut out = vec![0xAA];
    encode_into(&1u8, &mut out).unwrap();
    encode_into("b", &mut out).unwrap();
    assert_eq!(out, [0xAA, tag::U8, 1, tag::STR, b'b', 0, 1]);
}

#[test]
fn encode_prefix_strips_final_terminator() {
    let prefix = encode_prefix("ab").unwrap();
    assert_eq!(prefix, [tag::STR, b'a', b'b']);
    for matching in ["ab", "abc", "ab\0", "ab\0c"] {
        assert!(
            encode(matching).unwrap().starts_with(&prefix),
            "{matching:?}"
        );
    }
    for other in ["a", "b", "ac", "", "a\0b"] {
        assert!(!encode(other).unwrap().starts_with(&prefix), "{other:?}");
    }
    // The empty prefix matches every string and nothing else.
    assert_eq!(encode_prefix("").unwrap(), [tag::STR]);

    let table = encode_prefix(&("users", "ab")).unwrap();
    assert!(encode(&("users", "abc")).unwrap().starts_with(&table));
    assert!(!encode(&("userz", "abc")).unwrap().starts_with(&table));
    assert!(!encode(&("users", "b")).unwrap().starts_with(&table));

    let seq = encode_prefix(&vec![1u8, 2]).unwrap();
    assert!(encode(&vec![1u8, 2]).unwrap().starts_with(&seq));
    assert!(encode(&vec![1u8, 2, 3]).unwrap().starts_with(&seq));
    assert!(!encode(&vec![1u8, 3]).unwrap().starts_with(&seq));

    assert!(
        encode(&Some("abc"))
            .unwrap()
            .starts_with(&encode_prefix(&Some("ab")).unwrap())
    );
    assert!(
        encode(&Bytes(vec![1, 2]))
            .unwrap()
            .starts_with(&encode_prefix(&Bytes(vec![1])).unwrap())
    );
}

#[test]
fn tuple_encoding_is_a_prefix_of_longer_tuples() {
    // FoundationDB-style sub-spaces: all keys ("users", ..) share a prefix.
    let users = encode(&("users",)).unwrap();
    assert!(encode(&("users", 5u32)).unwrap().starts_with(&users));
    assert!(encode(&("users", "x", 1u8)).unwrap().starts_with(&users));
    assert!(!encode(&("usersx", 5u32)).unwrap().starts_with(&users));
    assert!(!encode(&("user", 5u32)).unwrap().starts_with(&users));
}

#[test]
fn encode_prefix_keeps_other_encodings() {
    // 1u16 ends in the bytes 00 01, which are not a terminator here.
    assert_eq!(encode_prefix(&1u16).unwrap(), encode(&1u16).unwrap());
    assert_eq!(encode_prefix(&5u32).unwrap(), encode(&5u32).unwrap());
    assert_eq!(
        encode_prefix(&("ab", 1u8)).unwrap(),
        encode(&("ab", 1u8)).unwrap()
    );
    assert_eq!(
        encode_prefix(&Shape::Empty).unwrap(),
        encode(&Shape::Empty).unwrap()
    );
}

#[test]
fn untyped_decoding_via_deserialize_any() {
    round_trip_untyped(());
    round_trip_untyped(-3i16);
    round_trip_untyped(1.5f32);
    round_trip_untyped('c');
    round_trip_untyped(String::from("s\0"));
    round_trip_untyped(Bytes(vec![0, 1]));
    round_trip_untyped(Some(vec![Some(1u8), None]));
    round_trip_untyped(BTreeMap::from([(String::from("k"), Id(1))]));
    round_trip_untyped(Marker);
    round_trip_untyped(Shape::Empty);
    round_trip_untyped(Shape::Circle(3));

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum Loose {
        Num(u64),
        Text(String),
        List(Vec<String>),
        Nested(Shape),
    }
    round_trip_untyped(Loose::Num(5));
    round_trip_untyped(Loose::Text("t\0".into()));
    round_trip_untyped(Loose::List(vec!["a".into(), "b".into()]));
    round_trip_untyped(Loose::Nested(Shape::Empty));
    round_trip_untyped(Loose::Nested(Shape::Circle(3)));

    // Fixed-arity values carry no length: a clean error, not garbage.
    for bytes in [
        encode(&(1u8, 2u8)),
        encode(&Pair("p".into(), 1)),
        encode(&Record {
            table: "t".into(),
            id: 1,
            flag: None,
        }),
        encode(&Shape::Rect(1, 2)),
        encode(&Shape::Named {
            name: "n".into(),
            sides: 3,
        }),
    ] {
        let err = decode::<IgnoredAny>(&bytes.unwrap()).unwrap_err();
        assert!(err.message().contains("concrete type"), "{err}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut bytes = vec![tag::SOME; 100_000];
    bytes.push(tag::UNIT);
    assert!(decode::<IgnoredAny>(&bytes).is_err());
    let mut seqs = [tag::SEQ, ELEMENT].repeat(100_000);
    seqs.push(tag::UNIT);
    assert!(decode::<IgnoredAny>(&seqs).is_err());
    round_trip(Some(Some(Some(Some(vec![Some(())])))));
}

#[test]
fn serialize_errors_leave_output_unchanged() {
    struct Liar;
    impl Serialize for Liar {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeTuple;
            let mut tuple = serializer.serialize_tuple(2)?;
            tuple.serialize_element(&1u8)?;
            tuple.end()
        }
    }
    let mut out = vec![9];
    assert!(encode_into(&Liar, &mut out).is_err());
    assert_eq!(out, [9]);
}

#[test]
fn key_error_is_a_proper_error() {
    let err = decode::<u8>(&[]).unwrap_err();
    let boxed: Box<dyn std::error::Error> = Box::new(err.clone());
    assert_eq!(boxed.to_string(), format!("key codec: {}", err.message()));
    assert_eq!(err, KeyError::eof());
}

/// The map encoding before maps were sorted by encoded key: the entries in
/// the map's own iteration order.
fn iteration_order_encoding<K: Serialize, V: Serialize>(map: &BTreeMap<K, V>) -> Vec<u8> {
    let mut out = vec![tag::MAP];
    for (k, v) in map {
        out.push(ELEMENT);
        encode_into(k, &mut out).unwrap();
        encode_into(v, &mut out).unwrap();
    }
    out.push(END);
    out
}

#[test]
fn hash_map_encoding_ignores_insertion_order() {
    let entries: Vec<(String, u32)> = (0..64).map(|i| (format!("k{i}"), i)).collect();
    let forward: HashMap<_, _> = entries.iter().cloned().collect();
    let mut backward = HashMap::with_capacity(1);
    for (k, v) in entries.iter().rev() {
        backward.insert(k.clone(), *v);
    }
    // Same content, different iteration orders (most likely; the encoding
    // must not depend on it either way).
    let bytes = encode(&forward).unwrap();
    assert_eq!(bytes, encode(&backward).unwrap());
    // Sorted by encoded key is sorted by key: the `BTreeMap` encoding.
    let sorted: BTreeMap<_, _> = entries.into_iter().collect();
    assert_eq!(bytes, encode(&sorted).unwrap());
    assert_eq!(bytes, iteration_order_encoding(&sorted));
    assert_eq!(decode::<HashMap<String, u32>>(&bytes).unwrap(), forward);
    // Nested maps are sorted too.
    let nested = HashMap::from([(1u8, forward.clone()), (0, backward.clone())]);
    let nested_sorted = BTreeMap::from([(1u8, sorted.clone()), (0, sorted)]);
    assert_eq!(encode(&nested).unwrap(), encode(&nested_sorted).unwrap());
}

/// `{1: 10, 2: 20}` as `BTreeMap<u8, u8>` with its entries in the given order.
fn map_bytes(keys: &[u8]) -> Vec<u8> {
    let mut out = vec![tag::MAP];
    for &k in keys {
        out.extend_from_slice(&[ELEMENT, tag::U8, k, tag::U8, k.wrapping_mul(10)]);
    }
    out.push(END);
    out
}

#[test]
fn unsorted_or_repeated_map_keys_are_errors() {
    assert_eq!(
        decode::<BTreeMap<u8, u8>>(&map_bytes(&[1, 2])).unwrap(),
        BTreeMap::from([(1, 10), (2, 20)])
    );
    for keys in [&[2u8, 1][..], &[1, 1], &[1, 2, 2], &[1, 2, 1]] {
        let bytes = map_bytes(keys);
        for err in [
            decode::<BTreeMap<u8, u8>>(&bytes).unwrap_err(),
            decode::<HashMap<u8, u8>>(&bytes).unwrap_err(),
            decode::<IgnoredAny>(&bytes).unwrap_err(),
        ] {
            assert!(
                err.message().contains("strictly increasing"),
                "{keys:?}: {err}"
            );
        }
        // Through the typed API: a decode error.
        assert!(
            matches!(
                crate::codec::decode_key::<BTreeMap<u8, u8>>(&bytes),
                Err(crate::Error::Decode { what: "key", .. })
            ),
            "{keys:?}"
        );
    }
    // Keys compare by their whole encoding: "a" < "a\0" < "b".
    let strings = |keys: &[&str]| {
        let mut out = vec![tag::MAP];
        for k in keys {
            out.push(ELEMENT);
            encode_into(k, &mut out).unwrap();
            encode_into(&(), &mut out).unwrap();
        }
        out.push(END);
        out
    };
    assert!(decode::<BTreeMap<String, ()>>(&strings(&["a", "a\0", "b"])).is_ok());
    assert!(decode::<BTreeMap<String, ()>>(&strings(&["a\0", "a"])).is_err());
    assert!(decode::<BTreeMap<String, ()>>(&strings(&["a", "a"])).is_err());
}

#[test]
fn fuzz_regression_map_repeated_key_is_an_error() {
    // kv-fuzz's `keycodec` target reads the first byte as a split point; the
    // map is the rest: {"\x10": 0} twice.
    let data = include_bytes!("../../../fuzz/regressions/keycodec/map-repeated-key");
    let map = data.get(1..).unwrap();
    let err = decode::<BTreeMap<String, u8>>(map).unwrap_err();
    assert!(err.message().contains("strictly increasing"), "{err}");
    assert!(decode::<IgnoredAny>(map).is_err());
    assert!(matches!(
        crate::codec::decode_key::<BTreeMap<String, u8>>(map),
        Err(crate::Error::Decode { what: "key", .. })
    ));
    // Its one canonical encoding still decodes.
    let one = BTreeMap::from([(String::from("\x10"), 0u8)]);
    assert_eq!(
        decode::<BTreeMap<String, u8>>(&encode(&one).unwrap()).unwrap(),
        one
    );
}

#[test]
fn map_serializers_that_misbehave_are_errors() {
    struct Twice;
    impl Serialize for Twice {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeMap;
            let mut map = serializer.serialize_map(None)?;
            map.serialize_entry(&1u8, &2u8)?;
            map.serialize_entry(&1u8, &3u8)?;
            map.end()
        }
    }
    struct KeyOnly;
    impl Serialize for KeyOnly {
        fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use ser::SerializeMap;
            let mut map = serializer.serialize_map(None)?;
            map.serialize_key(&1u8)?;
            map.end()
        }
    }
    let mut out = vec![9];
    assert!(encode_into(&Twice, &mut out).is_err());
    assert!(encode_into(&KeyOnly, &mut out).is_err());
    assert_eq!(out, [9]);
}

#[test]
fn sets_are_seqs() {
    // serde serializes sets with `serialize_seq`, exactly like a `Vec`, so the
    // codec cannot tell them apart: a `BTreeSet` encodes sorted (its iteration
    // order), a `HashSet` in its iteration order, and decoding accepts any
    // element order (see the module docs).
    let set = BTreeSet::from([3u8, 1, 2]);
    assert_eq!(encode(&set).unwrap(), encode(&vec![1u8, 2, 3]).unwrap());
    let unsorted = encode(&vec![3u8, 1, 2, 1]).unwrap();
    assert_eq!(decode::<BTreeSet<u8>>(&unsorted).unwrap(), set);
}

fn small_string() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[\\x00\\x01ab\u{e9}\u{ff}]{0,6}"]
}

fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()],
        0..6,
    )
}

fn check_pair<T>(a: &T, b: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + Ord + Debug,
{
    let (ea, eb) = (encode(a).unwrap(), encode(b).unwrap());
    prop_assert_eq!(a.cmp(b), ea.cmp(&eb), "{:?} vs {:?}", a, b);
    prop_assert_eq!(&decode::<T>(&ea).unwrap(), a);
    prop_assert_eq!(&decode::<T>(&eb).unwrap(), b);
    Ok(())
}

proptest! {
    #[test]
    fn prop_u64(a: u64, b: u64) {
        check_pair(&a, &b)?;
    }

    #[test]
    fn prop_i64(a: i64, b: i64) {
        check_pair(&a, &b)?;
    }

    #[test]
    fn prop_string(a in small_string(), b in small_string()) {
        check_pair(&a, &b)?;
    }

    #[test]
    fn prop_byte_seq(a in small_bytes(), b in small_bytes()) {
        check_pair(&a, &b)?;
        check_pair(&Bytes(a), &Bytes(b))?;
    }

    #[test]
    fn prop_string_u32(a in (small_string(), 0u32..4), b in (small_string(), 0u32..4)) {
        check_pair(&a, &b)?;
    }

    #[test]
    fn prop_string_list(
        a in prop::collection::vec(small_string(), 0..4),
        b in prop::collection::vec(small_string(), 0..4),
    ) {
        check_pair(&a, &b)?;
    }

    #[test]
    fn prop_f64_total_order(a: u64, b: u64) {
        let (a, b) = (f64::from_bits(a), f64::from_bits(b));
        let (ea, eb) = (encode(&a).unwrap(), encode(&b).unwrap());
        prop_assert_eq!(a.total_cmp(&b), ea.cmp(&eb));
        prop_assert_eq!(decode::<f64>(&ea).unwrap().to_bits(), a.to_bits());
    }

    #[test]
    fn prop_prefix(a in small_string(), p in small_string(), cut: prop::sample::Index) {
        let ea = encode(&a).unwrap();
        prop_assert_eq!(a.starts_with(&p), ea.starts_with(&encode_prefix(&p).unwrap()));
        let boundaries: Vec<usize> = (0..=a.len()).filter(|&i| a.is_char_boundary(i)).collect();
        let own = a.get(..*cut.get(&boundaries)).unwrap();
        prop_assert!(ea.starts_with(&encode_prefix(own).unwrap()));
    }

    #[test]
    fn prop_btree_map_encoding_unchanged(
        a in prop::collection::btree_map(small_string(), any::<Option<u16>>(), 0..6),
        b in prop::collection::btree_map((0u8..4, small_string()), small_bytes(), 0..6),
    ) {
        let (ea, eb) = (encode(&a).unwrap(), encode(&b).unwrap());
        prop_assert_eq!(&ea, &iteration_order_encoding(&a));
        prop_assert_eq!(&eb, &iteration_order_encoding(&b));
        // And a `HashMap` with the same entries encodes to the same bytes.
        prop_assert_eq!(&ea, &encode(&a.iter().collect::<HashMap<_, _>>()).unwrap());
        prop_assert_eq!(&eb, &encode(&b.iter().collect::<HashMap<_, _>>()).unwrap());
    }

    #[test]
    fn prop_btree_map_order(
        a in prop::collection::btree_map(small_string(), 0u8..3, 0..4),
        b in prop::collection::btree_map(small_string(), 0u8..3, 0..4),
    ) {
        check_pair(&a, &b)?;
        let nest = |m: &BTreeMap<String, u8>| {
            m.iter().map(|(k, &v)| (v, BTreeMap::from([(k.clone(), ())]))).collect::<BTreeMap<_, _>>()
        };
        check_pair(&nest(&a), &nest(&b))?;
    }

    /// Garbage never panics, and whatever decodes is the canonical encoding.
    #[test]
    fn prop_garbage_is_rejected_or_canonical(bytes in prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                0u8, 1, 2, 0xFF, tag::U8, tag::STR, tag::NONE, tag::SOME, tag::SEQ, tag::MAP,
                tag::TUPLE, tag::ENUM, tag::STRUCT,
            ]),
            any::<u8>(),
        ],
        0..24,
    )) {
        let _ = decode::<IgnoredAny>(&bytes);
        if let Ok(v) = decode::<Vec<Option<u8>>>(&bytes) {
            prop_assert_eq!(encode(&v).unwrap(), bytes.clone());
        }
        if let Ok(v) = decode::<(String, bool)>(&bytes) {
            prop_assert_eq!(encode(&v).unwrap(), bytes.clone());
        }
        if let Ok(v) = decode::<Shape>(&bytes) {
            prop_assert_eq!(encode(&v).unwrap(), bytes.clone());
        }
        if let Ok(v) = decode::<BTreeMap<u8, Option<u8>>>(&bytes) {
            prop_assert_eq!(encode(&v).unwrap(), bytes.clone());
        }
    }

    /// Any map bytes (sorted or not, repeated keys or not) decode only if canonical.
    #[test]
    fn prop_map_bytes_decode_only_if_canonical(
        entries in prop::collection::vec((0u8..6, any::<u8>()), 0..6),
    ) {
        let mut bytes = vec![tag::MAP];
        for (k, v) in &entries {
            bytes.extend_from_slice(&[ELEMENT, tag::U8, *k, tag::U8, *v]);
        }
        bytes.push(END);
        let canonical = entries.windows(2).all(|w| matches!(w, [(a, _), (b, _)] if a < b));
        let decoded = decode::<BTreeMap<u8, u8>>(&bytes);
        prop_assert_eq!(decoded.is_ok(), canonical, "{:?}", entries);
        prop_assert_eq!(decode::<IgnoredAny>(&bytes).is_ok(), canonical);
        if let Ok(map) = decoded {
            prop_assert_eq!(encode(&map).unwrap(), bytes);
        }
    }
}

#[test]
fn flattened_structs_are_maps_sorted_by_field_name() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Inner {
        z: u8,
        a: u8,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Outer {
        y: String,
        #[serde(flatten)]
        inner: Inner,
    }
    let value = Outer {
        y: "y".into(),
        inner: Inner { z: 1, a: 2 },
    };
    // serde writes a flattened struct with `serialize_map`: the fields come
    // out sorted by name, not in declaration order, and read back.
    let bytes = encode(&value).unwrap();
    let as_map = BTreeMap::from([
        ("a", Loose::U8(2)),
        ("y", Loose::Str("y".into())),
        ("z", Loose::U8(1)),
    ]);
    assert_eq!(bytes, encode(&as_map).unwrap());
    round_trip(value);

    #[derive(Serialize)]
    #[serde(untagged)]
    enum Loose {
        U8(u8),
        Str(String),
    }
}
