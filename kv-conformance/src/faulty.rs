//! `FaultyStorage`: a [`Storage`] wrapper that simulates power loss, process crashes and
//! failing I/O, exactly within the durability contract of `kv_api::Storage`:
//!
//! * a file's bytes are durable up to its last `StorageFile::sync`; a crash keeps a prefix of
//!   the later appends (none, all, or a random prefix whose last append is torn at a random
//!   byte), and undoes unsynced truncations;
//! * `create`, `remove` and `rename` are durable after `Storage::sync`; a crash undoes the
//!   unsynced ones (all of them, or all but a random prefix), each atomically.
//!
//! The wrapper models a file system with inodes: a name points to an inode (a file of the
//! wrapped storage named `faulty-N.inode`), so a removed or replaced file keeps its data until
//! the removal is durable and a crash can bring it back. After a crash, every handle of the
//! crashed "process" (storage and file handles, the writer lock) is dead: each call fails with
//! an `Io` error and the lock is free. [`FaultyStorage::restart`] gives the handle of a new
//! process, on which the test reopens a store.
//!
//! Faults can also be armed to strike at the N-th operation of some kinds ([`Ops`]):
//! [`FaultyStorage::fail_after`] makes it return an `Io` error (doing nothing),
//! [`FaultyStorage::crash_after`] crashes right before it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex as StdMutex;

use kv_api::{Error, LockGuard, Result, Storage, StorageFile, not_found};
use tokio::sync::{Mutex, MutexGuard};

use crate::rng::Rng;

/// A set of operation kinds, for counting operations and aiming faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ops(u8);

impl Ops {
    /// `list`, `open`, `exists`, `len`, `read_at`.
    pub const READS: Ops = Ops(1);
    /// `create`, `remove`, `rename`, `append`, `truncate`.
    pub const WRITES: Ops = Ops(2);
    /// File `sync` and namespace `sync`.
    pub const SYNCS: Ops = Ops(4);
    /// `lock`.
    pub const LOCKS: Ops = Ops(8);
    /// Writes and syncs: every operation that changes storage or its durability.
    pub const MUTATIONS: Ops = Ops(2 | 4);
    /// Everything.
    pub const ALL: Ops = Ops(15);

    /// True if the sets share a kind.
    pub fn intersects(self, other: Ops) -> bool {
        self.0 & other.0 != 0
    }

    fn index(self) -> usize {
        self.0.trailing_zeros() as usize
    }
}

impl std::ops::BitOr for Ops {
    type Output = Ops;
    fn bitor(self, rhs: Ops) -> Ops {
        Ops(self.0 | rhs.0)
    }
}

/// What survives a simulated crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Power loss: every unsynced append, truncation and namespace operation is lost.
    LoseUnsynced,
    /// Process crash: the operating system keeps everything that was written, still unsynced
    /// (a later power loss can lose it).
    KeepUnsynced,
    /// Power loss keeping, per file, a random prefix of its unsynced writes whose last append
    /// is torn at a random byte, and a random prefix of the unsynced namespace operations.
    Random(u64),
    /// Everything is kept except the last `n` unsynced bytes of each file that has unsynced
    /// appends (never synced bytes): `n` = the length of a commit record cuts exactly it.
    CutTail(u64),
}

#[derive(Debug)]
enum FileOp {
    Append(Vec<u8>),
    Truncate(u64),
}

#[derive(Debug, Clone)]
enum NsOp {
    Link(String, u64),
    Unlink(String),
    Rename(String, String),
}

impl NsOp {
    fn apply(&self, names: &mut BTreeMap<String, u64>) {
        match self {
            NsOp::Link(name, id) => {
                names.insert(name.clone(), *id);
            }
            NsOp::Unlink(name) => {
                names.remove(name);
            }
            NsOp::Rename(from, to) => {
                if let Some(id) = names.remove(from) {
                    names.insert(to.clone(), id);
                }
            }
        }
    }
}

