//! Variable-length integers of the table format: LEB128 varints (block entries, index
//! values) and the zigzag mapping that keeps small signed deltas small.

/// Appends `v` as a LEB128 varint.
#[expect(
    clippy::cast_possible_truncation,
    reason = "each byte keeps the low 7 bits of `v` on purpose (LEB128)"
)]
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint at `*at`, advancing it. `None` if truncated or overlong.
#[inline(always)]
#[expect(
    clippy::arithmetic_side_effects,
    reason = "`*at` advances past a byte just read, so stays <= buf.len(); `shift` stops at 70"
)]
pub(crate) fn get_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
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

pub(crate) fn zigzag(delta: i64) -> u64 {
    ((delta << 1) ^ (delta >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ (v & 1).wrapping_neg() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut at = 0;
            assert_eq!(get_varint(&buf, &mut at), Some(v));
            assert_eq!(at, buf.len());
            assert_eq!(get_varint(&buf[..buf.len() - 1], &mut 0), None);
            assert_eq!(get_varint(&[0x80; 11], &mut 0), None);
        }
        for d in [0i64, 1, -1, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(d)), d);
        }
    }
}
