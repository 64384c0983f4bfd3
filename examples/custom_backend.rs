//! A backend of your own: a `Storage` wrapper that counts the bytes the engines read and
//! write, and scrambles them on the way to the storage underneath.
//!
//! The scrambling is an XOR with a repeating key. **It is not encryption**: anyone with two
//! files, or a guess of some plaintext, recovers the key. It stands for a real cipher (one
//! that keeps lengths and offsets, as a stream cipher in counter mode does): it shows where the
//! bytes pass and checks that the storage underneath never holds the plaintext.
//!
//! The same store opens on both engines, commits, closes and reopens through the wrapper.
//! Prove a real backend with the conformance suite (`kv-conformance`, one `suite!` line).
//!
//! Run it with `cargo run --example custom_backend --features lsm`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kv_db::backends::MemoryStorage;
use kv_db::storage::{LockGuard, Storage, StorageFile, async_trait};
use kv_db::{BitcaskStore, Engine, LsmStore, Result, SlotDef, Store};

/// What the store reads and writes through the wrapper, in bytes. Shared by its clones.
#[derive(Debug, Default)]
struct Counters {
    read: AtomicU64,
    written: AtomicU64,
}

/// A storage wrapper: counts bytes and XORs them with `key` (NOT encryption: see above).
#[derive(Clone)]
struct Scrambled<S> {
    inner: S,
    key: Arc<[u8]>,
    counters: Arc<Counters>,
}

impl<S: Storage> Scrambled<S> {
    fn new(inner: S, key: &[u8]) -> Self {
        Scrambled {
            inner,
            key: key.into(),
            counters: Arc::default(),
        }
    }
}

/// A file of a [`Scrambled`] storage.
#[derive(Clone)]
struct ScrambledFile<F> {
    inner: F,
    key: Arc<[u8]>,
    counters: Arc<Counters>,
}

/// XORs `bytes`, which start at `offset` of their file, with the key repeated from the start
/// of the file: the same function scrambles and unscrambles, at any offset.
fn xor_at(key: &[u8], offset: u64, bytes: &mut [u8]) {
    // The key's length divides no offset beyond `u64`: reduce first, then walk.
    let start = usize::try_from(offset % key.len() as u64).unwrap_or(0);
    for (b, k) in bytes.iter_mut().zip(key.iter().cycle().skip(start)) {
        *b ^= k;
    }
}

#[async_trait]
impl<F: StorageFile> StorageFile for ScrambledFile<F> {
    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }

    async fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut bytes = self.inner.read_at(offset, len).await?;
        xor_at(&self.key, offset, &mut bytes);
        self.counters
            .read
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    async fn append(&self, bytes: &[u8]) -> Result<u64> {
        // A file has one appender (the `StorageFile` contract), so its length is where these
        // bytes will land: the key position is known before they are written.
        let offset = self.inner.len().await?;
        let mut scrambled = bytes.to_vec();
        xor_at(&self.key, offset, &mut scrambled);
        let at = self.inner.append(&scrambled).await?;
        debug_assert_eq!(at, offset);
        self.counters
            .written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(at)
    }

    async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }

    async fn truncate(&self, len: u64) -> Result<()> {
        self.inner.truncate(len).await
    }
}

#[async_trait]
impl<S: Storage> Storage for Scrambled<S> {
    type File = ScrambledFile<S::File>;

    async fn list(&self) -> Result<Vec<String>> {
        self.inner.list().await
    }

    async fn open(&self, name: &str) -> Result<Self::File> {
        Ok(self.wrap(self.inner.open(name).await?))
    }

    async fn create(&self, name: &str) -> Result<Self::File> {
        Ok(self.wrap(self.inner.create(name).await?))
    }

    async fn remove(&self, name: &str) -> Result<()> {
        self.inner.remove(name).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.inner.rename(from, to).await
    }

    async fn sync(&self) -> Result<()> {
        self.inner.sync().await
    }

    async fn lock(&self) -> Result<LockGuard> {
        self.inner.lock().await
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        self.inner.exists(name).await
    }

    // Forward it: a backend may hand out a different view for read-only opens.
    fn read_only(&self) -> Self {
        Scrambled {
            inner: self.inner.read_only(),
            ..self.clone()
        }
    }
}

impl<S: Storage> Scrambled<S> {
    fn wrap(&self, inner: S::File) -> ScrambledFile<S::File> {
        ScrambledFile {
            inner,
            key: self.key.clone(),
            counters: self.counters.clone(),
        }
    }
}

/// Notes by number: the plaintext we look for underneath.
const NOTES: SlotDef<u32, String> = SlotDef::new(1, "notes");
const SECRET: &str = "the launch code is 0000";

/// Every byte of every file of `storage`, concatenated.
async fn all_bytes(storage: &MemoryStorage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for name in storage.list().await? {
        let file = storage.open(&name).await?;
        let len = usize::try_from(file.len().await?).unwrap_or(usize::MAX);
        out.extend(file.read_at(0, len).await?);
    }
    Ok(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Opens, commits, closes and reopens a store of engine `E` through the wrapper.
async fn run<E>(
    name: &str,
    open: impl AsyncFn(Scrambled<MemoryStorage>) -> Result<Store<E>>,
) -> Result<()>
where
    E: Engine<Storage = Scrambled<MemoryStorage>>,
{
    let plain = MemoryStorage::new();
    let storage = Scrambled::new(plain.clone(), b"not a real key, not a real cipher");
    let counters = storage.counters.clone();

    let store = open(storage.clone()).await?;
    for n in 0..200u32 {
        let mut txn = store.current();
        txn.slot_mut(&NOTES)?
            .insert(&n, &format!("note {n}: {SECRET}"))?;
        txn.commit().await?;
    }
    store.close().await?;
    let written = counters.written.load(Ordering::Relaxed);
    // Every note went through the wrapper (plus the engine's framing, indexes, catalog).
    assert!(written > 200 * SECRET.len() as u64);
    // Nothing reached the storage underneath but through the wrapper's `append`.
    assert!(plain.total_bytes() <= written);

    // The storage underneath never holds the plaintext; unscrambled, it would.
    let raw = all_bytes(&plain).await?;
    assert!(!contains(&raw, SECRET.as_bytes()));
    assert!(
        !contains(&raw, b"notes"),
        "the catalog's slot name is scrambled too"
    );

    // Reopen through the wrapper: the store reads back what it wrote.
    let before = counters.read.load(Ordering::Relaxed);
    let store = open(storage).await?;
    let snap = store.snapshot();
    let notes = snap.slot(&NOTES)?;
    assert_eq!(notes.get(&7).await?, Some(format!("note 7: {SECRET}")));
    assert_eq!(notes.keys().await?.len(), 200);
    let read = counters.read.load(Ordering::Relaxed).saturating_sub(before);
    assert!(read > 0);
    println!(
        "{name}: {written} bytes written, {read} bytes read after reopening, \
         {} bytes underneath, no plaintext there",
        raw.len()
    );
    store.close().await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    run("bitcask", async |s| BitcaskStore::open(s).await).await?;
    // Small LSM knobs: the notes cross memtable flushes and compactions, so that tables are
    // written and read through the wrapper too.
    run("lsm", async |s| {
        LsmStore::open_tuned(s, kv_db::Options::default(), kv_db::Tuning::small()).await
    })
    .await?;
    Ok(())
}
