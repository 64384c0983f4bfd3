//! Entry points into the IndexedDB chunk layout's checks for the `kv-fuzz` crate (cargo
//! feature `fuzzing`, off by default); they compile natively, without IndexedDB.

use kv_api::{Error, Result};

pub use crate::chunks::CHUNK_SIZE;

/// A stored number as a file id or length (`None`: not a number).
pub fn as_u64(f: Option<f64>) -> Option<u64> {
    crate::chunks::as_u64(f)
}

/// The partial last chunk of a file of durable length `len` from its stored bytes.
pub fn partial_chunk(len: u64, bytes: Vec<u8>) -> Result<Vec<u8>> {
    crate::chunks::partial_chunk("fuzz", len, bytes)
}

/// Chunks `first..=last` from the values read for them; `None` is a value that is not bytes.
pub fn full_chunks(first: u64, last: u64, values: Vec<Option<Vec<u8>>>) -> Result<Vec<Vec<u8>>> {
    crate::chunks::full_chunks("fuzz", first, last, values, |at, v| {
        v.ok_or_else(|| Error::corruption("fuzz", at, "chunk is not bytes"))
    })
}
