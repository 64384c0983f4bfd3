//! Values: postcard bytes, which do not describe themselves, printed as hex, or as JSON when
//! their type is named (`--type`) or recorded in the catalog and is one this tool knows.

use std::fmt;

use kv_api::keycodec::KeyValue;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use crate::cli::{Format, ReadArgs};
use crate::keys::hex;
use crate::usage;

/// A value type the tool can decode without the program that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueType {
    /// `()`.
    Unit,
    /// `bool`.
    Bool,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `u128`, printed as a JSON string (JSON numbers are doubles to most readers).
    U128,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `i128`, printed as a JSON string.
    I128,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// `String`.
    String,
    /// `Option<T>`.
    Option(Box<ValueType>),
    /// `Vec<T>` (also `Vec<u8>`: postcard writes it as a seq).
    Vec(Box<ValueType>),
    /// `(A, B, ..)`, `[T; N]`.
    Tuple(Vec<ValueType>),
}

impl ValueType {
    /// Parses a type as written in Rust or as `std::any::type_name` spells it (the catalog's
    /// form: `alloc::string::String`, `core::option::Option<u32>`); `None` if not known.
    pub fn parse(name: &str) -> Option<ValueType> {
        let mut p = TypeParser { rest: name.trim() };
        let ty = p.ty(0)?;
        p.rest.trim().is_empty().then_some(ty)
    }

    /// A key of this type, for [`KeyValue::parse_shaped`]: where a key type is known, its
    /// numbers may be written without their suffix.
    pub fn shape(&self) -> KeyValue {
        match self {
            ValueType::Unit => KeyValue::Unit,
            ValueType::Bool => KeyValue::Bool(false),
            ValueType::U8 => KeyValue::U8(0),
            ValueType::U16 => KeyValue::U16(0),
            ValueType::U32 => KeyValue::U32(0),
            ValueType::U64 => KeyValue::U64(0),
            ValueType::U128 => KeyValue::U128(0),
            ValueType::I8 => KeyValue::I8(0),
            ValueType::I16 => KeyValue::I16(0),
            ValueType::I32 => KeyValue::I32(0),
            ValueType::I64 => KeyValue::I64(0),
            ValueType::I128 => KeyValue::I128(0),
            ValueType::F32 => KeyValue::F32(0.0),
            ValueType::F64 => KeyValue::F64(0.0),
            ValueType::Char => KeyValue::Char('\0'),
            ValueType::String => KeyValue::Str(String::new()),
            ValueType::Option(inner) => KeyValue::Some(Box::new(inner.shape())),
            ValueType::Vec(inner) => KeyValue::Seq(vec![inner.shape()]),
            ValueType::Tuple(fields) => KeyValue::Tuple(fields.iter().map(Self::shape).collect()),
        }
    }

