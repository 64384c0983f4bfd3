//! Order-preserving, self-describing (type-tagged) serde encoding for keys.
//!
//! The store keeps keys sorted by their raw bytes. This codec maps any
//! `serde::Serialize` key to bytes such that, for two values of the same Rust
//! type, comparing the encodings byte-wise gives the same result as comparing
//! the values (`Ord`, or `derive(Ord)` for structs and enums). Typed range
//! scans therefore follow the type's natural order. Every value also starts
//! with a one-byte type tag, so keys of different types (say `3u8`, `3u16`,
//! `"3"` and `()`) never encode to the same bytes. The layout follows the
//! FoundationDB tuple layer.
//!
//! | tag    | type                      | body after the tag                               |
//! |--------|---------------------------|--------------------------------------------------|
//! | `0x01` | unit `()`                 | nothing                                          |
//! | `0x02` | bool                      | `0x00` or `0x01`                                 |
//! | `0x10`..`0x14` | u8, u16, u32, u64, u128 | fixed width, big-endian                    |
//! | `0x18`..`0x1C` | i8, i16, i32, i64, i128 | fixed width, big-endian, sign bit flipped  |
//! | `0x20`, `0x21` | f32, f64          | IEEE bits, big-endian; negative: all bits inverted, else sign bit flipped |
//! | `0x28` | char                      | code point as u32, big-endian                    |
//! | `0x29` | `str` / `String`          | escaped bytes + terminator (see below)           |
//! | `0x2A` | bytes (`serialize_bytes`) | escaped bytes + terminator                       |
//! | `0x30` | `None`                    | nothing                                          |
//! | `0x31` | `Some`                    | the value                                        |
//! | `0x38` | seq (`Vec<T>`, sets)      | per element `0x01` + element, then `0x00`        |
//! | `0x39` | map                       | per entry `0x01` + key + value, sorted by encoded key, then `0x00` |
//! | `0x40` | tuple, array              | the fields, concatenated                         |
//! | `0x41` | tuple struct              | the fields, concatenated                         |
//! | `0x42` | struct                    | the fields in declaration order, concatenated    |
//! | `0x43` | unit struct               | nothing                                          |
//! | `0x44` | newtype struct            | the inner value                                  |
//! | `0x48` | enum variant              | variant index (u32 BE) + kind byte + content     |
//!
//! * Strings and byte strings escape `0x00` as `0x00 0xFF` and end with the
//!   terminator `0x00 0x01`. The terminator sorts below every content byte,
//!   so `"" < "\0" < "a" < "ab" < "b"`, and the escaped body of a prefix is a
//!   byte prefix of the escaped body of the whole string (see
//!   [`encode_prefix`]).
//! * Seq elements are each preceded by `0x01` and the seq is closed by
//!   `0x00`, so `[1] < [1, 2] < [2]`.
//! * Map entries are written sorted by their encoded keys, whatever order the
//!   map iterates in, so a `HashMap` has one encoding. (This is the only
//!   place the encoder buffers: each entry is encoded into a scratch buffer,
//!   the entries sorted, then copied out.) The codec is order-preserving, so
//!   for a `BTreeMap` that is its own order, and maps of one type compare as
//!   the sorted sequences of their entries, like `BTreeMap`'s `Ord`. Other
//!   things serde serializes as maps, such as structs with a
//!   `#[serde(flatten)]` field, have their fields sorted by name too: they
//!   still round-trip, but their byte order is not `derive(Ord)`'s.
//! * Fixed-arity values (tuples, structs, tuple and struct variants) carry no
//!   length: they order field by field like `derive(Ord)`, and the encoding
//!   of a tuple is a byte prefix of the encoding of any longer tuple with the
//!   same leading fields, so `encode(&("users",))` selects the `("users", ..)`
//!   sub-space. Fields are positional: `skip_serializing_if` breaks decoding.
//! * Enum content: a kind byte (`0` unit, `1` newtype, `2` tuple, `3` struct
//!   variant), then the newtype value or the tuple/struct fields. Variants
//!   order by index, then content, like `derive(Ord)`; the kind byte is fixed
//!   per variant, so it does not affect order.
//!
//! Decoding is strict: the requested type must match the tag (decoding a
//! `u16` from a `u8` key is an error), all input must be consumed, and only
//! canonical encodings are accepted (map keys must be strictly increasing:
//! entries out of order or repeated are an error), so each value has exactly
//! one encoding, with the exception of sets below. Malformed or truncated
//! input yields a [`KeyError`], never a panic.
//! `deserialize_any` (used by `#[serde(untagged)]`, `IgnoredAny`, ...) reads
//! the tag and handles every value except fixed-arity ones, whose length only
//! the type knows: tuples, structs and tuple/struct variants are an error
//! there.
//! [`KeyValue`] decodes any key without its type, by its tags, choosing where
//! fixed-arity values end (see its docs), and reads keys back from text such as
//! `("org1", 3u32)`: how the `kv-db` tool shows and takes keys.
//!
//! **Sets are sequences.** serde serializes `HashSet` and `BTreeSet` with
//! `serialize_seq`, exactly like a `Vec`, so the codec cannot tell a set from
//! a list, and must keep a list's element order (it is the list's value).
//! Hence:
//! * a `BTreeSet` encodes canonically (sorted, which is also its `Ord`), but
//!   decoding accepts its elements in any order and repeated, so other byte
//!   strings than the canonical one decode to it too (the encoder never
//!   writes them);
//! * a `HashSet` encodes in its iteration order, which differs between sets
//!   with the same elements: **do not use a `HashSet` in a key** (a lookup
//!   with an equal set can encode differently and silently miss). Use a
//!   `BTreeSet`, a sorted `Vec`, or a `HashMap<T, ()>` / `BTreeMap<T, ()>`,
//!   which are maps and so canonical.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

