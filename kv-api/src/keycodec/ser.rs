//! The serde `Serializer`: writes a value as tag bytes and bodies (see the
//! layout in the parent module). [`Encoder`] handles scalars, strings and the
//! headers of compound values; [`Compound`] writes their elements and fields.

use serde::ser::{self, Serialize};

use super::escape::{self, STRING_END};
use super::float::{f32_to_key, f64_to_key};
use super::{ELEMENT, END, KeyError, Result, kind, tag};

/// Serializer writing to `out`.
pub(super) struct Encoder<'o> {
    out: &'o mut Vec<u8>,
    /// Byte range of the last string or seq terminator written, for
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
