//! Writing and reading one table file.
//!
//! ```text
//! file header | data block* | filter | index block | footer
//! ```
//!
//! The file header (kind [`KIND_TABLE`], the store's id, the table's id) comes first, so a
//! table renamed or copied over another, or brought from another store, is corruption when it
//! is opened rather than wrong data served. The writer buffers encoded blocks and appends them in large chunks; the file is synced by
//! [`TableWriter::finish`]. The reader checks the header and the footer, then keeps the index and the filter
//! in memory for as long as the table is open; data blocks go through the [`BlockCache`] for
//! reads, or come from 1 MiB chunks read ahead ([`Readahead`]) for sequential passes.

use std::sync::Arc;

use kv_api::{Error, Result, Storage, StorageFile};
use kv_engine_kit::header::{self, StoreId};

use super::block::{Block, BlockBuilder, DecodedBlock};
use super::bloom::{self, Bloom};
use super::footer::{FOOTER_LEN, Footer, Handle};
use super::varint::{get_varint, put_varint};
use super::{TableMeta, table_name};
use crate::cache::BlockCache;
use crate::key::{EntryRef, InternalKey, Seek, cmp_ikey, prefix};
#[cfg(doc)]
use crate::names::KIND_TABLE;
use crate::names::table_header;
use crate::options::Compression;

