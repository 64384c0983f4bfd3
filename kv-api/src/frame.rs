//! The one CRC framing of every record the engines write (Bitcask log, LSM WAL, hint files,
//! manifests): `crc32 (u32 LE) | len (u32 LE) | payload (len bytes)`, where the CRC covers the
//! length field and the payload, so a torn or flipped length is detected too.

use crate::bytes::u32_at;

/// Bytes before the payload.
pub const HEADER_LEN: usize = 8;

/// Largest payload a frame may carry (the length field is a u32; keep well below it).
pub const MAX_PAYLOAD: usize = u32::MAX as usize - 1024;

/// Appends one frame holding `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    encode_with(out, |buf| buf.extend_from_slice(payload));
}

/// Appends one frame to `out` whose payload is written in place by `write` (no copy).
/// Returns the frame's offset within `out`.
///
/// # Panics
///
/// If the payload is longer than [`MAX_PAYLOAD`] (callers bound their payloads, as
/// `kv_engine_kit::txlog::encode_txn` does; a frame must never carry a length cut to its `u32`
/// field), or if `write` removes bytes it did not append.
pub fn encode_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    write(out);
    let header_gone = "`write` removed the frame's header";
    let Some((crc_field, covered)) = out
        .get_mut(start..)
        .and_then(|frame| frame.split_first_chunk_mut::<4>())
    else {
        panic!("{header_gone}");
    };
    let Some((len_field, payload)) = covered.split_first_chunk_mut::<4>() else {
        panic!("{header_gone}");
    };
    let len = match u32::try_from(payload.len()) {
        Ok(len) if payload.len() <= MAX_PAYLOAD => len,
        _ => panic!(
            "frame payload of {} bytes exceeds MAX_PAYLOAD ({MAX_PAYLOAD})",
            payload.len()
        ),
    };
    *len_field = len.to_le_bytes();
    *crc_field = crc32fast::hash(covered).to_le_bytes();
    start
}

/// What [`decode`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole, valid frame; `next` is the offset just after it.
    Frame {
        /// The payload.
        payload: &'a [u8],
        /// Offset of the following frame.
        next: usize,
    },
    /// The buffer ends at this offset exactly.
    End,
    /// The buffer ends inside the frame (a torn tail, or a corrupted length).
    Truncated,
    /// The CRC does not match.
    BadCrc,
}

/// Decodes the frame starting at `offset` of `buf`. Never panics.
pub fn decode(buf: &[u8], offset: usize) -> Decoded<'_> {
    let Some(rest) = buf.get(offset..) else {
        return Decoded::Truncated;
    };
    if rest.is_empty() {
        return Decoded::End;
    }
    let Some(header) = rest.get(..HEADER_LEN) else {
        return Decoded::Truncated;
    };
    let (Some(crc), Some(len)) = (u32_at(header, 0), u32_at(header, 4)) else {
        return Decoded::Truncated;
    };
    // Checked: on a 32-bit target (wasm32) a forged length could overflow `usize`.
    let Some(end) = usize::try_from(len)
        .ok()
        .and_then(|len| len.checked_add(HEADER_LEN))
    else {
        return Decoded::Truncated;
    };
    let Some(body) = rest.get(4..end) else {
        return Decoded::Truncated;
    };
    if crc32fast::hash(body) != crc {
        return Decoded::BadCrc;
    }
    // Both always succeed: `body` holds the length field, and `end` lies inside `buf`.
    let (Some((_, payload)), Some(next)) = (body.split_first_chunk::<4>(), offset.checked_add(end))
    else {
        return Decoded::Truncated;
    };
    Decoded::Frame { payload, next }
}

/// Checks a buffer that must hold exactly one frame (a record read back by its location) and
/// returns its payload, or a reason for the corruption error.
pub fn decode_exact(buf: &[u8]) -> Result<&[u8], &'static str> {
    match decode(buf, 0) {
        Decoded::Frame { payload, next } if next == buf.len() => Ok(payload),
        Decoded::Frame { .. } => Err("frame length does not match its location"),
        Decoded::End | Decoded::Truncated => Err("truncated frame"),
        Decoded::BadCrc => Err("crc mismatch"),
    }
}

