//! The serde `Serializer`: writes a value as tag bytes and bodies (see the
//! layout in the parent module). [`Encoder`] handles scalars, strings and the
//! headers of compound values; [`Compound`] writes their elements and fields
//! straight to the output, [`SortedMap`] buffers a map's entries and writes
//! them sorted by their encoded keys.

use std::ops::Range;

use serde::ser::{self, Serialize};

use super::escape::{self, STRING_END};
use super::float::{f32_to_key, f64_to_key};
use super::{ELEMENT, END, KeyError, Result, kind, tag};

/// Serializer writing to `out`.
pub(super) struct Encoder<'o> {
    out: &'o mut Vec<u8>,
    /// Byte range of the last string, seq or map terminator written, for
    /// [`encode_prefix`].
    pub(super) terminator: Option<(usize, usize)>,
}

impl<'o> Encoder<'o> {
    pub(super) fn new(out: &'o mut Vec<u8>) -> Self {
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
        escape::write_body(self.out, bytes);
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
pub(super) struct Compound<'s, 'o> {
    encoder: &'s mut Encoder<'o>,
    /// Fields still to come for fixed-arity values; `None` for seqs.
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
            Some(n) => {
                *n = n
                    .checked_sub(1)
                    .ok_or_else(|| KeyError::new("more fields serialized than declared"))?;
            }
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
    type SerializeMap = SortedMap<'s, 'o>;
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

    fn serialize_map(self, _len: Option<usize>) -> Result<SortedMap<'s, 'o>> {
        self.out.push(tag::MAP);
        Ok(SortedMap::new(self))
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

/// The compound traits whose items all go to [`Compound::element`] and whose
/// `end` is [`Compound::finish`]. They differ only in the item method's name
/// and whether it also gets a field name, which the key ignores (fields are
/// positional).
macro_rules! serialize_elements {
    ($($trait:ident::$method:ident($($name:ident: $name_ty:ty)?);)*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = KeyError;

            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $($name: $name_ty,)?
                value: &T,
            ) -> Result<()> {
                self.element(value)
            }

            fn end(self) -> Result<()> {
                self.finish()
            }
        }
    )*};
}

serialize_elements! {
    SerializeSeq::serialize_element();
    SerializeTuple::serialize_element();
    SerializeTupleStruct::serialize_field();
    SerializeTupleVariant::serialize_field();
    SerializeStruct::serialize_field(_key: &'static str);
    SerializeStructVariant::serialize_field(_key: &'static str);
}

/// Serializer state for a map. A map's entries are encoded into a scratch
/// buffer and written sorted by their encoded keys when the map ends, so that
/// a map has one encoding whatever order it iterates in (a `HashMap`), and the
/// decoder can demand strictly increasing keys. For a `BTreeMap` (and any map
/// iterating in key order) the order does not change: the codec is
/// order-preserving, so sorted by key is sorted by encoded key.
pub(super) struct SortedMap<'s, 'o> {
    encoder: &'s mut Encoder<'o>,
    /// The entries' encodings, concatenated: each key, then its value.
    scratch: Vec<u8>,
    /// Each entry's key and whole (key and value) ranges in `scratch`.
    entries: Vec<Entry>,
    /// The range of a key whose value has not been serialized yet.
    pending_key: Option<Range<usize>>,
}

struct Entry {
    key: Range<usize>,
    whole: Range<usize>,
}

impl<'s, 'o> SortedMap<'s, 'o> {
    fn new(encoder: &'s mut Encoder<'o>) -> Self {
        Self {
            encoder,
            scratch: Vec::new(),
            entries: Vec::new(),
            pending_key: None,
        }
    }

    /// Appends the encoding of `value` to the scratch buffer; returns its range.
    fn scratch<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<Range<usize>> {
        let start = self.scratch.len();
        value.serialize(&mut Encoder::new(&mut self.scratch))?;
        Ok(start..self.scratch.len())
    }

    fn bytes(&self, range: &Range<usize>) -> &[u8] {
        // The ranges were recorded while writing `scratch`, which only grows.
        self.scratch.get(range.clone()).unwrap_or_default()
    }
}

impl ser::SerializeMap for SortedMap<'_, '_> {
    type Ok = ();
    type Error = KeyError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        if self.pending_key.is_some() {
            return Err(KeyError::new("map key serialized without a value"));
        }
        self.pending_key = Some(self.scratch(key)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| KeyError::new("map value serialized without a key"))?;
        let value = self.scratch(value)?;
        self.entries.push(Entry {
            whole: key.start..value.end,
            key,
        });
        Ok(())
    }

    fn end(mut self) -> Result<()> {
        if self.pending_key.is_some() {
            return Err(KeyError::new("map key serialized without a value"));
        }
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_unstable_by(|a, b| self.bytes(&a.key).cmp(self.bytes(&b.key)));
        for pair in entries.windows(2) {
            if let [a, b] = pair
                && self.bytes(&a.key) == self.bytes(&b.key)
            {
                return Err(KeyError::new("map has two entries with the same key"));
            }
        }
        let out = &mut *self.encoder.out;
        for entry in &entries {
            out.push(ELEMENT);
            out.extend_from_slice(self.scratch.get(entry.whole.clone()).unwrap_or_default());
        }
        self.encoder.terminate(&[END])
    }
}
