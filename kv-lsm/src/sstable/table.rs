//! Writing and reading one table file.
//!
//! ```text
//! data block* | filter | index block | footer
//! ```
//!
//! The writer buffers encoded blocks and appends them in large chunks; the file is synced by
//! [`TableWriter::finish`]. The reader checks the footer, then keeps the index and the filter
//! in memory for as long as the table is open; data blocks go through the [`BlockCache`].

use std::sync::Arc;

use kv_api::{Error, Result, Storage, StorageFile};

use super::block::{Block, BlockBuilder, Decoded, get_varint, put_varint};
use super::bloom::{self, Bloom};
use super::footer::{FOOTER_LEN, Footer, Handle};
use super::{TableMeta, table_name};
use crate::cache::BlockCache;
use crate::key::{Entry, Seek};

/// Restart interval of data blocks: a binary-searchable point every 16 keys.
const DATA_RESTART_INTERVAL: usize = 16;
/// Bytes buffered before an append to the file.
const WRITE_CHUNK: usize = 1 << 20;

/// Writes one table; entries must come in internal key order.
pub(crate) struct TableWriter<F: StorageFile> {
    file: F,
    id: u64,
    block_size: usize,
    out: Vec<u8>,
    written: u64,
    data: BlockBuilder,
    index: BlockBuilder,
    hashes: Vec<u64>,
    first: Option<(Vec<u8>, u64)>,
    last: Option<(Vec<u8>, u64)>,
    entries: u64,
    min_seq: u64,
    max_seq: u64,
}

impl<F: StorageFile> TableWriter<F> {
    /// Creates table `id` on `storage`.
    pub async fn create<S: Storage<File = F>>(
        storage: &S,
        id: u64,
        block_size: usize,
    ) -> Result<Self> {
        let file = storage.create(&table_name(id)).await?;
        Ok(TableWriter {
            file,
            id,
            block_size: block_size.max(64),
            out: Vec::new(),
            written: 0,
            data: BlockBuilder::new(DATA_RESTART_INTERVAL),
            index: BlockBuilder::new(1),
            hashes: Vec::new(),
            first: None,
            last: None,
            entries: 0,
            min_seq: u64::MAX,
            max_seq: 0,
        })
    }

    /// Adds one entry.
    pub fn add(&mut self, ukey: &[u8], seq: u64, time_ms: u64, value: Option<&[u8]>) {
        if self.data.estimated_size() >= self.block_size {
            self.finish_block();
        }
        let new_key = self.last.as_ref().is_none_or(|(k, _)| k.as_slice() != ukey);
        if new_key {
            self.hashes.push(bloom::hash(ukey));
        }
        self.data.add(ukey, seq, time_ms, value);
        if self.first.is_none() {
            self.first = Some((ukey.to_vec(), seq));
        }
        match &mut self.last {
            Some((k, s)) => {
                if new_key {
                    k.clear();
                    k.extend_from_slice(ukey);
                }
                *s = seq;
            }
            None => self.last = Some((ukey.to_vec(), seq)),
        }
        self.entries += 1;
        self.min_seq = self.min_seq.min(seq);
        self.max_seq = self.max_seq.max(seq);
    }

    /// The user key of the last entry added.
    pub fn last_ukey(&self) -> Option<&[u8]> {
        self.last.as_ref().map(|(k, _)| k.as_slice())
    }

    /// Bytes of the table so far (written, buffered and in the open block).
    pub fn size(&self) -> u64 {
        self.written + self.out.len() as u64 + self.data.estimated_size() as u64
    }

    /// True if enough is buffered to be worth an append.
    pub fn should_drain(&self) -> bool {
        self.out.len() >= WRITE_CHUNK
    }

