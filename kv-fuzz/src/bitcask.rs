//! Bitcask's own files: hint files, `META`, merged segments (record kinds 4 and 5).

use kv_bitcask::fuzzing as bc;

use kv_engine_kit::header;

use crate::util::{both, fix_frames, header_ids};

/// Footer of a hint file: `2 | segment id u32 | segment length u64 | 3 × u64`, in a frame.
const HINT_FOOTER: usize = 1 + 4 + 8 * 4;

/// A hint file, decoded for the store and segment id its header names (the footer's id if it
/// has no header) and the segment length its footer names (as recovery does when they match)
/// and for another length. What it decodes to re-encodes canonically, and that encoding
/// decodes to the same entries.
pub fn bitcask_hint(data: &[u8]) {
    both(data, fix_frames(data), |buf| {
        let footer = buf.len().checked_sub(HINT_FOOTER).map(|at| &buf[at..]);
        let field = |at: usize, n: usize| {
            let mut b = [0u8; 8];
            if let Some(f) = footer {
                b[..n].copy_from_slice(&f[at..at + n]);
            }
            u64::from_le_bytes(b)
        };
        // Recovery asks only for ids of segments, which a keydir location can hold.
        let (store, file_id) = header_ids(buf);
        let id = match u32::try_from(file_id) {
            Ok(id) if file_id != 0 => id,
            _ => field(1, 4) as u32,
        }
        .min(bc::MAX_SEGMENT_ID);
        let segment_len = field(5, 8);
        for len in [segment_len, segment_len / 2] {
            let Some((canonical, n)) = bc::hint(buf, store, id, len) else {
                continue;
            };
            assert_eq!(
                bc::hint(&canonical, store, id, len),
                Some((canonical.clone(), n)),
                "re-encoded hint decodes to the same"
            );
        }
    });
}

/// A `META` file of the store its header names: one encoding per manifest, so what decodes
/// re-encodes to the same bytes.
pub fn bitcask_meta(data: &[u8]) {
    both(data, fix_frames(data), |buf| {
        if let Ok(again) = bc::meta(buf, header_ids(buf).0) {
            assert_eq!(again, buf, "re-encoded META");
        }
    });
}

/// A merged segment, replayed as recovery does (after its header, whatever it holds): its
/// header and records re-encode to the same bytes, and each record's location reads back (as
/// a read by location does) the same write. The input is also read as one record by location.
pub fn bitcask_merged(data: &[u8]) {
    let _ = bc::write_frame(data);
    both(data, fix_frames(data), |buf| {
        let Ok(records) = bc::merged_replay(buf) else {
            return;
        };
        let mut again = buf[..header::LEN].to_vec();
        for (seq, time_ms, slot, key, value, offset, len) in &records {
            bc::merged_encode(&mut again, *seq, *time_ms, *slot, key, value.as_deref());
            let at = *offset as usize;
            let frame_bytes = &buf[at..at + *len as usize];
            let read = bc::write_frame(frame_bytes).expect("a replayed record reads back");
            assert_eq!(read, (*seq, *slot, key.clone(), value.clone()));
        }
        assert_eq!(again, buf, "re-encoded merged segment");
    });
}
