//! The [`Engine`] over etcd v3.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, KvClient,
    SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
};
use kv_api::{
    Engine, Entry, Error, KeyRange, MaybeSend, Options, Result, Slot, Snapshot, Snapshots, Stats,
    Version, WriteBatch,
};
use parking_lot::Mutex;

use crate::config::EtcdConfig;
use crate::layout::{self, Layout, Meta, Record};

/// Keys fetched per page of a scan (values are at most `max_request_bytes` each, and the
/// client accepts responses up to [`MAX_RESPONSE_BYTES`]).
const PAGE: usize = 128;
/// The largest response the client decodes (tonic's default is 4 MiB).
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// Bytes a key or value costs in a request beyond its own bytes (protobuf framing), counted
/// generously so that the size check is never below what etcd sees.
const PER_ITEM_OVERHEAD: usize = 32;

/// The engine's name, as in [`Stats::engine`] and errors.
pub const NAME: &str = "etcd";

/// The etcd engine: a store under a key prefix of an etcd v3 cluster. Open it through
/// `Store::open` with an [`EtcdConfig`] (the crate docs describe the mapping).
///
/// ```no_run
/// # #[tokio::main] async fn main() -> kv_api::Result<()> {
/// use kv_api::Store;
/// use kv_etcd::{Etcd, EtcdConfig};
/// let store = Store::<Etcd>::open(EtcdConfig::new(["http://127.0.0.1:2379"], "app/")).await?;
/// store.transact(async |txn| txn.insert(0, &"greeting", "hello")).await?;
/// # Ok(()) }
/// ```
pub struct Etcd {
    config: EtcdConfig,
    options: Options,
    client: Client,
    kv: KvClient,
    layout: Layout,
    meta: Option<Meta>,
    /// The newest commit of this store known here (own commits, the head read at open,
    /// returned by a conflicting commit, or seen by the watch on the head).
    last: Arc<Mutex<Version>>,
    /// The task watching the head key (ended on close and drop).
    watch: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Versions below it are merged away.
    horizon: AtomicU64,
    /// The revision that created the store (its metadata): below it, the store is empty
    /// (and etcd may have compacted those revisions for another store's sake).
    created: AtomicU64,
    snapshots: Snapshots,
    closed: AtomicBool,
    /// The endpoints, comma-separated, for error messages.
    endpoints: String,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("config", &self.config)
            .field("last", &*self.last.lock())
            .finish()
    }
}

fn io(kind: std::io::ErrorKind, op: String, message: String) -> Error {
    Error::Io {
        op,
        source: std::io::Error::new(kind, message),
    }
}

fn rev(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::VersionNotFound {
        seq: n,
        reason: "beyond etcd's revision range",
    })
}

fn unrev(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| Error::Corruption {
        file: "etcd response".into(),
        offset: 0,
        reason: format!("negative revision {n}"),
    })
}

impl Etcd {
    /// The configuration the engine was opened with.
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// The merge horizon: versions below it are merged away.
    pub fn horizon(&self) -> u64 {
        self.horizon.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    fn check_write(&self, what: &'static str) -> Result<()> {
        self.check_open()?;
        if self.options.read_only {
            return Err(Error::ReadOnly(what));
        }
        Ok(())
    }

    /// Turns an etcd-client error into the store's: compacted or future revisions are
    /// `VersionNotFound`, everything else `Io` naming the endpoints.
    fn map_error(&self, op: &str, at: Option<u64>, e: etcd_client::Error) -> Error {
        map_error(&self.endpoints, op, at, e)
    }

    /// Runs one request to the cluster under the request timeout.
    async fn call<T>(
        &self,
        op: &str,
        at: Option<u64>,
        fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        self.attempt(op, at, deadline, fut)
            .await?
            .map_err(|e| self.map_error(op, at, e))
    }

    /// One attempt of a request, bounded by `deadline`: `Err` is the timeout, `Ok(Err)` the
    /// cluster's answer.
    async fn attempt<T>(
        &self,
        op: &str,
        at: Option<u64>,
        deadline: tokio::time::Instant,
        fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<std::result::Result<T, etcd_client::Error>> {
        let _ = at;
        tokio::time::timeout_at(deadline, fut).await.map_err(|_| {
            io(
                std::io::ErrorKind::TimedOut,
                format!("{op} on etcd at {}", self.endpoints),
                format!(
                    "no answer within {:?} (cluster unreachable or without a leader)",
                    self.config.request_timeout
                ),
            )
        })
    }

    /// Sends a request again, within the request timeout, while it fails in a way that
    /// allows it: a read on any unavailability (a member down, a leader election), a write
    /// only when it never reached a member (the connection was refused), since a write whose
    /// outcome is unknown must not be applied twice.
    async fn resend<T, Fut>(
        &self,
        op: &str,
        at: Option<u64>,
        write: bool,
        mut request: impl FnMut() -> Fut,
    ) -> Result<T>
    where
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        let mut pause = std::time::Duration::from_millis(10);
        loop {
            match self.attempt(op, at, deadline, request()).await? {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let again = if write {
                        not_delivered(&e)
                    } else {
                        unavailable(&e)
                    };
                    if !again || tokio::time::Instant::now() + pause >= deadline {
                        return Err(self.map_error(op, at, e));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(500));
                }
            }
        }
    }