    /// Appends what is buffered.
    pub async fn drain(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            self.file.append(&self.out).await?;
            self.written += self.out.len() as u64;
            self.out.clear();
        }
        Ok(())
    }

    fn finish_block(&mut self) {
        if self.data.is_empty() {
            return;
        }
        let raw = self.data.finish();
        let offset = self.written + self.out.len() as u64;
        self.out.extend_from_slice(&raw);
        let mut handle = Vec::with_capacity(12);
        put_varint(&mut handle, offset);
        put_varint(&mut handle, raw.len() as u64);
        if let Some((k, s)) = &self.last {
            self.index.add(k, *s, 0, Some(&handle));
        }
    }

    /// Writes the filter, index and footer, syncs the file and describes the table.
    pub async fn finish(mut self) -> Result<TableMeta> {
        self.finish_block();
        let pos = |w: &Self| w.written + w.out.len() as u64;
        let filter_raw = bloom::build(&self.hashes, bloom::BITS_PER_KEY);
        let filter = Handle {
            offset: pos(&self),
            len: filter_raw.len() as u64,
        };
        self.out.extend_from_slice(&filter_raw);
        let index_raw = self.index.finish();
        let index = Handle {
            offset: pos(&self),
            len: index_raw.len() as u64,
        };
        self.out.extend_from_slice(&index_raw);
        let footer = Footer {
            filter,
            index,
            entries: self.entries,
        };
        self.out.extend_from_slice(&footer.encode());
        self.drain().await?;
        self.file.sync().await?;
        let (smallest, largest) = match (self.first, self.last) {
            (Some(f), Some(l)) => (f, l),
            _ => ((Vec::new(), 0), (Vec::new(), 0)),
        };
        Ok(TableMeta {
            id: self.id,
            size: self.written,
            entries: self.entries,
            smallest,
            largest,
            min_seq: self.min_seq.min(self.max_seq),
            max_seq: self.max_seq,
        })
    }
}

/// An open table: its file, decoded index and filter.
pub(crate) struct TableReader<F: StorageFile> {
    file: F,
    name: String,
    id: u64,
    index: Decoded,
    handles: Vec<Handle>,
    bloom: Bloom,
}

impl<F: StorageFile> TableReader<F> {
    /// Opens the table `meta` describes and checks its footer, index and filter.
    pub async fn open<S: Storage<File = F>>(storage: &S, meta: &TableMeta) -> Result<Self> {
        let name = table_name(meta.id);
        let file = storage.open(&name).await?;
        let len = file.len().await?;
        if len != meta.size {
            return Err(Error::corruption(
                &name,
                len,
                format!("table is {len} bytes, the manifest says {}", meta.size),
            ));
        }
        if len < FOOTER_LEN as u64 {
            return Err(Error::corruption(&name, 0, "table shorter than its footer"));
        }
        let raw = file.read_at(len - FOOTER_LEN as u64, FOOTER_LEN).await?;
        let footer = Footer::decode(&raw, &name, len)?;
        let data_end = footer.filter.offset.min(footer.index.offset);
        let read = |h: Handle| {
            let file = file.clone();
            async move {
                let n = usize::try_from(h.len).map_err(|_| {
                    Error::corruption(table_name(meta.id), h.offset, "impossible block length")
                })?;
                file.read_at(h.offset, n).await
            }
        };
        let index = Arc::new(Block::load(
            read(footer.index).await?,
            &name,
            footer.index.offset,
        )?)
        .decode(&name)?;
        let bloom = Bloom::decode(read(footer.filter).await?, &name, footer.filter.offset)?;
        let mut handles = Vec::with_capacity(index.len());
        for i in 0..index.len() {
            let bad = || {
                Error::corruption(
                    &name,
                    footer.index.offset,
                    format!("bad block location in index entry {i}"),
                )
            };
            let v = index.value(i).ok_or_else(bad)?;
            let mut at = 0;
            let offset = get_varint(v, &mut at).ok_or_else(bad)?;
            let len = get_varint(v, &mut at).ok_or_else(bad)?;
            if at != v.len() || offset.checked_add(len).is_none_or(|end| end > data_end) {
                return Err(bad());
            }
            handles.push(Handle { offset, len });
        }
        Ok(TableReader {
            file,
            name,
            id: meta.id,
            index,
            handles,
            bloom,
        })
    }