/// One file's data and what of it is durable.
struct Inode<F> {
    /// Name of the file in the wrapped storage.
    name: String,
    file: F,
    len: u64,
    /// Bytes below this offset are the same in the durable and the current contents, and in
    /// every state in between.
    stable_len: u64,
    /// Durable bytes after `stable_len` that an unsynced truncation removed.
    durable_tail: Vec<u8>,
    /// Writes since the last sync.
    ops: Vec<FileOp>,
    /// Counts live handles, so an unlinked file that is still open keeps its data.
    handles: Arc<()>,
}

enum Fault {
    Fail,
    Crash(CrashMode),
}

struct Trigger {
    ops: Ops,
    remaining: u64,
    fault: Fault,
}

struct State<F> {
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    journal: Vec<NsOp>,
    inodes: BTreeMap<u64, Inode<F>>,
    next_inode: u64,
    counts: [u64; 4],
    trigger: Option<Trigger>,
    fired: bool,
    crashes: u64,
    /// The longest `read_at` asked for (see [`FaultyStorage::largest_read`]).
    largest_read: u64,
}

struct Shared<S: Storage> {
    inner: S,
    state: Mutex<State<S::File>>,
    epoch: AtomicU64,
    lock_holder: StdMutex<Option<u64>>,
    next_token: AtomicU64,
    pass_syncs: AtomicBool,
}

impl<S: Storage> Shared<S> {
    /// Syncs a file of the wrapped storage, if syncs are passed through.
    async fn sync_file(&self, file: &S::File) -> Result<()> {
        if self.pass_syncs.load(Ordering::Acquire) {
            file.sync().await
        } else {
            Ok(())
        }
    }

    /// Syncs the wrapped storage's namespace, if syncs are passed through.
    async fn sync_names(&self) -> Result<()> {
        if self.pass_syncs.load(Ordering::Acquire) {
            self.inner.sync().await
        } else {
            Ok(())
        }
    }
}

/// A fault-injecting wrapper around any [`Storage`]; see the module docs.
///
/// ```ignore
/// let faulty = FaultyStorage::wrap(MemoryStorage::new()).await?;
/// let store = Store::<Bitcask<_>>::open(faulty.restart()).await?;
/// // ... commits ...
/// faulty.crash(CrashMode::LoseUnsynced).await?;   // the store above is dead now
/// let store = Store::<Bitcask<_>>::open(faulty.restart()).await?;
/// ```
pub struct FaultyStorage<S: Storage> {
    shared: Arc<Shared<S>>,
    epoch: u64,
}

impl<S: Storage> Clone for FaultyStorage<S> {
    fn clone(&self) -> Self {
        FaultyStorage {
            shared: self.shared.clone(),
            epoch: self.epoch,
        }
    }
}

fn crashed_error(what: &str) -> Error {
    Error::io(
        what,
        std::io::Error::other("simulated crash: this handle belongs to a crashed process"),
    )
}

/// The message of the `std::io::Error` of an injected fault.
pub(crate) const INJECTED_FAULT: &str = "injected I/O fault";

fn injected_error(what: &str) -> Error {
    Error::io(what, std::io::Error::other(INJECTED_FAULT))
}

impl<S: Storage> FaultyStorage<S> {
    /// Wraps `inner`, adopting the files it already holds as durable.
    pub async fn wrap(inner: S) -> Result<Self> {
        let mut state = State {
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            journal: Vec::new(),
            inodes: BTreeMap::new(),
            next_inode: 0,
            counts: [0; 4],
            trigger: None,
            fired: false,
            crashes: 0,
            largest_read: 0,
        };
        for name in inner.list().await? {
            let file = inner.open(&name).await?;
            let len = file.len().await?;
            let id = state.next_inode;
            state.next_inode += 1;
            state.names.insert(name.clone(), id);
            state.inodes.insert(
                id,
                Inode {
                    name,
                    file,
                    len,
                    stable_len: len,
                    durable_tail: Vec::new(),
                    ops: Vec::new(),
                    handles: Arc::new(()),
                },
            );
        }
        state.durable_names = state.names.clone();
        Ok(FaultyStorage {
            shared: Arc::new(Shared {
                inner,
                state: Mutex::new(state),
                epoch: AtomicU64::new(0),
                lock_holder: StdMutex::new(None),
                next_token: AtomicU64::new(0),
                pass_syncs: AtomicBool::new(false),
            }),
            epoch: 0,
        })
    }