    /// A range read (resent while the cluster is unavailable).
    async fn read(
        &self,
        op: &str,
        at: Option<u64>,
        key: &[u8],
        opts: Option<GetOptions>,
    ) -> Result<etcd_client::GetResponse> {
        self.resend(op, at, false, || {
            let mut kv = self.kv.clone();
            let opts = opts.clone();
            let key = key.to_vec();
            async move { kv.get(key, opts).await }
        })
        .await
    }

    /// A transaction (resent only if it never reached a member).
    async fn txn(&self, op: &str, txn: Txn) -> Result<etcd_client::TxnResponse> {
        self.resend(op, None, true, || {
            let mut kv = self.kv.clone();
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await
    }

    /// `at` as a revision to read at: a read beyond etcd's revision range (`u64::MAX`, as
    /// callers of the local engines pass for "everything") reads at the newest commit known
    /// here, as a read past the newest commit does on Bitcask and the LSM.
    fn read_at(&self, at: u64) -> u64 {
        if i64::try_from(at).is_ok() {
            at
        } else {
            self.last.lock().seq()
        }
    }

    /// The key's newest kv at revision `at` (`None` if it did not exist then).
    async fn kv_at(&self, etcd_key: &[u8], at: u64) -> Result<Option<KeyValue>> {
        let at = self.read_at(at);
        if at == 0 || at < self.created.load(Ordering::Acquire) {
            // Revision 0 means "latest" to etcd; version 0, and every revision before the
            // store was created, is the empty store.
            return Ok(None);
        }
        let opts = GetOptions::new().with_revision(rev(at)?);
        let mut resp = self.read("get", Some(at), etcd_key, Some(opts)).await?;
        Ok(resp.take_kvs().into_iter().next())
    }

    /// A kv of a data key, decoded into its version and record.
    fn decode(kv: KeyValue) -> Result<(Vec<u8>, Version, Record)> {
        let seq = unrev(kv.mod_revision())?;
        let (key, value) = kv.into_key_value();
        let record = layout::decode_value(&key, value)?;
        let version = Version::new(seq, record.time_ms).with_removal(record.value.is_none());
        Ok((key, version, record))
    }

    /// The versions of one etcd key visible at `at`, newest first, with their records,
    /// walking back through `mod_revision`s; stops after the first live value if `first_live`.
    /// A removal at or below the horizon is merged away (not listed), and so is everything
    /// older than the version the horizon sees.
    async fn history(
        &self,
        etcd_key: &[u8],
        at: u64,
        first_live: bool,
    ) -> Result<Vec<(Version, Record)>> {
        let horizon = self.horizon();
        let mut out = Vec::new();
        let mut read_at = at;
        while read_at > 0 {
            let Some(kv) = self.kv_at(etcd_key, read_at).await? else {
                break;
            };
            let generation_start = kv.version() <= 1;
            let (_, version, record) = Self::decode(kv)?;
            let below = version.seq() <= horizon;
            if below && version.is_removal() {
                break;
            }
            let live = record.value.is_some();
            out.push((version, record));
            if (first_live && live) || generation_start || below {
                break;
            }
            read_at = version.seq().saturating_sub(1);
        }
        Ok(out)
    }

    /// One page of kvs of `[start, end)` at `at`, in key order or reversed.
    async fn page(
        &self,
        start: &[u8],
        end: &[u8],
        at: Option<u64>,
        reverse: bool,
        limit: usize,
    ) -> Result<(Vec<KeyValue>, bool)> {
        let mut opts = GetOptions::new()
            .with_range(end)
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .with_sort(
                SortTarget::Key,
                if reverse {
                    SortOrder::Descend
                } else {
                    SortOrder::Ascend
                },
            );
        if let Some(at) = at {
            opts = opts.with_revision(rev(at)?);
        }
        let mut resp = self.read("range read", at, start, Some(opts)).await?;
        let more = resp.more();
        Ok((resp.take_kvs(), more))
    }

    /// Walks `[start, end)` at `at` page by page, handing each kv to `f` until it returns
    /// `false`.
    async fn walk(
        &self,
        mut start: Vec<u8>,
        mut end: Vec<u8>,
        at: Option<u64>,
        reverse: bool,
        mut f: impl FnMut(KeyValue) -> Result<bool>,
    ) -> Result<()> {
        let at = at.map(|at| self.read_at(at));
        if at.is_some_and(|at| at == 0 || at < self.created.load(Ordering::Acquire)) {
            return Ok(());
        }
        loop {
            let (kvs, more) = self.page(&start, &end, at, reverse, PAGE).await?;
            let Some(last_key) = kvs.last().map(|kv| kv.key().to_vec()) else {
                return Ok(());
            };
            for kv in kvs {
                if !f(kv)? {
                    return Ok(());
                }
            }
            if !more {
                return Ok(());
            }
            if reverse {
                end = last_key;
            } else {
                start = last_key;
                start.push(0);
            }
            if start >= end {
                return Ok(());
            }
        }
    }

    /// Records `version` as the newest known commit if it is newer.
    fn observe(&self, version: Version) {
        let mut last = self.last.lock();
        if version.seq() > last.seq() {
            *last = version;
        }
    }

    /// The size and compares check of a commit: etcd's limits as typed errors before
    /// anything is sent.
    fn check_limits(&self, compares: usize, ops: usize, bytes: usize) -> Result<()> {
        let max_ops = self.config.max_txn_ops;
        if ops > max_ops {
            return Err(Error::TooLarge {
                what: "transaction: writes per etcd Txn (--max-txn-ops, one operation is the store's head)",
                size: ops,
                max: max_ops,
            });
        }
        if compares > max_ops {
            return Err(Error::TooLarge {
                what: "transaction: compares per etcd Txn (--max-txn-ops; one per key read or written and per range scanned)",
                size: compares,
                max: max_ops,
            });
        }
        if bytes > self.config.max_request_bytes {
            return Err(Error::TooLarge {
                what: "transaction: bytes of the etcd Txn request (--max-request-bytes)",
                size: bytes,
                max: self.config.max_request_bytes,
            });
        }
        Ok(())
    }
}

/// [`Etcd::map_error`] without the engine (for the open).
fn map_error(endpoints: &str, op: &str, at: Option<u64>, e: etcd_client::Error) -> Error {
    let op = format!("{op} on etcd at {endpoints}");
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message().to_owned();
            if message.contains("required revision has been compacted") {
                return Error::VersionNotFound {
                    seq: at.unwrap_or(0),
                    reason: "compacted by etcd (merge, or a compaction of the cluster)",
                };
            }
            if message.contains("future revision") {
                return Error::VersionNotFound {
                    seq: at.unwrap_or(0),
                    reason: "newer than the cluster's revision",
                };
            }
            let kind = match status.code() {
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                    std::io::ErrorKind::PermissionDenied
                }
                tonic::Code::DeadlineExceeded => std::io::ErrorKind::TimedOut,
                tonic::Code::Unavailable => std::io::ErrorKind::ConnectionRefused,
                tonic::Code::InvalidArgument => std::io::ErrorKind::InvalidInput,
                _ => std::io::ErrorKind::Other,
            };
            let kind = if message.contains("authentication failed")
                || message.contains("invalid auth token")
                || message.contains("permission denied")
                || message.contains("user name is empty")
            {
                std::io::ErrorKind::PermissionDenied
            } else {
                kind
            };
            io(kind, op, format!("{:?}: {message}", status.code()))
        }
        etcd_client::Error::TransportError(t) => io(
            std::io::ErrorKind::ConnectionRefused,
            op,
            format!("transport: {t}"),
        ),
        etcd_client::Error::IoError(e) => Error::Io { op, source: e },
        other => io(std::io::ErrorKind::Other, op, other.to_string()),
    }
}