/// Restart interval of data blocks: a binary-searchable point every 8 entries, so a point
/// read walks at most 8 entries after its binary search (about half a percent of table size
/// more than every 16).
const DATA_RESTART_INTERVAL: usize = 8;
/// Bytes buffered before an append to the file.
const WRITE_CHUNK: usize = 1 << 20;
/// The largest block size a writer uses (a larger `block_size` is taken as this): entries of a
/// data block start below it, and their offsets in the block's restart array are u32.
const MAX_BLOCK_SIZE: usize = 1 << 30;

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
    /// Creates table `id` of `store` on `storage`, its data blocks compressed with
    /// `compression` where it pays; its header is the first thing buffered, so the first block
    /// starts after it.
    pub async fn create<S: Storage<File = F>>(
        storage: &S,
        store: StoreId,
        id: u64,
        block_size: usize,
        compression: Compression,
    ) -> Result<Self> {
        let block_size = block_size.clamp(64, MAX_BLOCK_SIZE);
        let file = storage.create(&table_name(id)).await?;
        // Room for a chunk and the block that crosses it (chunks are at most 1 MiB: larger
        // blocks grow the buffer when they come).
        #[expect(clippy::arithmetic_side_effects, reason = "at most 3 MiB")]
        let capacity = WRITE_CHUNK + 2 * block_size.min(WRITE_CHUNK);
        let mut out = Vec::with_capacity(capacity);
        table_header(store, id).encode(&mut out);
        Ok(TableWriter {
            file,
            id,
            block_size,
            out,
            written: 0,
            data: BlockBuilder::compressed(DATA_RESTART_INTERVAL, compression),
            index: BlockBuilder::new(1),
            hashes: Vec::new(),
            first: None,
            last: None,
            entries: 0,
            min_seq: u64::MAX,
            max_seq: 0,
        })
    }

    /// Adds one entry. An index block past 4 GiB (its restart offsets are u32) is
    /// [`Error::TooLarge`].
    #[cfg(test)]
    pub fn add(&mut self, ukey: &[u8], seq: u64, time_ms: u64, value: Option<&[u8]>) -> Result<()> {
        self.add_entry(ukey, seq, time_ms, value, false)
    }

    /// Adds one entry whose value is a blob reference's bytes if `blob`.
    pub fn add_entry(
        &mut self,
        ukey: &[u8],
        seq: u64,
        time_ms: u64,
        value: Option<&[u8]>,
        blob: bool,
    ) -> Result<()> {
        if self.data.estimated_size() >= self.block_size {
            self.finish_block()?;
        }
        let new_key = self.last.as_ref().is_none_or(|(k, _)| k.as_slice() != ukey);
        if new_key {
            self.hashes.push(bloom::hash(ukey));
        }
        // Every entry of a data block starts below `block_size` (at most MAX_BLOCK_SIZE, 1 GiB):
        // this add cannot fail, and leaves the builder as it was if it did.
        self.data.add_entry(ukey, seq, time_ms, value, blob)?;
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
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "one per entry written, each at least 5 bytes of a file: below u64::MAX"
        )]
        {
            self.entries += 1;
        }
        self.min_seq = self.min_seq.min(seq);
        self.max_seq = self.max_seq.max(seq);
        Ok(())
    }

    /// The user key of the last entry added.
    pub fn last_ukey(&self) -> Option<&[u8]> {
        self.last.as_ref().map(|(k, _)| k.as_slice())
    }

    /// Bytes of the table so far (written, buffered and in the open block).
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "bytes of one file and two Vecs: far below u64::MAX"
    )]
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
            #[expect(
                clippy::arithmetic_side_effects,
                reason = "bytes appended to one file: a file's length is a u64"
            )]
            {
                self.written += self.out.len() as u64;
            }
            self.out.clear();
        }
        Ok(())
    }

    fn finish_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let offset = self.pos();
        let start = self.out.len();
        self.data.finish_into(&mut self.out);
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`out` only grew since `start` was its length"
        )]
        let len = self.out.len() - start;
        let mut handle = Vec::with_capacity(20);
        put_varint(&mut handle, offset);
        put_varint(&mut handle, len as u64);
        if let Some((k, s)) = &self.last {
            self.index.add(k, *s, 0, Some(&handle))?;
        }
        Ok(())
    }

    /// File offset of the next byte buffered.
    #[expect(
        clippy::arithmetic_side_effects,
        reason = "bytes of one file and a Vec: far below u64::MAX"
    )]
    fn pos(&self) -> u64 {
        self.written + self.out.len() as u64
    }

    /// Writes the filter, index and footer, syncs the file and describes the table.
    pub async fn finish(mut self) -> Result<TableMeta> {
        self.finish_block()?;
        let filter_raw = bloom::build(&self.hashes, bloom::BITS_PER_KEY);
        let filter = Handle {
            offset: self.pos(),
            len: filter_raw.len() as u64,
        };
        self.out.extend_from_slice(&filter_raw);
        let index_raw = self.index.finish();
        let index = Handle {
            offset: self.pos(),
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
    index: DecodedBlock,
    /// The [`prefix`] of each index key: searched first, in 8 bytes per block instead of a
    /// key and its entry, so a lookup's binary search touches few cache lines.
    prefixes: Vec<u64>,
    handles: Vec<Handle>,
    bloom: Bloom,
    /// The table's first and last internal keys as the manifest records them: the first and
    /// last data blocks are checked against them when read (see [`TableReader::check_bounds`]).
    smallest: InternalKey,
    largest: InternalKey,
}

impl<F: StorageFile> TableReader<F> {
    /// Opens the table `meta` of `store` describes and checks its header, footer, index and
    /// filter.
    pub async fn open<S: Storage<File = F>>(
        storage: &S,
        store: StoreId,
        meta: &TableMeta,
    ) -> Result<Self> {
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
        let data_start = header::LEN as u64;
        let Some(footer_at) = len
            .checked_sub(FOOTER_LEN as u64)
            .filter(|at| *at >= data_start)
        else {
            return Err(Error::corruption(
                &name,
                0,
                "table shorter than its header and footer",
            ));
        };
        table_header(store, meta.id).check(&file.read_at(0, header::LEN).await?, &name)?;
        let raw = file.read_at(footer_at, FOOTER_LEN).await?;
        let footer = Footer::decode(&raw, &name, len)?;
        for (h, what) in [(footer.filter, "filter"), (footer.index, "index")] {
            if h.offset < data_start {
                return Err(Error::corruption(
                    &name,
                    footer_at,
                    format!("{what} location inside the file header"),
                ));
            }
        }
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
        if let Some(i) = (0..index.len()).find(|i| index.is_blob(*i)) {
            return Err(Error::corruption(
                &name,
                footer.index.offset,
                format!("index entry {i} is a blob reference"),
            ));
        }
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
            if at != v.len()
                || offset < data_start
                || offset.checked_add(len).is_none_or(|end| end > data_end)
            {
                return Err(bad());
            }
            handles.push(Handle { offset, len });
        }
        // The index (each block's last key) must be strictly increasing and end at the
        // manifest's largest key: a level's tables are found by the manifest's key ranges, so a
        // table holding keys outside its range would put entries out of order in scans.
        for i in 0..index.len() {
            let key = (index.ukey(i), index.seq(i).unwrap_or(0));
            let next = i.checked_add(1).filter(|n| *n < index.len());
            let ok = match next {
                Some(n) => {
                    let next_seq = index.seq(n).unwrap_or(0);
                    cmp_ikey(key.0, key.1, index.ukey(n), next_seq) == std::cmp::Ordering::Less
                }
                None => key.0 == meta.largest.0.as_slice() && key.1 == meta.largest.1,
            };
            if !ok {
                return Err(Error::corruption(
                    &name,
                    footer.index.offset,
                    format!(
                        "index entry {i} is out of order or past the table's range in the manifest"
                    ),
                ));
            }
        }
        let prefixes = (0..index.len()).map(|i| prefix(index.ukey(i))).collect();
        Ok(TableReader {
            file,
            name,
            id: meta.id,
            index,
            prefixes,
            handles,
            bloom,
            smallest: meta.smallest.clone(),
            largest: meta.largest.clone(),
        })
    }

    /// Checks a data block just read: the first block must begin at the table's smallest key
    /// and the last end at its largest, as the manifest records them. With the order of the
    /// entries between (checked as they are read), every entry lies inside the table's range.
    fn check_bounds(&self, i: usize, block: &Block) -> Result<()> {
        let last = self.handles.len().saturating_sub(1);
        if i != 0 && i != last {
            return Ok(());
        }
        let bad = |what: &str| {
            Err(Error::corruption(
                &self.name,
                block.offset(),
                format!("{what} of the table is not the one its manifest entry records"),
            ))
        };
        let Some([first, end]) = block.bounds(&self.name)? else {
            return bad("an empty data block: the first or last entry");
        };
        if i == 0 && first != self.smallest {
            return bad("the first entry");
        }
        if i == last && end != self.largest {
            return bad("the last entry");
        }
        Ok(())
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
        let target = match seek {
            Seek::Start => return 0,
            Seek::End => return self.index.len(),
            Seek::Ge(k) | Seek::Gt(k) | Seek::At(k, _) => prefix(k),
        };
        // A smaller prefix means a smaller key (before the position), a larger one a larger
        // key (not before it): only keys with the target's prefix need the whole comparison.
        let lo = self.prefixes.partition_point(|p| *p < target);
        let same = self
            .prefixes
            .get(lo..)
            .map_or(0, |rest| rest.partition_point(|p| *p == target));
        #[expect(
            clippy::arithmetic_side_effects,
            reason = "`same` counts entries of `prefixes[lo..]`: `lo + same <= prefixes.len()`"
        )]
        let hi = lo + same;
        self.index.partition_in(lo, hi, |u, s| seek.is_before(u, s))
    }

    /// Reads block `i` through the cache (a reader's read: counted, and kept in the cache).
    pub async fn block(&self, i: usize, cache: &BlockCache) -> Result<Arc<Block>> {
        let h = self.handle(i)?;
        if let Some(b) = cache.get(self.id, h.offset) {
            return Ok(b);
        }
        self.load_block(i, h, cache).await
    }

    /// Blocks `blocks` (ascending, distinct) through the cache, in their order: the cached
    /// ones looked up together ([`BlockCache::get_many`]), the others read and cached.
    pub async fn blocks_many(
        &self,
        blocks: &[usize],
        cache: &BlockCache,
    ) -> Result<Vec<Arc<Block>>> {
        let handles = blocks
            .iter()
            .map(|&i| self.handle(i))
            .collect::<Result<Vec<_>>>()?;
        let offsets: Vec<u64> = handles.iter().map(|h| h.offset).collect();
        let cached = cache.get_many(self.id, &offsets);
        let mut out = Vec::with_capacity(blocks.len());
        for ((&i, h), b) in blocks.iter().zip(handles).zip(cached) {
            out.push(match b {
                Some(b) => b,
                None => self.load_block(i, h, cache).await?,
            });
        }
        Ok(out)
    }

    /// Reads block `i` (at `h`) from the file, checks it and caches it.
    async fn load_block(&self, i: usize, h: Handle, cache: &BlockCache) -> Result<Arc<Block>> {
        let len = usize::try_from(h.len)
            .map_err(|_| Error::corruption(&self.name, h.offset, "impossible block length"))?;
        let raw = self.file.read_at(h.offset, len).await?;
        let block = Arc::new(Block::load(raw, &self.name, h.offset)?);
        self.check_bounds(i, &block)?;
        cache.insert(self.id, h.offset, block.clone());
        Ok(block)
    }

    fn handle(&self, i: usize) -> Result<Handle> {
        self.handles
            .get(i)
            .copied()
            .ok_or_else(|| Error::corruption(&self.name, 0, format!("block {i} out of range")))
    }

    /// Reads block `i` for a sequential pass (compactions, stats): a cached copy if there is
    /// one (not counted, not promoted: such a pass says nothing about what readers need, and
    /// fills nothing), else from `ra`'s chunk, which is refilled with one large read of the
    /// blocks from `i` on when `i` is not in it.
    pub async fn block_sequential(
        &self,
        i: usize,
        cache: &BlockCache,
        ra: &mut Readahead,
    ) -> Result<Arc<Block>> {
        let h = self.handle(i)?;
        if let Some(b) = cache.peek(self.id, h.offset) {
            return Ok(b);
        }
        let bad = || Error::corruption(&self.name, h.offset, "impossible block length");
        let end = h.offset.checked_add(h.len).ok_or_else(bad)?;
        let in_chunk = h.offset >= ra.start && end <= ra.start.saturating_add(ra.buf.len() as u64);
        if !in_chunk {
            // Blocks are contiguous: read from block `i` up to READAHEAD bytes, but always
            // whole blocks and at least block `i`.
            let mut chunk_end = end;
            // `handle(i)` found block `i`: skipping it and those before leaves the next ones.
            for next in self.handles.iter().skip(i).skip(1) {
                // `open` checked that every block ends inside the file, after `h.offset`.
                let Some(e) = next.offset.checked_add(next.len) else {
                    break;
                };
                if next.offset != chunk_end
                    || e.checked_sub(h.offset).is_none_or(|n| n > READAHEAD as u64)
                {
                    break;
                }
                chunk_end = e;
            }
            let len = chunk_end
                .checked_sub(h.offset)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(bad)?;
            ra.buf = self.file.read_at(h.offset, len).await?;
            ra.start = h.offset;
        }
        let from = h
            .offset
            .checked_sub(ra.start)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(bad)?;
        let len = usize::try_from(h.len).map_err(|_| bad())?;
        let to = from.checked_add(len).ok_or_else(bad)?;
        let raw = ra.buf.get(from..to).ok_or_else(bad)?.to_vec();
        let block = Block::load(raw, &self.name, h.offset)?;
        self.check_bounds(i, &block)?;
        Ok(Arc::new(block))
    }
}

