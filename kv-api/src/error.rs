//! The one error type of the store, shared by every engine and backend.

use std::fmt;
use std::sync::Arc;

/// How many file names an [`Error::Foreign`] lists before it says how many more there are.
const FOREIGN_NAMES_SHOWN: usize = 8;

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
    /// Another writer holds the storage: another process, or another store of this process.
    /// A store holds its writer lock until [`crate::Store::close`], or until every clone of it
    /// and every transaction and snapshot taken from it are dropped; the message says which
    /// holder the backend sees (the file and memory backends tell this process from another).
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
    /// The store was opened read-only and a mutation was attempted (or a commit after the
    /// largest sequence number, `u64::MAX`, which only damaged storage can hold).
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
    /// A change feed ([`crate::Watch`]) fell behind: its buffer filled up while the store went
    /// on committing, so it stopped receiving changes rather than slow the writers down or
    /// skip some silently. Every change up to and including commit `resume_from` was
    /// delivered; [`crate::Store::watch_from`] with `resume_from` continues with the next one
    /// (while `merge` has not dropped the versions after it).
    #[error("the change feed fell behind; resume after {resume_from}")]
    Lagged {
        /// The last commit whose changes were all delivered.
        resume_from: crate::Version,
    },
    /// An earlier write to storage failed, so the engine refuses further writes until it is
    /// reopened (its in-memory state may be ahead of what is durable). Reads keep working.
    ///
    /// `cause` is that failure, as the engine got it (usually an [`Error::Io`]);
    /// [`std::error::Error::source`] walks on to it (as `Arc<Error>`) and from there to the
    /// backend's `std::io::Error`. The call that failed got a copy of it
    /// ([`Error::duplicate`]).
    #[error("the store refuses writes after an earlier storage failure: {cause}")]
    Poisoned {
        /// The storage failure that poisoned the store.
        #[source]
        cause: Arc<Error>,
    },
    /// A typed slot was opened with a definition ([`crate::SlotDef`]) whose name, key type or
    /// value type differs from what the store's catalog records for that slot number: reading
    /// it would decode the stored bytes as another type. Fix the definition, or, for a
    /// deliberate migration, record the new one with [`crate::Store::redefine_slot`].
    #[error(
        "slot {slot} ({name}) is recorded with {what} {recorded}, not {requested} (Store::redefine_slot records a new definition)"
    )]
    SlotTypeMismatch {
        /// The slot number.
        slot: u8,
        /// The slot's name in the definition that was opened.
        name: String,
        /// What differs: `"name"`, `"key type"` or `"value type"`.
        what: &'static str,
        /// What the catalog records.
        recorded: String,
        /// What the definition says.
        requested: String,
    },
    /// The caller passed something meaningless (an inverted range, an unknown option value).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The storage is not a store of this engine: it has no manifest of `engine` and holds
    /// files `engine` does not recognise as its own (a store of another engine, or unrelated
    /// files). The open created and deleted nothing. Not [`Error::Corruption`]: nothing of a
    /// store of `engine` is damaged; the wrong engine or the wrong place was opened. (The
    /// backend's own lock file, such as `FileStorage`'s `LOCK`, is not a file of the
    /// namespace and never counts.)
    #[error(
        "not a {engine} store: the storage has no {engine} manifest and holds files {engine} did not write: {found}"
    )]
    Foreign {
        /// The engine that refused ([`crate::Engine::NAME`]).
        engine: &'static str,
        /// The files it does not recognise, sorted, comma-separated (the first few, then how
        /// many more).
        found: String,
    },
    /// The storage holds a store this engine cannot open: its `IDENTITY` names another engine
    /// or a newer format, or it is a store of this engine's format 1, from before stores had
    /// an identity. The open created and deleted nothing. Open it with the engine (and a
    /// build) that `found` names.
    #[error("cannot open as a {engine} store: the storage holds {found}")]
    Incompatible {
        /// The engine that refused ([`crate::Engine::NAME`]).
        engine: &'static str,
        /// What the storage holds.
        found: String,
    },
}

