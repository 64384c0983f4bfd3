//! [`KeyValue`]: a key decoded by its type tags alone, without its Rust type, for tools that
//! show keys of any slot (`kv keys`) and take them back as text (`kv get DIR users
//! '("org1", 3u32)'`). It encodes through the codec's own serializer, so its bytes are the
//! typed key's bytes; the text syntax is parsed in [`super::text`].
//!
//! **Fixed-arity values have no length in the key**, so the decoder has to choose where a
//! tuple, a struct or a tuple/struct variant ends: its fields run to the end of the enclosing
//! value (the end of the key, or of a seq element or map entry, which ends before the next
//! `0x00`/`0x01` marker). A tuple nested in a tuple therefore takes the outer tuple's
//! remaining fields (`(("a", 1u8), 2u8)` reads as `(("a", 1u8, 2u8),)`): the same bytes, so
//! the key still round-trips, only grouped differently. Keys this cannot decode (a unit inside
//! a tuple inside a seq, a tuple as a map key) are an error, never a wrong value.

use std::fmt::{self, Write as _};

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

use super::de::Decoder;
use super::float::{f32_from_key, f64_from_key};
use super::{ELEMENT, END, KeyError, Result, kind, tag};

/// A key value of any type, as its type tags describe it. Its [`fmt::Display`] is a Rust-like
/// literal with every integer suffixed by its type (`("org1", 3u32)`), which [`str::parse`]
/// reads back.
///
/// Tuples, structs and tuple/struct variants carry no length in the key, so their fields run
/// to the end of the enclosing value (the key, or a seq element or map entry): a tuple nested
/// in a tuple takes the outer one's remaining fields (`(("a", 1u8), 2u8)` shows as
/// `(("a", 1u8, 2u8),)`, the same bytes grouped differently). The few keys this cannot
/// delimit (a unit field of a tuple inside a seq, a tuple as a map key) are an error, never a
/// wrong value: what [`KeyValue::decode`] accepts encodes back to the same bytes.
///
/// ```
/// use kv_api::keycodec::{self, KeyValue};
/// let bytes = keycodec::encode(&("org1", 3u32)).unwrap();
/// let key = KeyValue::decode(&bytes).unwrap();
/// assert_eq!(key.to_string(), r#"("org1", 3u32)"#);
/// let parsed: KeyValue = r#"("org1", 3u32)"#.parse().unwrap();
/// assert_eq!(parsed.encode().unwrap(), bytes);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    /// `()`.
    Unit,
    /// `true`, `false`.
    Bool(bool),
    /// `3u8`.
    U8(u8),
    /// `3u16`.
    U16(u16),
    /// `3u32`.
    U32(u32),
    /// `3u64`.
    U64(u64),
    /// `3u128`.
    U128(u128),
    /// `-3i8`.
    I8(i8),
    /// `-3i16`.
    I16(i16),
    /// `-3i32`.
    I32(i32),
    /// `-3i64`.
    I64(i64),
    /// `-3i128`.
    I128(i128),
    /// `1.5f32`, `f32::INFINITY`, `f32::from_bits(0x7fc00000)` (NaNs, bit-exact).
    F32(f32),
    /// `1.5f64`, like [`KeyValue::F32`].
    F64(f64),
    /// `'c'`.
    Char(char),
    /// `"text"`, with Rust's escapes.
    Str(String),
    /// `b"bytes\x00"`.
    Bytes(Vec<u8>),
    /// `None`.
    None,
    /// `Some(x)`.
    Some(Box<KeyValue>),
    /// `[a, b]`: a `Vec`, a set.
    Seq(Vec<KeyValue>),
    /// `{k: v}`: entries in any order; encoded sorted.
    Map(Vec<(KeyValue, KeyValue)>),
    /// `(a, b)`, `(a,)`; `(,)` for a tuple of no fields (an empty array).
    Tuple(Vec<KeyValue>),
    /// `struct(a, b)`: a tuple struct (its name is not in the key).
    TupleStruct(Vec<KeyValue>),
    /// `struct{a, b}`: a struct's fields in declaration order (names are not in the key).
    Struct(Vec<KeyValue>),
    /// `struct`: a unit struct.
    UnitStruct,
    /// `newtype(x)`: a newtype struct.
    NewtypeStruct(Box<KeyValue>),
    /// `#2`, `#2(x)`, `#2(a, b)`, `#2{a, b}`: an enum variant by index.
    Variant(u32, Variant),
}

