//! Checked reads of little-endian numbers from bytes that came from storage.
//!
//! Every decoder of the engines reads through these: a read past the end is `None` (the
//! caller turns it into `Error::Corruption` with its file and offset), never a panic, and no
//! decoder writes its own `from_le_bytes` with slice arithmetic.
//!
//! ```
//! use kv_api::bytes::{Reader, u32_at};
//! let buf = [7u8, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0];
//! let mut r = Reader::new(&buf);
//! assert_eq!(r.u8(), Some(7));
//! assert_eq!(r.u32(), Some(1));
//! assert_eq!(r.u64(), Some(2));
//! assert_eq!(r.u8(), None); // past the end
//! assert_eq!(u32_at(&buf, 1), Some(1));
//! assert_eq!(u32_at(&buf, 10), None);
//! ```

/// The `N` bytes at `at`, if they lie inside `buf`.
pub fn array_at<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The little-endian `u16` at `at`.
pub fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    array_at(buf, at).map(u16::from_le_bytes)
}

/// The little-endian `u32` at `at`.
pub fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    array_at(buf, at).map(u32::from_le_bytes)
}

/// The little-endian `u64` at `at`.
pub fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    array_at(buf, at).map(u64::from_le_bytes)
}

/// Appends `v` as a LEB128 varint: 7 bits a byte, low bits first, the high bit set on every
/// byte but the last (1 byte below 128, at most 10).
///
/// ```
/// use kv_api::bytes::{Reader, put_varint};
/// let mut buf = Vec::new();
/// put_varint(&mut buf, 300);
/// assert_eq!(buf, [0xac, 0x02]);
/// assert_eq!(Reader::new(&buf).varint(), Some(300));
/// ```
#[expect(
    clippy::cast_possible_truncation,
    reason = "each byte keeps the low 7 bits of `v` on purpose (LEB128)"
)]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint at `*at`, advancing it. `None` if truncated or longer than 10 bytes.
/// Lenient where a format needs no unique encoding (bits past the 64th and trailing zero
/// groups are accepted); [`Reader::varint`] is strict.
#[inline(always)]
#[expect(
    clippy::arithmetic_side_effects,
    reason = "`*at` advances past a byte just read, so stays <= buf.len(); `shift` stops at 70"
)]
pub fn get_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    // Most fields fit in one byte: decide that case first.
    let b = *buf.get(*at)?;
    *at += 1;
    if b < 0x80 {
        return Some(u64::from(b));
    }
    let mut v = u64::from(b & 0x7f);
    let mut shift = 7;
    while shift < 64 {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
    }
    None
}

/// A cursor over a byte slice: each read advances past what it read, or returns `None` (and
/// stays put) if the bytes are not there.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }

    /// Bytes read so far: the offset of the next read.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.at)
    }

    /// True once every byte was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.buf.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        // Never the default: `at` only moves to the end of a read that succeeded.
        let s = self.buf.get(self.at..).unwrap_or_default();
        self.at = self.buf.len();
        s
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    /// The next little-endian `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    /// The next little-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    /// The next little-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// A little-endian `u32` length followed by that many bytes.
    pub fn len_prefixed(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        let len = usize::try_from(self.u32()?).ok();
        match len.and_then(|n| self.take(n)) {
            Some(s) => Some(s),
            None => {
                self.at = start;
                None
            }
        }
    }

    /// A LEB128 varint as [`put_varint`] writes it, and only so: a value past `u64::MAX` or
    /// an overlong encoding (a trailing zero group) is `None`, so that each value has one
    /// encoding and a record decodes to exactly the bytes it was encoded from.
    pub fn varint(&mut self) -> Option<u64> {
        let start = self.at;
        let mut at = start;
        let v = get_varint(self.buf, &mut at)?;
        let bytes = self.buf.get(start..at)?;
        let last = *bytes.last()?;
        // An overlong encoding ends in a zero group; the 10th byte holds bit 63 only.
        let canonical = (bytes.len() == 1 || last != 0) && (bytes.len() < 10 || last == 1);
        canonical.then(|| {
            self.at = at;
            v
        })
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let end = self.at.checked_add(N)?;
        let a = self.buf.get(self.at..end)?.try_into().ok()?;
        self.at = end;
        Some(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_have_one_encoding() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            1 << 63,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut r = Reader::new(&buf);
            assert_eq!(r.varint(), Some(v));
            assert!(r.is_empty());
            let mut r = Reader::new(&buf[..buf.len() - 1]);
            assert_eq!(r.varint(), None, "truncated {v}");
            assert_eq!(r.position(), 0);
        }
        // Overlong (a trailing zero group), past 64 bits, or longer than 10 bytes.
        let mut past = vec![0xff; 9];
        past.push(0x02);
        for bad in [&[0x80, 0x00][..], &[0x81, 0x80, 0x00], &past, &[0x80; 11]] {
            assert_eq!(Reader::new(bad).varint(), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_stop_at_the_end() {
        let buf = [3u8, 0, 0, 0, b'a', b'b', b'c', 9];
        let mut r = Reader::new(&buf);
        assert_eq!(r.len_prefixed(), Some(&b"abc"[..]));
        assert_eq!(r.position(), 7);
        assert_eq!(r.u16(), None);
        assert_eq!(r.position(), 7, "a failed read does not advance");
        assert_eq!(r.rest(), &[9]);
        assert!(r.is_empty());
    }

    #[test]
    fn forged_lengths_are_none() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert_eq!(r.len_prefixed(), None);
        assert_eq!(r.position(), 0);
        assert_eq!(u64_at(&[0; 8], usize::MAX - 2), None);
    }
}
