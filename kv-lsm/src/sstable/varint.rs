//! Variable-length integers of the table format: LEB128 varints (block entries, index
//! values; `kv_api::bytes`'s) and the zigzag mapping that keeps small signed deltas small.

// The varints themselves are `kv_api::bytes`'s, shared with the transaction log.
pub(crate) use kv_api::bytes::{get_varint, put_varint};

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