    /// A handle for a new process: use it to reopen a store after [`FaultyStorage::crash`].
    pub fn restart(&self) -> Self {
        FaultyStorage {
            shared: self.shared.clone(),
            epoch: self.shared.epoch.load(Ordering::Acquire),
        }
    }

    /// Passes syncs through to the wrapped storage (off by default: durability is simulated,
    /// and a real `fsync` per commit would only slow the crash cases down).
    pub fn pass_syncs(&self, on: bool) {
        self.shared.pass_syncs.store(on, Ordering::Release);
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &S {
        &self.shared.inner
    }

    /// Simulates a crash now: see [`CrashMode`]. Every handle taken before it dies.
    pub async fn crash(&self, mode: CrashMode) -> Result<()> {
        let mut st = self.shared.state.lock().await;
        crash_locked(&self.shared, &mut st, mode).await
    }

    /// Makes the operation after the next `n` operations of kinds `ops` fail with an `Io`
    /// error, without doing anything. Later operations succeed again.
    pub async fn fail_after(&self, n: u64, ops: Ops) {
        self.arm(n, ops, Fault::Fail).await;
    }

    /// Crashes right before the operation after the next `n` operations of kinds `ops`; that
    /// operation fails like every later one of the crashed process.
    pub async fn crash_after(&self, n: u64, ops: Ops, mode: CrashMode) {
        self.arm(n, ops, Fault::Crash(mode)).await;
    }

    async fn arm(&self, n: u64, ops: Ops, fault: Fault) {
        let mut st = self.shared.state.lock().await;
        st.trigger = Some(Trigger {
            ops,
            remaining: n,
            fault,
        });
        st.fired = false;
    }

    /// Disarms a fault that has not struck; returns true if the last armed fault struck.
    pub async fn disarm(&self) -> bool {
        let mut st = self.shared.state.lock().await;
        st.trigger = None;
        st.fired
    }

    /// How many operations of kinds `ops` were attempted so far (by every process).
    pub async fn count(&self, ops: Ops) -> u64 {
        let st = self.shared.state.lock().await;
        (0..4)
            .filter(|i| ops.0 & (1 << i) != 0)
            .map(|i| st.counts[i])
            .sum()
    }

    /// Number of crashes so far.
    pub async fn crashes(&self) -> u64 {
        self.shared.state.lock().await.crashes
    }

    /// The longest `read_at` asked for so far (by every process), in bytes, whether or not
    /// the file held that many: a read longer than every file asks the backend for memory no
    /// file can fill, a length taken from damaged bytes without a bound.
    pub async fn largest_read(&self) -> u64 {
        self.shared.state.lock().await.largest_read
    }

    /// Bytes appended but not synced yet, over all files.
    pub async fn unsynced_bytes(&self) -> u64 {
        let st = self.shared.state.lock().await;
        st.inodes
            .values()
            .flat_map(|i| &i.ops)
            .map(|op| match op {
                FileOp::Append(b) => b.len() as u64,
                FileOp::Truncate(_) => 0,
            })
            .sum()
    }

    /// Flips every bit of the byte at `offset` of file `name`, durably: media corruption.
    /// The file must have no unsynced writes (call it after a crash or a sync).
    pub async fn flip_byte(&self, name: &str, offset: u64) -> Result<()> {
        let st = self.shared.state.lock().await;
        let inode = st
            .names
            .get(name)
            .and_then(|id| st.inodes.get(id))
            .ok_or_else(|| not_found("flip_byte", name))?;
        if !inode.ops.is_empty() || offset >= inode.len {
            return Err(Error::InvalidArgument(format!(
                "flip_byte {name} at {offset}: file has unsynced writes or is shorter ({})",
                inode.len
            )));
        }
        let mut rest = inode
            .file
            .read_at(offset, (inode.len - offset) as usize)
            .await?;
        rest[0] = !rest[0];
        inode.file.truncate(offset).await?;
        inode.file.append(&rest).await?;
        self.shared.sync_file(&inode.file).await
    }

    /// Cuts file `name` to `len` bytes, durably: a lost tail that the test chooses. The file
    /// must have no unsynced writes (call it after a crash or a sync).
    pub async fn set_len(&self, name: &str, len: u64) -> Result<()> {
        let mut st = self.shared.state.lock().await;
        let inode = st
            .names
            .get(name)
            .copied()
            .and_then(|id| st.inodes.get_mut(&id))
            .ok_or_else(|| not_found("set_len", name))?;
        if !inode.ops.is_empty() || len > inode.len {
            return Err(Error::InvalidArgument(format!(
                "set_len {name} to {len}: file has unsynced writes or is shorter ({})",
                inode.len
            )));
        }
        inode.file.truncate(len).await?;
        self.shared.sync_file(&inode.file).await?;
        inode.len = len;
        inode.stable_len = len;
        Ok(())
    }

    fn check_epoch(&self, what: &str) -> Result<()> {
        if self.epoch == self.shared.epoch.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(crashed_error(what))
        }
    }