impl<F: StorageFile> TableReader<F> {
    /// Reads every data block of the table from storage (never from a cache: `verify` checks
    /// what is stored) and checks each block's CRC and entries, the order across blocks, that
    /// block `i` ends at index entry `i`, that the filter holds every key, that every sequence
    /// number lies in the manifest's range, and the manifest's entry count. Returns the
    /// number of entries; the first damage is [`Error::Corruption`] at its block.
    /// Every blob reference met goes to `blob(ukey, seq, reference)`.
    pub async fn verify(
        &self,
        meta: &TableMeta,
        mut blob: impl FnMut(&[u8], u64, &[u8]),
    ) -> Result<u64> {
        let no_cache = BlockCache::new(0);
        let mut ra = Readahead::default();
        let mut entries: u64 = 0;
        let mut prev: Option<InternalKey> = None;
        for i in 0..self.blocks() {
            let block = self.block_sequential(i, &no_cache, &mut ra).await?;
            let bad = |why: String| Err(Error::corruption(&self.name, block.offset(), why));
            let decoded = block.decode(&self.name)?;
            let n = decoded.len();
            let Some(last) = n.checked_sub(1) else {
                return bad(format!("data block {i} is empty"));
            };
            let first = (decoded.ukey(0), decoded.seq(0).unwrap_or(0));
            if let Some((pk, ps)) = &prev
                && cmp_ikey(pk, *ps, first.0, first.1) != std::cmp::Ordering::Less
            {
                return bad(format!("data block {i} does not start after block {i} - 1"));
            }
            let end = (decoded.ukey(last), decoded.seq(last).unwrap_or(0));
            if end != (self.index.ukey(i), self.index.seq(i).unwrap_or(0)) {
                return bad(format!("data block {i} does not end at its index entry"));
            }
            for e in 0..n {
                let seq = decoded.seq(e).unwrap_or(0);
                if seq < meta.min_seq || seq > meta.max_seq {
                    return bad(format!(
                        "sequence number {seq} outside the manifest's {} ..= {}",
                        meta.min_seq, meta.max_seq
                    ));
                }
                if !self.bloom.may_contain(bloom::hash(decoded.ukey(e))) {
                    return bad("the filter misses a key of the table".into());
                }
                if decoded.is_blob(e) {
                    blob(decoded.ukey(e), seq, decoded.value(e).unwrap_or_default());
                }
            }
            entries = entries.saturating_add(n as u64);
            prev = Some((end.0.to_vec(), end.1));
        }
        if entries != meta.entries {
            return Err(Error::corruption(
                &self.name,
                0,
                format!("{entries} entries, the manifest says {}", meta.entries),
            ));
        }
        Ok(entries)
    }
}

