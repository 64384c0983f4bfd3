//! Byte-stuffing of strings and byte strings, shared by the encoder and the decoder.
//!
//! A body is written with every `0x00` escaped as `0x00 0xFF` and is closed by
//! [`STRING_END`] (`0x00 0x01`). The terminator sorts below every content byte,
//! so shorter strings sort first, and the escaped body of a prefix is a byte
//! prefix of the escaped body of the whole string.

use std::borrow::Cow;

use super::{KeyError, Result};

/// Escaped form of a `0x00` byte inside a string or byte string.
const ESCAPED_ZERO: [u8; 2] = [0x00, 0xFF];
/// Terminator of a string or byte string; sorts below any content byte.
pub(super) const STRING_END: [u8; 2] = [0x00, 0x01];

/// Appends `bytes` to `out` with every `0x00` escaped; the caller writes the
/// [`STRING_END`] terminator.
pub(super) fn write_body(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut chunks = bytes.split(|&b| b == 0);
    if let Some(first) = chunks.next() {
        out.extend_from_slice(first);
    }
    for chunk in chunks {
        out.extend_from_slice(&ESCAPED_ZERO);
        out.extend_from_slice(chunk);
    }
}

/// Reads an escaped body and its terminator from the front of `input`;
/// returns the unescaped body and the input after the terminator. Borrows
/// from the input when the body contains no escapes.
pub(super) fn read_terminated(input: &[u8]) -> Result<(Cow<'_, [u8]>, &[u8])> {
    let mut rest = input;
    let mut owned: Option<Vec<u8>> = None;
    loop {
        let zero = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(KeyError::eof)?;
        let (chunk, marker) = rest.split_at(zero);
        if let Some(tail) = marker.strip_prefix(&STRING_END) {
            let body = match owned {
                None => Cow::Borrowed(chunk),
                Some(mut buf) => {
                    buf.extend_from_slice(chunk);
                    Cow::Owned(buf)
                }
            };
            return Ok((body, tail));
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
