//! The serde `Deserializer`: reads tag bytes and bodies back, strictly (the
//! requested type must match the tag, only canonical encodings are accepted)
//! and with a nesting limit. [`Decoder`] reads scalars and dispatches on tags;
//! the access types below hand seqs, maps, fixed-arity values and enums to
//! serde visitors.

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::float::{f32_from_key, f64_from_key};
use super::{ELEMENT, END, KeyError, Result, escape, kind, tag};

/// Nesting limit while decoding, so hostile input cannot overflow the stack.
pub(super) const MAX_DEPTH: usize = 128;

fn not_self_delimiting(what: &str) -> KeyError {
    KeyError(format!(
        "a {what} has no length in the key: decode it with its concrete type, not deserialize_any"
    ))
}

/// Deserializer reading from the front of `input`.
pub(super) struct Decoder<'de> {
    input: &'de [u8],
    depth: usize,
}

impl<'de> Decoder<'de> {
    pub(super) fn new(input: &'de [u8]) -> Self {
        Self { input, depth: 0 }
    }

    /// Number of input bytes not consumed yet.
    pub(super) fn remaining(&self) -> usize {
        self.input.len()
    }

    /// The input not consumed yet.
    pub(super) fn rest(&self) -> &'de [u8] {
        self.input
    }

    pub(super) fn byte(&mut self) -> Result<u8> {
        let (&byte, rest) = self.input.split_first().ok_or_else(KeyError::eof)?;
        self.input = rest;
        Ok(byte)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
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

    pub(super) fn read_bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(KeyError(format!("invalid bool byte {other:#04x}"))),
        }
    }

    pub(super) fn read_char(&mut self) -> Result<char> {
        let code = u32::from_be_bytes(self.array()?);
        char::from_u32(code).ok_or_else(|| KeyError(format!("invalid char {code:#x}")))
    }

    /// Reads an escaped string body and its terminator. Borrows from the
    /// input when the body contains no escapes.
    pub(super) fn read_escaped(&mut self) -> Result<Cow<'de, [u8]>> {
        let (body, rest) = escape::read_terminated(self.input)?;
        self.input = rest;
        Ok(body)
    }

    /// Runs `f` one nesting level deeper, failing past [`MAX_DEPTH`].
    pub(super) fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let outer = self.depth;
        self.depth = outer
            .checked_add(1)
            .filter(|&depth| depth <= MAX_DEPTH)
            .ok_or_else(|| KeyError::new("key nested too deeply"))?;
        let result = f(self);
        self.depth = outer;
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
            tag::MAP => self.nested(|de| {
                visitor.visit_map(MapEntries {
                    entries: OpenSeq { de },
                    last_key: None,
                })
            }),
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

impl<'de> OpenSeq<'_, 'de> {
    /// Reads the next marker: after [`ELEMENT`] decodes the element (or map
    /// key) that follows, at [`END`] returns `None`.
    fn next_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.de.byte()? {
            ELEMENT => seed.deserialize(&mut *self.de).map(Some),
            END => Ok(None),
            other => Err(KeyError(format!("invalid seq marker {other:#04x}"))),
        }
    }
}

impl<'de> de::SeqAccess<'de> for OpenSeq<'_, 'de> {
    type Error = KeyError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.next_seed(seed)
    }
}

/// Entries of a map: like seq elements, each a key then its value. The
/// encoder writes them sorted by encoded key, so keys that are not strictly
/// increasing (out of order or repeated) are not canonical and rejected.
struct MapEntries<'a, 'de> {
    entries: OpenSeq<'a, 'de>,
    /// The previous entry's marker and key encoding.
    last_key: Option<&'de [u8]>,
}

impl<'de> de::MapAccess<'de> for MapEntries<'_, 'de> {
    type Error = KeyError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let before = self.entries.de.input;
        let Some(key) = self.entries.next_seed(seed)? else {
            return Ok(None);
        };
        // The entry marker and the key's encoding (every key has the marker,
        // so it does not change how two keys compare).
        let consumed = before.len().saturating_sub(self.entries.de.remaining());
        let encoded = before.get(..consumed).unwrap_or_default();
        if self.last_key.is_some_and(|last| last >= encoded) {
            return Err(KeyError::new(
                "map keys not in strictly increasing order (not canonical)",
            ));
        }
        self.last_key = Some(encoded);
        Ok(Some(key))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.entries.de)
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
        let Some(rest) = self.remaining.checked_sub(1) else {
            return Ok(None);
        };
        self.remaining = rest;
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