// One job a file: this module holds the format's tags and markers, the error
// type and the public entry points; `ser` and `de` are the serde Serializer and
// Deserializer; `escape` (string byte-stuffing) and `float` (order-preserving
// float bits) are the body encodings both of them share; `value` decodes a key without its
// type ([`KeyValue`], for tools) and `text` parses its literal syntax.
mod de;
mod escape;
mod float;
mod ser;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod text;
mod value;

use self::de::Decoder;
use self::ser::Encoder;
pub use self::value::{KeyValue, Variant};

/// One-byte type tags.
mod tag {
    pub const UNIT: u8 = 0x01;
    pub const BOOL: u8 = 0x02;
    pub const U8: u8 = 0x10;
    pub const U16: u8 = 0x11;
    pub const U32: u8 = 0x12;
    pub const U64: u8 = 0x13;
    pub const U128: u8 = 0x14;
    pub const I8: u8 = 0x18;
    pub const I16: u8 = 0x19;
    pub const I32: u8 = 0x1A;
    pub const I64: u8 = 0x1B;
    pub const I128: u8 = 0x1C;
    pub const F32: u8 = 0x20;
    pub const F64: u8 = 0x21;
    pub const CHAR: u8 = 0x28;
    pub const STR: u8 = 0x29;
    pub const BYTES: u8 = 0x2A;
    pub const NONE: u8 = 0x30;
    pub const SOME: u8 = 0x31;
    pub const SEQ: u8 = 0x38;
    pub const MAP: u8 = 0x39;
    pub const TUPLE: u8 = 0x40;
    pub const TUPLE_STRUCT: u8 = 0x41;
    pub const STRUCT: u8 = 0x42;
    pub const UNIT_STRUCT: u8 = 0x43;
    pub const NEWTYPE_STRUCT: u8 = 0x44;
    pub const ENUM: u8 = 0x48;

    /// Human-readable name of a tag, for error messages.
    pub fn name(tag: u8) -> &'static str {
        match tag {
            UNIT => "unit",
            BOOL => "bool",
            U8 => "u8",
            U16 => "u16",
            U32 => "u32",
            U64 => "u64",
            U128 => "u128",
            I8 => "i8",
            I16 => "i16",
            I32 => "i32",
            I64 => "i64",
            I128 => "i128",
            F32 => "f32",
            F64 => "f64",
            CHAR => "char",
            STR => "str",
            BYTES => "bytes",
            NONE => "none",
            SOME => "some",
            SEQ => "seq",
            MAP => "map",
            TUPLE => "tuple",
            TUPLE_STRUCT => "tuple struct",
            STRUCT => "struct",
            UNIT_STRUCT => "unit struct",
            NEWTYPE_STRUCT => "newtype struct",
            ENUM => "enum",
            _ => "unknown",
        }
    }
}

/// Kind byte written after an enum variant's index.
mod kind {
    pub const UNIT: u8 = 0;
    pub const NEWTYPE: u8 = 1;
    pub const TUPLE: u8 = 2;
    pub const STRUCT: u8 = 3;
}

/// Marker before each element of a seq or entry of a map.
const ELEMENT: u8 = 0x01;
/// Closes a seq or a map; sorts below [`ELEMENT`], so shorter seqs sort first.
const END: u8 = 0x00;

/// Error of the key codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(String);

impl KeyError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    fn eof() -> Self {
        Self::new("unexpected end of key")
    }

    fn mismatch(expected: u8, found: u8) -> Self {
        Self(format!(
            "type mismatch: expected {} (tag {expected:#04x}), found {} (tag {found:#04x})",
            tag::name(expected),
            tag::name(found),
        ))
    }

    /// The error message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key codec: {}", self.0)
    }
}

impl std::error::Error for KeyError {}

impl serde::ser::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

impl serde::de::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

type Result<T, E = KeyError> = std::result::Result<T, E>;

/// Encodes `key` into a new buffer.
pub fn encode<K: Serialize + ?Sized>(key: &K) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::new();
    encode_into(key, &mut out)?;
    Ok(out)
}

/// Appends the encoding of `key` to `out`. On error `out` is left unchanged.
pub fn encode_into<K: Serialize + ?Sized>(key: &K, out: &mut Vec<u8>) -> Result<(), KeyError> {
    let start = out.len();
    let result = key.serialize(&mut Encoder::new(out));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Encoding of `key` usable as a byte prefix for range scans.
///
/// Like [`encode`], but if the encoding ends with a string/bytes terminator or
/// a seq/map terminator, that terminator is removed. So `encode_prefix(&"ab")`
/// is a byte prefix of `encode(&"ab")` and `encode(&"abc")` but not of
/// `encode(&"b")`, and `encode_prefix(&("users", "ab"))` selects the keys
/// `("users", s)` whose `s` starts with `"ab"`. Other encodings are returned
/// unchanged. (To select a tuple sub-space such as all `("users", ..)`, use
/// [`encode`] of the shorter tuple `("users",)`.)
pub fn encode_prefix<K: Serialize + ?Sized>(key: &K) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(&mut out);
    key.serialize(&mut encoder)?;
    if let Some((start, end)) = encoder.terminator
        && end == out.len()
    {
        out.truncate(start);
    }
    Ok(out)
}

/// Decodes a key of type `K`. The bytes must hold exactly one encoded `K`.
pub fn decode<K: DeserializeOwned>(bytes: &[u8]) -> Result<K, KeyError> {
    let mut decoder = Decoder::new(bytes);
    let value = K::deserialize(&mut decoder)?;
    match decoder.remaining() {
        0 => Ok(value),
        trailing => Err(KeyError(format!("{trailing} trailing bytes after key"))),
    }
}