/// The content of an enum variant ([`KeyValue::Variant`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Variant {
    /// `#2`.
    Unit,
    /// `#2(x)`.
    Newtype(Box<KeyValue>),
    /// `#2(a, b)`, `#2(a,)`, `#2()`.
    Tuple(Vec<KeyValue>),
    /// `#2{a, b}`.
    Struct(Vec<KeyValue>),
}

impl KeyValue {
    /// Decodes any key by its type tags. The bytes must hold exactly one key; what
    /// [`KeyValue::decode`] accepts encodes back to the same bytes ([`KeyValue::encode`]).
    pub fn decode(bytes: &[u8]) -> Result<KeyValue> {
        let mut de = Decoder::new(bytes);
        let value = read(&mut de, Region::Whole)?;
        match de.remaining() {
            0 => Ok(value),
            trailing => Err(KeyError(format!("{trailing} trailing bytes after key"))),
        }
    }

    /// The key's bytes, as [`super::encode`] of the typed key gives them.
    pub fn encode(&self) -> Result<Vec<u8>> {
        super::encode(self)
    }
}

/// Where the fields of a fixed-arity value may run to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Region {
    /// The end of the key.
    Whole,
    /// The end of a seq element or map entry: also before an `END` or `ELEMENT` marker.
    Element,
}

fn read(de: &mut Decoder<'_>, region: Region) -> Result<KeyValue> {
    let tag = de.byte()?;
    Ok(match tag {
        tag::UNIT => KeyValue::Unit,
        tag::BOOL => KeyValue::Bool(de.read_bool()?),
        tag::U8 => KeyValue::U8(u8::from_be_bytes(de.array()?)),
        tag::U16 => KeyValue::U16(u16::from_be_bytes(de.array()?)),
        tag::U32 => KeyValue::U32(u32::from_be_bytes(de.array()?)),
        tag::U64 => KeyValue::U64(u64::from_be_bytes(de.array()?)),
        tag::U128 => KeyValue::U128(u128::from_be_bytes(de.array()?)),
        tag::I8 => KeyValue::I8(i8::from_be_bytes(de.array()?) ^ i8::MIN),
        tag::I16 => KeyValue::I16(i16::from_be_bytes(de.array()?) ^ i16::MIN),
        tag::I32 => KeyValue::I32(i32::from_be_bytes(de.array()?) ^ i32::MIN),
        tag::I64 => KeyValue::I64(i64::from_be_bytes(de.array()?) ^ i64::MIN),
        tag::I128 => KeyValue::I128(i128::from_be_bytes(de.array()?) ^ i128::MIN),
        tag::F32 => KeyValue::F32(f32_from_key(u32::from_be_bytes(de.array()?))),
        tag::F64 => KeyValue::F64(f64_from_key(u64::from_be_bytes(de.array()?))),
        tag::CHAR => KeyValue::Char(de.read_char()?),
        tag::STR => KeyValue::Str(
            String::from_utf8(de.read_escaped()?.into_owned())
                .map_err(|_| KeyError::new("invalid UTF-8"))?,
        ),
        tag::BYTES => KeyValue::Bytes(de.read_escaped()?.into_owned()),
        tag::NONE => KeyValue::None,
        tag::SOME => KeyValue::Some(Box::new(de.nested(|de| read(de, region))?)),
        tag::SEQ => KeyValue::Seq(de.nested(|de| {
            let mut elements = Vec::new();
            while marker(de)? {
                elements.push(read(de, Region::Element)?);
            }
            Ok(elements)
        })?),
        tag::MAP => KeyValue::Map(de.nested(|de| {
            let mut entries = Vec::new();
            let mut last: Option<&[u8]> = None;
            loop {
                let before = de.rest();
                if !marker(de)? {
                    return Ok(entries);
                }
                let key = read(de, Region::Element)?;
                // Canonical maps only, as the typed decoder: keys strictly increasing.
                let used = before.len().saturating_sub(de.remaining());
                let encoded = before.get(..used).unwrap_or_default();
                if last.is_some_and(|last| last >= encoded) {
                    return Err(KeyError::new(
                        "map keys not in strictly increasing order (not canonical)",
                    ));
                }
                last = Some(encoded);
                entries.push((key, read(de, Region::Element)?));
            }
        })?),
        tag::TUPLE => KeyValue::Tuple(fields(de, region)?),
        tag::TUPLE_STRUCT => KeyValue::TupleStruct(fields(de, region)?),
        tag::STRUCT => KeyValue::Struct(fields(de, region)?),
        tag::UNIT_STRUCT => KeyValue::UnitStruct,
        tag::NEWTYPE_STRUCT => KeyValue::NewtypeStruct(Box::new(de.nested(|de| read(de, region))?)),
        tag::ENUM => {
            let index = u32::from_be_bytes(de.array()?);
            let content = match de.byte()? {
                kind::UNIT => Variant::Unit,
                kind::NEWTYPE => Variant::Newtype(Box::new(de.nested(|de| read(de, region))?)),
                kind::TUPLE => Variant::Tuple(fields(de, region)?),
                kind::STRUCT => Variant::Struct(fields(de, region)?),
                other => return Err(KeyError(format!("invalid enum variant kind {other}"))),
            };
            KeyValue::Variant(index, content)
        }
        other => return Err(KeyError(format!("unknown type tag {other:#04x}"))),
    })
}

