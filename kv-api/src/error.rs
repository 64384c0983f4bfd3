//! The one error type of the store, shared by every engine and backend.

use std::fmt;

/// Result alias used throughout the crates of this workspace.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, as distinct variants so that callers can react to each.
///
/// Storage and input can never make the library panic: they produce one of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend failed an operation (disk full, permission, IndexedDB error, injected fault).
    #[error("i/o error during {op}: {source}")]
    Io {
        /// What the store was doing.
        op: String,
        /// The backend's error.
        #[source]
        source: std::io::Error,
    },
    /// Stored data failed a check (CRC mismatch, impossible length, unknown record kind,
    /// missing file named by the manifest). Nothing is skipped silently.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// The file (backend name) where the damage was found.
        file: String,
        /// The byte offset in that file.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A key or value could not be serialized.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// `"key"` or `"value"`.
        what: &'static str,
        /// The serializer's message.
        reason: String,
    },
    /// Stored bytes do not decode as the requested type (reading a value as the wrong type).
    #[error("cannot decode {what} as {type_name}: {reason}")]
    Decode {
        /// `"key"` or `"value"`.
        what: &'static str,
        /// The Rust type that was requested.
        type_name: &'static str,
        /// The deserializer's message.
        reason: String,
    },
    /// Optimistic concurrency: another transaction committed a key this one read, scanned or
    /// wrote after this one started. Nothing of this transaction was written; retry it.
    #[error("transaction conflict: {0}")]
    Conflict(String),
    /// Another writer holds the storage (a second process or a second open store).
    #[error("storage is locked by another writer: {0}")]
    Locked(String),
    /// A key or value is larger than the configured maximum.
    #[error("{what} of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// `"key"` or `"value"` or `"transaction"`.
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The store was closed; open it again.
    #[error("the store is closed")]
    Closed,
    /// The store was opened read-only and a mutation was attempted.
    #[error("the store is read-only: {0} is not allowed")]
    ReadOnly(&'static str),
    /// The requested version is unknown for this key, or was dropped by `merge`.
    #[error("version {seq} is not available: {reason}")]
    VersionNotFound {
        /// The commit sequence number asked for.
        seq: u64,
        /// Why it is not available.
        reason: &'static str,
    },
    /// An earlier write to storage failed, so the engine refuses further writes until it is
    /// reopened (its in-memory state may be ahead of what is durable). Reads keep working.
    #[error("the store refuses writes after an earlier storage failure: {0}")]
    Poisoned(String),
    /// The caller passed something meaningless (an inverted range, an unknown option value).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// An [`Error::Io`] for operation `op`.
    pub fn io(op: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            op: op.to_string(),
            source,
        }
    }

    /// An [`Error::Corruption`] in `file` at `offset`.
    pub fn corruption(file: impl fmt::Display, offset: u64, reason: impl fmt::Display) -> Self {
        Error::Corruption {
            file: file.to_string(),
            offset,
            reason: reason.to_string(),
        }
    }

    /// True for [`Error::Conflict`]: the transaction may simply be retried.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }
}
