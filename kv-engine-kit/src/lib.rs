//! The machinery that the `kv-db` store's engines share, kept out of the user-facing API.
//!
//! `kv-api` is the contract (the typed API, the `Storage` and `Engine` traits, errors,
//! options); this crate is how the workspace's own engines fulfil it without writing the same
//! code twice. Users never depend on it, and an engine written elsewhere need not either.
//!
//! * [`frame`]: the one CRC framing of every record the engines write (from `kv-api`).
//! * [`txlog`]: the transaction log format of the Bitcask log and the LSM write-ahead log,
//!   and its recovery.
//! * [`commit`]: ordering, validation, group commit and visibility ([`commit::CommitPipeline`]).
//! * [`conflict`]: the optimistic conflict tracker the pipeline uses.
//! * [`cache`]: the sharded, byte-bounded read cache (also the chunk cache of
//!   `kv_backends::IndexedDbStorage`).
//! * [`identity`]: the `IDENTITY` file that says which engine's store a storage holds.
//! * [`header`]: the header every file of a store begins with (store id, file id, kind).
//! * [`bytes`]: checked little-endian reads of bytes that came from storage (from `kv-api`).
//! * [`files`]: whole-file reads and atomic replacement over a [`kv_api::Storage`].
//! * [`verify`]: what the engines' integrity checks share.
//! * [`parallel`]: CPU work of an open split over two threads where there are threads.
//! * [`retention`]: what a merge keeps of each key, under the store's retention policy.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Numbers read from storage or given by callers are checked (issue #19): each exception is an
// `#[expect(lint, reason = "...")]` on the smallest item. Tests may panic on purpose.
#![deny(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used
)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used
    )
)]

pub mod cache;
pub mod commit;
pub mod conflict;
pub mod files;
pub mod header;
pub mod identity;
pub mod parallel;
pub mod retention;
pub mod txlog;
pub mod verify;

// Moved down into `kv-api` (the export stream is framed the same way); re-exported so that
// the engines' paths stay as they were.
pub use kv_api::{bytes, frame};
