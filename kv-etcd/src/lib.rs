//! An engine of the kv store over an etcd v3 cluster: the same typed, versioned,
//! transactional [`kv_api::Store`] as on Bitcask or the LSM, replicated by etcd's Raft.
//! Native only (on wasm32 this crate is empty).
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> kv_api::Result<()> {
//! use kv_api::Store;
//! use kv_etcd::{Etcd, EtcdConfig};
//! // The one changed line: where the data lives is a cluster and a key prefix.
//! let store = Store::<Etcd>::open(EtcdConfig::new(["http://127.0.0.1:2379"], "app/")).await?;
//! store.transact(async |txn| txn.insert(0, &"greeting", "hello")).await?;
//! let v: Option<String> = store.snapshot().get(0, &"greeting").await?;
//! assert_eq!(v.as_deref(), Some("hello"));
//! # Ok(()) }
//! ```
//!
//! # Mapping
//!
//! Everything a store writes lies under its prefix `P` ([`EtcdConfig::new`]):
//!
//! | etcd key | value |
//! |---|---|
//! | `P m` | metadata: magic `KVETCD\0\0`, format (u16 LE, 1), store id (16 bytes), creation time (u64 LE ms) |
//! | `P h` | the head: the time of the newest commit (u64 LE ms); its `mod_revision` is the store's newest version |
//! | `P z` | the merge horizon (u64 LE): versions below it are merged away |
//! | `P d <slot> <key>` | a data key: kind (1 value, 2 removal), commit time (u64 LE ms), then the value's bytes |
//!
//! * **A commit is one etcd `Txn`**: its compares, then a put of every written key (a removal
//!   is a put of a removal marker, so that `versions()` lists it) and a put of the head.
//! * **A version is the etcd revision of its commit.** Revisions are counted by the cluster,
//!   not by the store, so a store's versions are increasing but not consecutive (other stores
//!   and merges on the same cluster take revisions too). Each data value carries its
//!   commit's time, never lower than the previous commit's known to this process.
//! * **Reads at a version** are etcd reads at that revision. A key's history is walked back
//!   through `mod_revision`s (one read per version: `get(key, revision = mod_revision - 1)`)
//!   until the key's creation or the merge horizon; scans are ranged reads at the revision,
//!   128 keys a page, removal markers skipped.
//! * **Conflicts**: the `Txn` compares `mod_revision < start + 1` on every key the
//!   transaction read or wrote and on every range it scanned (a compare with a range end:
//!   it holds only if every key in the range is unchanged, and a key inserted in it is
//!   changed), so any commit after the start that touched them makes this one fail, with
//!   nothing written: [`kv_api::Error::Conflict`]. Two processes never lose an update.
//! * **Snapshots** are pinned at the newest commit of the store this process knows: its own
//!   commits, the head read at open, the head returned by a commit that conflicted, and the
//!   head's changes seen by a watch the engine keeps on it (inside a tokio runtime). So a
//!   snapshot sees another process's commits once the watch delivered them (milliseconds on
//!   a healthy cluster; if the watch fails, after this process's next commit or conflict).
//!   Conflict checks do not depend on it: they compare against the cluster's current state.
//! * **Merge** records the horizon (the oldest snapshot open in this process, or the newest
//!   commit), deletes removal markers at or below it, and, with
//!   [`EtcdConfig::compact_on_merge`] (the default), compacts the cluster at it. Afterwards a
//!   merged-away version is `VersionNotFound`.
//! * **Durability**: a commit returns after etcd committed it through Raft (a quorum of
//!   members wrote it to their WAL and fsynced). [`kv_api::Durability::Buffered`] is
//!   accepted and means the same: etcd has no weaker commit.
//!
//! # Limits, and what to configure on a production cluster
//!
//! * `--max-request-bytes` (1.5 MiB by default) bounds a whole commit (keys, values,
//!   compares), and `--max-txn-ops` (128) bounds its writes (plus one for the head) and
//!   separately its compares (one per key read or written, one per range scanned). A commit
//!   beyond either is [`kv_api::Error::TooLarge`] naming the limit, before anything is sent;
//!   set [`EtcdConfig::max_request_bytes`] and [`EtcdConfig::max_txn_ops`] to the cluster's.
//! * `--quota-backend-bytes` (2 GiB by default, 8 GiB is etcd's advised maximum) bounds the
//!   whole database, history included: etcd is for data that fits in a few GiB.
//! * Auto-compaction (`--auto-compaction-*`) must be off, or slower than the history the
//!   application reads: etcd's compaction drops versions without this store's horizon
//!   knowing (reads of them are `VersionNotFound`, never wrong data).
//! * Compaction is cluster-wide: merging one store compacts every key's history on the
//!   cluster. Give each store its own cluster, or turn `compact_on_merge` off and compact by
//!   other means.
//! * Snapshots of other processes are invisible to `merge`: a merge in one process can drop
//!   versions an open snapshot in another process still reads (it then gets
//!   `VersionNotFound`).
//!
//! # Errors
//!
//! An unreachable cluster, a timeout, a lost quorum or leader are [`kv_api::Error::Io`]
//! naming the operation and the endpoints (kind `TimedOut`, `ConnectionRefused`); a wrong
//! password or a missing permission is `Io` of kind `PermissionDenied`. Every call is
//! bounded by [`EtcdConfig::request_timeout`]. Within it, a read is sent again while the
//! cluster is unavailable (a member down, an election), and a commit only when it never
//! reached a member (its connection was refused): a commit whose outcome is unknown (a
//! connection cut mid-request, etcd's "request timed out" during an election) is an `Io`
//! error that says so, never sent twice.
//!
//! # Runtime
//!
//! etcd-client is built on tonic and tokio: open and use the store inside a tokio runtime
//! with its I/O and time drivers on (`#[tokio::main]`, or a runtime built with
//! `enable_all()`); every request's deadline is a tokio timer.
//!
//! # Not provided
//!
//! `import_commit` (etcd chooses revisions, so an import cannot keep versions) and
//! `Store::backup_to` (it needs a `Storage`); `Store::copy_into` from an etcd store into a
//! local store works. There is no writer lock: any number of processes open a store and
//! commit concurrently, which is the point.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(target_arch = "wasm32"))]
mod config;
#[cfg(not(target_arch = "wasm32"))]
mod engine;
#[cfg(not(target_arch = "wasm32"))]
mod layout;

#[cfg(not(target_arch = "wasm32"))]
pub use config::{DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_TXN_OPS, EtcdConfig};
#[cfg(not(target_arch = "wasm32"))]
pub use engine::{Etcd, NAME};
/// TLS settings for [`EtcdConfig::tls`] (etcd-client's, from tonic and rustls).
#[cfg(all(not(target_arch = "wasm32"), feature = "tls"))]
pub use etcd_client::{Certificate, Identity, TlsOptions};