/// A request that failed because the cluster could not serve it then (a member down, no
/// leader, an election): a read may be sent again.
fn unavailable(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Unknown)
                && !s.message().contains("compacted")
        }
        _ => false,
    }
}

/// A request that never reached a member (its connection was refused or could not be made):
/// even a write may be sent again, to another member.
fn not_delivered(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            s.code() == tonic::Code::Unavailable && {
                let m = s.message().to_ascii_lowercase();
                m.contains("connect") || m.contains("connection refused")
            }
        }
        _ => false,
    }
}

/// A random store id: 128 bits from the OS-seeded `RandomState`, mixed with the time.
fn new_store_id(now_ms: u64) -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut id = [0u8; 16];
    for (i, half) in id.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(now_ms);
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    id
}

#[async_trait::async_trait]
impl Engine for Etcd {
    type Storage = EtcdConfig;
    type Tuning = ();
    const NAME: &'static str = NAME;

    async fn open(config: EtcdConfig, options: Options, _tuning: ()) -> Result<Self> {
        options.validate()?;
        config.validate()?;
        let endpoints = config.endpoints.join(",");
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_timeout(config.request_timeout);
        if let Some((user, password)) = &config.user {
            connect = connect.with_user(user.clone(), password.clone());
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &config.tls {
            connect = connect.with_tls(tls.clone());
        }
        let connecting = Client::connect(config.endpoints.clone(), Some(connect));
        let client = match tokio::time::timeout(config.connect_timeout, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(map_error(&endpoints, "connect", None, e)),
            Err(_) => {
                return Err(io(
                    std::io::ErrorKind::TimedOut,
                    format!("connect to etcd at {endpoints}"),
                    format!("no connection within {:?}", config.connect_timeout),
                ));
            }
        };
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let layout = Layout::new(&config.prefix);
        let mut engine = Etcd {
            config,
            options,
            client,
            kv,
            layout,
            meta: None,
            last: Arc::new(Mutex::new(Version::ZERO)),
            watch: Mutex::new(None),
            horizon: AtomicU64::new(0),
            created: AtomicU64::new(0),
            snapshots: Snapshots::default(),
            closed: AtomicBool::new(false),
            endpoints,
        };
        engine.load().await?;
        engine.watch_head();
        Ok(engine)
    }

    fn options(&self) -> &Options {
        &self.options
    }

    fn tuning(&self) -> &() {
        &()
    }

    fn snapshot(&self) -> Result<Snapshot> {
        self.check_open()?;
        let last = *self.last.lock();
        Ok(self.snapshots.pin(last))
    }

    fn snapshot_at(&self, version: Version) -> Result<Snapshot> {
        self.check_open()?;
        let last = *self.last.lock();
        if version.seq() > last.seq() {
            return Err(Error::VersionNotFound {
                seq: version.seq(),
                reason: "newer than the store's latest commit known to this process",
            });
        }
        if version.seq() < self.horizon() {
            return Err(Error::VersionNotFound {
                seq: version.seq(),
                reason: "merged away",
            });
        }
        Ok(self.snapshots.pin(version))
    }

    // Not `async fn`: `#[async_trait]` would box it, and the trait's signature is unboxed.
    #[allow(clippy::manual_async_fn)]
    fn get<'a>(
        &'a self,
        slot: Slot,
        key: &'a [u8],
        at: u64,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + MaybeSend + 'a {
        async move {
            self.check_open()?;
            let etcd_key = self.layout.data(slot, key);
            match self.kv_at(&etcd_key, at).await? {
                None => Ok(None),
                Some(kv) => Ok(Self::decode(kv)?.2.value),
            }
        }
    }

