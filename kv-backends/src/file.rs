//! Native files: one directory, positional reads, buffered appends, `fsync`, an OS lock.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use kv_api::{Error, LockGuard, Result, Storage, StorageFile, read_past_end};

/// Appends are gathered in memory up to this size before a write system call: a commit is
/// many small appends, and `sync` writes whatever is pending anyway.
const WRITE_BUFFER: usize = 256 << 10;

/// The name of the lock file, never listed.
const LOCK_FILE: &str = "LOCK";

/// A directory of files.
///
/// * Reads are positional (`pread`), so readers never contend with the appender for a cursor.
/// * Appends are buffered in user space (up to 256 KiB) and written on `sync`, when the
///   buffer fills, or when the last handle drops; `sync` is `fdatasync`.
/// * Creations, removals and renames `fsync` the directory.
/// * [`Storage::lock`] takes an exclusive OS lock on a `LOCK` file, so a second writer (in
///   this process or another) gets [`Error::Locked`].
///
/// Handles of the same file share one buffer, so every handle sees every append at once.
///
/// A read-only storage ([`FileStorage::open_read_only`], or [`Storage::read_only`], which
/// [`kv_api::Store`] calls for every read-only open) opens every file without write access,
/// so a store the user may read but not write opens; it refuses every mutation with
/// [`Error::ReadOnly`] and takes no lock. It shares no open file with a writable storage of
/// the same directory: it sees what the writer has written to the OS, as another process does.
///
/// Stores take it as their backend; its [`Storage`] methods are what an engine calls:
///
/// ```
/// # fn main() -> kv_api::Result<()> {
/// # let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| kv_api::Error::io("runtime", e))?;
/// # rt.block_on(async {
/// # let dir = tempfile::tempdir().map_err(|e| kv_api::Error::io("tempdir", e))?;
/// use kv_api::{Storage, StorageFile};
/// use kv_backends::FileStorage;
/// let storage = FileStorage::open(dir.path()).await?;
/// let _lock = storage.lock().await?; // one writer per directory
/// let log = storage.create("log").await?;
/// assert_eq!(log.append(b"hello").await?, 0); // the offset it landed at
/// log.sync().await?; // fdatasync
/// assert_eq!(log.read_at(1, 3).await?, b"ell");
/// storage.rename("log", "log.old").await?;
/// assert_eq!(storage.list().await?, ["log.old"]);
/// storage.remove("log.old").await?;
/// assert!(!storage.exists("log.old").await?);
/// # Ok(()) })
/// # }
/// ```
#[derive(Clone)]
pub struct FileStorage {
    inner: Arc<Dir>,
}

struct Dir {
    path: PathBuf,
    open: Mutex<HashMap<String, Weak<Inner>>>,
    read_only: bool,
}

impl std::fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStorage")
            .field("path", &self.inner.path)
            .field("read_only", &self.inner.read_only)
            .field("open_files", &self.inner.open.lock().len())
            .finish()
    }
}