/// Reads a seq or map marker: `true` before an element, `false` at the end.
fn marker(de: &mut Decoder<'_>) -> Result<bool> {
    match de.byte()? {
        ELEMENT => Ok(true),
        END => Ok(false),
        other => Err(KeyError(format!("invalid seq marker {other:#04x}"))),
    }
}

/// The fields of a fixed-arity value: up to the end of `region`.
fn fields(de: &mut Decoder<'_>, region: Region) -> Result<Vec<KeyValue>> {
    de.nested(|de| {
        let mut fields = Vec::new();
        loop {
            match de.rest().first() {
                None => return Ok(fields),
                Some(&(END | ELEMENT)) if region == Region::Element => return Ok(fields),
                Some(_) => fields.push(read(de, region)?),
            }
        }
    })
}

impl Serialize for KeyValue {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        // Names are not in the key: the codec ignores them.
        match self {
            KeyValue::Unit => s.serialize_unit(),
            KeyValue::Bool(v) => s.serialize_bool(*v),
            KeyValue::U8(v) => s.serialize_u8(*v),
            KeyValue::U16(v) => s.serialize_u16(*v),
            KeyValue::U32(v) => s.serialize_u32(*v),
            KeyValue::U64(v) => s.serialize_u64(*v),
            KeyValue::U128(v) => s.serialize_u128(*v),
            KeyValue::I8(v) => s.serialize_i8(*v),
            KeyValue::I16(v) => s.serialize_i16(*v),
            KeyValue::I32(v) => s.serialize_i32(*v),
            KeyValue::I64(v) => s.serialize_i64(*v),
            KeyValue::I128(v) => s.serialize_i128(*v),
            KeyValue::F32(v) => s.serialize_f32(*v),
            KeyValue::F64(v) => s.serialize_f64(*v),
            KeyValue::Char(v) => s.serialize_char(*v),
            KeyValue::Str(v) => s.serialize_str(v),
            KeyValue::Bytes(v) => s.serialize_bytes(v),
            KeyValue::None => s.serialize_none(),
            KeyValue::Some(v) => s.serialize_some(v),
            KeyValue::Seq(elements) => {
                let mut seq = s.serialize_seq(Some(elements.len()))?;
                for element in elements {
                    seq.serialize_element(element)?;
                }
                seq.end()
            }
            KeyValue::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            KeyValue::Tuple(fields) => {
                let mut tuple = s.serialize_tuple(fields.len())?;
                for field in fields {
                    tuple.serialize_element(field)?;
                }
                tuple.end()
            }
            KeyValue::TupleStruct(fields) => {
                let mut tuple = s.serialize_tuple_struct("", fields.len())?;
                for field in fields {
                    tuple.serialize_field(field)?;
                }
                tuple.end()
            }
            KeyValue::Struct(fields) => {
                let mut record = s.serialize_struct("", fields.len())?;
                for field in fields {
                    record.serialize_field("", field)?;
                }
                record.end()
            }
            KeyValue::UnitStruct => s.serialize_unit_struct(""),
            KeyValue::NewtypeStruct(v) => s.serialize_newtype_struct("", v),
            KeyValue::Variant(index, content) => match content {
                Variant::Unit => s.serialize_unit_variant("", *index, ""),
                Variant::Newtype(v) => s.serialize_newtype_variant("", *index, "", v),
                Variant::Tuple(fields) => {
                    let mut tuple = s.serialize_tuple_variant("", *index, "", fields.len())?;
                    for field in fields {
                        tuple.serialize_field(field)?;
                    }
                    tuple.end()
                }
                Variant::Struct(fields) => {
                    let mut record = s.serialize_struct_variant("", *index, "", fields.len())?;
                    for field in fields {
                        record.serialize_field("", field)?;
                    }
                    record.end()
                }
            },
        }
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Unit => f.write_str("()"),
            KeyValue::Bool(v) => write!(f, "{v}"),
            KeyValue::U8(v) => write!(f, "{v}u8"),
            KeyValue::U16(v) => write!(f, "{v}u16"),
            KeyValue::U32(v) => write!(f, "{v}u32"),
            KeyValue::U64(v) => write!(f, "{v}u64"),
            KeyValue::U128(v) => write!(f, "{v}u128"),
            KeyValue::I8(v) => write!(f, "{v}i8"),
            KeyValue::I16(v) => write!(f, "{v}i16"),
            KeyValue::I32(v) => write!(f, "{v}i32"),
            KeyValue::I64(v) => write!(f, "{v}i64"),
            KeyValue::I128(v) => write!(f, "{v}i128"),
            KeyValue::F32(v) => float(f, "f32", v.is_nan(), v.is_infinite(), *v < 0.0, v, || {
                format!("{:#010x}", v.to_bits())
            }),
            KeyValue::F64(v) => float(f, "f64", v.is_nan(), v.is_infinite(), *v < 0.0, v, || {
                format!("{:#018x}", v.to_bits())
            }),
            KeyValue::Char(v) => write!(f, "{v:?}"),
            KeyValue::Str(v) => write!(f, "{v:?}"),
            KeyValue::Bytes(v) => {
                f.write_str("b\"")?;
                for &b in v {
                    // `\0` is the one escape `escape_default` lacks; it keeps keys short.
                    if b == 0 {
                        f.write_str("\\0")?;
                    } else {
                        for c in std::ascii::escape_default(b) {
                            f.write_char(char::from(c))?;
                        }
                    }
                }
                f.write_char('"')
            }
            KeyValue::None => f.write_str("None"),
            KeyValue::Some(v) => write!(f, "Some({v})"),
            KeyValue::Seq(elements) => list(f, "[", elements, "]"),
            KeyValue::Map(entries) => {
                f.write_char('{')?;
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}: {value}")?;
                }
                f.write_char('}')
            }
            KeyValue::Tuple(fields) => match fields.as_slice() {
                [] => f.write_str("(,)"),
                [one] => write!(f, "({one},)"),
                _ => list(f, "(", fields, ")"),
            },
            KeyValue::TupleStruct(fields) => list(f, "struct(", fields, ")"),
            KeyValue::Struct(fields) => list(f, "struct{", fields, "}"),
            KeyValue::UnitStruct => f.write_str("struct"),
            KeyValue::NewtypeStruct(v) => write!(f, "newtype({v})"),
            KeyValue::Variant(index, content) => {
                write!(f, "#{index}")?;
                match content {
                    Variant::Unit => Ok(()),
                    Variant::Newtype(v) => write!(f, "({v})"),
                    // A trailing comma tells a one-field tuple variant from a newtype variant.
                    Variant::Tuple(fields) => match fields.as_slice() {
                        [one] => write!(f, "({one},)"),
                        _ => list(f, "(", fields, ")"),
                    },
                    Variant::Struct(fields) => list(f, "{", fields, "}"),
                }
            }
        }
    }
}