    /// Decodes `bytes` (one whole value of this type) as JSON.
    pub fn to_json(&self, bytes: &[u8]) -> Result<Value, String> {
        let mut de = postcard::Deserializer::from_bytes(bytes);
        let value = Seed(self).deserialize(&mut de).map_err(|e| e.to_string())?;
        match de.finalize() {
            Ok([]) => Ok(value),
            Ok(rest) => Err(format!("{} bytes left over: not a {self:?}", rest.len())),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Nesting limit of type names (`Vec<Vec<...>>`).
const MAX_DEPTH: usize = 32;

struct TypeParser<'a> {
    rest: &'a str,
}

impl TypeParser<'_> {
    fn eat(&mut self, token: &str) -> bool {
        let trimmed = self.rest.trim_start();
        match trimmed.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// A path such as `alloc::vec::Vec`: its last segment.
    fn path(&mut self) -> Option<&str> {
        let trimmed = self.rest.trim_start();
        let len = trimmed
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(trimmed.len());
        let (path, rest) = trimmed.split_at(len);
        self.rest = rest;
        path.rsplit("::").next().filter(|s| !s.is_empty())
    }

    fn ty(&mut self, depth: usize) -> Option<ValueType> {
        let depth = depth.checked_add(1).filter(|&d| d <= MAX_DEPTH)?;
        if self.eat("(") {
            let mut fields = Vec::new();
            if self.eat(")") {
                return Some(ValueType::Unit);
            }
            loop {
                fields.push(self.ty(depth)?);
                if self.eat(")") {
                    return Some(ValueType::Tuple(fields));
                }
                if !self.eat(",") {
                    return None;
                }
                if self.eat(")") {
                    return Some(ValueType::Tuple(fields));
                }
            }
        }
        if self.eat("[") {
            let element = self.ty(depth)?;
            if !self.eat(";") {
                return None;
            }
            let trimmed = self.rest.trim_start();
            let len = trimmed
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(trimmed.len());
            let (digits, rest) = trimmed.split_at(len);
            self.rest = rest;
            let n: usize = digits.parse().ok().filter(|&n| n <= 4096)?;
            return self.eat("]").then(|| ValueType::Tuple(vec![element; n]));
        }
        let name = self.path()?.to_string();
        let generic = |p: &mut Self, make: fn(Box<ValueType>) -> ValueType| {
            if !p.eat("<") {
                return None;
            }
            let inner = p.ty(depth)?;
            p.eat(">").then(|| make(Box::new(inner)))
        };
        Some(match name.as_str() {
            "bool" => ValueType::Bool,
            "u8" => ValueType::U8,
            "u16" => ValueType::U16,
            "u32" => ValueType::U32,
            "u64" => ValueType::U64,
            "u128" => ValueType::U128,
            "i8" => ValueType::I8,
            "i16" => ValueType::I16,
            "i32" => ValueType::I32,
            "i64" => ValueType::I64,
            "i128" => ValueType::I128,
            "f32" => ValueType::F32,
            "f64" => ValueType::F64,
            "char" => ValueType::Char,
            "String" => ValueType::String,
            "Option" => generic(self, ValueType::Option)?,
            "Vec" => generic(self, ValueType::Vec)?,
            // Serialized as the value it holds.
            "Box" => generic(self, |inner| *inner)?,
            _ => return None,
        })
    }
}

/// Decodes a value of the type it holds into JSON.
struct Seed<'t>(&'t ValueType);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        use serde::Deserialize as _;
        Ok(match self.0 {
            ValueType::Unit => {
                <()>::deserialize(d)?;
                Value::Null
            }
            ValueType::Bool => Value::Bool(bool::deserialize(d)?),
            ValueType::U8 => Value::from(u8::deserialize(d)?),
            ValueType::U16 => Value::from(u16::deserialize(d)?),
            ValueType::U32 => Value::from(u32::deserialize(d)?),
            ValueType::U64 => Value::from(u64::deserialize(d)?),
            ValueType::U128 => Value::String(u128::deserialize(d)?.to_string()),
            ValueType::I8 => Value::from(i8::deserialize(d)?),
            ValueType::I16 => Value::from(i16::deserialize(d)?),
            ValueType::I32 => Value::from(i32::deserialize(d)?),
            ValueType::I64 => Value::from(i64::deserialize(d)?),
            ValueType::I128 => Value::String(i128::deserialize(d)?.to_string()),
            ValueType::F32 => float(f64::from(f32::deserialize(d)?)),
            ValueType::F64 => float(f64::deserialize(d)?),
            ValueType::Char => Value::String(char::deserialize(d)?.to_string()),
            ValueType::String => Value::String(String::deserialize(d)?),
            ValueType::Option(inner) => d.deserialize_option(OptionVisitor(inner))?,
            ValueType::Vec(inner) => d.deserialize_seq(Elements(Repeat::Any(inner)))?,
            ValueType::Tuple(fields) => {
                d.deserialize_tuple(fields.len(), Elements(Repeat::Each(fields)))?
            }
        })
    }
}

/// JSON has no NaN or infinity: those are strings.
fn float(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or_else(|| Value::String(v.to_string()), Value::Number)
}

struct OptionVisitor<'t>(&'t ValueType);

impl<'de> Visitor<'de> for OptionVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an option")
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Seed(self.0).deserialize(d)
    }
}