/// Valid frames found by scanning byte by byte from `from` (after one is found, the scan goes
/// on after it). Used by recovery to tell a torn tail (nothing valid follows the damage) from
/// damage in the middle of a file (valid data follows, which must not be dropped silently).
///
/// `worth` sees what a candidate frame would carry as its payload (inside the buffer, but not
/// yet checked against its CRC) and says whether to check it. Recovery asks only for the
/// records it looks for (the right kind, a sequence number in the right window), so damaged
/// bytes almost never cost a CRC over a forged length: without that filter, each offset inside
/// a torn multi-MiB record could CRC up to the rest of the file, and reopening after a torn
/// 32 MiB value took close to a minute. With it the scan is linear in the bytes scanned.
pub fn valid_frames_after(
    buf: &[u8],
    from: usize,
    worth: impl Fn(&[u8]) -> bool,
) -> impl Iterator<Item = (usize, &[u8])> {
    let mut at = from;
    std::iter::from_fn(move || {
        while at.saturating_add(HEADER_LEN) <= buf.len() {
            if candidate(buf, at).is_some_and(&worth)
                && let Decoded::Frame { payload, next } = decode(buf, at)
            {
                let found = at;
                at = next;
                return Some((found, payload));
            }
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "the loop condition keeps `at` below `buf.len()`"
            )]
            {
                at += 1;
            }
        }
        None
    })
}

/// The offset of the first whole frame with a wrong CRC among the frames from `from` on, if
/// any: walks frame after frame and stops at the end, at a truncated frame, or at that one.
/// What a crash leaves at the end of a log is a cut (truncated) append; a whole frame whose
/// CRC fails is damage wherever it lies.
pub fn first_bad_crc(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        match decode(buf, at) {
            Decoded::Frame { next, .. } => at = next,
            Decoded::BadCrc => return Some(at),
            Decoded::End | Decoded::Truncated => return None,
        }
    }
}

/// The unchecked payload a frame at `at` would have, if its length stays inside `buf`.
fn candidate(buf: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::try_from(u32_at(buf, at.checked_add(4)?)?).ok()?;
    let start = at.checked_add(HEADER_LEN)?;
    buf.get(start..start.checked_add(len)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let mut buf = Vec::new();
        encode(b"hello", &mut buf);
        encode(b"", &mut buf);
        let Decoded::Frame { payload, next } = decode(&buf, 0) else {
            panic!("first frame");
        };
        assert_eq!(payload, b"hello");
        assert_eq!(
            decode(&buf, next),
            Decoded::Frame {
                payload: b"",
                next: buf.len()
            }
        );
        assert_eq!(decode(&buf, buf.len()), Decoded::End);
        for cut in 1..HEADER_LEN + 5 {
            assert_eq!(decode(&buf[..cut], 0), Decoded::Truncated, "cut at {cut}");
        }
        for i in 0..HEADER_LEN + 5 {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(!matches!(
                decode(&bad, 0),
                Decoded::Frame {
                    payload: b"hello",
                    ..
                }
            ));
        }
        assert_eq!(decode_exact(&buf[..next]), Ok(&b"hello"[..]));
        assert!(decode_exact(&buf).is_err());
        assert_eq!(
            valid_frames_after(&buf, 1, |_| true)
                .map(|(at, _)| at)
                .next(),
            Some(next)
        );
        assert_eq!(valid_frames_after(&buf, 1, |p| !p.is_empty()).next(), None);
        assert_eq!(first_bad_crc(&buf, 0), None);
        assert_eq!(
            first_bad_crc(&buf[..buf.len() - 1], 0),
            None,
            "a cut is no CRC damage"
        );
        let mut bad = buf.clone();
        let last = bad.len() - 1;
        bad[last - 4] ^= 1;
        assert_eq!(first_bad_crc(&bad, 0), Some(next), "the last frame's CRC");
    }
}