impl FileStorage {
    /// Opens (creating it if needed) the directory `path`.
    ///
    /// ```
    /// # fn main() -> kv_api::Result<()> {
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| kv_api::Error::io("runtime", e))?;
    /// # rt.block_on(async {
    /// # let dir = tempfile::tempdir().map_err(|e| kv_api::Error::io("tempdir", e))?;
    /// # let path = dir.path().join("data");
    /// let storage = kv_backends::FileStorage::open(&path).await?;
    /// assert!(path.is_dir());
    /// # Ok(()) })
    /// # }
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        off_executor(move || {
            fs::create_dir_all(&path)
                .map_err(|e| Error::io(format!("create directory {}", path.display()), e))?;
            Ok(Self::new(path, false))
        })
        .await
    }

    /// Opens the existing directory `path` read-only: files are opened without write access,
    /// every mutation (create, remove, rename, append, truncate, lock) fails with
    /// [`Error::ReadOnly`], and nothing is created (a missing directory is an [`Error::Io`] of
    /// kind `NotFound`). `Store::open_read_only` does the same with a storage from
    /// [`FileStorage::open`] (see [`Storage::read_only`]); this one also leaves a missing
    /// directory uncreated.
    ///
    /// ```
    /// # fn main() -> kv_api::Result<()> {
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| kv_api::Error::io("runtime", e))?;
    /// # rt.block_on(async {
    /// # let dir = tempfile::tempdir().map_err(|e| kv_api::Error::io("tempdir", e))?;
    /// # let path = dir.path();
    /// use kv_api::{Error, Storage};
    /// use kv_backends::FileStorage;
    /// let storage = FileStorage::open_read_only(path).await?;
    /// assert!(storage.is_read_only());
    /// assert!(matches!(storage.create("x").await, Err(Error::ReadOnly(_))));
    /// assert!(FileStorage::open_read_only(path.join("missing")).await.is_err());
    /// # Ok(()) })
    /// # }
    /// ```
    pub async fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        off_executor(move || {
            let op = || format!("open directory {}", path.display());
            let meta = fs::metadata(&path).map_err(|e| Error::io(op(), e))?;
            if !meta.is_dir() {
                return Err(Error::io(
                    op(),
                    io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
                ));
            }
            Ok(Self::new(path, true))
        })
        .await
    }

    fn new(path: PathBuf, read_only: bool) -> Self {
        FileStorage {
            inner: Arc::new(Dir {
                path,
                open: Mutex::new(HashMap::new()),
                read_only,
            }),
        }
    }

    /// True if this storage opens files read-only and refuses every mutation.
    ///
    /// ```
    /// # fn main() -> kv_api::Result<()> {
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| kv_api::Error::io("runtime", e))?;
    /// # rt.block_on(async {
    /// # let dir = tempfile::tempdir().map_err(|e| kv_api::Error::io("tempdir", e))?;
    /// use kv_api::Storage;
    /// let storage = kv_backends::FileStorage::open(dir.path()).await?;
    /// assert!(!storage.is_read_only());
    /// assert!(storage.read_only().is_read_only());
    /// # Ok(()) })
    /// # }
    /// ```
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// [`Error::ReadOnly`] naming `what` if this storage is read-only.
    fn writable_now(&self, what: &'static str) -> Result<()> {
        if self.inner.read_only {
            return Err(Error::ReadOnly(what));
        }
        Ok(())
    }

    /// The directory.
    ///
    /// ```
    /// # fn main() -> kv_api::Result<()> {
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().map_err(|e| kv_api::Error::io("runtime", e))?;
    /// # rt.block_on(async {
    /// # let dir = tempfile::tempdir().map_err(|e| kv_api::Error::io("tempdir", e))?;
    /// let storage = kv_backends::FileStorage::open(dir.path()).await?;
    /// assert_eq!(storage.path(), dir.path());
    /// # Ok(()) })
    /// # }
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn file_path(&self, name: &str) -> Result<PathBuf> {
        let valid = !name.is_empty()
            && name != LOCK_FILE
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\', '\0']);
        if !valid {
            return Err(Error::InvalidArgument(format!(
                "invalid file name {name:?}"
            )));
        }
        Ok(self.inner.path.join(name))
    }

    fn sync_dir(&self) -> Result<()> {
        sync_dir(&self.inner.path)
    }

    fn handle(&self, name: &str, file: File) -> Result<FileHandle> {
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("stat {name}"), e))?
            .len();
        let inner = Arc::new(Inner {
            name: name.to_string(),
            read_only: self.inner.read_only,
            file,
            state: Mutex::new(Buffered::new(len)),
            writer: Mutex::new(()),
        });
        self.inner
            .open
            .lock()
            .insert(name.to_string(), Arc::downgrade(&inner));
        Ok(FileHandle { inner })
    }
}

/// Runs `io`, a blocking system call (or a few), off the async worker threads: on tokio's
/// blocking pool inside a tokio runtime, so that a `pread` that misses the page cache or an
/// `fdatasync` never stalls the tasks of the executor; inline elsewhere (another executor,
/// or none). The engines' group commit is unchanged: one committer's `sync` covers every
/// commit appended before it, and appends go on (on the executor) while the disk syncs.
#[cfg(not(target_os = "wasi"))]
async fn off_executor<T: Send + 'static>(
    io: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => rt
            .spawn_blocking(io)
            .await
            .map_err(|e| Error::io("file I/O on a blocking thread", io::Error::other(e)))?,
        Err(_) => io(),
    }
}

/// Counts a read that ran inline against tokio's cooperative budget: such a read never
/// waits, so a task reading in a loop from the page cache would otherwise never yield, and
/// starve the other tasks of its worker (the append race test hung on it once). Once the
/// budget is spent (128 operations), the task yields; elsewhere this does nothing.
#[cfg(not(target_os = "wasi"))]
async fn inline_read_done() {
    tokio::task::consume_budget().await;
}