enum Repeat<'t> {
    /// Every element of a seq has this type.
    Any(&'t ValueType),
    /// The fields of a tuple, one type each.
    Each(&'t [ValueType]),
}

struct Elements<'t>(Repeat<'t>);

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        match self.0 {
            Repeat::Any(ty) => {
                while let Some(v) = seq.next_element_seed(Seed(ty))? {
                    out.push(v);
                }
            }
            Repeat::Each(fields) => {
                for ty in fields {
                    out.push(
                        seq.next_element_seed(Seed(ty))?
                            .ok_or_else(|| de::Error::custom("tuple too short"))?,
                    );
                }
            }
        }
        Ok(Value::Array(out))
    }
}

/// How one command prints the values of one slot.
pub enum Printer {
    /// Hex of the bytes.
    Hex,
    /// JSON of a known type.
    Json(ValueType),
}

impl Printer {
    /// Picks the format from the arguments and, for `auto` and `json`, the catalog's value
    /// type of the slot (`catalog_type`) when `--type` names none.
    pub fn new(args: &ReadArgs, catalog_type: Option<&str>) -> anyhow::Result<Printer> {
        let named = match &args.value_type {
            Some(name) => Some(ValueType::parse(name).ok_or_else(|| {
                usage(format!(
                    "unknown value type {name:?} (known: bool, u8..u128, i8..i128, f32, f64, \
                     char, String, (), Vec<T>, Option<T>, [T; N], tuples)"
                ))
            })?),
            None => None,
        };
        let known = named.or_else(|| catalog_type.and_then(ValueType::parse));
        Ok(match (args.format, known) {
            (Format::Hex, _) | (Format::Auto, None) => Printer::Hex,
            (Format::Auto | Format::Json, Some(ty)) => Printer::Json(ty),
            (Format::Json, None) => {
                return Err(usage(format!(
                    "--format json needs a value type: the catalog records {}; name one with \
                     --type",
                    catalog_type.map_or("none for this slot".to_string(), |t| format!(
                        "{t:?}, which this tool does not know"
                    ))
                )));
            }
        })
    }

    /// One value as text: hex, or JSON (a value that does not decode as the type is shown
    /// in hex with the reason, rather than failing the listing).
    pub fn show(&self, bytes: &[u8]) -> String {
        match self {
            Printer::Hex => hex(bytes),
            Printer::Json(ty) => match ty.to_json(bytes) {
                Ok(v) => v.to_string(),
                Err(e) => format!("{} (not a {ty:?}: {e})", hex(bytes)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: serde::Serialize>(ty: &str, value: &T) -> String {
        let bytes = postcard::to_allocvec(value).unwrap_or_default();
        ValueType::parse(ty)
            .map(|t| t.to_json(&bytes).map(|v| v.to_string()))
            .unwrap_or_else(|| Err(format!("unknown type {ty}")))
            .unwrap_or_else(|e| e)
    }

    #[test]
    fn known_types_as_json() {
        assert_eq!(json("u64", &7u64), "7");
        assert_eq!(json("alloc::string::String", &"hi"), "\"hi\"");
        assert_eq!(
            json("core::option::Option<(u32, bool)>", &Some((1u32, true))),
            "[1,true]"
        );
        assert_eq!(json("Vec<i16>", &vec![-1i16, 2]), "[-1,2]");
        assert_eq!(json("[u8; 2]", &[1u8, 2]), "[1,2]");
        assert_eq!(json("u128", &u128::MAX), format!("\"{}\"", u128::MAX));
        assert_eq!(json("f64", &f64::NAN), "\"NaN\"");
        assert_eq!(json("()", &()), "null");
        assert_eq!(json("(String,)", &("a",)), "[\"a\"]");
    }

    #[test]
    fn wrong_or_unknown_types_are_errors() {
        assert!(json("u8", &300u16).contains("left over"));
        assert!(ValueType::parse("quickstart::User").is_none());
        assert!(ValueType::parse("Vec<u8").is_none());
        assert!(ValueType::parse("HashMap<u8, u8>").is_none());
        assert!(
            ValueType::parse(&format!("{}u8{}", "Vec<".repeat(100), ">".repeat(100))).is_none()
        );
    }
}
