//! Whole-file operations over a [`Storage`] that several engine files need.

use kv_api::{Error, Result, Storage, StorageFile};

/// Reads all of `file` (named `name`, for errors). A length that does not fit in memory is
/// [`Error::Corruption`].
pub async fn read_all<F: StorageFile>(file: &F, name: &str) -> Result<Vec<u8>> {
    let len = file.len().await?;
    let len = usize::try_from(len).map_err(|_| {
        Error::corruption(
            name,
            0,
            format!("file of {len} bytes does not fit in memory"),
        )
    })?;
    if len == 0 {
        return Ok(Vec::new());
    }
    file.read_at(0, len).await
}

/// How much [`append_in_pieces`] appends at a time: copied into a backend's buffer in well
/// under a millisecond.
const PIECE: usize = 256 << 10;

/// Appends `bytes` to `file` in pieces of at most 256 KiB, letting other tasks run between
/// them, for a large file that only the calling task appends to (a hint file of a sealed
/// segment: tens of MiB). One append copies all its bytes in one poll, which held an executor
/// thread for milliseconds (#12). Returns the offset of the first byte. The pieces are
/// separate appends: after a crash the file may hold only some of them, as it may after any
/// append that was not synced.
///
/// ```
/// use kv_api::StorageFile;
///
/// async fn write_hint(file: &impl StorageFile, hint: &[u8]) -> kv_api::Result<()> {
///     kv_engine_kit::files::append_in_pieces(file, hint).await?;
///     file.sync().await
/// }
/// ```
pub async fn append_in_pieces<F: StorageFile>(file: &F, bytes: &[u8]) -> Result<u64> {
    let mut pieces = bytes.chunks(PIECE);
    let first = file.append(pieces.next().unwrap_or_default()).await?;
    for piece in pieces {
        kv_api::yield_now().await;
        file.append(piece).await?;
    }
    Ok(first)
}

/// Replaces file `name` with `contents`, atomically and durably: written and synced under
/// `tmp`, renamed over `name`, then the namespace synced. After a crash `name` holds the old
/// or the new contents, never a mix.
pub async fn replace<S: Storage>(
    storage: &S,
    tmp: &str,
    name: &str,
    contents: &[u8],
) -> Result<()> {
    let file = storage.create(tmp).await?;
    file.append(contents).await?;
    file.sync().await?;
    drop(file);
    storage.rename(tmp, name).await?;
    storage.sync().await
}
