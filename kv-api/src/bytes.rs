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
