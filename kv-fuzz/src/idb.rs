//! The checks `IndexedDbStorage` makes on the chunks it reads back (`kv-backends`, natively).

use kv_backends::fuzzing::{self as idb, CHUNK_SIZE};

use crate::util::Fields;

/// Most values one input lists (each may stand for up to 128 KiB of chunk).
const MAX_VALUES: usize = 64;

/// The input as what IndexedDB hands back for one file: `len u64` (also read as the bits of
/// a stored number), `first u16`, `last u16`, then values `tag u8 | size u32`, each bytes of
/// `size % 2 * CHUNK_SIZE` (or, for an even tag, not bytes at all). A partial chunk is cut
/// to the length's remainder; full chunks come one per index asked for, each whole.
pub fn idb_chunks(data: &[u8]) {
    let mut f = Fields(data);
    let len = f.u64();
    let _ = idb::as_u64(Some(f64::from_bits(len)));
    let (a, b) = (u64::from(f.u16()), u64::from(f.u16()));
    // The callers ask for `first <= last` (a read's chunk range): only the values are data.
    let (first, last) = (a.min(b), a.max(b));
    let mut values = Vec::new();
    while !f.0.is_empty() && values.len() < MAX_VALUES {
        let tag = f.u8();
        let size = (u64::from(f.u32()) % (2 * CHUNK_SIZE)) as usize;
        values.push((tag % 2 == 1).then(|| vec![tag; size]));
    }
    if let Some(Some(bytes)) = values.first()
        && let Ok(partial) = idb::partial_chunk(len, bytes.clone())
    {
        assert_eq!(partial.len() as u64, len % CHUNK_SIZE);
        assert!(bytes.starts_with(&partial));
    }
    let n = values.len();
    if let Ok(chunks) = idb::full_chunks(first, last, values) {
        assert_eq!(chunks.len() as u64, last - first + 1);
        assert_eq!(chunks.len(), n);
        assert!(chunks.iter().all(|c| c.len() as u64 == CHUNK_SIZE));
    }
}