    /// False if the table holds no version of `ukey` (whose [`bloom::hash`] is `hash`).
    pub fn may_contain(&self, hash: u64) -> bool {
        self.bloom.may_contain(hash)
    }

    /// The file name, for errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of data blocks.
    pub fn blocks(&self) -> usize {
        self.handles.len()
    }

    /// The block holding the first entry at or after `seek` (`blocks()` if none).
    pub fn block_for(&self, seek: Seek<'_>) -> usize {
        self.index.partition(|u, s| seek.is_before(u, s))
    }

    /// Reads block `i` through the cache (`fill`: a reader's read, counted and kept in the
    /// cache; otherwise a compaction's, which neither counts nor evicts anything).
    pub async fn block(&self, i: usize, cache: &BlockCache, fill: bool) -> Result<Arc<Block>> {
        let h = *self
            .handles
            .get(i)
            .ok_or_else(|| Error::corruption(&self.name, 0, format!("block {i} out of range")))?;
        let cached = if fill {
            cache.get(self.id, h.offset)
        } else {
            cache.peek(self.id, h.offset)
        };
        if let Some(b) = cached {
            return Ok(b);
        }
        let len = usize::try_from(h.len)
            .map_err(|_| Error::corruption(&self.name, h.offset, "impossible block length"))?;
        let raw = self.file.read_at(h.offset, len).await?;
        let block = Arc::new(Block::load(raw, &self.name, h.offset)?);
        if fill {
            cache.insert(self.id, h.offset, block.clone());
        }
        Ok(block)
    }
}

/// A table of a level set: its description, and its reader opened on first use.
pub(crate) struct Table<S: Storage> {
    /// What the manifest records about it.
    pub meta: TableMeta,
    storage: S,
    reader: tokio::sync::OnceCell<Arc<TableReader<S::File>>>,
}

impl<S: Storage> Table<S> {
    /// A table, not opened yet.
    pub fn new(meta: TableMeta, storage: S) -> Self {
        Table {
            meta,
            storage,
            reader: tokio::sync::OnceCell::new(),
        }
    }

    /// The file name.
    pub fn name(&self) -> String {
        table_name(self.meta.id)
    }

