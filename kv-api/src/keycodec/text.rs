//! The text syntax of [`KeyValue`]: reads back what its `Display` writes (and the same with
//! other spacing, map entries in any order, strings with any of Rust's escapes).

use std::str::FromStr;

use super::de::MAX_DEPTH;
use super::value::{KeyValue, Variant};
use super::{KeyError, Result};

impl FromStr for KeyValue {
    type Err = KeyError;

    /// Parses a key literal such as `("org1", 3u32)`. Integers need their type suffix (the
    /// key's bytes depend on it); see [`KeyValue`] for every form.
    fn from_str(text: &str) -> Result<KeyValue> {
        let mut p = Parser {
            text,
            pos: 0,
            depth: 0,
        };
        p.whole(None)
    }
}

impl KeyValue {
    /// Parses a key literal like [`str::parse`], where integers and floats without a suffix
    /// take their type from `shape`, a value of the key's type (`("", 0u32)` for
    /// `(String, u32)`) at the same place: so `("org1", 3)` reads as `("org1", 3u32)`.
    ///
    /// ```
    /// use kv_api::keycodec::{self, KeyValue};
    /// let shape: KeyValue = r#"("", 0u32)"#.parse().unwrap();
    /// let key = KeyValue::parse_shaped(r#"("org1", 3)"#, &shape).unwrap();
    /// assert_eq!(key.encode().unwrap(), keycodec::encode(&("org1", 3u32)).unwrap());
    /// ```
    pub fn parse_shaped(text: &str, shape: &KeyValue) -> Result<KeyValue> {
        Parser {
            text,
            pos: 0,
            depth: 0,
        }
        .whole(Some(shape))
    }
}

/// What a value is expected to be, for numbers without a suffix: a value of the key's type at
/// the same place, if known.
type Shape<'s> = Option<&'s KeyValue>;

