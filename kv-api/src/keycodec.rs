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
//! | `0x39` | map                       | per entry `0x01` + key + value, then `0x00`      |
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
//! canonical encodings are accepted, so each value has exactly one encoding.
//! Malformed or truncated input yields a [`KeyError`], never a panic.
//! `deserialize_any` (used by `#[serde(untagged)]`, `IgnoredAny`, ...) reads
//! the tag and handles every value except fixed-arity ones, whose length only
//! the type knows: tuples, structs and tuple/struct variants are an error
//! there.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

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
/// Escaped form of a `0x00` byte inside a string or byte string.
const ESCAPED_ZERO: [u8; 2] = [0x00, 0xFF];
/// Terminator of a string or byte string; sorts below any content byte.
const STRING_END: [u8; 2] = [0x00, 0x01];
/// Nesting limit while decoding, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

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

impl ser::Error for KeyError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

impl de::Error for KeyError {
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
    let mut decoder = Decoder {
        input: bytes,
        depth: 0,
    };
    let value = K::deserialize(&mut decoder)?;
    if decoder.input.is_empty() {
        Ok(value)
    } else {
        Err(KeyError(format!(
            "{} trailing bytes after key",
            decoder.input.len()
        )))
    }
}

fn not_self_delimiting(what: &str) -> KeyError {
    KeyError(format!(
        "a {what} has no length in the key: decode it with its concrete type, not deserialize_any"
    ))
}

fn f32_to_key(value: f32) -> u32 {
    const SIGN: u32 = 1 << 31;
    let bits = value.to_bits();
    if bits & SIGN != 0 { !bits } else { bits ^ SIGN }
}

fn f32_from_key(key: u32) -> f32 {
    const SIGN: u32 = 1 << 31;
    f32::from_bits(if key & SIGN != 0 { key ^ SIGN } else { !key })
}

fn f64_to_key(value: f64) -> u64 {
    const SIGN: u64 = 1 << 63;
    let bits = value.to_bits();
    if bits & SIGN != 0 { !bits } else { bits ^ SIGN }
}

fn f64_from_key(key: u64) -> f64 {
    const SIGN: u64 = 1 << 63;
    f64::from_bits(if key & SIGN != 0 { key ^ SIGN } else { !key })
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

struct Encoder<'o> {
    out: &'o mut Vec<u8>,
    /// Byte range of the last string or seq terminator written, for
    /// [`encode_prefix`].
    terminator: Option<(usize, usize)>,
}

impl<'o> Encoder<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        Self {
            out,
            terminator: None,
        }
    }

    fn put(&mut self, tag: u8, body: &[u8]) -> Result<()> {
        self.out.push(tag);
        self.out.extend_from_slice(body);
        Ok(())
    }

    fn put_escaped(&mut self, tag: u8, bytes: &[u8]) -> Result<()> {
        self.out.push(tag);
        let mut chunks = bytes.split(|&b| b == 0);
        if let Some(first) = chunks.next() {
            self.out.extend_from_slice(first);
        }
        for chunk in chunks {
            self.out.extend_from_slice(&ESCAPED_ZERO);
            self.out.extend_from_slice(chunk);
        }
        self.terminate(&STRING_END)
    }

    fn terminate(&mut self, terminator: &[u8]) -> Result<()> {
        let start = self.out.len();
        self.out.extend_from_slice(terminator);
        self.terminator = Some((start, self.out.len()));
        Ok(())
    }

    fn put_variant(&mut self, index: u32, kind: u8) {
        self.out.push(tag::ENUM);
        self.out.extend_from_slice(&index.to_be_bytes());
        self.out.push(kind);
    }
}

/// Serializer state for compound values.
struct Compound<'s, 'o> {
    encoder: &'s mut Encoder<'o>,
    /// Fields still to come for fixed-arity values; `None` for seqs and maps.
    remaining: Option<usize>,
}