/// A float literal: `1.5f32`, `f32::INFINITY`, `-f32::INFINITY`, or a NaN by its bits (a
/// NaN's payload is part of the key).
fn float(
    f: &mut fmt::Formatter<'_>,
    ty: &str,
    nan: bool,
    infinite: bool,
    negative: bool,
    v: &dyn fmt::Debug,
    bits: impl FnOnce() -> String,
) -> fmt::Result {
    if nan {
        write!(f, "{ty}::from_bits({})", bits())
    } else if infinite {
        write!(f, "{}{ty}::INFINITY", if negative { "-" } else { "" })
    } else {
        // Debug prints the shortest digits that parse back to the same float (`-0.0` too).
        write!(f, "{v:?}{ty}")
    }
}

fn list(f: &mut fmt::Formatter<'_>, open: &str, items: &[KeyValue], close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::Serialize;

    use super::KeyValue;
    use crate::keycodec::encode;

    /// Typed key -> bytes -> `KeyValue` -> text -> `KeyValue` -> the same bytes; returns the text.
    fn round_trip<T: Serialize>(key: &T) -> String {
        let bytes = encode(key).unwrap();
        let value = KeyValue::decode(&bytes).unwrap();
        assert_eq!(value.encode().unwrap(), bytes, "{value:?}");
        let text = value.to_string();
        let parsed: KeyValue = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed.encode().unwrap(), bytes, "{text}");
        text
    }

    /// Any bytes the dynamic decoder accepts encode back to themselves, also through text.
    fn accepted_bytes_round_trip(bytes: &[u8]) {
        if let Ok(value) = KeyValue::decode(bytes) {
            assert_eq!(value.encode().unwrap(), bytes, "{value:?}");
            let text = value.to_string();
            let parsed: KeyValue = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.encode().unwrap(), bytes, "{text}");
        }
    }

    #[derive(Serialize)]
    struct Record {
        table: String,
        id: u64,
    }

    #[derive(Serialize)]
    struct Pair(u8, i8);

    #[derive(Serialize)]
    struct Marker;

    #[derive(Serialize)]
    struct Id(u32);

    #[derive(Serialize)]
    enum Shape {
        Empty,
        Circle(u32),
        Rect(u32, u32),
        One(u8, ()),
        Named { sides: u8 },
    }

    #[test]
    fn shows_keys_as_rust_literals() {
        assert_eq!(round_trip(&("org1", 3u32)), r#"("org1", 3u32)"#);
        assert_eq!(round_trip(&-5i64), "-5i64");
        assert_eq!(round_trip(&u128::MAX), format!("{}u128", u128::MAX));
        assert_eq!(round_trip(&i128::MIN), format!("{}i128", i128::MIN));
        assert_eq!(round_trip(&()), "()");
        assert_eq!(round_trip(&true), "true");
        assert_eq!(round_trip(&'\''), r"'\''");
        assert_eq!(round_trip(&"a\"b\n\0é"), r#""a\"b\n\0é""#);
        assert_eq!(round_trip(&serde_bytes(b"\0a\xff\"")), r#"b"\0a\xff\"""#);
        assert_eq!(round_trip(&Some(1u8)), "Some(1u8)");
        assert_eq!(round_trip(&None::<u8>), "None");
        assert_eq!(round_trip(&vec![1u16, 2]), "[1u16, 2u16]");
        assert_eq!(round_trip(&(7u8,)), "(7u8,)");
        assert_eq!(round_trip(&[0u8; 0]), "(,)");
        assert_eq!(round_trip(&1.5f64), "1.5f64");
        assert_eq!(round_trip(&-0.0f32), "-0.0f32");
        assert_eq!(round_trip(&f64::NEG_INFINITY), "-f64::INFINITY");
        assert_eq!(
            round_trip(&f32::from_bits(0x7fc0_0001)),
            "f32::from_bits(0x7fc00001)"
        );
        assert_eq!(
            round_trip(&BTreeMap::from([("b", 2i32), ("a", 1)])),
            r#"{"a": 1i32, "b": 2i32}"#
        );
        assert_eq!(
            round_trip(&Record {
                table: "t".into(),
                id: 9
            }),
            r#"struct{"t", 9u64}"#
        );
        assert_eq!(round_trip(&Pair(1, -1)), "struct(1u8, -1i8)");
        assert_eq!(round_trip(&Marker), "struct");
        assert_eq!(round_trip(&Id(4)), "newtype(4u32)");
        assert_eq!(round_trip(&Shape::Empty), "#0");
        assert_eq!(round_trip(&Shape::Circle(3)), "#1(3u32)");
        assert_eq!(round_trip(&Shape::Rect(1, 2)), "#2(1u32, 2u32)");
        assert_eq!(round_trip(&Shape::Named { sides: 3 }), "#4{3u8}");
        assert_eq!(
            round_trip(&vec![Shape::Rect(1, 2), Shape::Empty]),
            "[#2(1u32, 2u32), #0]"
        );
        assert_eq!(
            round_trip(&vec![("a", 1u8), ("b", 2u8)]),
            r#"[("a", 1u8), ("b", 2u8)]"#
        );
    }

    fn serde_bytes(bytes: &[u8]) -> impl Serialize + '_ {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        Bytes(bytes)
    }

    #[test]
    fn nested_tuples_keep_their_bytes_but_not_their_grouping() {
        // No lengths in the key: the inner tuple takes the outer one's remaining fields.
        assert_eq!(round_trip(&(("a", 1u8), 2u8)), r#"(("a", 1u8, 2u8),)"#);
        assert_eq!(round_trip(&(1u8, ("a", 2u8))), r#"(1u8, ("a", 2u8))"#);
    }

    #[test]
    fn what_the_tags_cannot_delimit_is_an_error() {
        // A unit field of a tuple in a seq reads as the next element's marker.
        let bytes = encode(&vec![Shape::One(1, ())]).unwrap();
        assert!(KeyValue::decode(&bytes).is_err());
        // A tuple map key runs into its value.
        let bytes = encode(&BTreeMap::from([((1u8, 2u8), 3u8)])).unwrap();
        assert!(KeyValue::decode(&bytes).is_err());
        // Damage and trailing bytes.
        assert!(KeyValue::decode(&[0x12, 0, 0]).is_err());
        assert!(KeyValue::decode(&[0x10, 1, 2]).is_err());
        assert!(KeyValue::decode(&[0xEE]).is_err());
        assert!(KeyValue::decode(&[]).is_err());
        let mut deep = vec![0x31; 10_000];
        deep.push(0x01);
        assert!(KeyValue::decode(&deep).is_err());
    }

    #[test]
    fn the_deepest_keys_that_decode_parse_back() {
        let depth = crate::keycodec::de::MAX_DEPTH;
        for wrap in [vec![0x31], vec![0x40, 0x10, 7]] {
            let mut bytes = wrap.repeat(depth);
            bytes.push(0x01);
            accepted_bytes_round_trip(&bytes);
            assert!(KeyValue::decode(&bytes).is_ok());
            let mut deeper = wrap.repeat(depth + 1);
            deeper.push(0x01);
            assert!(KeyValue::decode(&deeper).is_err());
        }
    }

    #[test]
    fn numbers_without_a_suffix_take_the_shapes_type() {
        let shaped = |text: &str, shape: &str| {
            KeyValue::parse_shaped(text, &shape.parse().unwrap()).and_then(|k| k.encode())
        };
        assert_eq!(
            shaped(r#"("org1", 3)"#, r#"("", 0u32)"#),
            encode(&("org1", 3u32))
        );
        assert_eq!(shaped("[1, -2]", "[0i16]"), encode(&vec![1i16, -2]));
        assert_eq!(
            shaped("Some((1, 2.5))", "Some((0u8, 0.0f64))"),
            encode(&Some((1u8, 2.5f64)))
        );
        assert_eq!(
            shaped("{1: 2}", "{0u64: 0i8}"),
            encode(&BTreeMap::from([(1u64, 2i8)]))
        );
        assert_eq!(shaped("newtype(7)", "newtype(0u16)"), encode(&Pair16(7)));
        // An explicit suffix wins; a shape without a number there helps nothing.
        assert_eq!(shaped("(\"a\", 3u8)", r#"("", 0u32)"#), encode(&("a", 3u8)));
        assert!(shaped("(\"a\", 3)", r#"("", "")"#).is_err());
        assert!(shaped("(\"a\", 300)", r#"("", 0u8)"#).is_err());
        assert!(shaped("3", "()").is_err());
    }

    #[derive(Serialize)]
    struct Pair16(u16);

    #[test]
    fn parses_spacing_escapes_and_reports_bad_text() {
        let key: KeyValue = " ( \"org1\" ,3u32 ) ".parse().unwrap();
        assert_eq!(key.encode().unwrap(), encode(&("org1", 3u32)).unwrap());
        let key: KeyValue = r#"("\u{e9}\x41", 'x', b"\x00\n", 1_000u32, 1e3f64)"#
            .parse()
            .unwrap();
        assert_eq!(
            key.encode().unwrap(),
            encode(&("éA", 'x', serde_bytes(b"\0\n"), 1000u32, 1000.0f64)).unwrap()
        );
        let key: KeyValue = r#"{"b": 2i32, "a": 1i32}"#.parse().unwrap();
        assert_eq!(
            key.encode().unwrap(),
            encode(&BTreeMap::from([("a", 1i32), ("b", 2)])).unwrap()
        );
        for bad in [
            "3",
            "300u8",
            "-1u32",
            "(1u8)",
            "(1u8, 2u8",
            "\"open",
            "'ab'",
            "b\"é\"",
            "\"\\x80\"",
            "\"\\q\"",
            "#x",
            "1u8 2u8",
            "users",
            "",
            "{1u8: 1u8, 1u8: 2u8}",
        ] {
            let parsed = bad.parse::<KeyValue>().and_then(|k| k.encode());
            assert!(parsed.is_err(), "{bad:?} parsed as {parsed:?}");
        }
        let deep = format!("{}1u8{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(deep.parse::<KeyValue>().is_err());
    }

    proptest! {
        #[test]
        fn typed_keys_round_trip_through_text(
            s in ".{0,8}",
            n in any::<u32>(),
            i in any::<i64>(),
            f in any::<u32>().prop_map(f32::from_bits),
            d in any::<u64>().prop_map(f64::from_bits),
            c in any::<char>(),
            bytes in proptest::collection::vec(any::<u8>(), 0..8),
            list in proptest::collection::vec((any::<u8>(), ".{0,3}"), 0..4),
            map in proptest::collection::btree_map(".{0,3}", any::<i16>(), 0..4),
            o in proptest::option::of(any::<u128>()),
        ) {
            round_trip(&(s.as_str(), n));
            round_trip(&(i, f, d, c));
            round_trip(&(serde_bytes(&bytes), &list, o));
            round_trip(&(map, Shape::Rect(n, 1), Some(Shape::Circle(n))));
            round_trip(&vec![Shape::Named { sides: 1 }, Shape::Empty]);
        }

        #[test]
        fn any_accepted_bytes_round_trip(bytes in proptest::collection::vec(
            prop_oneof![Just(0u8), Just(1), Just(0x10), Just(0x29), Just(0x38), Just(0x40),
                Just(0x31), Just(0x39), Just(0x48), any::<u8>()],
            0..24,
        )) {
            accepted_bytes_round_trip(&bytes);
        }
    }
}