/// The shapes of the items of a list: one per field, or one for every element.
#[derive(Clone, Copy)]
enum Items<'s> {
    Each(&'s [KeyValue]),
    All(Shape<'s>),
}

impl<'s> Items<'s> {
    /// The fields of a tuple or struct shape.
    fn fields(shape: Shape<'s>) -> Items<'s> {
        match shape {
            Some(KeyValue::Tuple(f) | KeyValue::TupleStruct(f) | KeyValue::Struct(f)) => {
                Items::Each(f)
            }
            _ => Items::All(None),
        }
    }

    fn get(self, index: usize) -> Shape<'s> {
        match self {
            Items::Each(fields) => fields.get(index),
            Items::All(shape) => shape,
        }
    }
}

struct Parser<'t> {
    text: &'t str,
    /// Byte offset of the next character (always on a char boundary).
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    /// The whole text as one key.
    fn whole(&mut self, shape: Shape<'_>) -> Result<KeyValue> {
        let value = self.value(shape)?;
        self.skip_space();
        if self.pos < self.text.len() {
            return Err(self.error("unexpected text after the key"));
        }
        Ok(value)
    }

    fn rest(&self) -> &str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    fn error(&self, what: &str) -> KeyError {
        KeyError(format!("{what} at offset {} of {:?}", self.pos, self.text))
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.advance(rest.len().saturating_sub(rest.trim_start().len()));
    }

    fn advance(&mut self, bytes: usize) {
        self.pos = self.pos.saturating_add(bytes).min(self.text.len());
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next_char(&mut self) -> Result<char> {
        let c = self
            .peek()
            .ok_or_else(|| self.error("unexpected end of the key"))?;
        self.advance(c.len_utf8());
        Ok(c)
    }

    /// Skips spaces, then `token` if it comes next.
    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        let found = self.rest().starts_with(token);
        if found {
            self.advance(token.len());
        }
        found
    }

    fn expect(&mut self, token: &str) -> Result<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{token}`")))
        }
    }

    /// A word of letters, digits, `_`, `.`, `+`, `-` and `::` (numbers with their suffix,
    /// keywords, `f32::INFINITY`), possibly empty. A single `:` ends it (`{1u8: 2u8}`).
    fn word(&mut self) -> &str {
        let start = self.pos;
        loop {
            let rest = self.rest();
            if rest.starts_with("::") {
                self.advance(2);
            } else if rest.starts_with(|c: char| c.is_ascii_alphanumeric() || "_.+-".contains(c)) {
                self.advance(1);
            } else {
                break;
            }
        }
        self.text.get(start..self.pos).unwrap_or_default()
    }

    fn value(&mut self, shape: Shape<'_>) -> Result<KeyValue> {
        // The decoder counts the values nested inside others, this every value: one more for
        // the same key, so that every key the decoder reads, its text parses (found by the
        // `key_text` fuzz target).
        self.depth = self
            .depth
            .checked_add(1)
            .filter(|&d| d <= MAX_DEPTH.saturating_add(1))
            .ok_or_else(|| self.error("key nested too deeply"))?;
        let value = self.value_inner(shape);
        self.depth = self.depth.saturating_sub(1);
        value
    }

    fn value_inner(&mut self, shape: Shape<'_>) -> Result<KeyValue> {
        self.skip_space();
        match self.peek() {
            Some('(') => self.parens(shape),
            Some('[') => {
                self.advance(1);
                let element = match shape {
                    Some(KeyValue::Seq(elements)) => elements.first(),
                    _ => None,
                };
                Ok(KeyValue::Seq(self.items("]", Items::All(element))?))
            }
            Some('{') => {
                self.advance(1);
                self.map(shape)
            }
            Some('"') => {
                self.advance(1);
                let bytes = self.quoted('"', false)?;
                String::from_utf8(bytes)
                    .map(KeyValue::Str)
                    .map_err(|_| self.error("invalid UTF-8 in a string"))
            }
            Some('\'') => {
                self.advance(1);
                let bytes = self.quoted('\'', false)?;
                let text = String::from_utf8(bytes).unwrap_or_default();
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Ok(KeyValue::Char(c)),
                    _ => Err(self.error("a char literal holds one character")),
                }
            }
            Some('#') => {
                self.advance(1);
                self.variant()
            }
            Some('b') if self.rest().starts_with("b\"") => {
                self.advance(2);
                Ok(KeyValue::Bytes(self.quoted('"', true)?))
            }
            Some(_) => self.word_value(shape),
            None => Err(self.error("expected a key")),
        }
    }

    /// `()`, `(,)`, `(a,)`, `(a, b)`.
    fn parens(&mut self, shape: Shape<'_>) -> Result<KeyValue> {
        self.advance(1);
        if self.eat(")") {
            return Ok(KeyValue::Unit);
        }
        if self.eat(",") {
            self.expect(")")?;
            return Ok(KeyValue::Tuple(Vec::new()));
        }
        let (fields, trailing) = self.items_trailing(")", Items::fields(shape))?;
        if fields.len() == 1 && !trailing {
            return Err(self.error("a one-field tuple needs a trailing comma: `(x,)`"));
        }
        Ok(KeyValue::Tuple(fields))
    }

    /// Comma-separated values up to `close` (already past the opening bracket).
    fn items(&mut self, close: &str, shapes: Items<'_>) -> Result<Vec<KeyValue>> {
        self.items_trailing(close, shapes).map(|(items, _)| items)
    }

    /// Like [`Parser::items`], and whether a comma followed the last item.
    fn items_trailing(&mut self, close: &str, shapes: Items<'_>) -> Result<(Vec<KeyValue>, bool)> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Ok((items, true));
            }
            items.push(self.value(shapes.get(items.len()))?);
            if self.eat(close) {
                return Ok((items, false));
            }
            self.expect(",")?;
        }
    }

    /// `{k: v, ...}` (already past `{`).
    fn map(&mut self, shape: Shape<'_>) -> Result<KeyValue> {
        let (key_shape, value_shape) = match shape {
            Some(KeyValue::Map(entries)) => match entries.first() {
                Some((k, v)) => (Some(k), Some(v)),
                None => (None, None),
            },
            _ => (None, None),
        };
        let mut entries = Vec::new();
        loop {
            if self.eat("}") {
                return Ok(KeyValue::Map(entries));
            }
            let key = self.value(key_shape)?;
            self.expect(":")?;
            entries.push((key, self.value(value_shape)?));
            if self.eat("}") {
                return Ok(KeyValue::Map(entries));
            }
            self.expect(",")?;
        }
    }

    /// `#N`, `#N(x)`, `#N(a,)`, `#N(a, b)`, `#N()`, `#N{a, b}` (already past `#`).
    fn variant(&mut self) -> Result<KeyValue> {
        let word = self.word();
        let index = word
            .parse::<u32>()
            .map_err(|_| self.error("expected a variant index after `#`"))?;
        let content = if self.rest().starts_with('(') {
            self.advance(1);
            let (mut fields, trailing) = self.items_trailing(")", Items::All(None))?;
            match (fields.pop(), fields.is_empty(), trailing) {
                (Some(one), true, false) => Variant::Newtype(Box::new(one)),
                (Some(last), _, _) => {
                    fields.push(last);
                    Variant::Tuple(fields)
                }
                (None, _, _) => Variant::Tuple(fields),
            }
        } else if self.rest().starts_with('{') {
            self.advance(1);
            Variant::Struct(self.items("}", Items::All(None))?)
        } else {
            Variant::Unit
        };
        Ok(KeyValue::Variant(index, content))
    }

    /// Keywords, `struct` forms, floats by name, and suffixed numbers.
    fn word_value(&mut self, shape: Shape<'_>) -> Result<KeyValue> {
        let start = self.pos;
        let word = self.word().to_string();
        let parens = self.rest().starts_with('(');
        Ok(match word.as_str() {
            "true" => KeyValue::Bool(true),
            "false" => KeyValue::Bool(false),
            "None" => KeyValue::None,
            "Some" if parens => KeyValue::Some(Box::new(self.one_in_parens(match shape {
                Some(KeyValue::Some(inner)) => Some(inner),
                _ => None,
            })?)),
            "newtype" if parens => {
                KeyValue::NewtypeStruct(Box::new(self.one_in_parens(match shape {
                    Some(KeyValue::NewtypeStruct(inner)) => Some(inner),
                    _ => None,
                })?))
            }
            "struct" if parens => {
                self.advance(1);
                KeyValue::TupleStruct(self.items(")", Items::fields(shape))?)
            }
            "struct" if self.rest().starts_with('{') => {
                self.advance(1);
                KeyValue::Struct(self.items("}", Items::fields(shape))?)
            }
            "struct" => KeyValue::UnitStruct,
            "f32::from_bits" | "f64::from_bits" if parens => {
                self.advance(1);
                self.skip_space();
                let digits = self.word().to_string();
                self.expect(")")?;
                let hex = digits.strip_prefix("0x").unwrap_or(&digits);
                let bad = || self.error("expected hex bits such as `0x7fc00000`");
                if word.starts_with("f32") {
                    KeyValue::F32(f32::from_bits(
                        u32::from_str_radix(hex, 16).map_err(|_| bad())?,
                    ))
                } else {
                    KeyValue::F64(f64::from_bits(
                        u64::from_str_radix(hex, 16).map_err(|_| bad())?,
                    ))
                }
            }
            _ => number(&word)
                .or_else(|| number(&format!("{word}{}", suffix(shape?)?)))
                .ok_or_else(|| {
                    self.pos = start;
                    self.error(
                        "expected a key: a suffixed number (`3u32`, `-1i64`, `1.5f64`), a \
                     string, a tuple, ...",
                    )
                })?,
        })
    }

    /// `( value )`: the argument of `Some`, `newtype`.
    fn one_in_parens(&mut self, shape: Shape<'_>) -> Result<KeyValue> {
        self.expect("(")?;
        let value = self.value(shape)?;
        self.expect(")")?;
        Ok(value)
    }

    /// The body of a string, char or byte string literal up to `quote` (already past the
    /// opening quote), unescaped. Byte strings take ASCII and `\xNN` of any byte; strings
    /// take any character and `\u{...}`.
    fn quoted(&mut self, quote: char, bytes: bool) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let c = self.next_char()?;
            if c == quote {
                return Ok(out);
            }
            if c != '\\' {
                if bytes && !c.is_ascii() {
                    return Err(self.error("a byte string holds ASCII and `\\xNN` escapes"));
                }
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            let escaped = match self.next_char()? {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                '0' => '\0',
                c @ ('\\' | '"' | '\'') => c,
                'x' => {
                    let hex = self.rest().get(..2).unwrap_or_default().to_string();
                    let byte = u8::from_str_radix(&hex, 16)
                        .map_err(|_| self.error("expected two hex digits after `\\x`"))?;
                    self.advance(2);
                    if bytes {
                        out.push(byte);
                        continue;
                    }
                    char::from_u32(u32::from(byte))
                        .filter(char::is_ascii)
                        .ok_or_else(|| self.error("`\\x` in a string is at most `\\x7f`"))?
                }
                'u' if !bytes => {
                    let rest = self.rest();
                    let end = rest
                        .find('}')
                        .filter(|_| rest.starts_with('{'))
                        .ok_or_else(|| self.error("expected `\\u{...}`"))?;
                    let hex = rest.get(1..end).unwrap_or_default();
                    let c = u32::from_str_radix(hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or_else(|| self.error("invalid `\\u{...}` escape"))?;
                    self.advance(end.saturating_add(1));
                    c
                }
                _ => return Err(self.error("unknown escape")),
            };
            let mut buf = [0; 4];
            out.extend_from_slice(escaped.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// A number with its type suffix (`3u32`, `-1i8`, `1.5f64`, `-f32::INFINITY`).
fn number(word: &str) -> Option<KeyValue> {
    for (suffix, make) in SUFFIXES {
        if let Some(digits) = word.strip_suffix(suffix)
            && !digits.is_empty()
            && digits
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE_".contains(&b))
        {
            return make(&digits.replace('_', ""));
        }
    }
    match word {
        "f32::INFINITY" => Some(KeyValue::F32(f32::INFINITY)),
        "-f32::INFINITY" | "f32::NEG_INFINITY" => Some(KeyValue::F32(f32::NEG_INFINITY)),
        "f64::INFINITY" => Some(KeyValue::F64(f64::INFINITY)),
        "-f64::INFINITY" | "f64::NEG_INFINITY" => Some(KeyValue::F64(f64::NEG_INFINITY)),
        "f32::NAN" => Some(KeyValue::F32(f32::NAN)),
        "f64::NAN" => Some(KeyValue::F64(f64::NAN)),
        _ => None,
    }
}

/// The type suffix of a number shape, for a number written without one.
fn suffix(shape: &KeyValue) -> Option<&'static str> {
    Some(match shape {
        KeyValue::U8(_) => "u8",
        KeyValue::U16(_) => "u16",
        KeyValue::U32(_) => "u32",
        KeyValue::U64(_) => "u64",
        KeyValue::U128(_) => "u128",
        KeyValue::I8(_) => "i8",
        KeyValue::I16(_) => "i16",
        KeyValue::I32(_) => "i32",
        KeyValue::I64(_) => "i64",
        KeyValue::I128(_) => "i128",
        KeyValue::F32(_) => "f32",
        KeyValue::F64(_) => "f64",
        _ => return None,
    })
}

type MakeNumber = fn(&str) -> Option<KeyValue>;

/// Type suffixes, longest first where one ends another (`u128` before `u8`).
const SUFFIXES: [(&str, MakeNumber); 12] = [
    ("u128", |d| d.parse().ok().map(KeyValue::U128)),
    ("i128", |d| d.parse().ok().map(KeyValue::I128)),
    ("u16", |d| d.parse().ok().map(KeyValue::U16)),
    ("u32", |d| d.parse().ok().map(KeyValue::U32)),
    ("u64", |d| d.parse().ok().map(KeyValue::U64)),
    ("i16", |d| d.parse().ok().map(KeyValue::I16)),
    ("i32", |d| d.parse().ok().map(KeyValue::I32)),
    ("i64", |d| d.parse().ok().map(KeyValue::I64)),
    ("f32", |d| d.parse().ok().map(KeyValue::F32)),
    ("f64", |d| d.parse().ok().map(KeyValue::F64)),
    ("u8", |d| d.parse().ok().map(KeyValue::U8)),
    ("i8", |d| d.parse().ok().map(KeyValue::I8)),
];