    async fn get_unremoved(
        &self,
        slot: Slot,
        key: &[u8],
        at: u64,
    ) -> Result<Option<(Version, Vec<u8>)>> {
        self.check_open()?;
        let etcd_key = self.layout.data(slot, key);
        let history = self.history(&etcd_key, at, true).await?;
        Ok(history
            .into_iter()
            .find_map(|(v, r)| r.value.map(|value| (v, value))))
    }

    async fn versions(&self, slot: Slot, key: &[u8], at: u64) -> Result<Vec<Version>> {
        self.check_open()?;
        let etcd_key = self.layout.data(slot, key);
        let mut versions: Vec<Version> = self
            .history(&etcd_key, at, false)
            .await?
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        versions.reverse();
        Ok(versions)
    }

    async fn get_version(
        &self,
        slot: Slot,
        key: &[u8],
        version: Version,
    ) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        let not_found = |reason| Error::VersionNotFound {
            seq: version.seq(),
            reason,
        };
        let last = self.last.lock().seq();
        if version.seq() == 0 || version.seq() > last {
            return Err(not_found("not a version of this key"));
        }
        let horizon = self.horizon();
        let etcd_key = self.layout.data(slot, key);
        let Some(kv) = self.kv_at(&etcd_key, version.seq().max(horizon)).await? else {
            return Err(not_found("not a version of this key"));
        };
        let (_, found, record) = Self::decode(kv)?;
        if found.seq() != version.seq() {
            return Err(not_found("not a version of this key, or merged away"));
        }
        if found.seq() <= horizon && found.is_removal() {
            return Err(not_found("merged away"));
        }
        Ok(record.value)
    }

    async fn scan(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        self.check_open()?;
        let mut out = Vec::new();
        let Some((start, end)) = self.layout.range(slot, range) else {
            return Ok(out);
        };
        if limit == 0 {
            return Ok(out);
        }
        let layout = &self.layout;
        self.walk(start, end, Some(at), reverse, |kv| {
            let (etcd_key, version, record) = Self::decode(kv)?;
            if let Some(value) = record.value {
                let key = layout.strip(slot, &etcd_key).unwrap_or_default().to_vec();
                out.push(Entry {
                    key,
                    value,
                    version,
                });
            }
            Ok(out.len() < limit)
        })
        .await?;
        Ok(out)
    }

    async fn scan_versions(
        &self,
        slot: Slot,
        range: &KeyRange,
        at: u64,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<Version>)>> {
        self.check_open()?;
        let Some((start, end)) = self.layout.range(slot, range) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut keys = Vec::new();
        let mut out = Vec::new();
        let (mut start, end) = (start, end);
        // Keys first (a page at a time), then each key's history.
        loop {
            keys.clear();
            let mut last = None;
            let want = limit.saturating_sub(out.len());
            self.walk(start.clone(), end.clone(), Some(at), false, |kv| {
                last = Some(kv.key().to_vec());
                keys.push(kv.key().to_vec());
                Ok(keys.len() < want)
            })
            .await?;
            for etcd_key in &keys {
                let mut versions: Vec<Version> = self
                    .history(etcd_key, at, false)
                    .await?
                    .into_iter()
                    .map(|(v, _)| v)
                    .collect();
                if versions.is_empty() {
                    continue;
                }
                versions.reverse();
                let key = self
                    .layout
                    .strip(slot, etcd_key)
                    .unwrap_or_default()
                    .to_vec();
                out.push((key, versions));
            }
            match last {
                Some(mut k) if out.len() < limit && keys.len() >= want => {
                    k.push(0);
                    start = k;
                }
                _ => return Ok(out),
            }
        }
    }

    async fn commit(&self, batch: WriteBatch) -> Result<Version> {
        self.check_write("commit")?;
        if batch.writes.is_empty() {
            return Ok(batch.start.version());
        }
        for w in &batch.writes {
            self.options.check_write_size(w)?;
        }
        let start = batch.start.seq();
        let below = rev(start.checked_add(1).ok_or(Error::ReadOnly("commit"))?)?;
        // Compares: every key read or written, every range scanned, unchanged since start.
        let mut keys = BTreeSet::new();
        for (slot, key) in &batch.reads {
            keys.insert(self.layout.data(*slot, key));
        }
        for w in &batch.writes {
            keys.insert(self.layout.data(w.slot, &w.key));
        }
        let mut ranges = BTreeSet::new();
        for (slot, range) in &batch.ranges {
            if let Some(r) = self.layout.range(*slot, range) {
                ranges.insert(r);
            }
        }
        let time_ms = self.options.clock.now_ms().max(self.last.lock().time_ms());
        let head = self.layout.head();
        let mut bytes = head.len() + 8 + PER_ITEM_OVERHEAD;
        let mut ops = Vec::with_capacity(batch.writes.len() + 1);
        for w in &batch.writes {
            let k = self.layout.data(w.slot, &w.key);
            let v = layout::encode_value(time_ms, w.value.as_deref());
            bytes = bytes.saturating_add(k.len() + v.len() + PER_ITEM_OVERHEAD);
            ops.push(TxnOp::put(k, v, None));
        }
        ops.push(TxnOp::put(head.clone(), layout::encode_u64(time_ms), None));
        let mut compares = Vec::with_capacity(keys.len() + ranges.len());
        for k in keys {
            bytes = bytes.saturating_add(k.len() + PER_ITEM_OVERHEAD);
            compares.push(Compare::mod_revision(k, CompareOp::Less, below));
        }
        for (s, e) in ranges {
            bytes = bytes.saturating_add(s.len() + e.len() + PER_ITEM_OVERHEAD);
            compares.push(Compare::mod_revision(s, CompareOp::Less, below).with_range(e));
        }
        self.check_limits(compares.len(), ops.len(), bytes)?;
        let txn = Txn::new()
            .when(compares)
            .and_then(ops)
            .or_else([TxnOp::get(head, None)]);
        // A timeout here leaves the outcome unknown: the error says so.
        let resp = self
            .txn("commit (outcome unknown if it timed out)", txn)
            .await?;
        let revision = resp.header().map(|h| h.revision()).ok_or_else(|| {
            io(
                std::io::ErrorKind::InvalidData,
                "commit".into(),
                "etcd answered without a header".into(),
            )
        })?;
        if resp.succeeded() {
            let version = Version::new(unrev(revision)?, time_ms);
            self.observe(version);
            return Ok(version);
        }
        // Learn the store's newest commit, so that a retry starts from it.
        for op in resp.op_responses() {
            if let TxnOpResponse::Get(mut get) = op
                && let Some(kv) = get.take_kvs().into_iter().next()
            {
                let seq = unrev(kv.mod_revision())?;
                let time = layout::decode_u64(kv.key(), kv.value())?;
                self.observe(Version::new(seq, time));
            }
        }
        Err(Error::Conflict(format!(
            "a key this transaction read, wrote or scanned changed after its start (version {start}); \
             etcd is at revision {revision}"
        )))
    }

    fn store_id(&self) -> Option<[u8; 16]> {
        self.meta.map(|m| m.store_id)
    }

    async fn merge(&self) -> Result<()> {
        self.check_write("merge")?;
        let last = self.last.lock().seq();
        let horizon = self.snapshots.oldest().map_or(last, |o| o.min(last));
        if horizon == 0 {
            return Ok(());
        }
        // 1. The horizon first: from here on, reads treat what lies below it as merged away.
        let hkey = self.layout.horizon();
        let stored = self
            .read("read horizon", None, &hkey, None)
            .await?
            .take_kvs()
            .into_iter()
            .next();
        let (stored_horizon, stored_rev) = match &stored {
            Some(kv) => (layout::decode_u64(kv.key(), kv.value())?, kv.mod_revision()),
            None => (0, 0),
        };
        let horizon = horizon.max(stored_horizon);
        if horizon > stored_horizon {
            let txn = Txn::new()
                .when([Compare::mod_revision(
                    hkey.clone(),
                    CompareOp::Equal,
                    stored_rev,
                )])
                .and_then([TxnOp::put(hkey, layout::encode_u64(horizon), None)]);
            let resp = self.txn("write horizon", txn).await?;
            if !resp.succeeded() {
                return Err(Error::Conflict(
                    "another process merged this store at the same time; merge again".into(),
                ));
            }
        }
        self.horizon.fetch_max(horizon, Ordering::AcqRel);
        // 2. Removal markers at or below the horizon: delete them (each only if unchanged).
        let (start, end) = self.layout.all_data();
        let mut markers = Vec::new();
        self.walk(start, end, None, false, |kv| {
            let (key, version, _) = Self::decode(kv)?;
            if version.is_removal() && version.seq() <= horizon {
                markers.push((key, version.seq()));
            }
            Ok(true)
        })
        .await?;
        let per_txn = self.config.max_txn_ops;
        for chunk in markers.chunks(per_txn) {
            let mut compares = Vec::with_capacity(chunk.len());
            let mut deletes = Vec::with_capacity(chunk.len());
            for (key, seq) in chunk {
                compares.push(Compare::mod_revision(
                    key.clone(),
                    CompareOp::Equal,
                    rev(*seq)?,
                ));
                deletes.push(TxnOp::delete(key.clone(), None));
            }
            let txn = Txn::new().when(compares).and_then(deletes);
            let resp = self.txn("drop removal markers", txn).await?;
            if !resp.succeeded() {
                // Some key was written meanwhile: drop the others one by one.
                for (key, seq) in chunk {
                    let txn = Txn::new()
                        .when([Compare::mod_revision(
                            key.clone(),
                            CompareOp::Equal,
                            rev(*seq)?,
                        )])
                        .and_then([TxnOp::delete(key.clone(), None)]);
                    self.txn("drop a removal marker", txn).await?;
                }
            }
        }
        // 3. The cluster's history below the horizon (cluster-wide).
        if self.config.compact_on_merge {
            let mut c = self.client.clone();
            let compacted = self
                .call(
                    "compact",
                    Some(horizon),
                    c.compact(
                        rev(horizon)?,
                        Some(CompactionOptions::new().with_physical()),
                    ),
                )
                .await;
            match compacted {
                // Already compacted at or past it (by another store, or another merge).
                Ok(_) | Err(Error::VersionNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        // Every commit returned after etcd committed it through Raft.
        self.check_open()
    }

    async fn stats(&self) -> Result<Stats> {
        self.check_open()?;
        let last = *self.last.lock();
        let mut stats = Stats {
            engine: NAME,
            last_version: last,
            ..Stats::default()
        };
        let (start, end) = self.layout.all_data();
        let horizon = self.horizon();
        // Each key's newest kv: its size, whether it is live, and how many versions it has
        // (`version`: modifications since its creation, exact while nothing older was merged).
        let mut newest = Vec::new();
        self.walk(start, end, Some(last.seq()), false, |kv| {
            let bytes = u64::try_from(kv.key().len() + kv.value().len()).unwrap_or(u64::MAX);
            let modifications = u64::try_from(kv.version()).unwrap_or(0);
            let created = unrev(kv.create_revision())?;
            let (key, version, _) = Self::decode(kv)?;
            newest.push((key, version, bytes, modifications, created));
            Ok(true)
        })
        .await?;
        for (key, version, bytes, modifications, created) in newest {
            if version.is_removal() && version.seq() <= horizon {
                continue; // merged away
            }
            // A key older than the horizon keeps the version the horizon sees and every newer
            // one: its count then is (newest count) - (count at the horizon) + 1, or + 0 when
            // the horizon sees a removal (merged away).
            let held = if horizon > 0 && created <= horizon {
                match self.kv_at(&key, horizon).await? {
                    Some(old) => {
                        let at_horizon = u64::try_from(old.version()).unwrap_or(0);
                        let (_, v, _) = Self::decode(old)?;
                        let kept = u64::from(!v.is_removal());
                        modifications
                            .saturating_sub(at_horizon)
                            .saturating_add(kept)
                    }
                    None => modifications,
                }
            } else {
                modifications
            };
            stats.versions = stats.versions.saturating_add(held);
            // etcd does not tell a prefix's share of its database: estimated as the newest
            // version's size for every version held.
            let held_bytes = bytes.saturating_mul(held.max(1));
            stats.bytes_on_storage = stats.bytes_on_storage.saturating_add(held_bytes);
            if version.is_removal() {
                stats.garbage_bytes = stats.garbage_bytes.saturating_add(held_bytes);
            } else {
                stats.live_keys = stats.live_keys.saturating_add(1);
                let old = bytes.saturating_mul(held.saturating_sub(1));
                stats.garbage_bytes = stats.garbage_bytes.saturating_add(old);
            }
        }
        Ok(stats)
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        if let Some(task) = self.watch.lock().take() {
            task.abort();
        }
        Ok(())
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(task) = self.watch.lock().take() {
            task.abort();
        }
    }
}

impl Etcd {
    /// Watches the head key, so that snapshots taken here follow other processes' commits
    /// (within the watch's delay). Best effort: without a tokio runtime, or once the watch
    /// fails (its member died), the newest commit is learnt from this process's commits and
    /// conflicts only.
    fn watch_head(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let last = self.last.clone();
        let head = self.layout.head();
        let mut client = self.client.clone();
        let task = runtime.spawn(async move {
            let Ok((_watcher, mut stream)) = client.watch(head, None).await else {
                return;
            };
            while let Ok(Some(resp)) = stream.message().await {
                for event in resp.events() {
                    let Some(kv) = event.kv() else { continue };
                    if let (Ok(seq), Ok(time)) = (
                        unrev(kv.mod_revision()),
                        layout::decode_u64(kv.key(), kv.value()),
                    ) {
                        let mut last = last.lock();
                        if seq > last.seq() {
                            *last = Version::new(seq, time);
                        }
                    }
                }
            }
        });
        *self.watch.lock() = Some(task);
    }

    /// [`Error::Foreign`] if keys lie under the prefix (of a store without metadata).
    async fn refuse_foreign(&self) -> Result<()> {
        let (start, end) = self.layout.everything();
        let mut opts = GetOptions::new().with_limit(3).with_keys_only();
        if let Some(end) = end {
            opts = opts.with_range(end);
        }
        let others = self
            .read("list prefix", None, &start, Some(opts))
            .await?
            .take_kvs();
        if others.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = others
            .iter()
            .map(|k| String::from_utf8_lossy(k.key()).into_owned())
            .collect();
        Err(Error::Foreign {
            engine: NAME,
            found: format!(
                "etcd keys under the prefix without kv-etcd metadata: {}",
                names.join(", ")
            ),
        })
    }

    /// Reads (or, on a writable open of an empty prefix, creates) the store's metadata, its
    /// head and its horizon.
    async fn load(&mut self) -> Result<()> {
        let meta_key = self.layout.meta();
        let found = self
            .read("read metadata", None, &meta_key, None)
            .await?
            .take_kvs()
            .into_iter()
            .next();
        let meta = match found {
            Some(kv) => {
                self.created
                    .store(unrev(kv.create_revision())?, Ordering::Release);
                Some(Meta::decode(kv.value())?)
            }
            None if self.options.read_only => {
                self.refuse_foreign().await?;
                None
            }
            None => {
                let now = self.options.clock.now_ms();
                let meta = Meta {
                    store_id: new_store_id(now),
                    created_ms: now,
                };
                // Created only if nothing at all lies under the prefix (a range compare holds
                // for every key of the range: no key, or none created).
                let (start, end) = self.layout.everything();
                let mut empty = Compare::create_revision(start, CompareOp::Equal, 0);
                if let Some(end) = end {
                    empty = empty.with_range(end);
                }
                let txn = Txn::new()
                    .when([empty])
                    .and_then([TxnOp::put(meta_key.clone(), meta.encode(), None)])
                    .or_else([TxnOp::get(meta_key, None)]);
                let resp = self.txn("create metadata", txn).await?;
                if resp.succeeded() {
                    if let Some(h) = resp.header() {
                        self.created.store(unrev(h.revision())?, Ordering::Release);
                    }
                    Some(meta)
                } else {
                    // Another process created the store first (use its metadata), or keys
                    // of something else lie under the prefix.
                    let mut theirs = None;
                    for op in resp.op_responses() {
                        if let TxnOpResponse::Get(mut get) = op
                            && let Some(kv) = get.take_kvs().into_iter().next()
                        {
                            self.created
                                .store(unrev(kv.create_revision())?, Ordering::Release);
                            theirs = Some(Meta::decode(kv.value())?);
                        }
                    }
                    if theirs.is_none() {
                        self.refuse_foreign().await?;
                    }
                    theirs
                }
            }
        };
        self.meta = meta;
        let head = self.layout.head();
        if let Some(kv) = self
            .read("read head", None, &head, None)
            .await?
            .take_kvs()
            .into_iter()
            .next()
        {
            let time = layout::decode_u64(kv.key(), kv.value())?;
            self.observe(Version::new(unrev(kv.mod_revision())?, time));
        }
        let hkey = self.layout.horizon();
        if let Some(kv) = self
            .read("read horizon", None, &hkey, None)
            .await?
            .take_kvs()
            .into_iter()
            .next()
        {
            let h = layout::decode_u64(kv.key(), kv.value())?;
            self.horizon.store(h, Ordering::Release);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: tonic::Code, message: &str) -> etcd_client::Error {
        etcd_client::Error::GRpcStatus(tonic::Status::new(code, message))
    }

    #[test]
    fn compacted_and_future_revisions_are_version_not_found() {
        let e = map_error(
            "http://a:1",
            "get",
            Some(7),
            status(
                tonic::Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted",
            ),
        );
        assert!(matches!(e, Error::VersionNotFound { seq: 7, .. }), "{e:?}");
        let e = map_error(
            "http://a:1",
            "get",
            Some(9),
            status(
                tonic::Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision",
            ),
        );
        assert!(matches!(e, Error::VersionNotFound { seq: 9, .. }), "{e:?}");
    }

    #[test]
    fn auth_and_transport_failures_are_io_naming_the_endpoints() {
        let cases = [
            (
                status(
                    tonic::Code::InvalidArgument,
                    "etcdserver: authentication failed, invalid user ID or password",
                ),
                std::io::ErrorKind::PermissionDenied,
            ),
            (
                status(
                    tonic::Code::PermissionDenied,
                    "etcdserver: permission denied",
                ),
                std::io::ErrorKind::PermissionDenied,
            ),
            (
                status(tonic::Code::Unavailable, "etcdserver: leader changed"),
                std::io::ErrorKind::ConnectionRefused,
            ),
            (
                status(tonic::Code::DeadlineExceeded, "context deadline exceeded"),
                std::io::ErrorKind::TimedOut,
            ),
        ];
        for (err, kind) in cases {
            match map_error("http://a:1,http://b:2", "commit", None, err) {
                Error::Io { op, source } => {
                    assert_eq!(source.kind(), kind, "{op}: {source}");
                    assert!(op.contains("http://a:1,http://b:2"), "{op}");
                }
                other => panic!("expected Io, got {other:?}"),
            }
        }
    }

    #[test]
    fn revisions_convert_with_checks() {
        assert_eq!(rev(5).ok(), Some(5));
        assert!(matches!(rev(u64::MAX), Err(Error::VersionNotFound { .. })));
        assert_eq!(unrev(5).ok(), Some(5));
        assert!(matches!(unrev(-1), Err(Error::Corruption { .. })));
    }

    #[test]
    fn store_ids_differ() {
        assert_ne!(new_store_id(1), new_store_id(1));
    }
}