impl<'s, 'o> Compound<'s, 'o> {
    fn open(encoder: &'s mut Encoder<'o>) -> Self {
        Self {
            encoder,
            remaining: None,
        }
    }

    fn fixed(encoder: &'s mut Encoder<'o>, len: usize) -> Self {
        Self {
            encoder,
            remaining: Some(len),
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        match &mut self.remaining {
            None => self.encoder.out.push(ELEMENT),
            Some(0) => return Err(KeyError::new("more fields serialized than declared")),
            Some(n) => *n -= 1,
        }
        value.serialize(&mut *self.encoder)
    }

    fn finish(self) -> Result<()> {
        match self.remaining {
            None => self.encoder.terminate(&[END]),
            Some(0) => Ok(()),
            Some(n) => Err(KeyError(format!("{n} declared fields not serialized"))),
        }
    }
}

macro_rules! serialize_fixed {
    ($($method:ident($ty:ty) => $tag:ident, |$v:ident| $body:expr;)*) => {$(
        fn $method(self, $v: $ty) -> Result<()> {
            self.put(tag::$tag, &$body.to_be_bytes())
        }
    )*};
}

impl<'s, 'o> ser::Serializer for &'s mut Encoder<'o> {
    type Ok = ();
    type Error = KeyError;
    type SerializeSeq = Compound<'s, 'o>;
    type SerializeTuple = Compound<'s, 'o>;
    type SerializeTupleStruct = Compound<'s, 'o>;
    type SerializeTupleVariant = Compound<'s, 'o>;
    type SerializeMap = Compound<'s, 'o>;
    type SerializeStruct = Compound<'s, 'o>;
    type SerializeStructVariant = Compound<'s, 'o>;

    fn is_human_readable(&self) -> bool {
        false
    }

    serialize_fixed! {
        serialize_bool(bool) => BOOL, |v| u8::from(v);
        serialize_u8(u8) => U8, |v| v;
        serialize_u16(u16) => U16, |v| v;
        serialize_u32(u32) => U32, |v| v;
        serialize_u64(u64) => U64, |v| v;
        serialize_u128(u128) => U128, |v| v;
        serialize_i8(i8) => I8, |v| v ^ i8::MIN;
        serialize_i16(i16) => I16, |v| v ^ i16::MIN;
        serialize_i32(i32) => I32, |v| v ^ i32::MIN;
        serialize_i64(i64) => I64, |v| v ^ i64::MIN;
        serialize_i128(i128) => I128, |v| v ^ i128::MIN;
        serialize_f32(f32) => F32, |v| f32_to_key(v);
        serialize_f64(f64) => F64, |v| f64_to_key(v);
        serialize_char(char) => CHAR, |v| u32::from(v);
    }

    fn serialize_str(self, v: &str) -> Result<()> {
        self.put_escaped(tag::STR, v.as_bytes())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.put_escaped(tag::BYTES, v)
    }