/// WASI: no tokio runtime to cooperate with.
#[cfg(target_os = "wasi")]
async fn inline_read_done() {}

/// WASI (preview 1) has no threads: the system calls run inline.
#[cfg(target_os = "wasi")]
async fn off_executor<T>(io: impl FnOnce() -> Result<T>) -> Result<T> {
    io()
}

#[cfg(unix)]
fn sync_dir(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("sync directory {}", path.display()), e))
}

#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> Result<()> {
    // Directory handles cannot be synced on this platform; metadata is journaled by the OS.
    Ok(())
}

#[cfg(unix)]
fn pread(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Reads into `buf` at `offset` what the OS can give without waiting for the disk, and
/// returns how many leading bytes of `buf` it filled: all of them when the page cache holds
/// the range, fewer (maybe none) when the rest must come from the disk, or when the call is
/// not supported (Linux before 4.14, some file systems); [`off_executor`] then reads the rest.
#[cfg(target_os = "linux")]
fn pread_cached(file: &File, buf: &mut [u8], offset: u64) -> usize {
    use rustix::io::{Errno, ReadWriteFlags, preadv2};
    let mut done = 0;
    while done < buf.len() {
        let at = offset.saturating_add(done as u64);
        match preadv2(
            file,
            &mut [io::IoSliceMut::new(&mut buf[done..])],
            at,
            ReadWriteFlags::NOWAIT,
        ) {
            Ok(0) => break, // the end of the file: the blocking read reports it
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(_) => break, // EAGAIN (not cached), EOPNOTSUPP: the blocking read goes on
        }
    }
    done
}

/// Without `RWF_NOWAIT`, every read of the file goes to [`off_executor`].
#[cfg(not(target_os = "linux"))]
fn pread_cached(_file: &File, _buf: &mut [u8], _offset: u64) -> usize {
    0
}

#[cfg(unix)]
fn pwrite(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// WASI's positional `FileExt` is unstable: seek, then read. Safe from interleaving because
/// WASI preview 1 has no threads and the two calls run without an `await` between them.
#[cfg(target_os = "wasi")]
fn pread(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// See the WASI `pread`.
#[cfg(target_os = "wasi")]
fn pwrite(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = file;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(buf)
}

#[cfg(windows)]
fn pread(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
fn pwrite(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

struct Inner {
    name: String,
    /// Opened without write access: appends and truncations fail with [`Error::ReadOnly`].
    read_only: bool,
    file: File,
    state: Mutex<Buffered>,
    /// Held by whoever writes buffered bytes to the OS (a blocking-pool thread), and only by
    /// it: the write system call runs outside `state`, which async tasks lock to append or
    /// read. A `pwrite` can wait for the disk (a page under writeback during `fdatasync`), and
    /// an executor thread waiting on `state` meanwhile stalled every task it runs (#12).
    writer: Mutex<()>,
}

/// Logical length and the appends not yet written to the OS:
/// `[0, flushed)` is in the file, `in_flight` is being written at `flushed`, and `pending`
/// follows at `pending_at` (the end of `in_flight`), up to `len`.
struct Buffered {
    len: u64,
    pending: Vec<u8>,
    /// File offset where `pending` starts.
    pending_at: u64,
    /// Bytes a writer took out of `pending` and is writing at `pending_at - in_flight.len()`;
    /// readers copy from here until the write returns.
    in_flight: Option<Arc<Vec<u8>>>,
    /// The buffer of the last write, emptied, for `pending` to take over: appends then grow
    /// no new buffer (and take no allocator lock) in the steady state.
    spare: Vec<u8>,
}

impl Buffered {
    fn new(len: u64) -> Self {
        Buffered {
            len,
            pending: Vec::new(),
            pending_at: len,
            in_flight: None,
            spare: Vec::new(),
        }
    }

    /// Where the bytes the OS may not have yet begin.
    fn flushed(&self) -> u64 {
        let in_flight = self.in_flight.as_ref().map_or(0, |b| b.len() as u64);
        self.pending_at - in_flight
    }

    /// Copies the buffered bytes at `offset..offset + buf.len()` (all at or after
    /// [`Buffered::flushed`] and before `len`) into `buf`.
    fn copy_out(&self, offset: u64, buf: &mut [u8]) {
        let mut at = offset;
        let mut out = buf;
        if let Some(flying) = &self.in_flight {
            let start = self.flushed();
            if at < self.pending_at {
                let from = (at - start) as usize;
                let n = out.len().min(flying.len() - from);
                let (head, rest) = out.split_at_mut(n);
                head.copy_from_slice(&flying[from..from + n]);
                out = rest;
                at += n as u64;
            }
        }
        if out.is_empty() {
            return;
        }
        let from = (at - self.pending_at) as usize;
        out.copy_from_slice(&self.pending[from..from + out.len()]);
    }
}

impl Inner {
    fn writable(&self, what: &'static str) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly(what));
        }
        Ok(())
    }

    /// Writes every pending append to the OS, outside the `state` lock (see [`Inner::writer`]).
    /// When it returns, everything appended before the call is in the file.
    fn write_pending(&self) -> Result<()> {
        let _writer = self.writer.lock();
        let (bytes, at) = {
            let mut st = self.state.lock();
            if st.pending.is_empty() {
                return Ok(());
            }
            let spare = std::mem::take(&mut st.spare);
            let bytes = Arc::new(std::mem::replace(&mut st.pending, spare));
            let at = st.pending_at;
            st.pending_at += bytes.len() as u64;
            st.in_flight = Some(bytes.clone());
            (bytes, at)
        };
        let written = pwrite(&self.file, &bytes, at);
        let mut st = self.state.lock();
        st.in_flight = None;
        // Readers copy from the in-flight buffer under `state` and keep no reference, so
        // the buffer is ours again.
        let mut bytes = Arc::try_unwrap(bytes).unwrap_or_else(|shared| (*shared).clone());
        match written {
            Ok(()) => {
                // Kept for reuse unless one huge append made it large.
                if bytes.capacity() <= 2 * WRITE_BUFFER {
                    bytes.clear();
                    st.spare = bytes;
                }
                Ok(())
            }
            Err(e) => {
                // Put the bytes back in front of what was appended meanwhile: a later sync
                // retries them, and readers still see them.
                bytes.extend_from_slice(&st.pending);
                st.pending = bytes;
                st.pending_at = at;
                Err(Error::io(format!("write {}", self.name), e))
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Best effort: what is not synced carries no durability promise, but a clean drop
        // should still hand it to the OS.
        let _ = self.write_pending();
    }
}

/// A file of a [`FileStorage`].
#[derive(Clone)]
pub struct FileHandle {
    inner: Arc<Inner>,
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl StorageFile for FileHandle {
    async fn len(&self) -> Result<u64> {
        if !self.inner.read_only {
            return Ok(self.inner.state.lock().len);
        }
        // A read-only view's handle is shared by every open of the name in it (an engine may
        // hold one for its whole life), while a writer elsewhere appends to the file or cuts
        // it: its length is the file's as it is now (`Store::verify` beside a writer reads
        // whole files through it). Nothing is ever pending in a read-only handle.
        let inner = self.inner.clone();
        off_executor(move || {
            let now = inner
                .file
                .metadata()
                .map_err(|e| Error::io(format!("stat {}", inner.name), e))?
                .len();
            let mut st = inner.state.lock();
            st.len = now;
            st.pending_at = now;
            Ok(now)
        })
        .await
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let inner = &*self.inner;
        // Refused before the buffer is allocated: a length read from damaged data must not
        // cost its size in memory. (Checked again below, under the lock the read holds.)
        let len_now = inner.state.lock().len;
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > len_now)
        {
            return Err(read_past_end(&inner.name, offset, len, len_now));
        }
        // Zeroed outside the lock, so a large read does not hold up appends.
        let mut buf = vec![0u8; len];
        let end = offset.checked_add(len as u64);
        // How many leading bytes of `buf` the file holds; the rest is copied from the buffers.
        let split = {
            let st = inner.state.lock();
            match end {
                Some(end) if end <= st.len => {
                    let flushed = st.flushed();
                    if end <= flushed {
                        len
                    } else {
                        let split = flushed.saturating_sub(offset) as usize;
                        st.copy_out(offset.max(flushed), &mut buf[split..]);
                        split
                    }
                }
                _ => return Err(read_past_end(&inner.name, offset, len, st.len)),
            }
        };
        // What the page cache holds is read here (no thread hop); only a read that would
        // wait for the disk goes to the blocking pool.
        let cached = pread_cached(&inner.file, &mut buf[..split], offset);
        if cached == split {
            inline_read_done().await;
            return Ok(buf);
        }
        let inner = self.inner.clone();
        off_executor(move || {
            pread(&inner.file, &mut buf[cached..split], offset + cached as u64)
                .map_err(|e| Error::io(format!("read {}", inner.name), e))?;
            Ok(buf)
        })
        .await
    }

    async fn append(&self, bytes: &[u8]) -> Result<u64> {
        self.inner.writable("append")?;
        let (offset, full) = {
            let mut st = self.inner.state.lock();
            let offset = st.len;
            st.pending.extend_from_slice(bytes);
            st.len += bytes.len() as u64;
            (offset, st.pending.len() >= WRITE_BUFFER)
        };
        if full {
            let inner = self.inner.clone();
            off_executor(move || inner.write_pending()).await?;
        }
        Ok(offset)
    }

    async fn sync(&self) -> Result<()> {
        if self.inner.read_only {
            return Ok(()); // nothing was written
        }
        let inner = self.inner.clone();
        off_executor(move || {
            inner.write_pending()?;
            // Outside every lock: appends may go on while the disk syncs (group commit
            // relies on it).
            inner
                .file
                .sync_data()
                .map_err(|e| Error::io(format!("sync {}", inner.name), e))
        })
        .await
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        self.inner.writable("truncate")?;
        let inner = self.inner.clone();
        off_executor(move || {
            // Rare (recovery cuts a torn tail): holding `state` across the system calls
            // keeps appends out until the file has its new length.
            let _writer = inner.writer.lock();
            let mut st = inner.state.lock();
            if len > st.len {
                return Err(Error::InvalidArgument(format!(
                    "truncate {} to {len} beyond its length {}",
                    inner.name, st.len
                )));
            }
            if !st.pending.is_empty() {
                pwrite(&inner.file, &st.pending, st.pending_at)
                    .map_err(|e| Error::io(format!("write {}", inner.name), e))?;
            }
            inner
                .file
                .set_len(len)
                .map_err(|e| Error::io(format!("truncate {}", inner.name), e))?;
            *st = Buffered::new(len);
            Ok(())
        })
        .await
    }
}

/// The directories whose `LOCK` this process holds, so that a refused lock can say whether
/// the holder is in this process (another open store, or a transaction that outlives its
/// store) or in another one.
static HELD_HERE: Mutex<Vec<PathBuf>> = parking_lot::const_mutex(Vec::new());

/// The OS lock on a `LOCK` file, registered in [`HELD_HERE`] while it is held.
struct OsLock {
    _file: File,
    dir: PathBuf,
}

impl Drop for OsLock {
    fn drop(&mut self) {
        let mut held = HELD_HERE.lock();
        if let Some(i) = held.iter().position(|d| *d == self.dir) {
            held.swap_remove(i);
        }
    }
}

/// The directory as this process names it in [`HELD_HERE`] (canonical where possible, so
/// `./data` and `/abs/data` are one directory).
fn lock_key(dir: &Path) -> PathBuf {
    fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The system calls of [`Storage`], run by [`off_executor`].
impl FileStorage {
    fn list_now(&self) -> Result<Vec<String>> {
        let op = || format!("list {}", self.inner.path.display());
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.inner.path).map_err(|e| Error::io(op(), e))? {
            let entry = entry.map_err(|e| Error::io(op(), e))?;
            if entry.file_type().map_err(|e| Error::io(op(), e))?.is_file()
                && let Some(name) = entry.file_name().to_str()
                && name != LOCK_FILE
            {
                names.push(name.to_string());
            }
        }
        Ok(names)
    }

    fn open_now(&self, name: &str) -> Result<FileHandle> {
        let path = self.file_path(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(!self.inner.read_only)
            .open(&path)
            .map_err(|e| Error::io(format!("open {name}"), e))?;
        self.handle(name, file)
    }

    fn create_now(&self, name: &str) -> Result<FileHandle> {
        self.writable_now("create")?;
        let path = self.file_path(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| Error::io(format!("create {name}"), e))?;
        let handle = self.handle(name, file)?;
        self.sync_dir()?;
        Ok(handle)
    }

    fn remove_now(&self, name: &str) -> Result<()> {
        self.writable_now("remove")?;
        let path = self.file_path(name)?;
        self.inner.open.lock().remove(name);
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("remove {name}"), e)),
        }
    }

    fn rename_now(&self, from: &str, to: &str) -> Result<()> {
        self.writable_now("rename")?;
        let (src, dst) = (self.file_path(from)?, self.file_path(to)?);
        // Pending appends must reach the file before its name changes hands.
        let moved = self
            .inner
            .open
            .lock()
            .remove(from)
            .and_then(|w| w.upgrade());
        if let Some(inner) = &moved {
            inner.write_pending()?;
        }
        fs::rename(&src, &dst).map_err(|e| Error::io(format!("rename {from} to {to}"), e))?;
        let mut open = self.inner.open.lock();
        match moved {
            Some(inner) => open.insert(to.to_string(), Arc::downgrade(&inner)),
            None => open.remove(to),
        };
        drop(open);
        self.sync_dir()
    }

    fn sync_now(&self) -> Result<()> {
        if self.inner.read_only {
            return Ok(()); // nothing was changed
        }
        self.sync_dir()
    }

    fn lock_now(&self) -> Result<LockGuard> {
        self.writable_now("lock")?;
        let path = self.inner.path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open LOCK", e))?;
        let dir = lock_key(&self.inner.path);
        match file.try_lock() {
            Ok(()) => {
                HELD_HERE.lock().push(dir.clone());
                Ok(LockGuard::new(OsLock { _file: file, dir }))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = if HELD_HERE.lock().contains(&dir) {
                    "another store in this process (a store stays open while any clone of it, \
                     or any transaction or snapshot taken from it, is alive; or call \
                     `Store::close`)"
                } else {
                    "another process"
                };
                Err(Error::Locked(format!(
                    "{} is open for writing by {holder}",
                    self.inner.path.display()
                )))
            }
            // WASI has no file locks: only stores of this process are kept out (a second
            // process on the same directory is not detected; docs/architecture.md).
            Err(std::fs::TryLockError::Error(e))
                if cfg!(target_os = "wasi") && e.kind() == io::ErrorKind::Unsupported =>
            {
                let mut held = HELD_HERE.lock();
                if held.contains(&dir) {
                    return Err(Error::Locked(format!(
                        "{} is open for writing by another store in this process",
                        self.inner.path.display()
                    )));
                }
                held.push(dir.clone());
                Ok(LockGuard::new(OsLock { _file: file, dir }))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock LOCK", e)),
        }
    }

    fn exists_now(&self, name: &str) -> Result<bool> {
        Ok(self.file_path(name)?.exists())
    }
}

#[cfg_attr(not(target_arch = "wasm32"), kv_api::async_trait)]
#[cfg_attr(target_arch = "wasm32", kv_api::async_trait(?Send))]
impl Storage for FileStorage {
    type File = FileHandle;

    async fn list(&self) -> Result<Vec<String>> {
        let this = self.clone();
        off_executor(move || this.list_now()).await
    }

    async fn open(&self, name: &str) -> Result<FileHandle> {
        if let Some(inner) = self.inner.open.lock().get(name).and_then(Weak::upgrade) {
            return Ok(FileHandle { inner });
        }
        let (this, name) = (self.clone(), name.to_string());
        off_executor(move || this.open_now(&name)).await
    }

    async fn create(&self, name: &str) -> Result<FileHandle> {
        let (this, name) = (self.clone(), name.to_string());
        off_executor(move || this.create_now(&name)).await
    }

    async fn remove(&self, name: &str) -> Result<()> {
        let (this, name) = (self.clone(), name.to_string());
        off_executor(move || this.remove_now(&name)).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (this, from, to) = (self.clone(), from.to_string(), to.to_string());
        off_executor(move || this.rename_now(&from, &to)).await
    }

    async fn sync(&self) -> Result<()> {
        let this = self.clone();
        off_executor(move || this.sync_now()).await
    }

    async fn lock(&self) -> Result<LockGuard> {
        let this = self.clone();
        off_executor(move || this.lock_now()).await
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        let (this, name) = (self.clone(), name.to_string());
        off_executor(move || this.exists_now(&name)).await
    }

    /// A read-only storage of the same directory (itself if it is one already); see
    /// [`FileStorage::open_read_only`].
    fn read_only(&self) -> Self {
        if self.inner.read_only {
            self.clone()
        } else {
            Self::new(self.inner.path.clone(), true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn append_read_sync_truncate_reopen() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let s = FileStorage::open(dir.path()).await?;
        let f = s.create("a").await?;
        assert_eq!(f.append(b"hello ").await?, 0);
        assert_eq!(f.append(b"world").await?, 6);
        // Buffered bytes are visible to every handle at once.
        let g = s.open("a").await?;
        assert_eq!(g.read_at(3, 6).await?, b"lo wor");
        f.sync().await?;
        assert_eq!(f.read_at(0, 11).await?, b"hello world");
        f.append(b"!").await?;
        assert_eq!(f.read_at(9, 3).await?, b"ld!");
        assert!(f.read_at(10, 5).await.is_err());
        f.truncate(5).await?;
        assert_eq!(g.len().await?, 5);
        s.rename("a", "b").await?;
        assert_eq!(s.list().await?, vec!["b".to_string()]);
        drop((f, g));
        let s2 = FileStorage::open(dir.path()).await?;
        assert_eq!(s2.open("b").await?.read_at(0, 5).await?, b"hello");
        s2.remove("b").await?;
        assert!(s2.open("b").await.is_err());
        assert!(s2.create("../x").await.is_err());
        Ok(())
    }

    /// Appends, syncs (which write outside the state lock) and reads race on a multi-thread
    /// runtime: every read of any range below the length it saw returns exactly the bytes
    /// appended there, whether they lie in the file, in a write in flight or still pending.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn reads_see_appends_while_writes_are_in_flight() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let s = FileStorage::open(dir.path()).await?;
        let f = s.create("a").await?;
        // Byte i of the file is (i % 251): any misplaced copy shows.
        let byte = |i: u64| (i % 251) as u8;
        const TOTAL: u64 = 3 << 20;
        // Set when the appender stops, done or failed: readers must not wait for a length
        // that a failed appender never reaches.
        let appended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let appender = {
            let (f, appended) = (f.clone(), appended.clone());
            tokio::spawn(async move {
                let appending = async {
                    let mut at = 0u64;
                    let mut n = 1u64;
                    while at < TOTAL {
                        let chunk: Vec<u8> = (at..at + n).map(byte).collect();
                        assert_eq!(f.append(&chunk).await?, at);
                        at += n;
                        n = n % 4093 + 7;
                        if n.is_multiple_of(5) {
                            f.sync().await?;
                            tokio::task::yield_now().await;
                        }
                    }
                    Ok::<_, Error>(())
                }
                .await;
                appended.store(true, std::sync::atomic::Ordering::Release);
                appending
            })
        };
        let syncer = {
            let (f, appended) = (f.clone(), appended.clone());
            tokio::spawn(async move {
                while f.len().await? < TOTAL && !appended.load(std::sync::atomic::Ordering::Acquire)
                {
                    f.sync().await?;
                    tokio::task::yield_now().await;
                }
                Ok::<_, Error>(())
            })
        };
        let mut readers = Vec::new();
        for r in 0..3u64 {
            let (f, appended) = (f.clone(), appended.clone());
            readers.push(tokio::spawn(async move {
                let mut reads = 0u64;
                let mut seed = r + 1;
                loop {
                    let done = appended.load(std::sync::atomic::Ordering::Acquire);
                    let len = f.len().await?;
                    // Reads of the final file count too, but a loaded machine must not end
                    // the test before every reader has raced the appender at least a little.
                    if done && reads >= 200 {
                        return Ok::<_, Error>(reads);
                    }
                    if len == 0 {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let n = (seed >> 33) % 70_000 % len + 1;
                    let at = len - n - (seed >> 20) % (len - n + 1);
                    let got = f.read_at(at, n as usize).await?;
                    let want: Vec<u8> = (at..at + n).map(byte).collect();
                    assert!(got == want, "read of {n} bytes at {at} (length {len})");
                    reads += 1;
                    // A read served from the page cache completes without yielding: without
                    // this, a reader never yields, and the appender, woken into its worker's
                    // LIFO slot (which no other worker steals from), starves there: the
                    // test hung once (2026-12-08) at 200% CPU.
                    tokio::task::yield_now().await;
                }
            }));
        }
        appender
            .await
            .map_err(|e| Error::io("join", io::Error::other(e)))??;
        syncer
            .await
            .map_err(|e| Error::io("join", io::Error::other(e)))??;
        for r in readers {
            assert!(
                r.await
                    .map_err(|e| Error::io("join", io::Error::other(e)))??
                    > 0
            );
        }
        f.sync().await?;
        let all: Vec<u8> = (0..f.len().await?).map(byte).collect();
        assert_eq!(f.read_at(0, all.len()).await?, all);
        Ok(())
    }

    /// A read past the end is an error before any buffer is allocated: a forged length of
    /// 2^60 bytes must not abort the process trying to allocate it.
    #[tokio::test]
    async fn read_past_end_allocates_nothing() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let s = FileStorage::open(dir.path()).await?;
        let f = s.create("a").await?;
        f.append(b"short").await?;
        assert!(f.read_at(0, 1 << 60).await.is_err());
        assert!(f.read_at(u64::MAX, 2).await.is_err());
        Ok(())
    }

    /// A read-only view's handle, shared by later opens of the name, follows a writer's
    /// appends and cuts: its length is the file's now.
    #[tokio::test]
    async fn read_only_handles_see_the_length_now() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let w = FileStorage::open(dir.path()).await?;
        let f = w.create("log").await?;
        f.append(b"first").await?;
        f.sync().await?;
        let r = w.read_only();
        let held = r.open("log").await?;
        assert_eq!(held.len().await?, 5);
        f.append(b" second").await?;
        f.sync().await?;
        let again = r.open("log").await?;
        assert_eq!(again.len().await?, 12);
        assert_eq!(held.read_at(0, 12).await?, b"first second");
        f.truncate(3).await?;
        assert_eq!(held.len().await?, 3);
        assert!(held.read_at(0, 5).await.is_err());
        Ok(())
    }

    /// A read-only storage opens files without write access (checked on the descriptor
    /// itself, which holds even for root, whom permission bits do not stop) and refuses
    /// every mutation with `Error::ReadOnly`.
    #[tokio::test]
    async fn read_only_opens_files_without_write_access() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let w = FileStorage::open(dir.path()).await?;
        let f = w.create("a").await?;
        f.append(b"hello").await?;
        f.sync().await?;
        for ro in [
            FileStorage::open_read_only(dir.path()).await?,
            w.read_only(),
        ] {
            assert!(ro.is_read_only() && !w.is_read_only());
            let g = ro.open("a").await?;
            assert_eq!(g.read_at(0, 5).await?, b"hello");
            assert!(
                pwrite(&g.inner.file, b"x", 0).is_err(),
                "writable descriptor"
            );
            assert!(matches!(
                g.append(b"x").await,
                Err(Error::ReadOnly("append"))
            ));
            assert!(matches!(
                g.truncate(0).await,
                Err(Error::ReadOnly("truncate"))
            ));
            g.sync().await?;
            ro.sync().await?;
            assert!(matches!(
                ro.create("b").await,
                Err(Error::ReadOnly("create"))
            ));
            assert!(matches!(
                ro.remove("a").await,
                Err(Error::ReadOnly("remove"))
            ));
            assert!(matches!(
                ro.rename("a", "b").await,
                Err(Error::ReadOnly("rename"))
            ));
            assert!(matches!(ro.lock().await, Err(Error::ReadOnly("lock"))));
            assert_eq!(ro.list().await?, vec!["a".to_string()]);
            // The writer's handle is not shared: it stays writable.
            assert!(pwrite(&f.inner.file, b"h", 0).is_ok());
        }
        let missing = dir.path().join("missing");
        assert!(matches!(
            FileStorage::open_read_only(&missing).await,
            Err(Error::Io { .. })
        ));
        assert!(!missing.exists());
        Ok(())
    }

    #[tokio::test]
    async fn second_writer_is_locked() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let a = FileStorage::open(dir.path()).await?;
        let b = FileStorage::open(dir.path()).await?;
        let guard = a.lock().await?;
        let Err(Error::Locked(why)) = b.lock().await else {
            panic!("a second lock in this process was not refused");
        };
        assert!(why.contains("another store in this process"), "{why}");
        drop(guard);
        b.lock().await?;
        Ok(())
    }

    /// A task reading from the page cache in a loop lets the other tasks of its thread run:
    /// the inline reads count against tokio's budget. On one thread, the spawned task runs
    /// only when the reading task yields.
    #[tokio::test(flavor = "current_thread")]
    async fn cached_reads_yield_to_other_tasks() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let s = FileStorage::open(dir.path()).await?;
        let f = s.create("a").await?;
        f.append(&[7u8; 4096]).await?;
        f.sync().await?; // in the file, so reads are the inline, page-cache kind
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        tokio::spawn(async move { flag.store(true, std::sync::atomic::Ordering::Relaxed) });
        let mut reads = 0;
        while !ran.load(std::sync::atomic::Ordering::Relaxed) {
            assert_eq!(f.read_at(100, 8).await?, [7u8; 8]);
            reads += 1;
            assert!(reads < 10_000, "{reads} cached reads never yielded");
        }
        Ok(())
    }
}