    /// Starts an operation: checks the process is alive, counts it, strikes an armed fault.
    async fn begin(&self, kind: Ops, what: &str) -> Result<MutexGuard<'_, State<S::File>>> {
        begin(&self.shared, self.epoch, kind, what).await
    }
}

async fn begin<'a, S: Storage>(
    shared: &'a Shared<S>,
    epoch: u64,
    kind: Ops,
    what: &str,
) -> Result<MutexGuard<'a, State<S::File>>> {
    let mut st = shared.state.lock().await;
    if epoch != shared.epoch.load(Ordering::Acquire) {
        return Err(crashed_error(what));
    }
    st.counts[kind.index()] += 1;
    let strike = match &mut st.trigger {
        Some(t) if t.ops.intersects(kind) => {
            if t.remaining == 0 {
                true
            } else {
                t.remaining -= 1;
                false
            }
        }
        _ => false,
    };
    if strike && let Some(t) = st.trigger.take() {
        st.fired = true;
        return Err(match t.fault {
            Fault::Fail => injected_error(what),
            Fault::Crash(mode) => {
                crash_locked(shared, &mut st, mode).await?;
                crashed_error(what)
            }
        });
    }
    Ok(st)
}

/// Applies a crash to the state: see [`CrashMode`].
async fn crash_locked<S: Storage>(
    shared: &Shared<S>,
    st: &mut State<S::File>,
    mode: CrashMode,
) -> Result<()> {
    shared.epoch.fetch_add(1, Ordering::AcqRel);
    *shared.lock_holder.lock() = None;
    st.crashes += 1;
    st.trigger = None;
    if mode == CrashMode::KeepUnsynced {
        // Only the process dies: what it wrote stays in the "operating system", as unsynced
        // as before, so a later power loss can still lose it.
        return Ok(());
    }
    let mut rng = Rng::new(match mode {
        CrashMode::Random(seed) => seed,
        _ => 0,
    });

    // Namespace: durable names plus the kept prefix of the journal.
    let keep = match mode {
        CrashMode::LoseUnsynced => 0,
        CrashMode::KeepUnsynced | CrashMode::CutTail(_) => st.journal.len(),
        CrashMode::Random(_) => rng.below(st.journal.len() as u64 + 1) as usize,
    };
    let mut names = st.durable_names.clone();
    for op in &st.journal[..keep] {
        op.apply(&mut names);
    }
    st.journal.clear();
    st.durable_names = names.clone();
    st.names = names;

    // Files: durable contents plus the kept prefix of their unsynced writes.
    let live: Vec<u64> = st.names.values().copied().collect();
    for id in live {
        let Some(inode) = st.inodes.get_mut(&id) else {
            continue;
        };
        if inode.ops.is_empty() {
            continue;
        }
        let base = inode.stable_len;
        let mut tail = inode.durable_tail.clone();
        let apply = |tail: &mut Vec<u8>, op: &FileOp| match op {
            FileOp::Append(b) => tail.extend_from_slice(b),
            // Unsynced truncations never go below `stable_len`, by its definition.
            FileOp::Truncate(t) => tail.truncate(t.saturating_sub(base) as usize),
        };
        let rewrite = match mode {
            CrashMode::LoseUnsynced => true,
            CrashMode::KeepUnsynced => false,
            CrashMode::Random(_) => {
                let n = inode.ops.len();
                let k = rng.below(n as u64 + 1) as usize;
                for op in &inode.ops[..k] {
                    apply(&mut tail, op);
                }
                if let Some(FileOp::Append(b)) = inode.ops.get(k) {
                    let cut = rng.below(b.len() as u64) as usize;
                    tail.extend_from_slice(&b[..cut]);
                }
                true
            }
            CrashMode::CutTail(n) => {
                let durable = tail.len();
                for op in &inode.ops {
                    apply(&mut tail, op);
                }
                let cut = tail
                    .len()
                    .saturating_sub(n as usize)
                    .max(durable.min(tail.len()));
                tail.truncate(cut);
                true
            }
        };
        if rewrite {
            inode.file.truncate(base).await?;
            if !tail.is_empty() {
                inode.file.append(&tail).await?;
            }
            inode.len = base + tail.len() as u64;
        }
        shared.sync_file(&inode.file).await?;
        inode.stable_len = inode.len;
        inode.ops.clear();
        inode.durable_tail.clear();
    }
    gc(shared, st, true).await?;
    shared.sync_names().await
}