    fn serialize_none(self) -> Result<()> {
        self.put(tag::NONE, &[])
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.put(tag::SOME, &[])?;
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<()> {
        self.put(tag::UNIT, &[])
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.put(tag::UNIT_STRUCT, &[])
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _: &'static str,
    ) -> Result<()> {
        self.put_variant(index, kind::UNIT);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        self.put(tag::NEWTYPE_STRUCT, &[])?;
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.put_variant(index, kind::NEWTYPE);
        value.serialize(self)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'s, 'o>> {
        self.out.push(tag::SEQ);
        Ok(Compound::open(self))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'s, 'o>> {
        self.out.push(tag::TUPLE);
        Ok(Compound::fixed(self, len))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'s, 'o>> {
        self.out.push(tag::TUPLE_STRUCT);
        Ok(Compound::fixed(self, len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'o>> {
        self.put_variant(index, kind::TUPLE);
        Ok(Compound::fixed(self, len))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'s, 'o>> {
        self.out.push(tag::MAP);
        Ok(Compound::open(self))
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'s, 'o>> {
        self.out.push(tag::STRUCT);
        Ok(Compound::fixed(self, len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        len: usize,
    ) -> Result<Compound<'s, 'o>> {
        self.put_variant(index, kind::STRUCT);
        Ok(Compound::fixed(self, len))
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.element(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        value.serialize(&mut *self.encoder)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.element(value)
    }

    fn end(self) -> Result<()> {
        self.finish()
    }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

struct Decoder<'de> {
    input: &'de [u8],
    depth: usize,
}

impl<'de> Decoder<'de> {
    fn byte(&mut self) -> Result<u8> {
        let (&byte, rest) = self.input.split_first().ok_or_else(KeyError::eof)?;
        self.input = rest;
        Ok(byte)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let (head, rest) = self
            .input
            .split_first_chunk::<N>()
            .ok_or_else(KeyError::eof)?;
        self.input = rest;
        Ok(*head)
    }

    fn expect(&mut self, expected: u8) -> Result<()> {
        match self.byte()? {
            found if found == expected => Ok(()),
            found => Err(KeyError::mismatch(expected, found)),
        }
    }

    fn expect_kind(&mut self, expected: u8) -> Result<()> {
        match self.byte()? {
            found if found == expected => Ok(()),
            found => Err(KeyError(format!(
                "enum variant kind mismatch: expected {expected}, found {found}"
            ))),
        }
    }

    fn read_bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(KeyError(format!("invalid bool byte {other:#04x}"))),
        }
    }

    fn read_char(&mut self) -> Result<char> {
        let code = u32::from_be_bytes(self.array()?);
        char::from_u32(code).ok_or_else(|| KeyError(format!("invalid char {code:#x}")))
    }

    /// Reads an escaped string body and its terminator. Borrows from the
    /// input when the body contains no escapes.
    fn read_escaped(&mut self) -> Result<Cow<'de, [u8]>> {
        let mut rest = self.input;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            let zero = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(KeyError::eof)?;
            let (chunk, marker) = rest.split_at(zero);
            if let Some(tail) = marker.strip_prefix(&STRING_END) {
                self.input = tail;
                return Ok(match owned {
                    None => Cow::Borrowed(chunk),
                    Some(mut buf) => {
                        buf.extend_from_slice(chunk);
                        Cow::Owned(buf)
                    }
                });
            }
            let Some(tail) = marker.strip_prefix(&ESCAPED_ZERO) else {
                return Err(if marker.len() < 2 {
                    KeyError::eof()
                } else {
                    KeyError::new("invalid escape in string")
                });
            };
            let buf = owned.get_or_insert_with(Vec::new);
            buf.extend_from_slice(chunk);
            buf.push(0);
            rest = tail;
        }
    }

    /// Runs `f` one nesting level deeper, failing past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(KeyError::new("key nested too deeply"));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// Hands the `len` fields of a fixed-arity value to `visitor` as a seq.
    fn fixed_body<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(FixedSeq { de, remaining: len }))
    }

    /// Decodes the body of a value whose tag was just read, as its own type.
    fn visit_tagged<V: Visitor<'de>>(&mut self, tag: u8, visitor: V) -> Result<V::Value> {
        match tag {
            tag::UNIT | tag::UNIT_STRUCT => visitor.visit_unit(),
            tag::BOOL => visitor.visit_bool(self.read_bool()?),
            tag::U8 => visitor.visit_u8(u8::from_be_bytes(self.array()?)),
            tag::U16 => visitor.visit_u16(u16::from_be_bytes(self.array()?)),
            tag::U32 => visitor.visit_u32(u32::from_be_bytes(self.array()?)),
            tag::U64 => visitor.visit_u64(u64::from_be_bytes(self.array()?)),
            tag::U128 => visitor.visit_u128(u128::from_be_bytes(self.array()?)),
            tag::I8 => visitor.visit_i8(i8::from_be_bytes(self.array()?) ^ i8::MIN),
            tag::I16 => visitor.visit_i16(i16::from_be_bytes(self.array()?) ^ i16::MIN),
            tag::I32 => visitor.visit_i32(i32::from_be_bytes(self.array()?) ^ i32::MIN),
            tag::I64 => visitor.visit_i64(i64::from_be_bytes(self.array()?) ^ i64::MIN),
            tag::I128 => visitor.visit_i128(i128::from_be_bytes(self.array()?) ^ i128::MIN),
            tag::F32 => visitor.visit_f32(f32_from_key(u32::from_be_bytes(self.array()?))),
            tag::F64 => visitor.visit_f64(f64_from_key(u64::from_be_bytes(self.array()?))),
            tag::CHAR => visitor.visit_char(self.read_char()?),
            tag::STR => match self.read_escaped()? {
                Cow::Borrowed(bytes) => visitor.visit_borrowed_str(
                    std::str::from_utf8(bytes).map_err(|_| KeyError::new("invalid UTF-8"))?,
                ),
                Cow::Owned(bytes) => visitor.visit_string(
                    String::from_utf8(bytes).map_err(|_| KeyError::new("invalid UTF-8"))?,
                ),
            },
            tag::BYTES => match self.read_escaped()? {
                Cow::Borrowed(bytes) => visitor.visit_borrowed_bytes(bytes),
                Cow::Owned(bytes) => visitor.visit_byte_buf(bytes),
            },
            tag::NONE => visitor.visit_none(),
            tag::SOME => self.nested(|de| visitor.visit_some(de)),
            tag::SEQ => self.nested(|de| visitor.visit_seq(OpenSeq { de })),
            tag::MAP => self.nested(|de| visitor.visit_map(OpenSeq { de })),
            tag::TUPLE | tag::TUPLE_STRUCT | tag::STRUCT => {
                Err(not_self_delimiting(tag::name(tag)))
            }
            tag::NEWTYPE_STRUCT => self.nested(|de| visitor.visit_newtype_struct(de)),
            // Without the type at hand an enum is presented like serde_json
            // does: a one-entry map from variant index to content.
            tag::ENUM => {
                let index = u32::from_be_bytes(self.array()?);
                let newtype = match self.byte()? {
                    kind::UNIT => false,
                    kind::NEWTYPE => true,
                    kind::TUPLE | kind::STRUCT => {
                        return Err(not_self_delimiting("tuple or struct variant"));
                    }
                    other => return Err(KeyError(format!("invalid enum variant kind {other}"))),
                };
                self.nested(|de| {
                    visitor.visit_map(EnumAsMap {
                        de,
                        index: Some(index),
                        newtype,
                    })
                })
            }
            other => Err(KeyError(format!("unknown type tag {other:#04x}"))),
        }
    }
}

macro_rules! deserialize_tagged {
    ($($method:ident => $tag:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.expect(tag::$tag)?;
            self.visit_tagged(tag::$tag, visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = KeyError;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let tag = self.byte()?;
        self.visit_tagged(tag, visitor)
    }

    deserialize_tagged! {
        deserialize_bool => BOOL,
        deserialize_u8 => U8,
        deserialize_u16 => U16,
        deserialize_u32 => U32,
        deserialize_u64 => U64,
        deserialize_u128 => U128,
        deserialize_i8 => I8,
        deserialize_i16 => I16,
        deserialize_i32 => I32,
        deserialize_i64 => I64,
        deserialize_i128 => I128,
        deserialize_f32 => F32,
        deserialize_f64 => F64,
        deserialize_char => CHAR,
        deserialize_str => STR,
        deserialize_string => STR,
        deserialize_bytes => BYTES,
        deserialize_byte_buf => BYTES,
        deserialize_unit => UNIT,
        deserialize_seq => SEQ,
        deserialize_map => MAP,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            tag @ (tag::NONE | tag::SOME) => self.visit_tagged(tag, visitor),
            found => Err(KeyError::mismatch(tag::NONE, found)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.expect(tag::UNIT_STRUCT)?;
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.expect(tag::NEWTYPE_STRUCT)?;
        self.nested(|de| visitor.visit_newtype_struct(de))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.expect(tag::TUPLE)?;
        self.fixed_body(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.expect(tag::TUPLE_STRUCT)?;
        self.fixed_body(len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.expect(tag::STRUCT)?;
        self.fixed_body(fields.len(), visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.expect(tag::ENUM)?;
        self.nested(|de| visitor.visit_enum(EnumReader { de }))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }
}

/// Elements of a seq or entries of a map: marker-prefixed, `END`-terminated.
struct OpenSeq<'a, 'de> {
    de: &'a mut Decoder<'de>,
}

impl OpenSeq<'_, '_> {
    fn has_next(&mut self) -> Result<bool> {
        match self.de.byte()? {
            ELEMENT => Ok(true),
            END => Ok(false),
            other => Err(KeyError(format!("invalid seq marker {other:#04x}"))),
        }
    }
}

impl<'de> de::SeqAccess<'de> for OpenSeq<'_, 'de> {
    type Error = KeyError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.has_next()? {
            seed.deserialize(&mut *self.de).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl<'de> de::MapAccess<'de> for OpenSeq<'_, 'de> {
    type Error = KeyError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.has_next()? {
            seed.deserialize(&mut *self.de).map(Some)
        } else {
            Ok(None)
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.de)
    }
}

/// Fields of a tuple, struct or variant, with a known count.
struct FixedSeq<'a, 'de> {
    de: &'a mut Decoder<'de>,
    remaining: usize,
}

impl<'de> de::SeqAccess<'de> for FixedSeq<'_, 'de> {
    type Error = KeyError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

/// Typed enum access: the tag was read, the variant index comes next.
struct EnumReader<'a, 'de> {
    de: &'a mut Decoder<'de>,
}

impl<'de> de::EnumAccess<'de> for EnumReader<'_, 'de> {
    type Error = KeyError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let index = u32::from_be_bytes(self.de.array()?);
        let variant = seed.deserialize(IntoDeserializer::<KeyError>::into_deserializer(index))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumReader<'_, 'de> {
    type Error = KeyError;

    fn unit_variant(self) -> Result<()> {
        self.de.expect_kind(kind::UNIT)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        self.de.expect_kind(kind::NEWTYPE)?;
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.de.expect_kind(kind::TUPLE)?;
        self.de.fixed_body(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.de.expect_kind(kind::STRUCT)?;
        self.de.fixed_body(fields.len(), visitor)
    }
}

/// Untyped access to a unit or newtype variant (`deserialize_any`), as the
/// map `{ variant index: content }`.
struct EnumAsMap<'a, 'de> {
    de: &'a mut Decoder<'de>,
    /// The variant index, until the key has been handed out.
    index: Option<u32>,
    /// Newtype variant (content follows) rather than unit variant.
    newtype: bool,
}

impl<'de> de::MapAccess<'de> for EnumAsMap<'_, 'de> {
    type Error = KeyError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.index.take() {
            // As u64: serde's buffered `Content` only takes u8/u64/str
            // identifiers (untagged enums holding an enum need this).
            Some(index) => seed
                .deserialize(IntoDeserializer::<KeyError>::into_deserializer(u64::from(
                    index,
                )))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        if self.newtype {
            seed.deserialize(&mut *self.de)
        } else {
            seed.deserialize(IntoDeserializer::<KeyError>::into_deserializer(()))
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(usize::from(self.index.is_some()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IgnoredAny;
    use serde::{Deserialize, Serialize};
    use std::collections::{BTreeMap, HashSet};
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

        /// Garbage never panics, and whatever decodes is the canonical encoding.
        #[test]
        fn prop_garbage_is_rejected_or_canonical(bytes in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    0u8, 1, 2, 0xFF, tag::U8, tag::STR, tag::NONE, tag::SOME, tag::SEQ,
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
        }
    }
}
