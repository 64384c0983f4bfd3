//! The Bitcask engine of the `kv-db` store: an append-only log of transactions, every key's
//! versions indexed in memory, hint files for fast reopening, and `merge` to compact.
//!
//! ```
//! use kv_api::Store;
//! use kv_backends::MemoryStorage;
//! use kv_bitcask::Bitcask;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> kv_api::Result<()> {
//! let storage = MemoryStorage::new();
//! let store = Store::<Bitcask<MemoryStorage>>::open(storage.clone()).await?;
//! let mut txn = store.current();
//! txn.insert(0, &"key1", 1u8)?;
//! txn.commit().await?;
//! let mut txn = store.current();
//! txn.insert(0, &"key1", 2u8)?;
//! txn.commit().await?;
//!
//! let txn = store.snapshot();
//! assert_eq!(txn.versions(0, &"key1").await?.len(), 2);
//! drop(txn);
//! store.merge().await?; // keeps only the latest value of each key
//! drop(store);
//!
//! let store = Store::<Bitcask<MemoryStorage>>::open(storage).await?;
//! let txn = store.snapshot();
//! assert_eq!(txn.get::<_, u8>(0, &"key1").await?, Some(2));
//! assert_eq!(txn.versions(0, &"key1").await?.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout on storage
//!
//! * Segments `NNNNNNNN.log`: transaction logs in the shared [`kv_engine_kit::txlog`] format (a
//!   transaction = its write records + one commit record, or one single record for a
//!   transaction of one write, appended with one `append`), rolled
//!   at [`kv_api::Options::segment_size`] between transactions; or merged segments of
//!   self-contained committed records (Bitcask's own kinds 4 and 5, see `merged.rs`) written by `merge`, in key order.
//! * Hint files `NNNNNNNN.hint`: the keydir entries of a sealed segment, in key order, written
//!   when the segment is sealed; reopening reads them instead of the values.
//! * `META`: the manifest (segments in replay order, which are merged, the merge horizon, the
//!   last commit, the next file id), replaced atomically on every roll and merge.
//!
//! # Memory
//!
//! The keydir holds every version of every key: 32 bytes per version plus the key (inline up
//! to 22 bytes with its slot byte), in an ordered map (about 72 MB for a million 16-byte keys
//! after reopening), plus the newest-version table (32 - 64 bytes per key, see below).
//! `merge` drops what no snapshot needs. Reopening a million keys from hint files takes about
//! 125-160 ms of CPU on the opening thread (release build), and the newest-version table's
//! fill on a second one (docs/benchmarks.md, "Bitcask reopen").
//!
//! # Reads
//!
//! A point read of the newest version first asks the newest-version table (`newest.rs`: 4-way
//! buckets of fingerprints and places, lossy but never stale), and checks that the record it
//! points to names the key; on a miss or a mismatch it asks the keydir. Either way it finds
//! the record's place, then its bytes in the page cache (4 KiB
//! pages of segments, sharded CLOCK, bounded by [`kv_api::Options::cache_size`]; hits and
//! misses in [`kv_api::Stats`]) or the segment file, and checks the record's CRC either way.
//! Once the cache is full, most misses read just their record instead of caching its page,
//! since for data larger than the cache read at random that buys no hits. A scan reads its
//! cached records in one batch, then the others in file order, joining nearby ones into one
//! read.
//!
//! # Recovery
//!
//! Opening takes the storage's writer lock, reads `META`, deletes files it does not name
//! (leftovers of a crashed roll or merge), loads each sealed segment from its hint (or replays
//! it if the hint is missing or damaged), and replays the active segment. A torn tail of the
//! active segment (an interrupted transaction) is cut off whole, write records included. Damage
//! anywhere else is [`kv_api::Error::Corruption`]. Sealed segments loaded from a hint are not
//! read at open: damage in them is reported by the read (or merge) that meets it, since every
//! read checks the record's CRC.
//!
//! # Concurrency
//!
//! Commits go through [`kv_engine_kit::commit::CommitPipeline`] (one writer at a time, group commit).
//! Reads take the keydir's read lock only to find a location, then read without any lock; a
//! read racing a merge that deleted its file looks the version up again. `merge` holds the
//! writer lock only to seal the active segment and, at the end, to switch the manifest and
//! the keydir: commits go on while it rewrites.
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

mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod hint;
mod key;
mod keydir;
mod layout;
mod merge;
mod merged;
mod meta;
mod newest;
mod pages;
mod pending;
mod read;
mod recovery;
mod segment;
mod verify;

pub use engine::Bitcask;
