//! The checks IndexedDB's chunk layout (`indexeddb/layout.rs`) makes on what it reads back: a
//! stored number as a file id or length, the partial last chunk of a file, and a run of full
//! chunks. Apart from the JavaScript glue so that they compile natively too, for the unit tests
//! and the fuzz targets (feature `fuzzing`).

use kv_api::{Error, Result};

/// Size of the chunks files are cut into in IndexedDB (64 KiB).
pub const CHUNK_SIZE: u64 = 64 << 10;

/// A stored number as a file id or length: an integer in `0..2^53` (exact as an `f64`).
pub(crate) fn as_u64(f: Option<f64>) -> Option<u64> {
    f.filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9_007_199_254_740_992.0)
        .map(|f| f as u64)
}

/// The partial last chunk of file `name` of durable length `len`, from the bytes stored for
/// chunk `len / CHUNK_SIZE`: they must hold at least `len % CHUNK_SIZE` bytes.
pub(crate) fn partial_chunk(name: &str, len: u64, mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    let keep = (len % CHUNK_SIZE) as usize;
    if bytes.len() < keep {
        return Err(Error::corruption(
            name,
            len / CHUNK_SIZE * CHUNK_SIZE,
            format!("last chunk has {} bytes, length needs {keep}", bytes.len()),
        ));
    }
    bytes.truncate(keep);
    Ok(bytes)
}

/// Chunks `first..=last` of file `name` from the values read for them (in key order), each
/// turned into bytes by `bytes(offset, value)`: there must be exactly one value per chunk, each
/// a full chunk.
pub(crate) fn full_chunks<T>(
    name: &str,
    first: u64,
    last: u64,
    values: Vec<T>,
    bytes: impl Fn(u64, T) -> Result<Vec<u8>>,
) -> Result<Vec<Vec<u8>>> {
    let want = (last - first + 1) as usize;
    if values.len() != want {
        // More values than chunks is damage too (keys in the range that are not whole chunk
        // indexes): reported, never computed as an unsigned difference.
        let what = match want.checked_sub(values.len()) {
            Some(missing) => format!("{missing} of {want} chunks are missing"),
            None => format!("{} values for {want} chunks", values.len()),
        };
        let at = first.saturating_add(values.len() as u64);
        return Err(Error::corruption(name, at.saturating_mul(CHUNK_SIZE), what));
    }
    values
        .into_iter()
        .zip(first..)
        .map(|(v, index)| {
            let at = index * CHUNK_SIZE;
            let b = bytes(at, v)?;
            if b.len() as u64 != CHUNK_SIZE {
                return Err(Error::corruption(
                    name,
                    at,
                    format!("chunk has {} bytes, expected {CHUNK_SIZE}", b.len()),
                ));
            }
            Ok(b)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize) -> Option<Vec<u8>> {
        Some(vec![7; n])
    }

    fn present(at: u64, v: Option<Vec<u8>>) -> Result<Vec<u8>> {
        v.ok_or_else(|| Error::corruption("f", at, "chunk is missing"))
    }

    #[test]
    fn numbers() {
        assert_eq!(as_u64(Some(3.0)), Some(3));
        for bad in [None, Some(-1.0), Some(0.5), Some(f64::NAN), Some(9.1e15)] {
            assert_eq!(as_u64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn partial_and_full_chunks() {
        let len = 2 * CHUNK_SIZE + 10;
        assert_eq!(
            partial_chunk("f", len, vec![1; 12]).expect("partial"),
            vec![1; 10]
        );
        assert!(partial_chunk("f", len, vec![1; 9]).is_err());
        let full = CHUNK_SIZE as usize;
        let got = full_chunks("f", 3, 4, vec![chunk(full), chunk(full)], present);
        assert_eq!(got.expect("full").len(), 2);
        for bad in [
            vec![chunk(full)],
            vec![chunk(full), chunk(full - 1)],
            vec![chunk(full), None],
        ] {
            assert!(full_chunks("f", 3, 4, bad, present).is_err());
        }
    }

    /// Found by the `idb_chunks` fuzz target (`fuzz/regressions/idb_chunks/`): a read that
    /// returns more values than chunks asked for (keys such as `[id, 1.5]` inside the range)
    /// underflowed `want - values.len()`.
    #[test]
    fn more_values_than_chunks_is_corruption() {
        let full = CHUNK_SIZE as usize;
        let r = full_chunks("f", 0, 0, vec![chunk(full), chunk(full)], present);
        assert!(matches!(r, Err(Error::Corruption { .. })));
    }
}