/// Deletes inodes that no name points to (and, unless `force`, that no handle has open).
async fn gc<S: Storage>(shared: &Shared<S>, st: &mut State<S::File>, force: bool) -> Result<()> {
    let dead: Vec<u64> = st
        .inodes
        .iter()
        .filter(|(id, inode)| {
            !st.names.values().any(|n| n == *id)
                && !st.durable_names.values().any(|n| n == *id)
                && (force || Arc::strong_count(&inode.handles) == 1)
        })
        .map(|(id, _)| *id)
        .collect();
    for id in dead {
        if let Some(inode) = st.inodes.remove(&id) {
            shared.inner.remove(&inode.name).await?;
        }
    }
    Ok(())
}

/// A file handle of a [`FaultyStorage`].
pub struct FaultyFile<S: Storage> {
    shared: Arc<Shared<S>>,
    epoch: u64,
    id: u64,
    name: Arc<str>,
    _handle: Arc<()>,
}

impl<S: Storage> Clone for FaultyFile<S> {
    fn clone(&self) -> Self {
        FaultyFile {
            shared: self.shared.clone(),
            epoch: self.epoch,
            id: self.id,
            name: self.name.clone(),
            _handle: self._handle.clone(),
        }
    }
}

impl<S: Storage> FaultyFile<S> {
    fn inode<'s>(&self, st: &'s mut State<S::File>) -> Result<&'s mut Inode<S::File>> {
        st.inodes
            .get_mut(&self.id)
            .ok_or_else(|| not_found("use of", &self.name))
    }
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl<S: Storage> StorageFile for FaultyFile<S> {
    async fn len(&self) -> Result<u64> {
        let mut st = begin(&self.shared, self.epoch, Ops::READS, "len").await?;
        Ok(self.inode(&mut st)?.len)
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut st = begin(&self.shared, self.epoch, Ops::READS, "read_at").await?;
        st.largest_read = st.largest_read.max(len as u64);
        self.inode(&mut st)?.file.read_at(offset, len).await
    }

    async fn append(&self, bytes: &[u8]) -> Result<u64> {
        let mut st = begin(&self.shared, self.epoch, Ops::WRITES, "append").await?;
        let inode = self.inode(&mut st)?;
        let offset = inode.file.append(bytes).await?;
        inode.len = offset + bytes.len() as u64;
        inode.ops.push(FileOp::Append(bytes.to_vec()));
        Ok(offset)
    }

    async fn sync(&self) -> Result<()> {
        let mut st = begin(&self.shared, self.epoch, Ops::SYNCS, "sync").await?;
        let inode = self.inode(&mut st)?;
        self.shared.sync_file(&inode.file).await?;
        inode.stable_len = inode.len;
        inode.ops.clear();
        inode.durable_tail.clear();
        Ok(())
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        let mut st = begin(&self.shared, self.epoch, Ops::WRITES, "truncate").await?;
        let inode = self.inode(&mut st)?;
        // Durable bytes cut by an unsynced truncation must come back after a crash.
        let saved = if len < inode.stable_len {
            Some(
                inode
                    .file
                    .read_at(len, (inode.stable_len - len) as usize)
                    .await?,
            )
        } else {
            None
        };
        inode.file.truncate(len).await?;
        if let Some(mut saved) = saved {
            saved.append(&mut inode.durable_tail);
            inode.durable_tail = saved;
            inode.stable_len = len;
        }
        inode.len = len;
        inode.ops.push(FileOp::Truncate(len));
        Ok(())
    }
}