/// Bytes a sequential pass reads at once.
const READAHEAD: usize = 1 << 20;

/// The chunk of a table that a sequential pass read last.
#[derive(Debug, Default)]
pub(crate) struct Readahead {
    start: u64,
    buf: Vec<u8>,
}

/// A table of a level set: its description, and its reader opened on first use.
pub(crate) struct Table<S: Storage> {
    /// What the manifest records about it.
    pub meta: TableMeta,
    storage: S,
    /// The store it belongs to (checked against its header).
    store: StoreId,
    reader: tokio::sync::OnceCell<Arc<TableReader<S::File>>>,
}

impl<S: Storage> Table<S> {
    /// A table of `store`, not opened yet.
    pub fn new(meta: TableMeta, storage: S, store: StoreId) -> Self {
        Table {
            meta,
            storage,
            store,
            reader: tokio::sync::OnceCell::new(),
        }
    }

    /// The file name.
    pub fn name(&self) -> String {
        table_name(self.meta.id)
    }

    /// Opens the table on first use and returns its reader.
    pub async fn reader(&self) -> Result<Arc<TableReader<S::File>>> {
        // The common case, without building the initializing future.
        if let Some(r) = self.reader.get() {
            return Ok(r.clone());
        }
        self.reader
            .get_or_try_init(|| async {
                TableReader::open(&self.storage, self.store, &self.meta)
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

    /// [`Table::find`] of the newest version at `at` of each key `ukeys[i]` for `i` in
    /// `pending` (ascending; `ukeys` sorted, `hashes` theirs), calling `f(i, entry)` for each
    /// key whose entry this table holds: the reader taken once, each key checked against the
    /// range and filter and located in the index, the blocks needed looked up in the cache
    /// together and each loaded once for all its keys.
    pub async fn find_many(
        &self,
        (ukeys, hashes): (&[&[u8]], &[u64]),
        pending: &[usize],
        at: u64,
        cache: &BlockCache,
        mut f: impl FnMut(usize, EntryRef<'_>),
    ) -> Result<()> {
        let reader = self.reader().await?;
        // (block, key): blocks ascend with the keys.
        let mut wanted: Vec<(usize, usize)> = Vec::with_capacity(pending.len());
        for &i in pending {
            let (Some(k), Some(hash)) = (ukeys.get(i), hashes.get(i)) else {
                continue;
            };
            if !self.covers(k) || !reader.may_contain(*hash) {
                continue;
            }
            let b = reader.block_for(Seek::At(k, at));
            if b < reader.blocks() {
                wanted.push((b, i));
            }
        }
        let mut blocks: Vec<usize> = wanted.iter().map(|(b, _)| *b).collect();
        blocks.dedup();
        let loaded = reader.blocks_many(&blocks, cache).await?;
        let mut loaded = blocks.iter().zip(loaded).peekable();
        for (b, i) in wanted {
            while loaded.next_if(|(lb, _)| **lb < b).is_some() {}
            let (Some((_, block)), Some(k)) = (loaded.peek(), ukeys.get(i)) else {
                continue;
            };
            let seek = Seek::At(k, at);
            block.find_with(
                reader.name(),
                |u, s| seek.is_before(u, s),
                |e| {
                    if e.ukey == *k {
                        f(i, e);
                    }
                },
            )?;
        }
        Ok(())
    }

    /// The first entry at or after `seek`, passed to `f`, if it belongs to `ukey` (checking
    /// range and filter first). Point reads (newest version at `at`, exact version) use this;
    /// batches use [`Table::find_many`].
    pub async fn find<T>(
        &self,
        ukey: &[u8],
        hash: u64,
        seek: Seek<'_>,
        cache: &BlockCache,
        f: impl FnOnce(EntryRef<'_>) -> T,
    ) -> Result<Option<T>> {
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
        let block = reader.block(b, cache).await?;
        let found = block.find_with(
            reader.name(),
            |u, s| seek.is_before(u, s),
            |e| (e.ukey == ukey).then(|| f(e)),
        )?;
        Ok(found.flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iter::TableCursor;
    use crate::key::OwnedEntry;
    use crate::testing::{STORE, rt, write_table, write_table_with};
    use kv_backends::MemoryStorage;

    /// Keys `k0000..`, each with 1-3 versions (some removals), in internal key order.
    fn entries(n: usize) -> Vec<OwnedEntry> {
        let mut out = Vec::new();
        for i in 0..n {
            for v in (0..=(i % 3)).rev() {
                out.push(OwnedEntry {
                    ukey: format!("\x01k{i:04}").into_bytes(),
                    seq: 10 + v as u64 * 1000 + i as u64,
                    time_ms: 1_700_000_000_000 + v as u64,
                    value: (v != 1).then(|| vec![b'v'; i % 50]),
                    blob: false,
                });
            }
        }
        out
    }

    /// Up to `max` entries from `seek` in a direction.
    async fn read_from(
        table: Arc<Table<MemoryStorage>>,
        seek: Seek<'_>,
        reverse: bool,
        sequential: bool,
        max: usize,
    ) -> Result<Vec<OwnedEntry>> {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let mut c = TableCursor::new(table, cache, sequential);
        c.seek(seek, reverse).await?;
        let mut out = Vec::new();
        while let Some(e) = c.current() {
            if out.len() == max {
                break;
            }
            out.push(e.to_owned_entry());
            c.step(reverse).await?;
        }
        Ok(out)
    }

    /// A point read of `ukey` at `seq`, as `Inner::newest` reads a table.
    async fn find_at(
        table: &Table<MemoryStorage>,
        ukey: &[u8],
        seq: u64,
        cache: &BlockCache,
    ) -> Option<OwnedEntry> {
        let seek = Seek::At(ukey, seq);
        let hash = bloom::hash(ukey);
        let found = table.find(ukey, hash, seek, cache, |e| e.to_owned_entry());
        found.await.expect("find")
    }

    /// `find_many` answers what `find` answers for each key of a sorted batch (present with
    /// several versions, removed, absent, between and outside the table's keys, many to a
    /// block and one to a block), at several read versions, with a cold and a warm cache.
    #[test]
    fn find_many_equals_finds() {
        rt().block_on(async {
            let storage = MemoryStorage::new();
            let es = entries(300);
            let meta = write_table(&storage, 9, &es, 256).await;
            let table = Table::new(meta, storage.clone(), STORE);
            let mut keys: Vec<Vec<u8>> = (0..320)
                .map(|i| format!("\x01k{i:04}").into_bytes())
                .collect();
            keys.extend([b"\x01".to_vec(), b"\x01k0005x".to_vec(), b"\x02".to_vec()]);
            keys.sort();
            let ukeys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let hashes: Vec<u64> = ukeys.iter().map(|k| bloom::hash(k)).collect();
            for (at, step) in [(u64::MAX, 1), (1500, 3), (12, 1), (9, 7)] {
                let cache = BlockCache::new(1 << 20);
                for _warm in 0..2 {
                    let pending: Vec<usize> = (0..ukeys.len()).step_by(step).collect();
                    let mut got = vec![None; ukeys.len()];
                    table
                        .find_many((&ukeys, &hashes), &pending, at, &cache, |i, e| {
                            got[i] = Some(e.to_owned_entry());
                        })
                        .await
                        .expect("find_many");
                    for (i, k) in ukeys.iter().enumerate() {
                        let want = if pending.contains(&i) {
                            let seek = Seek::At(k, at);
                            let found =
                                table.find(k, hashes[i], seek, &cache, |e| e.to_owned_entry());
                            found.await.expect("find")
                        } else {
                            None
                        };
                        assert_eq!(got[i], want, "key {k:?} at {at}");
                    }
                    if at == u64::MAX {
                        // Every key of the table is found (a removal too: it is an entry).
                        assert_eq!(got.iter().flatten().count(), 300);
                    }
                }
            }
        });
    }

    async fn read_all(table: Arc<Table<MemoryStorage>>, reverse: bool) -> Result<Vec<OwnedEntry>> {
        let seek = if reverse { Seek::End } else { Seek::Start };
        read_from(table, seek, reverse, false, usize::MAX).await
    }

    /// Found by fuzzing (`dir_image`): a table holding keys outside the range its manifest
    /// entry records put entries out of order in scans (a level's tables are found by their
    /// ranges). Its first and last entries must be the ones the manifest records: a reader
    /// whose manifest entry says otherwise gets corruption, on every read path.
    #[test]
    fn entries_outside_the_recorded_range_are_corruption() {
        rt().block_on(async {
            let storage = MemoryStorage::new();
            let es = entries(300);
            let meta = write_table(&storage, 7, &es, 256).await;
            let narrower_start = TableMeta {
                smallest: (es[1].ukey.clone(), es[1].seq),
                ..meta.clone()
            };
            let table = Arc::new(Table::new(narrower_start, storage.clone(), STORE));
            for sequential in [false, true] {
                let err = read_from(table.clone(), Seek::Start, false, sequential, 10)
                    .await
                    .err();
                assert!(
                    matches!(&err, Some(Error::Corruption { reason, .. }) if reason.contains("first entry")),
                    "{err:?}"
                );
            }
            let wider_end = TableMeta {
                largest: (b"\x01z".to_vec(), 1),
                ..meta.clone()
            };
            let table = Arc::new(Table::new(wider_end, storage.clone(), STORE));
            assert!(matches!(
                table.reader().await.err(),
                Some(Error::Corruption { .. })
            ));
            let table = Arc::new(Table::new(meta, storage.clone(), STORE));
            assert_eq!(read_all(table, false).await.expect("as written"), es);
        });
    }

    #[test]
    fn round_trip_seek_and_filter() {
        rt().block_on(async {
            let storage = MemoryStorage::new();
            let es = entries(500);
            let meta = write_table(&storage, 7, &es, 256).await;
            assert_eq!(meta.entries, es.len() as u64);
            assert_eq!(meta.smallest, (es[0].ukey.clone(), es[0].seq));
            let table = Arc::new(Table::new(meta, storage.clone(), STORE));
            assert!(table.reader().await.expect("open").blocks() > 10);
            assert_eq!(read_all(table.clone(), false).await.expect("forward"), es);
            let mut rev = read_all(table.clone(), true).await.expect("reverse");
            rev.reverse();
            assert_eq!(rev, es);
            let all = read_from(table.clone(), Seek::Start, false, true, usize::MAX).await;
            assert_eq!(all.expect("sequential"), es);

            let cache = BlockCache::new(1 << 20);
            for e in es.iter().step_by(7) {
                let found = find_at(&table, &e.ukey, e.seq, &cache).await;
                assert_eq!(found.as_ref(), Some(e));
                // A read below the oldest version finds nothing of this key.
                assert!(find_at(&table, &e.ukey, 9, &cache).await.is_none());
            }
            let absent = b"\x01k9999x";
            assert!(find_at(&table, absent, u64::MAX, &cache).await.is_none());
            let (hits, misses) = cache.counters();
            assert!(hits > 0 && misses > 0);
        });
    }

    /// A block size past what the format addresses (restart offsets are u32) is taken as
    /// `MAX_BLOCK_SIZE`: it used to overflow the writer's buffer size (a panic), and would have
    /// cut restart offsets past 4 GiB into a table that no longer reads.
    #[test]
    fn a_huge_block_size_is_clamped() {
        rt().block_on(async {
            let storage = MemoryStorage::new();
            let es = entries(50);
            for (id, block_size) in [(8, usize::MAX), (9, usize::MAX / 2 + 1), (10, 1 << 33)] {
                let meta = write_table(&storage, id, &es, block_size).await;
                let table = Arc::new(Table::new(meta, storage.clone(), STORE));
                assert_eq!(table.reader().await.expect("open").blocks(), 1);
                assert_eq!(read_all(table, false).await.expect("read"), es);
            }
        });
    }

    /// A cursor positioned anywhere, in either direction and either read mode, yields what a
    /// search of the sorted entries says.
    #[test]
    fn seeks_agree_with_the_entries() {
        rt().block_on(async {
            let storage = MemoryStorage::new();
            let es = entries(300);
            let meta = write_table(&storage, 3, &es, 300).await;
            let table = Arc::new(Table::new(meta, storage.clone(), STORE));
            let mut targets: Vec<(Vec<u8>, u64)> = es
                .iter()
                .step_by(5)
                .map(|e| (e.ukey.clone(), e.seq))
                .collect();
            targets.push((b"\x01".to_vec(), 0));
            targets.push((b"\x01k0100x".to_vec(), 7));
            targets.push((b"\x02".to_vec(), 0));
            for (k, seq) in &targets {
                for seek in [
                    Seek::Start,
                    Seek::End,
                    Seek::Ge(k),
                    Seek::Gt(k),
                    Seek::At(k, *seq),
                    Seek::At(k, seq + 1),
                    Seek::At(k, seq.saturating_sub(1)),
                ] {
                    let after: Vec<OwnedEntry> = es
                        .iter()
                        .filter(|e| !seek.is_before(&e.ukey, e.seq))
                        .take(40)
                        .cloned()
                        .collect();
                    let before: Vec<OwnedEntry> = es
                        .iter()
                        .rev()
                        .filter(|e| seek.is_before(&e.ukey, e.seq))
                        .take(40)
                        .cloned()
                        .collect();
                    for sequential in [false, true] {
                        let got = read_from(table.clone(), seek, false, sequential, 40).await;
                        assert_eq!(got.expect("forward"), after, "{seek:?}");
                        let got = read_from(table.clone(), seek, true, sequential, 40).await;
                        assert_eq!(got.expect("reverse"), before, "{seek:?} reverse");
                    }
                }
            }
        });
    }

    /// A table written with each codec reads back the same, in scans and point reads; JSON-like
    /// values take less room compressed.
    #[test]
    fn tables_of_each_codec_read_back() {
        rt().block_on(async {
            let storage = MemoryStorage::new();
            let es: Vec<OwnedEntry> = (0..400u64)
                .map(|i| OwnedEntry {
                    ukey: format!("\x01user:{i:05}").into_bytes(),
                    seq: 10 + i,
                    time_ms: 1_700_000_000_000 + i,
                    value: Some(
                        format!("{{\"id\":{i},\"name\":\"user {i}\",\"city\":\"Paris\"}}")
                            .into_bytes(),
                    ),
                    blob: false,
                })
                .collect();
            let mut sizes = Vec::new();
            let codecs = [Compression::None, Compression::Lz4, Compression::Zstd];
            for (id, c) in (1..).zip(codecs) {
                let meta = write_table_with(&storage, id, &es, 4096, c).await;
                sizes.push(meta.size);
                let table = Arc::new(Table::new(meta, storage.clone(), STORE));
                assert_eq!(read_all(table.clone(), false).await.expect("scan"), es);
                let cache = BlockCache::new(1 << 20);
                for e in es.iter().step_by(13) {
                    let found = find_at(&table, &e.ukey, e.seq, &cache).await;
                    assert_eq!(found.as_ref(), Some(e), "{c:?}");
                }
            }
            assert!(
                sizes[1] < sizes[0] / 2 && sizes[2] < sizes[0] / 2,
                "{sizes:?}"
            );
        });
    }

    #[test]
    fn every_flipped_byte_is_a_typed_error() {
        rt().block_on(async {
            for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
                every_flipped_byte_is_a_typed_error_with(c).await;
            }
        });
    }

    async fn every_flipped_byte_is_a_typed_error_with(c: Compression) {
        {
            let storage = MemoryStorage::new();
            let es = entries(40);
            let meta = write_table_with(&storage, 1, &es, 200, c).await;
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
                let table = Arc::new(Table::new(meta.clone(), storage.clone(), STORE));
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
            let table = Arc::new(Table::new(meta.clone(), storage.clone(), STORE));
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
            let table = Arc::new(Table::new(meta, storage.clone(), STORE));
            assert!(matches!(
                read_all(table, false).await,
                Err(Error::Corruption { .. })
            ));
        }
    }

    /// A table under another table's name, of another store, or another kind of file under a
    /// table's name: corruption naming the file at its first read, even when the size fits.
    #[test]
    fn a_header_of_another_table_or_store_is_corruption() {
        rt().block_on(async {
            let storage = MemoryStorage::new();
            let es = entries(40);
            let meta = write_table(&storage, 1, &es, 200).await;
            let raw = storage
                .open(&table_name(1))
                .await
                .expect("open")
                .read_at(0, meta.size as usize)
                .await
                .expect("read");
            let mut as_table_2 = meta.clone();
            as_table_2.id = 2;
            let f = storage.create(&table_name(2)).await.expect("create");
            f.append(&raw).await.expect("append");
            let table = Arc::new(Table::new(as_table_2, storage.clone(), STORE));
            match read_all(table, false).await {
                Err(Error::Corruption { file, reason, .. }) => {
                    assert_eq!(file, table_name(2));
                    assert!(reason.contains("file id"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
            let other = StoreId::from_bytes([0xee; 16]);
            let table = Arc::new(Table::new(meta.clone(), storage.clone(), other));
            match read_all(table, false).await {
                Err(Error::Corruption { file, reason, .. }) => {
                    assert_eq!(file, table_name(1));
                    assert!(reason.contains("another store"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
            let mut wal = raw.clone();
            wal[..header::LEN].copy_from_slice(&crate::names::wal_header(STORE, 1).to_bytes());
            storage
                .create(&table_name(1))
                .await
                .expect("create")
                .append(&wal)
                .await
                .expect("append");
            let table = Arc::new(Table::new(meta, storage.clone(), STORE));
            match read_all(table, false).await {
                Err(Error::Corruption { reason, .. }) => {
                    assert!(reason.contains("kind"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
        });
    }
}