/// A bare I/O error (from a backend of your own, say), as an [`Error::Io`] whose operation
/// is `"i/o"`. Prefer [`Error::io`], which names the operation.
///
/// ```
/// fn read_config() -> kv_api::Result<String> {
///     Ok(std::fs::read_to_string("/nonexistent/kv.toml")?)
/// }
/// assert!(matches!(read_config(), Err(kv_api::Error::Io { .. })));
/// ```
impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::io("i/o", source)
    }
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

    /// A copy of this error, to report one failure in two places (the call that failed, and
    /// as the `cause` of the [`Error::Poisoned`] of later calls). `std::io::Error` is not
    /// `Clone`: the copy of an [`Error::Io`] has the same operation, OS error code or else
    /// kind and message, but not the original's inner error object (its `source`).
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Io { op, source } => Error::Io {
                op: op.clone(),
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            Error::Corruption {
                file,
                offset,
                reason,
            } => Error::Corruption {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            Error::Encode { what, reason } => Error::Encode {
                what,
                reason: reason.clone(),
            },
            Error::Decode {
                what,
                type_name,
                reason,
            } => Error::Decode {
                what,
                type_name,
                reason: reason.clone(),
            },
            Error::Conflict(s) => Error::Conflict(s.clone()),
            Error::Locked(s) => Error::Locked(s.clone()),
            Error::TooLarge { what, size, max } => Error::TooLarge {
                what,
                size: *size,
                max: *max,
            },
            Error::Closed => Error::Closed,
            Error::ReadOnly(what) => Error::ReadOnly(what),
            Error::VersionNotFound { seq, reason } => Error::VersionNotFound { seq: *seq, reason },
            Error::Lagged { resume_from } => Error::Lagged {
                resume_from: *resume_from,
            },
            Error::Poisoned { cause } => Error::Poisoned {
                cause: cause.clone(),
            },
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
            Error::SlotTypeMismatch {
                slot,
                name,
                what,
                recorded,
                requested,
            } => Error::SlotTypeMismatch {
                slot: *slot,
                name: name.clone(),
                what,
                recorded: recorded.clone(),
                requested: requested.clone(),
            },
            Error::Foreign { engine, found } => Error::Foreign {
                engine,
                found: found.clone(),
            },
            Error::Incompatible { engine, found } => Error::Incompatible {
                engine,
                found: found.clone(),
            },
        }
    }

    /// An [`Error::Foreign`] of `engine`, naming the files it found (sorted; the first
    /// eight, then how many more).
    pub fn foreign<N: AsRef<str>>(engine: &'static str, found: &[N]) -> Self {
        let mut names: Vec<&str> = found.iter().map(AsRef::as_ref).collect();
        names.sort_unstable();
        let mut list = names
            .iter()
            .take(FOREIGN_NAMES_SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        let more = names.len().saturating_sub(FOREIGN_NAMES_SHOWN);
        if more > 0 {
            list.push_str(&format!(" and {more} more"));
        }
        Error::Foreign {
            engine,
            found: list,
        }
    }

    /// True for [`Error::Conflict`]: the transaction may simply be retried.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn duplicates_keep_what_io_errors_say() {
        let os = Error::io("sync seg-1", std::io::Error::from_raw_os_error(28));
        let copy = os.duplicate();
        assert_eq!(copy.to_string(), os.to_string());
        let Error::Io { source, op } = &copy else {
            panic!("{copy:?}");
        };
        assert_eq!(
            (op.as_str(), source.raw_os_error()),
            ("sync seg-1", Some(28))
        );

        let other = Error::io(
            "append",
            std::io::Error::new(std::io::ErrorKind::WriteZero, "full"),
        );
        let copy = other.duplicate();
        assert_eq!(copy.to_string(), other.to_string());
        assert!(matches!(
            &copy,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::WriteZero
        ));
        let corrupt = Error::corruption("seg-2", 7, "crc mismatch");
        assert_eq!(corrupt.duplicate().to_string(), corrupt.to_string());
        let foreign = Error::foreign("lsm", &["META", "00000001.log"]);
        assert_eq!(foreign.duplicate().to_string(), foreign.to_string());
    }

    #[test]
    fn foreign_names_are_sorted_and_capped() {
        let Error::Foreign { engine, found } = Error::foreign("lsm", &["META", "00000001.log"])
        else {
            panic!("not Foreign");
        };
        assert_eq!((engine, found.as_str()), ("lsm", "00000001.log, META"));
        let many: Vec<String> = (0..12).map(|i| format!("f{i:02}")).collect();
        let Error::Foreign { found, .. } = Error::foreign("bitcask", &many) else {
            panic!("not Foreign");
        };
        assert_eq!(found, "f00, f01, f02, f03, f04, f05, f06, f07 and 4 more");
    }

    #[test]
    fn poisoned_walks_to_its_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let poisoned = Error::Poisoned {
            cause: Arc::new(Error::io("sync", io)),
        };
        assert!(
            poisoned
                .to_string()
                .ends_with("i/o error during sync: disk full")
        );
        let cause = poisoned.source().expect("the cause");
        assert!(cause.downcast_ref::<Arc<Error>>().is_some());
        let io = cause.source().expect("the i/o error");
        let io = io
            .downcast_ref::<std::io::Error>()
            .expect("a std::io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::StorageFull);
        assert!(matches!(poisoned.duplicate(), Error::Poisoned { .. }));
    }
}