struct FaultyLock<S: Storage> {
    shared: Arc<Shared<S>>,
    token: u64,
}

impl<S: Storage> Drop for FaultyLock<S> {
    fn drop(&mut self) {
        let mut holder = self.shared.lock_holder.lock();
        // A guard of a crashed process must not release the lock of its successor.
        if *holder == Some(self.token) {
            *holder = None;
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl<S: Storage> Storage for FaultyStorage<S> {
    type File = FaultyFile<S>;

    async fn list(&self) -> Result<Vec<String>> {
        let st = self.begin(Ops::READS, "list").await?;
        Ok(st.names.keys().cloned().collect())
    }

    async fn open(&self, name: &str) -> Result<FaultyFile<S>> {
        let st = self.begin(Ops::READS, "open").await?;
        let id = *st.names.get(name).ok_or_else(|| not_found("open", name))?;
        let inode = st.inodes.get(&id).ok_or_else(|| not_found("open", name))?;
        Ok(FaultyFile {
            shared: self.shared.clone(),
            epoch: self.epoch,
            id,
            name: name.into(),
            _handle: inode.handles.clone(),
        })
    }

    async fn create(&self, name: &str) -> Result<FaultyFile<S>> {
        let mut st = self.begin(Ops::WRITES, "create").await?;
        let id = st.next_inode;
        st.next_inode += 1;
        let mut inner_name = format!("faulty-{id}.inode");
        while st.inodes.values().any(|i| i.name == inner_name) {
            inner_name.push('_');
        }
        let file = self.shared.inner.create(&inner_name).await?;
        let handles = Arc::new(());
        st.inodes.insert(
            id,
            Inode {
                name: inner_name,
                file,
                len: 0,
                stable_len: 0,
                durable_tail: Vec::new(),
                ops: Vec::new(),
                handles: handles.clone(),
            },
        );
        st.names.insert(name.to_string(), id);
        st.journal.push(NsOp::Link(name.to_string(), id));
        Ok(FaultyFile {
            shared: self.shared.clone(),
            epoch: self.epoch,
            id,
            name: name.into(),
            _handle: handles,
        })
    }

    async fn remove(&self, name: &str) -> Result<()> {
        let mut st = self.begin(Ops::WRITES, "remove").await?;
        if st.names.remove(name).is_some() {
            st.journal.push(NsOp::Unlink(name.to_string()));
        }
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let mut st = self.begin(Ops::WRITES, "rename").await?;
        let id = st
            .names
            .remove(from)
            .ok_or_else(|| not_found("rename", from))?;
        st.names.insert(to.to_string(), id);
        st.journal
            .push(NsOp::Rename(from.to_string(), to.to_string()));
        Ok(())
    }

    async fn sync(&self) -> Result<()> {
        let mut st = self.begin(Ops::SYNCS, "sync").await?;
        self.shared.sync_names().await?;
        st.durable_names = st.names.clone();
        st.journal.clear();
        gc(&self.shared, &mut st, false).await
    }

    async fn lock(&self) -> Result<LockGuard> {
        drop(self.begin(Ops::LOCKS, "lock").await?);
        let mut holder = self.shared.lock_holder.lock();
        if holder.is_some() {
            return Err(Error::Locked(
                "faulty storage is already open for writing".into(),
            ));
        }
        let token = self.shared.next_token.fetch_add(1, Ordering::AcqRel);
        *holder = Some(token);
        Ok(LockGuard::new(FaultyLock {
            shared: self.shared.clone(),
            token,
        }))
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        let st = self.begin(Ops::READS, "exists").await?;
        Ok(st.names.contains_key(name))
    }
}

impl<S: Storage> FaultyStorage<S> {
    /// True if this handle belongs to a process that has not crashed.
    pub fn is_alive(&self) -> bool {
        self.check_epoch("is_alive").is_ok()
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use kv_backends::MemoryStorage;

    async fn contents<S: Storage>(s: &S, name: &str) -> Option<Vec<u8>> {
        let f = s.open(name).await.ok()?;
        let len = f.len().await.ok()?;
        f.read_at(0, len as usize).await.ok()
    }

    /// A file "a" with 3 synced bytes (durable name) and 3 unsynced ones.
    async fn setup() -> FaultyStorage<MemoryStorage> {
        let s = FaultyStorage::wrap(MemoryStorage::new())
            .await
            .expect("wrap");
        let f = s.create("a").await.expect("create");
        s.sync().await.expect("sync");
        f.append(b"abc").await.expect("append");
        f.sync().await.expect("sync");
        f.append(b"def").await.expect("append");
        s
    }

    /// The longest read asked for is remembered, also one the file could not serve.
    #[tokio::test]
    async fn largest_read_counts_refused_reads() {
        let s = setup().await;
        assert_eq!(s.largest_read().await, 0);
        let f = s.open("a").await.expect("open");
        f.read_at(1, 2).await.expect("read");
        assert!(f.read_at(0, 1 << 30).await.is_err());
        assert_eq!(s.largest_read().await, 1 << 30);
    }

    #[tokio::test]
    async fn power_loss_drops_unsynced_appends() {
        let s = setup().await;
        s.crash(CrashMode::LoseUnsynced).await.expect("crash");
        assert_eq!(
            contents(&s.restart(), "a").await.as_deref(),
            Some(&b"abc"[..])
        );
    }

    #[tokio::test]
    async fn process_crash_keeps_everything() {
        let s = setup().await;
        s.crash(CrashMode::KeepUnsynced).await.expect("crash");
        assert_eq!(
            contents(&s.restart(), "a").await.as_deref(),
            Some(&b"abcdef"[..])
        );
    }

    #[tokio::test]
    async fn process_crash_leaves_writes_unsynced() {
        let s = setup().await;
        s.crash(CrashMode::KeepUnsynced).await.expect("crash");
        assert!(s.create("b").await.is_err(), "a dead handle created a file");
        s.restart().create("b").await.expect("create");
        s.crash(CrashMode::KeepUnsynced).await.expect("crash");
        s.crash(CrashMode::LoseUnsynced).await.expect("power loss");
        let s = s.restart();
        assert_eq!(contents(&s, "a").await.as_deref(), Some(&b"abc"[..]));
        assert!(!s.exists("b").await.expect("exists"));
    }

    #[tokio::test]
    async fn random_crash_keeps_a_prefix() {
        for seed in 0..50 {
            let s = setup().await;
            let f = s.open("a").await.expect("open");
            f.append(b"ghi").await.expect("append");
            s.crash(CrashMode::Random(seed)).await.expect("crash");
            let got = contents(&s.restart(), "a").await.expect("file");
            assert!(
                got.len() >= 3 && b"abcdefghi".starts_with(&got),
                "seed {seed}: {got:?}"
            );
        }
    }

    #[tokio::test]
    async fn cut_tail_never_cuts_synced_bytes() {
        let s = setup().await;
        s.crash(CrashMode::CutTail(2)).await.expect("crash");
        assert_eq!(
            contents(&s.restart(), "a").await.as_deref(),
            Some(&b"abcd"[..])
        );
        let s = setup().await;
        s.crash(CrashMode::CutTail(100)).await.expect("crash");
        assert_eq!(
            contents(&s.restart(), "a").await.as_deref(),
            Some(&b"abc"[..])
        );
    }

    #[tokio::test]
    async fn unsynced_namespace_operations_are_undone() {
        let s = setup().await;
        s.create("new").await.expect("create");
        s.remove("a").await.expect("remove");
        assert!(!s.exists("a").await.expect("exists"));
        s.crash(CrashMode::LoseUnsynced).await.expect("crash");
        let s = s.restart();
        assert!(
            !s.exists("new").await.expect("exists"),
            "unsynced create survived"
        );
        assert_eq!(
            contents(&s, "a").await.as_deref(),
            Some(&b"abc"[..]),
            "unsynced remove survived"
        );
    }

    #[tokio::test]
    async fn synced_namespace_operations_survive() {
        let s = setup().await;
        let t = s.create("tmp").await.expect("create");
        t.append(b"new").await.expect("append");
        t.sync().await.expect("sync");
        s.rename("tmp", "a").await.expect("rename");
        s.sync().await.expect("sync");
        s.crash(CrashMode::LoseUnsynced).await.expect("crash");
        let s = s.restart();
        assert_eq!(contents(&s, "a").await.as_deref(), Some(&b"new"[..]));
        assert!(!s.exists("tmp").await.expect("exists"));
        assert_eq!(
            s.inner().list().await.expect("list").len(),
            1,
            "the replaced inode was collected"
        );
    }

    #[tokio::test]
    async fn unsynced_rename_is_undone() {
        let s = setup().await;
        let t = s.create("tmp").await.expect("create");
        t.append(b"new").await.expect("append");
        t.sync().await.expect("sync");
        s.sync().await.expect("sync");
        s.rename("tmp", "a").await.expect("rename");
        s.crash(CrashMode::LoseUnsynced).await.expect("crash");
        let s = s.restart();
        assert_eq!(contents(&s, "a").await.as_deref(), Some(&b"abc"[..]));
        assert_eq!(contents(&s, "tmp").await.as_deref(), Some(&b"new"[..]));
    }

    #[tokio::test]
    async fn unsynced_truncate_is_undone() {
        let s = setup().await;
        let f = s.open("a").await.expect("open");
        f.truncate(1).await.expect("truncate");
        f.append(b"XY").await.expect("append");
        assert_eq!(contents(&s, "a").await.as_deref(), Some(&b"aXY"[..]));
        s.crash(CrashMode::LoseUnsynced).await.expect("crash");
        assert_eq!(
            contents(&s.restart(), "a").await.as_deref(),
            Some(&b"abc"[..])
        );
    }

    #[tokio::test]
    async fn crashed_handles_fail_and_lock_is_released() {
        let s = setup().await;
        let f = s.open("a").await.expect("open");
        let guard = s.lock().await.expect("lock");
        assert!(matches!(s.lock().await, Err(Error::Locked(_))));
        s.crash(CrashMode::KeepUnsynced).await.expect("crash");
        assert!(f.append(b"x").await.is_err());
        assert!(f.read_at(0, 1).await.is_err());
        assert!(s.list().await.is_err());
        let s2 = s.restart();
        let guard2 = s2.lock().await.expect("lock after crash");
        drop(guard); // the dead process's guard must not release the new holder's lock
        assert!(matches!(s2.lock().await, Err(Error::Locked(_))));
        drop(guard2);
        s2.lock().await.expect("lock after release");
    }

    #[tokio::test]
    async fn faults_strike_the_chosen_operation_once() {
        let s = setup().await;
        let f = s.open("a").await.expect("open");
        s.fail_after(1, Ops::WRITES).await;
        f.read_at(0, 1).await.expect("reads are not counted");
        f.append(b"1").await.expect("first write");
        assert!(f.append(b"2").await.is_err(), "second write fails");
        f.append(b"3").await.expect("third write");
        assert!(s.disarm().await);
        assert_eq!(contents(&s, "a").await.as_deref(), Some(&b"abcdef13"[..]));
        s.crash_after(0, Ops::SYNCS, CrashMode::LoseUnsynced).await;
        assert!(f.sync().await.is_err());
        assert_eq!(s.crashes().await, 1);
        assert_eq!(
            contents(&s.restart(), "a").await.as_deref(),
            Some(&b"abc"[..])
        );
    }

    #[tokio::test]
    async fn tampering_is_durable() {
        let s = setup().await;
        s.crash(CrashMode::CutTail(0)).await.expect("crash");
        let s = s.restart();
        s.flip_byte("a", 1).await.expect("flip");
        s.set_len("a", 4).await.expect("set_len");
        s.crash(CrashMode::LoseUnsynced).await.expect("crash");
        assert_eq!(
            contents(&s.restart(), "a").await.as_deref(),
            Some(&[b'a', !b'b', b'c', b'd'][..])
        );
    }
}