    /// Opens the table on first use and returns its reader.
    pub async fn reader(&self) -> Result<Arc<TableReader<S::File>>> {
        self.reader
            .get_or_try_init(|| async {
                TableReader::open(&self.storage, &self.meta)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// True if `ukey` lies within the table's key range.
    pub fn covers(&self, ukey: &[u8]) -> bool {
        self.meta.smallest.0.as_slice() <= ukey && ukey <= self.meta.largest.0.as_slice()
    }

    /// The first entry at or after `seek` if it belongs to `ukey`, checking range and filter
    /// first. Point reads (newest version at `at`, exact version) use this.
    pub async fn find(
        &self,
        ukey: &[u8],
        hash: u64,
        seek: Seek<'_>,
        cache: &BlockCache,
    ) -> Result<Option<Entry>> {
        if !self.covers(ukey) {
            return Ok(None);
        }
        let reader = self.reader().await?;
        if !reader.may_contain(hash) {
            return Ok(None);
        }
        let b = reader.block_for(seek);
        if b >= reader.blocks() {
            return Ok(None);
        }
        let block = reader.block(b, cache, true).await?;
        let found = block.find(reader.name(), |u, s| seek.is_before(u, s))?;
        Ok(found.filter(|e| e.ukey == ukey))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::TableCursor;
    use kv_backends::MemoryStorage;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    /// Keys `k0000..`, each with 1-3 versions (some removals), in internal key order.
    fn entries(n: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        for i in 0..n {
            for v in (0..=(i % 3)).rev() {
                out.push(Entry {
                    ukey: format!("\x01k{i:04}").into_bytes(),
                    seq: 10 + v as u64 * 1000 + i as u64,
                    time_ms: 1_700_000_000_000 + v as u64,
                    value: (v != 1).then(|| vec![b'v'; i % 50]),
                });
            }
        }
        out
    }

    async fn write(storage: &MemoryStorage, id: u64, es: &[Entry], block_size: usize) -> TableMeta {
        let mut w = TableWriter::create(storage, id, block_size)
            .await
            .expect("create");
        for e in es {
            w.add(&e.ukey, e.seq, e.time_ms, e.value.as_deref());
        }
        w.finish().await.expect("finish")
    }

    async fn read_all(table: Arc<Table<MemoryStorage>>, reverse: bool) -> Result<Vec<Entry>> {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let mut c = TableCursor::new(table, cache, true);
        c.seek(if reverse { Seek::End } else { Seek::Start })
            .await?;
        let mut out = Vec::new();
        loop {
            let e = if reverse {
                c.prev().await?
            } else {
                c.next().await?
            };
            match e {
                Some(e) => out.push(e),
                None => return Ok(out),
            }
        }
    }

    #[test]
    fn round_trip_seek_and_filter() {
        rt().block_on(async {
            let storage = MemoryStorage::new();
            let es = entries(500);
            let meta = write(&storage, 7, &es, 256).await;
            assert_eq!(meta.entries, es.len() as u64);
            assert_eq!(meta.smallest, (es[0].ukey.clone(), es[0].seq));
            let table = Arc::new(Table::new(meta, storage.clone()));
            assert!(table.reader().await.expect("open").blocks() > 10);
            assert_eq!(read_all(table.clone(), false).await.expect("forward"), es);
            let mut rev = read_all(table.clone(), true).await.expect("reverse");
            rev.reverse();
            assert_eq!(rev, es);

            let cache = BlockCache::new(1 << 20);
            for e in es.iter().step_by(7) {
                let h = bloom::hash(&e.ukey);
                let found = table
                    .find(&e.ukey, h, Seek::At(&e.ukey, e.seq), &cache)
                    .await
                    .expect("find");
                assert_eq!(found.as_ref(), Some(e));
                // A read below the oldest version finds nothing of this key.
                let below = table
                    .find(&e.ukey, h, Seek::At(&e.ukey, 9), &cache)
                    .await
                    .expect("find");
                assert!(below.is_none());
            }
            let absent = b"\x01k9999x";
            assert!(
                table
                    .find(
                        absent,
                        bloom::hash(absent),
                        Seek::At(absent, u64::MAX),
                        &cache
                    )
                    .await
                    .expect("find")
                    .is_none()
            );
            let (hits, misses) = cache.counters();
            assert!(hits > 0 && misses > 0);
        });
    }

    #[test]
    fn every_flipped_byte_is_a_typed_error() {
        rt().block_on(async {
            let storage = MemoryStorage::new();
            let es = entries(40);
            let meta = write(&storage, 1, &es, 200).await;
            let f = storage.open(&table_name(1)).await.expect("open");
            let raw = f.read_at(0, meta.size as usize).await.expect("read");
            for i in 0..raw.len() {
                let mut bad = raw.clone();
                bad[i] ^= 0x08;
                storage
                    .create(&table_name(1))
                    .await
                    .expect("create")
                    .append(&bad)
                    .await
                    .expect("append");
                let table = Arc::new(Table::new(meta.clone(), storage.clone()));
                let result = read_all(table, false).await;
                assert!(
                    matches!(result, Err(Error::Corruption { .. })),
                    "flip at {i}: {result:?}"
                );
            }
            // A truncated table (size differs from the manifest) is corruption too.
            storage
                .create(&table_name(1))
                .await
                .expect("create")
                .append(&raw[..raw.len() - 1])
                .await
                .expect("append");
            let table = Arc::new(Table::new(meta.clone(), storage.clone()));
            assert!(matches!(
                read_all(table, false).await,
                Err(Error::Corruption { .. })
            ));
            // As is a file that is not a table at all.
            let junk = vec![7u8; raw.len()];
            storage
                .create(&table_name(1))
                .await
                .expect("create")
                .append(&junk)
                .await
                .expect("append");
            let table = Arc::new(Table::new(meta, storage.clone()));
            assert!(matches!(
                read_all(table, false).await,
                Err(Error::Corruption { .. })
            ));
        });
    }
}
