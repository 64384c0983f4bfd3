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
