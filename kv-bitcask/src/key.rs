//! Keydir keys: `slot byte + encoded key`, stored inline when short.
//!
//! Most keys are short. Keeping them inside the keydir entry (no allocation of their own)
//! saves an allocation and a pointer chase per key, which is most of the cost of rebuilding
//! the keydir on reopen, and most of its memory.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::ops::Deref;

use kv_api::Slot;

/// Longest key (slot byte included) stored inline.
const INLINE: usize = 22;

/// A keydir key: 24 bytes, plus a heap allocation only beyond [`INLINE`] bytes.
#[derive(Clone)]
pub(crate) enum Key {
    /// Length and bytes.
    Inline(u8, [u8; INLINE]),
    /// Longer keys.
    Heap(Box<[u8]>),
}

impl Key {
    /// The key of `key` in `slot`.
    #[expect(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::arithmetic_side_effects,
        reason = "inline only if `key.len() < INLINE` (22): `1..=key.len()` lies inside the \
                  array and `key.len() + 1` fits a u8; a slice's `1 + len` fits a usize"
    )]
    pub fn new(slot: Slot, key: &[u8]) -> Self {
        if key.len() < INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[0] = slot;
            bytes[1..=key.len()].copy_from_slice(key);
            Key::Inline(key.len() as u8 + 1, bytes)
        } else {
            let mut v = Vec::with_capacity(1 + key.len());
            v.push(slot);
            v.extend_from_slice(key);
            Key::Heap(v.into_boxed_slice())
        }
    }

    /// A key from its bytes (slot byte first).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        match bytes.split_first() {
            Some((&slot, key)) => Key::new(slot, key),
            None => Key::Heap(Box::default()),
        }
    }

    /// The bytes: slot byte, then the encoded key.
    #[expect(
        clippy::indexing_slicing,
        reason = "`min(INLINE)` keeps the end inside the inline array"
    )]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline(len, bytes) => &bytes[..usize::from(*len).min(INLINE)],
            Key::Heap(b) => b,
        }
    }

    /// The encoded key without its slot byte.
    pub fn user_key(&self) -> &[u8] {
        // Empty only for the empty key of `from_bytes(&[])`, which has no user key either.
        self.as_bytes().get(1..).unwrap_or_default()
    }
}

impl Deref for Key {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Key::Inline(la, a), Key::Inline(lb, b)) => la == lb && a == b,
            _ => self.as_bytes() == other.as_bytes(),
        }
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    /// Byte order. Inline keys, which are zero-padded, compare as three big-endian words and
    /// then their lengths: the same order as their bytes (a prefix pads with zeros, which sort
    /// first), without a `memcmp` call. The keydir's lookups compare a dozen keys per level.
    #[inline(always)]
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Key::Inline(la, a), Key::Inline(lb, b)) => words(a).cmp(&words(b)).then(la.cmp(lb)),
            _ => cmp_bytes(self, other),
        }
    }
}

#[inline(never)]
fn cmp_bytes(a: &Key, b: &Key) -> Ordering {
    a.as_bytes().cmp(b.as_bytes())
}

/// The inline bytes as big-endian words (the last one zero-padded).
#[inline(always)]
fn words(b: &[u8; INLINE]) -> (u64, u64, u64) {
    let [
        b0,
        b1,
        b2,
        b3,
        b4,
        b5,
        b6,
        b7,
        b8,
        b9,
        b10,
        b11,
        b12,
        b13,
        b14,
        b15,
        b16,
        b17,
        b18,
        b19,
        b20,
        b21,
    ] = *b;
    (
        u64::from_be_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        u64::from_be_bytes([b8, b9, b10, b11, b12, b13, b14, b15]),
        u64::from_be_bytes([b16, b17, b18, b19, b20, b21, 0, 0]),
    )
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?})", self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap_keys_behave_like_their_bytes() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        let keys: Vec<Key> = [&b""[..], b"a", &[7; 20], &[7; 21], &[7; 22], &[7; 100]]
            .iter()
            .map(|k| Key::new(3, k))
            .collect();
        for (k, len) in keys.iter().zip([0, 1, 20, 21, 22, 100]) {
            assert_eq!(k.len(), len + 1);
            assert_eq!(k[0], 3);
            assert_eq!(k.user_key().len(), len);
            assert_eq!(&Key::from_bytes(k), k);
        }
        assert!(matches!(keys[3], Key::Inline(..)) && matches!(keys[4], Key::Heap(_)));
        // Order is byte order, whatever the representation.
        let mut sorted = keys.clone();
        sorted.sort();
        let mut by_bytes: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        by_bytes.sort();
        assert_eq!(
            sorted.iter().map(|k| k.to_vec()).collect::<Vec<_>>(),
            by_bytes
        );
        assert!(Key::new(1, &[9; 30]) < Key::new(2, b""));
        // Zero bytes and padding: a prefix sorts first, whatever follows it.
        let tricky: Vec<Key> = [
            &b""[..],
            b"\0",
            b"\0\0",
            b"\0\x01",
            b"\x01",
            &[0; 20],
            &[0; 21],
        ]
        .iter()
        .map(|k| Key::new(0, k))
        .collect();
        for a in &tricky {
            for b in &tricky {
                assert_eq!(a.cmp(b), a.as_bytes().cmp(b.as_bytes()), "{a:?} {b:?}");
                assert_eq!(a == b, a.as_bytes() == b.as_bytes());
            }
        }
    }
}
